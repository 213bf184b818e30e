//! `floe promote --with-dependencies`: the dependencies first, then the dependent, as one
//! group; with `--dry-run`, the plan of each step.

use super::*;
use crate::output::{GroupOutput, GroupPlanOutput, Output};

pub(super) async fn run(
    app: &App,
    req: PromotionRequest,
    dry_run: bool,
) -> Result<(Option<Output>, u8)> {
    if dry_run {
        let plan = GroupPlanOutput::of(&app.manager.plan_with_dependencies(req).await?);
        let code = plan
            .steps
            .iter()
            .map(plan_code)
            .find(|c| *c != exit::OK)
            .unwrap_or(exit::OK);
        return Ok((Some(Output::PlanGroup(plan)), code));
    }
    app.deliver_at_exit();
    let progress = app.progress();
    let group = app.manager.promote_with_dependencies(req).await;
    progress.finish();
    Ok((
        Some(Output::PromoteGroup(GroupOutput::of(&group?))),
        exit::OK,
    ))
}
