//! The promotion path itself: one digest through every environment, its tags, the transitions
//! allowed and refused, and how the digest is resolved and copied.

use std::sync::Arc;

use floe_promotion::gate::{GateOutcome, gate_fn};
use floe_promotion::history::EventKind;
use floe_promotion::manager::Outcome;
use floe_promotion::*;

use super::{env, req, three};

#[tokio::test]
async fn promotes_through_every_environment_with_one_digest() {
    let p = three();
    let pushed = p.push_release("app", "v1.0.0", b"one").await;
    let m = p.manager();
    let r = m
        .promote(req("v1.0.0", "dev", "staging", "ci"))
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Promoted);
    assert_eq!(&r.digest, pushed.digest());
    assert_eq!(
        r.tags_written.iter().map(Tag::as_str).collect::<Vec<_>>(),
        ["v1.0.0-staging", "latest-staging"]
    );
    m.promote(req("v1.0.0", "staging", "prod", "release"))
        .await
        .unwrap();
    for (e, t) in [
        ("dev", "v1.0.0"),
        ("staging", "v1.0.0-staging"),
        ("staging", "latest-staging"),
        ("prod", "v1.0.0-prod"),
        ("prod", "latest-prod"),
    ] {
        assert_eq!(
            p.tag_digest(e, "app", t).await.as_ref(),
            Some(pushed.digest()),
            "{e}:{t}"
        );
    }
    assert_eq!(
        p.event_kinds().await,
        [
            EventKind::PromotionRequested,
            EventKind::PromotionSucceeded,
            EventKind::PromotionRequested,
            EventKind::PromotionSucceeded
        ]
    );
    let status = m.status(None).await.unwrap();
    assert_eq!(status.len(), 3);
    assert!(status[0].deployments.is_empty());
    assert_eq!(status[2].deployments[0].version.as_str(), "v1.0.0");
    assert_eq!(status[2].deployments[0].by, "release");
    assert!(m.verify().await.unwrap().is_intact());
    m.deliver_notifications().await.unwrap();
    assert_eq!(p.notifier.events().len(), 4);
}

#[tokio::test]
async fn same_digest_again_is_a_no_op() {
    let p = three();
    p.push_release("app", "v1", b"one").await;
    let m = p.manager();
    m.promote(req("v1", "dev", "staging", "ci")).await.unwrap();
    let again = m.promote(req("v1", "dev", "staging", "ci")).await.unwrap();
    assert_eq!(again.outcome, Outcome::AlreadyPromoted);
    assert!(again.tags_written.is_empty());
}

#[tokio::test]
async fn another_digest_under_an_env_tag_is_an_immutability_error() {
    let p = three();
    p.push_release("app", "v1", b"one").await;
    let m = p.manager();
    m.promote(req("v1", "dev", "staging", "ci")).await.unwrap();
    // CI re-pushes v1 with other content: the staging tag may not move.
    let other = p.push_release("app", "v1", b"two").await;
    let err = m
        .promote(req("v1", "dev", "staging", "ci"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Immutability { .. }), "{err}");
    assert_ne!(
        p.tag_digest("staging", "app", "v1-staging").await.as_ref(),
        Some(other.digest())
    );
    assert_ne!(
        p.tag_digest("staging", "app", "latest-staging")
            .await
            .as_ref(),
        Some(other.digest())
    );
    assert_eq!(
        p.event_kinds().await.last(),
        Some(&EventKind::PromotionFailed)
    );
}

#[tokio::test]
async fn refuses_backwards_skipping_and_same_environment() {
    let p = three();
    p.push_release("app", "v1", b"one").await;
    let m = p.manager();
    for (from, to, needle) in [
        ("dev", "prod", "skip staging"),
        ("staging", "dev", "forward only"),
        ("dev", "dev", "same environment"),
    ] {
        let err = m.promote(req("v1", from, to, "ci")).await.unwrap_err();
        match &err {
            Error::InvalidTransition { reason, .. } => assert!(reason.contains(needle), "{err}"),
            other => panic!("{from}->{to}: {other}"),
        }
    }
    assert!(p.tag_digest("prod", "app", "latest-prod").await.is_none());
    assert_eq!(
        p.event_kinds()
            .await
            .iter()
            .filter(|k| **k == EventKind::PromotionFailed)
            .count(),
        3
    );
}

#[tokio::test]
async fn skipping_is_allowed_when_the_settings_say_so() {
    let mut p = three();
    p.settings.allow_skip = true;
    p.push_release("app", "v1", b"one").await;
    p.manager()
        .promote(req("v1", "dev", "prod", "ci"))
        .await
        .unwrap();
    assert!(p.tag_digest("prod", "app", "v1-prod").await.is_some());
}

#[tokio::test]
async fn unknown_environment_is_not_found() {
    let p = three();
    p.push_release("app", "v1", b"one").await;
    let err = p
        .manager()
        .promote(req("v1", "dev", "qa", "ci"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("qa"));
    assert!(
        p.history.is_empty(),
        "input that names no environment is not recorded"
    );
}

#[tokio::test]
async fn version_missing_in_source_is_not_found() {
    let p = three();
    p.push_release("app", "v1", b"one").await;
    let err = p
        .manager()
        .promote(req("v9", "dev", "staging", "ci"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
}

#[tokio::test]
async fn later_environment_needs_the_version_promoted_there() {
    let p = three();
    p.push_release("app", "v1", b"one").await;
    let err = p
        .manager()
        .promote(req("v1", "staging", "prod", "ci"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::VersionNotPromoted { .. }), "{err}");
}

#[tokio::test]
async fn env_tag_that_disagrees_with_history_is_refused() {
    let p = three();
    p.push_release("app", "v1", b"one").await;
    let m = p.manager();
    m.promote(req("v1", "dev", "staging", "ci")).await.unwrap();
    // Someone moves v1-staging behind the library's back.
    let intruder = p
        .registry
        .push_image(
            &p.repo("staging", "app"),
            &Tag::new("v1-staging").unwrap(),
            &[b"x"],
        )
        .await
        .unwrap();
    let err = m
        .promote(req("v1", "staging", "prod", "ci"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    assert!(err.to_string().contains(&intruder.digest().to_string()));
}

#[tokio::test]
async fn the_digest_is_resolved_once_even_if_the_source_tag_moves() {
    let p = three();
    let original = p.push_release("app", "v1", b"one").await;
    let registry = p.registry.clone();
    let dev = p.repo("dev", "app");
    let m = p
        .builder()
        .gate(
            env("staging"),
            Arc::new(gate_fn("moves-the-tag", move |ctx| {
                let registry = registry.clone();
                let dev = dev.clone();
                async move {
                    registry
                        .push_image(&dev, &Tag::new("v1").unwrap(), &[b"evil"])
                        .await?;
                    Ok(GateOutcome::pass(format!("checked {}", ctx.digest)))
                }
            })),
        )
        .build()
        .unwrap();
    let r = m.promote(req("v1", "dev", "staging", "ci")).await.unwrap();
    assert_eq!(&r.digest, original.digest());
    assert_eq!(
        p.tag_digest("staging", "app", "v1-staging").await.as_ref(),
        Some(original.digest())
    );
    assert_ne!(
        p.tag_digest("dev", "app", "v1").await.as_ref(),
        Some(original.digest())
    );
}

#[tokio::test]
async fn separate_repositories_are_copied_by_mount() {
    let mut p = three();
    p.env_mut("staging").repository = Some(Repository::new("mem/staging").unwrap());
    p.env_mut("prod").repository = Some(Repository::new("mem/prod").unwrap());
    let pushed = p.push_release("app", "v1", b"one").await;
    let m = p.manager();
    let uploads = p.registry.blob_uploads();
    let r = m.promote(req("v1", "dev", "staging", "ci")).await.unwrap();
    let copy = r.copy.expect("a copy was needed");
    assert_eq!(copy.blobs_mounted, 2);
    assert_eq!(p.registry.blob_uploads(), uploads, "no blob bytes uploaded");
    assert_eq!(r.repository.as_str(), "mem/staging/app");
    m.promote(req("v1", "staging", "prod", "ops"))
        .await
        .unwrap();
    assert_eq!(
        p.tag_digest("prod", "app", "latest-prod").await.as_ref(),
        Some(pushed.digest())
    );
}
