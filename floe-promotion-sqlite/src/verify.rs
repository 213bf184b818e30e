//! `verify` over the whole table in one read transaction, as a pipeline: this (blocking)
//! thread steps through the rows in sequence order and copies them into batches; worker
//! threads (one per available core) check whole batches independently of each other; a
//! merging thread takes the checked batches back in sequence order, stops at the first batch
//! with a problem, and builds what the current-version table must hold. Memory stays bounded
//! by a fixed pool of batches.
//!
//! Every check of an event needs only its own row and the stored hash of the row before it,
//! which the reader copies into the batch: so events are checked in parallel, and the first
//! problem of the first batch that has one is the first problem in sequence order, exactly as
//! checking one event after the other would find it.
//!
//! The hash is computed over the stored bytes as they are; each event's bytes must also be
//! the canonical JSON of their audit format and parse to an event, and be in the format the
//! history was in at that position (format 1 before the file was upgraded, 2 after).

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use floe_promotion::Result;
use floe_promotion::history::{
    ChainBreak, ContentFields, FORMAT_1, FORMAT_2, GENESIS_HASH, VerifyReport, check_content_fields,
};
use rusqlite::types::ValueRef;
use serde::Deserialize;
use uuid::Uuid;

use crate::history::hash_into;
use crate::store::Shared;

/// Rows per batch handed to a worker.
const BATCH_ROWS: usize = 1024;
/// Batches in the pool per worker thread (one more is added).
const BATCHES_PER_WORKER: usize = 3;
/// Worker threads at most.
const MAX_WORKERS: usize = 8;

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

/// Consecutive rows, with what a worker found in them.
struct Batch {
    arena: Vec<u8>,
    rows: Vec<RowData>,
    /// The sequence number the first row must have: one more than the rows before it.
    first_seq: u64,
    /// The stored hash of the row before the first ([`GENESIS_HASH`] for the first batch).
    prev_hash: Vec<u8>,
    /// Set by the worker: the first problem, if any.
    problem: Option<VerifyReport>,
    /// Set by the worker: the rows whose event makes its version current.
    sets_current: Vec<usize>,
    /// Set by the worker: the hash computed for the last row, when every row verified.
    last_hash: [u8; 64],
}

impl Default for Batch {
    fn default() -> Self {
        Batch {
            arena: Vec::new(),
            rows: Vec::with_capacity(BATCH_ROWS),
            first_seq: 1,
            prev_hash: Vec::new(),
            problem: None,
            sets_current: Vec::new(),
            last_hash: [0u8; 64],
        }
    }
}

impl Batch {
    /// Empties a batch for reuse, to start at `first_seq` after a row whose stored hash is
    /// `prev_hash`.
    fn clear(&mut self, first_seq: u64, prev_hash: &[u8]) {
        self.arena.clear();
        self.rows.clear();
        self.first_seq = first_seq;
        self.prev_hash.clear();
        self.prev_hash.extend_from_slice(prev_hash);
        self.problem = None;
        self.sets_current.clear();
    }

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

    /// Whether column `c` holds exactly `value` (text for `Some`, NULL for `None`); compares
    /// the bytes, without decoding them.
    fn holds(&self, c: Col, value: Option<&str>) -> bool {
        match (c, value) {
            (Col::Null, None) => true,
            (Col::Text(..), Some(v)) => self.bytes(c) == Some(v.as_bytes()),
            _ => false,
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
fn check_row<'a>(
    batch: &Batch,
    row: &RowData,
    content: &'a [u8],
) -> Result<ContentFields<'a>, Problem> {
    let fields = check_content_fields(content)
        .map_err(|e| (id_of(content), format!("{e}: the event was changed")))?;
    let id = Some(fields.id);
    let seq = fields.seq;
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
    if row.time_ms != Some(fields.time.timestamp_millis()) {
        return Err(bad("time_ms"));
    }
    if !batch.holds(row.cols[KIND], Some(fields.kind.as_str())) {
        return Err(bad("kind"));
    }
    for (i, column, value) in [
        (ENVIRONMENT, "environment", fields.environment.as_deref()),
        (ARTIFACT, "artifact", fields.artifact.as_deref()),
        (VERSION, "version", fields.version.as_deref()),
        (DIGEST, "digest", fields.digest.as_deref()),
    ] {
        if !batch.holds(row.cols[i], value) {
            return Err(bad(column));
        }
    }
    Ok(fields)
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

/// Checks the event in row `i` of a batch: its sequence number, its link to the row before,
/// its hash, its content and the indexed columns. Returns whether the event makes its
/// version current, or the report naming it as the first break (every event before it having
/// verified).
fn check_event(
    batch: &Batch,
    i: usize,
    format_2_from: u64,
) -> Result<(bool, [u8; 64]), VerifyReport> {
    let row = &batch.rows[i];
    let expected = batch.first_seq + i as u64;
    // Every event before this one verified.
    let events = expected - 1;
    let content = batch.bytes(row.cols[CONTENT]).unwrap_or_default();
    let fail = |problem: String| broken(events, expected, id_of(content), problem);
    if row.seq != expected as i64 {
        return Err(fail(if row.seq > expected as i64 {
            format!(
                "expected event {expected} but found {}: events are missing",
                row.seq
            )
        } else {
            format!(
                "expected event {expected} but found {}: an event was inserted or reordered",
                row.seq
            )
        }));
    }
    // The previous event verified, so its stored hash is the one computed for it.
    let previous = match i.checked_sub(1) {
        Some(p) => batch.bytes(batch.rows[p].cols[HASH]).unwrap_or_default(),
        None => &batch.prev_hash,
    };
    let prev_hash = batch.bytes(row.cols[PREV_HASH]).unwrap_or_default();
    if prev_hash != previous {
        return Err(fail(
            "prev_hash does not match the previous event's hash: an event was removed, inserted or reordered".into(),
        ));
    }
    let mut computed = [0u8; 64];
    hash_into(prev_hash, content, &mut computed);
    let hash = batch.bytes(row.cols[HASH]).unwrap_or_default();
    if hash != computed {
        return Err(fail(
            "hash does not match the event's content: the event was changed".into(),
        ));
    }
    let fields = check_row(batch, row, content)
        .map_err(|(id, problem)| broken(events, expected, id, problem))?;
    let format = fields.format;
    let due = if expected >= format_2_from {
        FORMAT_2
    } else {
        FORMAT_1
    };
    if format != due {
        return Err(broken(
            events,
            expected,
            Some(fields.id),
            format!(
                "the event is in audit format {format}, but the history is in format 1 before event {format_2_from} and in format 2 from it: the event was changed"
            ),
        ));
    }
    let sets_current = fields.kind.sets_current()
        && fields.environment.is_some()
        && fields.artifact.is_some()
        && fields.version.is_some()
        && fields.digest.is_some();
    Ok((sets_current, computed))
}

/// The worker stage: checks every event of a batch, up to the first problem.
fn check_batch(batch: &mut Batch, format_2_from: u64) {
    batch.problem = None;
    batch.sets_current.clear();
    for i in 0..batch.rows.len() {
        match check_event(batch, i, format_2_from) {
            Ok((sets_current, hash)) => {
                if sets_current {
                    batch.sets_current.push(i);
                }
                batch.last_hash = hash;
            }
            Err(report) => {
                batch.problem = Some(report);
                return;
            }
        }
    }
}

/// What the merging stage found: the events that verified, the hash of the last, what the
/// current-version table must hold, and the first break.
struct Merged {
    events: u64,
    last_hash: [u8; 64],
    current: HashMap<String, i64>,
    first_break: Option<VerifyReport>,
}

/// The merging stage: takes checked batches back in sequence order (batch `n` from worker
/// `n % workers`, which received them in that order), stops at the first one with a problem,
/// and hands the others back to the reader.
fn merge(checked: Vec<Receiver<Batch>>, recycle: SyncSender<Batch>) -> Merged {
    let mut last_hash = [0u8; 64];
    last_hash.copy_from_slice(GENESIS_HASH.as_bytes());
    let mut merged = Merged {
        events: 0,
        last_hash,
        current: HashMap::new(),
        first_break: None,
    };
    let mut key = String::new();
    for from in checked.iter().cycle() {
        // The worker is done: the reader reached the end (or stopped), so this is the end.
        let Ok(mut batch) = from.recv() else {
            break;
        };
        if let Some(report) = batch.problem.take() {
            merged.first_break = Some(report);
            break;
        }
        for &i in &batch.sets_current {
            let row = &batch.rows[i];
            // The worker checked that these columns hold the event's environment and artifact.
            if let (Ok(Some(e)), Ok(Some(a))) = (
                batch.text(row.cols[ENVIRONMENT]),
                batch.text(row.cols[ARTIFACT]),
            ) {
                current_key(&mut key, e, a);
                match merged.current.get_mut(key.as_str()) {
                    Some(s) => *s = row.seq,
                    None => {
                        merged.current.insert(key.clone(), row.seq);
                    }
                }
            }
        }
        if !batch.rows.is_empty() {
            merged.last_hash = batch.last_hash;
        }
        merged.events += batch.rows.len() as u64;
        // The reader may have stopped; a lost buffer is only freed.
        let _ = recycle.try_send(batch);
    }
    merged
}

/// Worker threads: one per available core, at most [`MAX_WORKERS`].
fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, MAX_WORKERS))
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
        let format_2_from = format_2_from.max(1) as u64;
        let mut stmt = tx.prepare(SQL).map_err(err)?;
        let mut rows = stmt.query([]).map_err(err)?;
        let workers = workers();
        let pool = BATCHES_PER_WORKER * workers + 1;

        let (merged, read, failed) = std::thread::scope(|scope| {
            // The pool of batches: the reader fills one only when the merger handed it back,
            // so no channel below ever holds more than `pool` and a send never blocks.
            let (recycle, reuse) = sync_channel::<Batch>(pool);
            for _ in 0..pool {
                let _ = recycle.try_send(Batch::default());
            }
            let mut inputs = Vec::with_capacity(workers);
            let mut outputs = Vec::with_capacity(workers);
            let mut handles = Vec::with_capacity(workers);
            for _ in 0..workers {
                let (input, batches) = sync_channel::<Batch>(pool);
                let (done, output) = sync_channel::<Batch>(pool);
                handles.push(scope.spawn(move || {
                    for mut batch in batches {
                        check_batch(&mut batch, format_2_from);
                        if done.send(batch).is_err() {
                            // The merger found a break and stopped.
                            return;
                        }
                    }
                }));
                inputs.push(input);
                outputs.push(output);
            }
            let merger = scope.spawn(move || merge(outputs, recycle));
            let read = (|| -> Result<()> {
                let mut first_seq = 1u64;
                let mut prev_hash = GENESIS_HASH.as_bytes().to_vec();
                for input in inputs.iter().cycle() {
                    let Ok(mut batch) = reuse.recv() else {
                        // The merger found a break and stopped.
                        return Ok(());
                    };
                    batch.clear(first_seq, &prev_hash);
                    while batch.rows.len() < BATCH_ROWS {
                        let Some(row) = rows.next().map_err(err)? else {
                            break;
                        };
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
                    let Some(last) = batch.rows.last() else {
                        return Ok(());
                    };
                    prev_hash.clear();
                    prev_hash.extend_from_slice(batch.bytes(last.cols[HASH]).unwrap_or_default());
                    first_seq += batch.rows.len() as u64;
                    let full = batch.rows.len() == BATCH_ROWS;
                    if input.send(batch).is_err() || !full {
                        // Either a worker stopped after the merger did, or this was the end.
                        return Ok(());
                    }
                }
                Ok(())
            })();
            // Closing the inputs ends the workers, and through them the merger.
            drop(inputs);
            let failed = handles.into_iter().map(|h| h.join()).any(|r| r.is_err());
            (merger.join(), read, failed)
        });
        let merged = match merged {
            Ok(merged) if !failed => merged,
            _ => {
                return Err(crate::errors::store_err(
                    &shared.name,
                    "verifying the history: a checker thread failed",
                ));
            }
        };
        if let Some(report) = merged.first_break {
            return Ok(report);
        }
        read?;
        drop(rows);
        let events = merged.events;
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
        if head_hash.as_bytes() != merged.last_hash {
            return Ok(broken(
                events,
                events,
                None,
                "the last event's hash does not match the chain head: it was changed".into(),
            ));
        }
        if let Some(problem) = check_current(shared, tx, events, &merged.current)? {
            return Ok(problem);
        }
        Ok(VerifyReport {
            events,
            head: (events > 0).then(|| String::from_utf8_lossy(&merged.last_hash).into_owned()),
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
