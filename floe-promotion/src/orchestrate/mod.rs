//! Processes that span environments and promotions: automatic promotion (and, later,
//! dependency order).

pub mod auto;

pub use auto::{
    AutoAction, AutoDecision, AutoOptions, AutoReport, Candidate, Source, candidates, natural_order,
};
