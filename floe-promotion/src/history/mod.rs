//! The audit trail: append-only, hash-chained events, queries, verification and export.
//!
//! Implementations: [`InMemoryHistory`] here; `SqliteStore` in `floe-promotion-sqlite`.
//!
//! # Audit formats
//!
//! Each event is stored as bytes, [`AuditEvent::content`], and chained by
//! `hash = hex(SHA-256(prev_hash ‖ content))` ([`content_hash`]), with `prev_hash` the previous
//! event's hash ([`GENESIS_HASH`] for the first). Stores keep those exact bytes and return
//! them unchanged; verification hashes them again and never re-serialises the parsed event,
//! so a field added to [`EventRecord`] later, or a store that keeps the JSON in another form
//! beside them, never breaks an old event.
//!
//! - **Format 2** ([`FORMAT_2`], written by this release, [`AUDIT_FORMAT`]): the content is
//!   the RFC 8785 (JCS) canonical JSON ([`canonical_json`]) of the object
//!   `{"format":2,"seq":…}` plus the record's members: keys sorted by UTF-16 code units, no
//!   whitespace, minimal string escapes, numbers in ECMAScript form. Members a later release
//!   adds are covered by the hash like the others, and ignored by releases that do not know
//!   them.
//! - **Format 1** ([`FORMAT_1`], the first release): serde_json of `{"seq":…}` plus the
//!   record's members in declaration order, `details` sorted, no whitespace, no `format`
//!   member ([`canonical_json_v1`]).
//!
//! An event's stored bytes must be the canonical JSON of their format and hold its sequence
//! number ([`check_content`]); a chain may start in format 1 and continue in format 2, never
//! the reverse. A JSON Lines export line is the content with `prev_hash` and `hash` added
//! before its closing brace: a line with a `format` member is format 2 and its content is the
//! JCS of the line without those two members; a line without one is format 1. Either way
//! [`verify_export`] rebuilds the exact bytes, in whatever order the line's members are.
//!
//! # Event payloads
//!
//! What an event says beyond its common members (tags written, the error of a failure, the
//! lock that was passed, the approval request…) is stored in [`EventRecord::details`], a JSON
//! object of string values, and that stays so: the hash covers those bytes. [`Payload`] is
//! their typed view, one variant per kind that carries details:
//!
//! | kind | payload | keys (`?`: only when set) |
//! |------|---------|------|
//! | `promotion_succeeded` | [`PromotionSucceeded`] | `request`, `tags`, `confirmed_after_lost_reply`?, `noop`?, `copy`?, `approval`?, `executed_by`?, `group`? |
//! | `promotion_failed`, `rollback_failed` | [`Failed`] | `error`, `group`? |
//! | `group_promoted`, `group_failed` | [`GroupDetails`] | `group`, `members` (`name:version@digest`, comma-separated, in promotion order, the dependent last), `failed`?, `error`? |
//! | `rollback_succeeded` | [`RollbackSucceeded`] | `tags`, `confirmed_after_lost_reply`? |
//! | `approval_requested` | [`ApprovalRequested`] | `approval`, `expires`, `rules` |
//! | `approval_decided` | [`ApprovalDecided`] | `approval`, `decision` (`approved`/`rejected`), `status`; a signed vote adds `signer`, `signed_message`, `signature` |
//! | `approval_expired` | [`ApprovalExpired`] | `approval` |
//! | `locked` | [`Locked`] | `expires`? |
//! | `unlocked`, `lock_overridden` | [`LockDetails`] | `lock_owner`, `lock_reason` |
//! | `window_overridden` | [`WindowOverridden`] | `window_kind` (`deny`/`allow`), `window_reason`, `override_reason` |
//! | `evidence_attached` | [`EvidenceAttached`] | `evidence`, `kind`, `status` |
//! | `lease_broken` | [`LeaseBroken`] | `holder`, `expires`, `holder_process`?, `holder_liveness`, `override`? |
//! | `hold_placed`, `hold_released` | [`HoldDetails`] | `holder`, `hold_kind` (`manual`/`rollback`) |
//! | `canary_step` | [`CanaryStepDetails`] | `canary`, `step`, `weight`, `canary_action` |
//!
//! Other kinds (`promotion_requested`, `switched`, `release_discovered`, and kinds a later release
//! adds) read as [`Payload::Untyped`], their details as stored. Ids are UUIDs, times RFC 3339
//! (`to_rfc3339`), tag lists comma-separated, flags `"true"` (absent when false), a copy
//! report `manifests=… mounted=… uploaded=… skipped=… bytes=… signatures=… referrers=…`, a
//! holder process `host:pid`.
//!
//! [`EventRecord::payload`] reads the payload for the record's kind: a required key that is
//! missing or a value that does not parse is an [`Error::InvalidInput`](crate::Error) naming
//! the key, the value and the event, never a panic; keys this release does not know are kept
//! in the payload's `other` map. [`EventRecord::set_payload`] (or
//! [`EventRecord::with_payload`]) writes the details back with the same keys and formats, so
//! `details → payload → details` gives back the details every release has written, and
//! `payload → details → payload` gives back the payload. The manager builds every event's
//! details this way.

mod canonical;
mod chain;
mod export;
mod fields;
mod format;
mod jcs;
mod layout;
mod memory;
mod payload;

use std::collections::BTreeMap;
use std::fmt::{self, Debug};
use std::io::Write;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::Result;
use crate::gate::GateResult;
use crate::model::{Actor, ArtifactName, Digest, EnvName, Tag};

pub use chain::{ChainBreak, ChainVerifier, GENESIS_HASH, VerifyReport};
pub use export::{
    CSV_HEADER, ExportFormat, ExportWriter, MAX_EXPORT_LINE, verify_export, verify_export_file,
};
pub use format::{
    AUDIT_FORMAT, BadContent, ContentFields, FORMAT_1, FORMAT_2, canonical_json, canonical_json_v1,
    check_canonical, check_content, check_content_fields, content_hash, event_hash, parse_content,
};
pub use memory::InMemoryHistory;
pub use payload::{
    ApprovalDecided, ApprovalExpired, ApprovalRequested, CanaryAction, CanaryStepDetails, Decision,
    EvidenceAttached, Failed, GroupDetails, GroupMember, HoldDetails, HostProcess, LeaseBroken,
    LockDetails, Locked, Payload, PreviewStaged, PromotionSucceeded, RollbackSucceeded, Switched,
    WindowOverridden,
};

/// What happened. Later releases may add kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// A promotion was asked for.
    PromotionRequested,
    /// A promotion wrote its tags.
    PromotionSucceeded,
    /// A promotion was refused or failed; nothing moved.
    PromotionFailed,
    /// An approval request was created.
    ApprovalRequested,
    /// An approver approved or rejected.
    ApprovalDecided,
    /// An approval request expired.
    ApprovalExpired,
    /// A rollback moved the pointer back.
    RollbackSucceeded,
    /// A rollback was refused or failed; nothing moved.
    RollbackFailed,
    /// An environment was locked.
    Locked,
    /// An environment was unlocked.
    Unlocked,
    /// A lock was overridden (break-glass) for one operation.
    LockOverridden,
    /// Evidence was attached to a digest.
    EvidenceAttached,
    /// A canary step changed the traffic weight.
    CanaryStep,
    /// A blue-green switch moved the pointer.
    Switched,
    /// A promotion lease left by a promoter was broken.
    LeaseBroken,
    /// A hold on automatic promotion into an environment was placed.
    HoldPlaced,
    /// A hold on automatic promotion into an environment was released.
    HoldReleased,
    /// Automatic promotion saw a release tag in the first environment for the first time; its
    /// soak there is measured from this event.
    ReleaseDiscovered,
    /// A closed promotion window was overridden (break-glass) for one promotion.
    WindowOverridden,
    /// A promotion into a blue-green environment staged its digest on the idle slot (the
    /// preview); the pointer did not move, so it does not set the current version.
    PreviewStaged,
    /// A dependent and the dependencies promoted before it (`promote_with_dependencies`) all
    /// reached the target: one group.
    GroupPromoted,
    /// A member of a group failed; the members after it were not attempted.
    GroupFailed,
    /// A digest was revoked: refused everywhere until unrevoked.
    Revoked,
    /// A revocation was lifted.
    Unrevoked,
}

impl EventKind {
    /// Whether an event of this kind makes its version the environment's current one.
    pub fn sets_current(self) -> bool {
        matches!(
            self,
            EventKind::PromotionSucceeded | EventKind::RollbackSucceeded | EventKind::Switched
        )
    }

    /// The snake_case name used in exports.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::PromotionRequested => "promotion_requested",
            EventKind::PromotionSucceeded => "promotion_succeeded",
            EventKind::PromotionFailed => "promotion_failed",
            EventKind::ApprovalRequested => "approval_requested",
            EventKind::ApprovalDecided => "approval_decided",
            EventKind::ApprovalExpired => "approval_expired",
            EventKind::RollbackSucceeded => "rollback_succeeded",
            EventKind::RollbackFailed => "rollback_failed",
            EventKind::Locked => "locked",
            EventKind::Unlocked => "unlocked",
            EventKind::LockOverridden => "lock_overridden",
            EventKind::EvidenceAttached => "evidence_attached",
            EventKind::CanaryStep => "canary_step",
            EventKind::Switched => "switched",
            EventKind::LeaseBroken => "lease_broken",
            EventKind::HoldPlaced => "hold_placed",
            EventKind::HoldReleased => "hold_released",
            EventKind::ReleaseDiscovered => "release_discovered",
            EventKind::WindowOverridden => "window_overridden",
            EventKind::PreviewStaged => "preview_staged",
            EventKind::GroupPromoted => "group_promoted",
            EventKind::GroupFailed => "group_failed",
            EventKind::Revoked => "revoked",
            EventKind::Unrevoked => "unrevoked",
        }
    }

    /// Every kind, in declaration order.
    pub const ALL: [EventKind; 24] = [
        EventKind::PromotionRequested,
        EventKind::PromotionSucceeded,
        EventKind::PromotionFailed,
        EventKind::ApprovalRequested,
        EventKind::ApprovalDecided,
        EventKind::ApprovalExpired,
        EventKind::RollbackSucceeded,
        EventKind::RollbackFailed,
        EventKind::Locked,
        EventKind::Unlocked,
        EventKind::LockOverridden,
        EventKind::EvidenceAttached,
        EventKind::CanaryStep,
        EventKind::Switched,
        EventKind::LeaseBroken,
        EventKind::HoldPlaced,
        EventKind::HoldReleased,
        EventKind::ReleaseDiscovered,
        EventKind::WindowOverridden,
        EventKind::PreviewStaged,
        EventKind::GroupPromoted,
        EventKind::GroupFailed,
        EventKind::Revoked,
        EventKind::Unrevoked,
    ];
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for EventKind {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self> {
        EventKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| crate::Error::invalid("event kind", s, "not a known event kind"))
    }
}

/// The content of an audit event, as the manager records it. The store adds the position and
/// the hashes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Unique id.
    pub id: Uuid,
    /// When (UTC).
    pub time: DateTime<Utc>,
    /// What.
    pub kind: EventKind,
    /// Who.
    pub actor: Actor,
    /// The artifact, when the event concerns one.
    pub artifact: Option<ArtifactName>,
    /// The version (release tag), when known.
    pub version: Option<Tag>,
    /// The digest, when resolved.
    pub digest: Option<Digest>,
    /// The source environment of a promotion.
    pub from: Option<EnvName>,
    /// The environment affected (a promotion's target, a lock's environment).
    pub environment: Option<EnvName>,
    /// Why (required for rollbacks and overrides).
    pub reason: Option<String>,
    /// Gate results, for promotion outcomes.
    pub gates: Vec<GateResult>,
    /// Other facts: tags written, copy counts, errors, warnings. Sorted by key.
    pub details: BTreeMap<String, String>,
}

impl EventRecord {
    /// A record of `kind` by `actor` at `time`, with a fresh id and nothing else set.
    pub fn new(kind: EventKind, actor: Actor, time: DateTime<Utc>) -> Self {
        EventRecord {
            id: Uuid::new_v4(),
            time,
            kind,
            actor,
            artifact: None,
            version: None,
            digest: None,
            from: None,
            environment: None,
            reason: None,
            gates: vec![],
            details: BTreeMap::new(),
        }
    }
}

/// An event as stored: its position in the chain, its format, its content and its hashes.
///
/// `content` is what the store keeps, the bytes `hash` covers; `seq`, `format` and `record`
/// are what those bytes hold (see the [module documentation](self#audit-formats)). Build one
/// with [`AuditEvent::seal`] (a new event) or [`AuditEvent::from_stored`] (read back).
///
/// As JSON (serde) it is the object `{seq, format, …record, prev_hash, hash}`; deserialising
/// rebuilds `content` from the members, so an exported line reads back with its exact stored
/// bytes, members unknown to this release included (format 2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEvent {
    /// Position in the chain, from 1, without gaps.
    pub seq: u64,
    /// The audit format of `content` ([`FORMAT_1`] or [`FORMAT_2`]).
    pub format: u32,
    /// The content, as read from `content`.
    pub record: EventRecord,
    /// The previous event's hash ([`GENESIS_HASH`] for the first).
    pub prev_hash: String,
    /// `hex(SHA-256(prev_hash ‖ content))`.
    pub hash: String,
    /// The stored bytes: the canonical JSON of the event in its format.
    pub content: String,
}

impl AuditEvent {
    /// A new event at `seq` after `prev_hash`, in the current format ([`AUDIT_FORMAT`]):
    /// `content = canonical_json(seq, record)` and its hash. The record is the one the content
    /// reads back as (they differ only for integers beyond 2^53, which JSON numbers round).
    pub fn seal(seq: u64, record: EventRecord, prev_hash: String) -> AuditEvent {
        let (content, exact) = match canonical::write_v2(seq, &record) {
            // Written directly: every integer is at most 2^53, so the content reads back as
            // the record itself (checked in debug builds) and need not be parsed again.
            Some(content) => {
                debug_assert_eq!(content, format::jcs_v2(seq, &record));
                (content, true)
            }
            None => (format::jcs_v2(seq, &record), false),
        };
        let hash = content_hash(&prev_hash, &content);
        let record = if exact && !cfg!(debug_assertions) {
            record
        } else {
            match parse_content(&content) {
                Ok((_, _, read)) if read != record => {
                    debug_assert!(!exact, "a directly written event reads back changed");
                    read
                }
                _ => record,
            }
        };
        // JCS output is UTF-8, and so is the direct writer's (it writes `&str`s and ASCII).
        let content = String::from_utf8(content)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        AuditEvent {
            seq,
            format: AUDIT_FORMAT,
            record,
            prev_hash,
            hash,
            content,
        }
    }

    /// An event read back from a store: its stored bytes and hashes. Reads `seq`, `format`
    /// and `record` from the content (see [`parse_content`]); does not verify anything.
    pub fn from_stored(
        content: String,
        prev_hash: String,
        hash: String,
    ) -> std::result::Result<AuditEvent, BadContent> {
        let (seq, format, record) = parse_content(content.as_bytes())?;
        Ok(AuditEvent {
            seq,
            format,
            record,
            prev_hash,
            hash,
            content,
        })
    }
}

#[derive(Serialize)]
struct AuditEventJson<'a> {
    seq: u64,
    format: u32,
    #[serde(flatten)]
    record: &'a EventRecord,
    prev_hash: &'a str,
    hash: &'a str,
}

impl Serialize for AuditEvent {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        AuditEventJson {
            seq: self.seq,
            format: self.format,
            record: &self.record,
            prev_hash: &self.prev_hash,
            hash: &self.hash,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for AuditEvent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let mut members = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        let mut take = |name: &str| match members.remove(name) {
            Some(serde_json::Value::String(s)) => Ok(s),
            _ => Err(D::Error::custom(format!(
                "missing or invalid field `{name}`"
            ))),
        };
        let hash = take("hash")?;
        let prev_hash = take("prev_hash")?;
        let content = format::content_from_json(members).map_err(D::Error::custom)?;
        let content = String::from_utf8(content).map_err(D::Error::custom)?;
        AuditEvent::from_stored(content, prev_hash, hash).map_err(D::Error::custom)
    }
}

/// Newest or oldest first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// Ascending sequence numbers.
    #[default]
    OldestFirst,
    /// Descending sequence numbers.
    NewestFirst,
}

/// A filter over the history. Every field that is set must match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryQuery {
    /// Events whose `environment` is this one.
    pub environment: Option<EnvName>,
    /// Events about this artifact.
    pub artifact: Option<ArtifactName>,
    /// Events about this version.
    pub version: Option<Tag>,
    /// Events about this digest.
    pub digest: Option<Digest>,
    /// Events of these kinds (empty: all).
    pub kinds: Vec<EventKind>,
    /// Events at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Events before this time.
    pub until: Option<DateTime<Utc>>,
    /// Events with a sequence number above this (cursor for paging, ascending order).
    pub after_seq: Option<u64>,
    /// Events with a sequence number below this (cursor for paging, descending order).
    pub before_seq: Option<u64>,
    /// At most this many events.
    pub limit: Option<usize>,
    /// Order of the result.
    pub order: Order,
}

impl HistoryQuery {
    /// Whether `event` passes every filter except the cursor, limit and order.
    pub fn matches(&self, event: &AuditEvent) -> bool {
        let r = &event.record;
        self.environment
            .as_ref()
            .is_none_or(|e| r.environment.as_ref() == Some(e))
            && self
                .artifact
                .as_ref()
                .is_none_or(|a| r.artifact.as_ref() == Some(a))
            && self
                .version
                .as_ref()
                .is_none_or(|v| r.version.as_ref() == Some(v))
            && self
                .digest
                .as_ref()
                .is_none_or(|d| r.digest.as_ref() == Some(d))
            && (self.kinds.is_empty() || self.kinds.contains(&r.kind))
            && self.since.is_none_or(|t| r.time >= t)
            && self.until.is_none_or(|t| r.time < t)
            && self.after_seq.is_none_or(|s| event.seq > s)
            && self.before_seq.is_none_or(|s| event.seq < s)
    }
}

/// What runs in an environment: the latest event that [`EventKind::sets_current`] for an
/// artifact there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// Environment.
    pub environment: EnvName,
    /// Artifact.
    pub artifact: ArtifactName,
    /// Version.
    pub version: Tag,
    /// Digest.
    pub digest: Digest,
    /// Since when.
    pub since: DateTime<Utc>,
    /// By whom.
    pub by: String,
    /// The event that made it current.
    pub seq: u64,
    /// That event's kind (promotion, rollback, switch).
    pub kind: EventKind,
}

impl Deployment {
    /// The deployment an event establishes, when it is of a kind that sets the current version
    /// and names the environment, artifact, version and digest.
    pub fn from_event(event: &AuditEvent) -> Option<Deployment> {
        let r = &event.record;
        if !r.kind.sets_current() {
            return None;
        }
        Some(Deployment {
            environment: r.environment.clone()?,
            artifact: r.artifact.clone()?,
            version: r.version.clone()?,
            digest: r.digest.clone()?,
            since: r.time,
            by: r.actor.id.clone(),
            seq: event.seq,
            kind: r.kind,
        })
    }
}

/// Number of events per page used by the provided paging methods.
pub const PAGE_SIZE: usize = 1000;

/// Append-only, hash-chained storage of audit events.
///
/// # Contract
///
/// - `append_batch` assigns consecutive sequence numbers from 1 and chains each event to the
///   previous one (`hash = SHA-256(prev_hash ‖ canonical JSON)`, see [`event_hash`]); the
///   batch is atomic: all its events are stored or none.
/// - `append_batch_shared` appends exactly as `append_batch` does and returns the same events,
///   each behind an [`Arc`](std::sync::Arc), so that the caller can hand them on (to the
///   notification outbox) without copying them; a store that keeps its events in memory may
///   return the very events it keeps.
/// - The stored bytes of an event are the bytes its hash covers: new events are stored in the
///   current format ([`AUDIT_FORMAT`], `content = canonical_json(seq, record)`), and every
///   query returns [`AuditEvent::content`] exactly as stored, with
///   `hash = SHA-256(prev_hash ‖ content)` and `seq`, `format` and `record` as the content
///   holds them ([`check_content`]); a JSON Lines export carries them too.
/// - Concurrent appends never fork the chain: every acknowledged event is stored once, and the
///   chain stays a single line.
/// - An event, once appended, is returned unchanged by every later query; nothing is updated
///   or deleted through this trait.
/// - `query` returns the events that match every filter of [`HistoryQuery`], in the order
///   asked, at most `limit` of them (the newest ones with [`Order::NewestFirst`]).
/// - `deployments` returns, per environment and artifact, the latest event that sets the
///   current version ([`EventKind::sets_current`]), sorted by environment then artifact;
///   filtered to one environment when given.
/// - `verify` recomputes the chain from the stored bytes and names the first event that was
///   changed, removed, inserted or reordered; an intact chain reports no break.
/// - `export` writes the matching events, oldest first, as JSON Lines or CSV, and returns how
///   many it wrote; it does not hold the whole history in memory.
#[async_trait]
pub trait HistoryStore: Send + Sync + Debug + 'static {
    /// Appends events atomically and returns them as stored.
    async fn append_batch(&self, records: Vec<EventRecord>) -> Result<Vec<AuditEvent>>;

    /// [`append_batch`](Self::append_batch), returning the stored events shared.
    async fn append_batch_shared(
        &self,
        records: Vec<EventRecord>,
    ) -> Result<Vec<std::sync::Arc<AuditEvent>>> {
        Ok(self
            .append_batch(records)
            .await?
            .into_iter()
            .map(std::sync::Arc::new)
            .collect())
    }

    /// Finds events.
    async fn query(&self, query: &HistoryQuery) -> Result<Vec<AuditEvent>>;

    /// What runs where.
    async fn deployments(&self, environment: Option<&EnvName>) -> Result<Vec<Deployment>>;

    /// Checks the whole chain.
    async fn verify(&self) -> Result<VerifyReport> {
        let mut verifier = ChainVerifier::new();
        let mut after = 0;
        loop {
            let page = self
                .query(&HistoryQuery {
                    after_seq: Some(after),
                    limit: Some(PAGE_SIZE),
                    ..Default::default()
                })
                .await?;
            for event in &page {
                verifier.push(event);
                if verifier.broken() {
                    return Ok(verifier.finish());
                }
            }
            match page.last() {
                Some(last) if page.len() == PAGE_SIZE => after = last.seq,
                _ => return Ok(verifier.finish()),
            }
        }
    }

    /// Writes matching events, oldest first.
    async fn export(
        &self,
        query: &HistoryQuery,
        format: ExportFormat,
        out: &mut (dyn Write + Send),
    ) -> Result<u64> {
        let mut writer = ExportWriter::new(format, out)?;
        let mut page_query = HistoryQuery {
            order: Order::OldestFirst,
            limit: Some(PAGE_SIZE),
            ..query.clone()
        };
        let mut remaining = query.limit;
        loop {
            if remaining == Some(0) {
                break;
            }
            page_query.limit = Some(remaining.map_or(PAGE_SIZE, |r| r.min(PAGE_SIZE)));
            let page = self.query(&page_query).await?;
            for event in &page {
                writer.write(event)?;
            }
            if let Some(r) = remaining.as_mut() {
                *r -= page.len();
            }
            match page.last() {
                Some(last) if page.len() == page_query.limit.unwrap_or(PAGE_SIZE) => {
                    page_query.after_seq = Some(last.seq)
                }
                _ => break,
            }
        }
        writer.finish()
    }
}

/// Conveniences over any [`HistoryStore`], implemented for every store.
///
/// # Contract
///
/// - `append` stores one event exactly as `append_batch` of a one-element batch would, and
///   returns it as stored.
/// - `latest` returns the newest `n` events of an environment, newest first.
#[async_trait]
pub trait HistoryExt: HistoryStore {
    /// Appends one event.
    async fn append(&self, record: EventRecord) -> Result<AuditEvent> {
        let mut stored = self.append_batch(vec![record]).await?;
        stored.pop().ok_or_else(|| crate::Error::Store {
            backend: "history",
            location: String::new(),
            message: "append returned no event".into(),
        })
    }

    /// The latest `n` events of an environment, newest first.
    async fn latest(&self, environment: &EnvName, n: usize) -> Result<Vec<AuditEvent>> {
        self.query(&HistoryQuery {
            environment: Some(environment.clone()),
            limit: Some(n),
            order: Order::NewestFirst,
            ..Default::default()
        })
        .await
    }
}

impl<H: HistoryStore + ?Sized> HistoryExt for H {}
