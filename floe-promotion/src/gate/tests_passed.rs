use async_trait::async_trait;

use super::{GateContext, GateOutcome, PromotionGate};
use crate::error::Result;
use crate::registry::{EvidenceKind, EvidenceStatus, RegistryExt};

/// Passes when the newest evidence of a kind attached to the promoted digest says "passed".
///
/// `EvidenceGate::new(EvidenceKind::Tests)` is the built-in `tests` gate.
#[derive(Debug, Clone)]
pub struct EvidenceGate {
    kind: EvidenceKind,
    name: String,
}

impl EvidenceGate {
    /// A gate on evidence of `kind`.
    pub fn new(kind: EvidenceKind) -> Self {
        EvidenceGate {
            name: kind.to_string(),
            kind,
        }
    }
}

#[async_trait]
impl PromotionGate for EvidenceGate {
    fn name(&self) -> &str {
        &self.name
    }

    async fn evaluate(&self, ctx: &GateContext) -> Result<GateOutcome> {
        let evidence = ctx.registry.evidence(&ctx.source, &ctx.digest).await?;
        let newest = evidence.iter().rev().find(|e| e.kind == self.kind);
        Ok(match newest {
            Some(e) if e.status == EvidenceStatus::Passed => GateOutcome::pass(format!(
                "{} evidence passed at {}",
                self.kind,
                e.created.to_rfc3339()
            )),
            Some(e) => GateOutcome::fail(format!(
                "newest {} evidence ({}) says failed",
                self.kind,
                e.created.to_rfc3339()
            )),
            None => GateOutcome::fail(format!(
                "no {} evidence is attached to {}",
                self.kind, ctx.digest
            )),
        })
    }
}
