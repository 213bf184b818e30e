use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;

use super::{EvidenceGate, GateContext, GateOutcome, GateStatus, PromotionGate};
use crate::error::Result;
use crate::registry::EvidenceKind;

/// Declarative policy rules from the manifest's `gates.policy_compliance`.
///
/// `policy_compliance: true` means [`PolicyRules::require_evidence`] only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyRules {
    /// Passed policy evidence must be attached to the digest.
    pub require_evidence: bool,
    /// Manifest annotations that must be present; a `Some` value must match exactly.
    pub required_annotations: BTreeMap<String, Option<String>>,
    /// The manifest's media type (or artifact type) must be one of these (empty: any).
    pub allowed_media_types: Vec<String>,
    /// The sum of config and layer sizes may not exceed this.
    pub max_size_bytes: Option<u64>,
}

/// A pluggable policy engine (OPA, Kyverno, an in-house service) consulted by the policy gate.
///
/// # Contract
///
/// - `evaluate` judges the digest in the context and returns passed, warned or failed; `Err`
///   when it could not evaluate, which fails the gate.
#[async_trait]
pub trait PolicyEvaluator: Send + Sync + Debug + 'static {
    /// Evaluates the candidate.
    async fn evaluate(&self, ctx: &GateContext) -> Result<GateOutcome>;
}

/// The `policy_compliance` gate: the declarative rules, then the evaluator if one is set.
/// Every violated rule is listed in the message.
#[derive(Debug, Clone)]
pub struct PolicyGate {
    rules: PolicyRules,
    evaluator: Option<Arc<dyn PolicyEvaluator>>,
}

impl PolicyGate {
    /// A gate over `rules` and an optional evaluator.
    pub fn new(rules: PolicyRules, evaluator: Option<Arc<dyn PolicyEvaluator>>) -> Self {
        PolicyGate { rules, evaluator }
    }
}

#[async_trait]
impl PromotionGate for PolicyGate {
    fn name(&self) -> &str {
        "policy_compliance"
    }

    async fn evaluate(&self, ctx: &GateContext) -> Result<GateOutcome> {
        let body = ctx.manifest.body();
        let mut violations = Vec::new();
        for (key, wanted) in &self.rules.required_annotations {
            match (body.annotations.get(key), wanted) {
                (None, _) => violations.push(format!("annotation {key} is missing")),
                (Some(v), Some(w)) if v != w => {
                    violations.push(format!("annotation {key} is {v:?}, expected {w:?}"))
                }
                _ => {}
            }
        }
        if !self.rules.allowed_media_types.is_empty() {
            let types = [
                Some(ctx.manifest.media_type()),
                body.artifact_type.as_deref(),
            ];
            if !types
                .iter()
                .flatten()
                .any(|t| self.rules.allowed_media_types.iter().any(|a| a == t))
            {
                violations.push(format!(
                    "media type {} is not one of {}",
                    ctx.manifest.media_type(),
                    self.rules.allowed_media_types.join(", ")
                ));
            }
        }
        if let Some(max) = self.rules.max_size_bytes {
            let size = body.blob_size();
            if size > max {
                violations.push(format!("size {size} bytes exceeds the maximum of {max}"));
            }
        }
        if self.rules.require_evidence {
            let outcome = EvidenceGate::new(EvidenceKind::Policy)
                .evaluate(ctx)
                .await?;
            if !outcome.status.allows() {
                violations.push(outcome.message);
            }
        }
        let mut warning = None;
        if let Some(evaluator) = &self.evaluator {
            let outcome = evaluator.evaluate(ctx).await?;
            match outcome.status {
                GateStatus::Passed => {}
                GateStatus::Warned => warning = Some(outcome.message),
                _ => violations.push(outcome.message),
            }
        }
        Ok(if !violations.is_empty() {
            GateOutcome::fail(violations.join("; "))
        } else if let Some(w) = warning {
            GateOutcome::warn(w)
        } else {
            GateOutcome::pass("all policy rules hold")
        })
    }
}
