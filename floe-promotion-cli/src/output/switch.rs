//! What `floe switch --dry-run` prints, and the slot lines of `floe status`.

use std::fmt::Write as _;

use floe_promotion::gate::GateResult;
use floe_promotion::manager::{PlannedTag, SlotStatus, SwitchPlan};
use floe_promotion::model::text::printable as safe;
use floe_promotion::release::blue_green::{Slot, SlotContent};
use floe_promotion::state::EnvLock;
use floe_promotion::{ArtifactName, EnvName};
use serde::{Deserialize, Serialize};

use super::{Blocker, one_line};
use crate::exit;

/// A switch's dry run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwitchPlanOutput {
    /// Whether the real run would succeed now.
    pub would_succeed: bool,
    /// The environment.
    pub environment: EnvName,
    /// The artifact.
    pub artifact: ArtifactName,
    /// Whether it is a switch back.
    pub back: bool,
    /// The slot the pointer is on now.
    pub live_slot: Option<Slot>,
    /// What the live slot holds.
    pub live: Option<SlotContent>,
    /// The slot the pointer would move to.
    pub target_slot: Option<Slot>,
    /// What that slot holds.
    pub target: Option<SlotContent>,
    /// The tags that would be written or checked.
    pub tags: Vec<PlannedTag>,
    /// Every gate's result (none for a switch back).
    pub gates: Vec<GateResult>,
    /// The lock in force.
    pub lock: Option<EnvLock>,
    /// What would refuse the run, in order.
    pub blockers: Vec<Blocker>,
}

impl SwitchPlanOutput {
    /// The printable form of a switch plan.
    pub fn of(plan: &SwitchPlan) -> Self {
        SwitchPlanOutput {
            would_succeed: plan.would_succeed(),
            environment: plan.environment.clone(),
            artifact: plan.artifact.clone(),
            back: plan.back,
            live_slot: plan.live.as_ref().map(|(s, _)| *s),
            live: plan.live.as_ref().map(|(_, c)| c.clone()),
            target_slot: plan.target.as_ref().map(|(s, _)| *s),
            target: plan.target.as_ref().map(|(_, c)| c.clone()),
            tags: plan.tags.clone(),
            gates: plan.gates.clone(),
            lock: plan.lock.clone(),
            blockers: plan
                .blockers
                .iter()
                .map(|e| {
                    let code = exit::code(e);
                    Blocker {
                        message: one_line(&e.to_string()),
                        exit_code: code,
                        kind: exit::name(code).to_string(),
                    }
                })
                .collect(),
        }
    }

    pub(super) fn text(&self, out: &mut String) {
        let slot = |s: Option<Slot>, c: &Option<SlotContent>| match (s, c) {
            (Some(s), Some(c)) => format!(
                "{}-{s} ({}, sha256:{})",
                self.environment,
                c.version,
                c.digest.short()
            ),
            _ => "nothing".to_string(),
        };
        let _ = writeln!(
            out,
            "dry run: switch{} {} in {}: {}",
            if self.back { " back" } else { "" },
            self.artifact,
            self.environment,
            if self.would_succeed {
                "would succeed"
            } else {
                "would be refused"
            }
        );
        let _ = writeln!(out, "  live now {}", slot(self.live_slot, &self.live));
        let _ = writeln!(
            out,
            "  would switch to {}",
            slot(self.target_slot, &self.target)
        );
        for t in &self.tags {
            let _ = writeln!(out, "  would write {} ({:?})", t.tag, t.action);
        }
        super::lines::gates_text(out, &self.gates);
        for b in &self.blockers {
            let _ = writeln!(out, "  blocked ({}): {}", b.kind, safe(&b.message));
        }
    }
}

/// The slot lines of `floe status`: one per slot, marked live or preview.
pub(super) fn slots_text(out: &mut String, environment: &EnvName, slots: &[SlotStatus]) {
    super::table::write_table(
        out,
        "",
        None,
        slots.iter().map(|s| {
            vec![
                environment.to_string(),
                s.artifact.to_string(),
                "slot".to_string(),
                s.tag.to_string(),
                s.version
                    .as_ref()
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "-".into()),
                s.digest
                    .as_ref()
                    .map(|d| format!("sha256:{}", d.short()))
                    .unwrap_or_else(|| "-".into()),
                match (s.live, s.preview) {
                    (true, _) => "live",
                    (_, true) => "preview",
                    _ => "idle",
                }
                .to_string(),
            ]
        }),
    );
}
