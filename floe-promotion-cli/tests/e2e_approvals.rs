//! End to end: approvals with separate `floe` processes against a real `docker-registry`
//! (reached through the tests' fault proxy, so a tag write can be frozen), fixtures pushed and
//! digests read back with skopeo.
//!
//! - a promotion into prod waits (exit 15); the requester may not approve (exit 12, naming
//!   who may); two people from the two rules approve, and the second approval promotes;
//! - a process killed between the quorum and the tag write leaves the request executing and a
//!   stale lease; after `floe lease break`, `floe approvals execute` promotes exactly once;
//! - an expired request is refused (exit 16).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{FLOE, Workspace, push, skopeo_digest, three_env_manifest};
use floe_promotion::history::EventKind;
use floe_promotion_cli::exit;
use floe_promotion_cli::output::Output;
use floe_promotion_oci::testing::{FaultProxy, TestRegistry};

const APPROVAL: &str = "approval:
  rules:
    - { name: security, required: 1, users: [ann] }
    - { name: release, required: 1, groups: [release-managers] }
  timeout: TIMEOUT";

struct World {
    ws: Workspace,
    direct: String,
    path: String,
    proxy: FaultProxy,
}

impl World {
    fn new(prefix: &str, timeout: &str) -> World {
        let registry = TestRegistry::shared();
        let proxy = FaultProxy::start(&registry.host());
        let direct = registry.namespace(prefix);
        let proxied = proxy.repository(&direct);
        let approval = APPROVAL.replace("TIMEOUT", timeout);
        let ws = Workspace::new(&three_env_manifest(
            &proxy.host(),
            proxied.as_ref(),
            &[("prod", &approval)],
        ));
        let path = direct
            .to_string()
            .split_once('/')
            .map(|(_, p)| p.to_string())
            .expect("HOST/PATH");
        World {
            ws,
            direct: direct.to_string(),
            path,
            proxy,
        }
    }

    fn promote(&self, version: &str, from: &str, to: &str, actor: &str) -> common::Run {
        self.ws.run(&[
            "promote",
            &format!("app:{version}"),
            "--from",
            from,
            "--to",
            to,
            "--actor",
            actor,
        ])
    }

    /// CI pushes `version` and promotes it to staging; returns its digest.
    fn in_staging(&self, version: &str, seed: u64) -> floe_promotion::Digest {
        let digest = push(&format!("{}/dev/app", self.direct), version, seed, None);
        self.promote(version, "dev", "staging", "ci").ok();
        digest
    }

    /// The pending request for `version`, as `floe approvals` lists it.
    fn request_id(&self, version: &str) -> String {
        match self
            .ws
            .run(&[
                "--output",
                "json",
                "approvals",
                "--env",
                "prod",
                "--status",
                "pending",
            ])
            .ok()
            .output()
        {
            Output::Approvals { requests } => requests
                .iter()
                .find(|r| r.ticket.version.as_str() == version)
                .map(|r| r.id.to_string())
                .expect("a pending request"),
            other => panic!("not approvals: {other:?}"),
        }
    }

    fn prod_digest(&self) -> floe_promotion::Digest {
        skopeo_digest(&format!("{}/prod/app:latest-prod", self.direct), None)
    }
}

#[test]
fn two_approvers_from_two_rules_promote_and_the_requester_may_not() {
    let w = World::new("approvals", "1h");
    let digest = w.in_staging("v1", 41);
    let line = w
        .promote("v1", "staging", "prod", "ci")
        .one_error_line(exit::APPROVAL_PENDING);
    assert!(line.contains("needs 2 more approval"), "{line}");
    let id = w.request_id("v1");
    let refused =
        w.ws.run(&["approve", &id, "--actor", "ci"])
            .one_error_line(exit::AUTHORIZATION);
    assert!(
        refused.contains("requested this promotion")
            && refused.contains("users [ann]")
            && refused.contains("groups [release-managers]"),
        "{refused}"
    );
    let nobody =
        w.ws.run(&["approve", &id, "--actor", "eve", "--group", "admins"])
            .one_error_line(exit::AUTHORIZATION);
    assert!(nobody.contains("matches no approval rule"), "{nobody}");
    w.ws.run(&["approve", &id, "--actor", "ann", "--comment", "reviewed"])
        .ok();
    assert!(
        w.ws.run(&["approvals", "--status", "pending"])
            .ok()
            .stdout
            .contains(&id)
    );
    let last =
        w.ws.run(&[
            "--output",
            "json",
            "approve",
            &id,
            "--actor",
            "rita",
            "--group",
            "release-managers",
        ])
        .ok()
        .output();
    let Output::Approve(outcome) = last else {
        panic!("not an approval: {last:?}")
    };
    let record = outcome.executed.expect("the second approval promotes");
    assert_eq!(record.digest, digest);
    assert_eq!(w.prod_digest(), digest);
    let again =
        w.ws.run(&[
            "approve",
            &id,
            "--actor",
            "bob",
            "--group",
            "release-managers",
        ])
        .one_error_line(exit::APPROVAL_CLOSED);
    assert!(again.contains("executed"), "{again}");
    let kinds: Vec<EventKind> = w.ws.history().into_iter().map(|e| e.record.kind).collect();
    assert!(kinds.contains(&EventKind::ApprovalRequested));
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == EventKind::ApprovalDecided)
            .count(),
        2
    );
}

#[test]
fn a_process_killed_between_quorum_and_tag_write_is_completed_exactly_once() {
    let w = World::new("approvals-kill", "1h");
    let digest = w.in_staging("v1", 42);
    w.promote("v1", "staging", "prod", "ci")
        .expect(exit::APPROVAL_PENDING);
    let id = w.request_id("v1");
    w.ws.run(&["approve", &id, "--actor", "ann"]).ok();
    // Freeze every manifest write into prod: the quorum is met, execution starts, takes the
    // lease and hangs on its first tag.
    let put = format!("PUT /v2/{}/prod/app/manifests/", w.path);
    w.proxy.stall_upstream_after(&put, 0);
    let mut approver = Command::new(FLOE)
        .args([
            "approve",
            &id,
            "--actor",
            "rita",
            "--group",
            "release-managers",
        ])
        .current_dir(w.ws.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .env_remove("RUST_LOG")
        .env("DOCKER_CONFIG", w.ws.join("no-docker-config"))
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while w.proxy.requests_matching(&put) == 0 {
        assert!(
            Instant::now() < deadline,
            "the execution never reached the tag write"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    approver.kill().unwrap();
    approver.wait().unwrap();
    w.proxy.clear();
    let status =
        w.ws.run(&["approvals", "--env", "prod"])
            .ok()
            .stdout
            .clone();
    assert!(status.contains("executing"), "{status}");
    // The dead approver's lease is stale: shown as gone, broken with a reason.
    let leases = w.ws.run(&["lease", "list"]).ok().stdout.clone();
    assert!(
        leases.contains("prod held by") && leases.contains("(gone)"),
        "{leases}"
    );
    w.ws.run(&[
        "lease",
        "break",
        "prod",
        "--reason",
        "approver killed",
        "--actor",
        "ops",
    ])
    .ok();
    let done =
        w.ws.run(&[
            "--output",
            "json",
            "approvals",
            "execute",
            &id,
            "--actor",
            "ops",
        ])
        .ok()
        .output();
    let Output::Promote(record) = done else {
        panic!("not a promotion: {done:?}")
    };
    assert_eq!(record.digest, digest);
    assert_eq!(w.prod_digest(), digest);
    // Exactly once: one promotion of this request in history; executing it again is closed.
    let promoted =
        w.ws.history()
            .into_iter()
            .filter(|e| {
                e.record.kind == EventKind::PromotionSucceeded
                    && e.record.details.get("approval") == Some(&id)
            })
            .count();
    assert_eq!(promoted, 1);
    w.ws.run(&["approvals", "execute", &id, "--actor", "ops"])
        .one_error_line(exit::APPROVAL_CLOSED);
}

#[test]
fn an_expired_request_is_refused() {
    let w = World::new("approvals-expiry", "2s");
    w.in_staging("v1", 43);
    w.promote("v1", "staging", "prod", "ci")
        .expect(exit::APPROVAL_PENDING);
    let id = w.request_id("v1");
    std::thread::sleep(Duration::from_millis(2500));
    let line =
        w.ws.run(&["approve", &id, "--actor", "ann"])
            .one_error_line(exit::APPROVAL_CLOSED);
    assert!(line.contains("expired"), "{line}");
    w.ws.run(&["approvals", "execute", &id, "--actor", "ann"])
        .one_error_line(exit::APPROVAL_CLOSED);
    let expired =
        w.ws.run(&["approvals", "--status", "expired"])
            .ok()
            .stdout
            .clone();
    assert!(expired.contains(&id), "{expired}");
}
