//! End to end: automatic promotion and holds with separate `floe` processes against a real
//! `docker-registry`, fixtures pushed and digests read back with skopeo.
//!
//! - `floe auto --watch` leaves a pushed release alone until its test evidence is attached,
//!   then promotes it, and exits 0 on SIGTERM;
//! - two `floe auto` processes started together promote the candidate once;
//! - `floe hold` stops automatic promotion until every holder released, `floe status` shows
//!   the holds, and a rollback holds until `floe hold release`.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::{Workspace, push, skopeo_digest, three_env_manifest};
use floe_promotion::history::EventKind;
use floe_promotion::orchestrate::AutoAction;
use floe_promotion_cli::output::Output;
use floe_promotion_oci::testing::TestRegistry;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

struct World {
    ws: Workspace,
    direct: String,
}

impl World {
    /// dev → staging (automatic at once, tests required) → prod (automatic after an hour).
    fn new(prefix: &str) -> World {
        let registry = TestRegistry::shared();
        let direct = registry.namespace(prefix);
        let ws = Workspace::new(&three_env_manifest(
            &registry.host(),
            direct.as_ref(),
            &[
                (
                    "staging",
                    "gates:\n  tests: true\nauto_promote: { from: dev, soak: 0s }",
                ),
                ("prod", "auto_promote: { from: staging, soak: 1h }"),
            ],
        ));
        World {
            ws,
            direct: direct.to_string(),
        }
    }

    /// CI pushes `version` to dev; its digest.
    fn push(&self, version: &str, seed: u64) -> floe_promotion::Digest {
        push(&format!("{}/dev/app", self.direct), version, seed, None)
    }

    fn attest(&self, version: &str) {
        self.ws
            .run(&[
                "attest",
                &format!("app:{version}"),
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
    }

    fn staging_digest(&self) -> Option<floe_promotion::Digest> {
        let tags = common::tags(&format!("{}/staging/app", self.direct), None);
        tags.iter()
            .any(|t| t == "latest-staging")
            .then(|| skopeo_digest(&format!("{}/staging/app:latest-staging", self.direct), None))
    }

    fn count(&self, kind: EventKind, env: &str) -> usize {
        self.ws
            .history()
            .iter()
            .filter(|e| {
                e.record.kind == kind
                    && e.record.environment.as_ref().map(|e| e.as_str()) == Some(env)
            })
            .count()
    }

    fn auto(&self) -> Vec<(String, AutoAction)> {
        match self
            .ws
            .run(&["--output", "json", "auto", "--actor", "floe-bot"])
            .ok()
            .output()
        {
            Output::Auto(a) => a
                .decisions
                .into_iter()
                .map(|d| (d.environment.to_string(), d.action))
                .collect(),
            other => panic!("not auto: {other:?}"),
        }
    }
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn watch_promotes_a_pushed_and_attested_release_and_stops_on_sigterm() {
    let w = World::new("auto-watch");
    // v1 goes to staging by hand, so history names the artifact.
    let v1 = w.push("v1", 71);
    w.attest("v1");
    w.ws.run(&[
        "promote", "app:v1", "--from", "dev", "--to", "staging", "--actor", "ci",
    ])
    .ok();
    assert_eq!(w.staging_digest(), Some(v1.clone()));

    let mut watcher = w.ws.spawn(&[
        "--output",
        "json",
        "auto",
        "--watch",
        "--interval",
        "1s",
        "--actor",
        "floe-bot",
    ]);
    let v2 = w.push("v2", 72);
    // Without test evidence the gate blocks v2: passes go by and nothing moves.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        w.staging_digest(),
        Some(v1.clone()),
        "v2 has no evidence yet"
    );
    w.attest("v2");
    wait_for("v2 in staging", Duration::from_secs(30), || {
        w.staging_digest().as_ref() == Some(&v2)
    });
    // A few more passes: nothing new.
    std::thread::sleep(Duration::from_millis(2500));

    kill(Pid::from_raw(watcher.id() as i32), Signal::SIGTERM).expect("SIGTERM");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = watcher.try_wait().expect("wait") {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "floe auto --watch did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stdout = String::new();
    watcher
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut stdout)
        .expect("read stdout");
    let mut stderr = String::new();
    watcher
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");

    // One JSON document per pass; blocked passes before the evidence, one promotion.
    let passes: Vec<Output> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(passes.len() >= 4, "{stdout}");
    let actions: Vec<AutoAction> = passes
        .iter()
        .flat_map(|p| match p {
            Output::Auto(a) => a
                .decisions
                .iter()
                .filter(|d| d.environment.as_str() == "staging")
                .map(|d| d.action)
                .collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        })
        .collect();
    let first_promoted = actions
        .iter()
        .position(|a| *a == AutoAction::Promoted)
        .expect("a pass promoted v2");
    assert!(
        actions[..first_promoted].contains(&AutoAction::Blocked),
        "{actions:?}"
    );
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == AutoAction::Promoted)
            .count(),
        1,
        "{actions:?}"
    );
    assert!(
        stderr.contains("stopping after the promotion under way"),
        "{stderr}"
    );

    let history = w.ws.history();
    let auto: Vec<_> = history
        .iter()
        .filter(|e| {
            e.record.kind == EventKind::PromotionSucceeded && e.record.actor.id == "floe-bot"
        })
        .collect();
    assert_eq!(auto.len(), 1);
    assert_eq!(auto[0].record.version.as_ref().unwrap().as_str(), "v2");
    assert_eq!(auto[0].record.digest.as_ref(), Some(&v2));
    assert!(
        history
            .iter()
            .any(|e| e.record.kind == EventKind::ReleaseDiscovered
                && e.record
                    .version
                    .as_ref()
                    .is_some_and(|v| v.as_str() == "v2")),
        "the release was discovered"
    );
    // prod waits for its hour of soak.
    assert_eq!(w.count(EventKind::PromotionSucceeded, "prod"), 0);
    w.ws.run(&["audit", "verify"]).ok();
}

#[test]
fn two_auto_processes_at_once_promote_the_candidate_once() {
    let w = World::new("auto-race");
    w.push("v1", 81);
    w.attest("v1");
    let racers: Vec<_> = (0..2)
        .map(|i| {
            w.ws.spawn(&[
                "--output",
                "json",
                "auto",
                "--env",
                "staging",
                "--actor",
                &format!("bot-{i}"),
            ])
        })
        .collect();
    for racer in racers {
        let out = racer.wait_with_output().expect("wait");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(w.count(EventKind::PromotionSucceeded, "staging"), 1);
    assert_eq!(w.count(EventKind::PromotionRequested, "staging"), 1);
    assert!(w.staging_digest().is_some());
    // A re-run does nothing new.
    let before = w.ws.history().len();
    assert_eq!(
        w.auto(),
        [
            ("staging".into(), AutoAction::NothingToDo),
            ("prod".into(), AutoAction::NothingToDo)
        ]
    );
    assert_eq!(w.ws.history().len(), before);
}

#[test]
fn holds_stop_automatic_promotion_until_every_holder_released() {
    let w = World::new("auto-hold");
    let v1 = w.push("v1", 91);
    w.attest("v1");
    w.ws.run(&["hold", "staging", "--reason", "pen test", "--actor", "sec"])
        .ok();
    w.ws.run(&["hold", "staging", "--reason", "db move", "--actor", "ops"])
        .ok();
    let refused =
        w.ws.run(&["hold", "staging", "--actor", "ops"])
            .one_error_line(floe_promotion_cli::exit::USAGE);
    assert!(refused.contains("a hold needs a reason"), "{refused}");
    assert_eq!(w.auto()[0], ("staging".into(), AutoAction::Held));
    assert_eq!(w.staging_digest(), None);

    let status =
        w.ws.run(&["--output", "json", "status", "--env", "staging"])
            .ok()
            .output();
    let Output::Status { environments } = status else {
        panic!("{status:?}")
    };
    let holders: Vec<_> = environments[0]
        .holds
        .iter()
        .map(|h| h.holder.as_str())
        .collect();
    assert_eq!(holders, ["sec", "ops"]);
    let text = w.ws.run(&["status"]).ok().stdout.clone();
    assert!(
        text.contains("staging is held by sec (manual hold since"),
        "{text}"
    );

    w.ws.run(&[
        "hold", "release", "staging", "--reason", "done", "--actor", "sec",
    ])
    .ok();
    assert_eq!(w.auto()[0], ("staging".into(), AutoAction::Held));
    w.ws.run(&[
        "hold", "release", "staging", "--reason", "moved", "--actor", "lead", "--holder", "ops",
    ])
    .ok();
    assert_eq!(w.auto()[0], ("staging".into(), AutoAction::Promoted));
    assert_eq!(w.staging_digest(), Some(v1.clone()));

    // A rollback holds; its version is never promoted again automatically.
    let v2 = w.push("v2", 92);
    w.attest("v2");
    assert_eq!(w.auto()[0], ("staging".into(), AutoAction::Promoted));
    assert_eq!(w.staging_digest(), Some(v2));
    w.ws.run(&[
        "rollback",
        "--env",
        "staging",
        "--to",
        "v1",
        "--reason",
        "v2 crashes",
        "--actor",
        "oncall",
    ])
    .ok();
    assert_eq!(w.auto()[0], ("staging".into(), AutoAction::Held));
    let Output::Holds { holds } =
        w.ws.run(&["--output", "json", "hold", "list"])
            .ok()
            .output()
    else {
        panic!()
    };
    assert_eq!(holds.len(), 1);
    assert_eq!(holds[0].holder, "oncall");
    w.ws.run(&[
        "hold", "release", "staging", "--reason", "stable", "--actor", "oncall",
    ])
    .ok();
    assert_eq!(w.auto()[0], ("staging".into(), AutoAction::NothingToDo));
    assert_eq!(w.staging_digest(), Some(v1));
    let kinds: Vec<_> =
        w.ws.history()
            .into_iter()
            .filter(|e| {
                matches!(
                    e.record.kind,
                    EventKind::HoldPlaced | EventKind::HoldReleased
                )
            })
            .map(|e| (e.record.kind, e.record.actor.id))
            .collect();
    assert_eq!(
        kinds,
        [
            (EventKind::HoldPlaced, "sec".to_string()),
            (EventKind::HoldPlaced, "ops".to_string()),
            (EventKind::HoldReleased, "sec".to_string()),
            (EventKind::HoldReleased, "lead".to_string()),
            (EventKind::HoldPlaced, "oncall".to_string()),
            (EventKind::HoldReleased, "oncall".to_string()),
        ]
    );
}
