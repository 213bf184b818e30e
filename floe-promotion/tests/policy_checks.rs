//! The `Check` contract, sentence by sentence, for every standard check: a passing request
//! is `Ok(None)`, a refused one `Ok(Some(error))`; checks write nothing; `run_checks` runs a
//! stage's checks only, in order, and stops at the first refusal unless asked for all.

use std::time::Duration;

use chrono::{DateTime, Utc};
use floe_promotion::config::{
    Environment, EnvironmentConfig, FreezeWindow, InMemoryConfig, PromotionSettings,
};
use floe_promotion::history::{AuditEvent, EventKind, EventRecord, HistoryQuery};
use floe_promotion::policy::{Check, CheckContext, Operation, Stage, run_checks, standard_checks};
use floe_promotion::state::EnvLock;
use floe_promotion::testing::pipeline::start_time;
use floe_promotion::*;

fn env(name: &str) -> EnvName {
    EnvName::new(name).unwrap()
}

/// dev, staging, prod; `prod` made strict by `strict`.
fn config(strict: impl FnOnce(&mut Environment)) -> InMemoryConfig {
    let mut envs: Vec<Environment> = ["dev", "staging", "prod"]
        .map(|n| Environment::new(env(n)))
        .to_vec();
    strict(&mut envs[2]);
    InMemoryConfig::new(
        PromotionSettings::new(envs).with_registry(Repository::new("mem/floe").unwrap()),
    )
    .unwrap()
}

struct Case<'a> {
    config: &'a InMemoryConfig,
    history: &'a InMemoryHistory,
    actor: Actor,
    from: EnvName,
    to: EnvName,
    version: Tag,
    lock: Option<EnvLock>,
    override_lock: bool,
    override_window: bool,
    now: DateTime<Utc>,
    digest: Option<Digest>,
    arrival: Option<AuditEvent>,
    artifact: ArtifactName,
    dependencies: Vec<model::Dependency>,
    revocation: Option<floe_promotion::state::Revocation>,
}

impl<'a> Case<'a> {
    fn new(config: &'a InMemoryConfig, history: &'a InMemoryHistory) -> Self {
        Case {
            config,
            history,
            actor: Actor::new("release").unwrap(),
            from: env("staging"),
            to: env("prod"),
            version: Tag::new("v1.2.3").unwrap(),
            lock: None,
            override_lock: false,
            override_window: false,
            now: start_time(),
            digest: Some(Digest::of(b"app")),
            arrival: None,
            artifact: ArtifactName::new("app").unwrap(),
            dependencies: vec![],
            revocation: None,
        }
    }

    async fn run(&self, check: &dyn Check) -> Option<Error> {
        let to = self.config.environment(&self.to).unwrap();
        let ctx = CheckContext {
            operation: Operation::Promote,
            config: self.config,
            history: self.history,
            artifact: &self.artifact,
            version: &self.version,
            from: Some(&self.from),
            to,
            actor: &self.actor,
            override_lock: self.override_lock,
            override_window: self.override_window,
            lock: self.lock.as_ref(),
            now: self.now,
            digest: self.digest.as_ref(),
            arrival: self.arrival.as_ref(),
            dependencies: Some(&self.dependencies),
            revocation: self.revocation.as_ref(),
        };
        check.check(&ctx).await.unwrap()
    }
}

fn named(name: &str) -> Box<dyn Check> {
    standard_checks()
        .into_iter()
        .find(|c| c.name() == name)
        .unwrap_or_else(|| panic!("no standard check named {name}"))
}

async fn arrival(history: &InMemoryHistory, actor: &str, at: DateTime<Utc>) -> AuditEvent {
    let mut e = EventRecord::new(
        EventKind::PromotionSucceeded,
        Actor::new(actor).unwrap(),
        at,
    );
    e.environment = Some(env("staging"));
    e.artifact = Some(ArtifactName::new("app").unwrap());
    e.version = Some(Tag::new("v1.2.3").unwrap());
    e.digest = Some(Digest::of(b"app"));
    history.append(e).await.unwrap()
}

/// Each standard check passes a plain request and refuses the one thing it is about, and
/// no check writes to the history it reads.
#[tokio::test]
async fn each_check_passes_or_refuses_and_writes_nothing() {
    let history = InMemoryHistory::new();
    let came = arrival(&history, "ci", start_time() - chrono::Duration::hours(2)).await;
    let events_before = history.len();
    let relaxed = config(|_| {});
    let strict = config(|prod| {
        prod.authorization.allowed_operators = vec!["release".into()];
        prod.authorization.separation_of_duties = true;
        prod.policy.version_pattern = Some(regex::Regex::new(r"^v\d+\.\d+\.\d+$").unwrap());
        prod.policy.allowed_sources = vec![env("staging")];
        prod.policy.minimum_soak = Some(Duration::from_secs(3600));
        prod.freeze_windows = vec![FreezeWindow::Absolute {
            start: start_time() + chrono::Duration::days(1),
            end: start_time() + chrono::Duration::days(2),
            reason: "year end".into(),
        }];
    });
    for check in standard_checks() {
        let mut ok = Case::new(&strict, &history);
        ok.arrival = Some(came.clone());
        assert!(
            ok.run(check.as_ref()).await.is_none(),
            "{} refused a request it should pass",
            check.name()
        );
        let mut bad = Case::new(&strict, &history);
        bad.arrival = Some(came.clone());
        let expect_refusal = match check.name() {
            "transition" => {
                // dev -> prod skips staging.
                bad.from = env("dev");
                true
            }
            "allowed_sources" => {
                bad.from = env("dev");
                true
            }
            "authorization" => {
                bad.actor = Actor::new("mallory").unwrap();
                true
            }
            "version_pattern" => {
                bad.version = Tag::new("v1.2.3-rc1").unwrap();
                true
            }
            "window" => {
                bad.now = start_time() + chrono::Duration::hours(36);
                true
            }
            "lock" => {
                bad.lock = Some(EnvLock {
                    environment: env("prod"),
                    owner: "ops".into(),
                    reason: "incident".into(),
                    created: start_time(),
                    expires: None,
                });
                true
            }
            "separation_of_duties" => {
                bad.actor = Actor::new("ci").unwrap();
                bad.config = &relaxed;
                // Relaxed has no separation: passes; strict with the promoter refuses.
                assert!(bad.run(check.as_ref()).await.is_none());
                bad.config = &strict;
                bad.actor = Actor::new("ci").unwrap();
                true
            }
            "minimum_soak" => {
                bad.now = came.record.time + chrono::Duration::minutes(30);
                true
            }
            "dependencies" => {
                // A dependency prod does not run.
                bad.dependencies = vec![model::Dependency {
                    artifact: ArtifactName::new("migrations").unwrap(),
                    digest: Digest::of(b"migrations"),
                    version: Tag::new("v7").unwrap(),
                    declared: model::Declared::Manifest,
                }];
                true
            }
            "revocation" => {
                bad.revocation = Some(floe_promotion::state::Revocation {
                    artifact: ArtifactName::new("app").unwrap(),
                    digest: Digest::of(b"app"),
                    reason: "CVE".into(),
                    by: "sec".into(),
                    at: start_time(),
                });
                true
            }
            other => panic!("a standard check without a refusal case here: {other}"),
        };
        assert!(expect_refusal, "{}", check.name());
        let refused = bad.run(check.as_ref()).await;
        assert!(
            refused.is_some(),
            "{} passed a request it should refuse",
            check.name()
        );
    }
    assert_eq!(history.len(), events_before, "checks wrote to the history");
    assert_eq!(
        history.query(&HistoryQuery::default()).await.unwrap().len(),
        events_before
    );
}

/// The lock check passes a locked environment for a break-glass override.
#[tokio::test]
async fn the_lock_check_passes_an_override() {
    let history = InMemoryHistory::new();
    let cfg = config(|_| {});
    let mut case = Case::new(&cfg, &history);
    case.lock = Some(EnvLock {
        environment: env("prod"),
        owner: "ops".into(),
        reason: "incident".into(),
        created: start_time(),
        expires: None,
    });
    case.override_lock = true;
    assert!(case.run(named("lock").as_ref()).await.is_none());
}

/// `run_checks` runs only the given stage's checks (resolved-stage checks never see a request
/// without a digest), in order, and stops at the first refusal unless asked for all.
#[tokio::test]
async fn run_checks_respects_stage_order_and_fail_fast() {
    let history = InMemoryHistory::new();
    let cfg = config(|prod| {
        prod.authorization.allowed_operators = vec!["someone-else".into()];
        prod.policy.allowed_sources = vec![env("dev")];
        prod.policy.minimum_soak = Some(Duration::from_secs(3600));
    });
    let case = Case::new(&cfg, &history);
    let to = cfg.environment(&env("prod")).unwrap();
    let mut ctx = CheckContext {
        operation: Operation::Promote,
        config: &cfg,
        history: &history,
        artifact: &case.artifact,
        version: &case.version,
        from: Some(&case.from),
        to,
        actor: &case.actor,
        override_lock: false,
        override_window: false,
        lock: None,
        now: case.now,
        digest: None,
        arrival: None,
        dependencies: None,
        revocation: None,
    };
    let checks = standard_checks();
    let first = run_checks(&checks, Stage::Request, &ctx, false)
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    assert!(
        matches!(&first[0], Error::PolicyViolation { rule, .. } if *rule == "allowed_sources"),
        "{first:?}"
    );
    let all = run_checks(&checks, Stage::Request, &ctx, true)
        .await
        .unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(matches!(&all[1], Error::Forbidden { .. }), "{all:?}");
    // The soak check is of the resolved stage: not run on the request alone.
    assert!(all.iter().all(|e| !e.to_string().contains("soak")));
    let digest = Digest::of(b"app");
    ctx.digest = Some(&digest);
    let resolved = run_checks(&checks, Stage::Resolved, &ctx, true)
        .await
        .unwrap();
    assert_eq!(resolved.len(), 1, "{resolved:?}");
    assert!(
        resolved[0].to_string().contains("minimum_soak")
            || resolved[0].to_string().contains("soak")
    );
}
