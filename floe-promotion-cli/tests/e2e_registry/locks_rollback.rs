//! Locks refuse promotions and rollbacks until lifted or overridden; rollback moves the pointer
//! back and writes the rollback tag.

use floe_promotion::history::EventKind;
use floe_promotion_cli::exit;
use floe_promotion_cli::output::Output;

use super::{World, sorted};

/// A lock refuses promotions and rollbacks into the environment until it is lifted, or
/// overridden with a reason (recorded); `--override-lock` without `--reason` is a usage error.
#[test]
fn lock_blocks_promote_and_rollback_until_unlock_or_override() {
    let w = World::new("lock", &[]);
    let d1 = w.push("v1.0.0", 5);
    let d2 = w.push("v2.0.0", 6);
    let d3 = w.push("v3.0.0", 7);
    w.promote_through("v1.0.0", "prod");
    w.promote_through("v2.0.0", "staging");
    w.promote_through("v3.0.0", "staging");

    let locked = w.ws.run(&[
        "--output",
        "json",
        "lock",
        "prod",
        "--reason",
        "incident 42",
        "--actor",
        "ops",
    ]);
    let Output::Lock { lock } = locked.ok().output() else {
        panic!("not a lock")
    };
    assert_eq!(lock.environment.as_str(), "prod");
    assert_eq!(lock.owner, "ops");
    let Output::Status { environments } =
        w.ws.run(&["--output", "json", "status", "--env", "prod"])
            .ok()
            .output()
    else {
        panic!()
    };
    assert_eq!(
        environments[0].lock.as_ref().map(|l| l.reason.as_str()),
        Some("incident 42")
    );
    let text = w.ws.run(&["status"]).ok().stdout.clone();
    assert!(text.contains("prod is locked by ops"), "{text}");
    let prod_tags = w.tags("prod");

    let doc = w
        .promote("v2.0.0", "staging", "prod", "release")
        .json_error(exit::LOCKED);
    assert!(doc.error.contains("incident 42"), "{doc:?}");
    let line =
        w.ws.run(&["promote", "app:v2.0.0", "--from", "staging", "--to", "prod"])
            .one_error_line(exit::LOCKED);
    assert!(line.contains("prod"), "{line}");
    // Break-glass needs a reason.
    let line =
        w.ws.run(&[
            "promote",
            "app:v2.0.0",
            "--from",
            "staging",
            "--to",
            "prod",
            "--override-lock",
        ])
        .one_error_line(exit::USAGE);
    assert!(line.contains("--reason"), "{line}");
    assert_eq!(w.tags("prod"), prod_tags);
    assert_eq!(w.digest("prod", "latest-prod"), d1);

    // Override with a reason: promoted, recorded, and the lock stays.
    let overridden = w.ws.run(&[
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
        "--override-lock",
        "--reason",
        "hotfix for incident 42",
    ]);
    let Output::Promote(record) = overridden.ok().output() else {
        panic!()
    };
    assert!(record.lock_overridden);
    assert_eq!(w.digest("prod", "latest-prod"), d2);
    let last = w.ws.history();
    assert!(
        last.iter()
            .any(|e| e.record.kind == EventKind::LockOverridden
                && e.record.reason.as_deref() == Some("hotfix for incident 42")),
        "no lock_overridden event"
    );

    // Still locked: a rollback is refused too, and an ordinary promotion.
    w.rollback("prod", "v1.0.0", &["--reason", "undo"])
        .json_error(exit::LOCKED);
    w.promote("v3.0.0", "staging", "prod", "release")
        .json_error(exit::LOCKED);
    assert_eq!(w.digest("prod", "latest-prod"), d2);
    assert_eq!(w.current("prod"), Some(("v2.0.0".into(), d2.clone())));

    // Unlocked: both go through.
    let Output::Unlock { lock } =
        w.ws.run(&[
            "--output", "json", "unlock", "prod", "--reason", "resolved", "--actor", "ops",
        ])
        .ok()
        .output()
    else {
        panic!()
    };
    assert_eq!(lock.reason, "incident 42");
    w.rollback("prod", "v1.0.0", &["--reason", "undo"]).ok();
    assert_eq!(w.digest("prod", "latest-prod"), d1);
    w.promote("v3.0.0", "staging", "prod", "release").ok();
    assert_eq!(w.digest("prod", "latest-prod"), d3);
    // Unlocking what is not locked is refused.
    w.ws.run(&["unlock", "prod", "--actor", "ops"])
        .one_error_line(exit::NOT_FOUND);
}

/// Rollback moves `latest-<env>` back to the digest history recorded and writes
/// `<version>-<env>-rollback-<n>`; immutable tags stay; rolling back to the current version is
/// refused.
#[test]
fn rollback_moves_the_pointer_back_and_writes_the_rollback_tag() {
    let w = World::new("rollback", &[]);
    let d1 = w.push("v1.0.0", 8);
    let d2 = w.push("v2.0.0", 9);
    w.promote_through("v1.0.0", "prod");
    w.promote_through("v2.0.0", "prod");
    assert_eq!(w.digest("prod", "latest-prod"), d2);

    // A dry run first: nothing moves.
    let before = w.snapshot();
    let Output::Plan(plan) = w
        .rollback(
            "prod",
            "v1.0.0",
            &["--reason", "checkout broken", "--dry-run"],
        )
        .ok()
        .output()
    else {
        panic!()
    };
    assert!(plan.would_succeed, "{plan:?}");
    assert_eq!(plan.digest.as_ref(), Some(&d1));
    assert_eq!(
        plan.tags.iter().map(|t| t.tag.as_str()).collect::<Vec<_>>(),
        ["v1.0.0-prod-rollback-1", "latest-prod"]
    );
    assert_eq!(w.snapshot(), before);

    let Output::Rollback(record) = w
        .rollback("prod", "v1.0.0", &["--reason", "checkout broken"])
        .ok()
        .output()
    else {
        panic!()
    };
    assert_eq!(record.digest, d1);
    assert_eq!(
        record
            .tags_written
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>(),
        ["v1.0.0-prod-rollback-1", "latest-prod"]
    );
    assert_eq!(w.digest("prod", "latest-prod"), d1);
    assert_eq!(w.digest("prod", "v1.0.0-prod-rollback-1"), d1);
    assert_eq!(
        w.digest("prod", "v2.0.0-prod"),
        d2,
        "an immutable tag moved"
    );
    assert_eq!(w.current("prod"), Some(("v1.0.0".into(), d1.clone())));
    let mut history = w.ws.history();
    let hold = history.pop().unwrap().record;
    let last = history.pop().unwrap().record;
    assert_eq!(last.kind, EventKind::RollbackSucceeded);
    assert_eq!(last.reason.as_deref(), Some("checkout broken"));
    assert_eq!(last.actor.id, "oncall");
    assert_eq!(
        (hold.kind, hold.actor.id.as_str()),
        (EventKind::HoldPlaced, "oncall"),
        "the rollback holds automatic promotion into prod"
    );
    // Staging is not affected.
    assert_eq!(w.digest("staging", "latest-staging"), d2);

    // Already current.
    let line =
        w.ws.run(&[
            "rollback", "--env", "prod", "--to", "v1.0.0", "--reason", "again",
        ])
        .one_error_line(exit::INVALID_TRANSITION);
    assert!(line.contains("already"), "{line}");
    // Forward again by rollback (NAME:VERSION form), then back: the counter grows.
    w.rollback("prod", "app:v2.0.0", &["--reason", "fixed"])
        .ok();
    assert_eq!(w.digest("prod", "latest-prod"), d2);
    w.rollback("prod", "v1.0.0", &["--reason", "broken again"])
        .ok();
    assert_eq!(w.digest("prod", "v1.0.0-prod-rollback-2"), d1);
    assert_eq!(
        w.tags("prod"),
        sorted(&[
            "latest-prod",
            "v1.0.0-prod",
            "v1.0.0-prod-rollback-1",
            "v1.0.0-prod-rollback-2",
            "v2.0.0-prod",
            "v2.0.0-prod-rollback-1",
        ])
    );
}
