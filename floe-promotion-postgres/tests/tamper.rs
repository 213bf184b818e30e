//! `verify` against rows edited behind the library's back with plain SQL, and the indexes the
//! history queries use.

use chrono::Utc;
use floe_promotion::history::{EventKind, EventRecord, HistoryExt, HistoryStore};
use floe_promotion::{Actor, EnvName};
use floe_promotion_postgres::PostgresStore;
use floe_promotion_postgres::testing::TestPostgres;

async fn admin(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("admin connection");
    tokio::spawn(conn);
    client
}

/// A database holding five events in `prod`, with a store and an admin connection on it.
async fn five_events() -> (PostgresStore, tokio_postgres::Client) {
    let url = TestPostgres::shared().fresh_database().await;
    let store = PostgresStore::connect(&url).await.expect("connect");
    for i in 0..5 {
        let mut r = EventRecord::new(EventKind::Locked, Actor::new("ops").unwrap(), Utc::now());
        r.environment = Some(EnvName::new("prod").unwrap());
        r.details.insert("n".into(), i.to_string());
        store.append(r).await.expect("append");
    }
    assert!(store.verify().await.expect("verify").is_intact());
    (store, admin(&url).await)
}

async fn edit(client: &tokio_postgres::Client, sql: &str) {
    client
        .batch_execute(&format!(
            "ALTER TABLE events DISABLE TRIGGER events_are_append_only; {sql}; \
             ALTER TABLE events ENABLE TRIGGER events_are_append_only;"
        ))
        .await
        .expect("edit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trigger_refuses_updates_and_deletes() {
    let (_store, client) = five_events().await;
    let err = client
        .execute("DELETE FROM events WHERE seq = 2", &[])
        .await
        .expect_err("append-only");
    assert!(err.to_string().contains("append-only") || format!("{err:?}").contains("append-only"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_content_is_detected() {
    let (store, client) = five_events().await;
    edit(
        &client,
        "UPDATE events SET content = replace(content, '\"n\":\"2\"', '\"n\":\"9\"') WHERE seq = 3",
    )
    .await;
    let report = store.verify().await.expect("verify");
    assert_eq!(report.first_break.expect("a break").seq, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_indexed_column_is_detected() {
    let (store, client) = five_events().await;
    edit(
        &client,
        "UPDATE events SET environment = 'dev' WHERE seq = 4",
    )
    .await;
    let report = store.verify().await.expect("verify");
    assert_eq!(report.first_break.expect("a break").seq, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_events_are_detected_in_the_middle_and_at_the_end() {
    let (store, client) = five_events().await;
    edit(&client, "DELETE FROM events WHERE seq = 5").await;
    let report = store.verify().await.expect("verify");
    assert!(!report.is_intact(), "the head row records 5 events");
    edit(&client, "DELETE FROM events WHERE seq = 2").await;
    let report = store.verify().await.expect("verify");
    assert_eq!(report.first_break.expect("a break").seq, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_queries_can_use_their_indexes() {
    let (_store, client) = five_events().await;
    client
        .batch_execute("SET enable_seqscan = off")
        .await
        .expect("set");
    for (filter, index) in [
        ("environment = 'prod'", "events_by_environment"),
        ("artifact = 'app'", "events_by_artifact"),
        ("digest = 'sha256:00'", "events_by_digest"),
        ("time_ms >= 0 AND time_ms <= 10", "events_by_time"),
    ] {
        let rows = client
            .query(
                &format!(
                    "EXPLAIN SELECT seq FROM events WHERE {filter} ORDER BY seq DESC LIMIT 50"
                ),
                &[],
            )
            .await
            .expect("explain");
        let plan: Vec<String> = rows.iter().map(|r| r.get::<_, String>(0)).collect();
        let plan = plan.join("\n");
        assert!(plan.contains(index), "{filter}: {plan}");
    }
}
