//! [`FaultProxy`]: a loopback TCP proxy in front of a registry that injects network faults
//! (slow uploads, stalls, cut connections, made-up error answers, corrupted, held and lost
//! answers) into plain-HTTP traffic.
//!
//! The proxy reads the HTTP/1.1 requests going through it (request line and headers; bodies
//! framed by `Content-Length` or chunked encoding), so that faults can target the answer to one
//! kind of request, e.g. a blob download (`/blobs/sha256:...`) or a manifest push
//! (`PUT /v2/ns/app/manifests/v1`). Clients do not pipeline requests (hyper, skopeo), so the
//! bytes coming back on a connection answer the last request sent on it.
//!
//! Faults are switched at run time through `&self` and apply to data that passes afterwards,
//! on open and on new connections; [`FaultProxy::clear`] removes them all.
//!
//! ```no_run
//! use floe_promotion_oci::testing::{FaultProxy, TestRegistry};
//!
//! let registry = TestRegistry::start();
//! let proxy = FaultProxy::start(&registry.host());
//! // Clients that use `proxy.host()` reach the registry through the proxy (plain HTTP).
//! proxy.drop_response("PUT /v2/ns/app/manifests/latest-staging");
//! // ... the registry applies each such push, but the client never sees its answer ...
//! assert!(proxy.dropped_responses() >= 1);
//! proxy.clear();
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::time::Instant;

use floe_promotion::Repository;

mod parse;
mod pump;
use parse::{HeadEnd, RequestParser};
use pump::serve;

/// The longest a proxied connection lives; stalls end with it at the latest.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(120);
/// The longest the proxy waits to connect to its upstream.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a stalled direction looks whether its fault was cleared.
const STALL_POLL: Duration = Duration::from_millis(20);
/// Bytes read at once from either side.
const READ_SIZE: usize = 64 * 1024;
/// The receive buffer of the proxy's sockets, kept small so that a throttled or stalled
/// direction pushes back on the sender soon instead of being absorbed by the kernel.
const RECV_BUFFER: u32 = 64 * 1024;
/// Every this many bytes of a corrupted answer's body, one byte is flipped (starting with
/// the first).
const CORRUPT_EVERY: u64 = 4096;

/// A loopback proxy in front of one upstream `HOST:PORT` (plain HTTP), with faults switched on
/// and off at run time. Stops (closing every connection) when dropped.
///
/// It runs on its own thread and runtime, so it works the same from `#[tokio::test]`s, from
/// tests that build their own runtime, and from synchronous tests that run the `floe` binary.
/// It only listens on `127.0.0.1`, and every connection is closed after
/// [`CONNECTION_LIFETIME`] at the latest.
///
/// Patterns are plain substrings of the request line (`METHOD PATH HTTP/1.1`), e.g.
/// `"/blobs/sha256:ab12..."`, `"PUT /v2/ns/app/manifests/v1"` or `"GET "`.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Debug, Default, Clone)]
struct Faults {
    upload_rate: Option<u64>,
    stall_upstream: Vec<(String, u64)>,
    stall_downstream: Vec<(String, u64)>,
    corrupt: Vec<String>,
    drop: Vec<String>,
    cut_upstream: Vec<(String, u64)>,
    cut_downstream: Vec<(String, u64)>,
    hold: Vec<String>,
    /// Pattern, status, how many more requests get it.
    status: Vec<(String, u16, u64)>,
    /// Patterns of requests whose `Range` header is removed before they go on.
    ignore_ranges: Vec<String>,
}

impl Faults {
    fn stall_upstream_at(&self, line: &str) -> Option<u64> {
        first_match(&self.stall_upstream, line)
    }

    fn stall_downstream_at(&self, line: &str) -> Option<u64> {
        first_match(&self.stall_downstream, line)
    }

    fn cut_upstream_at(&self, line: &str) -> Option<u64> {
        first_match(&self.cut_upstream, line)
    }

    fn cut_downstream_at(&self, line: &str) -> Option<u64> {
        first_match(&self.cut_downstream, line)
    }

    fn holds(&self, line: &str) -> bool {
        self.hold.iter().any(|p| line.contains(p.as_str()))
    }

    fn ignores_ranges(&self, line: &str) -> bool {
        self.ignore_ranges.iter().any(|p| line.contains(p.as_str()))
    }

    /// The status to answer `line` with instead of forwarding it, using up one of its count.
    fn take_status(&mut self, line: &str) -> Option<u16> {
        let entry = self
            .status
            .iter_mut()
            .find(|(pattern, _, left)| *left > 0 && line.contains(pattern.as_str()))?;
        entry.2 -= 1;
        Some(entry.1)
    }
}

fn first_match(list: &[(String, u64)], line: &str) -> Option<u64> {
    list.iter()
        .find(|(pattern, _)| line.contains(pattern.as_str()))
        .map(|(_, n)| *n)
}

#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    faults: Mutex<Faults>,
    requests: Mutex<Vec<String>>,
    /// The whole head (request line and headers) of each request, as it reached the proxy.
    heads: Mutex<Vec<String>>,
    /// The request line of each answered request with the status line of the registry's
    /// answer.
    answers: Mutex<Vec<(String, String)>>,
    dropped: AtomicU64,
    connections: AtomicU64,
    /// Connections closed by a cut fault.
    cuts: AtomicU64,
    /// Answers the proxy made up instead of forwarding the request.
    injected: AtomicU64,
    /// Answers held by [`FaultProxy::hold_response`] so far.
    held: AtomicU64,
    /// Directions of connections a stall or hold keeps waiting right now.
    stalled: AtomicU64,
    /// Bumped by [`FaultProxy::reset_connections`]: every open connection closes.
    reset: tokio::sync::watch::Sender<u64>,
    /// When the throttled upload direction may send its next byte (shared by all connections).
    upload_clock: tokio::sync::Mutex<Option<Instant>>,
}

impl Shared {
    fn faults(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until `len` more bytes may go upstream under the current throttle.
    async fn pace_upload(&self, len: usize) {
        let Some(rate) = self.faults().upload_rate else {
            return;
        };
        let rate = rate.max(1);
        let mut clock = self.upload_clock.lock().await;
        let now = Instant::now();
        let start = match *clock {
            Some(next) if next > now => next,
            _ => now,
        };
        let next = start + Duration::from_secs_f64(len as f64 / rate as f64);
        *clock = Some(next);
        drop(clock);
        tokio::time::sleep_until(next).await;
    }
}

impl FaultProxy {
    /// Starts a proxy on `127.0.0.1:<free port>` that forwards every connection to `upstream`
    /// (`"127.0.0.1:PORT"`, e.g. [`TestRegistry::host`](super::TestRegistry::host)), with no
    /// fault. Panics when `upstream` is not a loopback `IP:PORT` or the proxy cannot start.
    pub fn start(upstream: &str) -> FaultProxy {
        let upstream: SocketAddr = upstream
            .parse()
            .unwrap_or_else(|e| panic!("fault proxy upstream {upstream:?} is not IP:PORT: {e}"));
        assert!(
            upstream.ip().is_loopback(),
            "the fault proxy only forwards to loopback addresses, not {upstream}"
        );
        let shared = Arc::new(Shared {
            upstream,
            faults: Mutex::new(Faults::default()),
            requests: Mutex::new(Vec::new()),
            heads: Mutex::new(Vec::new()),
            answers: Mutex::new(Vec::new()),
            dropped: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            cuts: AtomicU64::new(0),
            injected: AtomicU64::new(0),
            held: AtomicU64::new(0),
            stalled: AtomicU64::new(0),
            reset: tokio::sync::watch::Sender::new(0),
            upload_clock: tokio::sync::Mutex::new(None),
        });
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let (ready, bound) = std::sync::mpsc::channel::<Result<SocketAddr, String>>();
        let for_thread = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("fault-proxy".into())
            .spawn(move || run(for_thread, ready, stop))
            .unwrap_or_else(|e| panic!("starting the fault proxy thread: {e}"));
        let addr = match bound.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(addr)) => addr,
            Ok(Err(e)) => panic!("the fault proxy did not start: {e}"),
            Err(e) => panic!("the fault proxy did not start: {e}"),
        };
        FaultProxy {
            addr,
            shared,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// `127.0.0.1:PORT`: the host to use in repository locations (and in
    /// [`OciOptions::insecure_hosts`](crate::OciOptions::insecure_hosts)) to go through the
    /// proxy.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `repo` (`HOST/PATH`) with its host replaced by this proxy's: the same repository,
    /// reached through the proxy.
    pub fn repository(&self, repo: &Repository) -> Repository {
        let path = repo
            .as_str()
            .split_once('/')
            .map(|(_, path)| path)
            .unwrap_or_else(|| panic!("repository {repo} has no path after its host"));
        Repository::new(format!("{}/{path}", self.host()))
            .unwrap_or_else(|e| panic!("repository {repo} through the proxy: {e}"))
    }

    /// Limits the client→registry direction (request heads and bodies, e.g. blob uploads) to
    /// `bytes_per_sec`, shared by all connections: bytes keep flowing, slowly and steadily.
    pub fn throttle_upload(&self, bytes_per_sec: u64) {
        self.shared.faults().upload_rate = Some(bytes_per_sec);
    }

    /// After `n_bytes` of the body of a request whose request line contains `pattern` (e.g.
    /// a blob upload, `"/blobs/uploads/"`), stops reading from the client and forwarding to the
    /// registry: the registry seems to stop accepting data. The connection stays open; the
    /// stall ends when the fault is cleared or the connection's lifetime is over.
    pub fn stall_upstream_after(&self, pattern: &str, n_bytes: u64) {
        self.shared
            .faults()
            .stall_upstream
            .push((pattern.to_string(), n_bytes));
    }

    /// After `n_bytes` of the body of the answer to a request whose request line contains
    /// `pattern` (e.g. a blob download, `"GET /v2/ns/app/blobs/sha256:..."`), stops forwarding
    /// the answer: the registry seems to stall mid-response. The connection stays open; the
    /// stall ends when the fault is cleared or the connection's lifetime is over.
    pub fn stall_downstream_after(&self, pattern: &str, n_bytes: u64) {
        self.shared
            .faults()
            .stall_downstream
            .push((pattern.to_string(), n_bytes));
    }

    /// Flips bytes in the body of every answer to a request whose request line contains
    /// `pattern` (one byte in every 4096, starting with the first), keeping the length and the
    /// headers: the registry seems to serve corrupted content.
    pub fn corrupt_response(&self, pattern: &str) {
        self.shared.faults().corrupt.push(pattern.to_string());
    }

    /// For every request whose request line contains `pattern`: forwards the request, lets the
    /// registry answer it, but never delivers that answer: the client's connection is closed
    /// when the answer arrives instead. The registry applied the request but its reply was
    /// lost. Applies to every matching request (so to every retry) until [`clear`](Self::clear)
    /// is called; [`dropped_responses`](Self::dropped_responses) counts them.
    ///
    /// E.g. `proxy.drop_response("PUT /v2/ns/app/manifests/latest-staging")` for a tag write.
    pub fn drop_response(&self, pattern: &str) {
        self.shared.faults().drop.push(pattern.to_string());
    }

    /// After `n_bytes` of the body of a request whose request line contains `pattern` (e.g.
    /// a blob upload, `"/blobs/uploads/"`), closes the connection: the registry gets part of
    /// the body and then nothing, the client a broken connection. Applies to every matching
    /// request (so to every retry) until [`clear`](Self::clear); [`cuts`](Self::cuts) counts
    /// the connections closed. A body of at most `n_bytes` passes.
    pub fn cut_upstream_after(&self, pattern: &str, n_bytes: u64) {
        self.shared
            .faults()
            .cut_upstream
            .push((pattern.to_string(), n_bytes));
    }

    /// After `n_bytes` of the body of the answer to a request whose request line contains
    /// `pattern` (e.g. a blob download), closes the connection: the client gets a truncated
    /// answer. Applies to every matching request until [`clear`](Self::clear);
    /// [`cuts`](Self::cuts) counts the connections closed. An answer whose body has at most
    /// `n_bytes` passes.
    pub fn cut_downstream_after(&self, pattern: &str, n_bytes: u64) {
        self.shared
            .faults()
            .cut_downstream
            .push((pattern.to_string(), n_bytes));
    }

    /// Answers the next `times` requests whose request line contains `pattern` with `status`
    /// (an empty body, the connection kept open) without forwarding them: e.g. a burst of
    /// `503 Service Unavailable`. [`injected_answers`](Self::injected_answers) counts them.
    pub fn answer_with_status(&self, pattern: &str, status: u16, times: u64) {
        self.shared
            .faults()
            .status
            .push((pattern.to_string(), status, times));
    }

    /// For every request whose request line contains `pattern`: forwards the request and lets
    /// the registry answer it, but holds the answer while the fault stays. The registry
    /// applied the request; the client waits for its reply. [`clear`](Self::clear) delivers
    /// the held answers, [`reset_connections`](Self::reset_connections) loses them;
    /// [`held_responses`](Self::held_responses) counts the answers held.
    pub fn hold_response(&self, pattern: &str) {
        self.shared.faults().hold.push(pattern.to_string());
    }

    /// Closes every connection open now, without delivering what a stall or a hold keeps:
    /// data held back never reaches the registry, held answers never reach the client.
    /// Faults stay as they are; new connections are served as usual.
    pub fn reset_connections(&self) {
        self.shared.reset.send_modify(|n| *n += 1);
    }

    /// Removes the `Range` header from every request whose request line contains `pattern`
    /// before it goes on: the registry answers with the whole content (200), as a registry
    /// that does not serve ranges does.
    pub fn ignore_ranges(&self, pattern: &str) {
        self.shared.faults().ignore_ranges.push(pattern.to_string());
    }

    /// Removes every fault; stalled connections resume.
    pub fn clear(&self) {
        *self.shared.faults() = Faults::default();
    }

    /// The request lines (`METHOD PATH HTTP/1.1`) seen so far, in the order they reached the
    /// proxy, over all connections.
    pub fn requests(&self) -> Vec<String> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The whole heads (request line and headers, lines ending in CRLF) of the requests seen
    /// so far, in the order they reached the proxy, as the client sent them.
    pub fn request_heads(&self) -> Vec<String> {
        self.shared
            .heads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// For each answer the registry started to send so far: the request line it answers and
    /// its status line (`HTTP/1.1 200 OK`), in the order the answers began.
    pub fn answers(&self) -> Vec<(String, String)> {
        self.shared
            .answers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// How many request lines seen so far contain `pattern`.
    pub fn requests_matching(&self, pattern: &str) -> usize {
        self.requests()
            .iter()
            .filter(|line| line.contains(pattern))
            .count()
    }

    /// How many answers [`drop_response`](Self::drop_response) has withheld so far.
    pub fn dropped_responses(&self) -> u64 {
        self.shared.dropped.load(Ordering::SeqCst)
    }

    /// How many client connections the proxy has accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// How many connections a cut fault has closed so far.
    pub fn cuts(&self) -> u64 {
        self.shared.cuts.load(Ordering::SeqCst)
    }

    /// How many answers [`answer_with_status`](Self::answer_with_status) has made up so far.
    pub fn injected_answers(&self) -> u64 {
        self.shared.injected.load(Ordering::SeqCst)
    }

    /// How many answers [`hold_response`](Self::hold_response) has held so far (each one had
    /// reached the proxy, so the registry had answered its request).
    pub fn held_responses(&self) -> u64 {
        self.shared.held.load(Ordering::SeqCst)
    }

    /// How many directions of connections a stall or a hold keeps waiting right now: `> 0`
    /// once a request (or its answer) is stuck in the proxy.
    pub fn stalled(&self) -> u64 {
        self.shared.stalled.load(Ordering::SeqCst)
    }

    /// Waits (polling, blocking the calling thread; the proxy runs on its own) until
    /// `condition` holds for this proxy, at most `limit`; whether it did. E.g.
    /// `proxy.wait_until(Duration::from_secs(10), |p| p.stalled() > 0)`.
    pub fn wait_until(&self, limit: Duration, condition: impl Fn(&FaultProxy) -> bool) -> bool {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if condition(self) {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(STALL_POLL);
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The proxy thread: binds, reports the address, serves until `stop`, then drops every task.
fn run(
    shared: Arc<Shared>,
    ready: std::sync::mpsc::Sender<Result<SocketAddr, String>>,
    stop: tokio::sync::oneshot::Receiver<()>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(format!("building its runtime: {e}")));
            return;
        }
    };
    runtime.block_on(async move {
        let listener = match bind() {
            Ok(l) => l,
            Err(e) => {
                let _ = ready.send(Err(format!("listening on 127.0.0.1: {e}")));
                return;
            }
        };
        match listener.local_addr() {
            Ok(addr) => {
                let _ = ready.send(Ok(addr));
            }
            Err(e) => {
                let _ = ready.send(Err(format!("reading the listening address: {e}")));
                return;
            }
        }
        let mut connections = tokio::task::JoinSet::new();
        let accept = async {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    tokio::time::sleep(STALL_POLL).await;
                    continue;
                };
                shared.connections.fetch_add(1, Ordering::SeqCst);
                let shared = Arc::clone(&shared);
                connections.spawn(async move {
                    let _ = tokio::time::timeout(CONNECTION_LIFETIME, serve(shared, client)).await;
                });
                // Reap finished connections.
                while connections.try_join_next().is_some() {}
            }
        };
        tokio::select! {
            _ = stop => {}
            _ = accept => {}
        }
        connections.abort_all();
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
}

fn bind() -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    // Accepted sockets inherit it.
    socket.set_recv_buffer_size(RECV_BUFFER)?;
    socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    socket.listen(64)
}

async fn connect(upstream: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(RECV_BUFFER)?;
    match tokio::time::timeout(CONNECT_TIMEOUT, socket.connect(upstream)).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "connecting upstream",
        )),
    }
}
