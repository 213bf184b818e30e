//! Canary releases: the new digest on `canary-<env>`, a traffic weight per step, the pointer
//! moved at 100.

use super::*;

impl DefaultPromotionManager {
    /// Starts a canary of a promotion whose checks and gates passed.
    pub(super) async fn start_canary(
        &self,
        req: &PromotionRequest,
        _ev: Evaluation,
        _started: DateTime<Utc>,
        _approval: Option<(Uuid, &Actor)>,
        _steps: &[CanaryStep],
    ) -> Result<PromotionRecord> {
        Err(Error::not_supported(
            format!("environment {}: strategy: canary", req.to),
            "canary releases are not implemented yet",
        ))
    }
}
