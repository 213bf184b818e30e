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
/// Request heads longer than this are not parsed (the bytes still pass).
const MAX_HEAD: usize = 256 * 1024;
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

/// What a connection's client side last asked for: the answer coming back belongs to it.
#[derive(Debug, Default)]
struct Current {
    /// Counts requests on this connection; 0 before the first.
    number: u64,
    line: String,
}

/// How a direction of a connection ended.
enum End {
    /// The sender closed or failed: close the connection once the other direction is done.
    Closed,
    /// A fault closes the whole connection now.
    Abort,
}

/// The client side of a connection, written by the registry → client direction and by the
/// client → registry direction when the proxy answers a request itself. Clients do not
/// pipeline, so the two never have an answer to write at the same time.
type ClientWriter = Arc<tokio::sync::Mutex<OwnedWriteHalf>>;

async fn serve(shared: Arc<Shared>, client: TcpStream) {
    let mut reset = shared.reset.subscribe();
    let Ok(upstream) = connect(shared.upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let client_write: ClientWriter = Arc::new(tokio::sync::Mutex::new(client_write));
    let (upstream_read, upstream_write) = upstream.into_split();
    let current = Arc::new(Mutex::new(Current::default()));
    let up = pump_up(
        Arc::clone(&shared),
        Arc::clone(&current),
        client_read,
        upstream_write,
        Arc::clone(&client_write),
    );
    let down = pump_down(shared, current, upstream_read, client_write);
    let both = async move {
        tokio::pin!(up, down);
        tokio::select! {
            end = &mut up => {
                if matches!(end, End::Closed) {
                    // The client is done sending; deliver what the registry still says.
                    let _ = down.await;
                }
            }
            _ = &mut down => {}
        }
    };
    // A reset drops both directions, and with them whatever a stall or a hold keeps. The
    // reset is looked at first on every wake-up: a test that resets and then clears the
    // faults must never see a stalled direction resume (and deliver what it held) in between.
    tokio::select! {
        biased;
        _ = reset.changed() => {}
        _ = both => {}
    }
}

/// Counts a direction as stalled while it lives (also when its task is dropped).
struct Stalled<'a>(&'a AtomicU64);

impl<'a> Stalled<'a> {
    fn new(counter: &'a AtomicU64) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Stalled(counter)
    }
}

impl Drop for Stalled<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Waits while a fault still applies (the lock is not held across an await), counted in
/// [`FaultProxy::stalled`].
async fn wait_while(shared: &Shared, fault: impl Fn(&Faults) -> bool) {
    let _stalled = Stalled::new(&shared.stalled);
    while fault(&shared.faults()) {
        tokio::time::sleep(STALL_POLL).await;
    }
}

/// Writes an answer the proxy made up, with an empty body, to the client.
async fn answer(client: &ClientWriter, status: u16) -> std::io::Result<()> {
    let head = format!("HTTP/1.1 {status} Fault Injected\r\nContent-Length: 0\r\n\r\n");
    client.lock().await.write_all(head.as_bytes()).await
}

/// Client → registry: parses request heads, applies the throttle, upload stalls and cuts,
/// and answers requests itself when told to.
async fn pump_up(
    shared: Arc<Shared>,
    current: Arc<Mutex<Current>>,
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    client: ClientWriter,
) -> End {
    let mut parser = RequestParser::default();
    let mut buf = vec![0u8; READ_SIZE];
    let mut parts = Vec::new();
    let mut line = String::new();
    let mut body_sent: u64 = 0;
    // The status to answer once the request being swallowed has been read whole.
    let mut swallowing: Option<u16> = None;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return End::Closed;
            }
            Ok(n) => n,
        };
        parts.clear();
        parser.feed(&buf[..n], &mut parts);
        for part in parts.drain(..) {
            if let Some(request_line) = &part.head {
                shared
                    .requests
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(request_line.clone());
                if let Some(status) = shared.faults().take_status(request_line) {
                    // Not forwarded: the registry never sees it.
                    shared.injected.fetch_add(1, Ordering::SeqCst);
                    swallowing = Some(status);
                }
            }
            if let Some(status) = swallowing {
                if part.end {
                    swallowing = None;
                    if answer(&client, status).await.is_err() {
                        return End::Closed;
                    }
                }
                continue;
            }
            let is_head = part.head.is_some();
            let (stall, cut) = if is_head {
                (None, None)
            } else {
                let faults = shared.faults();
                (
                    faults.stall_upstream_at(&line),
                    faults.cut_upstream_at(&line),
                )
            };
            let mut data: &[u8] = &part.data;
            if let Some(request_line) = part.head {
                // Recorded before the request goes on: the answer belongs to it.
                {
                    let mut c = current.lock().unwrap_or_else(|p| p.into_inner());
                    c.number += 1;
                    c.line = request_line.clone();
                }
                line = request_line;
                body_sent = 0;
            } else if let Some(limit) = cut {
                let allowed = limit.saturating_sub(body_sent).min(data.len() as u64) as usize;
                if allowed < data.len() {
                    let _ = send_up(&shared, &mut to, &data[..allowed]).await;
                    shared.cuts.fetch_add(1, Ordering::SeqCst);
                    return End::Abort;
                }
            } else if let Some(limit) = stall {
                let allowed = limit.saturating_sub(body_sent).min(data.len() as u64) as usize;
                if allowed < data.len() {
                    if send_up(&shared, &mut to, &data[..allowed]).await.is_err() {
                        return End::Closed;
                    }
                    body_sent += allowed as u64;
                    data = &data[allowed..];
                    // Hold the rest (and stop reading) while the fault stays.
                    wait_while(&shared, |f| f.stall_upstream_at(&line).is_some()).await;
                }
            }
            if !is_head {
                body_sent += data.len() as u64;
            }
            if send_up(&shared, &mut to, data).await.is_err() {
                return End::Closed;
            }
        }
    }
}

/// Writes `data` upstream in small pieces paced by the throttle (if any).
async fn send_up(shared: &Shared, to: &mut OwnedWriteHalf, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        let piece = match shared.faults().upload_rate {
            // About twenty writes per second: a steady flow.
            Some(rate) => ((rate / 20).max(256) as usize).min(data.len()),
            None => data.len(),
        };
        shared.pace_upload(piece).await;
        to.write_all(&data[..piece]).await?;
        data = &data[piece..];
    }
    Ok(())
}

/// Registry → client: finds the head of each answer, applies corruption, stalls, cuts, holds
/// and drops.
async fn pump_down(
    shared: Arc<Shared>,
    current: Arc<Mutex<Current>>,
    mut from: OwnedReadHalf,
    client: ClientWriter,
) -> End {
    let mut buf = vec![0u8; READ_SIZE];
    let mut answering: u64 = 0;
    let mut head = HeadEnd::default();
    let mut body_offset: u64 = 0;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = client.lock().await.shutdown().await;
                return End::Closed;
            }
            Ok(n) => n,
        };
        let (number, line) = {
            let c = current.lock().unwrap_or_else(|p| p.into_inner());
            (c.number, c.line.clone())
        };
        let first_read = number != answering;
        if first_read {
            answering = number;
            head = HeadEnd::default();
            body_offset = 0;
        }
        let faults = shared.faults().clone();
        if faults.drop.iter().any(|p| line.contains(p.as_str())) {
            shared.dropped.fetch_add(1, Ordering::SeqCst);
            return End::Abort;
        }
        if faults.holds(&line) {
            if first_read {
                shared.held.fetch_add(1, Ordering::SeqCst);
            }
            wait_while(&shared, |f| f.holds(&line)).await;
        }
        let data = &mut buf[..n];
        let body_start = if head.done {
            0
        } else {
            match head.feed(data) {
                Some(at) => at,
                None => data.len(),
            }
        };
        if faults.corrupt.iter().any(|p| line.contains(p.as_str())) {
            for (i, byte) in data[body_start..].iter_mut().enumerate() {
                if (body_offset + i as u64).is_multiple_of(CORRUPT_EVERY) {
                    *byte ^= 0xff;
                }
            }
        }
        let body_len = (data.len() - body_start) as u64;
        let mut to = client.lock().await;
        if let Some(limit) = faults.cut_downstream_at(&line) {
            let allowed = limit.saturating_sub(body_offset).min(body_len) as usize;
            if allowed < body_len as usize {
                let _ = to.write_all(&data[..body_start + allowed]).await;
                shared.cuts.fetch_add(1, Ordering::SeqCst);
                return End::Abort;
            }
        }
        if let Some(limit) = faults.stall_downstream_at(&line) {
            let allowed = limit.saturating_sub(body_offset).min(body_len) as usize;
            if allowed < body_len as usize {
                let cut = body_start + allowed;
                if to.write_all(&data[..cut]).await.is_err() {
                    return End::Closed;
                }
                body_offset += allowed as u64;
                wait_while(&shared, |f| f.stall_downstream_at(&line).is_some()).await;
                body_offset += (body_len as usize - allowed) as u64;
                if to.write_all(&data[cut..]).await.is_err() {
                    return End::Closed;
                }
                continue;
            }
        }
        body_offset += body_len;
        if to.write_all(data).await.is_err() {
            return End::Closed;
        }
    }
}

/// Finds the end of an answer's head (`\r\n\r\n`) across reads.
#[derive(Debug, Default)]
struct HeadEnd {
    matched: usize,
    done: bool,
}

impl HeadEnd {
    /// Feeds head bytes; returns the offset in `data` where the body starts, once found.
    fn feed(&mut self, data: &[u8]) -> Option<usize> {
        const END: &[u8; 4] = b"\r\n\r\n";
        for (i, byte) in data.iter().enumerate() {
            if *byte == END[self.matched] {
                self.matched += 1;
                if self.matched == END.len() {
                    self.done = true;
                    return Some(i + 1);
                }
            } else {
                self.matched = usize::from(*byte == b'\r');
            }
        }
        None
    }
}

/// A piece of the client's byte stream: a complete request head (with its request line), or
/// other bytes (bodies, chunk framing).
#[derive(Debug)]
struct Part {
    head: Option<String>,
    data: Vec<u8>,
    /// Whether this piece ends a request.
    end: bool,
}

#[derive(Debug, Default)]
enum RequestState {
    #[default]
    Head,
    Body(u64),
    ChunkSize,
    ChunkData(u64),
    Trailer,
    /// A head too long to parse: pass everything through unparsed.
    Opaque,
}

/// Splits the client's bytes into request heads and the rest, following `Content-Length`
/// and chunked bodies.
#[derive(Debug, Default)]
struct RequestParser {
    state: RequestState,
    pending: Vec<u8>,
}

impl RequestParser {
    fn feed(&mut self, mut data: &[u8], out: &mut Vec<Part>) {
        let body = |out: &mut Vec<Part>, bytes: &[u8], end: bool| {
            if !bytes.is_empty() || end {
                out.push(Part {
                    head: None,
                    data: bytes.to_vec(),
                    end,
                });
            }
        };
        while !data.is_empty() {
            match self.state {
                RequestState::Opaque => {
                    body(out, data, false);
                    return;
                }
                RequestState::Head => {
                    let Some(end) = self.take_until(&mut data, b"\r\n\r\n") else {
                        if self.pending.len() > MAX_HEAD {
                            body(out, &std::mem::take(&mut self.pending), false);
                            self.state = RequestState::Opaque;
                        }
                        continue;
                    };
                    let head = std::mem::take(&mut self.pending);
                    debug_assert_eq!(end, head.len());
                    let (line, next) = parse_head(&head);
                    let end = matches!(next, RequestState::Head);
                    self.state = next;
                    out.push(Part {
                        head: Some(line),
                        data: head,
                        end,
                    });
                }
                RequestState::Body(left) | RequestState::ChunkData(left) => {
                    let take = (left.min(data.len() as u64)) as usize;
                    let left = left - take as u64;
                    let end = left == 0 && matches!(self.state, RequestState::Body(_));
                    body(out, &data[..take], end);
                    data = &data[take..];
                    self.state = match (&self.state, left) {
                        (RequestState::Body(_), 0) => RequestState::Head,
                        (RequestState::Body(_), n) => RequestState::Body(n),
                        (_, 0) => RequestState::ChunkSize,
                        (_, n) => RequestState::ChunkData(n),
                    };
                }
                RequestState::ChunkSize => {
                    if self.take_until(&mut data, b"\r\n").is_none() {
                        continue;
                    }
                    let line = std::mem::take(&mut self.pending);
                    let text = String::from_utf8_lossy(&line);
                    let size = text
                        .split([';', '\r'])
                        .next()
                        .and_then(|s| u64::from_str_radix(s.trim(), 16).ok());
                    body(out, &line, false);
                    self.state = match size {
                        Some(0) => RequestState::Trailer,
                        // The chunk's data and the CRLF after it.
                        Some(n) => RequestState::ChunkData(n + 2),
                        None => RequestState::Opaque,
                    };
                }
                RequestState::Trailer => {
                    if self.take_until(&mut data, b"\r\n").is_none() {
                        continue;
                    }
                    let line = std::mem::take(&mut self.pending);
                    let end = line == b"\r\n";
                    body(out, &line, end);
                    if end {
                        self.state = RequestState::Head;
                    }
                }
            }
        }
    }

    /// Moves bytes from `data` into `pending` up to and including `end`; returns the length
    /// of `pending` when `end` was reached, `None` when `data` ran out first.
    fn take_until(&mut self, data: &mut &[u8], end: &[u8]) -> Option<usize> {
        while let Some((&byte, rest)) = data.split_first() {
            self.pending.push(byte);
            *data = rest;
            if self.pending.ends_with(end) {
                return Some(self.pending.len());
            }
        }
        None
    }
}

/// The request line of a head and what follows it.
fn parse_head(head: &[u8]) -> (String, RequestState) {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let line = lines.next().unwrap_or_default().to_string();
    let mut length: u64 = 0;
    let mut chunked = false;
    for header in lines {
        let Some((name, value)) = header.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse().unwrap_or(0);
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            && value.to_ascii_lowercase().contains("chunked")
        {
            chunked = true;
        }
    }
    let next = if chunked {
        RequestState::ChunkSize
    } else if length > 0 {
        RequestState::Body(length)
    } else {
        RequestState::Head
    };
    (line, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(chunks: &[&[u8]]) -> Vec<(Option<String>, Vec<u8>)> {
        let mut parser = RequestParser::default();
        let mut out = Vec::new();
        for chunk in chunks {
            parser.feed(chunk, &mut out);
        }
        out.into_iter().map(|p| (p.head, p.data)).collect()
    }

    /// Whether each part ends its request.
    fn ends(chunks: &[&[u8]]) -> Vec<bool> {
        let mut parser = RequestParser::default();
        let mut out = Vec::new();
        for chunk in chunks {
            parser.feed(chunk, &mut out);
        }
        out.into_iter().map(|p| p.end).collect()
    }

    #[test]
    fn the_last_part_of_each_request_is_marked() {
        // A head without a body ends its request; a body ends with its last byte (across
        // reads); a chunked body ends with its trailer's empty line.
        assert_eq!(
            ends(&[
                b"GET /v2/ HTTP/1.1\r\n\r\nPUT /x HTTP/1.1\r\nContent-Length: 4\r\n\r\nab",
                b"cd",
                b"PATCH /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
            ]),
            [true, false, false, true, false, false, false, false, true]
        );
    }

    #[test]
    fn request_heads_are_found_across_reads_and_bodies_are_skipped() {
        let parts = parse(&[
            b"PUT /v2/a/blobs/uploads/x?digest=sha256:1 HTTP/1.1\r\nContent-Length: 11\r\n\r\nGET /v2/ x",
            b"yPOST /v2/a/blobs/uploads/ HTTP/1.1\r\nhost: h\r",
            b"\n\r\n",
            b"HEAD /v2/a/manifests/v1 HTTP/1.1\r\n\r\n",
        ]);
        let heads: Vec<String> = parts.iter().filter_map(|(h, _)| h.clone()).collect();
        assert_eq!(
            heads,
            [
                "PUT /v2/a/blobs/uploads/x?digest=sha256:1 HTTP/1.1",
                "POST /v2/a/blobs/uploads/ HTTP/1.1",
                "HEAD /v2/a/manifests/v1 HTTP/1.1",
            ]
        );
        let body: Vec<u8> = parts
            .iter()
            .filter(|(h, _)| h.is_none())
            .flat_map(|(_, d)| d.clone())
            .collect();
        assert_eq!(body, b"GET /v2/ xy");
    }

    #[test]
    fn chunked_bodies_are_followed() {
        let parts = parse(&[
            b"PATCH /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nGET /\r\n0\r\n\r\nGET /v2/ HTTP/1.1\r\n\r\n",
        ]);
        let heads: Vec<String> = parts.iter().filter_map(|(h, _)| h.clone()).collect();
        assert_eq!(heads, ["PATCH /u HTTP/1.1", "GET /v2/ HTTP/1.1"]);
    }

    #[test]
    fn the_end_of_an_answer_head_is_found_across_reads() {
        let mut head = HeadEnd::default();
        assert_eq!(head.feed(b"HTTP/1.1 200 OK\r\nA: b\r\n\r"), None);
        assert_eq!(head.feed(b"\nbody"), Some(1));
        assert!(head.done);
    }
}
