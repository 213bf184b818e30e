//! # floe-promotion-postgres
//!
//! The durable state of floe-promotion in a PostgreSQL database, shared by promoters on many
//! machines: [`PostgresStore`] implements the core's
//! [`HistoryStore`](floe_promotion::HistoryStore), [`LockStore`](floe_promotion::LockStore),
//! [`HoldStore`](floe_promotion::state::HoldStore),
//! [`ReleaseStore`](floe_promotion::ReleaseStore),
//! [`CursorStore`](floe_promotion::notify::CursorStore) and
//! [`DeliveryLog`](floe_promotion::notify::DeliveryLog).
//!
//! ```no_run
//! use std::sync::Arc;
//! use floe_promotion::history::{EventKind, EventRecord, HistoryExt, HistoryStore};
//! use floe_promotion::Actor;
//! use floe_promotion_postgres::PostgresStore;
//!
//! # async fn run() -> floe_promotion::Result<()> {
//! let store = PostgresStore::connect("postgres://floe:secret@db.example/floe").await?;
//! let history: Arc<dyn HistoryStore> = Arc::new(store);
//! let event = EventRecord::new(EventKind::Locked, Actor::new("ops")?, chrono::Utc::now());
//! history.append(event).await?;
//! assert!(history.verify().await?.is_intact());
//! # Ok(()) }
//! ```
//!
//! ## Connecting
//!
//! [`PostgresStore::connect`] takes a URL. With `sslmode=require` the connection uses TLS
//! (rustls, with the platform's root certificates); with `prefer`, the default, it tries TLS
//! and falls back to plain text when the server offers none; with `disable` it is plain. An
//! `sslmode` the driver does not know is refused. Errors and the
//! store's `Debug` output name the server by its URL with the password replaced by `***`
//! ([`PostgresStore::redacted_url`]); a server that cannot be reached, is shutting down or is
//! restarting gives [`Error::Unavailable`](floe_promotion::Error::Unavailable), and the call
//! may be retried. Every write is one transaction: a failed call changed nothing.
//!
//! ## Schema
//!
//! Versioned in the table `schema_version` ([`SCHEMA_VERSION`]); migrations run when a store
//! connects, in one transaction under an advisory lock, so concurrent connects migrate once.
//! A database with a newer schema or another application's `schema_version` is refused.
//!
//! ## Concurrency
//!
//! - Appends lock the single chain-head row (`SELECT ... FOR UPDATE`) inside the append
//!   transaction, then insert the events and update the head: concurrent appenders on any
//!   number of hosts form one chain, without forks or gaps. Each event row stores the exact
//!   bytes that were hashed (`content`), with copies of its environment, artifact, version,
//!   digest, kind and time in indexed columns.
//! - Locks, leases, holds, cursors and releases change under a transaction-scoped advisory
//!   lock per key or a row lock, so check-then-write is atomic across hosts. Release updates
//!   are compare-and-set on the version.
//! - Leases are rows holding an expiry time: a promoter that died stops holding its
//!   environment when its lease expires.

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

#[cfg(feature = "testing")]
pub mod testing;

pub use schema::SCHEMA_VERSION;
pub use store::{PostgresOptions, PostgresStore};
