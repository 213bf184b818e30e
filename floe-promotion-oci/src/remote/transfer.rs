//! Blob uploads whose progress is watched on both sides.
//!
//! oci-client's read timeout cannot guard an upload: while the body streams up the client reads
//! nothing, so a read timeout counts from the start of the upload and cuts a slow upload that
//! makes progress. Instead, the body fed to `push_blob_stream` ([`Body`]) records which side
//! the transfer waits on, and [`watchdog`] ends the attempt when that side makes no progress
//! for the idle timeout, or when the attempt's deadline has passed:
//!
//! - waiting for the source (the next chunk of the download): the source stalled;
//! - waiting for the destination to take the next piece of the body: the destination stalled;
//! - before the first piece (opening the upload session) the destination has twice the idle
//!   timeout, as for other requests;
//! - after the last piece the destination's answer may lag while buffers drain; only the
//!   deadline applies.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use floe_promotion::Digest;
use futures::Stream;
use futures::stream::BoxStream;
use oci_client::errors::OciDistributionError;
use sha2::{Digest as _, Sha256};

/// The largest piece of body handed to the HTTP client at once: progress is seen at least
/// this often.
const PIECE: usize = 64 * 1024;
/// The slowest average rate the deadline of a transfer allows, in bytes per second.
pub(super) const MIN_RATE: u64 = 64 * 1024;

/// A side of a blob transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Side {
    /// The registry the blob is read from.
    Source,
    /// The registry the blob is uploaded to.
    Destination,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Opening the upload; the body was not asked for yet.
    Starting,
    /// Waiting for the next chunk from the source.
    Source,
    /// Waiting for the HTTP client to take the next piece.
    Destination,
    /// The whole body was handed over; waiting for the answer.
    Answer,
}

impl Phase {
    fn side(self) -> Side {
        match self {
            Phase::Source => Side::Source,
            _ => Side::Destination,
        }
    }
}

/// Why a transfer was stopped.
#[derive(Debug)]
pub(super) enum Stop {
    /// Reading the source failed.
    SourceFailed(std::io::Error),
    /// The source's content does not match the blob's digest or size.
    Corrupt(String),
    /// `side` made no progress for this long.
    Stalled(Side, Duration),
    /// The upload was not even started within this long.
    NotStarted(Duration),
    /// The attempt's deadline passed; `side` is the one waited on longest.
    Deadline(Side, Duration),
}

#[derive(Debug)]
struct State {
    phase: Phase,
    since: Instant,
    waited_source: Duration,
    waited_destination: Duration,
    stop: Option<Stop>,
}

/// Progress of one transfer attempt, shared by its [`Body`] and its [`watchdog`].
#[derive(Debug)]
pub(super) struct Watch {
    state: Mutex<State>,
}

impl Watch {
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Watch {
            state: Mutex::new(State {
                phase: Phase::Starting,
                since: Instant::now(),
                waited_source: Duration::ZERO,
                waited_destination: Duration::ZERO,
                stop: None,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records that the transfer now waits in `phase` (restarting its clock even when the
    /// phase is the same: progress was made).
    fn enter(&self, phase: Phase) {
        let now = Instant::now();
        let mut s = self.lock();
        let waited = now.saturating_duration_since(s.since);
        match s.phase.side() {
            Side::Source => s.waited_source += waited,
            Side::Destination => s.waited_destination += waited,
        }
        s.phase = phase;
        s.since = now;
    }

    /// Like [`enter`](Self::enter), but keeps the clock running when already in `phase`.
    fn wait_in(&self, phase: Phase) {
        if self.lock().phase != phase {
            self.enter(phase);
        }
    }

    /// Stops the transfer for `why` (the first reason wins); the body fails from now on.
    pub(super) fn stop(&self, why: Stop) {
        let mut s = self.lock();
        if s.stop.is_none() {
            s.stop = Some(why);
        }
    }

    fn stopped(&self) -> bool {
        self.lock().stop.is_some()
    }

    /// Why the transfer was stopped, if it was.
    pub(super) fn take_stop(&self) -> Option<Stop> {
        self.lock().stop.take()
    }
}

/// Resolves when the transfer watched by `watch` must end: a side made no progress for
/// `idle`, the upload did not start within `start`, or `deadline` passed since the call.
pub(super) async fn watchdog(
    watch: &Watch,
    idle: Duration,
    start: Duration,
    deadline: Duration,
) -> Stop {
    let began = Instant::now();
    let tick = (idle / 8).clamp(Duration::from_millis(10), Duration::from_millis(250));
    loop {
        tokio::time::sleep(tick).await;
        let s = watch.lock();
        let waited = s.since.elapsed();
        match s.phase {
            Phase::Starting if waited > start => return Stop::NotStarted(waited),
            Phase::Source | Phase::Destination if waited > idle => {
                return Stop::Stalled(s.phase.side(), waited);
            }
            _ => {}
        }
        if began.elapsed() > deadline {
            let (mut source, mut destination) = (s.waited_source, s.waited_destination);
            match s.phase.side() {
                Side::Source => source += waited,
                Side::Destination => destination += waited,
            }
            let side = if source > destination {
                Side::Source
            } else {
                Side::Destination
            };
            return Stop::Deadline(side, deadline);
        }
    }
}

/// Whether a read error of oci-client's verifying download says the content does not match
/// its digest.
pub(super) fn is_digest_error(e: &std::io::Error) -> bool {
    e.get_ref().is_some_and(|inner| {
        inner
            .downcast_ref::<oci_client::errors::DigestError>()
            .is_some()
    })
}

/// The deadline of one attempt that moves `size` bytes: twice `request_timeout`, plus one
/// second per [`MIN_RATE`] bytes.
pub(super) fn deadline(request_timeout: Duration, size: u64) -> Duration {
    request_timeout.saturating_mul(2) + Duration::from_secs(size.div_ceil(MIN_RATE))
}

/// The body of a blob upload: the source's chunks, handed to the HTTP client in pieces of at
/// most [`PIECE`] bytes, with each wait recorded in a [`Watch`].
///
/// With [`verify`](Self::verify), the chunks are hashed as they arrive, and the chunk that
/// completes the blob is handed over only when the digest matches: a corrupt (or too long, or
/// too short) source stops the upload with an error before its last byte, so the destination
/// never completes the blob.
pub(super) struct Body {
    source: BoxStream<'static, std::io::Result<Bytes>>,
    size: u64,
    check: Option<Check>,
    buffered: Bytes,
    /// Bytes still to hand over; the HTTP client does not ask again after the last one.
    left: u64,
    watch: Arc<Watch>,
    on_chunk: Option<Box<dyn Fn(u64) + Send + Sync>>,
    done: bool,
}

impl Body {
    /// A body of `size` bytes that streams `source`; `on_chunk` is told the size of each chunk
    /// read.
    pub(super) fn new(
        source: BoxStream<'static, std::io::Result<Bytes>>,
        size: u64,
        watch: Arc<Watch>,
        on_chunk: Option<Box<dyn Fn(u64) + Send + Sync>>,
    ) -> Self {
        Body {
            source,
            size,
            check: None,
            buffered: Bytes::new(),
            left: size,
            watch,
            on_chunk,
            done: false,
        }
    }

    /// A body of bytes already in memory.
    pub(super) fn from_bytes(data: Bytes, watch: Arc<Watch>) -> Self {
        let size = data.len() as u64;
        Body::new(
            Box::pin(futures::stream::once(async move { Ok(data) })),
            size,
            watch,
            None,
        )
    }

    /// Checks the source's bytes against `digest` (and the size) before the last byte goes out.
    pub(super) fn verify(mut self, digest: &Digest) -> Self {
        self.check = Some(Check {
            hasher: Sha256::new(),
            expected: digest.clone(),
            received: 0,
            verified: false,
        });
        self
    }

    /// Feeds a chunk read from the source to the check; an error message when the content
    /// cannot be the blob.
    fn check_chunk(&mut self, chunk: &[u8]) -> Result<(), String> {
        let size = self.size;
        let Some(check) = self.check.as_mut() else {
            return Ok(());
        };
        check.received += chunk.len() as u64;
        if check.received > size {
            return Err(format!(
                "the source sent more than the {size} bytes the manifest gives the blob"
            ));
        }
        check.hasher.update(chunk);
        if check.received == size {
            check.verify()?;
        }
        Ok(())
    }

    /// Checks the end of the source; an error message when the content cannot be the blob.
    fn check_end(&mut self) -> Result<(), String> {
        let size = self.size;
        let Some(check) = self.check.as_mut() else {
            return Ok(());
        };
        if check.received < size {
            return Err(format!(
                "the source sent {} of the {size} bytes the manifest gives the blob",
                check.received
            ));
        }
        check.verify()
    }

    fn fail(&mut self, why: Stop) -> Poll<Option<oci_client::errors::Result<Bytes>>> {
        self.watch.stop(why);
        Poll::Ready(Some(Err(stopped())))
    }
}

/// The running check of a [`Body`]'s content.
struct Check {
    hasher: Sha256,
    expected: Digest,
    received: u64,
    verified: bool,
}

impl Check {
    /// Compares the digest of everything received with the expected one (once).
    fn verify(&mut self) -> Result<(), String> {
        if self.verified {
            return Ok(());
        }
        self.verified = true;
        let actual = format!(
            "sha256:{}",
            hex::encode(std::mem::take(&mut self.hasher).finalize())
        );
        if actual == self.expected.as_str() {
            Ok(())
        } else {
            Err(format!(
                "the blob's {} bytes hash to {actual}, not to its digest {}; the copy stopped before its last byte was sent on",
                self.received, self.expected
            ))
        }
    }
}

/// The error the body gives the HTTP client once the transfer was stopped; the reason is in
/// the [`Watch`].
fn stopped() -> OciDistributionError {
    OciDistributionError::IoError(std::io::Error::other("the blob transfer was stopped"))
}

impl Stream for Body {
    type Item = oci_client::errors::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.watch.stopped() {
            return Poll::Ready(Some(Err(stopped())));
        }
        loop {
            if !this.buffered.is_empty() {
                let take = this.buffered.len().min(PIECE);
                let piece = this.buffered.split_to(take);
                this.left = this.left.saturating_sub(take as u64);
                // With a known length the HTTP client does not poll after the last byte: from
                // then on the transfer waits for the answer.
                this.watch.enter(if this.left == 0 {
                    Phase::Answer
                } else {
                    Phase::Destination
                });
                return Poll::Ready(Some(Ok(piece)));
            }
            if this.done {
                this.watch.wait_in(Phase::Answer);
                return Poll::Ready(None);
            }
            match this.source.as_mut().poll_next(cx) {
                Poll::Pending => {
                    this.watch.wait_in(Phase::Source);
                    return Poll::Pending;
                }
                Poll::Ready(Some(Ok(chunk))) => {
                    if let Some(report) = &this.on_chunk {
                        report(chunk.len() as u64);
                    }
                    if let Err(message) = this.check_chunk(&chunk) {
                        return this.fail(Stop::Corrupt(message));
                    }
                    this.buffered = chunk;
                }
                Poll::Ready(Some(Err(e))) => return this.fail(Stop::SourceFailed(e)),
                Poll::Ready(None) => {
                    if let Err(message) = this.check_end() {
                        return this.fail(Stop::Corrupt(message));
                    }
                    this.done = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[test]
    fn the_deadline_grows_with_the_size() {
        let t = Duration::from_secs(30);
        assert_eq!(deadline(t, 0), Duration::from_secs(60));
        assert_eq!(deadline(t, 1), Duration::from_secs(61));
        assert_eq!(deadline(t, 8 * 1024 * 1024), Duration::from_secs(60 + 128));
    }

    #[tokio::test]
    async fn the_body_hands_out_small_pieces_and_records_its_waits() {
        let watch = Watch::new();
        let data = Bytes::from(vec![7u8; 3 * PIECE + 5]);
        let mut body = Body::from_bytes(data.clone(), Arc::clone(&watch));
        let mut out = Vec::new();
        while let Some(piece) = body.next().await {
            let piece = piece.unwrap();
            assert!(piece.len() <= PIECE);
            out.extend_from_slice(&piece);
        }
        assert_eq!(out, data);
        assert_eq!(watch.lock().phase, Phase::Answer);
        assert!(watch.take_stop().is_none());
    }

    fn verified(data: &'static [u8], digest: &Digest, size: u64) -> (Vec<u8>, Option<Stop>) {
        let watch = Watch::new();
        // Two chunks, so that the first one goes out before the check fails.
        let (a, b) = data.split_at(data.len() / 2);
        let chunks = vec![Ok(Bytes::from_static(a)), Ok(Bytes::from_static(b))];
        let mut body = Body::new(
            Box::pin(futures::stream::iter(chunks)),
            size,
            Arc::clone(&watch),
            None,
        )
        .verify(digest);
        let mut out = Vec::new();
        futures::executor::block_on(async {
            while let Some(Ok(piece)) = body.next().await {
                out.extend_from_slice(&piece);
            }
        });
        (out, watch.take_stop())
    }

    #[test]
    fn a_verified_body_withholds_the_last_chunk_of_corrupt_content() {
        let data: &'static [u8] = b"0123456789abcdef";
        let good = Digest::of(data);
        let (out, stop) = verified(data, &good, 16);
        assert_eq!(out, data);
        assert!(stop.is_none(), "{stop:?}");

        let other = Digest::of(b"something else");
        let (out, stop) = verified(data, &other, 16);
        assert_eq!(
            out,
            &data[..8],
            "the chunk that completes the blob is withheld"
        );
        let Some(Stop::Corrupt(message)) = stop else {
            panic!("{stop:?}")
        };
        assert!(message.contains(good.as_str()), "{message}");
        assert!(message.contains(other.as_str()), "{message}");

        let (_, stop) = verified(data, &good, 12);
        assert!(matches!(stop, Some(Stop::Corrupt(m)) if m.contains("more than")));
        let (_, stop) = verified(data, &good, 20);
        assert!(matches!(stop, Some(Stop::Corrupt(m)) if m.contains("16 of the 20")));
    }

    #[tokio::test]
    async fn a_stopped_body_fails() {
        let watch = Watch::new();
        let mut body = Body::from_bytes(Bytes::from_static(b"abc"), Arc::clone(&watch));
        watch.stop(Stop::Stalled(Side::Destination, Duration::from_secs(1)));
        assert!(body.next().await.unwrap().is_err());
        assert!(matches!(
            watch.take_stop(),
            Some(Stop::Stalled(Side::Destination, _))
        ));
    }

    #[tokio::test]
    async fn the_watchdog_blames_the_side_that_stalls() {
        let watch = Watch::new();
        watch.enter(Phase::Source);
        let idle = Duration::from_millis(50);
        let stop = watchdog(&watch, idle, idle * 2, Duration::from_secs(5)).await;
        assert!(matches!(stop, Stop::Stalled(Side::Source, _)), "{stop:?}");
        watch.enter(Phase::Destination);
        let stop = watchdog(&watch, idle, idle * 2, Duration::from_secs(5)).await;
        assert!(
            matches!(stop, Stop::Stalled(Side::Destination, _)),
            "{stop:?}"
        );
    }
}
