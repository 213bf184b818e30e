//! End to end: promotion windows through the built binary over OCI image-layout directories:
//! `floe envs` shows whether promotion is open and when it opens next, a promotion in a closed
//! window is refused (and its dry run lists the blocker), and `--override-window --reason`
//! promotes and records `window_overridden`.

mod common;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use common::{Workspace, image_layout};
use floe_promotion::config::WindowKind;
use floe_promotion::history::{EventKind, Payload, WindowOverridden};
use floe_promotion_cli::exit;
use floe_promotion_cli::output::{Output, WindowOutput};

/// dev, then staging frozen from an hour ago until `end`, then prod with an allow window that
/// is always active.
fn workspace(end: DateTime<Utc>) -> Workspace {
    let start = Utc::now().trunc_subsecs(0) - Duration::hours(1);
    let manifest = format!(
        "artifacts:
  promotion:
    signature_enforcement: off
    environments:
      - name: dev
        repository: oci-layout:./registry/dev
      - name: staging
        repository: oci-layout:./registry/staging
        windows:
          - kind: deny
            start: {}
            end: {}
            reason: release freeze
      - name: prod
        repository: oci-layout:./registry/prod
        windows:
          - {{ kind: allow, rrule: \"FREQ=DAILY;BYHOUR=0\", duration: 24h, timezone: Asia/Kolkata, reason: every day }}
",
        start.to_rfc3339(),
        end.to_rfc3339()
    );
    let ws = Workspace::new(&manifest);
    image_layout(&ws.join("registry/dev/app"), "v1.0.0", 7);
    ws
}

const PROMOTE: &[&str] = &[
    "promote",
    "app:v1.0.0",
    "--from",
    "dev",
    "--to",
    "staging",
    "--actor",
    "ci",
];

#[test]
fn envs_shows_open_and_next_open() {
    let end = Utc::now().trunc_subsecs(0) + Duration::days(2);
    let ws = workspace(end);
    let Output::Envs { environments } = ws.run(&["--output", "json", "envs"]).ok().output() else {
        panic!("not an envs output")
    };
    assert_eq!(environments.len(), 3);
    assert_eq!(environments[0].window, WindowOutput::default());
    assert!(environments[0].window.open);
    let staging = &environments[1];
    assert_eq!(
        staging.window,
        WindowOutput {
            open: false,
            closed_by: Some("deny".into()),
            reason: Some("release freeze".into()),
            next_open: Some(end),
        }
    );
    assert_eq!(staging.windows.len(), 1);
    assert!(
        staging.windows[0].starts_with("deny ") && staging.windows[0].ends_with(": release freeze"),
        "{:?}",
        staging.windows
    );
    assert!(environments[2].window.open);
    assert!(
        environments[2].windows[0].contains("FREQ=DAILY;BYHOUR=0 for 1day (Asia/Kolkata)"),
        "{:?}",
        environments[2].windows
    );

    // The raw JSON names the members a script reads.
    let raw: serde_json::Value = ws.run(&["--output", "json", "envs"]).ok().json();
    let window = &raw["environments"][1]["window"];
    assert_eq!(window["open"], false);
    assert_eq!(window["closed_by"], "deny");
    assert_eq!(
        window["next_open"]
            .as_str()
            .map(|s| s.parse::<DateTime<Utc>>().unwrap()),
        Some(end)
    );

    let text = ws.run(&["envs"]).ok().stdout.clone();
    assert!(
        text.contains(&format!(
            "promotion closed (deny window): release freeze; opens next at {}",
            end.to_rfc3339()
        )),
        "{text}"
    );
    assert!(text.contains("promotion open now"), "{text}");
}

#[test]
fn a_closed_window_refuses_and_override_window_promotes_and_records() {
    let end = Utc::now().trunc_subsecs(0) + Duration::days(2);
    let ws = workspace(end);

    let line = ws.run(PROMOTE).one_error_line(exit::POLICY_VIOLATION);
    assert!(line.contains("release freeze"), "{line}");
    assert!(line.contains("opens next at"), "{line}");
    assert!(!ws.join("registry/staging/app").join("index.json").exists());

    // The dry run lists the closed window as a blocker, with the real run's exit code.
    let mut dry = PROMOTE.to_vec();
    dry.push("--dry-run");
    let mut json = vec!["--output", "json"];
    json.extend_from_slice(&dry);
    let run = ws.run(&json);
    run.expect(exit::POLICY_VIOLATION);
    let Output::Plan(plan) = run.output() else {
        panic!("not a plan")
    };
    assert!(!plan.would_succeed);
    assert!(
        plan.blockers
            .iter()
            .any(|b| b.message.contains("release freeze") && b.exit_code == exit::POLICY_VIOLATION),
        "{:?}",
        plan.blockers
    );

    // --override-window needs --reason.
    let mut bare = PROMOTE.to_vec();
    bare.push("--override-window");
    let line = ws.run(&bare).one_error_line(exit::USAGE);
    assert!(line.contains("--reason"), "{line}");
    let mut blank = bare.clone();
    blank.extend_from_slice(&["--reason", "  "]);
    ws.run(&blank).one_error_line(exit::USAGE);

    // Break-glass with a reason: promoted, shown, recorded.
    let mut over = bare.clone();
    over.extend_from_slice(&["--reason", "hotfix for incident 7"]);
    let text = ws.run(&over).ok().stdout.clone();
    assert!(
        text.contains("promotion window overridden: hotfix for incident 7"),
        "{text}"
    );
    assert!(ws.join("registry/staging/app").join("index.json").exists());
    let events = ws.history();
    let overridden: Vec<_> = events
        .iter()
        .filter(|e| e.record.kind == EventKind::WindowOverridden)
        .collect();
    assert_eq!(overridden.len(), 1, "{events:?}");
    assert_eq!(
        overridden[0].record.payload().unwrap(),
        Payload::WindowOverridden(WindowOverridden::new(
            WindowKind::Deny,
            "release freeze",
            "hotfix for incident 7"
        ))
    );
    ws.run(&["audit", "verify"]).ok();
    let export = ws
        .run(&["audit", "export", "--format", "jsonl"])
        .ok()
        .stdout
        .clone();
    assert!(export.contains("\"window_overridden\""), "{export}");
}
