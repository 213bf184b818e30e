//! End to end: bad input to the built `floe` binary gets one clear line on stderr (or one JSON
//! error document with `--output json`) and its exit code, never a panic, and writes nothing:
//! the registry's tags and the history are the same before and after.

mod common;

use common::{Run, Workspace, closed_port, push, tags, three_env_manifest};
use floe_promotion::history::EventKind;
use floe_promotion_cli::exit;
use floe_promotion_cli::output::Output;
use floe_promotion_oci::testing::TestRegistry;

/// A workspace over a fresh namespace of the shared registry, with `app:v1.0.0` pushed to dev
/// and promoted to staging.
struct World {
    ws: Workspace,
    ns: String,
    /// The registry's tags and the history after the setup.
    before: (Vec<Vec<String>>, String),
}

impl World {
    fn new(prefix: &str) -> World {
        let registry = TestRegistry::shared();
        let ns = registry.namespace(prefix).to_string();
        let ws = Workspace::new(&three_env_manifest(&registry.host(), &ns, &[]));
        push(&format!("{ns}/dev/app"), "v1.0.0", 1, None);
        ws.run(&[
            "promote",
            "app:v1.0.0",
            "--from",
            "dev",
            "--to",
            "staging",
            "--actor",
            "ci",
        ])
        .ok();
        let mut w = World {
            ws,
            ns,
            before: Default::default(),
        };
        w.before = w.snapshot();
        w
    }

    /// Nothing was written since the setup: the same tags in every environment and the same
    /// history, byte for byte.
    #[track_caller]
    fn assert_unchanged(&self) {
        assert_eq!(self.snapshot(), self.before, "bad input wrote something");
    }

    /// Tag lists of every environment and the history, to compare before and after.
    fn snapshot(&self) -> (Vec<Vec<String>>, String) {
        let tags = ["dev", "staging", "prod"]
            .map(|e| tags(&format!("{}/{e}/app", self.ns), None))
            .to_vec();
        let history = self
            .ws
            .run(&["--output", "json", "history", "--limit", "100000"])
            .ok()
            .stdout
            .clone();
        (tags, history)
    }

    /// Runs `args` in text mode and in JSON mode: one line / one document with the same
    /// message, exit `code`. Returns the text line. (Tests end with
    /// [`assert_unchanged`](Self::assert_unchanged).)
    #[track_caller]
    fn refused(&self, args: &[&str], code: u8) -> String {
        let line = self.ws.run(args).one_error_line(code);
        let mut json_args = vec!["--output", "json"];
        json_args.extend_from_slice(args);
        let doc = self.ws.run(&json_args).json_error(code);
        assert_eq!(format!("floe: {}", doc.error), line);
        line
    }

    /// Like [`refused`](Self::refused) for refusals the audit trail records by design (a
    /// promotion that reached the manager): the registry is untouched, the environment's
    /// pointer did not move, and the only new events are the failed attempt's.
    #[track_caller]
    fn refused_and_recorded(&self, args: &[&str], code: u8) -> String {
        let before = self.snapshot();
        let events = self.ws.history().len();
        let status = self
            .ws
            .run(&["--output", "json", "status"])
            .ok()
            .stdout
            .clone();
        let line = self.ws.run(args).one_error_line(code);
        let after = self.snapshot();
        assert_eq!(after.0, before.0, "floe {args:?} changed a tag");
        assert_eq!(
            self.ws.run(&["--output", "json", "status"]).ok().stdout,
            status
        );
        for e in &self.ws.history()[events..] {
            assert!(
                matches!(
                    e.record.kind,
                    EventKind::PromotionRequested
                        | EventKind::PromotionFailed
                        | EventKind::RollbackFailed
                ),
                "floe {args:?} recorded {:?}",
                e.record.kind
            );
        }
        line
    }
}

fn no_state_written(ws: &Workspace) {
    assert!(
        !ws.join(".floe").exists(),
        "a state file was created for bad input"
    );
}

#[test]
fn missing_manifest_names_the_file() {
    let ws = Workspace::new("");
    std::fs::remove_file(ws.join("manifest.yaml")).unwrap();
    let line = ws.run(&["status"]).one_error_line(exit::USAGE);
    assert!(line.contains("manifest.yaml"), "{line}");
    let line = ws
        .run(&["--manifest", "nowhere/floe.yaml", "envs"])
        .one_error_line(exit::USAGE);
    assert!(line.contains("nowhere/floe.yaml"), "{line}");
    ws.run(&["--output", "json", "status"])
        .json_error(exit::USAGE);
    // A directory is not a manifest.
    std::fs::create_dir(ws.join("manifest.yaml")).unwrap();
    let line = ws.run(&["status"]).one_error_line(exit::USAGE);
    assert!(line.contains("manifest.yaml"), "{line}");
    no_state_written(&ws);
}

#[test]
fn malformed_manifest_gives_file_line_and_column() {
    let cases = [
        // Unclosed flow sequence.
        (
            "artifacts:\n  promotion:\n    environments:\n      - name: dev\n        repository: [oops\n",
            "manifest.yaml:5:",
        ),
        // A typo in a key.
        (
            "artifacts:\n  promotion:\n    environments:\n      - name: dev\n        repositroy: r.example.com/x\n",
            "manifest.yaml:5:9:",
        ),
        // A bad value.
        (
            "artifacts:\n  promotion:\n    environments:\n      - name: dev\n      - name: \"pr od\"\n",
            "manifest.yaml:5:15:",
        ),
        // Wrong indentation.
        (
            "artifacts:\n  promotion:\n   environments:\n      - name: dev\n     - name: prod\n",
            "manifest.yaml:5:",
        ),
    ];
    for (yaml, location) in cases {
        let ws = Workspace::new(yaml);
        let line = ws.run(&["envs"]).one_error_line(exit::USAGE);
        assert!(line.starts_with(&format!("floe: {location}")), "{line}");
        let doc = ws
            .run(&["--output", "json", "envs"])
            .json_error(exit::USAGE);
        assert!(doc.error.starts_with(location), "{doc:?}");
        no_state_written(&ws);
    }
    let ws = Workspace::new(
        "artifacts:\n  promotion:\n    environments:\n      - name: dev\n        repositroy: x/y\n",
    );
    let line = ws.run(&["envs"]).one_error_line(exit::USAGE);
    assert!(line.contains("repositroy"), "{line}");
}

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
fn an_unreachable_registry_is_unavailable() {
    let port = closed_port();
    let host = format!("127.0.0.1:{port}");
    let ws = Workspace::new(&three_env_manifest(&host, &format!("{host}/floe"), &[]));
    let started = std::time::Instant::now();
    let line = ws
        .run(&["promote", "app:v1.0.0", "--from", "dev", "--to", "staging"])
        .one_error_line(exit::UNAVAILABLE);
    assert!(line.contains(&host), "{line}");
    let doc = ws
        .run(&[
            "--output",
            "json",
            "promote",
            "app:v1.0.0",
            "--from",
            "dev",
            "--to",
            "staging",
        ])
        .json_error(exit::UNAVAILABLE);
    assert!(doc.error.contains(&host), "{doc:?}");
    // A dry run reports the registry as its blocker, with the same exit code.
    let dry = ws.run(&[
        "--output",
        "json",
        "promote",
        "app:v1.0.0",
        "--from",
        "dev",
        "--to",
        "staging",
        "--dry-run",
    ]);
    let Output::Plan(plan) = dry.expect(exit::UNAVAILABLE).output() else {
        panic!()
    };
    assert!(!plan.would_succeed);
    assert_eq!(plan.blockers[0].exit_code, exit::UNAVAILABLE, "{plan:?}");
    assert!(plan.blockers[0].message.contains(&host), "{plan:?}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    // Nothing runs anywhere, and the attempt is on record as failed.
    let Output::Status { environments } = ws.run(&["--output", "json", "status"]).ok().output()
    else {
        panic!()
    };
    assert!(environments.iter().all(|e| e.deployments.is_empty()));
    let kinds: Vec<EventKind> = ws.history().iter().map(|e| e.record.kind).collect();
    assert_eq!(
        kinds,
        [
            EventKind::PromotionRequested,
            EventKind::PromotionFailed,
            EventKind::PromotionRequested,
            EventKind::PromotionFailed
        ]
    );
}

#[test]
fn an_unwritable_state_file_is_one_line() {
    let w = World::new("state");
    let before = w.snapshot();
    w.ws.write("not-a-dir", "a file");
    for state in [
        "not-a-dir/state.db",
        "not-a-dir/deeper/state.db",
        "/proc/floe-e2e/state.db",
    ] {
        for args in [
            &[
                "--state",
                state,
                "promote",
                "app:v1.0.0",
                "--from",
                "staging",
                "--to",
                "prod",
            ][..],
            &["--state", state, "lock", "prod", "--reason", "x"],
            &["--state", state, "status"],
        ] {
            let line = w.ws.run(args).one_error_line(exit::FAILURE);
            assert!(line.contains(state), "{line}");
            let mut json = vec!["--output", "json"];
            json.extend_from_slice(args);
            w.ws.run(&json).json_error(exit::FAILURE);
        }
    }
    // The state file is a directory.
    std::fs::create_dir_all(w.ws.join("dir.db")).unwrap();
    w.ws.run(&["--state", "dir.db", "status"])
        .one_error_line(exit::FAILURE);
    assert_eq!(
        std::fs::read_to_string(w.ws.join("not-a-dir")).unwrap(),
        "a file"
    );
    assert_eq!(w.snapshot(), before);
    if !running_as_root() {
        // A read-only directory (root ignores permissions, so only checked as another user).
        use std::os::unix::fs::PermissionsExt;
        let ro = w.ws.join("ro");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        let line =
            w.ws.run(&["--state", "ro/state.db", "lock", "prod", "--reason", "x"])
                .one_error_line(exit::FAILURE);
        assert!(line.contains("ro/state.db"), "{line}");
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
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

#[test]
fn export_to_an_unwritable_path_names_it() {
    let ws = Workspace::new(
        "artifacts:\n  promotion:\n    environments:\n      - name: dev\n        repository: oci-layout:./dev\n      - name: prod\n        repository: oci-layout:./prod\n",
    );
    ws.run(&["lock", "prod", "--reason", "x", "--actor", "ops"])
        .ok();
    ws.write("a-file", "");
    for out in ["nodir/trail.jsonl", "a-file/trail.jsonl"] {
        let line = ws
            .run(&["audit", "export", "--format", "jsonl", "--out", out])
            .one_error_line(exit::FAILURE);
        assert!(line.contains(out), "{line}");
        assert!(!line.contains("floe-tmp"), "{line}");
    }
    assert!(!ws.join("nodir").exists());
    let leftovers: Vec<_> = std::fs::read_dir(ws.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("floe-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Two environments in OCI layout directories: no registry needed.
const LAYOUT_MANIFEST: &str = "artifacts:\n  promotion:\n    environments:\n      - name: dev\n        repository: oci-layout:./dev\n      - name: prod\n        repository: oci-layout:./prod\n";

/// A sparse file of `len` bytes (zeros): large, but it takes no disk.
fn sparse_file(ws: &Workspace, name: &str, len: u64) -> String {
    let path = ws.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::File::create(&path).unwrap().set_len(len).unwrap();
    path.display().to_string()
}

/// Runs `args` under the memory limit in text and JSON mode: one line naming `file` and
/// `limit`, the same message as JSON, exit 2.
#[track_caller]
fn refused_at_limit(ws: &Workspace, args: &[&str], file: &str, limit: &str) {
    let line = ws.run_bounded(args).one_error_line(exit::USAGE);
    assert!(
        line.contains(file),
        "the error does not name {file}: {line}"
    );
    assert!(
        line.contains(&format!("{limit} limit")),
        "the error does not name the {limit} limit: {line}"
    );
    let mut json = vec!["--output", "json"];
    json.extend_from_slice(args);
    let doc = ws.run_bounded(&json).json_error(exit::USAGE);
    assert_eq!(format!("floe: {}", doc.error), line);
}

/// `attest --file` reads at most one byte past its 1 MiB limit, whatever size the file system
/// reports (a device reports 0).
#[test]
fn an_attest_file_is_read_up_to_its_limit() {
    let ws = Workspace::new(LAYOUT_MANIFEST);
    let big = sparse_file(&ws, "report.json", 2 * 1024 * 1024);
    for file in ["/dev/zero", big.as_str()] {
        refused_at_limit(
            &ws,
            &[
                "attest",
                "app:v1.0.0",
                "--env",
                "dev",
                "--kind",
                "tests",
                "--status",
                "passed",
                "--file",
                file,
            ],
            file,
            "1 MiB",
        );
    }
    no_state_written(&ws);
}

/// `audit verify --file` reads an export line by line, each line at most its limit: an endless
/// line (a device, a file without newlines) is refused at the limit, not read whole.
#[test]
fn audit_verify_reads_each_line_up_to_its_limit() {
    let ws = Workspace::new(LAYOUT_MANIFEST);
    let flat = ws.join("flat.jsonl");
    std::fs::write(&flat, vec![b'{'; 20 * 1024 * 1024]).unwrap();
    let flat = flat.display().to_string();
    for file in ["/dev/zero", flat.as_str()] {
        refused_at_limit(&ws, &["audit", "verify", "--file", file], file, "8 MiB");
        let line = ws
            .run_bounded(&["audit", "verify", "--file", file])
            .one_error_line(exit::USAGE);
        assert!(line.contains("line 1"), "{line}");
    }
    no_state_written(&ws);
}

/// A trusted key file is read up to its limit: a 200 MB file is refused after 64 KiB.
#[test]
fn a_huge_trusted_key_file_is_refused_at_its_limit() {
    let ws = Workspace::new(&LAYOUT_MANIFEST.replace(
        "  promotion:\n",
        "  promotion:\n    trusted_keys: [keys/huge.pub]\n",
    ));
    let key = sparse_file(&ws, "keys/huge.pub", 200 * 1024 * 1024);
    refused_at_limit(&ws, &["envs"], &key, "64 KiB");
    no_state_written(&ws);
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

/// Writes the hostile manifests into `dir`: (name, path). The loader's own test
/// (`floe-promotion/tests/manifest_fuzz.rs`) has more; these are the ones a user could hand
/// the command line.
fn hostile_manifests(dir: &std::path::Path) -> Vec<(&'static str, String)> {
    use std::io::Write;
    let mut files = Vec::new();
    let mut add = |name: &'static str, bytes: &[u8]| {
        let path = dir.join(format!("{name}.yaml"));
        std::fs::write(&path, bytes).unwrap();
        files.push((name, path.display().to_string()));
    };
    // Where the loader walks any value: `strategy: { direct: ... }`.
    let direct = "artifacts:\n  promotion:\n    environments:\n      - name: dev\n        strategy:\n          direct:";
    // "Billion laughs": ten levels of ten aliases, 10^10 strings expanded.
    let mut bomb = format!("{direct}\n            a: &a [{}]\n", ["lol"; 10].join(","));
    for (prev, next) in ('a'..='j').zip('b'..='k') {
        let refs = vec![format!("*{prev}"); 10].join(",");
        bomb.push_str(&format!("            {next}: &{next} [{refs}]\n"));
    }
    add("alias-bomb", bomb.as_bytes());
    add(
        "deep-nesting",
        format!("{direct} {}", "[".repeat(100_000)).as_bytes(),
    );
    add(
        "deep-maps",
        format!("{direct} {}", "{a: ".repeat(100_000)).as_bytes(),
    );
    add(
        "nul-bytes",
        LAYOUT_MANIFEST
            .replacen("name: dev", "name: d\0ev", 1)
            .as_bytes(),
    );
    add(
        "non-utf8",
        &[LAYOUT_MANIFEST.as_bytes(), b"# caf\xe9 \xff\n".as_slice()].concat(),
    );
    // 100 MB: a valid manifest followed by comment lines.
    let path = dir.join("huge.yaml");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    out.write_all(LAYOUT_MANIFEST.as_bytes()).unwrap();
    let line = format!("# {}\n", "x".repeat(1021));
    for _ in 0..(100 * 1024) {
        out.write_all(line.as_bytes()).unwrap();
    }
    out.flush().unwrap();
    files.push(("huge-100MB", path.display().to_string()));
    files.push(("device", "/dev/zero".to_string()));
    files
}

/// What GNU time measured of one run.
struct Measured {
    wall: std::time::Duration,
    /// User and system CPU time.
    cpu: std::time::Duration,
    /// The kernel's maximum resident set size of the process, in bytes.
    peak: u64,
}

/// Runs `floe ARGS` under GNU time (`/usr/bin/time`) in `ws`: the run and what it used.
fn run_measured(ws: &Workspace, args: &[&str]) -> (Run, Measured) {
    let report = ws.join("time.txt");
    let out = std::process::Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%e %U %S %M")
        .arg("-o")
        .arg(&report)
        .arg(common::FLOE)
        .args(args)
        .current_dir(ws.path())
        .stdin(std::process::Stdio::null())
        .env_remove("RUST_LOG")
        .env_remove("FLOE_MANIFEST")
        .env_remove("FLOE_STATE")
        .env("DOCKER_CONFIG", ws.join("no-docker-config"))
        .output()
        .expect("running floe under /usr/bin/time (scripts/registry-deps.sh installs it)");
    // GNU time writes "Command exited with non-zero status N" first when it did.
    let measured = std::fs::read_to_string(&report).unwrap();
    let mut fields = measured
        .lines()
        .last()
        .unwrap_or_default()
        .split_whitespace();
    let mut seconds =
        || std::time::Duration::from_secs_f64(fields.next().unwrap().parse().unwrap());
    let wall = seconds();
    let cpu = seconds() + seconds();
    let kib: u64 = fields.next().unwrap().parse().unwrap();
    let run = Run {
        code: u8::try_from(out.status.code().expect("floe was killed by a signal")).unwrap(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        args: args.iter().map(|s| s.to_string()).collect(),
    };
    (
        run,
        Measured {
            wall,
            cpu,
            peak: kib * 1024,
        },
    )
}

/// A YAML alias bomb, 100,000 nested `[` or `{`, NUL bytes, non-UTF-8 bytes, a 100 MB file
/// and an endless device as the manifest: `floe` refuses each within a second of CPU time
/// (and of wall time, with room for a machine busy with other tests: 3 s), with a peak
/// resident memory under 64 MiB, on one line naming the file (one JSON document with
/// `--output json`), and writes nothing.
#[test]
fn hostile_manifests_are_refused_quickly_in_bounded_memory() {
    let ws = Workspace::new(LAYOUT_MANIFEST);
    let dir = tempfile::tempdir().unwrap();
    let mut report = Vec::new();
    for (name, path) in hostile_manifests(dir.path()) {
        let (run, used) = run_measured(&ws, &["--manifest", &path, "envs"]);
        let line = run.one_error_line(exit::USAGE);
        assert!(
            line.contains(&path),
            "{name}: the file is not named: {line}"
        );
        let Measured { wall, cpu, peak } = used;
        assert!(
            cpu < std::time::Duration::from_secs(1),
            "{name} took {cpu:?} of CPU"
        );
        assert!(
            wall < std::time::Duration::from_secs(3),
            "{name} took {wall:?}"
        );
        assert!(peak < 64 * 1024 * 1024, "{name}: peak memory {peak} bytes");
        let (json, _) = run_measured(&ws, &["--output", "json", "--manifest", &path, "envs"]);
        let doc = json.json_error(exit::USAGE);
        assert_eq!(format!("floe: {}", doc.error), line);
        report.push(format!(
            "{name}: {wall:?} wall, {cpu:?} CPU, peak {:.1} MiB: {line}",
            peak as f64 / 1048576.0
        ));
    }
    println!("{}", report.join("\n"));
    no_state_written(&ws);
}
