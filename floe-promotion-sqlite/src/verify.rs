//! `verify` over the whole table in one read transaction, as a two-stage pipeline: this
//! (blocking) thread steps through the rows in sequence order and copies them into batches;
//! a scoped worker thread hashes and checks them. Memory stays bounded by a few batches.
//!
//! The hash is computed over the stored bytes as they are; each event's bytes must also be
//! the canonical JSON of their audit format and parse to an event, and be in the format the
//! history was in at that position (format 1 before the file was upgraded, 2 after).

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use floe_promotion::Result;
use floe_promotion::history::{
    ChainBreak, EventRecord, FORMAT_1, FORMAT_2, GENESIS_HASH, VerifyReport, check_content,
};
use rusqlite::types::ValueRef;
use serde::Deserialize;
use uuid::Uuid;

use crate::history::hash_into;
use crate::store::Shared;

/// Rows per batch handed to the checker.
const BATCH_ROWS: usize = 2048;
/// Batches in flight between the reader and the checker.
const BATCHES_IN_FLIGHT: usize = 4;

/// The columns read, in `SELECT` order after `seq` and `time_ms`.
const TEXT_COLUMNS: usize = 8;
const SQL: &str = "SELECT seq, time_ms, prev_hash, hash, content, kind, environment, artifact, \
                   version, digest FROM events ORDER BY seq";
const PREV_HASH: usize = 0;
const HASH: usize = 1;
const CONTENT: usize = 2;
const KIND: usize = 3;
const ENVIRONMENT: usize = 4;
const ARTIFACT: usize = 5;
const VERSION: usize = 6;
const DIGEST: usize = 7;

/// A column value copied into a batch's arena.
#[derive(Clone, Copy)]
enum Col {
    Null,
    Text(u32, u32),
    /// A number or a blob where text belongs: only a raw edit stores that.
    Other,
}

struct RowData {
    seq: i64,
    time_ms: Option<i64>,
    cols: [Col; TEXT_COLUMNS],
}

#[derive(Default)]
struct Batch {
    arena: Vec<u8>,
    rows: Vec<RowData>,
}

impl Batch {
    fn bytes(&self, c: Col) -> Option<&[u8]> {
        match c {
            Col::Text(a, b) => self.arena.get(a as usize..b as usize),
            _ => None,
        }
    }

    fn text(&self, c: Col) -> Result<Option<&str>, ()> {
        match c {
            Col::Null => Ok(None),
            Col::Text(..) => self
                .bytes(c)
                .and_then(|b| std::str::from_utf8(b).ok())
                .map(Some)
                .ok_or(()),
            Col::Other => Err(()),
        }
    }

    fn push(&mut self, v: ValueRef<'_>) -> Col {
        match v {
            ValueRef::Null => Col::Null,
            ValueRef::Text(t) => {
                let a = self.arena.len();
                self.arena.extend_from_slice(t);
                match (u32::try_from(a), u32::try_from(self.arena.len())) {
                    (Ok(a), Ok(b)) => Col::Text(a, b),
                    _ => Col::Other,
                }
            }
            _ => Col::Other,
        }
    }
}

/// The id of an event whose content did not check, when it can be read.
#[derive(Deserialize)]
struct IdOnly<'a> {
    id: &'a str,
}

/// The event id when known, and what is wrong.
type Problem = (Option<Uuid>, String);

fn id_of(content: &[u8]) -> Option<Uuid> {
    serde_json::from_slice::<IdOnly<'_>>(content)
        .ok()
        .and_then(|p| Uuid::parse_str(p.id).ok())
}

/// Reads a row's content, checking that it is a canonical event of its format at the row's
/// position, and that the row's indexed columns agree with it.
fn check_row(batch: &Batch, row: &RowData, content: &[u8]) -> Result<(u32, EventRecord), Problem> {
    let (seq, format, record) = check_content(content)
        .map_err(|e| (id_of(content), format!("{e}: the event was changed")))?;
    let id = Some(record.id);
    if seq != row.seq as u64 {
        return Err((
            id,
            format!(
                "the content records sequence number {seq} at position {}: the event was changed or reordered",
                row.seq
            ),
        ));
    }
    let bad = |column: &str| {
        (
            id,
            format!(
                "column {column} disagrees with the event's hashed content: the row was changed"
            ),
        )
    };
    if row.time_ms != Some(record.time.timestamp_millis()) {
        return Err(bad("time_ms"));
    }
    if batch.text(row.cols[KIND]) != Ok(Some(record.kind.as_str())) {
        return Err(bad("kind"));
    }
    for (i, column, value) in [
        (
            ENVIRONMENT,
            "environment",
            record.environment.as_ref().map(|v| v.as_str()),
        ),
        (
            ARTIFACT,
            "artifact",
            record.artifact.as_ref().map(|v| v.as_str()),
        ),
        (
            VERSION,
            "version",
            record.version.as_ref().map(|v| v.as_str()),
        ),
        (DIGEST, "digest", record.digest.as_ref().map(|v| v.as_str())),
    ] {
        if batch.text(row.cols[i]) != Ok(value) {
            return Err(bad(column));
        }
    }
    Ok((format, record))
}

/// The key of the current-version map: environment and artifact.
fn current_key(buf: &mut String, environment: &str, artifact: &str) {
    buf.clear();
    buf.push_str(environment);
    buf.push('\u{0}');
    buf.push_str(artifact);
}

fn broken(events: u64, seq: u64, id: Option<Uuid>, problem: String) -> VerifyReport {
    VerifyReport {
        events,
        head: None,
        first_break: Some(ChainBreak { seq, id, problem }),
    }
}

/// The checking stage: the chain, the hashes, the indexed columns, and what the
/// current-version table must hold.
struct Checker {
    expected: u64,
    prev: [u8; 64],
    computed: [u8; 64],
    events: u64,
    current: HashMap<String, i64>,
    key: String,
    /// The first event stored in format 2.
    format_2_from: u64,
}

impl Checker {
    fn new(format_2_from: u64) -> Self {
        let mut prev = [0u8; 64];
        prev.copy_from_slice(GENESIS_HASH.as_bytes());
        Checker {
            expected: 1,
            prev,
            computed: [0u8; 64],
            events: 0,
            current: HashMap::new(),
            key: String::new(),
            format_2_from,
        }
    }

    fn check(&mut self, batch: &Batch, row: &RowData) -> Option<VerifyReport> {
        let expected = self.expected;
        let content = batch.bytes(row.cols[CONTENT]).unwrap_or_default();
        let fail =
            |events, problem: String| Some(broken(events, expected, id_of(content), problem));
        if row.seq != expected as i64 {
            return fail(
                self.events,
                if row.seq > expected as i64 {
                    format!(
                        "expected event {expected} but found {}: events are missing",
                        row.seq
                    )
                } else {
                    format!(
                        "expected event {expected} but found {}: an event was inserted or reordered",
                        row.seq
                    )
                },
            );
        }
        let prev_hash = batch.bytes(row.cols[PREV_HASH]).unwrap_or_default();
        if prev_hash != self.prev {
            return fail(
                self.events,
                "prev_hash does not match the previous event's hash: an event was removed, inserted or reordered".into(),
            );
        }
        hash_into(prev_hash, content, &mut self.computed);
        let hash = batch.bytes(row.cols[HASH]).unwrap_or_default();
        if hash != self.computed {
            return fail(
                self.events,
                "hash does not match the event's content: the event was changed".into(),
            );
        }
        let (format, record) = match check_row(batch, row, content) {
            Ok(p) => p,
            Err((id, problem)) => return Some(broken(self.events, expected, id, problem)),
        };
        let due = if expected >= self.format_2_from {
            FORMAT_2
        } else {
            FORMAT_1
        };
        if format != due {
            return Some(broken(
                self.events,
                expected,
                Some(record.id),
                format!(
                    "the event is in audit format {format}, but the history is in format 1 before event {} and in format 2 from it: the event was changed",
                    self.format_2_from
                ),
            ));
        }
        if let (Some(e), Some(a), Some(_), Some(_)) = (
            &record.environment,
            &record.artifact,
            &record.version,
            &record.digest,
        ) && record.kind.sets_current()
        {
            current_key(&mut self.key, e.as_str(), a.as_str());
            match self.current.get_mut(self.key.as_str()) {
                Some(s) => *s = row.seq,
                None => {
                    self.current.insert(self.key.clone(), row.seq);
                }
            }
        }
        self.prev = self.computed;
        self.events += 1;
        self.expected += 1;
        None
    }

    /// Checks batches until the reader is done or a break is found.
    fn run(
        mut self,
        batches: Receiver<Batch>,
        recycle: SyncSender<Batch>,
    ) -> (Self, Option<VerifyReport>) {
        for batch in batches {
            for row in &batch.rows {
                if let Some(report) = self.check(&batch, row) {
                    return (self, Some(report));
                }
            }
            // The reader may have stopped; a lost buffer only costs an allocation.
            let _ = recycle.try_send(batch);
        }
        (self, None)
    }
}

/// Verifies the whole history in one read transaction.
pub(crate) fn verify(shared: &Shared) -> Result<VerifyReport> {
    shared.with_read("verifying the history", |tx| {
        let err = |e| shared.err("verifying the history", e);
        let (count, head_hash): (i64, String) = tx
            .query_row("SELECT count, head_hash FROM chain_head WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(err)?;
        let format_2_from: i64 = tx
            .query_row(
                "SELECT since_seq FROM audit_format WHERE id = 1 AND format = 2",
                [],
                |r| r.get(0),
            )
            .map_err(err)?;
        let mut stmt = tx.prepare(SQL).map_err(err)?;
        let mut rows = stmt.query([]).map_err(err)?;

        let (checked, read) = std::thread::scope(|scope| {
            let (send, receive) = sync_channel::<Batch>(BATCHES_IN_FLIGHT);
            let (recycle, reuse) = sync_channel::<Batch>(BATCHES_IN_FLIGHT + 2);
            let worker = scope.spawn(move || Checker::new(format_2_from.max(1) as u64).run(receive, recycle));
            let read = (|| -> Result<()> {
                let mut batch = Batch::default();
                loop {
                    let row = rows.next().map_err(err)?;
                    if let Some(row) = row {
                        let mut data = RowData {
                            seq: row.get(0).map_err(err)?,
                            time_ms: row.get_ref(1).ok().and_then(|v| v.as_i64().ok()),
                            cols: [Col::Null; TEXT_COLUMNS],
                        };
                        for (i, col) in data.cols.iter_mut().enumerate() {
                            *col = batch.push(row.get_ref(i + 2).map_err(err)?);
                        }
                        batch.rows.push(data);
                    }
                    let last = row.is_none();
                    if batch.rows.len() >= BATCH_ROWS || (last && !batch.rows.is_empty()) {
                        let mut next = reuse.try_recv().unwrap_or_default();
                        next.rows.clear();
                        next.arena.clear();
                        if send.send(std::mem::replace(&mut batch, next)).is_err() {
                            // The checker found a break and stopped.
                            return Ok(());
                        }
                    }
                    if last {
                        return Ok(());
                    }
                }
            })();
            drop(send);
            let checked = worker.join();
            (checked, read)
        });
        let (checker, report) = checked.map_err(|_| {
            crate::errors::store_err(&shared.name, "verifying the history: the checker thread failed")
        })?;
        if let Some(report) = report {
            return Ok(report);
        }
        read?;
        drop(rows);
        let events = checker.events;
        let count = count.max(0) as u64;
        if events < count {
            return Ok(broken(
                events,
                events + 1,
                None,
                format!(
                    "expected event {} but the history ends: the chain head records {count} events, events are missing",
                    events + 1
                ),
            ));
        }
        if events > count {
            return Ok(broken(
                events,
                count + 1,
                None,
                format!(
                    "event {} is beyond the chain head ({count} events): an event was inserted",
                    count + 1
                ),
            ));
        }
        if head_hash.as_bytes() != checker.prev {
            return Ok(broken(
                events,
                events,
                None,
                "the last event's hash does not match the chain head: it was changed".into(),
            ));
        }
        if let Some(problem) = check_current(shared, tx, events, &checker.current)? {
            return Ok(problem);
        }
        Ok(VerifyReport {
            events,
            head: (events > 0).then(|| String::from_utf8_lossy(&checker.prev).into_owned()),
            first_break: None,
        })
    })
}

/// Checks the `current` table against what the events say.
fn check_current(
    shared: &Shared,
    tx: &rusqlite::Transaction<'_>,
    events: u64,
    expected: &HashMap<String, i64>,
) -> Result<Option<VerifyReport>> {
    let err = |e| shared.err("verifying the current versions", e);
    let mut stmt = tx
        .prepare("SELECT environment, artifact, seq FROM current ORDER BY environment, artifact")
        .map_err(err)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .map_err(err)?;
    let mut key = String::new();
    let mut seen = std::collections::HashSet::new();
    let disagree = |what: String, seq: i64| {
        broken(
            events,
            seq.max(0) as u64,
            None,
            format!(
                "the current-version table disagrees with the events for {what}: it was changed behind the library's back"
            ),
        )
    };
    for row in rows {
        let (e, a, seq) = row.map_err(err)?;
        current_key(&mut key, &e, &a);
        if expected.get(key.as_str()) != Some(&seq) {
            return Ok(Some(disagree(format!("{e}/{a}"), seq)));
        }
        seen.insert(key.clone());
    }
    if let Some((k, seq)) = expected
        .iter()
        .filter(|(k, _)| !seen.contains(k.as_str()))
        .min_by_key(|(_, s)| **s)
    {
        return Ok(Some(disagree(
            format!("{} (missing)", k.replace('\u{0}', "/")),
            *seq,
        )));
    }
    Ok(None)
}
