//! A disposable registry for tests and benchmarks: [`TestRegistry`] runs Debian's
//! `docker-registry` (the CNCF distribution registry 2.8) on a free loopback port.
//!
//! Enabled by the `testing` feature. The binary must be installed: run
//! `scripts/registry-deps.sh` (it installs `docker-registry`, `skopeo` and `apache2-utils`).
//! A missing binary is a panic with that advice, never a skipped test.
//!
//! [`FaultProxy`] (module [`proxy`]) sits between a client and a registry on loopback and
//! injects network faults: slow uploads, stalls, corrupted answers, lost answers.
//!
//! Module [`streams`] is the conformance suite of [`BlobStreams`](crate::BlobStreams).

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use std::collections::BTreeMap;

use floe_promotion::registry::{Manifest, OCI_INDEX, OCI_MANIFEST};
use floe_promotion::{ArtifactRegistry, Digest, Repository, Tag};

use crate::{CredentialSource, OciOptions, OciRegistry};

pub mod proxy;
pub use proxy::FaultProxy;
mod signing;
pub mod streams;
pub use signing::*;

/// The registry binary (Debian's package `docker-registry`).
pub const REGISTRY_BINARY: &str = "docker-registry";
/// How to install what the tests need.
pub const INSTALL_HINT: &str =
    "run scripts/registry-deps.sh (apt-get install docker-registry skopeo apache2-utils)";

/// Options of a [`TestRegistry`].
#[derive(Clone, Debug, Default)]
pub struct TestRegistryOptions {
    /// Require HTTP Basic auth with this user and password (an htpasswd file made with
    /// `htpasswd -B`).
    pub basic_auth: Option<(String, String)>,
}

/// One request the registry answered, from its log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedRequest {
    /// HTTP method.
    pub method: String,
    /// Request URI (path and query).
    pub uri: String,
    /// Response status.
    pub status: u16,
}

impl LoggedRequest {
    /// Whether this request carried blob bytes: a `PATCH` or `PUT` on an upload session.
    pub fn is_blob_upload(&self) -> bool {
        (self.method == "PATCH" || self.method == "PUT") && self.uri.contains("/blobs/uploads/")
    }

    /// Whether this was a cross-repository mount that succeeded (`POST ...?mount=` with 201).
    pub fn is_mount(&self) -> bool {
        self.method == "POST" && self.uri.contains("mount=") && self.status == 201
    }
}

/// A `docker-registry serve` process on `127.0.0.1:<free port>` with its own storage
/// directory, killed on drop.
///
/// The process is started with `setpriv --pdeathsig KILL` from a thread that lives as long as
/// the test process, so it also dies when the test process dies without dropping it (a
/// [`shared`](TestRegistry::shared) registry in a static).
pub struct TestRegistry {
    port: u16,
    dir: tempfile::TempDir,
    options: TestRegistryOptions,
    child: Mutex<Option<Child>>,
}

impl std::fmt::Debug for TestRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestRegistry")
            .field("host", &self.host())
            .field("dir", &self.dir.path())
            .field("basic_auth", &self.options.basic_auth.is_some())
            .finish()
    }
}

impl TestRegistry {
    /// Starts an anonymous registry. Panics with advice when `docker-registry` is missing.
    pub fn start() -> Self {
        Self::start_with(TestRegistryOptions::default())
    }

    /// Starts a registry with `options`.
    pub fn start_with(options: TestRegistryOptions) -> Self {
        sweep_stale_dirs();
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port();
            let dir = tempfile::Builder::new()
                .prefix(DIR_PREFIX)
                .tempdir()
                .unwrap_or_else(|e| panic!("creating a temp dir for the test registry: {e}"));
            // A registry in a static is never dropped; the next test process removes its
            // directory once this process is gone (see `sweep_stale_dirs`).
            std::fs::write(dir.path().join(OWNER_FILE), std::process::id().to_string())
                .unwrap_or_else(|e| panic!("writing {}: {e}", dir.path().display()));
            let registry = TestRegistry {
                port,
                dir,
                options: options.clone(),
                child: Mutex::new(None),
            };
            match registry.spawn() {
                Ok(()) => return registry,
                Err(e) => last_error = e,
            }
        }
        panic!("the test registry did not start: {last_error}");
    }

    /// One anonymous registry per test process, started on first use.
    pub fn shared() -> &'static TestRegistry {
        static SHARED: OnceLock<TestRegistry> = OnceLock::new();
        SHARED.get_or_init(TestRegistry::start)
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The registry's storage root (`docker/registry/v2/...` below it).
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The file the registry logs to (JSON lines).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }

    /// A fresh namespace on this registry: `127.0.0.1:PORT/<prefix>-<random>`.
    pub fn namespace(&self, prefix: &str) -> Repository {
        let id = uuid::Uuid::new_v4().simple().to_string();
        Repository::new(format!("{}/{prefix}-{}", self.host(), &id[..12]))
            .unwrap_or_else(|e| panic!("test namespace for prefix {prefix:?}: {e}"))
    }

    /// Options for an [`OciRegistry`] that reaches this registry over plain HTTP, anonymously
    /// or with its Basic credentials; quick retries.
    pub fn oci_options(&self) -> OciOptions {
        let credentials = match &self.options.basic_auth {
            Some((user, password)) => CredentialSource::basic(user, password),
            None => CredentialSource::Anonymous,
        };
        OciOptions {
            insecure_hosts: vec![self.host()],
            credentials,
            request_timeout: Duration::from_secs(20),
            retries: 2,
            retry_backoff: Duration::from_millis(50),
            ..OciOptions::default()
        }
    }

    /// An [`OciRegistry`] with [`oci_options`](Self::oci_options).
    pub fn client(&self) -> OciRegistry {
        OciRegistry::new(self.oci_options())
            .unwrap_or_else(|e| panic!("client for the test registry: {e}"))
    }

    /// Every request answered so far, in order. The registry logs a request just after
    /// answering it, so this first waits until the log has been quiet for 100 ms (2 s at most).
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.settle_log();
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        text.lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            // "response completed", or "response completed with error" for 4xx and 5xx.
            .filter(|v| {
                v.get("msg")
                    .and_then(|m| m.as_str())
                    .is_some_and(|m| m.starts_with("response completed"))
            })
            .filter_map(|v| {
                Some(LoggedRequest {
                    method: v.get("http.request.method")?.as_str()?.to_string(),
                    uri: v.get("http.request.uri")?.as_str()?.to_string(),
                    status: u16::try_from(v.get("http.response.status")?.as_u64()?).ok()?,
                })
            })
            .collect()
    }

    fn settle_log(&self) {
        let size = || {
            std::fs::metadata(self.log_path())
                .map(|m| m.len())
                .unwrap_or(0)
        };
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut last = size();
        loop {
            std::thread::sleep(Duration::from_millis(100));
            let now = size();
            if now == last || Instant::now() > deadline {
                return;
            }
            last = now;
        }
    }

    /// Requests answered so far whose URI contains `needle` (e.g. a repository path).
    pub fn requests_for(&self, needle: &str) -> Vec<LoggedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.uri.contains(needle))
            .collect()
    }

    /// Whether the registry process runs.
    pub fn is_running(&self) -> bool {
        let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
        match child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kills the registry process (SIGKILL) and waits for it. Storage is kept.
    pub fn kill(&self) {
        let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(mut c) = child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the registry again on the same port and storage, after [`kill`](Self::kill).
    pub fn restart(&self) {
        self.kill();
        self.spawn()
            .unwrap_or_else(|e| panic!("restarting the test registry: {e}"));
    }

    fn spawn(&self) -> Result<(), String> {
        let config = self.write_config()?;
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| format!("creating {}: {e}", self.log_path().display()))?;
        let mut command = if which(REGISTRY_BINARY).is_none() {
            panic!("`{REGISTRY_BINARY}` is not installed: {INSTALL_HINT}");
        } else if which("setpriv").is_some() {
            let mut c = Command::new("setpriv");
            c.args(["--pdeathsig", "KILL", "--", REGISTRY_BINARY]);
            c
        } else {
            Command::new(REGISTRY_BINARY)
        };
        command
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        let child = spawn_from_long_lived_thread(command)?;
        *self.child.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if self.answers() {
                return Ok(());
            }
            if !self.is_running() {
                let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
                return Err(format!(
                    "docker-registry exited at start: {}",
                    log.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
                ));
            }
            if Instant::now() > deadline {
                self.kill();
                return Err("docker-registry did not answer /v2/ within 15 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether `GET /v2/` gets an HTTP answer (200, or 401 with auth).
    fn answers(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let request = format!("GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1:{}\r\n\r\n", self.port);
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).is_ok()
            && (head.starts_with(b"HTTP/1.0 200")
                || head.starts_with(b"HTTP/1.1 200")
                || head.starts_with(b"HTTP/1.0 401")
                || head.starts_with(b"HTTP/1.1 401"))
    }

    fn write_config(&self) -> Result<PathBuf, String> {
        let data = self.storage_dir();
        std::fs::create_dir_all(&data).map_err(|e| format!("creating {}: {e}", data.display()))?;
        let mut config = format!(
            "version: 0.1\n\
             log:\n  level: info\n  formatter: json\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:{}\n  secret: floe-test-{}\n",
            data.display(),
            self.port,
            self.port
        );
        if let Some((user, password)) = &self.options.basic_auth {
            let htpasswd = self.dir.path().join("htpasswd");
            write_htpasswd(&htpasswd, user, password)?;
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: floe-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let path = self.dir.path().join("config.yml");
        std::fs::write(&path, config).map_err(|e| format!("writing {}: {e}", path.display()))?;
        Ok(path)
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Writes a bcrypt htpasswd file with `htpasswd -B` (apache2-utils).
fn write_htpasswd(path: &Path, user: &str, password: &str) -> Result<(), String> {
    if which("htpasswd").is_none() {
        panic!("`htpasswd` is not installed: {INSTALL_HINT}");
    }
    let out = Command::new("htpasswd")
        .args(["-Bbn", user, password])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running htpasswd: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "htpasswd failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    std::fs::write(path, &out.stdout).map_err(|e| format!("writing {}: {e}", path.display()))
}

/// The prefix of a test registry's temp directory.
const DIR_PREFIX: &str = "floe-test-registry-";
/// The file in a test registry's directory that names the owning process.
const OWNER_FILE: &str = "owner.pid";

/// Removes the directories of test registries whose owning process has exited (those kept in
/// statics are never dropped).
fn sweep_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_ours = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(DIR_PREFIX));
        if !is_ours {
            continue;
        }
        let owner = std::fs::read_to_string(path.join(OWNER_FILE))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
        let alive = owner.is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if owner.is_some() && !alive {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("finding a free loopback port: {e}"))
}

/// The full path of `program` on `PATH`.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// Spawns `command` from a thread that never ends, so that `--pdeathsig` (which fires when the
/// spawning *thread* exits) fires only when the whole test process exits.
fn spawn_from_long_lived_thread(command: Command) -> Result<Child, String> {
    type Job = (Command, std::sync::mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<std::sync::mpsc::Sender<Job>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("test-registry-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
                // The sender lives in a static, so the loop above never ends.
            })
            .unwrap_or_else(|e| panic!("starting the test registry spawner thread: {e}"));
        Mutex::new(tx)
    });
    let (reply, answer) = std::sync::mpsc::channel();
    let sent = spawner
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .send((command, reply));
    sent.map_err(|_| "the spawner thread is gone".to_string())?;
    answer
        .recv()
        .map_err(|_| "the spawner thread did not answer".to_string())?
        .map_err(|e| format!("spawning {REGISTRY_BINARY}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Fixtures: generated images, OCI layout directories for skopeo, cosign signatures.
// ---------------------------------------------------------------------------------------------

/// `len` bytes that do not compress, the same for the same `seed` (xorshift64*).
pub fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Pushes an OCI image whose layers are `layer_sizes` pseudo-random bytes (from `seed`) and
/// tags it `tag` when given. The manifest is formatted with unusual spacing, so a client that
/// re-serialises it would change its digest.
pub async fn push_generated_image(
    registry: &dyn ArtifactRegistry,
    repo: &Repository,
    tag: Option<&Tag>,
    layer_sizes: &[usize],
    seed: u64,
) -> Manifest {
    let config = format!(
        "{{\"architecture\":\"amd64\",\"os\":\"linux\",\"seed\":{seed},\"rootfs\":{{\"type\":\"layers\",\"diff_ids\":[]}}}}"
    );
    let config_digest = registry
        .push_blob(repo, config.clone().into_bytes())
        .await
        .unwrap_or_else(|e| panic!("push config to {repo}: {e}"));
    let mut layers = Vec::new();
    for (i, size) in layer_sizes.iter().enumerate() {
        let data = pseudo_random_bytes(*size, seed.wrapping_add(i as u64 + 1));
        let digest = registry
            .push_blob(repo, data)
            .await
            .unwrap_or_else(|e| panic!("push layer {i} to {repo}: {e}"));
        layers.push(format!(
            "{{ \"mediaType\": \"application/vnd.oci.image.layer.v1.tar\", \"digest\": \"{digest}\", \"size\": {size} }}"
        ));
    }
    let bytes = format!(
        "{{\n   \"schemaVersion\": 2,\n   \"mediaType\": \"{OCI_MANIFEST}\",\n   \"config\": {{ \"mediaType\": \"application/vnd.oci.image.config.v1+json\", \"digest\": \"{config_digest}\", \"size\": {} }},\n   \"layers\": [\n      {}\n   ]\n}}",
        config.len(),
        layers.join(",\n      ")
    );
    let manifest = Manifest::from_bytes(bytes.into_bytes(), Some(OCI_MANIFEST))
        .unwrap_or_else(|e| panic!("generated manifest: {e}"));
    registry
        .put_manifest(repo, tag, &manifest)
        .await
        .unwrap_or_else(|e| panic!("put manifest to {repo}: {e}"));
    manifest
}

/// Writes an OCI image-layout directory (`oci-layout`, `index.json`, `blobs/sha256/..`), the
/// input format of `skopeo copy oci:DIR:TAG ...`.
#[derive(Debug)]
pub struct OciLayoutWriter {
    dir: PathBuf,
    entries: Vec<serde_json::Value>,
}

impl OciLayoutWriter {
    /// Starts a layout in `dir` (created if needed).
    pub fn create(dir: &Path) -> Self {
        std::fs::create_dir_all(dir.join("blobs/sha256"))
            .unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        std::fs::write(dir.join("oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}")
            .unwrap_or_else(|e| panic!("writing oci-layout in {}: {e}", dir.display()));
        OciLayoutWriter {
            dir: dir.to_path_buf(),
            entries: Vec::new(),
        }
    }

    /// Stores a blob and returns its descriptor fields (digest, size).
    pub fn blob(&mut self, data: &[u8]) -> (Digest, u64) {
        let digest = Digest::of(data);
        let path = self.dir.join("blobs/sha256").join(digest.hex());
        std::fs::write(&path, data).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        (digest, data.len() as u64)
    }

    /// Stores a manifest's bytes; with `tag`, lists it in `index.json` under that name.
    pub fn manifest(&mut self, manifest: &Manifest, tag: Option<&str>) {
        self.blob(manifest.bytes());
        if let Some(tag) = tag {
            self.entries.push(serde_json::json!({
                "mediaType": manifest.media_type(),
                "digest": manifest.digest().as_str(),
                "size": manifest.bytes().len(),
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }));
        }
    }

    /// Writes `index.json`.
    pub fn finish(self) -> PathBuf {
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": self.entries,
        });
        std::fs::write(self.dir.join("index.json"), index.to_string())
            .unwrap_or_else(|e| panic!("writing index.json in {}: {e}", self.dir.display()));
        self.dir
    }
}

/// Runs `skopeo` with `args` and returns its standard output; panics with its standard error
/// when it fails, and with install advice when it is missing.
pub fn skopeo(args: &[&str]) -> Vec<u8> {
    if which("skopeo").is_none() {
        panic!("`skopeo` is not installed: {INSTALL_HINT}");
    }
    let out = Command::new("skopeo")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running skopeo {args:?}: {e}"));
    if !out.status.success() {
        panic!(
            "skopeo {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out.stdout
}

/// The raw manifest bytes at `reference` (`HOST/REPO:TAG` or `HOST/REPO@DIGEST`), read by
/// skopeo over plain HTTP: an independent client.
pub fn skopeo_raw_manifest(reference: &str) -> Vec<u8> {
    skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ])
}

/// The peak resident memory of this process so far (`VmHWM` of `/proc/self/status`), in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
