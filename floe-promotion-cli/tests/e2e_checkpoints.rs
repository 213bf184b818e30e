//! End to end: signed audit checkpoints with the built binary and a real SQLite state file.
//!
//! The tamper test of issue 13: the chain is rewritten consistently from event k, every hash
//! after it recomputed with the library's hashing and the head row updated, so plain
//! `floe audit verify` passes; `floe audit verify --checkpoints` fails, naming the
//! checkpoint. Also: another key, a missing source, checkpoints in an OCI layout directory
//! and in a real registry (read back by skopeo), and automatic checkpoints every N events.

mod common;

use common::Workspace;
use floe_promotion::history::AuditEvent;
use floe_promotion_cli::exit;
use floe_promotion_cli::output::Output;
use floe_promotion_oci::generate_key_pair;
use floe_promotion_oci::testing::{TestRegistry, skopeo, skopeo_raw_manifest};

const PASSWORD: (&str, &str) = ("FLOE_KEY_PASSWORD", "correct horse");

/// A workspace whose manifest configures the attestation key (`keys/floe.key`, its public key
/// in `floe.pub`), with `checkpoints` appended to the attestation section, and another key's
/// public key in `other.pub`.
fn workspace(checkpoints: &str, insecure: Option<&str>) -> Workspace {
    let insecure = insecure
        .map(|h| format!("    insecure_registries: [\"{h}\"]\n"))
        .unwrap_or_default();
    let ws = Workspace::new(&format!(
        "artifacts:\n  promotion:\n{insecure}    environments:\n      - name: dev\n        repository: oci-layout:./registry/dev\n      - name: prod\n        repository: oci-layout:./registry/prod\n    attestation:\n      key: keys/floe.key\n      key_password_env: FLOE_KEY_PASSWORD\n{checkpoints}"
    ));
    let (private, public) = generate_key_pair(PASSWORD.1.as_bytes()).expect("key pair");
    ws.write("keys/floe.key", &private);
    ws.write("floe.pub", &public);
    let (_, other) = generate_key_pair(b"other").expect("key pair");
    ws.write("other.pub", &other);
    ws
}

/// Records `n` audit events (locks and unlocks of dev).
fn events(ws: &Workspace, n: usize) {
    for i in 0..n {
        let args: Vec<&str> = if i % 2 == 0 {
            vec!["lock", "dev", "--reason", "maintenance"]
        } else {
            vec!["unlock", "dev", "--reason", "done"]
        };
        ws.run_env(&args, &[PASSWORD]).ok();
    }
}

fn run_json(ws: &Workspace, args: &[&str]) -> common::Run {
    let mut all = vec!["--output", "json"];
    all.extend_from_slice(args);
    ws.run_env(&all, &[PASSWORD])
}

/// Rewrites the chain in the SQLite file from event `k`, consistently: event `k` gets another
/// reason, every event from `k` on is sealed again after its predecessor (the library's own
/// hashing), and the head row is updated, as someone with write access to the file would.
fn rewrite_from(state: &std::path::Path, k: u64) {
    let db = rusqlite::Connection::open(state).expect("open the state");
    db.execute_batch("DROP TRIGGER events_are_append_only_update;")
        .expect("drop the trigger");
    let rows: Vec<(String, String, String)> = db
        .prepare("SELECT content, prev_hash, hash FROM events ORDER BY seq")
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    let mut prev: Option<String> = None;
    for (content, prev_hash, hash) in rows {
        let event = AuditEvent::from_stored(content, prev_hash, hash).expect("stored event");
        if event.seq < k {
            prev = Some(event.hash);
            continue;
        }
        let mut record = event.record.clone();
        if event.seq == k {
            record.reason = Some("nothing happened here".into());
        }
        let sealed = AuditEvent::seal(event.seq, record, prev.clone().expect("k > 1"));
        db.execute(
            "UPDATE events SET content = ?1, prev_hash = ?2, hash = ?3 WHERE seq = ?4",
            rusqlite::params![
                sealed.content,
                sealed.prev_hash,
                sealed.hash,
                sealed.seq as i64
            ],
        )
        .expect("rewrite an event");
        prev = Some(sealed.hash);
    }
    db.execute(
        "UPDATE chain_head SET head_hash = ?1 WHERE id = 1",
        [prev.expect("events")],
    )
    .expect("update the head row");
}

#[test]
fn a_consistent_rewrite_of_the_sqlite_state_fails_verification_naming_the_checkpoint() {
    let ws = workspace("", None);
    events(&ws, 6);
    let Output::Checkpoint(first) =
        run_json(&ws, &["audit", "checkpoint", "--to", "checkpoints.jsonl"])
            .ok()
            .output()
    else {
        panic!("not a checkpoint")
    };
    assert!(first.created);
    assert_eq!(first.checkpoint.checkpoint.sequence, 6);
    events(&ws, 4);
    let text = ws.run_env(
        &["audit", "checkpoint", "--to", "checkpoints.jsonl"],
        &[PASSWORD],
    );
    assert!(
        text.ok().stdout.contains("checkpoint of event 10")
            && text.stdout.contains("checkpoints.jsonl:line 2"),
        "{text:?}"
    );
    let verify = [
        "audit",
        "verify",
        "--checkpoints",
        "checkpoints.jsonl",
        "--key",
        "floe.pub",
    ];
    let ok = ws.run(&verify);
    assert!(
        ok.ok()
            .stdout
            .contains("holds every checkpointed head: 2 signed checkpoints"),
        "{ok:?}"
    );

    rewrite_from(&ws.state(), 8);
    // The rewrite is consistent: the chain and its head row verify on their own.
    let plain = ws.run(&["audit", "verify"]);
    assert!(
        plain.ok().stdout.contains("audit chain intact: 10 events"),
        "{plain:?}"
    );

    let Output::Verify(v) = run_json(&ws, &verify).expect(exit::INTEGRITY).output() else {
        panic!("not a verification")
    };
    assert!(!v.intact && v.first_break.is_none(), "{v:?}");
    let c = v.checkpoints.expect("checkpoints");
    assert_eq!((c.checked, c.matched), (2, 1));
    let m = c.mismatch.expect("a mismatch");
    assert_eq!(m.checkpoint.checkpoint.sequence, 10);
    assert!(
        m.checkpoint.location.ends_with("checkpoints.jsonl:line 2"),
        "{m:?}"
    );
    assert_eq!((m.first_differing, m.exact), (7, false));
    let text = ws.run(&verify);
    let out = &text.expect(exit::INTEGRITY).stdout;
    for needle in [
        "REWRITTEN",
        "checkpoint 10 (taken ",
        "checkpoints.jsonl:line 2",
        "one of events 7 to 10",
        "checkpoint 6 still matches",
    ] {
        assert!(out.contains(needle), "{needle:?} not in:\n{out}");
    }
    // Nothing new is signed over the rewritten chain.
    let refused = ws.run_env(
        &["audit", "checkpoint", "--to", "checkpoints.jsonl"],
        &[PASSWORD],
    );
    let line = refused.one_error_line(exit::INTEGRITY);
    assert!(line.contains("checkpoint 10"), "{line}");
}

#[test]
fn another_key_a_missing_source_and_no_destination_are_refused_clearly() {
    let ws = workspace("", None);
    events(&ws, 2);
    ws.run_env(&["audit", "checkpoint", "--to", "cp.jsonl"], &[PASSWORD])
        .ok();

    let other = ws.run(&[
        "audit",
        "verify",
        "--checkpoints",
        "cp.jsonl",
        "--key",
        "other.pub",
    ]);
    let line = other.one_error_line(exit::SIGNATURE);
    assert!(
        line.contains("checkpoint 2 at") && line.contains("cp.jsonl:line 1"),
        "{line}"
    );

    let missing = ws.run(&[
        "audit",
        "verify",
        "--checkpoints",
        "nope.jsonl",
        "--key",
        "floe.pub",
    ]);
    let line = missing.one_error_line(exit::NOT_FOUND);
    assert!(
        line.contains("nope.jsonl") && line.contains("no such file"),
        "{line}"
    );

    let empty = ws.run(&[
        "audit",
        "verify",
        "--checkpoints",
        "oci-layout:empty",
        "--key",
        "floe.pub",
    ]);
    let line = empty.one_error_line(exit::NOT_FOUND);
    assert!(
        line.contains("oci-layout:empty") && line.contains("there are none"),
        "{line}"
    );

    let no_key = ws.run(&["audit", "verify", "--checkpoints", "cp.jsonl"]);
    assert_eq!(no_key.code, exit::USAGE, "{no_key:?}");

    let nowhere = ws.run_env(&["audit", "checkpoint"], &[PASSWORD]);
    let line = nowhere.one_error_line(exit::USAGE);
    assert!(
        line.contains("--to") && line.contains("checkpoints.to"),
        "{line}"
    );

    let url = ws.run_env(
        &[
            "audit",
            "checkpoint",
            "--to",
            "https://user:secret@example.com/x",
        ],
        &[PASSWORD],
    );
    let line = url.one_error_line(exit::USAGE);
    assert!(!line.contains("secret"), "{line}");

    let no_password = ws.run(&["audit", "checkpoint", "--to", "cp.jsonl"]);
    let line = no_password.one_error_line(exit::USAGE);
    assert!(line.contains("FLOE_KEY_PASSWORD"), "{line}");
}

#[test]
fn checkpoints_in_a_layout_directory_and_a_registry_verify_and_skopeo_reads_them() {
    let registry = TestRegistry::shared();
    let ws = workspace("", Some(&registry.host()));
    events(&ws, 3);
    let remote = format!("oci://{}/audit", registry.namespace("checkpoints"));
    for to in ["oci-layout:checkpoints", remote.as_str()] {
        let Output::Checkpoint(taken) = run_json(&ws, &["audit", "checkpoint", "--to", to])
            .ok()
            .output()
        else {
            panic!("not a checkpoint")
        };
        assert_eq!(taken.checkpoint.location, format!("{to}:checkpoint-3"));
        let v = ws.run(&["audit", "verify", "--checkpoints", to, "--key", "floe.pub"]);
        assert!(
            v.ok()
                .stdout
                .contains("holds every checkpointed head: 1 signed checkpoints"),
            "{v:?}"
        );
    }
    let layout = ws.join("checkpoints");
    let raw = skopeo(&[
        "inspect",
        "--raw",
        &format!("oci:{}:checkpoint-3", layout.display()),
    ]);
    let manifest: serde_json::Value = serde_json::from_slice(&raw).expect("json");
    assert_eq!(
        manifest["artifactType"],
        "application/vnd.dev.floe.checkpoint.v1"
    );
    let raw = skopeo_raw_manifest(&format!(
        "{}:checkpoint-3",
        remote.trim_start_matches("oci://")
    ));
    let manifest: serde_json::Value = serde_json::from_slice(&raw).expect("json");
    assert_eq!(
        manifest["artifactType"],
        "application/vnd.dev.floe.checkpoint.v1"
    );
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.dsse.envelope.v1+json"
    );
}

#[test]
fn checkpoints_are_taken_automatically_every_n_events() {
    let ws = workspace(
        "      checkpoints: { to: audit/auto.jsonl, every: 3 }\n",
        None,
    );
    events(&ws, 7);
    let lines = std::fs::read_to_string(ws.join("audit/auto.jsonl")).expect("the checkpoints file");
    let sequences: Vec<u64> = lines
        .lines()
        .map(|l| {
            let envelope =
                floe_promotion::attest::Envelope::from_json(l.as_bytes()).expect("envelope");
            floe_promotion::checkpoint::claimed_sequence(&envelope).expect("a checkpoint")
        })
        .collect();
    assert_eq!(sequences, vec![3, 6]);
    let v = ws.run(&[
        "audit",
        "verify",
        "--checkpoints",
        "audit/auto.jsonl",
        "--key",
        "floe.pub",
    ]);
    assert!(v.ok().stdout.contains("2 signed checkpoints"), "{v:?}");
    // `floe audit checkpoint` without --to goes where the manifest says.
    let taken = ws.run_env(&["audit", "checkpoint"], &[PASSWORD]);
    assert!(
        taken.ok().stdout.contains("checkpoint of event 7")
            && taken.stdout.contains("auto.jsonl:line 3"),
        "{taken:?}"
    );
}

/// The same tamper test against PostgreSQL state: the events are read back from an export, the
/// chain from event 4 sealed again with the library's hashing, the rows and the head row
/// rewritten with psql (the append-only trigger disabled first).
#[test]
fn a_consistent_rewrite_of_postgres_state_fails_verification_naming_the_checkpoint() {
    let ws = workspace("", None);
    let url = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(floe_promotion_postgres::testing::TestPostgres::shared().fresh_database());
    let state = [("FLOE_STATE", url.as_str()), PASSWORD];
    for i in 0..6 {
        let args: &[&str] = if i % 2 == 0 {
            &["lock", "dev", "--reason", "maintenance"]
        } else {
            &["unlock", "dev", "--reason", "done"]
        };
        ws.run_env(args, &state).ok();
    }
    ws.run_env(&["audit", "checkpoint", "--to", "pg.jsonl"], &state)
        .ok();
    let export = ws.run_env(&["audit", "export", "--format", "jsonl"], &state);
    let events: Vec<AuditEvent> = export
        .ok()
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("an exported event"))
        .collect();
    let mut sql = String::from("ALTER TABLE events DISABLE TRIGGER events_are_append_only;\n");
    let mut prev = events[2].hash.clone();
    for e in events.iter().filter(|e| e.seq >= 4) {
        let mut record = e.record.clone();
        if e.seq == 4 {
            record.reason = Some("nothing happened here".into());
        }
        let sealed = AuditEvent::seal(e.seq, record, prev.clone());
        sql.push_str(&format!(
            "UPDATE events SET content = $floe${}$floe$, prev_hash = '{}', hash = '{}' WHERE seq = {};\n",
            sealed.content, sealed.prev_hash, sealed.hash, sealed.seq
        ));
        prev = sealed.hash;
    }
    sql.push_str(&format!(
        "UPDATE chain_head SET head_hash = '{prev}' WHERE id = 1;\n"
    ));
    let out = std::process::Command::new("psql")
        .args([url.as_str(), "-v", "ON_ERROR_STOP=1", "-q", "-c", &sql])
        .output()
        .expect("running psql");
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    ws.run_env(&["audit", "verify"], &state).ok();
    let verify = [
        "audit",
        "verify",
        "--checkpoints",
        "pg.jsonl",
        "--key",
        "floe.pub",
    ];
    let text = ws.run_env(&verify, &state);
    let out = &text.expect(exit::INTEGRITY).stdout;
    assert!(
        out.contains("checkpoint 6 (taken ") && out.contains("one of events 1 to 6"),
        "{out}"
    );
}
