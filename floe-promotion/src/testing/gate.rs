//! Conformance suite of [`PromotionGate`]: checks any gate, built-in or your own, against the
//! sentences of the trait's contract that hold for every gate. Use it with a
//! [`TestPipeline`] and its
//! [`gate_context`](super::pipeline::TestPipeline::gate_context).

use std::time::Duration;

use crate::gate::{GateContext, GateStatus, PromotionGate};
use crate::history::HistoryStore;
use crate::registry::ArtifactRegistry;
use crate::testing::pipeline::TestPipeline;

/// `name` is stable and non-empty.
pub fn name_is_stable(gate: &dyn PromotionGate) {
    let name = gate.name().to_string();
    assert!(!name.trim().is_empty(), "a gate needs a name");
    assert_eq!(gate.name(), name);
}

/// `evaluate` answers passed, warned or failed (or `Err`), and writes nothing: no tag, blob,
/// history event or lock. Returns the status for further checks.
pub async fn evaluate_reads_only(
    gate: &dyn PromotionGate,
    pipeline: &TestPipeline,
    ctx: &GateContext,
) -> Option<GateStatus> {
    let mut tags_before = Vec::new();
    for env in &pipeline.settings.environments {
        let repo = pipeline.repo(env.name.as_str(), ctx.artifact.as_str());
        tags_before.push(pipeline.registry.list_tags(&repo).await.expect("tags"));
    }
    let uploads = pipeline.registry.blob_uploads();
    let events = pipeline.history.len();
    let status = gate.evaluate(ctx).await.ok().map(|o| o.status);
    if let Some(s) = status {
        assert!(
            matches!(
                s,
                GateStatus::Passed | GateStatus::Warned | GateStatus::Failed
            ),
            "a gate's own outcome is passed, warned or failed, not {s}"
        );
    }
    let mut tags_after = Vec::new();
    for env in &pipeline.settings.environments {
        let repo = pipeline.repo(env.name.as_str(), ctx.artifact.as_str());
        tags_after.push(pipeline.registry.list_tags(&repo).await.expect("tags"));
    }
    assert_eq!(tags_before, tags_after, "{} wrote tags", gate.name());
    assert_eq!(
        pipeline.registry.blob_uploads(),
        uploads,
        "{} wrote blobs",
        gate.name()
    );
    assert_eq!(
        pipeline.history.len(),
        events,
        "{} wrote history",
        gate.name()
    );
    assert!(
        crate::LockStore::locks(&pipeline.state, ctx.now)
            .await
            .expect("locks")
            .is_empty(),
        "{} took a lock",
        gate.name()
    );
    assert!(
        pipeline.history.verify().await.expect("verify").is_intact(),
        "{} broke the audit chain",
        gate.name()
    );
    status
}

/// `evaluate` may be cancelled at any await point: dropping it early returns control and
/// a later evaluation still answers.
pub async fn evaluate_can_be_cancelled(gate: &dyn PromotionGate, ctx: &GateContext) {
    let _ = tokio::time::timeout(Duration::from_micros(1), gate.evaluate(ctx)).await;
    let again = tokio::time::timeout(Duration::from_secs(30), gate.evaluate(ctx)).await;
    assert!(
        again.is_ok(),
        "{} did not answer after a cancelled run",
        gate.name()
    );
}

/// `evaluate` judges the digest in the context: evaluating the same context twice gives the
/// same verdict even if the release tag has moved to other content in between.
pub async fn evaluate_binds_to_the_digest(
    gate: &dyn PromotionGate,
    pipeline: &TestPipeline,
    ctx: &GateContext,
) {
    let first = gate.evaluate(ctx).await.ok().map(|o| o.status);
    pipeline
        .registry
        .push_image(&ctx.source, &ctx.version, &[b"moved tag content"])
        .await
        .expect("move the tag");
    let second = gate.evaluate(ctx).await.ok().map(|o| o.status);
    assert_eq!(
        first,
        second,
        "{} judged what the tag points at now",
        gate.name()
    );
}
