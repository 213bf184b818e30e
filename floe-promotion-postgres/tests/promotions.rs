//! Eight promoters, each with its own store (its own connections, as on separate hosts),
//! promoting different versions into one environment at once through the manager: one valid
//! chain, the pointer on the last success, the registry's pointer tag on the same digest.

use std::sync::Arc;

use floe_promotion::config::{Environment, InMemoryConfig, PromotionSettings};
use floe_promotion::history::{EventKind, HistoryQuery, HistoryStore};
use floe_promotion::*;
use floe_promotion_postgres::testing::TestPostgres;
use floe_promotion_postgres::{PostgresOptions, PostgresStore};

const PROMOTERS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_promoters_leave_the_pointer_on_the_last_success() {
    let url = TestPostgres::shared().fresh_database().await;
    let envs = ["dev", "staging", "prod"].map(|n| EnvName::new(n).map(Environment::new));
    let settings = PromotionSettings::new(envs.into_iter().collect::<Result<Vec<_>>>().unwrap())
        .with_registry(Repository::new("example/floe").unwrap());
    let config = Arc::new(InMemoryConfig::new(settings).unwrap());
    let registry = Arc::new(InMemoryRegistry::new());
    let repo = Repository::new("example/floe/app").unwrap();
    for i in 0..PROMOTERS {
        registry
            .push_image(
                &repo,
                &Tag::new(format!("v1.0.{i}")).unwrap(),
                &[format!("content {i}").as_bytes()],
            )
            .await
            .unwrap();
    }

    let mut tasks = Vec::new();
    for i in 0..PROMOTERS {
        let url = url.clone();
        let config = config.clone();
        let registry = registry.clone();
        tasks.push(tokio::spawn(async move {
            let store = Arc::new(
                PostgresStore::connect_with(&url, PostgresOptions::default().max_connections(2))
                    .await
                    .expect("connect"),
            );
            let manager = DefaultPromotionManager::builder()
                .config(config)
                .registry(registry)
                .history(store.clone())
                .locks(store.clone())
                .holds(store.clone())
                .cursors(store.clone())
                .releases(store)
                .build()
                .expect("manager");
            let request = PromotionRequest::new(
                "app",
                &format!("v1.0.{i}"),
                "dev",
                "staging",
                Actor::new(format!("ci-{i}")).unwrap(),
            )
            .expect("request");
            manager.promote(request).await
        }));
    }
    let mut succeeded = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(record) => {
                assert_eq!(record.outcome, manager::Outcome::Promoted, "{record:?}");
                succeeded += 1;
            }
            // Another promoter held the environment's lease, or moved the pointer first.
            Err(Error::Busy { .. } | Error::Conflict(_)) => {}
            Err(e) => panic!("promote: {e}"),
        }
    }
    eprintln!("{succeeded} of {PROMOTERS} promoters promoted");
    assert!(succeeded >= 1);

    let store = PostgresStore::connect(&url).await.expect("connect");
    let report = store.verify().await.expect("verify");
    assert!(report.is_intact(), "{report:?}");
    let events = store.query(&HistoryQuery::default()).await.expect("query");
    let successes: Vec<_> = events
        .iter()
        .filter(|e| e.record.kind == EventKind::PromotionSucceeded)
        .collect();
    assert_eq!(successes.len(), succeeded, "one success event per success");
    let last = successes.last().expect("a success");
    let staging = EnvName::new("staging").unwrap();
    let pointer = store
        .deployments(Some(&staging))
        .await
        .expect("deployments");
    assert_eq!(pointer.len(), 1);
    assert_eq!(Some(&pointer[0].digest), last.record.digest.as_ref());
    let tag = registry
        .resolve(&repo, &Reference::Tag(Tag::new("latest-staging").unwrap()))
        .await
        .expect("latest-staging");
    assert_eq!(Some(tag.digest()), last.record.digest.as_ref());
}
