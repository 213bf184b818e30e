//! Several OS processes sharing one database file: concurrent appends and leases, and a
//! writer killed with SIGKILL.
//!
//! The children are this test binary run again with `--ignored --exact child_process_role`
//! and a role in the environment. A child prints `ACK <seq> <id>` for every event whose
//! append returned `Ok`, i.e. that was committed and acknowledged.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use floe_promotion::history::{
    AuditEvent, EventKind, EventRecord, HistoryExt, HistoryQuery, HistoryStore,
};
use floe_promotion::state::LeaseHolder;
use floe_promotion::{Actor, EnvName, Error, LockStore};
use floe_promotion_sqlite::SqliteStore;
use uuid::Uuid;

const ROLE: &str = "FLOE_SQLITE_TEST_ROLE";
const DB: &str = "FLOE_SQLITE_TEST_DB";
const NAME: &str = "FLOE_SQLITE_TEST_NAME";
const COUNT: &str = "FLOE_SQLITE_TEST_COUNT";

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
async fn writer(store: &SqliteStore, name: &str, count: usize) {
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

/// Appends forever, single events and batches of 5, until killed.
async fn crasher(store: &SqliteStore, name: &str) {
    for i in 0.. {
        let n = if i % 4 == 3 { 5 } else { 1 };
        let batch = (0..n)
            .map(|k| event(EventKind::CanaryStep, name, &[("n", format!("{i}.{k}"))]))
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
    let db = std::env::var(DB).expect("database path");
    let name = std::env::var(NAME).expect("name");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let store = SqliteStore::open(&db)
            .await
            .expect("child opens the database");
        match role.as_str() {
            "writer" => {
                let count = std::env::var(COUNT)
                    .ok()
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(40);
                writer(&store, &name, count).await;
            }
            "crasher" => crasher(&store, &name).await,
            "opener" => {
                let stored = store
                    .append(event(EventKind::Locked, &name, &[]))
                    .await
                    .expect("append after a concurrent first open");
                ack(std::slice::from_ref(&stored));
            }
            other => panic!("unknown role {other}"),
        }
    });
}

fn spawn(role: &str, db: &Path, name: &str, count: usize) -> Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--ignored",
            "--exact",
            "child_process_role",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, role)
        .env(DB, db)
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
fn check_chain(rt: &tokio::runtime::Runtime, db: &Path, acked: &[(u64, Uuid)]) -> Vec<AuditEvent> {
    let integrity: String = rusqlite::Connection::open(db)
        .and_then(|c| c.query_row("PRAGMA integrity_check", [], |r| r.get(0)))
        .expect("integrity_check");
    assert_eq!(integrity, "ok");
    rt.block_on(async {
        let store = SqliteStore::open(db).await.expect("open");
        store.check_integrity().await.expect("integrity");
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
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn processes_and_threads_share_one_chain_and_exclusive_leases() {
    const CHILDREN: usize = 4;
    const EACH: usize = 40;
    const THREADS: usize = 2;
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("shared.db");
    let rt = runtime();
    // Create the file first, so that the children race on appends, not on the creation.
    drop(rt.block_on(SqliteStore::open(&db)).expect("create"));

    let children: Vec<_> = (0..CHILDREN)
        .map(|i| spawn("writer", &db, &format!("process-{i}"), EACH))
        .collect();
    // Threads in this process, each with its own store (its own connections).
    let threads: Vec<_> = (0..THREADS)
        .map(|i| {
            let db = db.clone();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async {
                    let store = SqliteStore::open(&db).await.expect("open");
                    let name = format!("thread-{i}");
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
        })
        .collect();

    let mut acked = Vec::new();
    let mut leases = 0;
    for mut child in children {
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        for line in out.lines() {
            let line = line.expect("line");
            if let Some(a) = parse_ack(&line) {
                acked.push(a);
            } else if line.contains("LEASE ") {
                leases += 1;
            }
        }
        assert!(child.wait().expect("wait").success(), "child failed");
    }
    for t in threads {
        acked.extend(t.join().expect("thread"));
    }
    let events = check_chain(&rt, &db, &acked);
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

#[test]
fn killed_writer_leaves_an_intact_chain_with_every_acknowledged_event() {
    const ROUNDS: usize = 3;
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("crash.db");
    let rt = runtime();
    let mut acked = Vec::new();
    for round in 0..ROUNDS {
        let mut child = spawn("crasher", &db, &format!("crasher-{round}"), 0);
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let target = acked.len() + 100 + round * 37;
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut line = String::new();
        while acked.len() < target {
            line.clear();
            let n = out.read_line(&mut line).expect("read");
            assert!(n > 0, "the child stopped before being killed");
            if let Some(a) = parse_ack(line.trim_end()) {
                acked.push(a);
            }
            assert!(Instant::now() < deadline, "the child is too slow");
        }
        // SIGKILL, in the middle of whatever it is doing.
        child.kill().expect("SIGKILL");
        let status = child.wait().expect("wait");
        assert!(!status.success(), "killed: {status:?}");
        // Acknowledgements already in the pipe count too.
        for line in out.lines() {
            if let Some(a) = parse_ack(&line.expect("line")) {
                acked.push(a);
            }
        }
        let events = check_chain(&rt, &db, &acked);
        assert!(events.len() >= acked.len());
    }
    // The file still takes appends after the crashes.
    rt.block_on(async {
        let store = SqliteStore::open(&db).await.expect("open");
        let e = store
            .append_batch(vec![event(EventKind::Locked, "after", &[])])
            .await
            .expect("append after crashes");
        assert!(e[0].seq as usize > acked.len());
        assert!(store.verify().await.expect("verify").is_intact());
    });
}

/// Processes that open a new file at the same moment all succeed: the switch to WAL and the
/// migration happen once, under the setup lock, instead of one process being refused as busy.
#[test]
fn processes_opening_a_new_file_at_once_all_succeed() {
    for round in 0..20 {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("fresh.db");
        let children: Vec<Child> = (0..5)
            .map(|i| spawn("opener", &db, &format!("opener-{round}-{i}"), 1))
            .collect();
        let mut acked = Vec::new();
        for child in children {
            let out = child.wait_with_output().expect("child");
            assert!(
                out.status.success(),
                "round {round}: a process failed to open the new file: {}",
                String::from_utf8_lossy(&out.stdout)
            );
            acked.extend(
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .filter_map(parse_ack),
            );
        }
        assert_eq!(acked.len(), 5, "round {round}");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        check_chain(&rt, &db, &acked);
    }
}
