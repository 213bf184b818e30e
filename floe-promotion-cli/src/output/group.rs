//! `floe promote --with-dependencies`: the group promoted, or the plan of each step.

use std::fmt::Write as _;

use floe_promotion::manager::{GroupPlan, GroupRecord};
use floe_promotion::model::Dependency;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Output, PlanOutput};
use floe_promotion::manager::PromotionRecord;

/// A promotion with its dependencies: one group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupOutput {
    /// The group's id (on every member's events and on `group_promoted`).
    pub group: Uuid,
    /// Dependencies already in the target at the digest wanted, in order.
    pub satisfied: Vec<Dependency>,
    /// The promotions, dependencies in order, the dependent last.
    pub promotions: Vec<PromotionRecord>,
}

impl GroupOutput {
    /// The printable form of a group.
    pub fn of(g: &GroupRecord) -> Self {
        GroupOutput {
            group: g.group,
            satisfied: g.satisfied.clone(),
            promotions: g.members().cloned().collect(),
        }
    }

    pub(super) fn text(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "group {}: {} promotion(s), dependencies first",
            self.group,
            self.promotions.len()
        );
        for d in &self.satisfied {
            let _ = writeln!(out, "  already there: {d}");
        }
        for r in &self.promotions {
            out.push_str(&Output::Promote(r.clone()).text());
        }
    }
}

/// The dry run of a promotion with its dependencies: each step's plan, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupPlanOutput {
    /// Whether every step would succeed now.
    pub would_succeed: bool,
    /// Dependencies already in the target at the digest wanted, in order.
    pub satisfied: Vec<Dependency>,
    /// The plans, dependencies in promotion order, the dependent last.
    pub steps: Vec<PlanOutput>,
}

impl GroupPlanOutput {
    /// The printable form of a group plan.
    pub fn of(plan: &GroupPlan) -> Self {
        GroupPlanOutput {
            would_succeed: plan.would_succeed(),
            satisfied: plan.satisfied.clone(),
            steps: plan.steps.iter().map(PlanOutput::of).collect(),
        }
    }

    pub(super) fn text(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "dry run with dependencies: {} step(s), dependencies first",
            self.steps.len()
        );
        for d in &self.satisfied {
            let _ = writeln!(out, "  already there: {d}");
        }
        for (i, step) in self.steps.iter().enumerate() {
            let _ = write!(out, "step {}: ", i + 1);
            out.push_str(&Output::Plan(step.clone()).text());
        }
    }
}
