//! The promotion path of `DefaultPromotionManager`, one test per rule of its contract and per
//! refusal, on in-memory parts.

use floe_promotion::testing::pipeline::TestPipeline;
use floe_promotion::*;

mod gates;
mod locks;
mod policy;
mod promotion;
mod reporting;
mod rollback;

fn req(version: &str, from: &str, to: &str, actor: &str) -> PromotionRequest {
    PromotionRequest::new("app", version, from, to, Actor::new(actor).unwrap()).unwrap()
}

fn env(name: &str) -> EnvName {
    EnvName::new(name).unwrap()
}

fn three() -> TestPipeline {
    TestPipeline::new(&["dev", "staging", "prod"])
}
