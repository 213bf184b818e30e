//! Automatic promotion: which version of an artifact is a candidate to move on by itself, and
//! what one pass decided.
//!
//! A candidate for an environment with `auto_promote: { from, soak, versions }` is, per
//! artifact, the newest version (by the order it entered `from`) that
//!
//! - ran in `from` without interruption for at least `soak` (a stretch ends when another
//!   version of the artifact is made current there; the stretch still running counts up to
//!   now),
//! - matches `versions`, when set,
//! - was never rolled back (away from) in `from` or in the target: a rolled-back digest is
//!   never promoted automatically again,
//! - is not revoked,
//! - is not what the target runs now, and entered `from` after the version the target runs
//!   did (automatic promotion never moves the target backwards).
//!
//! When `from` is the first environment, where CI pushes releases rather than floe promoting
//! them, a version enters it when a pass first sees its release tag in the registry: the pass
//! records a `release_discovered` event, and the soak runs from there (releases found together
//! are recorded in [`natural_order`], so `v1.10` counts as newer than `v1.9`).
//!
//! [`candidates`] computes this from history alone; the pass that acts on it lives with the
//! manager ([`AutoPromotions`](crate::manager::AutoPromotions)).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::AutoPromotion;
use crate::history::{AuditEvent, EventKind};
use crate::model::{Actor, ArtifactName, Digest, EnvName, Tag};

/// One version's uninterrupted stay in an environment.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Stretch {
    version: Tag,
    digest: Digest,
    /// Sequence number of the event that made it current.
    seq: u64,
    start: DateTime<Utc>,
    /// When another version replaced it; `None` while it runs.
    end: Option<DateTime<Utc>>,
}

/// A version that may be promoted automatically.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// The artifact.
    pub artifact: ArtifactName,
    /// The version.
    pub version: Tag,
    /// Its digest in the source environment.
    pub digest: Digest,
    /// When its qualifying stay in the source began.
    pub since: DateTime<Utc>,
    /// How long it ran there without interruption (up to now when it still runs there).
    pub soaked: Duration,
}

/// Per artifact, the stretches of each version in one environment, oldest first, from that
/// environment's events that set the current version (oldest first). Consecutive events of
/// the same digest (a promotion of the same digest again) continue one stretch.
fn stretches(events: &[AuditEvent]) -> BTreeMap<ArtifactName, Vec<Stretch>> {
    let mut out: BTreeMap<ArtifactName, Vec<Stretch>> = BTreeMap::new();
    for e in events.iter().filter(|e| e.record.kind.sets_current()) {
        let r = &e.record;
        let (Some(artifact), Some(version), Some(digest)) = (&r.artifact, &r.version, &r.digest)
        else {
            continue;
        };
        let list = out.entry(artifact.clone()).or_default();
        if let Some(last) = list.last_mut() {
            if &last.digest == digest {
                continue;
            }
            last.end = Some(r.time);
        }
        list.push(Stretch {
            version: version.clone(),
            digest: digest.clone(),
            seq: e.seq,
            start: r.time,
            end: None,
        });
    }
    out
}

/// The digests rolled back (away from) in an environment, per artifact: the digest current
/// just before each rollback there.
fn rolled_back(events: &[AuditEvent]) -> HashSet<(ArtifactName, Digest)> {
    let mut current: HashMap<ArtifactName, Digest> = HashMap::new();
    let mut out = HashSet::new();
    for e in events.iter().filter(|e| e.record.kind.sets_current()) {
        let r = &e.record;
        let (Some(artifact), Some(digest)) = (&r.artifact, &r.digest) else {
            continue;
        };
        if r.kind == EventKind::RollbackSucceeded
            && let Some(before) = current.get(artifact)
            && before != digest
        {
            out.insert((artifact.clone(), before.clone()));
        }
        current.insert(artifact.clone(), digest.clone());
    }
    out
}

/// Where an environment's versions come from, for [`candidates`].
#[derive(Clone, Copy, Debug)]
pub enum Source<'a> {
    /// An environment with a pointer: the events that made a version current there, oldest
    /// first. One version runs at a time; its stretch ends when another is made current.
    Pointer(&'a [AuditEvent]),
    /// The first environment, where CI pushes releases: the events of their discovery
    /// (`release_discovered`), oldest first. Releases live side by side there, so a stretch
    /// never ends.
    Releases(&'a [AuditEvent]),
}

/// Per artifact, the stretches of the releases discovered in the first environment: one per
/// digest, from its first discovery, never ending.
fn release_stretches(events: &[AuditEvent]) -> BTreeMap<ArtifactName, Vec<Stretch>> {
    let mut out: BTreeMap<ArtifactName, Vec<Stretch>> = BTreeMap::new();
    let mut seen = HashSet::new();
    for e in events {
        let r = &e.record;
        let (Some(artifact), Some(version), Some(digest)) = (&r.artifact, &r.version, &r.digest)
        else {
            continue;
        };
        if !seen.insert((artifact.clone(), digest.clone())) {
            continue;
        }
        out.entry(artifact.clone()).or_default().push(Stretch {
            version: version.clone(),
            digest: digest.clone(),
            seq: e.seq,
            start: r.time,
            end: None,
        });
    }
    out
}

/// The candidate of each artifact for automatic promotion under `rule`, at `now`, from the
/// source environment's history (`source`) and the events that set the current version in
/// the target (`target`, oldest first), never one of the `revoked` digests. Artifacts without
/// a candidate are left out; the result is sorted by artifact.
pub fn candidates(
    rule: &AutoPromotion,
    source: Source<'_>,
    target: &[AuditEvent],
    revoked: &HashSet<Digest>,
    now: DateTime<Utc>,
) -> Vec<Candidate> {
    let (stays, mut banned) = match source {
        Source::Pointer(events) => (stretches(events), rolled_back(events)),
        Source::Releases(events) => (release_stretches(events), HashSet::new()),
    };
    banned.extend(rolled_back(target));
    let target_now: HashMap<ArtifactName, Digest> = stretches(target)
        .into_iter()
        .filter_map(|(a, s)| s.last().map(|l| (a, l.digest.clone())))
        .collect();
    let mut out = Vec::new();
    for (artifact, list) in stays {
        // Where the target's current digest entered the source, if it did: only versions that
        // entered after it are candidates.
        let floor = target_now
            .get(&artifact)
            .and_then(|d| list.iter().filter(|s| &s.digest == d).map(|s| s.seq).max());
        let best = list
            .iter()
            .filter(|s| floor.is_none_or(|f| s.seq > f))
            .filter(|s| target_now.get(&artifact) != Some(&s.digest))
            .filter(|s| !banned.contains(&(artifact.clone(), s.digest.clone())))
            .filter(|s| !revoked.contains(&s.digest))
            .filter(|s| rule.admits(&s.version))
            .filter_map(|s| {
                let soaked = (s.end.unwrap_or(now) - s.start)
                    .to_std()
                    .unwrap_or_default();
                (soaked >= rule.soak).then_some((s, soaked))
            })
            .max_by_key(|(s, _)| s.seq);
        if let Some((s, soaked)) = best {
            out.push(Candidate {
                artifact: artifact.clone(),
                version: s.version.clone(),
                digest: s.digest.clone(),
                since: s.start,
                soaked: Duration::from_secs(soaked.as_secs()),
            });
        }
    }
    out
}

/// Orders release tags as people number them: runs of digits compare as numbers, the rest
/// as text (`v1.9` before `v1.10`). Used to order releases discovered together.
pub fn natural_order(a: &str, b: &str) -> std::cmp::Ordering {
    fn chunks(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = s.as_bytes();
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit() {
                out.push((bytes[start].is_ascii_digit(), &s[start..i]));
                start = i;
            }
        }
        out
    }
    let (ca, cb) = (chunks(a), chunks(b));
    for ((da, x), (db, y)) in ca.iter().zip(cb.iter()) {
        let ord = if *da && *db {
            let (x, y) = (x.trim_start_matches('0'), y.trim_start_matches('0'));
            x.len().cmp(&y.len()).then_with(|| x.cmp(y))
        } else {
            x.cmp(y)
        };
        if ord != std::cmp::Ordering::Equal {
            return ord;
        }
    }
    ca.len().cmp(&cb.len()).then_with(|| a.cmp(b))
}

/// The id of the release that claims the automatic promotion of `digest` of `artifact` into
/// `environment`: the same for every process, so that only one can create it.
pub fn claim_id(environment: &EnvName, artifact: &ArtifactName, digest: &Digest) -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!("floe:auto-promotion/{environment}/{artifact}/{digest}").as_bytes(),
    )
}

/// What a pass of automatic promotion should do.
#[derive(Clone, Debug)]
pub struct AutoOptions {
    /// Only this environment (as a target); every environment with `auto_promote` when `None`.
    pub environment: Option<EnvName>,
    /// Plan only: report what would be promoted, record nothing.
    pub dry_run: bool,
    /// Who promotes (recorded as the actor of each automatic promotion).
    pub actor: Actor,
    /// Set by another task to stop the pass before its next candidate (a promotion under way
    /// finishes first).
    pub stop: Option<Arc<AtomicBool>>,
}

impl AutoOptions {
    /// A pass over every environment as `actor`.
    pub fn new(actor: Actor) -> Self {
        AutoOptions {
            environment: None,
            dry_run: false,
            actor,
            stop: None,
        }
    }

    /// Whether the pass was asked to stop.
    pub fn stopping(&self) -> bool {
        self.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst))
    }
}

/// What a pass decided for one environment or candidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AutoAction {
    /// The candidate was promoted.
    Promoted,
    /// Dry run: the candidate would be promoted (its plan has no blocker).
    WouldPromote,
    /// The promotion needs approval: a request was created now.
    ApprovalRequested,
    /// An approval request for the candidate is already open; nothing new was created.
    AwaitingApproval,
    /// The candidate's approval request was rejected or expired: it is not promoted
    /// automatically (a person may promote it).
    ApprovalClosed,
    /// A check or gate blocks the candidate now; it is tried again on a later pass.
    Blocked,
    /// The promotion was attempted and failed; it is tried again on a later pass.
    Failed,
    /// Another promoter is promoting the candidate right now.
    ClaimedElsewhere,
    /// The environment has holds; nothing moves into it automatically.
    Held,
    /// The environment's promotion window is closed; the pass waits for it.
    WindowClosed,
    /// No version is a candidate.
    NothingToDo,
    /// A canary's timed pause elapsed: it moved to its next step (or completed at 100).
    CanaryAdvanced,
}

impl AutoAction {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            AutoAction::Promoted => "promoted",
            AutoAction::WouldPromote => "would_promote",
            AutoAction::ApprovalRequested => "approval_requested",
            AutoAction::AwaitingApproval => "awaiting_approval",
            AutoAction::ApprovalClosed => "approval_closed",
            AutoAction::Blocked => "blocked",
            AutoAction::Failed => "failed",
            AutoAction::ClaimedElsewhere => "claimed_elsewhere",
            AutoAction::Held => "held",
            AutoAction::WindowClosed => "window_closed",
            AutoAction::NothingToDo => "nothing_to_do",
            AutoAction::CanaryAdvanced => "canary_advanced",
        }
    }
}

impl std::fmt::Display for AutoAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One decision of a pass.
#[derive(Clone, Debug, Serialize)]
pub struct AutoDecision {
    /// The target environment.
    pub environment: EnvName,
    /// Where candidates come from.
    pub from: EnvName,
    /// The candidate, when the decision is about one.
    pub candidate: Option<Candidate>,
    /// What was decided.
    pub action: AutoAction,
    /// Why, in words (the blockers, the holders, the error…).
    pub detail: String,
    /// The approval request, when one was created or is open.
    pub approval: Option<Uuid>,
    /// The sequence number of the success event, when promoted.
    pub event_seq: Option<u64>,
    /// The error of a failure (for exit codes), shared.
    #[serde(skip)]
    pub error: Option<Arc<crate::Error>>,
}

impl AutoDecision {
    /// A decision about an environment as a whole (held, window closed, nothing to do).
    pub fn environment(
        environment: &EnvName,
        from: &EnvName,
        action: AutoAction,
        detail: impl Into<String>,
    ) -> Self {
        AutoDecision {
            environment: environment.clone(),
            from: from.clone(),
            candidate: None,
            action,
            detail: detail.into(),
            approval: None,
            event_seq: None,
            error: None,
        }
    }

    /// A decision about a candidate.
    pub fn candidate(
        environment: &EnvName,
        from: &EnvName,
        candidate: &Candidate,
        action: AutoAction,
        detail: impl Into<String>,
    ) -> Self {
        AutoDecision {
            candidate: Some(candidate.clone()),
            ..AutoDecision::environment(environment, from, action, detail)
        }
    }
}

/// What one pass of automatic promotion did, decision by decision, in environment order.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AutoReport {
    /// The decisions.
    pub decisions: Vec<AutoDecision>,
    /// The pass stopped early because it was asked to.
    pub stopped: bool,
}

impl AutoReport {
    /// The decisions with this action.
    pub fn with_action(&self, action: AutoAction) -> impl Iterator<Item = &AutoDecision> {
        self.decisions.iter().filter(move |d| d.action == action)
    }
}
