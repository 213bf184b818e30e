//! End to end: canary releases with separate `floe` processes against a real
//! `docker-registry`, the tags read back with skopeo: one canary to 100 %, one aborted.

mod common;

use common::{Workspace, push, skopeo_digest, three_env_manifest};
use floe_promotion::history::EventKind;
use floe_promotion::manager::Outcome;
use floe_promotion_cli::exit;
use floe_promotion_cli::output::Output;
use floe_promotion_oci::testing::TestRegistry;

struct World {
    ws: Workspace,
    direct: String,
}

impl World {
    fn new(prefix: &str) -> World {
        let registry = TestRegistry::shared();
        let direct = registry.namespace(prefix);
        let ws = Workspace::new(&three_env_manifest(
            &registry.host(),
            direct.as_ref(),
            &[(
                "prod",
                "strategy: { canary: { steps: [{ weight: 20 }, { weight: 60 }, { weight: 100 }] } }",
            )],
        ));
        World {
            ws,
            direct: direct.to_string(),
        }
    }

    /// `version` pushed and promoted to staging; its digest.
    fn in_staging(&self, version: &str, seed: u64) -> floe_promotion::Digest {
        let digest = push(&format!("{}/dev/app", self.direct), version, seed, None);
        self.ws
            .run(&[
                "promote",
                &format!("app:{version}"),
                "--from",
                "dev",
                "--to",
                "staging",
                "--actor",
                "ci",
            ])
            .ok();
        digest
    }

    fn to_prod(&self, version: &str) -> Output {
        self.ws
            .run(&[
                "--output",
                "json",
                "promote",
                &format!("app:{version}"),
                "--from",
                "staging",
                "--to",
                "prod",
                "--actor",
                "rel",
            ])
            .ok()
            .output()
    }

    fn prod(&self, tag: &str) -> floe_promotion::Digest {
        skopeo_digest(&format!("{}/prod/app:{tag}", self.direct), None)
    }

    fn advance(&self) -> (usize, u8) {
        match self
            .ws
            .run(&[
                "--output", "json", "canary", "advance", "prod", "--actor", "rel",
            ])
            .ok()
            .output()
        {
            Output::Canary { canary } => (canary.step, canary.weight),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_canary_to_100_and_an_aborted_one() {
    let w = World::new("canary");
    let v1 = w.in_staging("v1", 51);
    let Output::Promote(record) = w.to_prod("v1") else {
        panic!()
    };
    assert_eq!(record.outcome, Outcome::CanaryStarted);
    assert_eq!(w.prod("canary-prod"), v1);
    assert_eq!(w.advance(), (2, 60));
    assert_eq!(w.advance(), (3, 100));
    assert_eq!(w.prod("latest-prod"), v1);
    assert_eq!(w.prod("v1-prod"), v1);

    // v2 as a canary: the stable v1 keeps the pointer; status shows the weight.
    let v2 = w.in_staging("v2", 52);
    w.to_prod("v2");
    assert_eq!(w.prod("canary-prod"), v2);
    assert_eq!(w.prod("latest-prod"), v1);
    let Output::Status { environments } =
        w.ws.run(&["--output", "json", "status", "--env", "prod"])
            .ok()
            .output()
    else {
        panic!()
    };
    let c = &environments[0].canaries[0];
    assert_eq!((c.version.as_str(), c.weight, c.step), ("v2", 20, 1));
    assert_eq!(
        c.stable.as_ref().map(|s| s.digest.clone()),
        Some(v1.clone())
    );
    let text = w.ws.run(&["status"]).ok().stdout.clone();
    assert!(text.contains("prod runs a canary of app:v2"), "{text}");
    // A second promotion of the artifact is refused while it runs.
    let v3 = w.in_staging("v3", 53);
    let line =
        w.ws.run(&[
            "promote", "app:v3", "--from", "staging", "--to", "prod", "--actor", "rel",
        ])
        .one_error_line(exit::CONFLICT);
    assert!(line.contains("a canary of app:v2 runs in prod"), "{line}");

    w.ws.run(&["canary", "abort", "prod", "--actor", "rel"])
        .expect(exit::USAGE);
    w.ws.run(&[
        "canary",
        "abort",
        "prod",
        "--reason",
        "p99 latency up",
        "--actor",
        "rel",
    ])
    .ok();
    assert_eq!(w.prod("canary-prod"), v1, "back on stable");
    assert_eq!(w.prod("latest-prod"), v1, "the pointer never moved");
    let Output::Canaries { canaries } =
        w.ws.run(&["--output", "json", "canary", "list"])
            .ok()
            .output()
    else {
        panic!()
    };
    assert!(canaries.is_empty());

    // v3 goes all the way.
    w.to_prod("v3");
    w.advance();
    w.advance();
    assert_eq!(w.prod("latest-prod"), v3);
    let history = w.ws.history();
    let prod_success: Vec<_> = history
        .iter()
        .filter(|e| {
            e.record.kind == EventKind::PromotionSucceeded
                && e.record.environment.as_ref().map(|e| e.as_str()) == Some("prod")
        })
        .map(|e| e.record.version.as_ref().unwrap().to_string())
        .collect();
    assert_eq!(
        prod_success,
        ["v1", "v3"],
        "the pointer moved twice, at 100"
    );
    let steps = history
        .iter()
        .filter(|e| e.record.kind == EventKind::CanaryStep)
        .count();
    assert_eq!(
        steps,
        3 + 2 + 3,
        "v1 three steps, v2 started and aborted, v3 three"
    );
    w.ws.run(&["audit", "verify"]).ok();
}
