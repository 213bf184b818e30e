//! Fuzz target: the audit export importer and verifier behind `floe audit verify --file`
//! (`floe_promotion::history::verify_export` / `verify_export_file`).
//!
//! The export is a real one: the first release's state file (audit format 1) with format-2
//! events appended, exported as JSON Lines by the SQLite store. It is then mutated (bytes
//! flipped, set or inserted, lines dropped, swapped, duplicated or edited, the file cut
//! anywhere) and verified. Verification never panics, and it detects every change that
//! alters the chain: whenever it reports the file intact, the events the file holds are the
//! export's first `events` events exactly (same sequence numbers, stored bytes and hashes),
//! and the reported head is the last one's hash. A change that only removes whole events at
//! the end stays intact by design, but shows as a shorter count and another head (what signed
//! checkpoints compare against); a change the events read back the same from (whitespace, a
//! blank line, a member moved) is no change to the chain.
//!
//! CI runs 256 cases per property; run longer with
//! `PROPTEST_CASES=100000 cargo test -p floe-promotion-sqlite --test fuzz_audit_export -- --nocapture`
//! (each property prints how many cases it ran).

use std::io::Cursor;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::Duration;
use floe_promotion::history::{
    AuditEvent, EventKind, ExportFormat, HistoryQuery, HistoryStore, Order, VerifyReport,
    verify_export, verify_export_file,
};
use floe_promotion::testing::history::{base_time, record, rich_record};
use floe_promotion_sqlite::SqliteStore;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// The exported file and the events it holds.
struct Export {
    bytes: Vec<u8>,
    events: Vec<AuditEvent>,
}

static EXPORT: LazyLock<Export> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("state.db");
            std::fs::copy(
                concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/tests/fixtures/format1-state.db"
                ),
                &path,
            )
            .unwrap();
            let store = SqliteStore::open(&path).await.unwrap();
            let mut records = vec![rich_record(base_time())];
            for i in 0..6i64 {
                let mut r = record(
                    EventKind::ALL[i as usize % EventKind::ALL.len()],
                    "prod",
                    "app",
                    &format!("v{i}"),
                    base_time() + Duration::milliseconds(i),
                );
                r.details
                    .insert("odd".into(), format!("\u{0}\"\\/\n é𝄞 {i}"));
                records.push(r);
            }
            store.append_batch(records).await.unwrap();
            let mut bytes = Vec::new();
            store
                .export(&HistoryQuery::default(), ExportFormat::Jsonl, &mut bytes)
                .await
                .unwrap();
            let events = store
                .query(&HistoryQuery {
                    order: Order::OldestFirst,
                    ..Default::default()
                })
                .await
                .unwrap();
            Export { bytes, events }
        })
});

/// Runs `test` on `PROPTEST_CASES` (default 256) values of `strategy` and prints how many ran.
fn fuzz<S: Strategy>(name: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let cases = AtomicU64::new(0);
    let result = TestRunner::new(Config {
        source_file: Some(file!()),
        ..Config::default()
    })
    .run(&strategy, |v| {
        cases.fetch_add(1, Ordering::Relaxed);
        test(v)
    });
    println!(
        "fuzz_audit_export::{name}: {} cases",
        cases.load(Ordering::Relaxed)
    );
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

/// The events `bytes` reads back as, line by line, when every non-blank line is one.
fn events_of(bytes: &[u8]) -> Option<Vec<AuditEvent>> {
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.trim_ascii().is_empty())
        .map(|l| serde_json::from_slice::<AuditEvent>(l).ok())
        .collect()
}

/// Checks the verdict on `mutated`: when the report is intact, the file holds the original
/// chain or a prefix of it, and the report says which.
fn check(
    mutated: &[u8],
    report: &floe_promotion::Result<VerifyReport>,
) -> Result<(), TestCaseError> {
    let original = &EXPORT.events;
    let Ok(report) = report else {
        // Refused as malformed: detected. The message is one short line naming the line.
        let message = report.as_ref().unwrap_err().to_string();
        prop_assert!(message.contains("line "), "{message}");
        prop_assert!(!message.contains('\n'), "{message}");
        prop_assert!(
            message.len() < 1024,
            "{} bytes: {message:.200}",
            message.len()
        );
        return Ok(());
    };
    if !report.is_intact() {
        return Ok(());
    }
    let held = events_of(mutated).ok_or_else(|| {
        TestCaseError::fail("reported intact, but a line is not an event".to_string())
    })?;
    prop_assert!(
        held.len() <= original.len() && held[..] == original[..held.len()],
        "a changed chain verified as intact: {report:?}"
    );
    prop_assert_eq!(report.events, held.len() as u64);
    prop_assert_eq!(report.head.as_deref(), held.last().map(|e| e.hash.as_str()));
    Ok(())
}

#[test]
fn the_export_verifies_unchanged() {
    // Guards the properties below: the export they mutate is intact to begin with.
    let report = verify_export(Cursor::new(&EXPORT.bytes), true).unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert!(EXPORT.events.len() >= 20, "{}", EXPORT.events.len());
    assert!(EXPORT.events.iter().any(|e| e.format == 1));
    assert!(EXPORT.events.iter().any(|e| e.format == 2));
    assert_eq!(report.events, EXPORT.events.len() as u64);
    assert_eq!(
        report.head.as_ref(),
        Some(&EXPORT.events.last().unwrap().hash)
    );
    assert_eq!(events_of(&EXPORT.bytes).unwrap(), EXPORT.events);
}

/// One change to the file's bytes.
#[derive(Clone, Debug)]
enum ByteEdit {
    Flip(usize, u8),
    Set(usize, u8),
    Insert(usize, u8),
    Remove(usize, usize),
    Truncate(usize),
}

fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    let interesting = prop_oneof![
        any::<u8>(),
        proptest::sample::select(b"{}[]\",:\\0 \n\r\t-e.9faE+".to_vec()),
    ];
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| ByteEdit::Flip(at, 1 << bit)),
        (any::<usize>(), interesting.clone()).prop_map(|(at, b)| ByteEdit::Set(at, b)),
        (any::<usize>(), interesting).prop_map(|(at, b)| ByteEdit::Insert(at, b)),
        (any::<usize>(), 1usize..64).prop_map(|(at, n)| ByteEdit::Remove(at, n)),
        any::<usize>().prop_map(ByteEdit::Truncate),
    ]
}

fn apply_bytes(bytes: &mut Vec<u8>, edit: &ByteEdit) {
    let n = bytes.len().max(1);
    match *edit {
        ByteEdit::Flip(at, mask) if !bytes.is_empty() => bytes[at % n] ^= mask,
        ByteEdit::Set(at, b) if !bytes.is_empty() => bytes[at % n] = b,
        ByteEdit::Insert(at, b) => bytes.insert(at % (bytes.len() + 1), b),
        ByteEdit::Remove(at, len) if !bytes.is_empty() => {
            let at = at % n;
            bytes.drain(at..(at + len).min(bytes.len()));
        }
        ByteEdit::Truncate(at) => bytes.truncate(at % (bytes.len() + 1)),
        _ => {}
    }
}

/// One change to the file's lines.
#[derive(Clone, Debug)]
enum LineEdit {
    Drop(usize),
    Duplicate(usize),
    Swap(usize, usize),
    Move(usize, usize),
    /// Replaces the first occurrence of one JSON text with another in a line.
    Replace(usize, &'static str, &'static str),
    Blank(usize),
}

fn line_edit() -> impl Strategy<Value = LineEdit> {
    let replacements = proptest::sample::select(vec![
        ("\"seq\":", "\"seq\":1"),
        ("\"format\":2", "\"format\":1"),
        ("\"format\":1", "\"format\":2"),
        ("\"prod\"", "\"staging\""),
        ("\"actor\":{\"", "\"actor\":{\"x\":1,\""),
        ("\"hash\":\"", "\"hash\":\"0"),
        ("\"prev_hash\":\"", "\"prev_hash\":\"f"),
        ("\"reason\":null", "\"reason\":\"\""),
        ("\"gates\":[]", "\"gates\":null"),
        ("\"details\":{", "\"details\":{\"injected\":\"x\","),
        ("{\"seq\"", "{\"extra\":true,\"seq\""),
        (",\"hash\"", ",\"hash\":\"x\",\"hash\""),
        ("\"time\":\"20", "\"time\":\"19"),
        ("Z\"", "+00:00\""),
        ("\"kind\":\"", "\"kind\":\"x"),
        ("\"id\":\"", "\"id\":\"0"),
        ("\\u0000", "\\u0001"),
        ("é", "e"),
    ]);
    prop_oneof![
        any::<usize>().prop_map(LineEdit::Drop),
        any::<usize>().prop_map(LineEdit::Duplicate),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| LineEdit::Swap(a, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| LineEdit::Move(a, b)),
        (any::<usize>(), replacements).prop_map(|(a, (from, to))| LineEdit::Replace(a, from, to)),
        any::<usize>().prop_map(LineEdit::Blank),
    ]
}

fn apply_lines(lines: &mut Vec<Vec<u8>>, edit: &LineEdit) {
    if lines.is_empty() {
        return;
    }
    let n = lines.len();
    match *edit {
        LineEdit::Drop(i) => {
            lines.remove(i % n);
        }
        LineEdit::Duplicate(i) => lines.insert(i % n, lines[i % n].clone()),
        LineEdit::Swap(a, b) => lines.swap(a % n, b % n),
        LineEdit::Move(a, b) => {
            let line = lines.remove(a % n);
            lines.insert(b % n, line);
        }
        LineEdit::Replace(i, from, to) => {
            let line = String::from_utf8_lossy(&lines[i % n]).replacen(from, to, 1);
            lines[i % n] = line.into_bytes();
        }
        LineEdit::Blank(i) => lines.insert(i % n, b"  ".to_vec()),
    }
}

/// Verifies in memory and, for some cases, through the file the CLI reads.
fn verify(bytes: &[u8], through_file: bool) -> floe_promotion::Result<VerifyReport> {
    let report = verify_export(Cursor::new(bytes), true);
    if through_file {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), bytes).unwrap();
        let from_file = verify_export_file(file.path(), true);
        match (&report, &from_file) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (Err(_), Err(e)) => {
                assert!(
                    e.to_string().contains(&file.path().display().to_string()),
                    "{e}"
                )
            }
            _ => panic!("in memory {report:?}, from the file {from_file:?}"),
        }
    }
    report
}

#[test]
fn bytes_changed_are_detected() {
    fuzz(
        "bytes_changed_are_detected",
        (proptest::collection::vec(byte_edit(), 1..4), any::<bool>()),
        |(edits, through_file)| {
            let mut bytes = EXPORT.bytes.clone();
            for e in &edits {
                apply_bytes(&mut bytes, e);
            }
            let report = verify(&bytes, through_file);
            check(&bytes, &report)
        },
    );
}

#[test]
fn lines_changed_are_detected() {
    fuzz(
        "lines_changed_are_detected",
        (proptest::collection::vec(line_edit(), 1..4), any::<bool>()),
        |(edits, through_file)| {
            let mut lines: Vec<Vec<u8>> = EXPORT
                .bytes
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .map(<[u8]>::to_vec)
                .collect();
            for e in &edits {
                apply_lines(&mut lines, e);
            }
            let mut bytes = lines.join(&b'\n');
            bytes.push(b'\n');
            let report = verify(&bytes, through_file);
            check(&bytes, &report)
        },
    );
}

#[test]
fn arbitrary_lines_never_panic() {
    let line = prop_oneof![
        any::<Vec<u8>>(),
        "\\PC{0,80}".prop_map(String::into_bytes),
        "\\{(\"[a-z_]{1,9}\":(null|1|\"x\"|\\[\\]|\\{\\}),?){0,8}\\}".prop_map(String::into_bytes),
    ];
    fuzz(
        "arbitrary_lines_never_panic",
        (proptest::collection::vec(line, 0..6), 0usize..30),
        |(lines, keep)| {
            // Arbitrary lines after a real prefix of the chain, or on their own.
            let real: Vec<&[u8]> = EXPORT.bytes.split(|&b| b == b'\n').take(keep).collect();
            let mut bytes = real.join(&b'\n');
            bytes.push(b'\n');
            for l in &lines {
                bytes.extend_from_slice(l);
                bytes.push(b'\n');
            }
            let report = verify_export(Cursor::new(&bytes), true);
            check(&bytes, &report)?;
            let _ = verify_export(Cursor::new(&bytes), false);
            Ok(())
        },
    );
}
