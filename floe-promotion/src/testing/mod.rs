//! Conformance suites that every backend runs, and fakes for embedders' tests.
//!
//! Enabled by the `testing` feature. Each suite is a list of `pub async fn` cases, one per
//! sentence of a trait's `# Contract`, and a macro that expands to one `#[tokio::test]` per
//! case (see [`registry_conformance!`](crate::registry_conformance)).

pub mod checkpoints;
pub mod config;
pub mod cursors;
pub mod deliveries;
pub mod fakes;
pub mod gate;
pub mod history;
pub mod holds;
pub mod pipeline;
pub mod registry;
pub mod release;
pub mod revocations;
pub mod signing;
pub mod state;
