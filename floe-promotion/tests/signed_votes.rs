//! Signed approval votes (`approval.signers`): the identity of a vote is the principal of the
//! key that signed it, with the manifest's groups; one test per refusal of the `Approvals`
//! contract's signed-vote sentence, re-verification of the recorded events, and the manifest
//! errors.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use floe_promotion::config::{
    AllowedSigners, ApprovalPolicy, ApprovalRule, ApprovalSeparation, parse_manifest,
};
use floe_promotion::history::{EventKind, HistoryQuery, Payload};
use floe_promotion::model::{VoteDecision, VoteMessage, VoteSignature};
use floe_promotion::policy::signed_vote::{RecordedVote, verify_recorded_vote};
use floe_promotion::release::approval::Phase;
use floe_promotion::testing::pipeline::TestPipeline;
use floe_promotion::*;
use ssh_key::rand_core::OsRng;
use ssh_key::{Algorithm, EcdsaCurve, HashAlg, LineEnding, PrivateKey};
use uuid::Uuid;

struct Keys {
    bob: PrivateKey,
    erin: PrivateKey,
    mallory: PrivateKey,
    gitonly: PrivateKey,
}

impl Keys {
    fn new() -> Self {
        let ed = || PrivateKey::random(&mut OsRng, Algorithm::Ed25519).unwrap();
        Keys {
            bob: ed(),
            erin: PrivateKey::random(
                &mut OsRng,
                Algorithm::Ecdsa {
                    curve: EcdsaCurve::NistP256,
                },
            )
            .unwrap(),
            mallory: ed(),
            gitonly: ed(),
        }
    }

    /// bob and erin may sign votes; gitonly's line allows only git signatures; mallory is not
    /// listed.
    fn allowed_signers(&self) -> String {
        let public = |k: &PrivateKey| k.public_key().to_openssh().unwrap();
        format!(
            "# floe approvers\nbob {}\nerin namespaces=\"floe-approval\" {}\ngitonly namespaces=\"git\" {}\n",
            public(&self.bob),
            public(&self.erin),
            public(&self.gitonly)
        )
    }
}

fn rule(name: &str, users: &[&str], groups: &[&str]) -> ApprovalRule {
    ApprovalRule {
        name: name.into(),
        required: 1,
        users: users.iter().map(|s| s.to_string()).collect(),
        groups: groups.iter().map(|s| s.to_string()).collect(),
    }
}

struct Fixture {
    p: TestPipeline,
    m: DefaultPromotionManager,
    keys: Keys,
    _dir: tempfile::TempDir,
}

/// dev → staging → prod; prod needs a `review` by bob and a `release` by a member of the
/// `release` group (erin, per the manifest's groups), each signed. staging needs one
/// unsigned approval by ann.
async fn fixture() -> Fixture {
    let keys = Keys::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("allowed_signers");
    std::fs::write(&file, keys.allowed_signers()).unwrap();
    let mut p = TestPipeline::new(&["dev", "staging", "prod"]);
    p.settings
        .groups
        .insert("release".into(), vec!["erin".into(), "gitonly".into()]);
    p.env_mut("prod").approval = Some(ApprovalPolicy {
        rules: vec![
            rule("review", &["bob"], &[]),
            rule("release", &[], &["release"]),
        ],
        timeout: Duration::from_secs(3600),
        separation: ApprovalSeparation::Requester,
        signers: Some(Arc::new(AllowedSigners::load(&file).unwrap())),
    });
    p.push_release("app", "v1", b"one").await;
    let m = p.manager();
    m.promote(PromotionRequest::new("app", "v1", "dev", "staging", p.actor("ci")).unwrap())
        .await
        .unwrap();
    Fixture {
        p,
        m,
        keys,
        _dir: dir,
    }
}

/// Asks to promote v1 into prod; the pending request's id.
async fn request(f: &Fixture) -> Uuid {
    let req =
        PromotionRequest::new("app", "v1", "staging", "prod", f.p.actor("release-bot")).unwrap();
    match f.m.promote(req).await {
        Err(Error::ApprovalPending { request_id, .. }) => request_id.parse().unwrap(),
        other => panic!("expected pending, got {other:?}"),
    }
}

/// The message a voter signs for `decision` on request `id`, as the library builds it.
async fn message(f: &Fixture, id: Uuid, decision: VoteDecision) -> VoteMessage {
    let list = f.m.approvals(None, None).await.unwrap();
    let view = list.iter().find(|v| v.id == id).unwrap();
    view.ticket.vote_message(id, decision)
}

fn sign(key: &PrivateKey, message: &VoteMessage) -> VoteSignature {
    let pem = key.to_openssh(LineEnding::LF).unwrap();
    VoteSignature::sign(pem.as_bytes(), message).unwrap()
}

fn sign_in(key: &PrivateKey, namespace: &str, message: &VoteMessage) -> VoteSignature {
    let sig = key
        .sign(namespace, HashAlg::Sha512, message.as_bytes())
        .unwrap();
    VoteSignature::from_sshsig(&sig).unwrap()
}

async fn decided(p: &TestPipeline) -> Vec<history::AuditEvent> {
    p.history
        .query(&HistoryQuery {
            kinds: vec![EventKind::ApprovalDecided],
            ..Default::default()
        })
        .await
        .unwrap()
}

fn refused(e: Error, want: &str) {
    let text = e.to_string();
    assert!(matches!(e, Error::VoteSignature { .. }), "{text}");
    assert!(text.contains(want), "expected {want:?} in: {text}");
}

#[tokio::test]
async fn signed_votes_from_listed_keys_meet_the_quorum_as_their_principals() {
    let f = fixture().await;
    let id = request(&f).await;
    let approve = message(&f, id, VoteDecision::Approve).await;
    // Ed25519: bob fills `review`.
    let one =
        f.m.approve_signed(id, &sign(&f.keys.bob, &approve), Some("looks good"))
            .await
            .unwrap();
    assert_eq!(one.request.status, Phase::Pending);
    assert_eq!(one.request.votes[0].actor.id, "bob");
    // ECDSA P-256: erin's groups come from the manifest, so she fills `release`.
    let two =
        f.m.approve_signed(id, &sign(&f.keys.erin, &approve), None)
            .await
            .unwrap();
    let record = two.executed.expect("the quorum executes the promotion");
    assert_eq!(record.digest, f.p.release_digest("app", "v1").await);
    assert_eq!(
        f.p.tag_digest("prod", "app", "latest-prod").await,
        Some(record.digest.clone())
    );
    let voter = &two.request.votes[1];
    assert_eq!(voter.actor.id, "erin");
    assert_eq!(voter.actor.groups, vec!["release".to_string()]);
    let signed = voter
        .signature
        .as_ref()
        .expect("the vote keeps its signature");
    assert_eq!(signed.message, approve.as_str());

    // Each approval_decided event keeps principal, message and signature, and re-verifies.
    let file = f.p.settings.environments[2]
        .approval
        .as_ref()
        .unwrap()
        .signers
        .clone()
        .unwrap();
    let events = decided(&f.p).await;
    assert_eq!(events.len(), 2);
    for (e, who) in events.iter().zip(["bob", "erin"]) {
        assert_eq!(e.record.actor.id, who);
        assert_eq!(e.record.details["signer"], who);
        assert_eq!(e.record.details["signed_message"], approve.as_str());
        assert!(e.record.details["signature"].starts_with("-----BEGIN SSH SIGNATURE-----"));
        let Ok(Payload::ApprovalDecided(p)) = e.record.payload() else {
            panic!("typed payload")
        };
        assert_eq!(p.signature.as_ref().unwrap().principal, who);
        assert_eq!(
            verify_recorded_vote(&e.record, &file),
            RecordedVote::Verified {
                principal: who.to_string()
            }
        );
    }
    // A recorded vote whose fields were changed no longer verifies, naming why.
    let mut changed = events[0].record.clone();
    changed.digest = Some(Digest::of(b"another"));
    assert!(matches!(
        verify_recorded_vote(&changed, &file),
        RecordedVote::Failed(m) if m.contains("not this event's vote")
    ));
    let mut changed = events[0].record.clone();
    changed.actor = Actor::new("erin").unwrap();
    assert!(matches!(
        verify_recorded_vote(&changed, &file),
        RecordedVote::Failed(m) if m.contains("recorded as a vote of erin")
    ));
    // Against a signers file that no longer lists bob's key.
    let rotated = AllowedSigners::parse(
        &format!(
            "bob {}\n",
            f.keys.mallory.public_key().to_openssh().unwrap()
        ),
        Path::new("rotated"),
    )
    .unwrap();
    assert!(matches!(
        verify_recorded_vote(&events[0].record, &rotated),
        RecordedVote::Failed(m) if m.contains("not listed in rotated")
    ));
}

#[tokio::test]
async fn an_unsigned_vote_is_refused_whatever_actor_and_groups_are_claimed() {
    let f = fixture().await;
    let id = request(&f).await;
    let claimed = Actor::new("bob").unwrap().with_groups(["release"]);
    let e = f.m.approve(id, &claimed, None).await.unwrap_err();
    refused(e, "environment prod requires signed votes");
    let e = f.m.reject(id, &claimed, "no").await.unwrap_err();
    refused(e, "requires signed votes");
    assert!(decided(&f.p).await.is_empty(), "nothing recorded");
    let view = &f.m.approvals(None, Some(Phase::Pending)).await.unwrap()[0];
    assert!(view.votes.is_empty());
}

#[tokio::test]
async fn a_vote_signed_by_an_unlisted_key_is_refused() {
    let f = fixture().await;
    let id = request(&f).await;
    let approve = message(&f, id, VoteDecision::Approve).await;
    let e =
        f.m.approve_signed(id, &sign(&f.keys.mallory, &approve), None)
            .await
            .unwrap_err();
    refused(e, "is not listed in");
    assert!(decided(&f.p).await.is_empty());
}

#[tokio::test]
async fn a_listed_key_signing_another_request_digest_environment_or_decision_is_refused() {
    let f = fixture().await;
    let id = request(&f).await;
    let view = f.m.approvals(None, None).await.unwrap().remove(0);
    let t = &view.ticket;
    let others = [
        // another request id
        VoteMessage::new(
            Uuid::new_v4(),
            &t.to,
            &t.artifact,
            &t.version,
            &t.digest,
            VoteDecision::Approve,
        ),
        // another digest
        VoteMessage::new(
            id,
            &t.to,
            &t.artifact,
            &t.version,
            &Digest::of(b"another"),
            VoteDecision::Approve,
        ),
        // another environment
        VoteMessage::new(
            id,
            &EnvName::new("staging").unwrap(),
            &t.artifact,
            &t.version,
            &t.digest,
            VoteDecision::Approve,
        ),
    ];
    for other in &others {
        let e =
            f.m.approve_signed(id, &sign(&f.keys.bob, other), None)
                .await
                .unwrap_err();
        refused(e, "does not match this vote");
    }
    // An approval's signature does not reject, nor a rejection's approve.
    let approve = t.vote_message(id, VoteDecision::Approve);
    let reject = t.vote_message(id, VoteDecision::Reject);
    let e =
        f.m.reject_signed(id, &sign(&f.keys.bob, &approve), "no")
            .await
            .unwrap_err();
    refused(e, "does not match this vote");
    let e =
        f.m.approve_signed(id, &sign(&f.keys.bob, &reject), None)
            .await
            .unwrap_err();
    refused(e, "does not match this vote");
    assert!(decided(&f.p).await.is_empty());
    // The rejection signed for what it is is final.
    let view =
        f.m.reject_signed(id, &sign(&f.keys.bob, &reject), "not this week")
            .await
            .unwrap();
    assert_eq!(view.status, Phase::Rejected);
    assert_eq!(view.votes[0].actor.id, "bob");
    assert_eq!(decided(&f.p).await[0].record.details["signer"], "bob");
}

#[tokio::test]
async fn a_signature_in_another_namespace_is_refused() {
    let f = fixture().await;
    let id = request(&f).await;
    let approve = message(&f, id, VoteDecision::Approve).await;
    let e =
        f.m.approve_signed(id, &sign_in(&f.keys.bob, "git", &approve), None)
            .await
            .unwrap_err();
    refused(e, "namespace \"git\", not \"floe-approval\"");
}

#[tokio::test]
async fn a_principal_whose_line_allows_other_namespaces_only_is_refused() {
    let f = fixture().await;
    let id = request(&f).await;
    let approve = message(&f, id, VoteDecision::Approve).await;
    let e =
        f.m.approve_signed(id, &sign(&f.keys.gitonly, &approve), None)
            .await
            .unwrap_err();
    refused(e, "allows gitonly to sign in namespaces git only");
}

#[tokio::test]
async fn signed_votes_are_refused_where_no_signers_are_configured() {
    let mut f = fixture().await;
    f.p.env_mut("prod").approval.as_mut().unwrap().signers = None;
    f.m = f.p.manager();
    let id = request(&f).await;
    let approve = message(&f, id, VoteDecision::Approve).await;
    let e =
        f.m.approve_signed(id, &sign(&f.keys.bob, &approve), None)
            .await
            .unwrap_err();
    refused(e, "takes no signed votes");
    // The claimed actor still works there, as before.
    f.m.approve(id, &Actor::new("bob").unwrap(), None)
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// The manifest: `groups` and `approval.signers`.

fn manifest(dir: &Path, approval: &str, groups: &str) -> Result<config::InMemoryConfig> {
    let text = format!(
        "artifacts:\n  registry: {{ uri: oci://registry.example.com/floe }}\n  promotion:\n    environments:\n      - name: staging\n      - name: prod\n        approval:\n{approval}\n{groups}"
    );
    let path = dir.join("manifest.yaml");
    std::fs::write(&path, &text).unwrap();
    parse_manifest(&text, Some(&path))
}

#[test]
fn the_manifest_reads_groups_and_the_signers_file_beside_it() {
    let keys = Keys::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("allowed_signers"), keys.allowed_signers()).unwrap();
    let config = manifest(
        dir.path(),
        "          signers: allowed_signers\n          rules: [{ name: review, required: 1, users: [bob] }, { name: release, required: 1, groups: [release] }]",
        "groups:\n  release: [erin, bob]\n",
    )
    .unwrap();
    let s = config.settings();
    assert_eq!(s.groups["release"], vec!["erin", "bob"]);
    assert_eq!(s.groups_of("bob"), vec!["release"]);
    let signers = s.environments[1]
        .approval
        .as_ref()
        .unwrap()
        .signers
        .as_ref()
        .unwrap();
    assert_eq!(signers.file(), dir.path().join("allowed_signers"));
    assert_eq!(signers.signers().len(), 3);
}

#[test]
fn manifest_errors_name_the_file_line_and_field() {
    let keys = Keys::new();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("allowed_signers"), keys.allowed_signers()).unwrap();
    std::fs::write(
        d.join("broken_signers"),
        "# ok so far\nbob ssh-ed25519 AAAAnot-base64\n",
    )
    .unwrap();
    let rules = "          rules: [{ name: review, required: 1, users: [bob] }]";
    let manifest_file = d.join("manifest.yaml").display().to_string();
    for (approval, groups, want) in [
        (
            format!("          signers: missing_signers\n{rules}"),
            "",
            format!(
                "{manifest_file}:8:20: environment prod: approval.signers: cannot read the allowed_signers file {}",
                d.join("missing_signers").display()
            ),
        ),
        (
            format!("          signers: broken_signers\n{rules}"),
            "",
            format!("{}:2:5: key: not a valid", d.join("broken_signers").display()),
        ),
        (
            "          signers: allowed_signers\n          rules: [{ name: review, required: 1, users: [carol] }]".to_string(),
            "",
            format!("{manifest_file}:9:19: environment prod: approval.rules[review].users: \"carol\" has no key in the allowed_signers file"),
        ),
        (
            "          signers: allowed_signers\n          rules: [{ name: release, required: 1, groups: [release] }]".to_string(),
            "groups:\n  ops: [erin]\n",
            format!("{manifest_file}:9:19: environment prod: approval.rules[release].groups: group \"release\" is not declared under the top-level `groups:`"),
        ),
        (
            rules.to_string(),
            "groups:\n  ops: [\"\"]\n",
            format!("{manifest_file}:10:9: groups.ops: invalid actor"),
        ),
    ] {
        let e = manifest(d, &approval, groups).unwrap_err();
        assert!(matches!(e, Error::Config { .. }), "{e}");
        let text = e.to_string();
        assert!(text.starts_with(&want), "expected {want:?}\n     got {text}");
    }
}
