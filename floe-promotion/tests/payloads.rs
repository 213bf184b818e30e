//! Typed event payloads read the details every release has written: those of the committed
//! format-1 chain, and those the manager writes for every kind of event it records. Writing
//! the typed payload back gives the same details, and so the same stored bytes.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use floe_promotion::config::{ApprovalPolicy, ApprovalRule, ApprovalSeparation};
use floe_promotion::history::{
    AuditEvent, Decision, EventKind, HistoryQuery, HostProcess, LockDetails, Payload,
    canonical_json_v1,
};
use floe_promotion::registry::{CopyReport, Evidence, EvidenceKind, EvidenceStatus};
use floe_promotion::release::approval::Phase;
use floe_promotion::state::{HolderProcess, LeaseHolder, Liveness};
use floe_promotion::testing::pipeline::TestPipeline;
use floe_promotion::*;
use uuid::Uuid;

fn fixture() -> Vec<AuditEvent> {
    include_str!("fixtures/format1-chain.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("fixture line"))
        .collect()
}

fn uuid(s: &str) -> Uuid {
    s.parse().unwrap()
}

fn tags(list: &[&str]) -> Vec<Tag> {
    list.iter().map(|t| Tag::new(*t).unwrap()).collect()
}

fn copy(m: u64, mounted: u64, skipped: u64, referrers: u64) -> CopyReport {
    CopyReport {
        manifests_copied: m,
        blobs_mounted: mounted,
        blobs_skipped: skipped,
        referrers_copied: referrers,
        ..CopyReport::default()
    }
}

/// The payload reads back into the record's exact details.
fn assert_round_trips(e: &AuditEvent) -> Payload {
    let p = e
        .record
        .payload()
        .unwrap_or_else(|err| panic!("event {}: {err}", e.seq));
    assert_eq!(p.kind(), e.record.kind, "event {}", e.seq);
    assert_eq!(p.to_details(), e.record.details, "event {}", e.seq);
    p
}

#[test]
fn the_format_1_fixture_reads_as_typed_payloads() {
    let events = fixture();
    assert_eq!(events.len(), 13);
    let mut payloads = BTreeMap::new();
    for e in &events {
        let p = assert_round_trips(e);
        // Written back through the payload, the record hashes to the same stored bytes.
        let rewritten = e.record.clone().with_payload(p.clone());
        assert_eq!(
            canonical_json_v1(e.seq, &rewritten),
            e.content.as_bytes(),
            "event {}",
            e.seq
        );
        payloads.insert(e.seq, p);
    }

    let Payload::EvidenceAttached(ev) = &payloads[&1] else {
        panic!("{:?}", payloads[&1])
    };
    assert_eq!(
        ev.evidence.as_str(),
        "sha256:dc1cab06deeb23735539485f8eb30a69c6d7e45ddc10a27d73e406bb80520e8f"
    );
    assert_eq!(ev.kind, EvidenceKind::Tests);
    assert_eq!(ev.status, EvidenceStatus::Passed);
    assert!(ev.other.is_empty());

    assert_eq!(payloads[&2], Payload::none(EventKind::PromotionRequested));

    let Payload::PromotionSucceeded(s) = &payloads[&3] else {
        panic!("{:?}", payloads[&3])
    };
    assert_eq!(s.request, uuid("0ec57a12-9ef0-43ee-b26c-b91c96d86462"));
    assert_eq!(s.request, events[1].record.id, "the request's event");
    assert_eq!(s.tags, tags(&["v1.0.0-staging", "latest-staging"]));
    assert!(s.confirmed_after_lost_reply.is_empty());
    assert!(!s.noop);
    assert_eq!(s.copy, Some(copy(2, 4, 0, 1)));
    assert_eq!((s.approval, s.executed_by.as_deref()), (None, None));

    let Payload::PromotionSucceeded(s) = &payloads[&5] else {
        panic!("{:?}", payloads[&5])
    };
    assert_eq!(s.tags, tags(&["v1.0.0-prod", "latest-prod"]));

    let Payload::Locked(l) = &payloads[&6] else {
        panic!("{:?}", payloads[&6])
    };
    assert_eq!(l.expires, None);

    assert_eq!(
        payloads[&7],
        Payload::Unlocked(LockDetails::new("ops", "freeze for audit fixture"))
    );
    assert_eq!(
        payloads[&10],
        Payload::LockOverridden(LockDetails::new("ops", "incident 42"))
    );

    let Payload::PromotionSucceeded(s) = &payloads[&11] else {
        panic!("{:?}", payloads[&11])
    };
    assert!(s.noop);
    assert!(s.tags.is_empty());
    assert_eq!(s.copy, Some(copy(0, 0, 4, 0)));
    assert_eq!(s.request, uuid("bfde67d2-9d79-4841-aba2-5f43551d7a7b"));

    let Payload::PromotionFailed(f) = &payloads[&13] else {
        panic!("{:?}", payloads[&13])
    };
    assert_eq!(
        f.error,
        "separation of duties: ci promoted demo:v1.0.0 into staging (event 11) and may not also promote it out of staging"
    );
}

fn env(name: &str) -> EnvName {
    EnvName::new(name).unwrap()
}

fn actor(id: &str, groups: &[&str]) -> Actor {
    Actor::new(id).unwrap().with_groups(groups.iter().copied())
}

fn rule(name: &str, users: &[&str], groups: &[&str]) -> ApprovalRule {
    ApprovalRule {
        name: name.into(),
        required: 1,
        users: users.iter().map(|s| s.to_string()).collect(),
        groups: groups.iter().map(|s| s.to_string()).collect(),
    }
}

fn pending(r: Result<PromotionRecord>) -> Uuid {
    match r {
        Err(Error::ApprovalPending { request_id, .. }) => request_id.parse().unwrap(),
        other => panic!("expected pending, got {other:?}"),
    }
}

async fn events(p: &TestPipeline) -> Vec<AuditEvent> {
    p.history.query(&HistoryQuery::default()).await.unwrap()
}

/// The events recorded since `from` events, each with its typed payload (checked to read back
/// into its exact details).
async fn since(p: &TestPipeline, from: usize) -> Vec<(EventKind, Payload)> {
    events(p).await[from..]
        .iter()
        .map(|e| (e.record.kind, assert_round_trips(e)))
        .collect()
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[tokio::test]
async fn every_event_the_manager_records_reads_as_its_typed_payload() {
    let mut p = TestPipeline::new(&["dev", "staging", "prod"]);
    p.env_mut("prod").approval = Some(ApprovalPolicy {
        rules: vec![
            rule("security", &["ann"], &[]),
            rule("release", &[], &["rel"]),
        ],
        timeout: Duration::from_secs(3600),
        separation: ApprovalSeparation::Requester,
        signers: None,
    });
    let v1 = p.push_release("app", "v1", b"one").await;
    let v2 = p.push_release("app", "v2", b"two").await;
    let m = p.manager();
    let ci = p.actor("ci");
    let ops = p.actor("ops");
    let req = |v: &str, from: &str, to: &str| {
        PromotionRequest::new("app", v, from, to, p.actor("ci")).unwrap()
    };

    // Attest.
    let (_, attached) = m
        .attest(
            &ArtifactName::new("app").unwrap(),
            &Tag::new("v1").unwrap(),
            &env("dev"),
            &Evidence {
                kind: EvidenceKind::Scan,
                status: EvidenceStatus::Failed,
                environment: Some(env("dev")),
                created: p.clock.now(),
                actor: Some("ci".into()),
                details: serde_json::Value::Null,
            },
            &ci,
        )
        .await
        .unwrap();
    let got = since(&p, 0).await;
    let [(EventKind::EvidenceAttached, Payload::EvidenceAttached(e))] = &got[..] else {
        panic!("{got:?}")
    };
    assert_eq!(
        (&e.evidence, &e.kind, e.status),
        (&attached, &EvidenceKind::Scan, EvidenceStatus::Failed)
    );

    // Promote: requested, then succeeded with the request's id, the tags and the copy.
    let n = events(&p).await.len();
    let record = m.promote(req("v1", "dev", "staging")).await.unwrap();
    let got = since(&p, n).await;
    let [
        (EventKind::PromotionRequested, requested),
        (EventKind::PromotionSucceeded, Payload::PromotionSucceeded(s)),
    ] = &got[..]
    else {
        panic!("{got:?}")
    };
    assert_eq!(requested, &Payload::none(EventKind::PromotionRequested));
    assert_eq!(s.request, record.id);
    assert_eq!(s.tags, record.tags_written);
    assert_eq!(s.tags, tags(&["v1-staging", "latest-staging"]));
    assert!(!s.noop);
    assert_eq!(
        s.copy, record.copy,
        "one repository for every environment: no copy"
    );
    assert_eq!((s.approval, &s.executed_by), (None, &None));

    // A promotion that fails records the error.
    let n = events(&p).await.len();
    let err = m.promote(req("v9", "dev", "staging")).await.unwrap_err();
    let got = since(&p, n).await;
    let [_, (EventKind::PromotionFailed, Payload::PromotionFailed(f))] = &got[..] else {
        panic!("{got:?}")
    };
    assert_eq!(f.error, err.to_string());

    // Lock with an expiry, override it, unlock.
    let n = events(&p).await.len();
    let lock = m
        .lock(
            &env("staging"),
            &ops,
            "incident 7",
            Some(chrono::Duration::hours(2)),
        )
        .await
        .unwrap();
    m.promote(req("v2", "dev", "staging").override_lock("hotfix"))
        .await
        .unwrap();
    m.unlock(&env("staging"), &ops, Some("over")).await.unwrap();
    let got = since(&p, n).await;
    let [
        (EventKind::Locked, Payload::Locked(l)),
        (EventKind::PromotionRequested, _),
        (EventKind::LockOverridden, overridden),
        (EventKind::PromotionSucceeded, Payload::PromotionSucceeded(s)),
        (EventKind::Unlocked, unlocked),
    ] = &got[..]
    else {
        panic!("{got:?}")
    };
    assert_eq!(l.expires, lock.expires);
    assert_eq!(l.expires, Some(at("2026-01-05T14:00:00Z")));
    let lock_details = LockDetails::new("ops", "incident 7");
    assert_eq!(overridden, &Payload::LockOverridden(lock_details.clone()));
    assert_eq!(unlocked, &Payload::Unlocked(lock_details));
    assert_eq!(s.tags, tags(&["v2-staging", "latest-staging"]));

    // Roll back to v1.
    let n = events(&p).await.len();
    let rolled = m
        .rollback(RollbackRequest::new("app", "staging", "v1", ops.clone(), "bad v2").unwrap())
        .await
        .unwrap();
    let got = since(&p, n).await;
    let [
        (EventKind::RollbackSucceeded, Payload::RollbackSucceeded(r)),
        (EventKind::HoldPlaced, Payload::HoldPlaced(h)),
    ] = &got[..]
    else {
        panic!("{got:?}")
    };
    assert_eq!(
        (h.holder.as_str(), h.hold_kind),
        ("ops", floe_promotion::state::HoldKind::Rollback),
        "a rollback holds automatic promotion"
    );
    assert_eq!(r.tags, rolled.tags_written);
    assert_eq!(r.tags[0].as_str(), "v1-staging-rollback-1");
    assert!(r.confirmed_after_lost_reply.is_empty());

    // Approvals: a request rejected, a request approved and executed, a request expired.
    let to_prod = |v: &str| PromotionRequest::new("app", v, "staging", "prod", p.actor("bot"));
    let n = events(&p).await.len();
    let first = pending(m.promote(to_prod("v1").unwrap()).await);
    m.reject(first, &actor("ann", &[]), "not today")
        .await
        .unwrap();
    let got = since(&p, n).await;
    let [
        (EventKind::PromotionRequested, _),
        (EventKind::ApprovalRequested, Payload::ApprovalRequested(a)),
        (EventKind::ApprovalDecided, Payload::ApprovalDecided(d)),
    ] = &got[..]
    else {
        panic!("{got:?}")
    };
    assert_eq!(a.approval, first);
    assert_eq!(a.expires, p.clock.now() + chrono::Duration::hours(1));
    assert_eq!(
        a.rules,
        "security (1 needed): users [ann], groups []; release (1 needed): users [], groups [rel]"
    );
    assert_eq!(
        (d.approval, d.decision, d.status),
        (first, Decision::Rejected, Phase::Rejected)
    );

    let n = events(&p).await.len();
    let second = pending(m.promote(to_prod("v1").unwrap()).await);
    assert_ne!(second, first);
    m.approve(second, &actor("ann", &[]), None).await.unwrap();
    let done = m
        .approve(second, &actor("carol", &["rel"]), Some("go"))
        .await
        .unwrap();
    assert!(done.executed.is_some(), "{done:?}");
    let got = since(&p, n).await;
    let [
        (EventKind::PromotionRequested, _),
        (EventKind::ApprovalRequested, Payload::ApprovalRequested(a)),
        (EventKind::ApprovalDecided, Payload::ApprovalDecided(d1)),
        (EventKind::ApprovalDecided, Payload::ApprovalDecided(d2)),
        (EventKind::PromotionSucceeded, Payload::PromotionSucceeded(s)),
    ] = &got[..]
    else {
        panic!("{got:?}")
    };
    assert_eq!(a.approval, second);
    assert_eq!(
        (d1.approval, d1.decision, d1.status),
        (second, Decision::Approved, Phase::Pending)
    );
    assert_eq!(
        (d2.approval, d2.decision, d2.status),
        (second, Decision::Approved, Phase::Approved)
    );
    assert_eq!(s.approval, Some(second));
    assert_eq!(s.request, second);
    assert_eq!(s.executed_by.as_deref(), Some("carol"));
    assert_eq!(s.tags, tags(&["v1-prod", "latest-prod"]));
    assert_eq!(
        p.tag_digest("prod", "app", "latest-prod").await.as_ref(),
        Some(v1.digest())
    );

    m.rollback(RollbackRequest::new("app", "staging", "v2", ops.clone(), "v2 is fine").unwrap())
        .await
        .unwrap();
    let n = events(&p).await.len();
    let third = pending(m.promote(to_prod("v2").unwrap()).await);
    p.clock.advance(chrono::Duration::hours(2));
    let closed = m
        .approve(third, &actor("ann", &[]), None)
        .await
        .unwrap_err();
    assert!(matches!(closed, Error::ApprovalClosed { .. }), "{closed}");
    let got = since(&p, n).await;
    let [
        (EventKind::PromotionRequested, _),
        (EventKind::ApprovalRequested, _),
        (EventKind::ApprovalExpired, Payload::ApprovalExpired(x)),
    ] = &got[..]
    else {
        panic!("{got:?}")
    };
    assert_eq!(x.approval, third);
    let _ = v2;

    // Lease breaks: a holder elsewhere (liveness unknown), a live holder here (forced).
    let n = events(&p).await.len();
    let ttl = chrono::Duration::minutes(15);
    let elsewhere = LeaseHolder {
        name: "ci (elsewhere)".into(),
        process: Some(HolderProcess {
            host: "build-7.example".into(),
            pid: 4242,
            start_ticks: None,
        }),
    };
    let held = p
        .state
        .acquire_lease(&env("staging"), &elsewhere, ttl, p.clock.now())
        .await
        .unwrap();
    m.break_lease(&env("staging"), &ops, "stuck", false)
        .await
        .unwrap();
    let here = LeaseHolder::this_process("ci (running)");
    p.state
        .acquire_lease(&env("staging"), &here, ttl, p.clock.now())
        .await
        .unwrap();
    m.break_lease(&env("staging"), &ops, "break-glass", true)
        .await
        .unwrap();
    let got = since(&p, n).await;
    let [
        (EventKind::LeaseBroken, Payload::LeaseBroken(b1)),
        (EventKind::LeaseBroken, Payload::LeaseBroken(b2)),
    ] = &got[..]
    else {
        panic!("{got:?}")
    };
    assert_eq!(b1.holder, "ci (elsewhere)");
    assert_eq!(b1.expires, held.expires);
    assert_eq!(
        b1.holder_process,
        Some(HostProcess {
            host: "build-7.example".into(),
            pid: 4242
        })
    );
    assert_eq!(b1.holder_liveness, Liveness::Unknown);
    assert!(!b1.forced);
    assert_eq!(b2.holder, "ci (running)");
    assert_eq!(b2.holder_liveness, Liveness::Alive);
    assert_eq!(
        b2.holder_process.as_ref().map(|h| h.pid),
        Some(std::process::id())
    );
    assert!(b2.forced);

    // Every event of the run, whatever its kind, reads back into its exact details.
    for e in events(&p).await {
        assert_round_trips(&e);
    }
    assert!(m.verify().await.unwrap().is_intact());
}
