//! End to end: the built `floe` binary, run as a user would, against a real `docker-registry`
//! started by the test, with fixtures pushed by skopeo and results read back by skopeo.

mod common;

use common::{Workspace, push, skopeo_digest, tags, three_env_manifest};
use floe_promotion::Digest;
use floe_promotion::history::EventKind;
use floe_promotion::registry::CopyMode;
use floe_promotion_cli::exit;
use floe_promotion_cli::output::{Output, VerifyOutput};
use floe_promotion_oci::testing::TestRegistry;

/// One test's world: a fresh namespace on the shared registry, a workspace whose manifest puts
/// `dev`, `staging`, `prod` in `NS/<env>`, and the artifact `app`.
struct World {
    ws: Workspace,
    ns: String,
}

impl World {
    fn new(prefix: &str, extra: &[(&str, &str)]) -> World {
        let registry = TestRegistry::shared();
        let ns = registry.namespace(prefix).to_string();
        let ws = Workspace::new(&three_env_manifest(&registry.host(), &ns, extra));
        World { ws, ns }
    }

    /// `HOST/NS/<env>/app`.
    fn repo(&self, env: &str) -> String {
        format!("{}/{env}/app", self.ns)
    }

    /// CI pushes `app:<version>` into dev.
    fn push(&self, version: &str, seed: u64) -> Digest {
        push(&self.repo("dev"), version, seed, None)
    }

    fn digest(&self, env: &str, tag: &str) -> Digest {
        skopeo_digest(&format!("{}:{tag}", self.repo(env)), None)
    }

    fn tags(&self, env: &str) -> Vec<String> {
        tags(&self.repo(env), None)
    }

    /// Every environment's tag list and the whole history, to compare before and after.
    fn snapshot(&self) -> (Vec<Vec<String>>, String) {
        let tags = ["dev", "staging", "prod"].map(|e| self.tags(e)).to_vec();
        let history = self
            .ws
            .run(&["--output", "json", "history", "--limit", "100000"])
            .ok()
            .stdout
            .clone();
        (tags, history)
    }

    fn promote(&self, version: &str, from: &str, to: &str, actor: &str) -> common::Run {
        let args = common::promote_args_as(version, from, to, actor);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.ws.run(&args)
    }

    /// Promotes `version` from dev through to `last`, asserting success.
    fn promote_through(&self, version: &str, last: &str) {
        for (from, to) in [("dev", "staging"), ("staging", "prod")] {
            self.promote(version, from, to, &format!("ci-{to}")).ok();
            if to == last {
                return;
            }
        }
    }

    fn rollback(&self, env: &str, to: &str, extra: &[&str]) -> common::Run {
        let mut args = vec![
            "--output", "json", "rollback", "--env", env, "--to", to, "--actor", "oncall",
        ];
        args.extend_from_slice(extra);
        self.ws.run(&args)
    }

    fn current(&self, env: &str) -> Option<(String, Digest)> {
        let Output::Status { environments } = self
            .ws
            .run(&["--output", "json", "status", "--env", env])
            .ok()
            .output()
        else {
            panic!("not a status")
        };
        assert_eq!(environments.len(), 1);
        environments[0].deployments.first().map(|d| {
            (
                d.deployment.version.to_string(),
                d.deployment.digest.clone(),
            )
        })
    }
}

fn sorted(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

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

/// `audit verify` passes on an honest state file and names the event after one of its rows is
/// edited with the `sqlite3` shell (rusqlite when the shell is missing).
#[test]
fn audit_verify_passes_then_fails_after_the_state_file_is_edited() {
    let w = World::new("audit", &[]);
    w.push("v1.0.0", 10);
    w.promote_through("v1.0.0", "prod");

    let Output::Verify(v) =
        w.ws.run(&["--output", "json", "audit", "verify"])
            .ok()
            .output()
    else {
        panic!()
    };
    assert!(v.intact && v.first_break.is_none(), "{v:?}");
    assert_eq!(v.events, 4);
    let text = w.ws.run(&["audit", "verify"]).ok().stdout.clone();
    assert!(
        text.contains("intact") && text.contains("4 events"),
        "{text}"
    );

    // Rewrite who promoted into staging (event 2), as someone with write access to the file
    // would: the table's append-only trigger is dropped first.
    let sql = "DROP TRIGGER events_are_append_only_update; \
               UPDATE events SET content = replace(content, '\"ci-staging\"', '\"mallory\"') WHERE seq = 2;";
    tamper(&w.ws.state(), sql);

    let broken = w.ws.run(&["--output", "json", "audit", "verify"]);
    let Output::Verify(VerifyOutput {
        intact,
        first_break,
        ..
    }) = broken.expect(exit::INTEGRITY).output()
    else {
        panic!()
    };
    assert!(!intact);
    assert_eq!(
        first_break.as_ref().map(|b| b.seq),
        Some(2),
        "{first_break:?}"
    );
    let text = w.ws.run(&["audit", "verify"]);
    assert!(
        text.expect(exit::INTEGRITY)
            .stdout
            .contains("BROKEN at event 2"),
        "{text:?}"
    );
}

/// Runs `sql` against the SQLite file with the `sqlite3` shell, or with rusqlite (saying so)
/// when the shell is not installed (Debian package `sqlite3`).
fn tamper(db: &std::path::Path, sql: &str) {
    if floe_promotion_oci::testing::which("sqlite3").is_some() {
        let out = std::process::Command::new("sqlite3")
            .arg(db)
            .arg(sql)
            .output()
            .expect("running sqlite3");
        assert!(
            out.status.success(),
            "sqlite3 failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let changed = std::process::Command::new("sqlite3")
            .arg(db)
            .arg("SELECT count(*) FROM events WHERE content LIKE '%mallory%';")
            .output()
            .expect("running sqlite3");
        assert_eq!(String::from_utf8_lossy(&changed.stdout).trim(), "1");
    } else {
        eprintln!(
            "sqlite3 is not installed (apt-get install sqlite3): editing the state file with rusqlite instead"
        );
        let conn = rusqlite::Connection::open(db).expect("open state");
        conn.execute_batch(sql).expect("tamper");
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM events WHERE content LIKE '%mallory%'",
                [],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(n, 1);
    }
}

/// `audit export` as JSON Lines (verifiable with `audit verify --file`) and as CSV, to a file
/// and to standard output, filtered by environment.
#[test]
fn audit_export_in_both_formats() {
    let w = World::new("export", &[]);
    let digest = w.push("v1.0.0", 11);
    w.promote_through("v1.0.0", "prod");
    w.ws.run(&["lock", "prod", "--reason", "freeze", "--actor", "ops"])
        .ok();
    let total = w.ws.history().len();
    assert_eq!(total, 5);

    // JSON Lines to a file.
    let Output::Export {
        format,
        events,
        out,
    } =
        w.ws.run(&[
            "--output",
            "json",
            "audit",
            "export",
            "--format",
            "jsonl",
            "--out",
            "trail.jsonl",
        ])
        .ok()
        .output()
    else {
        panic!()
    };
    assert_eq!((format.as_str(), events), ("jsonl", total as u64));
    assert!(out.ends_with("trail.jsonl"));
    let jsonl = std::fs::read_to_string(w.ws.join("trail.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), total);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["seq"], i as u64 + 1, "{l}");
        assert!(l["hash"].as_str().is_some_and(|h| h.len() == 64), "{l}");
    }
    assert!(jsonl.contains(digest.as_str()));
    let Output::Verify(v) =
        w.ws.run(&[
            "--output",
            "json",
            "audit",
            "verify",
            "--file",
            "trail.jsonl",
        ])
        .ok()
        .output()
    else {
        panic!()
    };
    assert!(v.intact && v.events == total as u64, "{v:?}");
    // An edited export fails to verify.
    w.ws.write("edited.jsonl", &jsonl.replacen("ci-staging", "mallory", 1));
    w.ws.run(&["audit", "verify", "--file", "edited.jsonl"])
        .expect(exit::INTEGRITY);

    // CSV on standard output.
    let csv_run = w.ws.run(&["audit", "export", "--format", "csv"]);
    let mut reader = csv::Reader::from_reader(csv_run.ok().stdout.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    for column in ["seq", "kind", "environment", "digest", "hash"] {
        assert!(
            header.iter().any(|h| h == column),
            "no {column} in {header:?}"
        );
    }
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), total);
    let env_col = header.iter().position(|h| h == "environment").unwrap();

    // CSV to a file, prod only.
    w.ws.run(&[
        "audit", "export", "--format", "csv", "--env", "prod", "--out", "prod.csv",
    ])
    .ok();
    let mut reader = csv::Reader::from_path(w.ws.join("prod.csv")).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows.iter().all(|r| &r[env_col] == "prod"), "{rows:?}");
    // No temporary file is left next to the output.
    let leftovers: Vec<_> = std::fs::read_dir(w.ws.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("floe-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Environments in separate repositories of the same registry: the registry's request log
/// shows the blobs mounted into the target repository and no blob bytes uploaded.
#[test]
fn separate_repositories_on_one_registry_mount_blobs() {
    let registry = TestRegistry::shared();
    let w = World::new("mount", &[]);
    let digest = w.push("v1.0.0", 12);
    let Output::Promote(record) = w.promote("v1.0.0", "dev", "staging", "ci").ok().output() else {
        panic!()
    };
    let copy = record.copy.unwrap();
    assert_eq!(
        (copy.blobs_mounted, copy.blobs_uploaded),
        (3, 0),
        "{copy:?}"
    );
    let path = format!("/v2/{}/", w.repo("staging").split_once('/').unwrap().1);
    let requests = registry.requests_for(&path);
    assert_eq!(
        requests.iter().filter(|r| r.is_mount()).count(),
        3,
        "{requests:#?}"
    );
    assert!(
        !requests.iter().any(|r| r.is_blob_upload()),
        "{requests:#?}"
    );
    assert_eq!(w.digest("staging", "v1.0.0-staging"), digest);
}

/// Environments on two registries: blobs stream from one to the other, the digest is the same
/// on both (skopeo).
#[test]
fn environments_on_two_registries_stream_blobs() {
    let a = TestRegistry::shared();
    let b = TestRegistry::start();
    let (ns_a, ns_b) = (
        a.namespace("stream").to_string(),
        b.namespace("stream").to_string(),
    );
    let manifest = format!(
        "artifacts:\n  promotion:\n    insecure_registries: [\"{}\", \"{}\"]\n    environments:\n      - name: dev\n        repository: {ns_a}/dev\n      - name: prod\n        repository: oci://{ns_b}/prod\n",
        a.host(),
        b.host()
    );
    let ws = Workspace::new(&manifest);
    let digest = push(&format!("{ns_a}/dev/app"), "v1.0.0", 13, None);
    let run = ws.run(&[
        "--output",
        "json",
        "promote",
        "app:v1.0.0",
        "--from",
        "dev",
        "--to",
        "prod",
        "--actor",
        "ci",
    ]);
    let Output::Promote(record) = run.ok().output() else {
        panic!()
    };
    let copy = record.copy.unwrap();
    assert_eq!(copy.blobs_mounted, 0, "{copy:?}");
    assert_eq!(copy.blobs_uploaded, 3, "{copy:?}");
    assert!(copy.bytes_uploaded > 43_000, "{copy:?}");
    for tag in ["v1.0.0-prod", "latest-prod"] {
        assert_eq!(
            skopeo_digest(&format!("{ns_b}/prod/app:{tag}"), None),
            digest
        );
    }
    assert_eq!(
        skopeo_digest(&format!("{ns_a}/dev/app:v1.0.0"), None),
        digest
    );
    assert!(b.requests().iter().any(|r| r.is_blob_upload()));
}

/// `floe envs` lists the environments in order with their gates, as one JSON document.
#[test]
fn envs_lists_environments_in_order() {
    let w = World::new("envs", &[("prod", "gates:\n  smoke: [\"true\"]")]);
    let Output::Envs { environments } = w.ws.run(&["--output", "json", "envs"]).ok().output()
    else {
        panic!()
    };
    let names: Vec<(&str, usize)> = environments
        .iter()
        .map(|e| (e.name.as_str(), e.position))
        .collect();
    assert_eq!(names, [("dev", 0), ("staging", 1), ("prod", 2)]);
    assert_eq!(environments[2].gates, ["smoke"]);
    assert_eq!(
        environments[1].repository.as_deref(),
        Some(format!("{}/staging", w.ns).as_str())
    );
    let text = w.ws.run(&["envs"]).ok().stdout.clone();
    assert!(text.contains("3. prod") && text.contains("smoke"), "{text}");
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
