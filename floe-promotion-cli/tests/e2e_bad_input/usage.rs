//! Usage errors: from the argument parser, empty reasons and bad times, and huge values quoted
//! shortened.

use floe_promotion_cli::exit;

use super::{LAYOUT_MANIFEST, World, no_state_written};
use crate::common::{Run, Workspace};

/// Usage errors found by the argument parser are one line too, and one JSON document with
/// `--output json`.
#[test]
fn usage_errors_are_one_line_or_one_document() {
    let ws = Workspace::new("");
    for args in [
        &["rollback", "prod", "--to", "v1", "--reason", "x"][..],
        &["promote", "app:v1", "--from", "dev"],
        &["frobnicate"],
        &["audit", "export", "--format", "xml"],
        &["history", "--limit", "many"],
    ] {
        let run: Run = ws.run(args);
        let line = run.one_error_line(exit::USAGE);
        assert!(line.len() > 10, "{line}");
        let mut json = vec!["--output", "json"];
        json.extend_from_slice(args);
        ws.run(&json).json_error(exit::USAGE);
        let mut json = vec!["--output=json"];
        json.extend_from_slice(args);
        ws.run(&json).json_error(exit::USAGE);
    }
    // Help and version are not errors.
    let help = ws.run(&["--help"]);
    assert!(help.ok().stdout.contains("promote"));
    ws.run(&["--version"]).ok();
    no_state_written(&ws);
}

#[test]
fn empty_reason_and_bad_times_are_usage_errors() {
    let w = World::new("values");
    w.refused(
        &[
            "rollback", "--env", "staging", "--to", "v1.0.0", "--reason", "",
        ],
        exit::USAGE,
    );
    w.refused(
        &["lock", "prod", "--reason", "x", "--expires", "soon"],
        exit::USAGE,
    );
    w.refused(
        &["audit", "export", "--format", "csv", "--since", "yesterday"],
        exit::USAGE,
    );
    w.refused(&["history", "--artifact", "app@sha256:00"], exit::USAGE);
    w.assert_unchanged();
}

/// A huge invalid value is quoted shortened: its start, its end and its length, on a short
/// line.
#[test]
fn huge_values_are_shortened_in_errors() {
    let ws = Workspace::new(LAYOUT_MANIFEST);
    let name = "a".repeat(10 * 1024);
    let tag = "v".repeat(10 * 1024);
    let env = "e".repeat(10 * 1024);
    let actor = "x".repeat(10 * 1024);
    let duration = format!("5{}", "s".repeat(10 * 1024 - 1));
    let reference = format!("{name}:v1");
    let tagged = format!("app:{tag}");
    for (args, value, code) in [
        (
            &[
                "promote",
                reference.as_str(),
                "--from",
                "dev",
                "--to",
                "prod",
            ][..],
            &name,
            exit::USAGE,
        ),
        (
            &["promote", &tagged, "--from", "dev", "--to", "prod"],
            &tag,
            exit::USAGE,
        ),
        (
            &["promote", "app:v1", "--from", &env, "--to", "prod"],
            &env,
            exit::USAGE,
        ),
        (&["lock", &env, "--reason", "x"], &env, exit::USAGE),
        (
            &["--actor", &actor, "lock", "prod", "--reason", "x"],
            &actor,
            exit::USAGE,
        ),
        // humantime's own message repeats the unit it does not know.
        (
            &["lock", "prod", "--reason", "x", "--expires", &duration],
            &duration,
            exit::USAGE,
        ),
        // Refused by the argument parser.
        (&["audit", "export", "--format", &name], &name, exit::USAGE),
        // Paths keep more (160 characters), so real paths are shown whole.
        (&["--manifest", &actor, "envs"], &actor, exit::USAGE),
        // A state file that cannot be opened: SQLite's own message repeats the path.
        (&["--state", &actor, "status"], &actor, exit::FAILURE),
    ] {
        let line = ws.run(args).one_error_line(code);
        let max = if value == &actor && args[0] != "--actor" {
            500
        } else {
            300
        };
        assert!(line.len() < max, "{} chars: {line}", line.len());
        assert!(line.contains(&value[..60]), "{line}");
        assert!(line.contains("(10240 bytes)"), "{line}");
        let mut json = vec!["--output", "json"];
        json.extend_from_slice(args);
        let doc = ws.run(&json).json_error(code);
        assert!(doc.error.len() < max, "{doc:?}");
    }
    no_state_written(&ws);
}
