//! End to end: the state in a PostgreSQL database selected by URL (`--state` or `FLOE_STATE`),
//! against a server the test starts itself; the URL's password never shows.

mod common;

use std::path::Path;

use common::{Workspace, copy_dir};
use floe_promotion::history::EventKind;
use floe_promotion_cli::exit;
use floe_promotion_cli::output::{Output, VerifyOutput};
use floe_promotion_postgres::testing::TestPostgres;

const SECRET: &str = "pg-secret-never-shown";

fn workspace() -> Workspace {
    let quickstart = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart");
    let manifest = std::fs::read_to_string(quickstart.join("manifest.yaml")).unwrap();
    let ws = Workspace::new(&manifest);
    copy_dir(
        &quickstart.join("demo-artifact"),
        &ws.join("registry/dev/demo"),
    );
    ws
}

/// A fresh database's URL, carrying a password (the test server trusts any).
fn database_url() -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = rt.block_on(TestPostgres::shared().fresh_database());
    url.replacen("postgres@", &format!("postgres:{SECRET}@"), 1)
}

#[test]
fn the_state_lives_in_postgres_when_given_a_url() {
    let ws = workspace();
    let url = database_url();
    let env = [("FLOE_STATE", url.as_str())];

    let attest = ws.run_env(
        &[
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
        &env,
    );
    attest.ok();
    ws.run_env(&["auto", "--actor", "ci"], &env).ok();
    ws.run_env(
        &["lock", "prod", "--reason", "freeze", "--actor", "ops"],
        &env,
    )
    .ok();
    // `--state URL` reaches the same database.
    let refused = ws.run(&[
        "--state",
        &url,
        "promote",
        "demo:v1.0.0",
        "--from",
        "staging",
        "--to",
        "prod",
        "--actor",
        "release-manager",
    ]);
    assert_ne!(refused.code, exit::OK, "prod is locked: {}", refused.stderr);

    let history = ws.run_env(&["--output", "json", "history", "--limit", "1000"], &env);
    let Output::History { events } = history.ok().output() else {
        panic!("history")
    };
    let kinds: Vec<EventKind> = events.iter().map(|e| e.record.kind).collect();
    assert!(kinds.contains(&EventKind::PromotionSucceeded), "{kinds:?}");
    assert!(kinds.contains(&EventKind::Locked), "{kinds:?}");

    let verify = ws.run_env(&["--output", "json", "audit", "verify"], &env);
    let Output::Verify(VerifyOutput {
        intact,
        events: n,
        source,
        ..
    }) = verify.ok().output()
    else {
        panic!("verify")
    };
    assert!(intact);
    assert_eq!(n as usize, events.len());
    assert!(source.contains("postgres:***@127.0.0.1"), "{source}");

    // Nothing went to the default SQLite file.
    assert!(!ws.state().exists());
    for run in [&attest, &refused, &history, &verify] {
        assert!(!run.stdout.contains(SECRET), "{}", run.stdout);
        assert!(!run.stderr.contains(SECRET), "{}", run.stderr);
    }
    // Neither does the help text show the variable's value.
    let help = ws.run_env(&["--help"], &env);
    assert!(!help.stdout.contains(SECRET));
}

#[test]
fn an_unreachable_database_is_unavailable_without_its_password() {
    let ws = workspace();
    let url = format!(
        "postgres://floe:{SECRET}@127.0.0.1:{}/floe?sslmode=disable&connect_timeout=2",
        common::closed_port()
    );
    let run = ws.run(&["--state", &url, "history"]);
    assert_eq!(run.code, exit::UNAVAILABLE, "{}", run.stderr);
    assert!(!run.stderr.contains(SECRET), "{}", run.stderr);
    assert!(run.stderr.contains("floe:***@"), "{}", run.stderr);
}

/// Eight `floe promote` processes at once, each a different version into one environment,
/// sharing one PostgreSQL database and a real registry: every promotion succeeds (the lease
/// queues them), the chain is one and verifies, no event is lost, and the pointer the registry
/// shows is the digest of the last success in history.
#[test]
fn eight_promoter_processes_share_one_chain_and_the_pointer_is_the_last_success() {
    use floe_promotion_oci::testing::TestRegistry;

    let registry = TestRegistry::shared();
    let direct = registry.namespace("pg-promoters");
    let ws = Workspace::new(&common::three_env_manifest(
        &registry.host(),
        direct.as_ref(),
        &[],
    ));
    let url = database_url();
    let versions: Vec<String> = (1..=8).map(|i| format!("v{i}")).collect();
    for (i, v) in versions.iter().enumerate() {
        common::push(&format!("{direct}/dev/app"), v, 700 + i as u64, None);
    }
    let children: Vec<_> = versions
        .iter()
        .map(|v| {
            ws.spawn(&[
                "--state",
                &url,
                "promote",
                &format!("app:{v}"),
                "--from",
                "dev",
                "--to",
                "staging",
                "--actor",
                &format!("ci-{v}"),
            ])
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait for floe");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!String::from_utf8_lossy(&out.stderr).contains(SECRET));
    }
    let state = ["--state", url.as_str()];
    let Output::History { mut events } = ws
        .run(&[
            state[0], state[1], "--output", "json", "history", "--limit", "1000",
        ])
        .ok()
        .output()
    else {
        panic!("history")
    };
    events.reverse();
    let count = |kind: EventKind| events.iter().filter(|e| e.record.kind == kind).count();
    assert_eq!(count(EventKind::PromotionRequested), 8, "no request lost");
    assert_eq!(count(EventKind::PromotionSucceeded), 8, "no success lost");
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "one chain, no gap"
    );
    let last = events
        .iter()
        .rev()
        .find(|e| e.record.kind == EventKind::PromotionSucceeded)
        .unwrap();
    assert_eq!(
        common::skopeo_digest(&format!("{direct}/staging/app:latest-staging"), None),
        last.record.digest.clone().unwrap(),
        "the pointer is the last success"
    );
    let Output::Verify(VerifyOutput {
        intact, events: n, ..
    }) = ws
        .run(&[state[0], state[1], "--output", "json", "audit", "verify"])
        .ok()
        .output()
    else {
        panic!("verify")
    };
    assert!(intact);
    assert_eq!(n, events.len() as u64);
}
