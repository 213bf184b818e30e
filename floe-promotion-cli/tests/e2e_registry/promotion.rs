//! Promoting through the environments: one digest everywhere, dry runs that change nothing, and
//! refusals (a failing gate, an environment tag at another digest, an operator not allowed)
//! that leave the destination untouched.

use floe_promotion::history::EventKind;
use floe_promotion::registry::CopyMode;
use floe_promotion_cli::exit;
use floe_promotion_cli::output::Output;

use super::{World, sorted};
use crate::common::push;

/// dev → staging → prod: every command succeeds, the digest CI pushed is the digest of every
/// tag in every environment (skopeo), and status and history say so.
#[test]
fn promote_dev_staging_prod_keeps_the_digest_everywhere() {
    let w = World::new("flow", &[]);
    let digest = w.push("v1.0.0", 1);

    let staged = w.promote("v1.0.0", "dev", "staging", "ci").ok().output();
    let Output::Promote(record) = staged else {
        panic!("{staged:?}")
    };
    assert_eq!(record.digest, digest);
    assert_eq!(record.to.as_str(), "staging");
    assert_eq!(
        record
            .tags_written
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>(),
        ["v1.0.0-staging", "latest-staging"]
    );
    // Another repository on the same registry: blobs are mounted, never uploaded.
    let copy = record.copy.expect("a copy report");
    assert_eq!(copy.blobs_mounted, 3, "{copy:?}");
    assert_eq!(copy.blobs_uploaded, 0, "{copy:?}");

    let Output::Promote(record) = w
        .promote("v1.0.0", "staging", "prod", "release")
        .ok()
        .output()
    else {
        panic!("not a promotion")
    };
    assert_eq!(record.digest, digest);

    assert_eq!(w.digest("dev", "v1.0.0"), digest);
    for env in ["staging", "prod"] {
        assert_eq!(w.digest(env, &format!("v1.0.0-{env}")), digest, "{env}");
        assert_eq!(w.digest(env, &format!("latest-{env}")), digest, "{env}");
        assert_eq!(
            w.tags(env),
            sorted(&[&format!("v1.0.0-{env}"), &format!("latest-{env}")])
        );
    }
    assert_eq!(w.tags("dev"), ["v1.0.0"]);

    // status: per environment, the version and digest, by whom.
    let Output::Status { environments } = w.ws.run(&["--output", "json", "status"]).ok().output()
    else {
        panic!("not a status")
    };
    let names: Vec<&str> = environments
        .iter()
        .map(|e| e.environment.as_str())
        .collect();
    assert_eq!(names, ["dev", "staging", "prod"]);
    assert!(environments[0].deployments.is_empty());
    for (i, env, by) in [(1, "staging", "ci"), (2, "prod", "release")] {
        let d = &environments[i].deployments;
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].deployment.digest, digest);
        assert_eq!(d[0].deployment.version.as_str(), "v1.0.0");
        assert_eq!(d[0].deployment.by, by);
        assert_eq!(d[0].repository.as_str(), w.repo(env));
        let tags: Vec<&str> = d[0].tags.iter().map(|t| t.as_str()).collect();
        assert_eq!(tags, [format!("v1.0.0-{env}"), format!("latest-{env}")]);
        // The tags status names are the registry's, at that digest.
        for t in tags {
            assert_eq!(w.digest(env, t), digest);
        }
    }
    let text = w.ws.run(&["status"]).ok().stdout.clone();
    for needle in [
        "staging",
        "prod",
        "v1.0.0",
        &digest.hex()[..12],
        "v1.0.0-prod,latest-prod",
    ] {
        assert!(text.contains(needle), "status lacks {needle}:\n{text}");
    }

    // history: requested and succeeded, twice, with the digest.
    let kinds: Vec<EventKind> = w.ws.history().iter().map(|e| e.record.kind).collect();
    assert_eq!(
        kinds,
        [
            EventKind::PromotionRequested,
            EventKind::PromotionSucceeded,
            EventKind::PromotionRequested,
            EventKind::PromotionSucceeded
        ]
    );
    // history --artifact NAME:VERSION filters.
    let Output::History { events } =
        w.ws.run(&[
            "--output",
            "json",
            "history",
            "--artifact",
            "app:v1.0.0",
            "--env",
            "prod",
        ])
        .ok()
        .output()
    else {
        panic!("not a history")
    };
    assert_eq!(events.len(), 2);
    assert!(
        events
            .iter()
            .all(|e| e.record.environment.as_ref().map(|e| e.as_str()) == Some("prod"))
    );
    assert_eq!(events[0].record.digest.as_ref(), Some(&digest));
}

/// `--dry-run` reports what would happen and changes nothing: the same tag lists in every
/// environment and the same history, byte for byte, before and after.
#[test]
fn dry_run_changes_nothing() {
    let w = World::new("dryrun", &[("prod", "gates:\n  smoke: [\"true\"]")]);
    let digest = w.push("v1.0.0", 2);
    w.promote_through("v1.0.0", "staging");
    let before = w.snapshot();

    let plan = w.ws.run(&[
        "--output",
        "json",
        "promote",
        "app:v1.0.0",
        "--from",
        "staging",
        "--to",
        "prod",
        "--actor",
        "release",
        "--dry-run",
    ]);
    let Output::Plan(plan) = plan.ok().output() else {
        panic!("not a plan")
    };
    assert!(plan.would_succeed, "{plan:?}");
    assert!(plan.blockers.is_empty());
    assert_eq!(plan.digest.as_ref(), Some(&digest));
    assert_eq!(plan.copy_mode, Some(CopyMode::Mount));
    assert_eq!(plan.target.as_str(), w.repo("prod"));
    assert_eq!(
        plan.tags.iter().map(|t| t.tag.as_str()).collect::<Vec<_>>(),
        ["v1.0.0-prod", "latest-prod"]
    );
    assert_eq!(plan.gates.len(), 1);
    assert_eq!(plan.gates[0].gate, "smoke");

    let text = w.ws.run(&[
        "promote",
        "app:v1.0.0",
        "--from",
        "staging",
        "--to",
        "prod",
        "--actor",
        "release",
        "--dry-run",
    ]);
    assert!(text.ok().stdout.contains("would succeed"), "{text:?}");
    assert!(text.stdout.contains("latest-prod"), "{text:?}");

    assert_eq!(
        w.snapshot(),
        before,
        "a dry run changed the registry or history"
    );
    assert!(w.tags("prod").is_empty());
}

/// A failing gate refuses the promotion with the gate exit code, names the gate, and leaves the
/// destination as it was: its tags, its pointer, its status. A dry run reports the same blocker.
#[test]
fn failing_gate_blocks_and_leaves_the_destination_untouched() {
    // The smoke gate fails while the file `smoke-broken` exists in the working directory.
    let gate = r#"gates:
  smoke: [sh, -c, 'if [ -e smoke-broken ]; then echo "smoke test failed for $0" >&2; exit 1; fi', "${ARTIFACT_DIGEST}"]"#;
    let w = World::new("gate", &[("prod", gate)]);
    let d1 = w.push("v1.0.0", 3);
    let d2 = w.push("v2.0.0", 4);
    w.promote_through("v1.0.0", "prod");
    w.promote_through("v2.0.0", "staging");
    w.ws.write("smoke-broken", "");
    let prod_tags = w.tags("prod");
    let events = w.ws.history().len();

    let dry = w.ws.run(&[
        "--output",
        "json",
        "promote",
        "app:v2.0.0",
        "--from",
        "staging",
        "--to",
        "prod",
        "--actor",
        "release",
        "--dry-run",
    ]);
    let Output::Plan(plan) = dry.expect(exit::GATE_FAILED).output() else {
        panic!("not a plan")
    };
    assert!(!plan.would_succeed);
    assert_eq!(plan.blockers.len(), 1, "{plan:?}");
    assert_eq!(plan.blockers[0].exit_code, exit::GATE_FAILED);
    assert_eq!(plan.blockers[0].kind, "gate_failed");

    let line =
        w.ws.run(&[
            "promote",
            "app:v2.0.0",
            "--from",
            "staging",
            "--to",
            "prod",
            "--actor",
            "release",
        ])
        .one_error_line(exit::GATE_FAILED);
    assert!(line.contains("smoke"), "{line}");
    let doc = w
        .promote("v2.0.0", "staging", "prod", "release")
        .json_error(exit::GATE_FAILED);
    assert!(doc.error.contains("smoke"), "{doc:?}");

    // The destination is untouched.
    assert_eq!(w.tags("prod"), prod_tags);
    assert_eq!(w.digest("prod", "latest-prod"), d1);
    assert_eq!(w.current("prod"), Some(("v1.0.0".into(), d1)));
    // Each refusal is on record with the gate's result, bound to the digest it checked.
    let history = w.ws.history();
    let new: Vec<_> = history[events..].iter().map(|e| &e.record).collect();
    assert_eq!(new.len(), 4, "{new:#?}");
    for failed in new.iter().filter(|r| r.kind == EventKind::PromotionFailed) {
        assert_eq!(failed.digest.as_ref(), Some(&d2));
        let smoke = failed.gates.iter().find(|g| g.gate == "smoke").unwrap();
        assert!(smoke.message.contains("smoke test failed"), "{smoke:?}");
        assert!(smoke.message.contains(d2.as_str()), "{smoke:?}");
    }

    // Fixed: the same promotion goes through.
    std::fs::remove_file(w.ws.join("smoke-broken")).unwrap();
    w.promote("v2.0.0", "staging", "prod", "release").ok();
    assert_eq!(w.digest("prod", "latest-prod"), d2);
}

/// An environment tag someone else already wrote with another digest is never moved: the
/// promotion exits with the immutability code and the registry keeps both digests as they were.
#[test]
fn an_environment_tag_at_another_digest_is_not_moved() {
    let w = World::new("immutable", &[]);
    let digest = w.push("v1.0.0", 14);
    // Someone pushed other bytes under staging's environment tag.
    let other = push(&w.repo("staging"), "v1.0.0-staging", 15, None);
    assert_ne!(other, digest);
    let line =
        w.ws.run(&["promote", "app:v1.0.0", "--from", "dev", "--to", "staging"])
            .one_error_line(exit::IMMUTABILITY);
    assert!(line.contains("v1.0.0-staging"), "{line}");
    assert_eq!(w.digest("staging", "v1.0.0-staging"), other);
    assert_eq!(w.tags("staging"), ["v1.0.0-staging"]);
    assert_eq!(w.current("staging"), None);
}

/// Only the listed operators may promote into an environment.
#[test]
fn an_operator_not_allowed_is_refused() {
    let w = World::new(
        "authz",
        &[("staging", "authorization:\n  allowed_operators: [release]")],
    );
    w.push("v1.0.0", 16);
    let doc = w
        .promote("v1.0.0", "dev", "staging", "intern")
        .json_error(exit::AUTHORIZATION);
    assert!(doc.error.contains("intern"), "{doc:?}");
    assert!(w.tags("staging").is_empty());
    w.promote("v1.0.0", "dev", "staging", "release").ok();
}
