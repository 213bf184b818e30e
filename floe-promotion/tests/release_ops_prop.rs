//! Random sequences of promote, canary advance and abort, blue-green switch and switch back,
//! rollback, automatic passes and clock moves on the in-memory pipeline (staging releases by
//! blue-green, prod as a canary), checking after every step that each environment has exactly
//! one stable pointer and that it always equals history's current version; that at most one
//! canary runs per environment and artifact, with `canary-prod` on its digest; that the live
//! blue-green slot holds the pointer's digest; and that the audit chain verifies.

use std::time::Duration;

use floe_promotion::config::{CanaryStep, Strategy as Release};
use floe_promotion::orchestrate::AutoOptions;
use floe_promotion::prelude::*;
use floe_promotion::testing::pipeline::TestPipeline;
use floe_promotion::*;
use proptest::prelude::*;

const ENVS: [&str; 3] = ["dev", "staging", "prod"];
const VERSIONS: [&str; 3] = ["v1", "v2", "v3"];

#[derive(Clone, Debug)]
enum Op {
    Promote { version: usize, to: usize },
    Advance,
    Abort,
    Rollback { env: usize, version: usize },
    Switch { back: bool },
    Auto,
    Clock { minutes: i64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, 1..3usize).prop_map(|(version, to)| Op::Promote { version, to }),
        3 => Just(Op::Advance),
        1 => Just(Op::Abort),
        2 => (1..3usize, 0..3usize).prop_map(|(env, version)| Op::Rollback { env, version }),
        1 => Just(Op::Auto),
        2 => any::<bool>().prop_map(|back| Op::Switch { back }),
        1 => (1..90i64).prop_map(|minutes| Op::Clock { minutes }),
    ]
}

async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut p = TestPipeline::new(&ENVS);
    p.env_mut("staging").strategy = Release::BlueGreen { auto_switch: false };
    p.env_mut("prod").strategy = Release::Canary {
        steps: vec![
            CanaryStep {
                weight: 25,
                pause: Some(Duration::from_secs(1800)),
            },
            CanaryStep {
                weight: 75,
                pause: None,
            },
            CanaryStep {
                weight: 100,
                pause: None,
            },
        ],
    };
    for (i, v) in VERSIONS.iter().enumerate() {
        p.push_release("app", v, format!("content {i}").as_bytes())
            .await;
    }
    let m = p.manager();
    let actor = Actor::new("ops").unwrap();
    let prod = EnvName::new("prod").unwrap();
    for op in ops {
        let _ = match &op {
            Op::Promote { version, to } => m
                .promote(
                    PromotionRequest::new(
                        "app",
                        VERSIONS[*version],
                        ENVS[*to - 1],
                        ENVS[*to],
                        actor.clone(),
                    )
                    .unwrap(),
                )
                .await
                .map(|_| ()),
            Op::Advance => m.advance_canary(&prod, None, &actor).await.map(|_| ()),
            Op::Abort => m
                .abort_canary(&prod, None, &actor, "random abort")
                .await
                .map(|_| ()),
            Op::Rollback { env, version } => m
                .rollback(
                    RollbackRequest::new(
                        "app",
                        ENVS[*env],
                        VERSIONS[*version],
                        actor.clone(),
                        "revert",
                    )
                    .unwrap(),
                )
                .await
                .map(|_| ()),
            Op::Switch { back } => {
                let mut req = SwitchRequest::new("staging", "app", actor.clone()).unwrap();
                if *back {
                    req.back = true;
                    req.reason = Some("switch back".into());
                }
                m.switch(req).await.map(|_| ())
            }
            Op::Auto => m
                .run_auto_promotions(&AutoOptions::new(actor.clone()))
                .await
                .map(|_| ()),
            Op::Clock { minutes } => {
                p.clock.advance(chrono::Duration::minutes(*minutes));
                Ok(())
            }
        };
        let status = m.status(None).await.unwrap();
        for s in &status {
            let env = s.environment.as_str();
            let pointer = p.tag_digest(env, "app", &format!("latest-{env}")).await;
            let current: Vec<_> = s
                .deployments
                .iter()
                .filter(|d| d.artifact.as_str() == "app")
                .map(|d| d.digest.clone())
                .collect();
            prop_assert!(current.len() <= 1, "one current version in {}", env);
            prop_assert_eq!(
                pointer.as_ref(),
                current.first(),
                "the pointer of {} is history's current after {:?}",
                env,
                op
            );
            prop_assert!(s.canaries.len() <= 1, "one canary at a time in {}", env);
            for slot in s.slots.iter().filter(|slot| slot.live) {
                prop_assert_eq!(
                    slot.digest.as_ref(),
                    pointer.as_ref(),
                    "the live slot of {} holds the pointer's digest after {:?}",
                    env,
                    op
                );
            }
            if let Some(c) = s.canaries.first() {
                prop_assert_eq!(
                    p.tag_digest(env, "app", &format!("canary-{env}")).await,
                    Some(c.digest.clone()),
                    "canary-{} holds the running canary's digest",
                    env
                );
            }
        }
        prop_assert!(m.verify().await.unwrap().is_intact());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn one_stable_pointer_per_environment_always_equals_history(
        ops in proptest::collection::vec(op(), 1..30)
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run(ops))?;
    }
}
