//! End to end: a blue-green environment on a real registry through the built binary. v1 is
//! staged on `staging-blue` and switched to; v2 is staged on `staging-green` while
//! `latest-staging` stays on v1 (skopeo reads the tags); `floe switch` moves the pointer to v2
//! and `floe switch --back` returns it to v1. History, status and `floe audit verify` agree.

mod common;

use common::{Workspace, push, skopeo_digest, tags, three_env_manifest};
use floe_promotion::Digest;
use floe_promotion::history::{EventKind, Payload};
use floe_promotion::manager::Outcome;
use floe_promotion::release::blue_green::Slot;
use floe_promotion_cli::exit;
use floe_promotion_cli::output::Output;
use floe_promotion_oci::testing::TestRegistry;

struct World {
    ws: Workspace,
    ns: String,
}

impl World {
    fn new() -> World {
        let registry = TestRegistry::shared();
        let ns = registry.namespace("bluegreen").to_string();
        let ws = Workspace::new(&three_env_manifest(
            &registry.host(),
            &ns,
            &[(
                "staging",
                "strategy: { blue_green: { auto_switch: false } }",
            )],
        ));
        World { ws, ns }
    }

    fn repo(&self, env: &str) -> String {
        format!("{}/{env}/app", self.ns)
    }

    fn digest(&self, tag: &str) -> Digest {
        skopeo_digest(&format!("{}:{tag}", self.repo("staging")), None)
    }

    fn promote(&self, version: &str) -> common::Run {
        self.ws.run(&[
            "--output",
            "json",
            "promote",
            &format!("app:{version}"),
            "--from",
            "dev",
            "--to",
            "staging",
            "--actor",
            "ci",
        ])
    }

    fn switch(&self, extra: &[&str]) -> common::Run {
        let mut args = vec!["--output", "json", "switch", "staging", "--actor", "ops"];
        args.extend(extra);
        self.ws.run(&args)
    }
}

fn record(out: Output) -> floe_promotion::PromotionRecord {
    match out {
        Output::Promote(r) | Output::Switch(r) => r,
        other => panic!("not a record: {other:?}"),
    }
}

#[test]
fn stage_switch_and_switch_back() {
    let w = World::new();
    let v1 = push(&w.repo("dev"), "v1", 101, None);
    let v2 = push(&w.repo("dev"), "v2", 102, None);

    // Nothing staged: a switch is refused (invalid transition).
    let msg =
        w.ws.run(&["switch", "staging", "--actor", "ops"])
            .one_error_line(exit::INVALID_TRANSITION);
    assert!(msg.contains("nothing was staged"), "{msg}");

    // The dry run names the slot; nothing is written.
    let Output::Plan(plan) =
        w.ws.run(&[
            "--output",
            "json",
            "promote",
            "app:v1",
            "--from",
            "dev",
            "--to",
            "staging",
            "--dry-run",
        ])
        .ok()
        .output()
    else {
        panic!("not a plan")
    };
    assert_eq!(plan.preview_slot, Some(Slot::Blue));
    assert!(
        w.ws.run(&[
            "promote",
            "app:v1",
            "--from",
            "dev",
            "--to",
            "staging",
            "--dry-run"
        ])
        .ok()
        .stdout
        .contains("would stage on blue-green slot staging-blue")
    );
    assert!(tags(&w.repo("staging"), None).is_empty());

    // v1: staged on blue, the pointer does not exist yet; then switched.
    let r = record(w.promote("v1").ok().output());
    assert_eq!(r.outcome, Outcome::Staged);
    assert_eq!(
        tags(&w.repo("staging"), None),
        ["staging-blue", "v1-staging"]
    );
    assert_eq!(w.digest("staging-blue"), v1);
    let r = record(w.switch(&[]).ok().output());
    assert_eq!(r.outcome, Outcome::Switched);
    assert_eq!(w.digest("latest-staging"), v1);

    // v2: staged on green while latest-staging stays on v1.
    let r = record(w.promote("v2").ok().output());
    assert_eq!(r.outcome, Outcome::Staged);
    assert_eq!(w.digest("staging-green"), v2);
    assert_eq!(w.digest("staging-blue"), v1);
    assert_eq!(w.digest("latest-staging"), v1);

    // Status shows both slots; the switch's dry run says where it goes and writes nothing.
    let Output::Status { environments } =
        w.ws.run(&["--output", "json", "status", "--env", "staging"])
            .ok()
            .output()
    else {
        panic!("not a status")
    };
    let slots = &environments[0].slots;
    assert_eq!(slots.len(), 2);
    assert!(slots[0].live && slots[0].digest.as_ref() == Some(&v1));
    assert!(slots[1].preview && slots[1].digest.as_ref() == Some(&v2));
    assert_eq!(environments[0].deployments[0].deployment.digest, v1);
    let text = w.ws.run(&["status"]).ok().stdout.clone();
    assert!(
        text.contains("staging-green") && text.contains("preview"),
        "{text}"
    );
    let Output::SwitchPlan(plan) = w.switch(&["--dry-run"]).ok().output() else {
        panic!("not a switch plan")
    };
    assert_eq!(plan.target_slot, Some(Slot::Green));
    assert_eq!(plan.live_slot, Some(Slot::Blue));
    assert_eq!(w.digest("latest-staging"), v1);

    // The switch, then the instant rollback (a reason is required).
    record(w.switch(&[]).ok().output());
    assert_eq!(w.digest("latest-staging"), v2);
    w.ws.run(&["switch", "staging", "--back", "--actor", "ops"])
        .one_error_line(exit::USAGE);
    let r = record(
        w.switch(&["--back", "--reason", "v2 is slow"])
            .ok()
            .output(),
    );
    assert_eq!(r.outcome, Outcome::SwitchedBack);
    assert_eq!(w.digest("latest-staging"), v1);
    assert_eq!(w.digest("staging-green"), v2);

    // History agrees with the pointer, and the chain verifies.
    let history = w.ws.history();
    let kinds: Vec<EventKind> = history
        .iter()
        .map(|e| e.record.kind)
        .filter(|k| matches!(k, EventKind::PreviewStaged | EventKind::Switched))
        .collect();
    assert_eq!(
        kinds,
        [
            EventKind::PreviewStaged,
            EventKind::Switched,
            EventKind::PreviewStaged,
            EventKind::Switched,
            EventKind::Switched
        ]
    );
    let last = history
        .iter()
        .rev()
        .find(|e| e.record.kind == EventKind::Switched)
        .unwrap();
    assert_eq!(last.record.digest.as_ref(), Some(&v1));
    match last.record.payload().unwrap() {
        Payload::Switched(s) => {
            assert!(s.back);
            assert_eq!(s.slot, Slot::Blue);
            assert_eq!(s.previous_digest, Some(v2));
        }
        other => panic!("{other:?}"),
    }
    let Output::Status { environments } =
        w.ws.run(&["--output", "json", "status", "--env", "staging"])
            .ok()
            .output()
    else {
        panic!("not a status")
    };
    assert_eq!(environments[0].deployments[0].deployment.digest, v1);
    let Output::Verify(v) =
        w.ws.run(&["--output", "json", "audit", "verify"])
            .ok()
            .output()
    else {
        panic!("not a verify output")
    };
    assert!(v.intact, "{v:?}");
}
