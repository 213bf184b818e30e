//! # floe-promotion
//!
//! Moves immutable artifacts (OCI images and artifacts, addressed by digest) through ordered
//! environments, such as dev → staging → prod, with gates, locks, rollback and a
//! tamper-evident audit trail.
//!
//! It is a library first: a service builds a [`DefaultPromotionManager`] from parts, each part
//! a trait with an in-memory implementation here and durable ones in sibling crates.
//!
//! | trait | in-memory | other implementations |
//! |---|---|---|
//! | [`EnvironmentConfig`] | [`config::InMemoryConfig`] (also from `manifest.yaml`) | |
//! | [`ArtifactRegistry`] | [`InMemoryRegistry`] | `floe-promotion-oci`: remote registries, OCI layout directories |
//! | [`PromotionGate`] | closures via [`gate::gate_fn`], built-in gates in [`gate`] | your own |
//! | [`HistoryStore`] | [`InMemoryHistory`] | `floe-promotion-sqlite` |
//! | [`LockStore`] | [`InMemoryState`] | `floe-promotion-sqlite` |
//! | [`ReleaseStore`] | [`InMemoryReleaseStore`] | `floe-promotion-sqlite` |
//! | [`Notifier`] | [`RecordingNotifier`], [`LogNotifier`] | `floe-promotion-webhook`: CloudEvents webhooks |
//! | [`DeliveryLog`] | [`InMemoryDeliveryLog`] | `floe-promotion-sqlite` |
//! | [`SignatureVerifier`] | | `floe-promotion-oci` (cosign keys) |
//! | [`Clock`] | [`SystemClock`], [`ManualClock`] | |
//!
//! Feature `testing` adds the module `testing`: the conformance suites every backend runs, and
//! fakes.
//!
//! ## Getting started
//!
//! ```
//! use std::sync::Arc;
//! use floe_promotion::*;
//! use floe_promotion::config::{Environment, InMemoryConfig, PromotionSettings};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let envs = ["dev", "staging", "prod"].map(|n| Environment::new(EnvName::new(n).unwrap()));
//! let config = InMemoryConfig::new(
//!     PromotionSettings::new(envs.to_vec()).with_registry(Repository::new("mem/floe")?),
//! )?;
//! let registry = Arc::new(InMemoryRegistry::new());
//! let manager = DefaultPromotionManager::builder()
//!     .config(Arc::new(config))
//!     .registry(registry.clone())
//!     .build()?;
//!
//! // CI pushed v1.0.0 into dev.
//! let dev = Repository::new("mem/floe/app")?;
//! registry.push_image(&dev, &Tag::new("v1.0.0")?, &[b"layer"]).await?;
//!
//! let actor = Actor::new("ci")?;
//! let record = manager
//!     .promote(PromotionRequest::new("app", "v1.0.0", "dev", "staging", actor)?)
//!     .await?;
//! assert_eq!(record.tags_written[0].as_str(), "v1.0.0-staging");
//! assert!(manager.verify().await?.is_intact());
//! # Ok::<(), Error>(()) }).unwrap();
//! ```

/// The traits an embedder calls methods of: `use floe_promotion::prelude::*;`.
pub mod prelude {
    pub use crate::config::EnvironmentConfig;
    pub use crate::gate::PromotionGate;
    pub use crate::history::{HistoryExt, HistoryStore};
    pub use crate::manager::BlueGreen;
    pub use crate::manager::{
        Administration, Approvals, AutoPromotions, Canaries, PromotionManager, Promotions,
        Revocations,
    };
    pub use crate::notify::Notifier;
    pub use crate::registry::{ArtifactRegistry, RegistryExt};
    pub use crate::release::ReleaseStore;
    pub use crate::state::{HoldStore, LockStore};
}
pub mod attest;
pub mod checkpoint;
pub mod clock;
pub mod config;
mod error;
pub mod gate;
pub mod history;
pub mod input;
pub mod manager;
pub mod model;
pub mod notify;
pub mod orchestrate;
pub mod policy;
pub mod registry;
pub mod release;
pub mod state;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use async_trait::async_trait;
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::EnvironmentConfig;
pub use error::{EXCERPT_CHARS, Error, Excerpt, LOCATION_EXCERPT_CHARS, Result};
pub use gate::{PromotionGate, SignatureVerifier};
pub use history::{HistoryExt, HistoryStore, InMemoryHistory};
pub use manager::{
    Administration, Approvals, AutoPromotions, Canaries, DefaultPromotionManager, PromotionManager,
    PromotionPlan, PromotionRecord, PromotionRequest, Promotions, Revocations, RollbackRequest,
};
pub use manager::{BlueGreen, SwitchRequest};
pub use model::{Actor, ArtifactName, ArtifactRef, Digest, EnvName, Reference, Repository, Tag};
pub use notify::{DeliveryLog, InMemoryDeliveryLog, LogNotifier, Notifier, RecordingNotifier};
pub use registry::{ArtifactRegistry, InMemoryRegistry, RegistryExt};
pub use release::{InMemoryReleaseStore, ReleaseStore};
pub use state::{HoldStore, InMemoryState, LockStore};

/// The README's Rust examples are compiled as doc-tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
