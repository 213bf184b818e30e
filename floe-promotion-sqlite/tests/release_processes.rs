//! Several OS processes updating one release in one database file: compare-and-set gives
//! exactly one winner per version and loses no update, and each effect key is recorded
//! exactly once; an updater killed with SIGKILL loses nothing it was told had succeeded.
//!
//! The children are this test binary run again with `--ignored --exact release_child_role`
//! and the database and release in the environment. For every update that returned `Ok` a
//! child prints `WON <version> <token>`; for every `record_effect` that returned `true`,
//! `FIRST <key>`; at the end, `CONFLICTS <n>`. The children start at one instant, so their
//! updates overlap.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use chrono::Utc;
use floe_promotion::release::{Release, ReleaseKind, ReleaseState};
use floe_promotion::{ArtifactName, Digest, EnvName, Error, ReleaseStore, Tag};
use floe_promotion_sqlite::SqliteStore;
use serde_json::json;
use uuid::Uuid;

const DB: &str = "FLOE_RELEASE_TEST_DB";
const RELEASE: &str = "FLOE_RELEASE_TEST_ID";
const NAME: &str = "FLOE_RELEASE_TEST_NAME";
const COUNT: &str = "FLOE_RELEASE_TEST_COUNT";
const START: &str = "FLOE_RELEASE_TEST_START";

/// Appends `<name>-<i>` to the release's `applied` list `count` times (forever when 0), each
/// time reading the release and retrying on `Conflict`; after each update it records the
/// effect `effect-<i>`, which every child also records.
async fn updater(store: &SqliteStore, id: Uuid, name: &str, count: usize) {
    let mut conflicts = 0;
    let count = if count == 0 { usize::MAX } else { count };
    for i in 0..count {
        let token = format!("{name}-{i}");
        loop {
            let current = store.get(id).await.expect("get");
            let mut applied: Vec<String> =
                serde_json::from_value(current.state["applied"].clone()).expect("applied");
            applied.push(token.clone());
            let next = ReleaseState::new("waiting", json!({ "applied": applied }));
            match store.update(id, current.version, next, Utc::now()).await {
                Ok(stored) => {
                    println!("WON {} {token}", stored.version);
                    break;
                }
                Err(Error::Conflict(_)) => conflicts += 1,
                Err(e) => panic!("update: {e}"),
            }
        }
        let key = format!("effect-{i}");
        if store.record_effect(id, &key).await.expect("record_effect") {
            println!("FIRST {key}");
        }
    }
    println!("CONFLICTS {conflicts}");
}

#[test]
#[ignore = "the child role of the release process test, which starts it itself"]
fn release_child_role() {
    let Ok(db) = std::env::var(DB) else {
        eprintln!("{DB} is not set: this test is run as a child by the release process test");
        return;
    };
    let id: Uuid = std::env::var(RELEASE)
        .expect("release id")
        .parse()
        .expect("uuid");
    let name = std::env::var(NAME).expect("name");
    let count: usize = std::env::var(COUNT)
        .expect("count")
        .parse()
        .expect("number");
    let start: i64 = std::env::var(START)
        .expect("start")
        .parse()
        .expect("number");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let store = SqliteStore::open(&db)
            .await
            .expect("child opens the database");
        let wait = start - Utc::now().timestamp_millis();
        if wait > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(wait as u64)).await;
        }
        updater(&store, id, &name, count).await;
    });
}

fn spawn(db: &Path, id: Uuid, name: &str, count: usize, start: i64) -> Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--ignored",
            "--exact",
            "release_child_role",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DB, db)
        .env(RELEASE, id.to_string())
        .env(NAME, name)
        .env(COUNT, count.to_string())
        .env(START, start.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child")
}

/// The words after `marker` on a line; the first line may follow libtest's
/// `test release_child_role ... `.
fn after<'a>(line: &'a str, marker: &str) -> Option<Vec<&'a str>> {
    let at = line.find(marker)?;
    Some(line[at + marker.len()..].split(' ').collect())
}

#[test]
fn processes_updating_one_release_have_one_winner_per_version_and_record_effects_once() {
    const CHILDREN: usize = 4;
    const EACH: usize = 15;
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("releases.db");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let release = Release::new(
        ReleaseKind::Approval,
        EnvName::new("prod").expect("env"),
        ArtifactName::new("app").expect("artifact"),
        Tag::new("v1.2.0").expect("tag"),
        Digest::of(b"app"),
        ReleaseState::new("pending", json!({ "applied": [] })),
        Utc::now(),
    );
    let id = release.id;
    rt.block_on(async {
        let store = SqliteStore::open(&db).await.expect("create");
        store.create(release).await.expect("create the release");
    });

    // Late enough for every child to have started and opened the file.
    let start = Utc::now().timestamp_millis() + 1500;
    let children: Vec<_> = (0..CHILDREN)
        .map(|i| spawn(&db, id, &format!("process{i}"), EACH, start))
        .collect();
    // Version -> the token of the update that produced it.
    let mut winners: BTreeMap<u64, String> = BTreeMap::new();
    let mut firsts: BTreeMap<String, usize> = BTreeMap::new();
    let mut conflicts = 0;
    for mut child in children {
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        for line in out.lines() {
            let line = line.expect("line");
            if let Some(words) = after(&line, "WON ") {
                let version: u64 = words[0].parse().expect("version");
                let token = words[1].to_string();
                if let Some(other) = winners.insert(version, token.clone()) {
                    panic!("version {version} was won twice: by {other} and by {token}");
                }
            } else if let Some(words) = after(&line, "FIRST ") {
                *firsts.entry(words[0].to_string()).or_default() += 1;
            } else if let Some(words) = after(&line, "CONFLICTS ") {
                conflicts += words[0].parse::<usize>().expect("count");
            }
        }
        assert!(child.wait().expect("wait").success(), "child failed");
    }

    let total = (CHILDREN * EACH) as u64;
    assert_eq!(
        winners.keys().copied().collect::<Vec<_>>(),
        (2..=1 + total).collect::<Vec<_>>(),
        "every version from 2 was won exactly once"
    );
    let stored = rt.block_on(async {
        let store = SqliteStore::open(&db).await.expect("open");
        store.check_integrity().await.expect("integrity");
        let stored = store.get(id).await.expect("get");
        let effects = store.effects(id).await.expect("effects");
        let expected: BTreeSet<String> = (0..EACH).map(|i| format!("effect-{i}")).collect();
        assert_eq!(effects.len(), EACH, "each key recorded once: {effects:?}");
        assert_eq!(effects.into_iter().collect::<BTreeSet<_>>(), expected);
        stored
    });
    assert_eq!(stored.version, 1 + total, "one version per update");
    let applied: Vec<String> =
        serde_json::from_value(stored.state["applied"].clone()).expect("applied");
    assert_eq!(applied.len() as u64, total, "no update lost or doubled");
    for (version, token) in &winners {
        assert_eq!(
            &applied[(*version - 2) as usize],
            token,
            "the update that won version {version} is in the state at its place"
        );
    }
    assert_eq!(
        firsts.len(),
        EACH,
        "every effect key was recorded by someone"
    );
    for (key, n) in &firsts {
        assert_eq!(*n, 1, "{key} was recorded first by {n} processes");
    }
    eprintln!("{conflicts} updates were refused as stale and retried");
}

#[test]
fn a_killed_updater_loses_no_acknowledged_update_or_effect() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("killed.db");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let release = Release::new(
        ReleaseKind::Canary,
        EnvName::new("prod").expect("env"),
        ArtifactName::new("app").expect("artifact"),
        Tag::new("v2").expect("tag"),
        Digest::of(b"app"),
        ReleaseState::new("step-0", json!({ "applied": [] })),
        Utc::now(),
    );
    let id = release.id;
    rt.block_on(async {
        let store = SqliteStore::open(&db).await.expect("create");
        store.create(release).await.expect("create the release");
    });
    let mut child = spawn(&db, id, "victim", 0, 0);
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut won: BTreeMap<u64, String> = BTreeMap::new();
    let mut recorded: BTreeSet<String> = BTreeSet::new();
    let mut take = |line: &str| {
        if let Some(w) = after(line, "WON ") {
            won.insert(w[0].parse().expect("version"), w[1].to_string());
        } else if let Some(w) = after(line, "FIRST ") {
            recorded.insert(w[0].to_string());
        }
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut line = String::new();
    let mut acks = 0;
    while acks < 150 {
        line.clear();
        assert!(
            out.read_line(&mut line).expect("read") > 0,
            "the child stopped before being killed"
        );
        if line.contains("WON ") {
            acks += 1;
        }
        take(line.trim_end());
        assert!(
            std::time::Instant::now() < deadline,
            "the child is too slow"
        );
    }
    // SIGKILL, in the middle of whatever it is doing.
    child.kill().expect("SIGKILL");
    assert!(!child.wait().expect("wait").success());
    for line in out.lines() {
        take(&line.expect("line"));
    }

    rt.block_on(async {
        let store = SqliteStore::open(&db).await.expect("reopen after the kill");
        store.check_integrity().await.expect("integrity");
        let stored = store.get(id).await.expect("get");
        let applied: Vec<String> =
            serde_json::from_value(stored.state["applied"].clone()).expect("applied");
        assert_eq!(
            applied.len() as u64,
            stored.version - 1,
            "state and version agree"
        );
        let last = *won.keys().last().expect("some update won");
        assert!(stored.version >= last, "acknowledged version {last} kept");
        for (version, token) in &won {
            assert_eq!(
                &applied[(*version - 2) as usize],
                token,
                "version {version}"
            );
        }
        let effects: BTreeSet<String> = store
            .effects(id)
            .await
            .expect("effects")
            .into_iter()
            .collect();
        assert!(
            recorded.is_subset(&effects),
            "acknowledged effects kept: {:?}",
            recorded.difference(&effects).collect::<Vec<_>>()
        );
        // The release can be advanced after the crash, from the version that is stored.
        let next = store
            .update(
                id,
                stored.version,
                ReleaseState::new("done", json!({})),
                Utc::now(),
            )
            .await
            .expect("update after the crash");
        assert_eq!(next.version, stored.version + 1);
    });
}
