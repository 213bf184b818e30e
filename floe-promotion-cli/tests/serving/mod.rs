//! Harness of the `floe serve` tests: a real `floe serve` process on a loopback port, over a
//! real SQLite state file, called over HTTP.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::common::Workspace;

/// A token file line for `token`: its SHA-256, never the token.
pub fn token_entry(token: &str, actor: &str, groups: &[&str]) -> String {
    format!(
        "  - sha256: {}\n    actor: {actor}\n    groups: [{}]\n",
        hex::encode(Sha256::digest(token.as_bytes())),
        groups.join(", ")
    )
}

/// A running `floe serve`.
pub struct Served {
    child: Child,
    /// `http://127.0.0.1:PORT` (or https).
    pub base: String,
    /// What the server wrote to stderr, line by line, after the address.
    pub stderr: mpsc::Receiver<String>,
}

impl Served {
    /// Starts `floe serve --listen 127.0.0.1:0` in `ws` and waits for its address.
    pub fn start(ws: &Workspace) -> Served {
        Served::start_with(ws, &[])
    }

    /// [`Served::start`] with global options before `serve` (e.g. `--state URL`).
    pub fn start_with(ws: &Workspace, global: &[&str]) -> Served {
        let mut args: Vec<&str> = global.to_vec();
        args.extend(["serve", "--listen", "127.0.0.1:0", "--shutdown-grace", "5s"]);
        let mut child = ws.spawn(&args);
        let stderr = child.stderr.take().expect("stderr piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(base) = line.strip_prefix("floe serve: listening on ") {
                        return Served {
                            child,
                            base: base.trim().to_string(),
                            stderr: rx,
                        };
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let out = child.wait_with_output().expect("wait");
                    panic!("floe serve did not start: {out:?}");
                }
            }
        }
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends SIGTERM (without waiting).
    pub fn signal_term(&self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    }

    /// Sends SIGTERM and returns the exit code.
    pub fn terminate(mut self) -> Option<i32> {
        self.signal_term();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "floe serve ignored SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            // A failed test shows what the server said.
            for line in self.stderr.try_iter() {
                eprintln!("floe serve: {line}");
            }
        }
    }
}

/// An HTTP client for the tests: no redirects followed, nothing from the environment.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

/// One answer: status, headers and body (JSON when it parses).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// Asserts the status, then returns self.
    #[track_caller]
    pub fn expect(self, status: u16) -> Answer {
        assert_eq!(self.status, status, "body: {}", self.text);
        self
    }

    /// Asserts an API error document with this status and kind.
    #[track_caller]
    pub fn error(self, status: u16, kind: &str) -> Value {
        let answer = self.expect(status);
        let doc = answer.json();
        assert_eq!(doc["kind"], kind, "{doc}");
        assert!(
            doc["exit_code"].is_u64() && doc["error"].is_string(),
            "{doc}"
        );
        doc
    }
}

/// Sends a request with an optional bearer token and JSON body.
pub async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let mut req = client.request(method, url);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = req.send().await.expect("request");
    Answer {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        text: resp.text().await.expect("body"),
    }
}

pub async fn get(client: &reqwest::Client, url: &str) -> Answer {
    call(client, reqwest::Method::GET, url, None, None).await
}

pub async fn post(client: &reqwest::Client, url: &str, token: Option<&str>, body: Value) -> Answer {
    call(client, reqwest::Method::POST, url, token, Some(body)).await
}
