//! End to end: the quick start (environments in OCI image-layout directories, no server) run
//! through the built binary, and the shell completions.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{FLOE, Workspace, copy_dir};
use floe_promotion::Digest;
use floe_promotion::history::EventKind;
use floe_promotion::manager::Outcome;
use floe_promotion_cli::exit;
use floe_promotion_cli::output::{AttestOutput, Output};
use floe_promotion_oci::testing::skopeo;

fn quickstart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart")
}

/// The quick start's workspace: its manifest, and the demo artifact pushed into dev.
fn workspace() -> Workspace {
    let manifest = std::fs::read_to_string(quickstart().join("manifest.yaml")).unwrap();
    let ws = Workspace::new(&manifest);
    copy_dir(
        &quickstart().join("demo-artifact"),
        &ws.join("registry/dev/demo"),
    );
    ws
}

/// The digest skopeo reads at `oci:DIR:TAG`.
fn layout_digest(dir: &Path, tag: &str) -> Digest {
    let out = skopeo(&[
        "inspect",
        "--format",
        "{{.Digest}}",
        &format!("oci:{}:{tag}", dir.display()),
    ]);
    Digest::new(String::from_utf8_lossy(&out).trim()).unwrap()
}

/// `scripts/quickstart.sh`, step by step: attest, automatic promotion to staging, dry run and promote to
/// prod (separation of duties: another actor), status, history, verify. skopeo reads the same
/// digest in every environment's layout.
#[test]
fn quick_start_promotes_through_layout_directories() {
    let ws = workspace();
    let dev_dir = ws.join("registry/dev/demo");
    let digest = layout_digest(&dev_dir, "v1.0.0");

    let text = ws.run(&["envs"]).ok().stdout.clone();
    assert!(
        text.contains("1. dev") && text.contains("3. prod"),
        "{text}"
    );

    // Without test evidence the staging gate refuses.
    let line = ws
        .run(&[
            "promote",
            "demo:v1.0.0",
            "--from",
            "dev",
            "--to",
            "staging",
            "--actor",
            "ci",
        ])
        .one_error_line(exit::GATE_FAILED);
    assert!(line.contains("tests"), "{line}");
    assert!(!ws.join("registry/staging/demo").join("index.json").exists());

    let attest = ws.run(&[
        "--output",
        "json",
        "attest",
        "demo:v1.0.0",
        "--env",
        "dev",
        "--kind",
        "tests",
        "--status",
        "passed",
        "--actor",
        "ci",
    ]);
    let Output::Attest(AttestOutput {
        digest: attested, ..
    }) = attest.ok().output()
    else {
        panic!()
    };
    assert_eq!(attested, digest);

    // staging has `auto_promote: { from: dev, soak: 0s }`: one pass promotes the release.
    let Output::Auto(pass) = ws
        .run(&["--output", "json", "auto", "--actor", "ci"])
        .ok()
        .output()
    else {
        panic!()
    };
    let staging: Vec<_> = pass
        .decisions
        .iter()
        .filter(|d| d.environment.as_str() == "staging")
        .map(|d| (d.action, d.candidate.as_ref().map(|c| c.digest.clone())))
        .collect();
    assert_eq!(
        staging,
        [(
            floe_promotion::orchestrate::AutoAction::Promoted,
            Some(digest.clone())
        )]
    );
    // The promoter into staging may not promote out of it.
    ws.run(&[
        "promote",
        "demo:v1.0.0",
        "--from",
        "staging",
        "--to",
        "prod",
        "--actor",
        "ci",
    ])
    .one_error_line(exit::SEPARATION_OF_DUTIES);

    let dry = ws.run(&[
        "--output",
        "json",
        "promote",
        "demo:v1.0.0",
        "--from",
        "staging",
        "--to",
        "prod",
        "--actor",
        "release-manager",
        "--dry-run",
    ]);
    let Output::Plan(plan) = dry.ok().output() else {
        panic!()
    };
    assert!(plan.would_succeed, "{plan:?}");
    assert!(!ws.join("registry/prod").exists(), "a dry run wrote prod");

    let run = ws.run(&[
        "promote",
        "demo:v1.0.0",
        "--from",
        "staging",
        "--to",
        "prod",
        "--actor",
        "release-manager",
    ]);
    assert!(run.ok().stdout.contains("promoted demo:v1.0.0"), "{run:?}");

    for (env, tag) in [
        ("dev", "v1.0.0"),
        ("staging", "v1.0.0-staging"),
        ("staging", "latest-staging"),
        ("prod", "v1.0.0-prod"),
        ("prod", "latest-prod"),
    ] {
        assert_eq!(
            layout_digest(&ws.join(&format!("registry/{env}/demo")), tag),
            digest,
            "{env}:{tag}"
        );
    }

    let Output::Status { environments } = ws.run(&["--output", "json", "status"]).ok().output()
    else {
        panic!()
    };
    let prod = &environments[2].deployments[0];
    assert_eq!(prod.deployment.digest, digest);
    assert_eq!(prod.deployment.by, "release-manager");
    assert!(prod.repository.as_str().starts_with("oci-layout:"));

    let kinds: Vec<EventKind> = ws.history().iter().map(|e| e.record.kind).collect();
    assert_eq!(kinds.first(), Some(&EventKind::PromotionRequested));
    assert_eq!(kinds.last(), Some(&EventKind::PromotionSucceeded));
    assert!(kinds.contains(&EventKind::EvidenceAttached));

    let verify = ws.run(&["audit", "verify"]);
    assert!(verify.ok().stdout.contains("intact"), "{verify:?}");
}

/// Promoting the version an environment already runs again is idempotent, as Kargo and crane
/// users expect: exit 0, "already promoted", no tag written, the layout untouched. Rolling back
/// to the version that runs is what exit 9's "already current" means.
#[test]
fn promoting_the_current_version_again_succeeds_and_writes_nothing() {
    let ws = workspace();
    let promote = [
        "promote",
        "demo:v1.0.0",
        "--from",
        "dev",
        "--to",
        "staging",
        "--actor",
        "ci",
    ];
    ws.run(&[
        "attest",
        "demo:v1.0.0",
        "--env",
        "dev",
        "--kind",
        "tests",
        "--status",
        "passed",
        "--actor",
        "ci",
    ])
    .ok();
    let first = ws.run(&promote);
    assert!(
        first.ok().stdout.starts_with("promoted demo:v1.0.0"),
        "{first:?}"
    );
    let index = ws.join("registry/staging/demo/index.json");
    let before = std::fs::read(&index).unwrap();

    let again = ws.run(&promote);
    assert!(
        again
            .ok()
            .stdout
            .starts_with("already promoted demo:v1.0.0"),
        "{again:?}"
    );
    assert!(again.stdout.contains("nothing written"), "{again:?}");
    assert!(!again.stdout.contains("wrote"), "{again:?}");
    let mut json = vec!["--output", "json"];
    json.extend_from_slice(&promote);
    let Output::Promote(record) = ws.run(&json).ok().output() else {
        panic!("not a promotion")
    };
    assert_eq!(record.outcome, Outcome::AlreadyPromoted);
    assert!(record.tags_written.is_empty(), "{record:?}");
    assert_eq!(
        std::fs::read(&index).unwrap(),
        before,
        "a re-promotion wrote"
    );
    // The history says what happened: a request and a no-op success.
    let last = ws.history().pop().unwrap().record;
    assert_eq!(last.kind, EventKind::PromotionSucceeded);
    assert_eq!(
        last.details.get("noop").map(String::as_str),
        Some("true"),
        "{last:?}"
    );

    let line = ws
        .run(&[
            "rollback", "--env", "staging", "--to", "v1.0.0", "--reason", "again",
        ])
        .one_error_line(exit::INVALID_TRANSITION);
    assert!(line.contains("already the current version"), "{line}");
}

/// The shipped script runs the same steps; its manifest stays valid for the binary.
#[test]
fn quick_start_manifest_is_what_the_script_uses() {
    let script = std::fs::read_to_string(quickstart().join("../../scripts/quickstart.sh")).unwrap();
    for step in [
        "attest demo:v1.0.0 --env dev --kind tests --status passed",
        "auto --actor ci",
        "promote demo:v1.0.0 --from staging --to prod",
        "audit verify",
    ] {
        assert!(
            script.contains(step),
            "the quick start no longer runs `{step}`"
        );
    }
    let ws = workspace();
    let Output::Envs { environments } = ws.run(&["--output", "json", "envs"]).ok().output() else {
        panic!()
    };
    assert_eq!(environments.len(), 3);
}

/// `floe completions SHELL` prints a script the shell accepts.
#[test]
fn completions_for_bash_zsh_and_fish() {
    let ws = Workspace::new("");
    let bash = ws.run(&["completions", "bash"]);
    assert!(bash.ok().stdout.contains("_floe()"), "{bash:?}");
    for sub in ["promote", "rollback", "status", "audit"] {
        assert!(
            bash.stdout.contains(sub),
            "no {sub} in the bash completions"
        );
    }
    // bash loads it and registers the completion for `floe`.
    let script = ws.write("floe.bash", &bash.stdout);
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p floe", script.display()))
        .output()
        .expect("running bash");
    assert!(
        out.status.success(),
        "bash rejected the script: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("floe"));

    let zsh = ws.run(&["completions", "zsh"]);
    assert!(zsh.ok().stdout.starts_with("#compdef floe"), "{zsh:?}");
    let fish = ws.run(&["completions", "fish"]);
    assert!(fish.ok().stdout.contains("complete -c floe"), "{fish:?}");

    ws.run(&["completions", "tcsh"]).one_error_line(exit::USAGE);
    // Completions need no manifest and write no state.
    assert!(!ws.join(".floe").exists());
    assert!(Path::new(FLOE).exists());
}

/// `floe status` sizes its columns to their content: a long actor name widens the BY column
/// and the TAGS column stays aligned on every row.
#[test]
fn status_columns_fit_a_long_actor_name() {
    let ws = workspace();
    let actor = "continuous-delivery-bot@build-cluster-eu-west-1.example.com";
    for args in [
        vec![
            "attest",
            "demo:v1.0.0",
            "--env",
            "dev",
            "--kind",
            "tests",
            "--status",
            "passed",
            "--actor",
            "ci",
        ],
        vec![
            "promote",
            "demo:v1.0.0",
            "--from",
            "dev",
            "--to",
            "staging",
            "--actor",
            actor,
        ],
    ] {
        ws.run(&args).ok();
    }
    let text = ws.run(&["status"]).ok().stdout.clone();
    let lines: Vec<&str> = text.lines().take_while(|l| !l.trim().is_empty()).collect();
    let header = lines[0];
    assert!(header.starts_with("ENVIRONMENT"), "{text}");
    let staging = lines
        .iter()
        .find(|l| l.starts_with("staging"))
        .unwrap_or_else(|| panic!("no staging row: {text}"));
    let tags_at = header.find("TAGS").expect("TAGS column");
    let by_at = header.find("BY").expect("BY column");
    assert_eq!(staging.find(actor), Some(by_at), "BY not aligned: {text}");
    assert!(
        tags_at > by_at + actor.len(),
        "TAGS overlaps the actor: {text}"
    );
    assert_eq!(
        &staging[tags_at..],
        "v1.0.0-staging,latest-staging",
        "TAGS not aligned: {text}"
    );
    for row in lines
        .iter()
        .filter(|l| l.starts_with("dev") || l.starts_with("prod"))
    {
        assert_eq!(row.get(tags_at..), Some("-"), "TAGS not aligned: {text}");
    }
}

/// Each command opens the state file anew, and SQLite then reads every frame of its WAL: the
/// command keeps the WAL short (copied into the file once it holds `SHORT_LIVED_WAL_PAGES`
/// pages), where SQLite's default would let 60 commands leave about 540 frames to read.
#[test]
fn commands_keep_the_state_files_wal_short() {
    let ws = workspace();
    for _ in 0..30 {
        ws.run(&["lock", "prod", "--reason", "freeze", "--actor", "ops"])
            .ok();
        ws.run(&["unlock", "prod", "--actor", "ops"]).ok();
    }
    // The second column is the number of frames in the WAL since it last started over.
    let frames: i64 = rusqlite::Connection::open(ws.state())
        .and_then(|c| c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1)))
        .expect("read the WAL");
    let pages = i64::from(floe_promotion_sqlite::SHORT_LIVED_WAL_PAGES);
    assert!((1..=pages + 20).contains(&frames), "{frames} frames");
    assert_eq!(ws.history().len(), 60, "every command recorded its event");
}
