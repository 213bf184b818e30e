//! What `floe` cannot reach or write: an unreachable registry, an unwritable state file, an
//! unwritable export path.

use floe_promotion::history::EventKind;
use floe_promotion_cli::exit;
use floe_promotion_cli::output::Output;

use super::World;
use crate::common::{Workspace, closed_port, three_env_manifest};

#[test]
fn an_unreachable_registry_is_unavailable() {
    let port = closed_port();
    let host = format!("127.0.0.1:{port}");
    let ws = Workspace::new(&three_env_manifest(&host, &format!("{host}/floe"), &[]));
    let started = std::time::Instant::now();
    let line = ws
        .run(&["promote", "app:v1.0.0", "--from", "dev", "--to", "staging"])
        .one_error_line(exit::UNAVAILABLE);
    assert!(line.contains(&host), "{line}");
    let doc = ws
        .run(&[
            "--output",
            "json",
            "promote",
            "app:v1.0.0",
            "--from",
            "dev",
            "--to",
            "staging",
        ])
        .json_error(exit::UNAVAILABLE);
    assert!(doc.error.contains(&host), "{doc:?}");
    // A dry run reports the registry as its blocker, with the same exit code.
    let dry = ws.run(&[
        "--output",
        "json",
        "promote",
        "app:v1.0.0",
        "--from",
        "dev",
        "--to",
        "staging",
        "--dry-run",
    ]);
    let Output::Plan(plan) = dry.expect(exit::UNAVAILABLE).output() else {
        panic!()
    };
    assert!(!plan.would_succeed);
    assert_eq!(plan.blockers[0].exit_code, exit::UNAVAILABLE, "{plan:?}");
    assert!(plan.blockers[0].message.contains(&host), "{plan:?}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    // Nothing runs anywhere, and the attempt is on record as failed.
    let Output::Status { environments } = ws.run(&["--output", "json", "status"]).ok().output()
    else {
        panic!()
    };
    assert!(environments.iter().all(|e| e.deployments.is_empty()));
    let kinds: Vec<EventKind> = ws.history().iter().map(|e| e.record.kind).collect();
    assert_eq!(
        kinds,
        [
            EventKind::PromotionRequested,
            EventKind::PromotionFailed,
            EventKind::PromotionRequested,
            EventKind::PromotionFailed
        ]
    );
}

#[test]
fn an_unwritable_state_file_is_one_line() {
    let w = World::new("state");
    let before = w.snapshot();
    w.ws.write("not-a-dir", "a file");
    for state in [
        "not-a-dir/state.db",
        "not-a-dir/deeper/state.db",
        "/proc/floe-e2e/state.db",
    ] {
        for args in [
            &[
                "--state",
                state,
                "promote",
                "app:v1.0.0",
                "--from",
                "staging",
                "--to",
                "prod",
            ][..],
            &["--state", state, "lock", "prod", "--reason", "x"],
            &["--state", state, "status"],
        ] {
            let line = w.ws.run(args).one_error_line(exit::FAILURE);
            assert!(line.contains(state), "{line}");
            let mut json = vec!["--output", "json"];
            json.extend_from_slice(args);
            w.ws.run(&json).json_error(exit::FAILURE);
        }
    }
    // The state file is a directory.
    std::fs::create_dir_all(w.ws.join("dir.db")).unwrap();
    w.ws.run(&["--state", "dir.db", "status"])
        .one_error_line(exit::FAILURE);
    assert_eq!(
        std::fs::read_to_string(w.ws.join("not-a-dir")).unwrap(),
        "a file"
    );
    assert_eq!(w.snapshot(), before);
    if !running_as_root() {
        // A read-only directory (root ignores permissions, so only checked as another user).
        use std::os::unix::fs::PermissionsExt;
        let ro = w.ws.join("ro");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        let line =
            w.ws.run(&["--state", "ro/state.db", "lock", "prod", "--reason", "x"])
                .one_error_line(exit::FAILURE);
        assert!(line.contains("ro/state.db"), "{line}");
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

#[test]
fn export_to_an_unwritable_path_names_it() {
    let ws = Workspace::new(
        "artifacts:\n  promotion:\n    environments:\n      - name: dev\n        repository: oci-layout:./dev\n      - name: prod\n        repository: oci-layout:./prod\n",
    );
    ws.run(&["lock", "prod", "--reason", "x", "--actor", "ops"])
        .ok();
    ws.write("a-file", "");
    for out in ["nodir/trail.jsonl", "a-file/trail.jsonl"] {
        let line = ws
            .run(&["audit", "export", "--format", "jsonl", "--out", out])
            .one_error_line(exit::FAILURE);
        assert!(line.contains(out), "{line}");
        assert!(!line.contains("floe-tmp"), "{line}");
    }
    assert!(!ws.join("nodir").exists());
    let leftovers: Vec<_> = std::fs::read_dir(ws.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("floe-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
