//! Where environments live: listed in order by `floe envs`, in separate repositories of one
//! registry (blobs mounted) or on two registries (blobs streamed).

use floe_promotion_cli::output::Output;
use floe_promotion_oci::testing::TestRegistry;

use super::World;
use crate::common::{Workspace, push, skopeo_digest};

/// Environments in separate repositories of the same registry: the registry's request log
/// shows the blobs mounted into the target repository and no blob bytes uploaded.
#[test]
fn separate_repositories_on_one_registry_mount_blobs() {
    let registry = TestRegistry::shared();
    let w = World::new("mount", &[]);
    let digest = w.push("v1.0.0", 12);
    let Output::Promote(record) = w.promote("v1.0.0", "dev", "staging", "ci").ok().output() else {
        panic!()
    };
    let copy = record.copy.unwrap();
    assert_eq!(
        (copy.blobs_mounted, copy.blobs_uploaded),
        (3, 0),
        "{copy:?}"
    );
    let path = format!("/v2/{}/", w.repo("staging").split_once('/').unwrap().1);
    let requests = registry.requests_for(&path);
    assert_eq!(
        requests.iter().filter(|r| r.is_mount()).count(),
        3,
        "{requests:#?}"
    );
    assert!(
        !requests.iter().any(|r| r.is_blob_upload()),
        "{requests:#?}"
    );
    assert_eq!(w.digest("staging", "v1.0.0-staging"), digest);
}

/// Environments on two registries: blobs stream from one to the other, the digest is the same
/// on both (skopeo).
#[test]
fn environments_on_two_registries_stream_blobs() {
    let a = TestRegistry::shared();
    let b = TestRegistry::start();
    let (ns_a, ns_b) = (
        a.namespace("stream").to_string(),
        b.namespace("stream").to_string(),
    );
    let manifest = format!(
        "artifacts:\n  promotion:\n    insecure_registries: [\"{}\", \"{}\"]\n    environments:\n      - name: dev\n        repository: {ns_a}/dev\n      - name: prod\n        repository: oci://{ns_b}/prod\n",
        a.host(),
        b.host()
    );
    let ws = Workspace::new(&manifest);
    let digest = push(&format!("{ns_a}/dev/app"), "v1.0.0", 13, None);
    let run = ws.run(&[
        "--output",
        "json",
        "promote",
        "app:v1.0.0",
        "--from",
        "dev",
        "--to",
        "prod",
        "--actor",
        "ci",
    ]);
    let Output::Promote(record) = run.ok().output() else {
        panic!()
    };
    let copy = record.copy.unwrap();
    assert_eq!(copy.blobs_mounted, 0, "{copy:?}");
    assert_eq!(copy.blobs_uploaded, 3, "{copy:?}");
    assert!(copy.bytes_uploaded > 43_000, "{copy:?}");
    for tag in ["v1.0.0-prod", "latest-prod"] {
        assert_eq!(
            skopeo_digest(&format!("{ns_b}/prod/app:{tag}"), None),
            digest
        );
    }
    assert_eq!(
        skopeo_digest(&format!("{ns_a}/dev/app:v1.0.0"), None),
        digest
    );
    assert!(b.requests().iter().any(|r| r.is_blob_upload()));
}

/// `floe envs` lists the environments in order with their gates, as one JSON document.
#[test]
fn envs_lists_environments_in_order() {
    let w = World::new("envs", &[("prod", "gates:\n  smoke: [\"true\"]")]);
    let Output::Envs { environments } = w.ws.run(&["--output", "json", "envs"]).ok().output()
    else {
        panic!()
    };
    let names: Vec<(&str, usize)> = environments
        .iter()
        .map(|e| (e.name.as_str(), e.position))
        .collect();
    assert_eq!(names, [("dev", 0), ("staging", 1), ("prod", 2)]);
    assert_eq!(environments[2].gates, ["smoke"]);
    assert_eq!(
        environments[1].repository.as_deref(),
        Some(format!("{}/staging", w.ns).as_str())
    );
    let text = w.ws.run(&["envs"]).ok().stdout.clone();
    assert!(text.contains("3. prod") && text.contains("smoke"), "{text}");
}
