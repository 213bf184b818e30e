use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::AuditEvent;
use super::format::{FORMAT_1, check_canonical, content_hash, parse_content};

/// The `prev_hash` of the first event: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The first event at which a chain stops verifying.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainBreak {
    /// The sequence number where the break was found (the expected one when an event is missing).
    pub seq: u64,
    /// The id of the event found there, if any.
    pub id: Option<Uuid>,
    /// What is wrong.
    pub problem: String,
}

/// The result of verifying a chain.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Events checked.
    pub events: u64,
    /// The hash of the last event checked, when the chain is intact.
    pub head: Option<String>,
    /// The first problem, if any.
    pub first_break: Option<ChainBreak>,
}

impl VerifyReport {
    /// Whether the chain verified.
    pub fn is_intact(&self) -> bool {
        self.first_break.is_none()
    }
}

/// Checks events one by one, in sequence order.
///
/// Detects a changed event (its hash no longer matches its stored bytes, the bytes are not the
/// canonical JSON of their format, or they do not hold the event's fields), a removed or
/// inserted event (a gap or repeat in sequence numbers, or a `prev_hash` that does not link),
/// and a reordering (both). The hash is recomputed over [`AuditEvent::content`], the stored
/// bytes, never over a re-serialisation of the record. Formats never go back along a chain: a
/// format-1 event after a format-2 one was rewritten.
#[derive(Debug)]
pub struct ChainVerifier {
    expected_seq: u64,
    prev_hash: String,
    events: u64,
    first_break: Option<ChainBreak>,
    strict_start: bool,
    format: u32,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ChainVerifier {
    /// A verifier for a whole chain, starting at sequence 1 with [`GENESIS_HASH`].
    pub fn new() -> Self {
        ChainVerifier {
            expected_seq: 1,
            prev_hash: GENESIS_HASH.to_string(),
            events: 0,
            first_break: None,
            strict_start: true,
            format: FORMAT_1,
        }
    }

    /// A verifier for a filtered excerpt: every event's own hash is checked, and links are
    /// checked only between events with consecutive sequence numbers.
    pub fn excerpt() -> Self {
        ChainVerifier {
            strict_start: false,
            ..Self::new()
        }
    }

    /// A verifier that continues a chain after `last`, an event already trusted (one a signed
    /// checkpoint names): the next event must be `last.seq + 1` and link to `last.hash`, and
    /// may not go back to an older audit format. Only the events pushed are counted.
    pub fn resume(last: &AuditEvent) -> Self {
        ChainVerifier {
            expected_seq: last.seq + 1,
            prev_hash: last.hash.clone(),
            format: last.format,
            ..Self::new()
        }
    }

    /// Whether a break was found.
    pub fn broken(&self) -> bool {
        self.first_break.is_some()
    }

    /// Checks the next event.
    pub fn push(&mut self, event: &AuditEvent) {
        if self.first_break.is_some() {
            return;
        }
        let problem = if self.strict_start && event.seq != self.expected_seq {
            Some(if event.seq > self.expected_seq {
                format!(
                    "expected event {} but found {}: events are missing",
                    self.expected_seq, event.seq
                )
            } else {
                format!(
                    "expected event {} but found {}: an event was inserted or reordered",
                    self.expected_seq, event.seq
                )
            })
        } else if (self.strict_start || event.seq == self.expected_seq)
            && event.prev_hash != self.prev_hash
        {
            Some("prev_hash does not match the previous event's hash: an event was removed, inserted or reordered".to_string())
        } else if content_hash(&event.prev_hash, event.content.as_bytes()) != event.hash {
            Some("hash does not match the event's content: the event was changed".to_string())
        } else {
            self.content_problem(event)
        };
        match problem {
            Some(problem) => {
                self.first_break = Some(ChainBreak {
                    seq: if self.strict_start && event.seq != self.expected_seq {
                        self.expected_seq
                    } else {
                        event.seq
                    },
                    id: Some(event.record.id),
                    problem,
                })
            }
            None => {
                self.format = event.format;
                self.events += 1;
                self.expected_seq = event.seq + 1;
                self.prev_hash = event.hash.clone();
            }
        }
    }

    /// What is wrong with the stored bytes of an event whose hash matched them.
    fn content_problem(&self, event: &AuditEvent) -> Option<String> {
        let content = event.content.as_bytes();
        let (seq, format, record) = match parse_content(content) {
            Ok(parsed) => parsed,
            Err(e) => return Some(format!("{e}: the event was changed")),
        };
        if let Err(e) = check_canonical(format, seq, &record, content) {
            return Some(format!("{e}: the event was changed"));
        }
        if (seq, format) != (event.seq, event.format) || record != event.record {
            return Some(
                "the event's fields differ from its stored content: the event was changed".into(),
            );
        }
        (format < self.format).then(|| {
            format!(
                "the event is in audit format {format} but follows one in format {}: the event was rewritten",
                self.format
            )
        })
    }

    /// The report, also checking the chain against the head the store recorded separately
    /// (`(number of events, hash of the last)`), which catches removal of the newest events.
    pub fn finish_anchored(mut self, head: Option<(u64, &str)>) -> VerifyReport {
        if self.first_break.is_none() {
            let (count, hash) = head.unwrap_or((0, GENESIS_HASH));
            if count != self.events || (count > 0 && hash != self.prev_hash) {
                self.first_break = Some(ChainBreak {
                    seq: self.events.min(count) + 1,
                    id: None,
                    problem: format!(
                        "the store's head records {count} events ending in {}, but the chain has {} ending in {}: events were removed or replaced at the end",
                        &hash[..12.min(hash.len())],
                        self.events,
                        &self.prev_hash[..12.min(self.prev_hash.len())]
                    ),
                });
            }
        }
        self.finish()
    }

    /// The report.
    pub fn finish(self) -> VerifyReport {
        let intact = self.first_break.is_none();
        VerifyReport {
            events: self.events,
            head: (intact && self.events > 0).then_some(self.prev_hash),
            first_break: self.first_break,
        }
    }
}
