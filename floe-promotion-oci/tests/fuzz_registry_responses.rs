//! Fuzz target: what floe reads from a registry. Manifests and indexes
//! (`Manifest::from_bytes`), and every answer the remote backend parses: manifest and index
//! bodies, `Docker-Content-Digest`, tag lists and their pagination, referrers indexes, error
//! bodies (OCI error envelopes and plain text), `WWW-Authenticate` challenges and the token
//! answers they lead to, redirects, and broken framing.
//!
//! The answers come from a hostile HTTP server on loopback that replies to each request with
//! the next of a generated list of raw answers; an [`OciRegistry`] reads, lists, fetches and
//! writes against it. No call panics, hangs or allocates without bound: each returns a value
//! that obeys the backend's contract, or a typed [`floe_promotion::Error`] with a one-line
//! message.
//!
//! CI runs 256 cases of the parser property and 64 of the server property; run longer with
//! `PROPTEST_CASES=100000 cargo test -p floe-promotion-oci --test fuzz_registry_responses -- --nocapture`
//! (each property prints how many cases it ran).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use floe_promotion::registry::{
    ArtifactRegistry, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, Manifest, OCI_INDEX, OCI_MANIFEST,
};
use floe_promotion::{Digest, Reference, Repository, Tag};
use floe_promotion_oci::{CredentialSource, OciOptions, OciRegistry};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Runs `test` on `PROPTEST_CASES` (default 256) values of `strategy` and prints how many ran.
///
/// The runner gets a large stack: the value trees of these nested strategies are big, and
/// moving them around in a debug build overflowed the 2 MiB of a test thread. The code under
/// test runs on threads with the usual 2 MiB (tokio's workers, or [`on_small_stack`]).
fn fuzz<S: Strategy>(
    name: &'static str,
    strategy: impl FnOnce() -> S + Send + 'static,
    test: impl Fn(S::Value) -> Result<(), TestCaseError> + Send + 'static,
) where
    S::Value: std::fmt::Debug,
{
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(move || fuzz_here(name, strategy(), test))
        .unwrap()
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e));
}

/// Runs `f` on a thread with a 2 MiB stack, the size of a tokio worker's or a test's.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

fn fuzz_here<S: Strategy>(
    name: &str,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let cases = AtomicU64::new(0);
    // Each case of the server property makes real HTTP exchanges: CI runs 64 of them.
    let default = if name.starts_with("hostile") { 64 } else { 256 };
    let cases_wanted = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    let result = TestRunner::new(Config {
        cases: cases_wanted,
        source_file: Some(file!()),
        ..Config::default()
    })
    .run(&strategy, |v| {
        cases.fetch_add(1, Ordering::Relaxed);
        test(v)
    });
    println!(
        "fuzz_registry_responses::{name}: {} cases",
        cases.load(Ordering::Relaxed)
    );
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

fn digest_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any::<[u8; 4]>().prop_map(|b| Digest::of(&b).to_string()),
        1 => "sha256:[0-9a-fA-F]{0,70}",
        1 => "(sha512|md5|SHA256|):[0-9a-f]{64}",
        1 => "\\PC{0,20}",
    ]
}

fn size() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        4 => (0u64..100_000).prop_map(serde_json::Value::from),
        1 => Just(serde_json::Value::from(u64::MAX)),
        1 => Just(serde_json::Value::from(u64::MAX / 2 + 1)),
        1 => Just(serde_json::json!(-1)),
        1 => Just(serde_json::json!(1.5)),
        1 => Just(serde_json::json!("12")),
        1 => Just(serde_json::Value::Null),
    ]
}

fn media_type() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(OCI_MANIFEST.to_string()),
        Just(OCI_INDEX.to_string()),
        Just(DOCKER_MANIFEST.to_string()),
        Just(DOCKER_MANIFEST_LIST.to_string()),
        Just("application/json".to_string()),
        Just("application/vnd.oci.image.layer.v1.tar+gzip".to_string()),
        "[ -~]{0,30}",
        "\\PC{0,10}",
    ]
}

fn descriptor() -> impl Strategy<Value = serde_json::Value> {
    (
        media_type(),
        digest_text(),
        size(),
        proptest::option::of("[a-z.]{1,10}"),
        proptest::collection::btree_map("[a-z.]{1,12}", "\\PC{0,12}", 0..3),
    )
        .prop_map(|(media_type, digest, size, artifact_type, annotations)| {
            let mut d = serde_json::json!({
                "mediaType": media_type, "digest": digest, "size": size,
            });
            if let Some(t) = artifact_type {
                d["artifactType"] = t.into();
            }
            if !annotations.is_empty() {
                d["annotations"] = serde_json::to_value(annotations).unwrap();
            }
            d
        })
}

/// Manifest- and index-shaped JSON, with fields of the wrong type now and then.
fn manifest_json() -> impl Strategy<Value = serde_json::Value> {
    (
        prop_oneof![
            Just(serde_json::json!(2)),
            Just(serde_json::json!(1)),
            Just(serde_json::json!("2")),
            Just(serde_json::json!(-2))
        ],
        proptest::option::of(media_type()),
        proptest::option::of(descriptor()),
        proptest::collection::vec(descriptor(), 0..4),
        proptest::option::of(proptest::collection::vec(descriptor(), 0..4)),
        proptest::option::of(descriptor()),
        0u8..8,
    )
        .prop_map(
            |(version, media_type, config, layers, manifests, subject, odd)| {
                let mut m = serde_json::json!({ "schemaVersion": version });
                if let Some(t) = media_type {
                    m["mediaType"] = t.into();
                }
                if let Some(c) = config {
                    m["config"] = c;
                }
                if !layers.is_empty() {
                    m["layers"] = layers.into();
                }
                if let Some(children) = manifests {
                    m["manifests"] = children.into();
                }
                if let Some(s) = subject {
                    m["subject"] = s;
                }
                match odd {
                    0 => m["layers"] = serde_json::json!({"a": 1}),
                    1 => m["annotations"] = serde_json::json!({"a": 1}),
                    2 => m["manifests"] = serde_json::json!(null),
                    3 => m["config"] = serde_json::json!([]),
                    _ => {}
                }
                m
            },
        )
}

/// Bytes of a manifest: generated JSON, serialised and then mutated, or anything at all.
fn manifest_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => manifest_json().prop_map(|m| serde_json::to_vec(&m).unwrap()),
        2 => (manifest_json(), any::<usize>(), any::<u8>()).prop_map(|(m, at, b)| {
            let mut bytes = serde_json::to_vec(&m).unwrap();
            let n = bytes.len();
            bytes[at % n] = b;
            bytes
        }),
        1 => (manifest_json(), any::<usize>()).prop_map(|(m, cut)| {
            let bytes = serde_json::to_vec(&m).unwrap();
            bytes[..cut % bytes.len()].to_vec()
        }),
        1 => any::<Vec<u8>>(),
        1 => (1usize..20_000).prop_map(|n| [b"[".repeat(n), b"]".repeat(n)].concat()),
        1 => (1usize..20_000).prop_map(|n| "{\"a\":".repeat(n).into_bytes()),
    ]
}

#[test]
fn manifests_parse_or_are_refused() {
    fuzz(
        "manifests_parse_or_are_refused",
        || (manifest_bytes(), proptest::option::of(media_type())),
        |(bytes, declared)| {
            let (input, media) = (bytes.clone(), declared.clone());
            let parsed = on_small_stack(move || {
                let parsed = Manifest::from_bytes(input, media.as_deref());
                if let Ok(m) = &parsed {
                    let _ = m.body().blob_size();
                }
                parsed
            });
            match parsed {
                Ok(m) => {
                    prop_assert_eq!(m.bytes(), &bytes[..]);
                    prop_assert_eq!(m.digest(), &Digest::of(&bytes));
                    if let Some(t) = &declared {
                        prop_assert_eq!(m.media_type(), t.as_str());
                    }
                    let body = m.body();
                    prop_assert_eq!(
                        body.blobs().count(),
                        usize::from(body.config.is_some()) + body.layers.len()
                    );
                    let d = m.descriptor();
                    prop_assert_eq!(&d.digest, m.digest());
                    prop_assert_eq!(d.size, bytes.len() as u64);
                    let _ = m.is_index();
                }
                Err(e) => {
                    let text = e.to_string();
                    prop_assert!(text.starts_with("invalid manifest"), "{text}");
                    prop_assert!(!text.contains('\n'), "{text}");
                }
            }
            Ok(())
        },
    );
}

/// One raw HTTP answer.
#[derive(Clone, Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// `Content-Length`: the body's length, or another value, or none (the connection's end
    /// delimits the body).
    length: Length,
}

#[derive(Clone, Debug)]
enum Length {
    Right,
    None,
    Wrong(String),
}

impl Answer {
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", self.status).into_bytes();
        for (k, v) in &self.headers {
            out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        match &self.length {
            Length::Right => {
                out.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes())
            }
            Length::None => {}
            Length::Wrong(v) => {
                out.extend_from_slice(format!("Content-Length: {v}\r\n").as_bytes())
            }
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

/// The hostile server: answers each request with the next answer of the current list (the
/// last one again when the list is used up), then closes the connection.
struct Hostile {
    port: u16,
    answers: Mutex<(Vec<Vec<u8>>, usize)>,
    requests: AtomicU64,
}

static SERVER: LazyLock<Arc<Hostile>> = LazyLock::new(|| {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = Arc::new(Hostile {
        port: listener.local_addr().unwrap().port(),
        answers: Mutex::new((vec![b"HTTP/1.1 404 X\r\n\r\n".to_vec()], 0)),
        requests: AtomicU64::new(0),
    });
    let s = server.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let s = s.clone();
            std::thread::spawn(move || s.serve(stream));
        }
    });
    server
});

impl Hostile {
    fn serve(&self, mut stream: TcpStream) {
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        // Read the request head and a body framed by Content-Length.
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let mut have = buf.len() - head_end;
        while have < length {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => have += n,
            }
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        let answer = {
            let mut answers = self.answers.lock().unwrap();
            let (list, next) = &mut *answers;
            let a = list[(*next).min(list.len() - 1)].clone();
            *next += 1;
            a
        };
        let _ = stream.write_all(&answer);
        let _ = stream.flush();
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

fn challenge() -> impl Strategy<Value = String> {
    let realm = format!("http://{}/token", SERVER.host());
    prop_oneof![
        Just(format!(
            "Bearer realm=\"{realm}\",service=\"registry\",scope=\"repository:ns/app:pull\""
        )),
        Just(format!("Bearer realm=\"{realm}\"")),
        Just("Basic realm=\"registry\"".to_string()),
        Just("Bearer".to_string()),
        Just("Bearer realm=".to_string()),
        Just("Bearer realm=\"".to_string()),
        Just("Bearer realm=\"\",service=".to_string()),
        Just("Bearer realm=\"http://[::1\"".to_string()),
        Just("Bearer realm=\"ftp://x/\"".to_string()),
        Just(format!(
            "Bearer realm=\"{realm}\",scope=\"a\",scope=\"b\",,,=,\""
        )),
        Just("Negotiate, Bearer realm=\"x\" Basic".to_string()),
        "(Bearer|Basic|bearer) [ -~]{0,60}",
        "[ -~]{0,60}",
    ]
}

fn answer() -> impl Strategy<Value = Answer> {
    let status = prop_oneof![
        proptest::sample::select(vec![
            200u16, 201, 202, 204, 206, 301, 302, 307, 308, 400, 401, 403, 404, 405, 409, 416, 429,
            500, 502, 503,
        ]),
        100u16..1000,
    ];
    let tags_body = proptest::collection::vec(
        prop_oneof!["[A-Za-z0-9._-]{1,20}", "\\PC{0,12}", Just("x".repeat(300))],
        0..12,
    )
    .prop_map(|tags| {
        serde_json::to_vec(&serde_json::json!({"name": "ns/app", "tags": tags})).unwrap()
    });
    let envelope = (
        proptest::sample::select(vec![
            "BLOB_UNKNOWN", "MANIFEST_UNKNOWN", "NAME_UNKNOWN", "UNAUTHORIZED", "DENIED",
            "TOOMANYREQUESTS", "UNSUPPORTED", "MANIFEST_INVALID", "TAG_INVALID", "?", "",
        ]),
        "\\PC{0,40}",
    )
        .prop_map(|(code, message)| {
            serde_json::to_vec(&serde_json::json!({"errors": [{"code": code, "message": message, "detail": {"x": [1]}}]})).unwrap()
        });
    let token = prop_oneof![
        "[A-Za-z0-9._-]{0,40}".prop_map(|t| serde_json::to_vec(
            &serde_json::json!({"token": t, "expires_in": 300})
        )
        .unwrap()),
        "[A-Za-z0-9._-]{0,40}".prop_map(|t| serde_json::to_vec(
            &serde_json::json!({"access_token": t, "expires_in": -5})
        )
        .unwrap()),
        Just(b"{\"token\":null}".to_vec()),
    ];
    let body = prop_oneof![
        4 => manifest_bytes(),
        2 => tags_body,
        2 => envelope,
        1 => token,
        1 => any::<Vec<u8>>(),
        1 => Just(Vec::new()),
        1 => "\\PC{0,200}".prop_map(String::into_bytes),
        1 => (1usize..64).prop_map(|k| vec![b'a'; k * 1024]),
    ];
    let header = prop_oneof![
        media_type().prop_map(|v| ("Content-Type".to_string(), v)),
        digest_text().prop_map(|v| ("Docker-Content-Digest".to_string(), v)),
        challenge().prop_map(|v| ("WWW-Authenticate".to_string(), v)),
        prop_oneof![
            Just(format!(
                "http://{}/v2/ns/app/blobs/uploads/x",
                SERVER.host()
            )),
            Just("/v2/ns/app/blobs/uploads/x?a=b".to_string()),
            Just(":::".to_string()),
            Just("http://127.0.0.1:1/x".to_string()),
        ]
        .prop_map(|v| ("Location".to_string(), v)),
        prop_oneof![
            Just("</v2/ns/app/tags/list?n=100&last=z>; rel=\"next\"".to_string()),
            "[ -~]{0,40}",
        ]
        .prop_map(|v| ("Link".to_string(), v)),
        Just(("Transfer-Encoding".to_string(), "chunked".to_string())),
        ("[A-Za-z-]{1,12}", "[ -~]{0,30}"),
    ];
    let length = prop_oneof![
        6 => Just(Length::Right),
        2 => Just(Length::None),
        1 => prop_oneof![Just("-1".to_string()), Just("99999999999999999999".to_string()), Just("0".to_string()), Just("x".to_string()), (0u64..4096).prop_map(|n| n.to_string())].prop_map(Length::Wrong),
    ];
    (
        status,
        proptest::collection::vec(header, 0..5),
        body,
        length,
    )
        .prop_map(|(status, headers, body, length)| Answer {
            status,
            headers,
            body,
            length,
        })
}

/// What the backend is asked to do against the hostile server.
#[derive(Clone, Copy, Debug)]
enum Op {
    ResolveTag,
    ResolveDigest,
    ListTags,
    Referrers,
    FetchBlob,
    PutManifest,
}

fn op() -> impl Strategy<Value = Op> {
    proptest::sample::select(vec![
        Op::ResolveTag,
        Op::ResolveDigest,
        Op::ListTags,
        Op::Referrers,
        Op::FetchBlob,
        Op::PutManifest,
    ])
}

/// Held by each use of the server, so that tests running in parallel do not swap its answers.
static SERIAL: Mutex<()> = Mutex::new(());

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
});

/// A manifest with a subject, so that writing it also updates the subject's referrers index.
fn referrer() -> Manifest {
    let subject =
        Manifest::from_bytes(b"{\"schemaVersion\":2,\"layers\":[]}".to_vec(), None).unwrap();
    let body = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": Digest::of(b"{}"), "size": 2},
        "layers": [],
        "subject": subject.descriptor(),
    });
    Manifest::from_bytes(serde_json::to_vec(&body).unwrap(), None).unwrap()
}

/// Runs `op` against the hostile server answering with `answers`; returns the error text, if
/// any, after checking what came back.
fn run(
    op: Op,
    answers: &[Answer],
    credentials: CredentialSource,
) -> Result<Option<String>, TestCaseError> {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = &*SERVER;
    *server.answers.lock().unwrap() = (answers.iter().map(Answer::to_bytes).collect(), 0);
    let options = OciOptions {
        insecure_hosts: vec![server.host()],
        credentials,
        request_timeout: Duration::from_secs(3),
        retries: 0,
        ..OciOptions::default()
    };
    let registry = OciRegistry::new(options).expect("client");
    let repo = Repository::new(format!("{}/ns/app", server.host())).unwrap();
    let subject = Digest::of(b"subject");
    let started = Instant::now();
    let outcome: floe_promotion::Result<()> = RUNTIME.block_on(async {
        let call = async {
            match op {
                Op::ResolveTag | Op::ResolveDigest => {
                    let reference = match op {
                        Op::ResolveTag => Reference::Tag(Tag::new("v1").unwrap()),
                        _ => Reference::Digest(subject.clone()),
                    };
                    let m = registry.resolve(&repo, &reference).await?;
                    if let Reference::Digest(d) = &reference {
                        assert_eq!(
                            m.digest(),
                            d,
                            "a manifest that does not match its digest was accepted"
                        );
                    }
                    assert_eq!(m.digest(), &Digest::of(m.bytes()));
                }
                Op::ListTags => {
                    let tags = registry.list_tags(&repo).await?;
                    assert!(
                        tags.windows(2).all(|w| w[0] < w[1]),
                        "not sorted and unique: {tags:?}"
                    );
                }
                Op::Referrers => {
                    let found = registry.referrers(&repo, &subject).await?;
                    assert!(
                        found.windows(2).all(|w| w[0].digest <= w[1].digest),
                        "not sorted: {found:?}"
                    );
                }
                Op::FetchBlob => {
                    let data = registry.fetch_blob(&repo, &subject, 4096).await?;
                    assert!(data.len() <= 4096, "{} bytes past the limit", data.len());
                    assert_eq!(
                        Digest::of(&data),
                        subject,
                        "a blob that does not match its digest was accepted"
                    );
                }
                Op::PutManifest => {
                    registry
                        .put_manifest(&repo, Some(&Tag::new("v1").unwrap()), &referrer())
                        .await?;
                }
            }
            Ok(())
        };
        match tokio::time::timeout(Duration::from_secs(30), call).await {
            Ok(r) => r,
            Err(_) => panic!("{op:?} did not finish within 30 s"),
        }
    });
    prop_assert!(
        started.elapsed() < Duration::from_secs(15),
        "{op:?} took {:?}",
        started.elapsed()
    );
    match outcome {
        Ok(()) => Ok(None),
        Err(e) => {
            let text = e.to_string();
            prop_assert!(!text.contains('\n'), "a multi-line error: {text:?}");
            prop_assert!(
                text.len() < 4096,
                "a {}-byte error: {}",
                text.len(),
                &text[..200]
            );
            Ok(Some(text))
        }
    }
}

#[test]
fn hostile_answers_give_values_or_typed_errors() {
    fuzz(
        "hostile_answers_give_values_or_typed_errors",
        || {
            (
                op(),
                proptest::collection::vec(answer(), 1..4),
                any::<bool>(),
            )
        },
        |(op, answers, basic)| {
            let credentials = if basic {
                CredentialSource::basic("user", "pa55word")
            } else {
                CredentialSource::Anonymous
            };
            if let Some(error) = run(op, &answers, credentials)? {
                prop_assert!(!error.contains("pa55word"), "{error}");
            }
            Ok(())
        },
    );
}

/// Guards the property above: well-formed answers are read back as such, so the server and
/// the backend do talk.
#[test]
fn the_hostile_server_can_answer_properly() {
    let manifest = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#.to_vec();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let digest = Digest::of(&manifest);
    let ok = Answer {
        status: 200,
        headers: vec![
            ("Content-Type".into(), OCI_MANIFEST.into()),
            ("Docker-Content-Digest".into(), digest.to_string()),
        ],
        body: manifest,
        length: Length::Right,
    };
    let result = RUNTIME.block_on(async {
        *SERVER.answers.lock().unwrap() = (vec![ok.to_bytes()], 0);
        let registry = OciRegistry::new(OciOptions {
            insecure_hosts: vec![SERVER.host()],
            retries: 0,
            ..OciOptions::default()
        })
        .unwrap();
        let repo = Repository::new(format!("{}/ns/app", SERVER.host())).unwrap();
        registry
            .resolve(&repo, &Reference::Tag(Tag::new("v1").unwrap()))
            .await
    });
    assert_eq!(result.unwrap().digest(), &digest);
    let tags = Answer {
        status: 200,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: br#"{"name":"ns/app","tags":["b","a","bad tag"]}"#.to_vec(),
        length: Length::Right,
    };
    let tags = RUNTIME.block_on(async {
        *SERVER.answers.lock().unwrap() = (vec![tags.to_bytes()], 0);
        let registry = OciRegistry::new(OciOptions {
            insecure_hosts: vec![SERVER.host()],
            retries: 0,
            ..OciOptions::default()
        })
        .unwrap();
        registry
            .list_tags(&Repository::new(format!("{}/ns/app", SERVER.host())).unwrap())
            .await
            .unwrap()
    });
    assert_eq!(tags, vec![Tag::new("a").unwrap(), Tag::new("b").unwrap()]);
    assert!(SERVER.requests.load(Ordering::Relaxed) >= 2);
}
