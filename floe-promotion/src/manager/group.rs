//! What a promotion with its dependencies did, or would do.

use uuid::Uuid;

use super::types::{PromotionPlan, PromotionRecord};
use crate::model::Dependency;

/// The outcome of [`DefaultPromotionManager::promote_with_dependencies`](crate::DefaultPromotionManager::promote_with_dependencies):
/// one group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupRecord {
    /// The group's id, on every member's events and on the `group_promoted` event.
    pub group: Uuid,
    /// The dependencies that were already current in the target at the digest wanted, in
    /// promotion order (nothing was done for them).
    pub satisfied: Vec<Dependency>,
    /// The dependencies promoted, in promotion order.
    pub dependencies: Vec<PromotionRecord>,
    /// The dependent's promotion, last.
    pub dependent: PromotionRecord,
}

impl GroupRecord {
    /// Every promotion of the group, in order, the dependent last.
    pub fn members(&self) -> impl Iterator<Item = &PromotionRecord> {
        self.dependencies
            .iter()
            .chain(std::iter::once(&self.dependent))
    }
}

/// The plan of [`DefaultPromotionManager::plan_with_dependencies`](crate::DefaultPromotionManager::plan_with_dependencies):
/// the plan of each dependency that would be promoted, in order, then the dependent's.
///
/// A blocker of a step that says a dependency is missing is left out when an earlier step of
/// the group would promote that dependency at that digest.
#[derive(Debug)]
pub struct GroupPlan {
    /// The dependencies already current in the target at the digest wanted, in promotion
    /// order.
    pub satisfied: Vec<Dependency>,
    /// The plans, dependencies in promotion order, the dependent last.
    pub steps: Vec<PromotionPlan>,
}

impl GroupPlan {
    /// Whether every step would succeed now.
    pub fn would_succeed(&self) -> bool {
        self.steps.iter().all(PromotionPlan::would_succeed)
    }

    /// The dependent's plan (the last step).
    pub fn dependent(&self) -> Option<&PromotionPlan> {
        self.steps.last()
    }
}
