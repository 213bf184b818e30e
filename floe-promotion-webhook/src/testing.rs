//! A webhook receiver for tests (feature `testing`): an HTTP/1 server on a loopback port that
//! records every request and answers with scripted statuses.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    /// The request path.
    pub path: String,
    /// The headers, names lowercase, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Received {
    /// The first value of a header (name in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

#[derive(Debug, Default)]
struct State {
    received: Vec<Received>,
    script: VecDeque<u16>,
    default_status: Option<u16>,
    delay: Duration,
}

/// A recording HTTP receiver on `127.0.0.1`. Answers `204` unless scripted; stops when
/// dropped or [`stop`](Receiver::stop)ped (its port is closed, open connections too).
#[derive(Debug)]
pub struct Receiver {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    shutdown: Option<oneshot::Sender<()>>,
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

async fn handle(
    state: Arc<Mutex<State>>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let path = req.uri().path().to_string();
    let headers = req
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = req.into_body().collect().await?.to_bytes().to_vec();
    let (status, delay) = {
        let mut s = lock(&state);
        s.received.push(Received {
            path,
            headers,
            body,
        });
        let status = s.script.pop_front().or(s.default_status).unwrap_or(204);
        (status, s.delay)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    Ok(response)
}

impl Receiver {
    /// A receiver on a free loopback port.
    pub async fn start() -> std::io::Result<Receiver> {
        Self::start_on(0).await
    }

    /// A receiver on loopback port `port` (0: any free one).
    pub async fn start_on(port: u16) -> std::io::Result<Receiver> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let (tx, mut rx) = oneshot::channel::<()>();
        let shared = state.clone();
        tokio::spawn(async move {
            // Connections live in the set, so stopping the receiver closes them too.
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    _ = &mut rx => break,
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let state = shared.clone();
                        connections.spawn(async move {
                            let service = service_fn(move |req| handle(state.clone(), req));
                            let _ = http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        });
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        Ok(Receiver {
            addr,
            state,
            shutdown: Some(tx),
        })
    }

    /// The receiver's port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers the next requests with these statuses, in order, then with the default.
    pub fn script(&self, statuses: impl IntoIterator<Item = u16>) {
        lock(&self.state).script.extend(statuses);
    }

    /// Answers every unscripted request with `status` (default 204).
    pub fn always(&self, status: u16) {
        lock(&self.state).default_status = Some(status);
    }

    /// Waits this long before answering each request.
    pub fn delay(&self, delay: Duration) {
        lock(&self.state).delay = delay;
    }

    /// The requests received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.state).received.clone()
    }

    /// How many requests arrived.
    pub fn count(&self) -> usize {
        lock(&self.state).received.len()
    }

    /// Closes the port and every open connection.
    pub fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback port with nothing listening on it (bound, then released): a dead endpoint.
pub fn closed_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    drop(listener);
    Ok(port)
}
