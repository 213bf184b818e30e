//! Several OS processes and tasks appending to one PostgreSQL database at once: one valid
//! chain, no lost event, exclusive leases; and a server restarted mid-run.
//!
//! The children are this test binary run again with `--ignored --exact child_process_role`
//! and a role in the environment. A child prints `ACK <seq> <id>` for every event whose
//! append returned `Ok`, i.e. that was committed and acknowledged.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::Utc;
use floe_promotion::history::{
    AuditEvent, EventKind, EventRecord, HistoryExt, HistoryQuery, HistoryStore,
};
use floe_promotion::state::LeaseHolder;
use floe_promotion::{Actor, EnvName, Error, LockStore};
use floe_promotion_postgres::testing::TestPostgres;
use floe_promotion_postgres::{PostgresOptions, PostgresStore};
use uuid::Uuid;

const ROLE: &str = "FLOE_PG_TEST_ROLE";
const URL: &str = "FLOE_PG_TEST_URL";
const NAME: &str = "FLOE_PG_TEST_NAME";
const COUNT: &str = "FLOE_PG_TEST_COUNT";

fn event(kind: EventKind, name: &str, details: &[(&str, String)]) -> EventRecord {
    let mut r = EventRecord::new(kind, Actor::new(name).expect("actor"), Utc::now());
    r.environment = Some(EnvName::new("prod").expect("env"));
    for (k, v) in details {
        r.details.insert((*k).into(), v.clone());
    }
    r
}

fn ack(events: &[AuditEvent]) {
    for e in events {
        println!("ACK {} {}", e.seq, e.record.id);
    }
}

/// Appends `count` times (single events and batches of 3) and every fifth time takes the
/// `prod` lease, records its start and end in the history while holding it, and releases it.
async fn writer(store: &PostgresStore, name: &str, count: usize) {
    let prod = EnvName::new("prod").expect("env");
    for i in 0..count {
        if i % 5 == 0 {
            match store
                .acquire_lease(
                    &prod,
                    &LeaseHolder::named(name),
                    chrono::Duration::minutes(5),
                    Utc::now(),
                )
                .await
            {
                Ok(lease) => {
                    let token = lease.token.to_string();
                    let start = event(
                        EventKind::Locked,
                        name,
                        &[("lease", "start".into()), ("token", token.clone())],
                    );
                    ack(&store.append_batch(vec![start]).await.expect("append start"));
                    tokio::time::sleep(Duration::from_millis(3)).await;
                    let end = event(
                        EventKind::Unlocked,
                        name,
                        &[("lease", "end".into()), ("token", token)],
                    );
                    ack(&store.append_batch(vec![end]).await.expect("append end"));
                    store.release_lease(&lease).await.expect("release");
                    println!("LEASE {name}");
                }
                Err(Error::Busy { .. }) => println!("BUSY {name}"),
                Err(e) => panic!("acquire_lease: {e}"),
            }
        }
        let n = if i % 7 == 6 { 3 } else { 1 };
        let batch = (0..n)
            .map(|k| {
                event(
                    EventKind::PromotionRequested,
                    name,
                    &[("writer", name.into()), ("n", format!("{i}.{k}"))],
                )
            })
            .collect();
        ack(&store.append_batch(batch).await.expect("append"));
    }
}

#[test]
#[ignore = "the child role of the process tests, which start it themselves"]
fn child_process_role() {
    let Ok(role) = std::env::var(ROLE) else {
        eprintln!("{ROLE} is not set: this test is run as a child by the process tests");
        return;
    };
    let url = std::env::var(URL).expect("database URL");
    let name = std::env::var(NAME).expect("name");
    let count = std::env::var(COUNT)
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(30);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let store =
            PostgresStore::connect_with(&url, PostgresOptions::default().max_connections(2))
                .await
                .expect("child connects");
        match role.as_str() {
            "writer" => writer(&store, &name, count).await,
            other => panic!("unknown role {other}"),
        }
    });
}

fn spawn(url: &str, name: &str, count: usize) -> Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--ignored",
            "--exact",
            "child_process_role",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, "writer")
        .env(URL, url)
        .env(NAME, name)
        .env(COUNT, count.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child")
}

/// Parses an `ACK` line; the first one may follow libtest's `test child_process_role ... `.
fn parse_ack(line: &str) -> Option<(u64, Uuid)> {
    let at = line.find("ACK ")?;
    let mut parts = line[at + 4..].split(' ');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// Checks one intact chain that holds every acknowledged event exactly once, at the sequence
/// number it was acknowledged with, and returns the events.
async fn check_chain(store: &PostgresStore, acked: &[(u64, Uuid)]) -> Vec<AuditEvent> {
    let report = store.verify().await.expect("verify");
    assert!(report.is_intact(), "{report:?}");
    let events = store.query(&HistoryQuery::default()).await.expect("query");
    assert_eq!(report.events, events.len() as u64);
    let by_seq: HashMap<u64, Uuid> = events.iter().map(|e| (e.seq, e.record.id)).collect();
    let mut ids: Vec<Uuid> = events.iter().map(|e| e.record.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), events.len(), "no event stored twice");
    for (seq, id) in acked {
        assert_eq!(
            by_seq.get(seq),
            Some(id),
            "acknowledged event {id} at {seq} is there"
        );
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_and_tasks_share_one_chain_and_exclusive_leases() {
    const CHILDREN: usize = 8;
    const EACH: usize = 30;
    const TASKS: usize = 4;
    let url = TestPostgres::shared().fresh_database().await;
    // Migrate first, so that the children race on appends, not on the creation.
    let store = PostgresStore::connect(&url).await.expect("create");

    let children: Vec<_> = (0..CHILDREN)
        .map(|i| spawn(&url, &format!("process-{i}"), EACH))
        .collect();
    // Tasks in this process, each with its own store (its own connections).
    let tasks: Vec<_> = (0..TASKS)
        .map(|i| {
            let url = url.clone();
            tokio::spawn(async move {
                let store = PostgresStore::connect_with(
                    &url,
                    PostgresOptions::default().max_connections(1),
                )
                .await
                .expect("connect");
                let name = format!("task-{i}");
                let mut acked = Vec::new();
                for n in 0..EACH {
                    let e = event(
                        EventKind::PromotionRequested,
                        &name,
                        &[("writer", name.clone()), ("n", n.to_string())],
                    );
                    for e in store.append_batch(vec![e]).await.expect("append") {
                        acked.push((e.seq, e.record.id));
                    }
                }
                acked
            })
        })
        .collect();

    let readers: Vec<_> = children
        .into_iter()
        .map(|mut child| {
            std::thread::spawn(move || {
                let out = BufReader::new(child.stdout.take().expect("stdout"));
                let mut acked = Vec::new();
                let mut leases = 0;
                for line in out.lines() {
                    let line = line.expect("line");
                    if let Some(a) = parse_ack(&line) {
                        acked.push(a);
                    } else if line.contains("LEASE ") {
                        leases += 1;
                    }
                }
                assert!(child.wait().expect("wait").success(), "child failed");
                (acked, leases)
            })
        })
        .collect();
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.expect("task"));
    }
    let mut leases = 0;
    for r in readers {
        let (a, l) = r.join().expect("child reader");
        acked.extend(a);
        leases += l;
    }
    let events = check_chain(&store, &acked).await;
    assert_eq!(
        events.len(),
        acked.len(),
        "every event was acknowledged once"
    );
    assert!(leases > 0, "some lease was taken");

    // Leases were exclusive: in the chain, no lease starts while another is held.
    let mut held: Option<String> = None;
    let mut starts = 0;
    for e in &events {
        match e.record.details.get("lease").map(String::as_str) {
            Some("start") => {
                assert_eq!(
                    held, None,
                    "lease started at event {} while another was held",
                    e.seq
                );
                held = e.record.details.get("token").cloned();
                starts += 1;
            }
            Some("end") => {
                assert_eq!(
                    held.as_ref(),
                    e.record.details.get("token"),
                    "event {}",
                    e.seq
                );
                held = None;
            }
            _ => {}
        }
    }
    assert_eq!(held, None);
    assert_eq!(starts, leases);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_is_unavailable_then_serves_again() {
    // Its own server: restarting the shared one would disturb the other tests.
    let server = tokio::task::spawn_blocking(TestPostgres::start)
        .await
        .expect("start");
    let url = server.fresh_database().await;
    let store = PostgresStore::connect_with(
        &url,
        PostgresOptions::default().connect_timeout(Duration::from_secs(2)),
    )
    .await
    .expect("connect");
    let before = store
        .append(event(EventKind::Locked, "ops", &[]))
        .await
        .expect("append before");
    let server = std::sync::Arc::new(server);
    let stopping = server.clone();
    tokio::task::spawn_blocking(move || stopping.stop())
        .await
        .expect("stop");
    let err = store
        .append(event(EventKind::Unlocked, "ops", &[]))
        .await
        .expect_err("the server is down");
    assert!(matches!(err, Error::Unavailable { .. }), "{err}");
    assert!(err.to_string().contains("unavailable"), "{err}");
    let restarting = server.clone();
    tokio::task::spawn_blocking(move || restarting.restart())
        .await
        .expect("restart");
    // The pool drops the dead connections; a retry succeeds on a new one.
    let mut after = None;
    for _ in 0..20 {
        match store.append(event(EventKind::Unlocked, "ops", &[])).await {
            Ok(e) => {
                after = Some(e);
                break;
            }
            Err(Error::Unavailable { .. }) => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => panic!("after the restart: {e}"),
        }
    }
    let after = after.expect("appends succeed after the restart");
    assert_eq!(after.seq, before.seq + 1, "the failed append left nothing");
    assert_eq!(after.prev_hash, before.hash);
    assert!(store.verify().await.expect("verify").is_intact());
}
