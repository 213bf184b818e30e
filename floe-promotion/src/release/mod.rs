//! Release state: long-running release processes (an approval waiting for votes, a canary in
//! steps, a blue-green switch) kept as data, not call stacks.
//!
//! Each process is a pure state machine ([`machine`]): `(state, event) -> (state, effects)`.
//! Its state lives in a [`ReleaseStore`] as a [`Release`], changed only by compare-and-set on
//! the release's version, so two promoters advancing the same release cannot both win.
//! Effects (write the tags, append an event) are performed by another layer after the state
//! that asked for them is stored, and recorded with [`ReleaseStore::record_effect`], so a
//! process killed between two steps is resumed without doing a step twice:
//!
//! 1. read the release; skip the effects already in [`ReleaseStore::effects`];
//! 2. apply each remaining effect (effects are idempotent: a tag write is read back, an event
//!    carries its id), then record its key;
//! 3. compare-and-set the next state.
//!
//! A crash between 2's apply and its record repeats that one idempotent effect on resume;
//! nothing is ever skipped. An effect that must never run twice even at the cost of being lost
//! (a page to a human) is claimed instead: record first, and apply only when `record_effect`
//! returned `true`.
//!
//! [`InMemoryReleaseStore`] serves one process and tests; `floe-promotion-sqlite` shares
//! release state between processes.

pub mod approval;
pub mod blue_green;
pub mod canary;
pub mod machine;
mod memory;
mod record;

use std::fmt::Debug;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::Result;

pub use memory::InMemoryReleaseStore;
pub use record::{
    MAX_EFFECT_KEY_LEN, MAX_STATUS_LEN, Release, ReleaseFilter, ReleaseKind, ReleaseState,
    check_effect_key, check_new_release, check_status, release_exists, release_not_found,
    version_conflict,
};

/// Durable state of release processes, keyed by release id, with compare-and-set on a version.
///
/// # Contract
///
/// - `create` stores a new release at version 1 and returns it as stored; an id that exists
///   is [`Error::Conflict`](crate::Error::Conflict) and the stored release is unchanged.
/// - `create` refuses a release whose version is not 1 or whose status is invalid (see
///   [`check_status`]) with [`Error::InvalidInput`](crate::Error::InvalidInput), storing
///   nothing.
/// - `get` returns the release as last stored, its state JSON unchanged; an unknown id is
///   [`Error::NotFound`](crate::Error::NotFound).
/// - `list` returns the releases that match every field set in the filter (environment,
///   artifact, kind, status), oldest first (by creation time, then id).
/// - `update` succeeds only when the stored version equals `expected_version`; it then stores
///   the new status and state with the version one higher and `updated` set to `now`, keeps
///   the id, kind, environment, artifact, tag, digest and creation time, and returns the
///   release as stored.
/// - `update` with another expected version is [`Error::Conflict`](crate::Error::Conflict)
///   naming the expected and the stored version, and nothing changes; an unknown id is
///   [`Error::NotFound`](crate::Error::NotFound); an invalid status is
///   [`Error::InvalidInput`](crate::Error::InvalidInput).
/// - Concurrent updates with the same expected version: exactly one wins, the others get
///   [`Error::Conflict`](crate::Error::Conflict); callers that re-read and retry lose no update.
/// - `record_effect` returns `true` the first time a key is recorded for a release and `false`
///   every time after, also when called concurrently (exactly one caller gets `true`); keys of
///   different releases are independent; an unknown release is
///   [`Error::NotFound`](crate::Error::NotFound); an invalid key (see [`check_effect_key`]) is
///   [`Error::InvalidInput`](crate::Error::InvalidInput).
/// - `effects` lists a release's recorded keys, each once, in the order they were first
///   recorded; an unknown release is [`Error::NotFound`](crate::Error::NotFound).
/// - Every method is atomic with respect to concurrent callers; a durable store keeps these
///   rules across processes sharing it, and keeps what a call acknowledged after a crash.
#[async_trait]
pub trait ReleaseStore: Send + Sync + Debug + 'static {
    /// Stores a new release.
    async fn create(&self, release: Release) -> Result<Release>;
    /// Reads a release.
    async fn get(&self, id: Uuid) -> Result<Release>;
    /// Lists releases matching `filter`, oldest first.
    async fn list(&self, filter: &ReleaseFilter) -> Result<Vec<Release>>;
    /// Stores the next state of a release if it is still at `expected_version`.
    async fn update(
        &self,
        id: Uuid,
        expected_version: u64,
        state: ReleaseState,
        now: DateTime<Utc>,
    ) -> Result<Release>;
    /// Records that the effect `key` of a release was applied (or claimed); `true` the first
    /// time.
    async fn record_effect(&self, id: Uuid, key: &str) -> Result<bool>;
    /// The effect keys recorded for a release, in recording order.
    async fn effects(&self, id: Uuid) -> Result<Vec<String>>;
}
