//! Free text cannot forge output: every free-text field that reaches the manager (reasons of
//! promotions, overrides, rollbacks, locks and unlocks, actor ids and groups, the actor of
//! evidence) is refused when it holds a newline, an ANSI escape or a bidirectional override,
//! before anything is written or recorded.

use floe_promotion::history::HistoryQuery;
use floe_promotion::registry::{Evidence, EvidenceKind, EvidenceStatus};
use floe_promotion::testing::pipeline::TestPipeline;
use floe_promotion::*;

/// A reason that prints a forged `floe history` line and clears the screen.
const FORGED: &str = "ok\n#99    2026-01-05 12:00:00 unlocked            admin      prod\u{1b}[2J";
const HOSTILE: [&str; 4] = [FORGED, "red\u{1b}[31m", "cr\rover", "rtl\u{202E}txet"];

fn env(name: &str) -> EnvName {
    EnvName::new(name).unwrap()
}

async fn pipeline() -> (TestPipeline, DefaultPromotionManager) {
    let p = TestPipeline::new(&["dev", "staging"]);
    p.push_release("app", "v1", b"one").await;
    p.push_release("app", "v2", b"two").await;
    let m = p.manager();
    m.promote(PromotionRequest::new("app", "v1", "dev", "staging", p.actor("ci")).unwrap())
        .await
        .unwrap();
    m.promote(PromotionRequest::new("app", "v2", "dev", "staging", p.actor("ci")).unwrap())
        .await
        .unwrap();
    (p, m)
}

async fn event_count(p: &TestPipeline) -> usize {
    p.history
        .query(&HistoryQuery::default())
        .await
        .unwrap()
        .len()
}

/// The refusal is an invalid-input error naming `field`, and its message holds no raw
/// control character.
fn assert_refused<T: std::fmt::Debug>(result: Result<T>, field: &str) {
    let err = result.unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput { what, .. } if *what == field),
        "{field}: {err:?}"
    );
    let text = err.to_string();
    assert!(
        !text
            .chars()
            .any(floe_promotion::model::text::is_unsafe_char),
        "{text:?}"
    );
}

#[tokio::test]
async fn promotion_reasons_with_control_characters_are_refused() {
    let (p, m) = pipeline().await;
    let before = event_count(&p).await;
    for bad in HOSTILE {
        let mut r = PromotionRequest::new("app", "v1", "dev", "staging", p.actor("ci")).unwrap();
        r.reason = Some(bad.into());
        assert_refused(m.promote(r.clone()).await, "reason");
        assert_refused(m.plan(r).await, "reason");
        let over = PromotionRequest::new("app", "v1", "dev", "staging", p.actor("ci"))
            .unwrap()
            .override_lock(bad);
        assert_refused(m.promote(over).await, "reason");
    }
    assert_eq!(event_count(&p).await, before, "nothing was recorded");
}

#[tokio::test]
async fn rollback_reasons_with_control_characters_are_refused() {
    let (p, m) = pipeline().await;
    let before = event_count(&p).await;
    for bad in HOSTILE {
        let r = RollbackRequest::new("app", "staging", "v1", p.actor("ops"), bad).unwrap();
        assert_refused(m.rollback(r.clone()).await, "reason");
        assert_refused(m.plan_rollback(r).await, "reason");
    }
    assert_eq!(event_count(&p).await, before);
    assert_eq!(
        p.tag_digest("staging", "app", "latest-staging").await,
        Some(p.release_digest("app", "v2").await)
    );
}

#[tokio::test]
async fn lock_and_unlock_reasons_with_control_characters_are_refused() {
    let (p, m) = pipeline().await;
    let before = event_count(&p).await;
    for bad in HOSTILE {
        assert_refused(
            m.lock(&env("staging"), &p.actor("ops"), bad, None).await,
            "reason",
        );
    }
    assert!(
        m.status(None)
            .await
            .unwrap()
            .iter()
            .all(|s| s.lock.is_none())
    );
    m.lock(&env("staging"), &p.actor("ops"), "freeze", None)
        .await
        .unwrap();
    for bad in HOSTILE {
        assert_refused(
            m.unlock(&env("staging"), &p.actor("ops"), Some(bad)).await,
            "reason",
        );
    }
    assert!(
        m.status(Some(&env("staging"))).await.unwrap()[0]
            .lock
            .is_some()
    );
    assert_eq!(event_count(&p).await, before + 1, "only the good lock");
}

#[tokio::test]
async fn actor_ids_and_groups_with_control_characters_are_refused() {
    let (p, m) = pipeline().await;
    let before = event_count(&p).await;
    for bad in HOSTILE {
        assert!(Actor::new(bad).is_err(), "{bad:?}");
        // Fields are public: a caller can build an actor without `Actor::new`.
        let forged = Actor {
            id: bad.into(),
            groups: vec![],
        };
        let r = PromotionRequest::new("app", "v1", "dev", "staging", forged.clone()).unwrap();
        assert_refused(m.promote(r).await, "actor id");
        assert_refused(
            m.lock(&env("staging"), &forged, "x", None).await,
            "actor id",
        );
        let grouped = p.actor("ci").with_groups([bad]);
        let r = PromotionRequest::new("app", "v1", "dev", "staging", grouped.clone()).unwrap();
        assert_refused(m.promote(r).await, "actor group");
        let r = RollbackRequest::new("app", "staging", "v1", grouped.clone(), "bad").unwrap();
        assert_refused(m.rollback(r).await, "actor group");
        assert_refused(
            m.unlock(&env("staging"), &grouped, None).await,
            "actor group",
        );
    }
    assert_eq!(event_count(&p).await, before);
}

#[tokio::test]
async fn evidence_actors_with_control_characters_are_refused() {
    let (p, m) = pipeline().await;
    let before = event_count(&p).await;
    for bad in HOSTILE {
        let evidence = Evidence {
            kind: EvidenceKind::Tests,
            status: EvidenceStatus::Passed,
            environment: None,
            created: p.clock.now(),
            actor: Some(bad.into()),
            details: serde_json::Value::Null,
        };
        let name = ArtifactName::new("app").unwrap();
        let version = Tag::new("v1").unwrap();
        assert_refused(
            m.attest(&name, &version, &env("dev"), &evidence, &p.actor("ci"))
                .await,
            "evidence actor",
        );
    }
    assert_eq!(event_count(&p).await, before);
}
