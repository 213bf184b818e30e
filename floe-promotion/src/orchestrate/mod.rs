//! Processes that span environments and promotions: automatic promotion, and the order in
//! which dependencies are promoted.

pub mod auto;
pub mod dependencies;

pub use auto::{
    AutoAction, AutoDecision, AutoOptions, AutoReport, Candidate, Source, candidates, natural_order,
};
pub use dependencies::{Cycle, DependencyGraph};
