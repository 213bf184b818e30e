//! End to end, air-gapped: environments in an OCI layout directory on one side and a real
//! registry on the other. `floe promote` streams the release across (both ways), `floe status`
//! and `floe audit verify` pass, and skopeo reads the same digest in the destination.

mod common;

use std::path::Path;

use common::{Workspace, image_layout, push, skopeo_digest, tags};
use floe_promotion::Digest;
use floe_promotion::manager::Outcome;
use floe_promotion::registry::CopyMode;
use floe_promotion_cli::output::Output;
use floe_promotion_oci::testing::{TestRegistry, skopeo};

/// A manifest with `dev` and `staging` at the given repository locations.
fn manifest(host: &str, dev: &str, staging: &str) -> String {
    format!(
        "artifacts:\n  promotion:\n    default_timeout_seconds: 30\n    insecure_registries: [\"{host}\"]\n    environments:\n      - name: dev\n        repository: {dev}\n      - name: staging\n        repository: {staging}\n"
    )
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

/// Dry run (streamed copy planned), promotion, status, audit verification.
fn promote_and_check(ws: &Workspace, digest: &Digest) {
    let Output::Plan(plan) = ws
        .run(&[
            "--output",
            "json",
            "promote",
            "app:v1.0.0",
            "--from",
            "dev",
            "--to",
            "staging",
            "--actor",
            "ci",
            "--dry-run",
        ])
        .ok()
        .output()
    else {
        panic!("not a plan")
    };
    assert_eq!(plan.copy_mode, Some(CopyMode::Stream));

    let Output::Promote(record) = ws
        .run(&[
            "--output",
            "json",
            "promote",
            "app:v1.0.0",
            "--from",
            "dev",
            "--to",
            "staging",
            "--actor",
            "ci",
        ])
        .ok()
        .output()
    else {
        panic!("not a promotion")
    };
    assert_eq!(record.outcome, Outcome::Promoted);
    assert_eq!(&record.digest, digest);
    let copy = record.copy.expect("a copy across kinds of storage");
    assert_eq!(copy.manifests_copied, 1, "{copy:?}");
    assert_eq!(copy.blobs_uploaded, 3, "{copy:?}");
    assert_eq!(copy.blobs_mounted, 0, "{copy:?}");

    let Output::Status { environments } = ws
        .run(&["--output", "json", "status", "--env", "staging"])
        .ok()
        .output()
    else {
        panic!("not a status")
    };
    let deployed = &environments[0].deployments;
    assert_eq!(deployed.len(), 1, "{deployed:?}");
    assert_eq!(&deployed[0].deployment.digest, digest);
    ws.run(&["audit", "verify"]).ok();
}

#[test]
fn a_release_in_a_layout_directory_is_promoted_into_a_registry() {
    let registry = TestRegistry::shared();
    let ns = registry.namespace("airgap-in").to_string();
    let ws = Workspace::new(&manifest(
        &registry.host(),
        "oci-layout:./registry/dev",
        &format!("{ns}/staging"),
    ));
    // What crossed the air gap: an OCI layout carried in on a disk.
    let digest = image_layout(&ws.join("registry/dev/app"), "v1.0.0", 71);

    promote_and_check(&ws, &digest);
    let staging = format!("{ns}/staging/app");
    assert_eq!(
        skopeo_digest(&format!("{staging}:v1.0.0-staging"), None),
        digest
    );
    assert_eq!(tags(&staging, None), ["latest-staging", "v1.0.0-staging"]);
}

#[test]
fn a_release_in_a_registry_is_promoted_into_a_layout_directory() {
    let registry = TestRegistry::shared();
    let ns = registry.namespace("airgap-out").to_string();
    let ws = Workspace::new(&manifest(
        &registry.host(),
        &format!("{ns}/dev"),
        "oci-layout:./export/staging",
    ));
    let digest = push(&format!("{ns}/dev/app"), "v1.0.0", 72, None);

    promote_and_check(&ws, &digest);
    let staging = ws.join("export/staging/app");
    assert_eq!(layout_digest(&staging, "v1.0.0-staging"), digest);
    assert_eq!(layout_digest(&staging, "latest-staging"), digest);
}
