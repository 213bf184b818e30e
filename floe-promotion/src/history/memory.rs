use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use super::{
    AuditEvent, ChainVerifier, Deployment, EventRecord, GENESIS_HASH, HistoryQuery, HistoryStore,
    Order, VerifyReport,
};
use crate::error::Result;
use crate::model::{ArtifactName, EnvName};

/// A [`HistoryStore`] held in memory. Clones share the same history.
///
/// Each event is kept with its stored bytes ([`AuditEvent::content`]), which `verify` hashes,
/// once: [`HistoryStore::append_batch_shared`] returns the kept events themselves, which the
/// manager hands to the notification outbox, so an event is not held twice.
#[derive(Debug, Default, Clone)]
pub struct InMemoryHistory {
    events: Arc<Mutex<Events>>,
}

/// The events and, kept apart from them, the head of the chain (count and last hash), so that
/// removing the newest events is detected too.
#[derive(Debug, Default)]
struct Events {
    list: Vec<Arc<AuditEvent>>,
    head: Option<(u64, String)>,
}

impl InMemoryHistory {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Events> {
        self.events.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Number of stored events.
    pub fn len(&self) -> usize {
        self.lock().list.len()
    }

    /// Whether no event is stored.
    pub fn is_empty(&self) -> bool {
        self.lock().list.is_empty()
    }

    /// Appends `records` (one batch, under the lock) and returns the events as kept.
    fn append_shared(&self, records: Vec<EventRecord>) -> Vec<Arc<AuditEvent>> {
        let mut events = self.lock();
        let (mut seq, mut prev) = events
            .list
            .last()
            .map(|e| (e.seq, e.hash.clone()))
            .unwrap_or((0, GENESIS_HASH.to_string()));
        let mut stored = Vec::with_capacity(records.len());
        for record in records {
            seq += 1;
            let event = AuditEvent::seal(seq, record, prev);
            prev = event.hash.clone();
            stored.push(Arc::new(event));
        }
        events.list.extend(stored.iter().cloned());
        events.head = Some((seq, prev));
        stored
    }

    /// Edits the stored events behind the chain's back, to test tamper detection.
    ///
    /// The closure may edit any field. Afterwards, an event whose `seq`, `format` or `record`
    /// no longer matches its (unedited) `content` gets its content rewritten from them in its
    /// format, as an editor re-serialising the event would (its hash is left as the closure
    /// left it); content the closure changed is kept as it is.
    #[cfg(any(test, feature = "testing"))]
    pub fn tamper(&self, f: impl FnOnce(&mut Vec<AuditEvent>)) {
        use super::{canonical_json, canonical_json_v1, parse_content};
        let mut events = self.lock();
        let before: std::collections::HashSet<String> =
            events.list.iter().map(|e| e.content.clone()).collect();
        let mut list: Vec<AuditEvent> = events.list.iter().map(|e| (**e).clone()).collect();
        f(&mut list);
        for e in list.iter_mut().filter(|e| before.contains(&e.content)) {
            let holds = parse_content(e.content.as_bytes()).is_ok_and(|(seq, format, record)| {
                (seq, format, &record) == (e.seq, e.format, &e.record)
            });
            if !holds {
                let content = if e.format == super::FORMAT_1 {
                    canonical_json_v1(e.seq, &e.record)
                } else {
                    canonical_json(e.seq, &e.record)
                };
                e.content = String::from_utf8_lossy(&content).into_owned();
            }
        }
        events.list = list.into_iter().map(Arc::new).collect();
    }
}

#[async_trait]
impl HistoryStore for InMemoryHistory {
    async fn append_batch(&self, records: Vec<EventRecord>) -> Result<Vec<AuditEvent>> {
        Ok(self
            .append_shared(records)
            .into_iter()
            .map(|e| (*e).clone())
            .collect())
    }

    async fn append_batch_shared(&self, records: Vec<EventRecord>) -> Result<Vec<Arc<AuditEvent>>> {
        Ok(self.append_shared(records))
    }

    async fn query(&self, query: &HistoryQuery) -> Result<Vec<AuditEvent>> {
        let events = self.lock();
        // Nothing after the newest event: the outbox asks so after every delivery, and a
        // binary search over a long history would touch memory for nothing.
        if query
            .after_seq
            .is_some_and(|s| events.list.last().is_none_or(|last| last.seq <= s))
        {
            return Ok(Vec::new());
        }
        let limit = query.limit.unwrap_or(usize::MAX);
        // Events are kept in sequence order: a sequence range is a slice, found by binary
        // search (the outbox reads "everything after my cursor" after every commit).
        let from = query
            .after_seq
            .map_or(0, |s| events.list.partition_point(|e| e.seq <= s));
        let to = query
            .before_seq
            .map_or(events.list.len(), |s| {
                events.list.partition_point(|e| e.seq < s)
            })
            .max(from);
        let range = &events.list[from..to];
        Ok(match query.order {
            Order::OldestFirst => range
                .iter()
                .filter(|e| query.matches(e))
                .take(limit)
                .map(|e| AuditEvent::clone(e))
                .collect(),
            Order::NewestFirst => range
                .iter()
                .rev()
                .filter(|e| query.matches(e))
                .take(limit)
                .map(|e| AuditEvent::clone(e))
                .collect(),
        })
    }

    async fn deployments(&self, environment: Option<&EnvName>) -> Result<Vec<Deployment>> {
        let events = self.lock();
        let mut current: BTreeMap<(EnvName, ArtifactName), Deployment> = BTreeMap::new();
        for d in events.list.iter().filter_map(|e| Deployment::from_event(e)) {
            if environment.is_none_or(|e| e == &d.environment) {
                current.insert((d.environment.clone(), d.artifact.clone()), d);
            }
        }
        Ok(current.into_values().collect())
    }

    async fn verify(&self) -> Result<VerifyReport> {
        let events = self.lock();
        let mut verifier = ChainVerifier::new();
        for e in events.list.iter() {
            verifier.push(e);
            if verifier.broken() {
                break;
            }
        }
        Ok(verifier.finish_anchored(events.head.as_ref().map(|(n, h)| (*n, h.as_str()))))
    }
}
