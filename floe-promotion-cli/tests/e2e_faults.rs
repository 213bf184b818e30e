//! End to end under faults: the built `floe` binary talks to a real `docker-registry` through
//! the tests' loopback fault proxy, which can apply a request and lose its reply.
//!
//! A tag write the registry applied but whose reply never arrived is read back: the promotion
//! is recorded as the success it is, and `floe status`, the history and the registry agree.

mod common;

use common::{Workspace, push, skopeo_digest, three_env_manifest};
use floe_promotion::history::EventKind;
use floe_promotion_cli::output::Output;
use floe_promotion_oci::testing::{FaultProxy, TestRegistry};

/// A workspace whose environments live on the shared test registry, reached through `proxy`;
/// with the namespace as the registry sees it (`HOST/NS`) and its path (`NS`).
fn world(proxy: &FaultProxy, prefix: &str) -> (Workspace, String, String) {
    let registry = TestRegistry::shared();
    let direct = registry.namespace(prefix);
    let proxied = proxy.repository(&direct);
    let ws = Workspace::new(&three_env_manifest(&proxy.host(), proxied.as_ref(), &[]));
    // The namespace's path in the registry, as it appears in request lines.
    let path = direct
        .to_string()
        .split_once('/')
        .map(|(_, p)| p.to_string())
        .expect("HOST/PATH");
    (ws, direct.to_string(), path)
}

fn promote(ws: &Workspace, from: &str, to: &str) -> common::Run {
    ws.run(&[
        "--output", "json", "promote", "app:v1", "--from", from, "--to", to, "--actor", "ci",
    ])
}

fn current_digest(ws: &Workspace, env: &str) -> Option<String> {
    let Output::Status { environments } = ws
        .run(&["--output", "json", "status", "--env", env])
        .ok()
        .output()
    else {
        panic!("not a status")
    };
    environments[0]
        .deployments
        .first()
        .map(|d| d.deployment.digest.to_string())
}

#[test]
fn a_pointer_write_whose_reply_is_lost_is_recorded_as_the_success_it_is() {
    let proxy = FaultProxy::start(&TestRegistry::shared().host());
    let (ws, direct, path) = world(&proxy, "lost-reply");
    let digest = push(&format!("{direct}/dev/app"), "v1", 31, None);
    // Every PUT of latest-staging reaches the registry; no answer ever comes back.
    proxy.drop_response(&format!(
        "PUT /v2/{path}/staging/app/manifests/latest-staging"
    ));

    let run = promote(&ws, "dev", "staging");
    run.ok();
    assert!(
        proxy.dropped_responses() >= 1,
        "the fault never fired: {:?}",
        proxy.requests()
    );
    let Output::Promote(record) = run.output() else {
        panic!("not a promotion")
    };
    assert_eq!(record.digest, digest);
    // The registry, the status and the history agree.
    assert_eq!(
        skopeo_digest(&format!("{direct}/staging/app:latest-staging"), None),
        digest
    );
    assert_eq!(
        current_digest(&ws, "staging").as_deref(),
        Some(digest.as_str())
    );
    let last = ws.history().pop().unwrap();
    assert_eq!(last.record.kind, EventKind::PromotionSucceeded);
    assert_eq!(
        last.record.details["confirmed_after_lost_reply"],
        "latest-staging"
    );
}

#[test]
fn an_environment_tag_write_whose_reply_is_lost_does_not_fail_the_promotion() {
    let proxy = FaultProxy::start(&TestRegistry::shared().host());
    let (ws, direct, path) = world(&proxy, "lost-env-tag");
    let digest = push(&format!("{direct}/dev/app"), "v1", 32, None);
    proxy.drop_response(&format!("PUT /v2/{path}/staging/app/manifests/v1-staging"));
    promote(&ws, "dev", "staging").ok();
    assert!(proxy.dropped_responses() >= 1);
    for tag in ["v1-staging", "latest-staging"] {
        assert_eq!(
            skopeo_digest(&format!("{direct}/staging/app:{tag}"), None),
            digest
        );
    }
    assert_eq!(
        current_digest(&ws, "staging").as_deref(),
        Some(digest.as_str())
    );
    // Nothing is left uncertain: the next environment accepts it.
    proxy.clear();
    ws.run(&[
        "promote", "app:v1", "--from", "staging", "--to", "prod", "--actor", "release",
    ])
    .ok();
}
