//! Blue-green releases: two slot tags per environment, a new version staged on the idle one
//! (the preview), and a switch that moves the pointer.

use super::*;

impl DefaultPromotionManager {
    /// Stages a promotion whose checks and gates passed on the idle slot of its target.
    pub(super) async fn stage_preview(
        &self,
        req: &PromotionRequest,
        _ev: Evaluation,
        _started: DateTime<Utc>,
        _approval: Option<(Uuid, &Actor)>,
        _auto_switch: bool,
    ) -> Result<PromotionRecord> {
        Err(Error::not_supported(
            format!("environment {}: strategy: blue_green", req.to),
            "blue-green releases are not implemented yet",
        ))
    }
}
