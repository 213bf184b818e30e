//! # floe-promotion-sqlite
//!
//! The durable state of floe-promotion in one SQLite file, shared by separate processes (a
//! `floe promote` now, a `floe approve` or `floe unlock` later, two CI runners at once):
//! [`SqliteStore`] implements the core's [`HistoryStore`](floe_promotion::HistoryStore),
//! [`LockStore`](floe_promotion::LockStore), [`ReleaseStore`](floe_promotion::ReleaseStore)
//! (approval requests and other release state) and
//! [`CursorStore`](floe_promotion::notify::CursorStore) (notification delivery cursors) and
//! [`DeliveryLog`](floe_promotion::notify::DeliveryLog) (webhook delivery outcomes).
//!
//! ```
//! use std::sync::Arc;
//! use floe_promotion::history::{EventKind, EventRecord, HistoryExt, HistoryStore};
//! use floe_promotion::{Actor, LockStore, ReleaseStore};
//! use floe_promotion_sqlite::SqliteStore;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let dir = tempfile::tempdir().unwrap();
//! let store = SqliteStore::open(dir.path().join("floe.db")).await?;
//! let history: Arc<dyn HistoryStore> = Arc::new(store.clone());
//! let _locks: Arc<dyn LockStore> = Arc::new(store.clone());
//! let _releases: Arc<dyn ReleaseStore> = Arc::new(store);
//!
//! let event = EventRecord::new(EventKind::Locked, Actor::new("ops")?, chrono::Utc::now());
//! assert_eq!(history.append(event).await?.seq, 1);
//! assert!(history.verify().await?.is_intact());
//! # Ok::<(), floe_promotion::Error>(()) }).unwrap();
//! ```
//!
//! ## Durability and concurrency
//!
//! - The file is in WAL mode. Every write is atomic and survives the process being killed.
//!   Audit events, locks, holds, release state, revocations and delivery logs are written
//!   with `synchronous=FULL`: a call that returned `Ok` has been fsynced and survives a crash
//!   of the machine too. Three writes are not fsynced (`synchronous=NORMAL`), because losing
//!   them to a power cut costs nothing but a repeat: taking and releasing a promotion lease
//!   (after a power cut no process holds one; a release lost that way expires) and advancing a
//!   notification cursor (the event is delivered again; consumers deduplicate by its id). The
//!   next durable write syncs them too. A promotion's state writes are thereby two fsynced
//!   transactions (its request and its outcome). Closing does not checkpoint: the WAL is
//!   copied into the file inside the commit that brings it to
//!   [`SqliteOptions::wal_autocheckpoint`] pages (fewer for short-lived processes, which
//!   read the whole WAL each time they open the file).
//! - Every write is one `BEGIN IMMEDIATE` transaction: appends read the chain head and write
//!   the events and the new head atomically, so two processes appending at once produce one
//!   chain. A writer waits for another up to the busy timeout (default 10 s, see
//!   [`SqliteOptions::busy_timeout`]) and then fails with
//!   [`Error::Unavailable`](floe_promotion::Error::Unavailable) naming the file.
//! - All SQLite work runs on tokio's blocking threads (`spawn_blocking`), never on the async
//!   executor's threads. Connections come from a small per-store pool (reused, so prepared
//!   statements stay cached; at most 4 kept idle), because opening a connection costs more
//!   than most queries. [`SqliteStore::open`] readies a second one in the background, for
//!   the first two calls made at once (a promotion records its request while it checks).
//! - Release state is compare-and-set: an update reads the stored version and writes the next
//!   one in one `BEGIN IMMEDIATE` transaction, so of several processes updating a release from
//!   the same version exactly one wins; effect keys are unique rows, recorded once.
//! - Leases and locks are rows holding an expiry time: a promoter that crashed stops holding
//!   its environment when its lease expires.
//!
//! ## Schema
//!
//! Versioned with `PRAGMA user_version` ([`SCHEMA_VERSION`]) and marked with
//! `PRAGMA application_id`; migrations run when a read-write store opens the file. A file with
//! a newer schema, another application's file, a corrupt file or a non-database is refused with
//! [`Error::Store`](floe_promotion::Error::Store) naming the file.
//!
//! Each event row stores the exact bytes that were hashed, `content` (the canonical JSON of
//! the event in its audit format, see
//! [the core's history documentation](floe_promotion::history#audit-formats)), with
//! `prev_hash` and `hash`, plus copies of the environment, artifact, version, digest, kind and
//! time (in milliseconds) in indexed columns. Queries use the indexes to pre-filter and then
//! check every row exactly; they return `content` as it is stored.
//!
//! Schema version 2 upgrades a version-1 file (audit format 1) in place: its events keep
//! their bytes, and the `audit_format` row records the first sequence number in format 2 (the
//! events appended from then on). A file created by this release is in format 2 from event 1.
//!
//! Release state is one row per release holding its JSON, with its environment, artifact,
//! kind, status and version copied into indexed columns, and one row per recorded effect key
//! (unique per release). A file of an older schema gains these tables when a read-write store
//! opens it; a read-only store asks for that first.
//!
//! Webhook delivery outcomes (schema version 5) are one row per endpoint and event sequence
//! number, replaced by a redelivery; the time is stored as RFC 3339 text to the nanosecond.
//!
//! ## What `verify` detects
//!
//! `verify` hashes the stored bytes as they are, so a member added by a later release never
//! breaks it. It detects a row whose content, hash, `prev_hash`, sequence number or indexed
//! columns were changed (also with the `sqlite3` shell), content that is not the canonical
//! JSON of its format or not in the format due at its position, a deleted row (including the
//! last ones: the chain head row records the count and head hash), an inserted row, rows
//! reordered, and a current-version table that disagrees with the events. It cannot detect a
//! rewrite of the whole chain from
//! the edited event onwards together with the chain head (whoever can write the file can
//! recompute every hash): keep the head hash that `verify` reports somewhere else, and compare.

mod cursors;
mod deliveries;
mod errors;
mod history;
mod holds;
mod release;
mod revocations;
mod schema;
mod state;
mod store;
mod verify;

pub use schema::{APPLICATION_ID, SCHEMA_VERSION};
pub use store::{SHORT_LIVED_WAL_PAGES, SqliteOptions, SqliteStore};
