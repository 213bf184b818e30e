//! Dependency promotion (REQ-337) on in-memory parts: the `dependencies` check, the order of
//! `promote_with_dependencies`, a failing dependency stopping the set, the group in history,
//! cycles at load and at promotion, the plan of each step, and the annotation form.

use std::collections::BTreeMap;
use std::sync::Arc;

use floe_promotion::config::{ArtifactSettings, parse_manifest};
use floe_promotion::gate::{GateOutcome, gate_fn};
use floe_promotion::history::{EventKind, HistoryQuery, Payload};
use floe_promotion::model::{DEPENDENCIES_ANNOTATION, Declared};
use floe_promotion::testing::pipeline::TestPipeline;
use floe_promotion::*;

fn name(s: &str) -> ArtifactName {
    ArtifactName::new(s).unwrap()
}

fn env(s: &str) -> EnvName {
    EnvName::new(s).unwrap()
}

fn req(artifact: &str, version: &str, from: &str, to: &str) -> PromotionRequest {
    PromotionRequest::new(artifact, version, from, to, Actor::new("ci").unwrap()).unwrap()
}

/// dev, staging, prod; `app` depends on `migrations` and `assets`, `migrations` on `config`.
fn pipeline() -> TestPipeline {
    let mut p = TestPipeline::new(&["dev", "staging", "prod"]);
    let a = &mut p.settings.artifacts;
    a.insert(
        name("app"),
        ArtifactSettings::depending_on(vec![name("migrations"), name("assets")]),
    );
    a.insert(
        name("migrations"),
        ArtifactSettings::depending_on(vec![name("config")]),
    );
    a.insert(name("config"), ArtifactSettings::default());
    a.insert(name("assets"), ArtifactSettings::default());
    p
}

async fn push_all(p: &TestPipeline) {
    p.push_release("config", "v3", b"config-3").await;
    p.push_release("assets", "v2", b"assets-2").await;
    p.push_release("migrations", "v7", b"migrations-7").await;
    p.push_release("app", "v1", b"app-1").await;
}

/// Kinds and artifacts of the promotion outcomes, oldest first.
async fn outcomes(p: &TestPipeline) -> Vec<(EventKind, String)> {
    p.history
        .query(&HistoryQuery::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|e| {
            matches!(
                e.record.kind,
                EventKind::PromotionRequested
                    | EventKind::PromotionSucceeded
                    | EventKind::PromotionFailed
            )
        })
        .map(|e| {
            (
                e.record.kind,
                e.record.artifact.map(|a| a.to_string()).unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_missing_dependency_refuses_naming_each_and_the_digest_wanted() {
    let p = pipeline();
    push_all(&p).await;
    let m = p.manager();
    let err = m
        .promote(req("app", "v1", "dev", "staging"))
        .await
        .unwrap_err();
    let Error::DependencyMissing {
        environment,
        artifact,
        missing,
    } = &err
    else {
        panic!("expected dependency_missing, got {err}");
    };
    assert_eq!(environment, &env("staging"));
    assert_eq!(artifact, "app:v1");
    let named: Vec<(&str, &str)> = missing
        .iter()
        .map(|d| (d.artifact.as_str(), d.version.as_str()))
        .collect();
    assert_eq!(named, [("migrations", "v7"), ("assets", "v2")]);
    let text = err.to_string();
    for (artifact, version) in [("migrations", "v7"), ("assets", "v2")] {
        let digest = p.release_digest(artifact, version).await;
        assert!(
            text.contains(&format!("{artifact}:{version}@{digest}")),
            "{text}"
        );
    }
    // Refused and recorded; nothing written.
    assert_eq!(p.tag_digest("staging", "app", "latest-staging").await, None);
    assert_eq!(
        outcomes(&p).await.last().unwrap(),
        &(EventKind::PromotionFailed, "app".to_string())
    );
}

#[tokio::test]
async fn dependencies_present_at_the_digest_wanted_pass() {
    let p = pipeline();
    push_all(&p).await;
    let m = p.manager();
    for (a, v) in [("config", "v3"), ("migrations", "v7"), ("assets", "v2")] {
        m.promote(req(a, v, "dev", "staging")).await.unwrap();
    }
    m.promote(req("app", "v1", "dev", "staging")).await.unwrap();
    // On to prod: the digests wanted are now those current in staging.
    let err = m
        .promote(req("app", "v1", "staging", "prod"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DependencyMissing { .. }), "{err}");
    // A newer migrations in dev does not change what prod needs: staging's.
    p.push_release("migrations", "v8", b"migrations-8").await;
    let group = m
        .promote_with_dependencies(req("app", "v1", "staging", "prod"))
        .await
        .unwrap();
    let versions: Vec<String> = group
        .members()
        .map(|r| format!("{}:{}", r.artifact, r.version))
        .collect();
    assert_eq!(
        versions,
        ["assets:v2", "config:v3", "migrations:v7", "app:v1"]
    );
}

#[tokio::test]
async fn with_dependencies_promotes_in_topological_order_ties_by_name() {
    let p = pipeline();
    push_all(&p).await;
    let m = p.manager();
    // assets is already there: satisfied, not promoted again.
    m.promote(req("assets", "v2", "dev", "staging"))
        .await
        .unwrap();
    let group = m
        .promote_with_dependencies(req("app", "v1", "dev", "staging"))
        .await
        .unwrap();
    let order: Vec<&str> = group.members().map(|r| r.artifact.as_str()).collect();
    assert_eq!(order, ["config", "migrations", "app"]);
    assert_eq!(group.satisfied.len(), 1);
    assert_eq!(group.satisfied[0].artifact, name("assets"));
    assert_eq!(group.satisfied[0].declared, Declared::Manifest);
    for a in ["config", "migrations", "app"] {
        assert!(
            p.tag_digest("staging", a, "latest-staging").await.is_some(),
            "{a}"
        );
    }
    // The same declarations give the same order every time (ties by name).
    let q = pipeline();
    push_all(&q).await;
    let again = q
        .manager()
        .promote_with_dependencies(req("app", "v1", "dev", "staging"))
        .await
        .unwrap();
    let order: Vec<&str> = again.members().map(|r| r.artifact.as_str()).collect();
    assert_eq!(order, ["assets", "config", "migrations", "app"]);
}

#[tokio::test]
async fn a_failing_dependency_stops_the_set_before_the_dependent() {
    let p = pipeline();
    push_all(&p).await;
    let m = p
        .builder()
        .gate(
            env("staging"),
            Arc::new(gate_fn("config-tests", |ctx| async move {
                Ok(if ctx.artifact.as_str() == "config" {
                    GateOutcome::fail("config tests failed")
                } else {
                    GateOutcome::pass("ok")
                })
            })),
        )
        .build()
        .unwrap();
    let err = m
        .promote_with_dependencies(req("app", "v1", "dev", "staging"))
        .await
        .unwrap_err();
    match &err {
        Error::DependencyFailed {
            dependency,
            artifact,
            source,
            ..
        } => {
            assert_eq!(dependency, "config:v3");
            assert_eq!(artifact, "app:v1");
            assert!(matches!(**source, Error::GateFailed { .. }), "{source}");
        }
        other => panic!("expected dependency_failed, got {other}"),
    }
    assert!(err.to_string().contains("config:v3"), "{err}");
    // assets (before config) went; migrations and app were not attempted.
    let seen = outcomes(&p).await;
    assert_eq!(
        seen,
        [
            (EventKind::PromotionRequested, "assets".to_string()),
            (EventKind::PromotionSucceeded, "assets".to_string()),
            (EventKind::PromotionRequested, "config".to_string()),
            (EventKind::PromotionFailed, "config".to_string()),
        ]
    );
    assert_eq!(p.tag_digest("staging", "app", "latest-staging").await, None);
    let failed = p
        .history
        .query(&HistoryQuery {
            kinds: vec![EventKind::GroupFailed],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    let Payload::GroupFailed(g) = failed[0].record.payload().unwrap() else {
        panic!("group_failed payload");
    };
    assert_eq!(g.failed, Some(name("config")));
    let members: Vec<&str> = g.members.iter().map(|m| m.artifact.as_str()).collect();
    assert_eq!(members, ["assets", "config", "migrations", "app"]);
}

#[tokio::test]
async fn the_group_is_recorded_in_history_and_on_each_member() {
    let p = pipeline();
    push_all(&p).await;
    let group = p
        .manager()
        .promote_with_dependencies(req("app", "v1", "dev", "staging"))
        .await
        .unwrap();
    let events = p.history.query(&HistoryQuery::default()).await.unwrap();
    let last = events.last().unwrap();
    assert_eq!(last.record.kind, EventKind::GroupPromoted);
    assert_eq!(last.record.artifact, Some(name("app")));
    let Payload::GroupPromoted(g) = last.record.payload().unwrap() else {
        panic!("group_promoted payload");
    };
    assert_eq!(g.group, group.group);
    let members: Vec<String> = g.members.iter().map(ToString::to_string).collect();
    let expected: Vec<String> = group
        .members()
        .map(|r| format!("{}:{}@{}", r.artifact, r.version, r.digest))
        .collect();
    assert_eq!(members, expected);
    let succeeded: Vec<_> = events
        .iter()
        .filter(|e| e.record.kind == EventKind::PromotionSucceeded)
        .collect();
    assert_eq!(succeeded.len(), 4);
    for e in succeeded {
        let Payload::PromotionSucceeded(s) = e.record.payload().unwrap() else {
            panic!("promotion_succeeded payload");
        };
        assert_eq!(s.group, Some(group.group));
    }
    for e in events
        .iter()
        .filter(|e| e.record.kind == EventKind::PromotionRequested)
    {
        assert_eq!(
            e.record.details.get("group"),
            Some(&group.group.to_string())
        );
    }
    assert!(p.manager().verify().await.unwrap().is_intact());
    // Every group is a notification too.
    assert!(p.event_kinds().await.contains(&EventKind::GroupPromoted));
}

const MANIFEST_HEAD: &str = "artifacts:
  registry: { uri: oci://registry.example.com/floe }
  promotion:
    environments: [{ name: dev }, { name: staging }]
    artifacts:
";

#[test]
fn a_cycle_in_the_manifest_is_refused_at_load_naming_it_and_where() {
    let text = format!(
        "{MANIFEST_HEAD}      web: {{ depends_on: [app] }}
      app:
        depends_on: [migrations]
      migrations:
        depends_on: [app]
"
    );
    let err = parse_manifest(&text, None).unwrap_err();
    match &err {
        Error::Config {
            location, message, ..
        } => {
            assert!(message.contains("app -> migrations -> app"), "{message}");
            assert_eq!(*location, Some((7, 7)), "{message}");
        }
        other => panic!("expected a config error, got {other}"),
    }
    let text = format!("{MANIFEST_HEAD}      app: {{ depends_on: [app] }}\n");
    let err = parse_manifest(&text, None).unwrap_err();
    assert!(err.to_string().contains("app -> app"), "{err}");
}

#[test]
fn an_unknown_dependency_in_the_manifest_is_a_load_error() {
    let text = format!(
        "{MANIFEST_HEAD}      app: {{ depends_on: [migrations, confg] }}\n      migrations:\n"
    );
    let err = parse_manifest(&text, None).unwrap_err();
    let shown = err.to_string();
    assert!(shown.contains("unknown artifact \"confg\""), "{shown}");
    assert!(shown.contains("<manifest>:6:"), "{shown}");
    let text = format!("{MANIFEST_HEAD}      app: {{ depends_on: [x], tests: true }}\n");
    assert!(parse_manifest(&text, None).is_err());
    let text = format!(
        "{MANIFEST_HEAD}      app:\n        depends_on: [migrations]\n      migrations: {{}}\n"
    );
    let config = parse_manifest(&text, None).unwrap();
    assert_eq!(
        config.settings().artifacts[&name("app")].depends_on,
        [name("migrations")]
    );
}

fn annotated(deps: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(DEPENDENCIES_ANNOTATION.to_string(), deps.to_string())])
}

#[tokio::test]
async fn a_cycle_declared_by_annotations_is_refused_at_promotion() {
    let mut p = TestPipeline::new(&["dev", "staging"]);
    // migrations needs app (manifest); app names migrations by digest (annotation).
    p.settings.artifacts.insert(
        name("migrations"),
        ArtifactSettings::depending_on(vec![name("app")]),
    );
    p.settings
        .artifacts
        .insert(name("app"), ArtifactSettings::default());
    let migrations = p.push_release("migrations", "v7", b"m").await;
    p.registry
        .push_annotated_image(
            &p.repo("dev", "app"),
            &Tag::new("v1").unwrap(),
            &[b"app"],
            annotated(&format!("migrations@{}", migrations.digest())),
        )
        .await
        .unwrap();
    let m = p.manager();
    for result in [
        m.promote(req("app", "v1", "dev", "staging"))
            .await
            .map(|_| ()),
        m.promote_with_dependencies(req("app", "v1", "dev", "staging"))
            .await
            .map(|_| ()),
    ] {
        let err = result.unwrap_err();
        assert!(
            err.to_string().contains("app -> migrations -> app"),
            "{err}"
        );
    }
    let plan = m.plan(req("app", "v1", "dev", "staging")).await.unwrap();
    assert!(
        plan.blockers
            .iter()
            .any(|b| b.to_string().contains("app -> migrations -> app"))
    );
    // An artifact naming itself is the smallest cycle.
    let own = p.push_release("lib", "v1", b"lib").await;
    p.registry
        .push_annotated_image(
            &p.repo("dev", "tool"),
            &Tag::new("v1").unwrap(),
            &[b"tool"],
            annotated(&format!("tool@{}", own.digest())),
        )
        .await
        .unwrap();
    let err = m
        .promote(req("tool", "v1", "dev", "staging"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("tool -> tool"), "{err}");
}

#[tokio::test]
async fn the_plan_lists_each_step_in_order() {
    let p = pipeline();
    push_all(&p).await;
    let m = p.manager();
    // Without the dependencies, the plan names the blocker.
    let plain = m.plan(req("app", "v1", "dev", "staging")).await.unwrap();
    assert!(
        plain
            .blockers
            .iter()
            .any(|b| matches!(b, Error::DependencyMissing { missing, .. } if missing.len() == 2))
    );
    assert_eq!(plain.dependencies.len(), 2);
    let group = m
        .plan_with_dependencies(req("app", "v1", "dev", "staging"))
        .await
        .unwrap();
    let steps: Vec<&str> = group.steps.iter().map(|s| s.artifact.as_str()).collect();
    assert_eq!(steps, ["assets", "config", "migrations", "app"]);
    assert!(
        group.would_succeed(),
        "{:?}",
        group.steps.iter().map(|s| &s.blockers).collect::<Vec<_>>()
    );
    // The plan wrote nothing.
    assert!(p.event_kinds().await.is_empty());
    assert_eq!(
        p.tag_digest("staging", "config", "latest-staging").await,
        None
    );
}

#[tokio::test]
async fn the_annotation_names_the_exact_digest() {
    let p = TestPipeline::new(&["dev", "staging"]);
    let v1 = p.push_release("config", "v1", b"config-1").await;
    p.push_release("config", "v2", b"config-2").await;
    p.registry
        .push_annotated_image(
            &p.repo("dev", "app"),
            &Tag::new("v1").unwrap(),
            &[b"app"],
            annotated(&format!("config@{}", v1.digest())),
        )
        .await
        .unwrap();
    let m = p.manager();
    // staging runs config v2: not the digest the annotation names.
    m.promote(req("config", "v2", "dev", "staging"))
        .await
        .unwrap();
    let err = m
        .promote(req("app", "v1", "dev", "staging"))
        .await
        .unwrap_err();
    match &err {
        Error::DependencyMissing { missing, .. } => {
            assert_eq!(missing.len(), 1);
            assert_eq!(&missing[0].digest, v1.digest());
            assert_eq!(missing[0].version.as_str(), "v1");
            assert!(missing[0].current.is_some());
        }
        other => panic!("expected dependency_missing, got {other}"),
    }
    let group = m
        .promote_with_dependencies(req("app", "v1", "dev", "staging"))
        .await
        .unwrap();
    assert_eq!(group.dependencies.len(), 1);
    assert_eq!(group.dependencies[0].version.as_str(), "v1");
    assert_eq!(
        p.tag_digest("staging", "config", "latest-staging")
            .await
            .as_ref(),
        Some(v1.digest())
    );
    // A dependency the source does not hold is a clear error naming it.
    p.registry
        .push_annotated_image(
            &p.repo("dev", "web"),
            &Tag::new("v1").unwrap(),
            &[b"web"],
            annotated(&format!("ghost@{}", Digest::of(b"nothing"))),
        )
        .await
        .unwrap();
    let err = m
        .promote(req("web", "v1", "dev", "staging"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("dependency ghost@"), "{err}");
    // A malformed annotation is refused, naming it.
    p.registry
        .push_annotated_image(
            &p.repo("dev", "bad"),
            &Tag::new("v1").unwrap(),
            &[b"bad"],
            annotated("config:v1"),
        )
        .await
        .unwrap();
    let err = m
        .promote(req("bad", "v1", "dev", "staging"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("dev.floe.dependencies"), "{err}");
}

/// The manifest of the README's "Dependency promotion" section loads, with its catalogue.
#[test]
fn the_readme_dependencies_load() {
    let readme = include_str!("../../README.md");
    let block = readme
        .split("## Dependency promotion")
        .nth(1)
        .and_then(|s| s.split("```yaml\n").nth(1))
        .and_then(|s| s.split("```").next())
        .expect("a yaml block in the Dependency promotion section");
    let yaml: String = block
        .lines()
        .map(|l| format!("{}\n", l.strip_prefix("  ").unwrap_or(l)))
        .collect();
    let config = parse_manifest(&yaml, None).unwrap_or_else(|e| panic!("refused: {e}"));
    let graph = floe_promotion::config::catalogue_graph(&config.settings().artifacts);
    let order: Vec<String> = graph
        .order_for(&name("app"))
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(order, ["config", "migrations", "app"]);
}
