//! One proxied connection: the two directions that carry a request up to the registry and its
//! answer back, with the faults of the [`FaultProxy`](super::FaultProxy) applied on the way.

use super::*;

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

pub(super) async fn serve(shared: Arc<Shared>, client: TcpStream) {
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
                shared
                    .heads
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(String::from_utf8_lossy(&part.data).into_owned());
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
            let without_range;
            let mut data: &[u8] = &part.data;
            if let Some(request_line) = part.head {
                if shared.faults().ignores_ranges(&request_line) {
                    without_range = strip_range(&part.data);
                    data = &without_range;
                }
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
            let status = buf[..n].split(|&b| b == b'\r').next().unwrap_or_default();
            shared
                .answers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((line.clone(), String::from_utf8_lossy(status).into_owned()));
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

/// `head` (a request's line and headers) without its `Range` header.
fn strip_range(head: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(head.len());
    for line in head.split_inclusive(|&b| b == b'\n') {
        let name = line.split(|&b| b == b':').next().unwrap_or_default();
        if !name.eq_ignore_ascii_case(b"range") {
            out.extend_from_slice(line);
        }
    }
    out
}
