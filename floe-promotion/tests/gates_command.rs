//! The command gate against real processes: exit codes, argument substitution without a
//! shell, missing programs, and stopping the whole process group on timeout and on drop.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use floe_promotion::gate::{CommandGate, CommandSpec, GateContext, GateStatus, PromotionGate};
use floe_promotion::registry::Manifest;
use floe_promotion::{
    Actor, ArtifactName, EnvName, Error, InMemoryHistory, InMemoryRegistry, Repository, Tag,
};

fn context(source: &str) -> GateContext {
    let manifest = Manifest::from_bytes(
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#.to_vec(),
        None,
    )
    .unwrap();
    GateContext {
        artifact: ArtifactName::new("app").unwrap(),
        version: Tag::new("v1.2.3").unwrap(),
        digest: manifest.digest().clone(),
        manifest,
        source: Repository::new(source).unwrap(),
        from: EnvName::new("dev").unwrap(),
        to: EnvName::new("staging").unwrap(),
        actor: Actor::new("ci").unwrap(),
        now: chrono::Utc::now(),
        registry: Arc::new(InMemoryRegistry::new()),
        history: Arc::new(InMemoryHistory::new()),
    }
}

fn gate(argv: &[&str]) -> CommandGate {
    CommandGate::new("check", CommandSpec::new(argv.iter().copied()).unwrap())
}

/// A process is gone when procfs no longer lists it or lists it as a zombie (orphans are
/// reaped by the system's init, which some containers never run).
fn running(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next());
            !matches!(state, Some("Z" | "X"))
        }
        Err(_) => false,
    }
}

/// Waits until `file` holds `n` pids, one per line.
async fn pids(file: &Path, n: usize) -> Vec<i32> {
    let started = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(file) {
            let pids: Vec<i32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
            if pids.len() >= n {
                return pids;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the command never wrote its pids"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn all_gone_within(pids: &[i32], limit: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if pids.iter().all(|&p| !running(p)) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// A shell script, run as the test's own choice of program, that starts two background sleeps
/// and records the shell's and the sleeps' pids in `file`.
fn group_script(file: &Path, prelude: &str) -> Vec<String> {
    let f = file.display();
    vec![
        "/bin/sh".into(),
        "-c".into(),
        format!(
            "{prelude} sleep 100 & echo $! >> {f}; sleep 100 & echo $! >> {f}; echo $$ >> {f}; wait"
        ),
    ]
}

#[tokio::test]
async fn exit_code_zero_passes_and_nonzero_fails_with_the_last_stderr_line() {
    let ctx = context("mem/floe/app");
    let ok = gate(&["true"]).evaluate(&ctx).await.unwrap();
    assert_eq!(ok.status, GateStatus::Passed, "{}", ok.message);

    let bad = gate(&[
        "/bin/sh",
        "-c",
        "echo first >&2; echo 'ticket CHG-1 is not approved' >&2; echo >&2; exit 3",
    ])
    .evaluate(&ctx)
    .await
    .unwrap();
    assert_eq!(bad.status, GateStatus::Failed);
    assert!(
        bad.message.contains("exited with code 3"),
        "{}",
        bad.message
    );
    assert!(
        bad.message.ends_with("ticket CHG-1 is not approved"),
        "{}",
        bad.message
    );
    assert!(!bad.message.contains("first"), "{}", bad.message);
}

#[tokio::test]
async fn a_long_stderr_line_is_clipped_and_huge_output_does_not_grow_memory() {
    let ctx = context("mem/floe/app");
    // 8 MiB of stdout and a 10 000 character last stderr line.
    let out = gate(&[
        "/bin/sh",
        "-c",
        "head -c 8388608 /dev/zero; printf 'x%.0s' $(seq 10000) >&2; exit 1",
    ])
    .evaluate(&ctx)
    .await
    .unwrap();
    assert_eq!(out.status, GateStatus::Failed);
    assert!(out.message.chars().count() < 400, "{}", out.message.len());
    assert!(out.message.ends_with("xxx…"), "{}", out.message);
}

#[tokio::test]
async fn placeholders_are_substituted_and_each_argument_stays_one_argument() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("pwned");
    let evil = format!(
        "a b; touch {} $(touch {}) `touch {}` | &",
        marker.display(),
        marker.display(),
        marker.display()
    );
    let ctx = context("oci-layout:/reg/dev/app");
    let out_file = dir.path().join("args");
    // printf writes each argument on its own line; the shell only redirects, its script is
    // fixed and the arguments arrive as "$@".
    let spec = CommandSpec::new([
        "/bin/sh".to_string(),
        "-c".to_string(),
        format!(
            "printf '%s\\n' \"$@\" > {}; env | grep ^FLOE_ | sort >> {}",
            out_file.display(),
            out_file.display()
        ),
        "sh".to_string(),
        "--image=${ARTIFACT_REF}".to_string(),
        "${ARTIFACT_DIGEST}".to_string(),
        evil.clone(),
    ])
    .unwrap();
    let outcome = CommandGate::new("args", spec).evaluate(&ctx).await.unwrap();
    assert_eq!(outcome.status, GateStatus::Passed, "{}", outcome.message);
    let text = std::fs::read_to_string(&out_file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let reference = format!("oci-layout:/reg/dev/app@{}", ctx.digest);
    assert_eq!(lines[0], format!("--image={reference}"));
    assert_eq!(lines[1], ctx.digest.as_str());
    assert_eq!(lines[2], evil);
    assert!(!marker.exists(), "an argument was interpreted by a shell");
    let env: Vec<&str> = lines[3..].to_vec();
    assert_eq!(
        env,
        vec![
            "FLOE_ARTIFACT=app".to_string(),
            format!("FLOE_ARTIFACT_REF={reference}"),
            format!("FLOE_DIGEST={}", ctx.digest),
            "FLOE_FROM=dev".to_string(),
            "FLOE_TO=staging".to_string(),
            "FLOE_VERSION=v1.2.3".to_string(),
        ]
    );
}

#[tokio::test]
async fn the_program_itself_is_never_run_through_a_shell() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("pwned");
    let ctx = context("mem/floe/app");
    let line = format!("true; touch {}", marker.display());
    let err = gate(&[line.as_str()]).evaluate(&ctx).await.unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert!(!marker.exists());
}

#[tokio::test]
async fn a_missing_program_is_an_io_error_naming_it() {
    let ctx = context("mem/floe/app");
    let err = gate(&["/nonexistent/floe-check", "--x"])
        .evaluate(&ctx)
        .await
        .unwrap_err();
    match &err {
        Error::Io { context, source } => {
            assert!(context.contains("/nonexistent/floe-check"), "{err}");
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected an Io error, got {other:?}"),
    }
}

#[tokio::test]
async fn the_timeout_stops_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pids");
    let spec = CommandSpec::new(group_script(&file, ""))
        .unwrap()
        .with_timeout(Duration::from_millis(700));
    let gate = CommandGate::new("slow", spec);
    assert!(gate.timeout().unwrap() > Duration::from_millis(700));
    let ctx = context("mem/floe/app");
    let started = Instant::now();
    let outcome = gate.evaluate(&ctx).await.unwrap();
    let took = started.elapsed();
    assert_eq!(outcome.status, GateStatus::Failed);
    assert!(
        outcome.message.contains("timed out after 700ms"),
        "{}",
        outcome.message
    );
    assert!(took < Duration::from_secs(4), "took {took:?}");
    let pids = pids(&file, 3).await;
    for pid in &pids {
        assert!(!running(*pid), "pid {pid} survived the timeout");
    }
}

#[tokio::test]
async fn a_group_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pids");
    let spec = CommandSpec::new(group_script(&file, "trap '' TERM;"))
        .unwrap()
        .with_timeout(Duration::from_millis(300));
    let ctx = context("mem/floe/app");
    let started = Instant::now();
    let outcome = CommandGate::new("stubborn", spec)
        .evaluate(&ctx)
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(outcome.status, GateStatus::Failed, "{}", outcome.message);
    // SIGTERM at 0.3 s is ignored; SIGKILL follows the 5 s grace period.
    assert!(took >= Duration::from_secs(5), "took {took:?}");
    assert!(took < Duration::from_secs(9), "took {took:?}");
    for pid in pids(&file, 3).await {
        assert!(!running(pid), "pid {pid} survived SIGKILL");
    }
}

#[tokio::test]
async fn dropping_the_evaluation_stops_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pids");
    let gate = CommandGate::new("slow", CommandSpec::new(group_script(&file, "")).unwrap());
    let ctx = context("mem/floe/app");
    let evaluation = gate.evaluate(&ctx);
    let gave_up = tokio::time::timeout(Duration::from_millis(500), evaluation).await;
    assert!(
        gave_up.is_err(),
        "the command should still have been running"
    );
    let pids = pids(&file, 3).await;
    assert!(
        all_gone_within(&pids, Duration::from_secs(3)).await,
        "processes {pids:?} survived the dropped evaluation"
    );
}

#[tokio::test]
async fn the_gate_runner_timeout_stops_the_command_too() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pids");
    let gate: Arc<dyn PromotionGate> = Arc::new(CommandGate::new(
        "slow",
        CommandSpec::new(group_script(&file, "")).unwrap(),
    ));
    let ctx = context("mem/floe/app");
    let results = floe_promotion::gate::run_gates(&[gate], &ctx, Duration::from_millis(500)).await;
    assert_eq!(results[0].status, GateStatus::TimedOut);
    let pids = pids(&file, 3).await;
    assert!(
        all_gone_within(&pids, Duration::from_secs(3)).await,
        "processes {pids:?} survived the runner's timeout"
    );
}

#[tokio::test]
async fn processes_left_behind_by_a_finished_command_are_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pids");
    let f = file.display();
    let script = format!("sleep 100 > /dev/null 2>&1 & echo $! >> {f}; exit 0");
    let started = Instant::now();
    let outcome = gate(&["/bin/sh", "-c", &script])
        .evaluate(&context("mem/floe/app"))
        .await
        .unwrap();
    assert_eq!(outcome.status, GateStatus::Passed);
    assert!(started.elapsed() < Duration::from_secs(3));
    for pid in pids(&file, 1).await {
        assert!(!running(pid), "background pid {pid} outlived its gate");
    }
}

#[tokio::test]
async fn extra_environment_and_working_directory_apply() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = CommandSpec::new([
        "/bin/sh",
        "-c",
        "test \"$GREETING\" = hello && test -f here",
    ])
    .unwrap();
    spec.env.insert("GREETING".into(), "hello".into());
    spec.working_dir = Some(dir.path().to_path_buf());
    let ctx = context("mem/floe/app");
    let gate = CommandGate::new("env", spec);
    assert_eq!(
        gate.evaluate(&ctx).await.unwrap().status,
        GateStatus::Failed
    );
    std::fs::write(dir.path().join("here"), b"").unwrap();
    assert_eq!(
        gate.evaluate(&ctx).await.unwrap().status,
        GateStatus::Passed
    );
}
