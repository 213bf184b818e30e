//! End to end: dependency promotion through the built `floe` binary against a real
//! `docker-registry`, fixtures pushed by skopeo and results read back by skopeo. `app` needs
//! `migrations` (the manifest's `depends_on`) and `config` (the `dev.floe.dependencies`
//! annotation, by digest); `migrations` needs `config` too.

mod common;

use common::{Workspace, push, push_annotated, skopeo_digest, tags, three_env_manifest};
use floe_promotion::Digest;
use floe_promotion::history::{EventKind, Payload};
use floe_promotion::model::DEPENDENCIES_ANNOTATION;
use floe_promotion_cli::exit;
use floe_promotion_cli::output::Output;
use floe_promotion_oci::testing::TestRegistry;

struct World {
    ws: Workspace,
    ns: String,
    config: Digest,
    migrations: Digest,
    app: Digest,
}

impl World {
    fn new(prefix: &str) -> World {
        let registry = TestRegistry::shared();
        let ns = registry.namespace(prefix).to_string();
        let mut manifest = three_env_manifest(&registry.host(), &ns, &[]);
        manifest.push_str(
            "    artifacts:\n      app: { depends_on: [migrations] }\n      migrations: { depends_on: [config] }\n      config: {}\n",
        );
        let ws = Workspace::new(&manifest);
        let repo = |artifact: &str| format!("{ns}/dev/{artifact}");
        let config = push(&repo("config"), "v3", 31, None);
        let migrations = push(&repo("migrations"), "v7", 32, None);
        let annotation = format!("config@{config}");
        let app = push_annotated(
            &repo("app"),
            "v1",
            33,
            None,
            &[(DEPENDENCIES_ANNOTATION, &annotation)],
        );
        World {
            ws,
            ns,
            config,
            migrations,
            app,
        }
    }

    fn repo(&self, env: &str, artifact: &str) -> String {
        format!("{}/{env}/{artifact}", self.ns)
    }

    fn promote(&self, from: &str, to: &str, flags: &[&str]) -> common::Run {
        let mut args = vec![
            "--output", "json", "promote", "app:v1", "--from", from, "--to", to, "--actor", "ci",
        ];
        args.extend(flags);
        self.ws.run(&args)
    }
}

#[test]
fn without_the_flag_a_missing_dependency_exits_18_naming_each() {
    let w = World::new("deps-refused");
    let run = w.ws.run(&[
        "promote", "app:v1", "--from", "dev", "--to", "staging", "--actor", "ci",
    ]);
    let line = run.one_error_line(exit::DEPENDENCY_MISSING);
    assert!(
        line.contains(&format!("migrations:v7@{}", w.migrations)),
        "{line}"
    );
    assert!(line.contains(&format!("config:v3@{}", w.config)), "{line}");
    let doc = w
        .promote("dev", "staging", &[])
        .json_error(exit::DEPENDENCY_MISSING);
    assert_eq!(doc.kind, "dependency_missing");
    // Nothing was written anywhere in staging.
    for artifact in ["app", "migrations", "config"] {
        assert!(
            tags(&w.repo("staging", artifact), None).is_empty(),
            "{artifact}"
        );
    }
    // The dry run lists the blocker.
    let run = w.promote("dev", "staging", &["--dry-run"]);
    run.expect(exit::DEPENDENCY_MISSING);
    match run.output() {
        Output::Plan(p) => {
            assert!(!p.would_succeed);
            assert_eq!(p.blockers[0].kind, "dependency_missing");
        }
        other => panic!("plan printed {other:?}"),
    }
}

#[test]
fn with_dependencies_promotes_both_first_in_order_as_one_group() {
    let w = World::new("deps-group");
    // The dry run plans each step in order and writes nothing.
    let run = w.promote("dev", "staging", &["--with-dependencies", "--dry-run"]);
    run.ok();
    match run.output() {
        Output::PlanGroup(g) => {
            assert!(g.would_succeed, "{g:?}");
            let steps: Vec<&str> = g.steps.iter().map(|s| s.artifact.as_str()).collect();
            assert_eq!(steps, ["config", "migrations", "app"]);
        }
        other => panic!("dry run printed {other:?}"),
    }
    assert!(tags(&w.repo("staging", "config"), None).is_empty());
    let text = w.ws.run(&[
        "promote",
        "app:v1",
        "--from",
        "dev",
        "--to",
        "staging",
        "--actor",
        "ci",
        "--with-dependencies",
        "--dry-run",
    ]);
    text.ok();
    assert!(
        text.stdout.contains("step 1: dry run: config:v3"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("step 3: dry run: app:v1"),
        "{}",
        text.stdout
    );

    let run = w.promote("dev", "staging", &["--with-dependencies"]);
    run.ok();
    let group = match run.output() {
        Output::PromoteGroup(g) => g,
        other => panic!("promote printed {other:?}"),
    };
    let order: Vec<&str> = group
        .promotions
        .iter()
        .map(|r| r.artifact.as_str())
        .collect();
    assert_eq!(order, ["config", "migrations", "app"]);
    // skopeo sees each at its digest, under its environment and pointer tags.
    for (artifact, version, digest) in [
        ("config", "v3", &w.config),
        ("migrations", "v7", &w.migrations),
        ("app", "v1", &w.app),
    ] {
        let repo = w.repo("staging", artifact);
        assert_eq!(
            &skopeo_digest(&format!("{repo}:latest-staging"), None),
            digest
        );
        assert_eq!(
            &skopeo_digest(&format!("{repo}:{version}-staging"), None),
            digest
        );
    }
    // History: the members in order, each in the group, then the group.
    let events = w.ws.history();
    let succeeded: Vec<&str> = events
        .iter()
        .filter(|e| e.record.kind == EventKind::PromotionSucceeded)
        .filter_map(|e| e.record.artifact.as_ref().map(|a| a.as_str()))
        .collect();
    assert_eq!(succeeded, ["config", "migrations", "app"]);
    let last = events.last().expect("events");
    assert_eq!(last.record.kind, EventKind::GroupPromoted);
    match last.record.payload().expect("payload") {
        Payload::GroupPromoted(g) => {
            assert_eq!(g.group, group.group);
            assert_eq!(g.members.len(), 3);
        }
        other => panic!("group_promoted payload {other:?}"),
    }
    w.ws.run(&["audit", "verify"]).ok();
    // Now app is promotable to prod only with its dependencies there too.
    w.promote("staging", "prod", &[])
        .json_error(exit::DEPENDENCY_MISSING);
    w.promote("staging", "prod", &["--with-dependencies"]).ok();
    assert_eq!(
        skopeo_digest(&format!("{}:latest-prod", w.repo("prod", "config")), None),
        w.config
    );
}
