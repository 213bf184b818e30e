//! Exports from the stored bytes are exactly what the core's `ExportWriter` writes.

use chrono::Duration;
use floe_promotion::history::{
    EventKind, ExportFormat, ExportWriter, HistoryQuery, HistoryStore, Order,
};
use floe_promotion::testing::history::{base_time, record, rich_record};
use floe_promotion::{EnvName, Tag};
use floe_promotion_sqlite::SqliteStore;

async fn export(store: &SqliteStore, query: &HistoryQuery, format: ExportFormat) -> Vec<u8> {
    let mut out = Vec::new();
    store.export(query, format, &mut out).await.expect("export");
    out
}

async fn reference(store: &SqliteStore, query: &HistoryQuery, format: ExportFormat) -> Vec<u8> {
    let events = store
        .query(&HistoryQuery {
            order: Order::OldestFirst,
            ..query.clone()
        })
        .await
        .expect("query");
    let mut out = Vec::new();
    let mut writer = ExportWriter::new(format, &mut out).expect("writer");
    for e in &events {
        writer.write(e).expect("write");
    }
    writer.finish().expect("finish");
    out
}

#[tokio::test]
async fn exports_are_byte_identical_to_the_export_writer() {
    let dir = tempfile::tempdir().expect("dir");
    let store = SqliteStore::open(dir.path().join("floe.db"))
        .await
        .expect("open");
    let mut records = Vec::new();
    for i in 0..40 {
        let mut r = if i % 5 == 0 {
            rich_record(base_time() + Duration::nanoseconds(i))
        } else {
            record(
                EventKind::ALL[i as usize % EventKind::ALL.len()],
                if i % 2 == 0 { "prod" } else { "staging" },
                "app",
                &format!("v{i}"),
                base_time() + Duration::milliseconds(i * 7),
            )
        };
        r.details
            .insert("odd".into(), format!("\u{0}\"\\/\n\u{1f}é𝄞 {i}"));
        if i % 3 == 0 {
            r.environment = None;
            r.reason = Some(String::new());
        }
        records.push(r);
    }
    store.append_batch(records).await.expect("append");
    let queries = [
        HistoryQuery::default(),
        HistoryQuery {
            environment: EnvName::new("prod").ok(),
            limit: Some(5),
            order: Order::NewestFirst,
            ..Default::default()
        },
        HistoryQuery {
            version: Tag::new("v7").ok(),
            ..Default::default()
        },
        HistoryQuery {
            kinds: vec![EventKind::PromotionSucceeded, EventKind::Locked],
            after_seq: Some(3),
            before_seq: Some(30),
            ..Default::default()
        },
        HistoryQuery {
            since: Some(base_time() + Duration::nanoseconds(1)),
            until: Some(base_time() + Duration::milliseconds(100)),
            ..Default::default()
        },
    ];
    for query in &queries {
        for format in [ExportFormat::Jsonl, ExportFormat::Csv] {
            let got = export(&store, query, format).await;
            let want = reference(&store, query, format).await;
            assert!(!want.is_empty());
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want),
                "{format:?} {query:?}"
            );
        }
    }
}
