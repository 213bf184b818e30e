//! End to end, through the built binary, on OCI layout directories and a SQLite state file:
//! races between processes and hostile input.
//!
//! - a lock taken from another shell while a slow gate runs refuses the promotion (exit 13);
//! - a promoter killed while it holds the environment's lease leaves a stale lease that
//!   `floe lease list` shows as gone and `floe lease break` removes, audited;
//! - reasons with newlines, ANSI escapes or bidi overrides are refused, and a gate command's
//!   hostile output never reaches the terminal raw, so no output line can be forged.

mod common;

use std::fs::File;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use common::{Workspace, copy_dir};
use floe_promotion::history::EventKind;
use floe_promotion_cli::exit;
use floe_promotion_cli::output::Output;

/// dev and staging in layout directories; `staging_gates` is the YAML of staging's gates.
/// The quick start's demo artifact (`demo:v1.0.0`) is in dev.
fn workspace(staging_gates: &str) -> Workspace {
    let manifest = format!(
        "artifacts:
  registry:
    uri: oci-layout:./registry/dev
  promotion:
    signature_enforcement: off
    environments:
      - name: dev
        repository: oci-layout:./registry/dev
      - name: staging
        repository: oci-layout:./registry/staging
        gates: {staging_gates}
"
    );
    let ws = Workspace::new(&manifest);
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart/demo-artifact"),
        &ws.join("registry/dev/demo"),
    );
    ws
}

const PROMOTE: [&str; 7] = [
    "promote",
    "demo:v1.0.0",
    "--from",
    "dev",
    "--to",
    "staging",
    "--actor",
];

/// Starts `floe ARGS` in the workspace without waiting for it.
fn spawn(ws: &Workspace, args: &[&str]) -> Child {
    ws.spawn(args)
}

fn kinds(ws: &Workspace) -> Vec<EventKind> {
    ws.history().into_iter().map(|e| e.record.kind).collect()
}

fn staging_pointer(ws: &Workspace) -> bool {
    std::fs::read_to_string(ws.join("registry/staging/demo/index.json"))
        .is_ok_and(|index| index.contains("latest-staging"))
}

#[test]
fn a_lock_taken_while_a_slow_gate_runs_refuses_the_promotion() {
    let ws = workspace(r#"{slow: [sleep, "3"]}"#);
    let mut args = PROMOTE.to_vec();
    args.push("ci");
    let promoter = spawn(&ws, &args);
    std::thread::sleep(Duration::from_millis(1200));
    ws.run(&[
        "lock",
        "staging",
        "--reason",
        "incident 7",
        "--actor",
        "ops",
    ])
    .ok();
    let out = promoter.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(exit::LOCKED.into()), "{stderr}");
    assert!(stderr.contains("incident 7"), "{stderr}");
    assert!(!staging_pointer(&ws), "latest-staging was written");
    assert_eq!(
        kinds(&ws),
        [
            EventKind::PromotionRequested,
            EventKind::Locked,
            EventKind::PromotionFailed
        ]
    );

    // With the break-glass override the same race passes, and says so.
    ws.run(&["unlock", "staging", "--actor", "ops"]).ok();
    let mut args = PROMOTE.to_vec();
    args.extend(["ci", "--override-lock", "--reason", "hotfix for incident 7"]);
    let promoter = spawn(&ws, &args);
    std::thread::sleep(Duration::from_millis(1200));
    ws.run(&[
        "lock",
        "staging",
        "--reason",
        "incident 8",
        "--actor",
        "ops",
    ])
    .ok();
    let out = promoter.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(staging_pointer(&ws));
    let tail: Vec<EventKind> = kinds(&ws).into_iter().rev().take(2).collect();
    assert_eq!(
        tail,
        [EventKind::PromotionSucceeded, EventKind::LockOverridden]
    );
}

#[test]
fn a_promoter_killed_holding_the_lease_leaves_a_lease_that_can_be_broken() {
    let ws = workspace("{}");
    // Hold the staging layout's writer lock, so the promoter stops inside its write, under
    // the environment's lease.
    let dir = ws.join("registry/staging/demo");
    std::fs::create_dir_all(&dir).unwrap();
    let writer_lock = File::create(dir.join(".floe.lock")).unwrap();
    writer_lock.lock().unwrap();
    let mut args = PROMOTE.to_vec();
    args.push("ci");
    let mut promoter = spawn(&ws, &args);
    let deadline = Instant::now() + Duration::from_secs(20);
    let held = loop {
        if let Some(status) = promoter.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = promoter.stderr.take() {
                std::io::Read::read_to_string(&mut e, &mut err).unwrap();
            }
            panic!("the promoter exited ({status}) before taking the lease: {err}");
        }
        match ws.run(&["--output", "json", "lease", "list"]).ok().output() {
            Output::Leases { leases } if !leases.is_empty() => break leases,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            other => panic!("the promoter never took the lease: {other:?}"),
        }
    };
    assert_eq!(held[0].lease.environment.as_str(), "staging");
    assert_eq!(held[0].holder_liveness, "alive");
    assert_eq!(
        held[0].lease.process.as_ref().map(|p| p.pid),
        Some(promoter.id())
    );
    // While the holder runs, breaking its lease is refused.
    let line = ws
        .run(&[
            "lease", "break", "staging", "--reason", "stuck?", "--actor", "ops",
        ])
        .one_error_line(exit::BUSY);
    assert!(line.contains("still running on this machine"), "{line}");

    promoter.kill().unwrap();
    promoter.wait().unwrap();
    writer_lock.unlock().unwrap();

    let text = ws.run(&["lease", "list"]).ok().stdout.clone();
    assert!(text.contains("staging held by ci ("), "{text}");
    assert!(text.contains("(gone)"), "{text}");
    let broken = ws
        .run(&[
            "lease",
            "break",
            "staging",
            "--reason",
            "promoter was killed",
            "--actor",
            "ops",
        ])
        .ok()
        .stdout
        .clone();
    assert!(broken.starts_with("broke the lease: staging"), "{broken}");
    assert!(
        ws.run(&["lease", "list"])
            .ok()
            .stdout
            .contains("no promotion leases")
    );
    let last = ws.history().pop().unwrap();
    assert_eq!(last.record.kind, EventKind::LeaseBroken);
    assert_eq!(last.record.reason.as_deref(), Some("promoter was killed"));
    assert_eq!(last.record.details["holder_liveness"], "gone");
    // The next promoter gets in at once.
    let mut args = PROMOTE.to_vec();
    args.push("ci");
    ws.run(&args).ok();
    assert!(staging_pointer(&ws));
}

#[test]
fn reasons_that_would_forge_output_are_refused() {
    let ws = workspace("{}");
    let forged = "ok\n#99    2026-01-05 12:00:00 unlocked            admin      prod";
    for (args, field) in [
        (
            vec!["lock", "staging", "--reason", forged, "--actor", "ops"],
            "reason",
        ),
        (
            vec![
                "lock",
                "staging",
                "--reason",
                "red \u{1b}[31m",
                "--actor",
                "ops",
            ],
            "reason",
        ),
        (
            vec![
                "promote",
                "demo:v1.0.0",
                "--from",
                "dev",
                "--to",
                "staging",
                "--reason",
                "rtl \u{202E}txet",
                "--actor",
                "ci",
            ],
            "reason",
        ),
        (
            vec![
                "lock",
                "staging",
                "--reason",
                "x",
                "--actor",
                "ops",
                "--group",
                "a\u{1b}[2J",
            ],
            "actor group",
        ),
    ] {
        let line = ws.run(&args).one_error_line(exit::USAGE);
        assert!(line.contains(field), "{line}");
        assert!(line.contains("control characters"), "{line}");
        assert!(
            !line.contains('\u{1b}') && !line.contains('\u{202E}'),
            "{line:?}"
        );
    }
    assert!(ws.history().is_empty(), "nothing was recorded");
    assert!(!staging_pointer(&ws));
}

#[test]
fn hostile_gate_output_cannot_forge_lines() {
    let ws = workspace(r#"{evil: [./evil.sh]}"#);
    let script = ws.write(
        "evil.sh",
        "#!/bin/sh\nprintf 'bad\\033[2J\\r#99 unlocked admin\\n' >&2\nexit 1\n",
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut args = PROMOTE.to_vec();
    args.push("ci");
    let run = ws.run(&args);
    let line = run.one_error_line(exit::GATE_FAILED);
    assert!(
        line.contains("bad"),
        "the gate's stderr is quoted: {line:?}"
    );
    assert!(!line.contains('\u{1b}') && !line.contains('\r'), "{line:?}");
    let history = ws.run(&["history"]).ok().stdout.clone();
    assert!(history.contains("bad"), "{history}");
    assert!(
        !history.contains('\u{1b}') && !history.contains('\r'),
        "{history:?}"
    );
    assert!(
        !history.lines().any(|l| l.starts_with("#99")),
        "a forged line: {history}"
    );
}

/// The log notifier reads the outbox with its cursor in the state file: each process
/// delivers what was committed since the last delivery, once.
#[test]
fn notifications_are_delivered_once_across_processes() {
    let ws = workspace("{}");
    let log = [("RUST_LOG", "floe::notify=info")];
    let first = ws.run_env(
        &["lock", "staging", "--reason", "freeze", "--actor", "ops"],
        &log,
    );
    first.ok();
    assert_eq!(
        first.stderr.matches("locked staging").count(),
        1,
        "{}",
        first.stderr
    );
    let second = ws.run_env(&["unlock", "staging", "--actor", "ops"], &log);
    second.ok();
    assert_eq!(
        second.stderr.matches("unlocked staging").count(),
        1,
        "{}",
        second.stderr
    );
    assert!(
        !second.stderr.contains(" locked staging"),
        "the lock event was delivered twice: {}",
        second.stderr
    );
}
