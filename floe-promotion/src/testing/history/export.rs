//! The conformance cases of `HistoryStore::verify` and of the exports.

use super::*;

/// `verify` of an intact chain reports no break, every event and the head hash.
pub async fn verify_intact_chain(store: Arc<dyn HistoryStore>) {
    let events = seed(store.as_ref()).await;
    let more = store
        .append_batch(
            (0..3)
                .map(|i| rich_record(base_time() + Duration::hours(i)))
                .collect(),
        )
        .await
        .expect("append");
    let report = store.verify().await.expect("verify");
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events, (events.len() + more.len()) as u64);
    assert_eq!(report.head.as_deref(), more.last().map(|e| e.hash.as_str()));
}

/// `verify` of an empty history is intact with no events and no head.
pub async fn verify_empty_chain(store: Arc<dyn HistoryStore>) {
    let report = store.verify().await.expect("verify");
    assert!(report.is_intact());
    assert_eq!(report.events, 0);
    assert_eq!(report.head, None);
}

/// A JSON Lines export of everything holds every event, oldest first, exactly as queried, and
/// verifies as a whole chain with [`verify_export`].
pub async fn export_jsonl_is_verifiable(store: Arc<dyn HistoryStore>) {
    let mut events = seed(store.as_ref()).await;
    events.push(append_one(store.as_ref(), rich_record(base_time())).await);
    let mut out = Vec::new();
    let n = store
        .export(&HistoryQuery::default(), ExportFormat::Jsonl, &mut out)
        .await
        .expect("export");
    assert_eq!(n, events.len() as u64);
    let lines: Vec<AuditEvent> = std::str::from_utf8(&out)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is an event"))
        .collect();
    assert_eq!(lines, events);
    let report = verify_export(out.as_slice(), true).expect("verify export");
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events, events.len() as u64);
    assert_eq!(
        report.head.as_deref(),
        events.last().map(|e| e.hash.as_str())
    );
}

/// A CSV export has the [`CSV_HEADER`] and one row per event, with fields that need quoting
/// intact.
pub async fn export_csv_has_header_and_rows(store: Arc<dyn HistoryStore>) {
    let mut events = seed(store.as_ref()).await;
    events.push(append_one(store.as_ref(), rich_record(base_time())).await);
    let mut out = Vec::new();
    let n = store
        .export(&HistoryQuery::default(), ExportFormat::Csv, &mut out)
        .await
        .expect("export");
    assert_eq!(n, events.len() as u64);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(out.as_slice());
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(String::from)
        .collect();
    assert_eq!(header, CSV_HEADER);
    let rows: Vec<csv::StringRecord> = reader
        .records()
        .collect::<Result<_, _>>()
        .expect("rows parse");
    assert_eq!(rows.len(), events.len());
    for (row, e) in rows.iter().zip(&events) {
        assert_eq!(row.len(), CSV_HEADER.len());
        assert_eq!(&row[0], e.seq.to_string());
        assert_eq!(&row[1], e.record.id.to_string());
        assert_eq!(&row[3], e.record.kind.as_str());
        assert_eq!(&row[14], e.prev_hash);
        assert_eq!(&row[15], e.hash);
    }
    let rich = &rows[rows.len() - 1];
    assert_eq!(&rich[4], "alice");
    assert_eq!(&rich[5], "release;ops");
    assert_eq!(Some(&rich[11]), events[12].record.reason.as_deref());
    let details: BTreeMap<String, String> = serde_json::from_str(&rich[13]).expect("details");
    assert_eq!(details, events[12].record.details);
}

/// `export` applies the query's filters and limit, oldest first; a filtered JSON Lines export
/// verifies as an excerpt.
pub async fn export_filtered_and_limited(store: Arc<dyn HistoryStore>) {
    let events = seed(store.as_ref()).await;
    let query = HistoryQuery {
        environment: Some(env("staging")),
        order: Order::NewestFirst,
        ..Default::default()
    };
    let mut out = Vec::new();
    let n = store
        .export(&query, ExportFormat::Jsonl, &mut out)
        .await
        .expect("export");
    let want = expect_filtered(&events, |e| query.matches(e));
    assert_eq!(n, want.len() as u64);
    let got: Vec<AuditEvent> = std::str::from_utf8(&out)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("event"))
        .collect();
    assert_eq!(got, want, "oldest first whatever the query's order");
    let report = verify_export(out.as_slice(), false).expect("verify excerpt");
    assert!(report.is_intact(), "{report:?}");
    let whole = verify_export(out.as_slice(), true).expect("verify as whole");
    assert!(!whole.is_intact(), "an excerpt is not the whole chain");

    let mut out = Vec::new();
    let limited = HistoryQuery {
        limit: Some(3),
        ..query.clone()
    };
    let n = store
        .export(&limited, ExportFormat::Csv, &mut out)
        .await
        .expect("export");
    assert_eq!(n, 3);
    let mut reader = csv::Reader::from_reader(out.as_slice());
    let rows: Vec<u64> = reader
        .records()
        .map(|r| r.expect("row")[0].parse().expect("seq"))
        .collect();
    assert_eq!(rows, seqs(&want[..3]));
    let mut out = Vec::new();
    let none = HistoryQuery {
        environment: Some(env("nowhere")),
        ..Default::default()
    };
    assert_eq!(
        store
            .export(&none, ExportFormat::Jsonl, &mut out)
            .await
            .expect("export"),
        0
    );
    assert!(out.is_empty());
}

/// `export` streams a history longer than one page ([`PAGE_SIZE`](crate::history::PAGE_SIZE))
/// completely, and a limit across pages.
pub async fn export_spans_pages(store: Arc<dyn HistoryStore>) {
    let total = crate::history::PAGE_SIZE * 2 + 345;
    let t = base_time();
    let mut count = 0;
    while count < total {
        let n = (total - count).min(500);
        store
            .append_batch(
                (count..count + n)
                    .map(|i| {
                        let e = if i % 3 == 0 { "prod" } else { "dev" };
                        record(
                            EventKind::CanaryStep,
                            e,
                            "app",
                            "v1",
                            t + Duration::seconds(i as i64),
                        )
                    })
                    .collect(),
            )
            .await
            .expect("append");
        count += n;
    }
    let mut out = Vec::new();
    let n = store
        .export(&HistoryQuery::default(), ExportFormat::Jsonl, &mut out)
        .await
        .expect("export");
    assert_eq!(n, total as u64);
    let report = verify_export(out.as_slice(), true).expect("verify");
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events, total as u64);

    let limit = crate::history::PAGE_SIZE + 10;
    let mut out = Vec::new();
    let n = store
        .export(
            &HistoryQuery {
                limit: Some(limit),
                ..Default::default()
            },
            ExportFormat::Jsonl,
            &mut out,
        )
        .await
        .expect("export");
    assert_eq!(n, limit as u64);
    let last: AuditEvent = serde_json::from_str(
        std::str::from_utf8(&out)
            .expect("utf-8")
            .lines()
            .last()
            .expect("a line"),
    )
    .expect("event");
    assert_eq!(last.seq, limit as u64);

    let prod = HistoryQuery {
        environment: Some(env("prod")),
        ..Default::default()
    };
    let mut out = Vec::new();
    let n = store
        .export(&prod, ExportFormat::Csv, &mut out)
        .await
        .expect("export");
    assert_eq!(n, total.div_ceil(3) as u64);
    let ids: HashSet<u64> = csv::Reader::from_reader(out.as_slice())
        .records()
        .map(|r| r.expect("row")[0].parse().expect("seq"))
        .collect();
    assert_eq!(ids.len() as u64, n);
    assert!(ids.iter().all(|s| (s - 1) % 3 == 0));
}
