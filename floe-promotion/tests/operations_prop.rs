//! Random sequences of promote, rollback, lock and unlock on the in-memory pipeline, checking
//! after every step that:
//! (a) each environment's pointer tag resolves to the digest of its last successful promotion
//!     or rollback,
//! (b) environment and rollback tags never change digest once written,
//! (c) the audit chain verifies,
//! and at the end that (d) tampering with any single event is detected.

use std::collections::HashMap;

use floe_promotion::history::AuditEvent;
use floe_promotion::manager::Outcome;
use floe_promotion::testing::pipeline::TestPipeline;
use floe_promotion::*;
use proptest::prelude::*;

const ENVS: [&str; 3] = ["dev", "staging", "prod"];
const VERSIONS: [&str; 3] = ["v1", "v2", "v3"];

#[derive(Clone, Debug)]
enum Op {
    Promote {
        version: usize,
        from: usize,
        to: usize,
        actor: usize,
    },
    Rollback {
        env: usize,
        version: usize,
    },
    Lock {
        env: usize,
    },
    Unlock {
        env: usize,
    },
    Override {
        version: usize,
        from: usize,
    },
    Advance {
        minutes: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, 0..3usize, 0..3usize, 0..2usize)
            .prop_map(|(version, from, to, actor)| Op::Promote { version, from, to, actor }),
        2 => (1..3usize, 0..3usize).prop_map(|(env, version)| Op::Rollback { env, version }),
        1 => (0..3usize).prop_map(|env| Op::Lock { env }),
        1 => (0..3usize).prop_map(|env| Op::Unlock { env }),
        1 => (0..3usize, 0..2usize).prop_map(|(version, from)| Op::Override { version, from }),
        1 => (1..120i64).prop_map(|minutes| Op::Advance { minutes }),
    ]
}

#[derive(Clone, Debug)]
enum Tamper {
    Edit(usize),
    Remove(usize),
    Swap(usize),
    Duplicate(usize),
    EditHash(usize),
}

fn tamper() -> impl Strategy<Value = Tamper> {
    prop_oneof![
        any::<usize>().prop_map(Tamper::Edit),
        any::<usize>().prop_map(Tamper::Remove),
        any::<usize>().prop_map(Tamper::Swap),
        any::<usize>().prop_map(Tamper::Duplicate),
        any::<usize>().prop_map(Tamper::EditHash),
    ]
}

fn apply(t: &Tamper, events: &mut Vec<AuditEvent>) -> bool {
    let n = events.len();
    if n == 0 {
        return false;
    }
    match *t {
        Tamper::Edit(i) => {
            let e = &mut events[i % n];
            e.record.reason = Some(format!("{:?} edited", e.record.reason));
        }
        Tamper::EditHash(i) => {
            let e = &mut events[i % n];
            e.hash = "f".repeat(64);
        }
        Tamper::Remove(i) => {
            events.remove(i % n);
        }
        Tamper::Swap(i) => {
            if n < 2 {
                return false;
            }
            let i = i % (n - 1);
            events.swap(i, i + 1);
        }
        Tamper::Duplicate(i) => {
            let e = events[i % n].clone();
            events.insert(i % n, e);
        }
    }
    true
}

async fn run(ops: Vec<Op>, tampers: Vec<Tamper>) -> Result<(), TestCaseError> {
    let p = TestPipeline::new(&ENVS);
    for (i, v) in VERSIONS.iter().enumerate() {
        p.push_release("app", v, format!("content {i}").as_bytes())
            .await;
    }
    let m = p.manager();
    let actors = [Actor::new("alice").unwrap(), Actor::new("bob").unwrap()];
    // Model: the digest each pointer must hold, and every immutable tag's first digest.
    let mut pointer: HashMap<&str, Digest> = HashMap::new();
    let mut immutable: HashMap<(String, String), Digest> = HashMap::new();

    for op in ops {
        let result = match &op {
            Op::Promote {
                version,
                from,
                to,
                actor,
            } => m
                .promote(
                    PromotionRequest::new(
                        "app",
                        VERSIONS[*version],
                        ENVS[*from],
                        ENVS[*to],
                        actors[*actor].clone(),
                    )
                    .unwrap(),
                )
                .await
                .map(|r| Some((ENVS[*to], r))),
            Op::Override { version, from } => m
                .promote(
                    PromotionRequest::new(
                        "app",
                        VERSIONS[*version],
                        ENVS[*from],
                        ENVS[*from + 1],
                        actors[0].clone(),
                    )
                    .unwrap()
                    .override_lock("break glass"),
                )
                .await
                .map(|r| Some((ENVS[*from + 1], r))),
            Op::Rollback { env, version } => m
                .rollback(
                    RollbackRequest::new(
                        "app",
                        ENVS[*env],
                        VERSIONS[*version],
                        actors[1].clone(),
                        "revert",
                    )
                    .unwrap(),
                )
                .await
                .map(|r| Some((ENVS[*env], r))),
            Op::Lock { env } => m
                .lock(&EnvName::new(ENVS[*env]).unwrap(), &actors[0], "hold", None)
                .await
                .map(|_| None),
            Op::Unlock { env } => m
                .unlock(&EnvName::new(ENVS[*env]).unwrap(), &actors[0], None)
                .await
                .map(|_| None),
            Op::Advance { minutes } => {
                p.clock.advance(chrono::Duration::minutes(*minutes));
                Ok(None)
            }
        };
        if let Ok(Some((env, record))) = result {
            // A no-op promotion writes nothing: the pointer already holds the digest.
            if record.outcome == Outcome::AlreadyPromoted {
                prop_assert_eq!(pointer.get(env), Some(&record.digest));
            }
            pointer.insert(env, record.digest.clone());
        }
        // (a) pointers
        for env in ENVS {
            let actual = p.tag_digest(env, "app", &format!("latest-{env}")).await;
            prop_assert_eq!(
                actual.as_ref(),
                pointer.get(env),
                "pointer of {} after {:?}",
                env,
                op
            );
        }
        // (b) environment and rollback tags never move
        for env in ENVS {
            for t in p.registry.list_tags(&p.repo(env, "app")).await.unwrap() {
                let t = t.to_string();
                if t.starts_with("latest-") || VERSIONS.contains(&t.as_str()) {
                    continue;
                }
                let d = p.tag_digest(env, "app", &t).await.unwrap();
                let first = immutable
                    .entry((env.to_string(), t.clone()))
                    .or_insert_with(|| d.clone());
                prop_assert_eq!(&*first, &d, "{} moved after {:?}", t, op);
            }
        }
        // (c) chain
        let report = m.verify().await.unwrap();
        prop_assert!(report.is_intact(), "{:?}", report);
    }

    // Sanity: the history contains what the model saw.
    let succeeded = p
        .history
        .query(&Default::default())
        .await
        .unwrap()
        .iter()
        .filter(|e| e.record.kind.sets_current())
        .count();
    prop_assert!(succeeded >= pointer.len());

    // (d) any single tampering is detected
    for t in tampers {
        let mut saved = Vec::new();
        let mut changed = false;
        p.history.tamper(|events| {
            saved = events.clone();
            changed = apply(&t, events);
        });
        if changed {
            let report = m.verify().await.unwrap();
            prop_assert!(!report.is_intact(), "{:?} not detected", t);
        }
        p.history.tamper(|events| *events = saved.clone());
        prop_assert!(m.verify().await.unwrap().is_intact());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_keep_the_invariants(
        ops in proptest::collection::vec(op(), 1..40),
        tampers in proptest::collection::vec(tamper(), 1..6),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run(ops, tampers))?;
    }
}
