//! End to end: a revoked digest against a real `docker-registry`: refused into every
//! environment (exit 22), flagged by `floe status`, moving again after `floe unrevoke`.

mod common;

use common::{Workspace, push, skopeo_digest, three_env_manifest};
use floe_promotion::history::EventKind;
use floe_promotion_cli::exit;
use floe_promotion_cli::output::Output;
use floe_promotion_oci::testing::TestRegistry;

#[test]
fn a_revoked_digest_is_refused_everywhere_until_unrevoked() {
    let registry = TestRegistry::shared();
    let direct = registry.namespace("revoke");
    let ws = Workspace::new(&three_env_manifest(&registry.host(), direct.as_ref(), &[]));
    let digest = push(&format!("{direct}/dev/app"), "v1", 61, None);
    let promote = |from: &str, to: &str| {
        ws.run(&[
            "promote", "app:v1", "--from", from, "--to", to, "--actor", "ci",
        ])
    };
    promote("dev", "staging").ok();
    let reference = format!("app@{digest}");

    ws.run(&["revoke", &reference, "--actor", "sec"])
        .expect(exit::USAGE);
    ws.run(&["revoke", "app:v1", "--reason", "x", "--actor", "sec"])
        .expect(exit::USAGE);
    ws.run(&[
        "revoke",
        &reference,
        "--reason",
        "CVE-2026-7",
        "--actor",
        "sec",
    ])
    .ok();
    let line = promote("staging", "prod").one_error_line(exit::REVOKED);
    assert!(line.contains("is revoked (by sec: CVE-2026-7)"), "{line}");
    assert!(
        !common::tags(&format!("{direct}/prod/app"), None).contains(&"latest-prod".to_string()),
        "nothing reached prod"
    );
    let text = ws.run(&["status"]).ok().stdout.clone();
    assert!(text.contains("staging runs REVOKED app"), "{text}");
    let Output::Revocations { revocations } =
        ws.run(&["--output", "json", "revocations"]).ok().output()
    else {
        panic!()
    };
    assert_eq!(revocations.len(), 1);
    assert_eq!(revocations[0].digest, digest);

    ws.run(&[
        "unrevoke",
        &reference,
        "--reason",
        "patched base",
        "--actor",
        "sec",
    ])
    .ok();
    promote("staging", "prod").ok();
    assert_eq!(
        skopeo_digest(&format!("{direct}/prod/app:latest-prod"), None),
        digest
    );
    let kinds: Vec<EventKind> = ws.history().into_iter().map(|e| e.record.kind).collect();
    assert!(kinds.contains(&EventKind::Revoked) && kinds.contains(&EventKind::Unrevoked));
    ws.run(&["audit", "verify"]).ok();
}
