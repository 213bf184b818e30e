//! Audit format 2 (RFC 8785 canonical JSON, the format in each event) and its coexistence with
//! format 1: exports verify from the stored bytes whatever the member order, members unknown
//! to this release are covered by the hash, and mixed chains verify and name the first edit.

use chrono::Duration;
use floe_promotion::InMemoryHistory;
use floe_promotion::history::{
    AuditEvent, EventKind, ExportFormat, ExportWriter, FORMAT_1, FORMAT_2, HistoryQuery,
    HistoryStore, canonical_json_v1, content_hash, verify_export,
};
use floe_promotion::testing::history::{base_time, record, rich_record};
use serde_json::{Map, Value};

type Members = Map<String, Value>;

fn format1_fixture() -> &'static str {
    include_str!("fixtures/format1-chain.jsonl")
}

/// The head hash of the format-1 fixture.
const FORMAT1_HEAD: &str = "f5f7154f37cab2b9852ea2ab2d12caf2577e40c15a9774831884fff1deccf16e";

async fn exported(history: &InMemoryHistory) -> String {
    let mut out = Vec::new();
    history
        .export(&HistoryQuery::default(), ExportFormat::Jsonl, &mut out)
        .await
        .expect("export");
    String::from_utf8(out).expect("utf-8")
}

async fn three() -> InMemoryHistory {
    let history = InMemoryHistory::new();
    history
        .append_batch(vec![
            record(
                EventKind::PromotionRequested,
                "prod",
                "app",
                "v1",
                base_time(),
            ),
            rich_record(base_time() + Duration::seconds(1)),
            record(
                EventKind::PromotionSucceeded,
                "prod",
                "app",
                "v1",
                base_time() + Duration::seconds(2),
            ),
        ])
        .await
        .expect("append");
    history
}

fn members(line: &str) -> Members {
    serde_json::from_str(line).expect("a JSON object")
}

/// A line whose content is `m` (format 2) chained after `prev`: what a later release, which
/// knows more members, would write.
fn format2_line(mut m: Members, prev: &str) -> (String, String) {
    m.remove("hash");
    m.remove("prev_hash");
    let content = serde_jcs::to_vec(&m).expect("jcs");
    let hash = content_hash(prev, &content);
    m.insert("prev_hash".into(), prev.into());
    m.insert("hash".into(), hash.clone().into());
    (serde_json::to_string(&m).expect("json"), hash)
}

fn verify(text: &str) -> floe_promotion::history::VerifyReport {
    verify_export(text.as_bytes(), true).expect("verify runs")
}

#[tokio::test]
async fn new_events_are_format_2_and_exports_carry_the_format() {
    let history = three().await;
    let text = exported(&history).await;
    for line in text.lines() {
        assert!(line.contains("\"format\":2,"), "{line}");
        assert!(line.starts_with("{\"actor\":"), "JCS order: {line}");
    }
    let report = verify(&text);
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events, 3);
    assert_eq!(history.verify().await.expect("verify"), report);
}

#[tokio::test]
async fn a_format_2_event_with_an_unknown_member_verifies() {
    let history = three().await;
    let text = exported(&history).await;
    let lines: Vec<&str> = text.lines().collect();
    let mut last = members(lines[2]);
    let prev = last["prev_hash"].as_str().expect("prev").to_string();
    last.insert(
        "rollout".into(),
        serde_json::json!({"weight": 0.25, "note": "added by a later release"}),
    );
    let (line, hash) = format2_line(last, &prev);
    let with_member = format!("{}\n{}\n{line}\n", lines[0], lines[1]);
    let report = verify(&with_member);
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.head.as_deref(), Some(hash.as_str()));
    // It reads back as an event whose stored bytes keep the member.
    let event: AuditEvent = serde_json::from_str(&line).expect("event");
    assert!(
        event.content.contains("\"rollout\":{\"note\":"),
        "{}",
        event.content
    );
    assert_eq!(event.format, FORMAT_2);
    // The member is covered by the hash: changing it is detected.
    let edited = with_member.replace("\"weight\":0.25", "\"weight\":0.5");
    assert_ne!(edited, with_member);
    let report = verify(&edited);
    assert_eq!(report.first_break.map(|b| b.seq), Some(3));
}

#[tokio::test]
async fn exports_verify_whatever_the_member_order() {
    // Re-serialising every line (keys sorted, as a JSON tool or a JSONB column would) changes
    // no stored bytes: they are rebuilt for each format.
    let resorted = |text: &str| -> String {
        text.lines()
            .map(|l| serde_json::to_string(&members(l)).expect("json") + "\n")
            .collect()
    };
    let text = format1_fixture();
    let report = verify(&resorted(text));
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.head.as_deref(), Some(FORMAT1_HEAD));

    let history = three().await;
    let text = exported(&history).await;
    let report = verify(&resorted(&text));
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report, verify(&text));
}

#[test]
fn a_format_1_line_with_an_added_member_is_refused() {
    let text = format1_fixture();
    let first = text.lines().next().expect("a line");
    let mut m = members(first);
    m.insert("note".into(), "added".into());
    let line = serde_json::to_string(&m).expect("json");
    let err = verify_export(line.as_bytes(), true).expect_err("not a format-1 event");
    assert!(
        err.to_string().contains("not part of a format-1 event"),
        "{err}"
    );
}

/// The format-1 fixture followed by `n` format-2 events written by this release.
fn mixed(n: u64) -> (String, Vec<AuditEvent>) {
    let mut text = format1_fixture().to_string();
    let mut prev = FORMAT1_HEAD.to_string();
    let mut events = Vec::new();
    let mut out = Vec::new();
    {
        let mut writer = ExportWriter::new(ExportFormat::Jsonl, &mut out).expect("writer");
        for i in 0..n {
            let e = AuditEvent::seal(
                14 + i,
                record(
                    EventKind::PromotionSucceeded,
                    "prod",
                    "demo",
                    &format!("v2.{i}"),
                    base_time() + Duration::seconds(i as i64),
                ),
                prev,
            );
            prev = e.hash.clone();
            writer.write(&e).expect("write");
            events.push(e);
        }
        writer.finish().expect("finish");
    }
    text.push_str(std::str::from_utf8(&out).expect("utf-8"));
    (text, events)
}

#[test]
fn a_mixed_format_1_and_2_export_verifies_and_names_the_first_edit() {
    let (text, events) = mixed(4);
    let report = verify(&text);
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events, 17);
    assert_eq!(report.head.as_deref(), Some(events[3].hash.as_str()));

    let lines: Vec<&str> = text.lines().collect();
    let edit = |n: usize, from: &str, to: &str| -> String {
        let mut l: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        assert!(l[n].contains(from), "{}", l[n]);
        l[n] = l[n].replacen(from, to, 1);
        l.join("\n")
    };
    // A format-1 event (seq 2, by ci) and a format-2 event (seq 15).
    let report = verify(&edit(1, "\"id\":\"ci\"", "\"id\":\"eve\""));
    let b = report.first_break.expect("format-1 edit detected");
    assert_eq!(b.seq, 2);
    assert!(b.problem.contains("changed"), "{}", b.problem);
    let report = verify(&edit(14, "\"reason\":null", "\"reason\":\"forged\""));
    let b = report.first_break.expect("format-2 edit detected");
    assert_eq!(b.seq, 15);
    assert!(b.problem.contains("changed"), "{}", b.problem);
    assert_eq!(report.events, 14);
}

#[test]
fn a_format_1_event_after_format_2_ones_is_a_break() {
    let (text, events) = mixed(2);
    // A correctly hashed format-1 event appended after format-2 ones: what rewriting an event
    // in the older format, or an old release appending, would leave.
    let record = events[1].record.clone();
    let content = canonical_json_v1(16, &record);
    let hash = content_hash(&events[1].hash, &content);
    let mut line = String::from_utf8(content[..content.len() - 1].to_vec()).expect("utf-8");
    line.push_str(&format!(
        ",\"prev_hash\":\"{}\",\"hash\":\"{hash}\"}}\n",
        events[1].hash
    ));
    let event: AuditEvent = serde_json::from_str(&line).expect("a format-1 event");
    assert_eq!(event.format, FORMAT_1);
    let report = verify(&(text + &line));
    let b = report.first_break.expect("detected");
    assert_eq!(b.seq, 16);
    assert!(b.problem.contains("format 1"), "{}", b.problem);
}

#[tokio::test]
async fn stored_bytes_that_disagree_with_the_event_are_detected() {
    let history = three().await;
    // The content of event 2 replaced by canonical bytes of another record, hash unchanged.
    history.tamper(|events| {
        let mut other = events[1].record.clone();
        other.reason = Some("forged".into());
        events[1].content =
            String::from_utf8(floe_promotion::history::canonical_json(2, &other)).expect("utf-8");
    });
    let report = history.verify().await.expect("verify");
    let b = report.first_break.expect("detected");
    assert_eq!(b.seq, 2);
    assert!(b.problem.contains("changed"), "{}", b.problem);

    // Non-canonical bytes (pretty-printed) with a hash recomputed over them.
    let history = three().await;
    history.tamper(|events| {
        let v: Value = serde_json::from_str(&events[2].content).expect("json");
        events[2].content = serde_json::to_string_pretty(&v).expect("json");
        events[2].hash = content_hash(&events[2].prev_hash, events[2].content.as_bytes());
    });
    let report = history.verify().await.expect("verify");
    let b = report.first_break.expect("detected");
    assert_eq!(b.seq, 3);
    assert!(b.problem.contains("not canonical"), "{}", b.problem);
}
