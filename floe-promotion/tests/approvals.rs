//! Approval workflows on in-memory parts with a controllable clock: one test per rule and
//! refusal of the `Approvals` contract, and a proptest over random sequences of requests,
//! votes, expiries and executions.

use std::sync::Arc;
use std::time::Duration;

use floe_promotion::config::{ApprovalPolicy, ApprovalRule, ApprovalSeparation};
use floe_promotion::gate::{GateOutcome, gate_fn};
use floe_promotion::history::{EventKind, HistoryQuery};
use floe_promotion::manager::Outcome;
use floe_promotion::release::approval::{ApprovalEvent, ApprovalMachine, ApprovalState, Phase};
use floe_promotion::release::machine::{advance, decode, encode};
use floe_promotion::testing::pipeline::TestPipeline;
use floe_promotion::*;
use proptest::prelude::*;
use uuid::Uuid;

fn env(name: &str) -> EnvName {
    EnvName::new(name).unwrap()
}

fn rule(name: &str, required: u32, users: &[&str], groups: &[&str]) -> ApprovalRule {
    ApprovalRule {
        name: name.into(),
        required,
        users: users.iter().map(|s| s.to_string()).collect(),
        groups: groups.iter().map(|s| s.to_string()).collect(),
    }
}

/// dev → staging → prod; prod needs one `security` and one `release` approval.
fn pipeline(separation: ApprovalSeparation) -> TestPipeline {
    let mut p = TestPipeline::new(&["dev", "staging", "prod"]);
    p.env_mut("prod").approval = Some(ApprovalPolicy {
        rules: vec![
            rule("security", 1, &["ann"], &["sec"]),
            rule("release", 1, &["bob"], &["rel"]),
        ],
        timeout: Duration::from_secs(3600),
        separation,
        signers: None,
    });
    p
}

fn actor(id: &str, groups: &[&str]) -> Actor {
    Actor::new(id).unwrap().with_groups(groups.iter().copied())
}

fn to_prod(p: &TestPipeline, who: &str) -> PromotionRequest {
    PromotionRequest::new("app", "v1", "staging", "prod", p.actor(who)).unwrap()
}

/// v1 in staging (promoted by `ci`), ready to go to prod.
async fn in_staging(p: &TestPipeline) -> DefaultPromotionManager {
    p.push_release("app", "v1", b"one").await;
    let m = p.manager();
    m.promote(PromotionRequest::new("app", "v1", "dev", "staging", p.actor("ci")).unwrap())
        .await
        .unwrap();
    m
}

/// Promotes to prod as `who`; the pending request's id.
async fn request(m: &DefaultPromotionManager, p: &TestPipeline, who: &str) -> Uuid {
    match m.promote(to_prod(p, who)).await {
        Err(Error::ApprovalPending { request_id, needed }) => {
            assert_eq!(needed, 2);
            request_id.parse().unwrap()
        }
        other => panic!("expected pending, got {other:?}"),
    }
}

async fn prod_pointer(p: &TestPipeline) -> Option<Digest> {
    p.tag_digest("prod", "app", "latest-prod").await
}

#[tokio::test]
async fn a_promotion_into_an_approval_environment_waits_bound_to_its_digest() {
    let p = pipeline(ApprovalSeparation::Requester);
    let m = in_staging(&p).await;
    let id = request(&m, &p, "release-bot").await;
    assert_eq!(prod_pointer(&p).await, None, "nothing written");
    let again = request(&m, &p, "release-bot").await;
    assert_eq!(again, id, "the same open request");
    let list = m
        .approvals(Some(&env("prod")), Some(Phase::Pending))
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id, id);
    assert_eq!(&list[0].ticket.digest, &p.release_digest("app", "v1").await);
    assert_eq!(list[0].ticket.requested_by.id, "release-bot");
    let events = p.history.query(&HistoryQuery::default()).await.unwrap();
    let requested: Vec<_> = events
        .iter()
        .filter(|e| e.record.kind == EventKind::ApprovalRequested)
        .collect();
    assert_eq!(requested.len(), 1, "one request, not one per promote");
    assert_eq!(requested[0].record.details["approval"], id.to_string());
    // The plan shows the rules a real run waits for, and the open request.
    let plan = m.plan(to_prod(&p, "release-bot")).await.unwrap();
    let approval = plan.approval.expect("approval planned");
    assert_eq!(approval.rules.len(), 2);
    assert_eq!(approval.open_request, Some(id));
}

#[tokio::test]
async fn refusals_name_who_may_approve() {
    let p = pipeline(ApprovalSeparation::Requester);
    let m = in_staging(&p).await;
    let id = request(&m, &p, "release-bot").await;
    for (who, groups, expect) in [
        ("release-bot", &[][..], "requested this promotion"),
        ("eve", &["admins"][..], "matches no approval rule"),
    ] {
        let e = m.approve(id, &actor(who, groups), None).await.unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, Error::Forbidden { .. }), "{text}");
        assert!(text.contains(expect), "{text}");
        assert!(
            text.contains("security (1 needed): users [ann], groups [sec]"),
            "{text}"
        );
    }
    m.approve(id, &actor("ann", &[]), Some("looks fine"))
        .await
        .unwrap();
    let twice = m.approve(id, &actor("ann", &[]), None).await.unwrap_err();
    assert!(matches!(twice, Error::Conflict(_)), "{twice}");
    // Someone in both groups counts once: the release rule is still missing.
    let both = m.approve(id, &actor("dan", &["sec"]), None).await.unwrap();
    assert!(both.executed.is_none());
    assert_eq!(both.request.missing, [("release".to_string(), 1)]);
    assert_eq!(prod_pointer(&p).await, None);
}

#[tokio::test]
async fn the_quorum_executes_the_promotion_at_once_and_closes_the_request() {
    let p = pipeline(ApprovalSeparation::Requester);
    let m = in_staging(&p).await;
    let id = request(&m, &p, "release-bot").await;
    let first = m.approve(id, &actor("ann", &[]), None).await.unwrap();
    assert_eq!(first.request.status, Phase::Pending);
    let second = m
        .approve(id, &actor("carol", &["rel"]), None)
        .await
        .unwrap();
    let record = second.executed.expect("executed");
    assert_eq!(record.outcome, Outcome::Promoted);
    assert_eq!(second.request.status, Phase::Executed);
    assert_eq!(
        prod_pointer(&p).await,
        Some(p.release_digest("app", "v1").await)
    );
    let success = p
        .history
        .query(&HistoryQuery::default())
        .await
        .unwrap()
        .into_iter()
        .rfind(|e| e.record.kind == EventKind::PromotionSucceeded)
        .unwrap();
    assert_eq!(success.record.details["approval"], id.to_string());
    assert_eq!(success.record.details["executed_by"], "carol");
    assert_eq!(success.record.actor.id, "release-bot");
    let decided = p
        .event_kinds()
        .await
        .into_iter()
        .filter(|k| *k == EventKind::ApprovalDecided)
        .count();
    assert_eq!(decided, 2);
    for e in [
        m.approve(id, &actor("bob", &[]), None).await.unwrap_err(),
        m.execute(id, &actor("bob", &[])).await.unwrap_err(),
    ] {
        assert!(matches!(e, Error::ApprovalClosed { .. }), "{e}");
    }
}

#[tokio::test]
async fn one_rejection_is_final_and_needs_a_reason() {
    let p = pipeline(ApprovalSeparation::Requester);
    let m = in_staging(&p).await;
    let id = request(&m, &p, "release-bot").await;
    let blank = m.reject(id, &actor("bob", &[]), " ").await.unwrap_err();
    assert!(matches!(blank, Error::InvalidInput { .. }), "{blank}");
    m.approve(id, &actor("ann", &[]), None).await.unwrap();
    let rejected = m
        .reject(id, &actor("bob", &[]), "not during the freeze")
        .await
        .unwrap();
    assert_eq!(rejected.status, Phase::Rejected);
    let late = m
        .approve(id, &actor("carol", &["rel"]), None)
        .await
        .unwrap_err();
    let text = late.to_string();
    assert!(matches!(late, Error::ApprovalClosed { .. }), "{text}");
    assert!(
        text.contains("rejected by bob: not during the freeze"),
        "{text}"
    );
    assert!(matches!(
        m.execute(id, &actor("ann", &[])).await.unwrap_err(),
        Error::ApprovalClosed { .. }
    ));
    // A new promote makes a new request; the rejected one stays rejected.
    let next = request(&m, &p, "release-bot").await;
    assert_ne!(next, id);
}

#[tokio::test]
async fn an_expired_request_can_be_neither_approved_nor_executed() {
    let p = pipeline(ApprovalSeparation::Requester);
    let m = in_staging(&p).await;
    let id = request(&m, &p, "release-bot").await;
    m.approve(id, &actor("ann", &[]), None).await.unwrap();
    p.clock.advance(chrono::Duration::minutes(61));
    let listed = m.approvals(None, None).await.unwrap();
    assert_eq!(
        listed[0].status,
        Phase::Expired,
        "shown expired when past due"
    );
    let e = m.approve(id, &actor("bob", &[]), None).await.unwrap_err();
    assert!(matches!(e, Error::ApprovalClosed { .. }), "{e}");
    assert!(e.to_string().contains("expired"), "{e}");
    assert!(matches!(
        m.execute(id, &actor("bob", &[])).await.unwrap_err(),
        Error::ApprovalClosed { .. }
    ));
    assert_eq!(
        p.event_kinds()
            .await
            .into_iter()
            .filter(|k| *k == EventKind::ApprovalExpired)
            .count(),
        1,
        "the expiry is recorded once"
    );
    assert_eq!(prod_pointer(&p).await, None);
}

#[tokio::test]
async fn a_blocked_execution_stays_approved_until_executed_without_new_votes() {
    let p = pipeline(ApprovalSeparation::Requester);
    let m = in_staging(&p).await;
    let id = request(&m, &p, "release-bot").await;
    m.lock(&env("prod"), &p.actor("ops"), "incident", None)
        .await
        .unwrap();
    m.approve(id, &actor("ann", &[]), None).await.unwrap();
    let outcome = m.approve(id, &actor("bob", &[]), None).await.unwrap();
    assert!(outcome.executed.is_none());
    assert!(
        outcome
            .execution_blocked
            .as_deref()
            .is_some_and(|b| b.contains("locked")),
        "{outcome:?}"
    );
    assert_eq!(outcome.request.status, Phase::Approved);
    assert_eq!(prod_pointer(&p).await, None);
    // Still locked: execute is refused, and the request stays approved.
    assert!(matches!(
        m.execute(id, &actor("ops", &[])).await.unwrap_err(),
        Error::Locked { .. }
    ));
    m.unlock(&env("prod"), &p.actor("ops"), None).await.unwrap();
    // The same promote again runs the approved request.
    let record = m.promote(to_prod(&p, "release-bot")).await.unwrap();
    assert_eq!(record.outcome, Outcome::Promoted);
    assert_eq!(
        prod_pointer(&p).await,
        Some(p.release_digest("app", "v1").await)
    );
    assert_eq!(
        m.approvals(None, None).await.unwrap()[0].status,
        Phase::Executed
    );
}

#[tokio::test]
async fn gates_run_again_when_the_approved_promotion_executes() {
    let p = pipeline(ApprovalSeparation::Requester);
    p.push_release("app", "v1", b"one").await;
    let open = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let gate_open = open.clone();
    let m = p
        .builder()
        .gate(
            env("prod"),
            Arc::new(gate_fn("change-window", move |_| {
                let open = gate_open.clone();
                async move {
                    Ok(if open.load(std::sync::atomic::Ordering::SeqCst) {
                        GateOutcome::pass("open")
                    } else {
                        GateOutcome::fail("closed")
                    })
                }
            })),
        )
        .build()
        .unwrap();
    m.promote(PromotionRequest::new("app", "v1", "dev", "staging", p.actor("ci")).unwrap())
        .await
        .unwrap();
    let id = request(&m, &p, "release-bot").await;
    open.store(false, std::sync::atomic::Ordering::SeqCst);
    m.approve(id, &actor("ann", &[]), None).await.unwrap();
    let outcome = m.approve(id, &actor("bob", &[]), None).await.unwrap();
    assert!(
        outcome
            .execution_blocked
            .as_deref()
            .is_some_and(|b| b.contains("change-window")),
        "{outcome:?}"
    );
    open.store(true, std::sync::atomic::Ordering::SeqCst);
    m.execute(id, &actor("ann", &[])).await.unwrap();
    assert!(prod_pointer(&p).await.is_some());
}

#[tokio::test]
async fn promoters_of_the_digest_may_not_approve_under_promoters() {
    let p = pipeline(ApprovalSeparation::Promoters);
    let m = in_staging(&p).await; // `ci` promoted v1 into staging
    let id = request(&m, &p, "release-bot").await;
    let e = m
        .approve(id, &actor("ci", &["sec"]), None)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("promoted") && matches!(e, Error::Forbidden { .. }),
        "{e}"
    );
    m.approve(id, &actor("ann", &[]), None).await.unwrap();
}

#[tokio::test]
async fn an_execution_interrupted_after_the_quorum_completes_exactly_once() {
    let p = pipeline(ApprovalSeparation::Requester);
    let m = in_staging(&p).await;
    let id = request(&m, &p, "release-bot").await;
    m.approve(id, &actor("ann", &[]), None).await.unwrap();
    // The last vote is stored, but the process dies before it executes: the request is
    // approved (or executing) with no tag written.
    let release = p_releases(&m).get(id).await.unwrap();
    let state: ApprovalState = decode::<ApprovalMachine>(&release).unwrap();
    let mut vote_state = state.clone();
    vote_state
        .votes
        .push(floe_promotion::release::approval::Vote {
            actor: actor("bob", &[]),
            approve: true,
            comment: None,
            time: p.clock.now(),
            signature: None,
        });
    vote_state.phase = Phase::Approved;
    let started = advance::<ApprovalMachine>(&vote_state, ApprovalEvent::Start).unwrap();
    p_releases(&m)
        .update(
            id,
            release.version,
            encode::<ApprovalMachine>(&started.state).unwrap(),
            p.clock.now(),
        )
        .await
        .unwrap();
    assert_eq!(prod_pointer(&p).await, None);
    let record = m.execute(id, &actor("ops", &[])).await.unwrap();
    assert_eq!(record.outcome, Outcome::Promoted);
    let successes = |events: Vec<floe_promotion::history::AuditEvent>| {
        events
            .into_iter()
            .filter(|e| {
                e.record.kind == EventKind::PromotionSucceeded
                    && e.record.details.get("approval") == Some(&id.to_string())
            })
            .count()
    };
    assert_eq!(
        successes(p.history.query(&HistoryQuery::default()).await.unwrap()),
        1
    );
    // A second process that also saw it executing (its state written back) finds the
    // promotion recorded and does not promote again.
    let now = p_releases(&m).get(id).await.unwrap();
    p_releases(&m)
        .update(
            id,
            now.version,
            encode::<ApprovalMachine>(&started.state).unwrap(),
            p.clock.now(),
        )
        .await
        .unwrap();
    let again = m.execute(id, &actor("ops", &[])).await.unwrap();
    assert!(again.warnings[0].contains("executed already"), "{again:?}");
    assert_eq!(
        successes(p.history.query(&HistoryQuery::default()).await.unwrap()),
        1,
        "nothing doubled"
    );
    assert_eq!(
        m.approvals(None, None).await.unwrap()[0].status,
        Phase::Executed
    );
}

/// The pipeline's release store, through the manager's builder default: tests keep their own.
fn p_releases(m: &DefaultPromotionManager) -> Arc<dyn ReleaseStore> {
    m.release_store().clone()
}

#[derive(Clone, Debug)]
enum Op {
    Request(usize),
    Approve(usize, usize),
    Reject(usize, usize),
    Execute(usize),
    Advance(u32),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(
        prop_oneof![
            (0usize..6).prop_map(Op::Request),
            (0usize..6, 0usize..4).prop_map(|(a, r)| Op::Approve(a, r)),
            (0usize..6, 0usize..4).prop_map(|(a, r)| Op::Reject(a, r)),
            (0usize..4).prop_map(Op::Execute),
            (1u32..40).prop_map(Op::Advance),
        ],
        1..24,
    )
}

/// The people of the proptest: some in rules' users or groups, some in none.
fn person(i: usize) -> Actor {
    match i {
        0 => actor("ann", &[]),
        1 => actor("bob", &[]),
        2 => actor("dan", &["sec", "rel"]),
        3 => actor("eve", &["admins"]),
        4 => actor("carol", &["rel"]),
        _ => actor("release-bot", &["sec"]),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// No tag is ever written into prod unless the request it executes has approvals that can
    /// be assigned to its rules by distinct allowed people, none of them the requester.
    #[test]
    fn no_tag_without_a_valid_matching_of_distinct_allowed_approvers(ops in ops()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let p = pipeline(ApprovalSeparation::Requester);
            let m = in_staging(&p).await;
            let mut ids: Vec<Uuid> = Vec::new();
            for op in ops {
                match op {
                    Op::Request(who) => {
                        let r = PromotionRequest::new("app", "v1", "staging", "prod", person(who)).unwrap();
                        if let Err(Error::ApprovalPending { request_id, .. }) = m.promote(r).await {
                            let id: Uuid = request_id.parse().unwrap();
                            if !ids.contains(&id) {
                                ids.push(id);
                            }
                        }
                    }
                    Op::Approve(who, r) => {
                        if let Some(id) = ids.get(r) {
                            let _ = m.approve(*id, &person(who), None).await;
                        }
                    }
                    Op::Reject(who, r) => {
                        if let Some(id) = ids.get(r) {
                            let _ = m.reject(*id, &person(who), "no").await;
                        }
                    }
                    Op::Execute(r) => {
                        if let Some(id) = ids.get(r) {
                            let _ = m.execute(*id, &person(0)).await;
                        }
                    }
                    Op::Advance(minutes) => p.clock.advance(chrono::Duration::minutes(minutes.into())),
                }
            }
            let written = prod_pointer(&p).await.is_some();
            let views = m.approvals(None, None).await.unwrap();
            let executed: Vec<_> = views.iter().filter(|v| v.status == Phase::Executed).collect();
            prop_assert_eq!(written, !executed.is_empty(), "a tag without an executed request, or the reverse");
            prop_assert!(executed.len() <= 1);
            for v in executed {
                prop_assert!(v.missing.is_empty(), "executed without a quorum: {:?}", v);
                let mut seen = std::collections::HashSet::new();
                for (rule, people) in &v.assigned {
                    let rule = v.ticket.rules.iter().find(|r| &r.name == rule).unwrap();
                    for id in people {
                        prop_assert!(id != &v.ticket.requested_by.id, "the requester approved");
                        prop_assert!(seen.insert(id.clone()), "{} counted twice", id);
                        let vote = v.votes.iter().find(|x| &x.actor.id == id && x.approve).unwrap();
                        prop_assert!(rule.admits(&vote.actor), "{} not allowed by {}", id, rule.name);
                        prop_assert!(vote.time < v.ticket.expires, "a vote after expiry");
                    }
                }
                prop_assert!(!v.votes.iter().any(|x| !x.approve), "executed after a rejection");
            }
            Ok(())
        })?;
    }
}
