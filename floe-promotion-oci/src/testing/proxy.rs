//! [`FaultProxy`]: a loopback TCP proxy in front of a registry that injects network faults
//! (slow uploads, stalls, corrupted and lost answers) into plain-HTTP traffic.
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
}

impl Faults {
    fn stall_upstream_at(&self, line: &str) -> Option<u64> {
        first_match(&self.stall_upstream, line)
    }

    fn stall_downstream_at(&self, line: &str) -> Option<u64> {
        first_match(&self.stall_downstream, line)
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

async fn serve(shared: Arc<Shared>, client: TcpStream) {
    let Ok(upstream) = connect(shared.upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (upstream_read, upstream_write) = upstream.into_split();
    let current = Arc::new(Mutex::new(Current::default()));
    let up = pump_up(
        Arc::clone(&shared),
        Arc::clone(&current),
        client_read,
        upstream_write,
    );
    let down = pump_down(shared, current, upstream_read, client_write);
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
}

/// Client → registry: parses request heads, applies the throttle and upload stalls.
async fn pump_up(
    shared: Arc<Shared>,
    current: Arc<Mutex<Current>>,
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
) -> End {
    let mut parser = RequestParser::default();
    let mut buf = vec![0u8; READ_SIZE];
    let mut parts = Vec::new();
    let mut line = String::new();
    let mut body_sent: u64 = 0;
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
            let is_head = part.head.is_some();
            let stall = if is_head {
                None
            } else {
                shared.faults().stall_upstream_at(&line)
            };
            let mut data: &[u8] = &part.data;
            if let Some(request_line) = part.head {
                // Recorded before the request goes on: the answer belongs to it.
                {
                    let mut c = current.lock().unwrap_or_else(|p| p.into_inner());
                    c.number += 1;
                    c.line = request_line.clone();
                }
                shared
                    .requests
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(request_line.clone());
                line = request_line;
                body_sent = 0;
            } else if let Some(limit) = stall {
                let allowed = limit.saturating_sub(body_sent).min(data.len() as u64) as usize;
                if allowed < data.len() {
                    if send_up(&shared, &mut to, &data[..allowed]).await.is_err() {
                        return End::Closed;
                    }
                    body_sent += allowed as u64;
                    data = &data[allowed..];
                    // Hold the rest (and stop reading) while the fault stays.
                    while still_stalled(&shared, |f| f.stall_upstream_at(&line)) {
                        tokio::time::sleep(STALL_POLL).await;
                    }
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

/// Whether a stall fault still applies (the lock is not held across an await).
fn still_stalled(shared: &Shared, fault: impl Fn(&Faults) -> Option<u64>) -> bool {
    fault(&shared.faults()).is_some()
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

/// Registry → client: finds the head of each answer, applies corruption, stalls and drops.
async fn pump_down(
    shared: Arc<Shared>,
    current: Arc<Mutex<Current>>,
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
) -> End {
    let mut buf = vec![0u8; READ_SIZE];
    let mut answering: u64 = 0;
    let mut head = HeadEnd::default();
    let mut body_offset: u64 = 0;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return End::Closed;
            }
            Ok(n) => n,
        };
        let (number, line) = {
            let c = current.lock().unwrap_or_else(|p| p.into_inner());
            (c.number, c.line.clone())
        };
        if number != answering {
            answering = number;
            head = HeadEnd::default();
            body_offset = 0;
        }
        let faults = shared.faults().clone();
        if faults.drop.iter().any(|p| line.contains(p.as_str())) {
            shared.dropped.fetch_add(1, Ordering::SeqCst);
            return End::Abort;
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
        if let Some(limit) = faults.stall_downstream_at(&line) {
            let allowed = limit.saturating_sub(body_offset).min(body_len) as usize;
            if allowed < body_len as usize {
                let cut = body_start + allowed;
                if to.write_all(&data[..cut]).await.is_err() {
                    return End::Closed;
                }
                body_offset += allowed as u64;
                while still_stalled(&shared, |f| f.stall_downstream_at(&line)) {
                    tokio::time::sleep(STALL_POLL).await;
                }
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
        let body = |out: &mut Vec<Part>, bytes: &[u8]| {
            if !bytes.is_empty() {
                out.push(Part {
                    head: None,
                    data: bytes.to_vec(),
                });
            }
        };
        while !data.is_empty() {
            match self.state {
                RequestState::Opaque => {
                    body(out, data);
                    return;
                }
                RequestState::Head => {
                    let Some(end) = self.take_until(&mut data, b"\r\n\r\n") else {
                        if self.pending.len() > MAX_HEAD {
                            body(out, &std::mem::take(&mut self.pending));
                            self.state = RequestState::Opaque;
                        }
                        continue;
                    };
                    let head = std::mem::take(&mut self.pending);
                    debug_assert_eq!(end, head.len());
                    let (line, next) = parse_head(&head);
                    self.state = next;
                    out.push(Part {
                        head: Some(line),
                        data: head,
                    });
                }
                RequestState::Body(left) | RequestState::ChunkData(left) => {
                    let take = (left.min(data.len() as u64)) as usize;
                    body(out, &data[..take]);
                    data = &data[take..];
                    let left = left - take as u64;
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
                    body(out, &line);
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
                    body(out, &line);
                    if line == b"\r\n" {
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
