//! The audit trail: `audit verify` on an honest and an edited state file, and `audit export`
//! as JSON Lines and CSV.

use floe_promotion_cli::exit;
use floe_promotion_cli::output::{Output, VerifyOutput};

use super::World;

/// `audit verify` passes on an honest state file and names the event after one of its rows is
/// edited with the `sqlite3` shell (rusqlite when the shell is missing).
#[test]
fn audit_verify_passes_then_fails_after_the_state_file_is_edited() {
    let w = World::new("audit", &[]);
    w.push("v1.0.0", 10);
    w.promote_through("v1.0.0", "prod");

    let Output::Verify(v) =
        w.ws.run(&["--output", "json", "audit", "verify"])
            .ok()
            .output()
    else {
        panic!()
    };
    assert!(v.intact && v.first_break.is_none(), "{v:?}");
    assert_eq!(v.events, 4);
    let text = w.ws.run(&["audit", "verify"]).ok().stdout.clone();
    assert!(
        text.contains("intact") && text.contains("4 events"),
        "{text}"
    );

    // Rewrite who promoted into staging (event 2), as someone with write access to the file
    // would: the table's append-only trigger is dropped first.
    let sql = "DROP TRIGGER events_are_append_only_update; \
               UPDATE events SET content = replace(content, '\"ci-staging\"', '\"mallory\"') WHERE seq = 2;";
    tamper(&w.ws.state(), sql);

    let broken = w.ws.run(&["--output", "json", "audit", "verify"]);
    let Output::Verify(VerifyOutput {
        intact,
        first_break,
        ..
    }) = broken.expect(exit::INTEGRITY).output()
    else {
        panic!()
    };
    assert!(!intact);
    assert_eq!(
        first_break.as_ref().map(|b| b.seq),
        Some(2),
        "{first_break:?}"
    );
    let text = w.ws.run(&["audit", "verify"]);
    assert!(
        text.expect(exit::INTEGRITY)
            .stdout
            .contains("BROKEN at event 2"),
        "{text:?}"
    );
}

/// Runs `sql` against the SQLite file with the `sqlite3` shell, or with rusqlite (saying so)
/// when the shell is not installed (Debian package `sqlite3`).
fn tamper(db: &std::path::Path, sql: &str) {
    if floe_promotion_oci::testing::which("sqlite3").is_some() {
        let out = std::process::Command::new("sqlite3")
            .arg(db)
            .arg(sql)
            .output()
            .expect("running sqlite3");
        assert!(
            out.status.success(),
            "sqlite3 failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let changed = std::process::Command::new("sqlite3")
            .arg(db)
            .arg("SELECT count(*) FROM events WHERE content LIKE '%mallory%';")
            .output()
            .expect("running sqlite3");
        assert_eq!(String::from_utf8_lossy(&changed.stdout).trim(), "1");
    } else {
        eprintln!(
            "sqlite3 is not installed (apt-get install sqlite3): editing the state file with rusqlite instead"
        );
        let conn = rusqlite::Connection::open(db).expect("open state");
        conn.execute_batch(sql).expect("tamper");
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM events WHERE content LIKE '%mallory%'",
                [],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(n, 1);
    }
}

/// `audit export` as JSON Lines (verifiable with `audit verify --file`) and as CSV, to a file
/// and to standard output, filtered by environment.
#[test]
fn audit_export_in_both_formats() {
    let w = World::new("export", &[]);
    let digest = w.push("v1.0.0", 11);
    w.promote_through("v1.0.0", "prod");
    w.ws.run(&["lock", "prod", "--reason", "freeze", "--actor", "ops"])
        .ok();
    let total = w.ws.history().len();
    assert_eq!(total, 5);

    // JSON Lines to a file.
    let Output::Export {
        format,
        events,
        out,
    } =
        w.ws.run(&[
            "--output",
            "json",
            "audit",
            "export",
            "--format",
            "jsonl",
            "--out",
            "trail.jsonl",
        ])
        .ok()
        .output()
    else {
        panic!()
    };
    assert_eq!((format.as_str(), events), ("jsonl", total as u64));
    assert!(out.ends_with("trail.jsonl"));
    let jsonl = std::fs::read_to_string(w.ws.join("trail.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), total);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["seq"], i as u64 + 1, "{l}");
        assert!(l["hash"].as_str().is_some_and(|h| h.len() == 64), "{l}");
    }
    assert!(jsonl.contains(digest.as_str()));
    let Output::Verify(v) =
        w.ws.run(&[
            "--output",
            "json",
            "audit",
            "verify",
            "--file",
            "trail.jsonl",
        ])
        .ok()
        .output()
    else {
        panic!()
    };
    assert!(v.intact && v.events == total as u64, "{v:?}");
    // An edited export fails to verify.
    w.ws.write("edited.jsonl", &jsonl.replacen("ci-staging", "mallory", 1));
    w.ws.run(&["audit", "verify", "--file", "edited.jsonl"])
        .expect(exit::INTEGRITY);

    // CSV on standard output.
    let csv_run = w.ws.run(&["audit", "export", "--format", "csv"]);
    let mut reader = csv::Reader::from_reader(csv_run.ok().stdout.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    for column in ["seq", "kind", "environment", "digest", "hash"] {
        assert!(
            header.iter().any(|h| h == column),
            "no {column} in {header:?}"
        );
    }
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), total);
    let env_col = header.iter().position(|h| h == "environment").unwrap();

    // CSV to a file, prod only.
    w.ws.run(&[
        "audit", "export", "--format", "csv", "--env", "prod", "--out", "prod.csv",
    ])
    .ok();
    let mut reader = csv::Reader::from_path(w.ws.join("prod.csv")).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows.iter().all(|r| &r[env_col] == "prod"), "{rows:?}");
    // No temporary file is left next to the output.
    let leftovers: Vec<_> = std::fs::read_dir(w.ws.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("floe-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
