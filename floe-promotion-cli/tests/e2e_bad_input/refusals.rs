//! Commands refused for what they name: an unknown environment, a skipped environment, shell
//! metacharacters in a reference, a version never promoted, a lock override without a reason.

use floe_promotion_cli::exit;
use floe_promotion_cli::output::Output;

use super::World;

#[test]
fn unknown_environment_is_named() {
    let w = World::new("unknown-env");
    for args in [
        &["promote", "app:v1.0.0", "--from", "staging", "--to", "qa"][..],
        &["promote", "app:v1.0.0", "--from", "qa", "--to", "prod"],
        &[
            "promote",
            "app:v1.0.0",
            "--from",
            "staging",
            "--to",
            "qa",
            "--dry-run",
        ],
        &["rollback", "--env", "qa", "--to", "v1.0.0", "--reason", "x"],
        &["status", "--env", "qa"],
        &["history", "--env", "qa"],
        &["lock", "qa", "--reason", "x"],
        &["unlock", "qa"],
        &["audit", "export", "--format", "csv", "--env", "qa"],
    ] {
        let line = w.refused(args, exit::NOT_FOUND);
        assert!(
            line.contains("qa") && line.contains("dev, staging, prod"),
            "{line}"
        );
    }
    w.assert_unchanged();
}

#[test]
fn skipping_an_environment_is_an_invalid_transition() {
    let w = World::new("skip");
    let line = w.refused_and_recorded(
        &["promote", "app:v1.0.0", "--from", "dev", "--to", "prod"],
        exit::INVALID_TRANSITION,
    );
    assert!(line.contains("skip staging"), "{line}");
    // Backwards and to itself, too.
    w.refused_and_recorded(
        &["promote", "app:v1.0.0", "--from", "staging", "--to", "dev"],
        exit::INVALID_TRANSITION,
    );
    w.refused_and_recorded(
        &[
            "promote",
            "app:v1.0.0",
            "--from",
            "staging",
            "--to",
            "staging",
        ],
        exit::INVALID_TRANSITION,
    );
    // A dry run says the same and records nothing.
    let before = w.snapshot();
    let dry = w.ws.run(&[
        "--output",
        "json",
        "promote",
        "app:v1.0.0",
        "--from",
        "dev",
        "--to",
        "prod",
        "--dry-run",
    ]);
    let Output::Plan(plan) = dry.expect(exit::INVALID_TRANSITION).output() else {
        panic!("not a plan")
    };
    assert!(!plan.would_succeed);
    assert_eq!(plan.blockers.len(), 1, "{plan:?}");
    assert_eq!(plan.blockers[0].exit_code, exit::INVALID_TRANSITION);
    assert!(
        plan.blockers[0].message.contains("skip staging"),
        "{plan:?}"
    );
    assert_eq!(w.snapshot(), before);
}

#[test]
fn tags_with_shell_metacharacters_are_refused_before_anything_runs() {
    let w = World::new("shell");
    for reference in [
        "app:v1;rm -rf /",
        "app:$(touch pwned)",
        "app:`id`",
        "app:v1|cat",
        "app:v1&&true",
        "app:v1>out",
        "app:../v1",
        "app:v1 v2",
        "app$(id):v1",
    ] {
        let line = w.refused(
            &["promote", reference, "--from", "staging", "--to", "prod"],
            exit::USAGE,
        );
        assert!(line.contains("invalid"), "{line}");
    }
    w.refused(
        &[
            "rollback", "--env", "staging", "--to", "v1;id", "--reason", "x",
        ],
        exit::USAGE,
    );
    assert!(!w.ws.join("pwned").exists());
    assert!(!w.ws.join("out").exists());
    w.assert_unchanged();
}

#[test]
fn a_version_that_was_never_promoted() {
    let w = World::new("never");
    // Not in the source environment's history.
    let line = w.refused_and_recorded(
        &["promote", "app:v9.9.9", "--from", "staging", "--to", "prod"],
        exit::VERSION_NOT_PROMOTED,
    );
    assert!(line.contains("v9.9.9"), "{line}");
    // Not in the first environment's registry.
    let line = w.refused_and_recorded(
        &["promote", "app:v9.9.9", "--from", "dev", "--to", "staging"],
        exit::NOT_FOUND,
    );
    assert!(line.contains("v9.9.9"), "{line}");
    // Rollback to a version the environment never ran.
    let line = w.refused_and_recorded(
        &[
            "rollback", "--env", "staging", "--to", "v0.9.0", "--reason", "x",
        ],
        exit::VERSION_NOT_PROMOTED,
    );
    assert!(line.contains("v0.9.0"), "{line}");
    // Rollback in an environment that runs nothing: refused before the manager, not recorded.
    let before = w.snapshot();
    let line = w.refused(
        &[
            "rollback", "--env", "prod", "--to", "v1.0.0", "--reason", "x",
        ],
        exit::VERSION_NOT_PROMOTED,
    );
    assert!(line.contains("prod"), "{line}");
    assert_eq!(w.snapshot(), before);
}

#[test]
fn override_lock_needs_a_reason() {
    let w = World::new("override");
    let line = w.refused(
        &[
            "promote",
            "app:v1.0.0",
            "--from",
            "staging",
            "--to",
            "prod",
            "--override-lock",
        ],
        exit::USAGE,
    );
    assert!(line.contains("--reason"), "{line}");
    w.refused(
        &[
            "promote",
            "app:v1.0.0",
            "--from",
            "staging",
            "--to",
            "prod",
            "--override-lock",
            "--reason",
            "  ",
        ],
        exit::USAGE,
    );
    w.assert_unchanged();
}
