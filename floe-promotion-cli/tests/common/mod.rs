//! Shared harness of the end-to-end tests: run the built `floe` binary in a temporary working
//! directory, push fixtures with skopeo, read registries back with skopeo.
//!
//! Every test binary shares one `TestRegistry` (a real `docker-registry` on a free loopback
//! port) and uses a fresh repository namespace per test.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use floe_promotion::Digest;
use floe_promotion::history::AuditEvent;
use floe_promotion::registry::{Manifest, OCI_MANIFEST};
use floe_promotion_cli::output::{ErrorOutput, Output};
use floe_promotion_oci::testing::{OciLayoutWriter, pseudo_random_bytes, skopeo};
use serde::de::DeserializeOwned;

/// The built binary.
pub const FLOE: &str = env!("CARGO_BIN_EXE_floe");

/// The address space [`Workspace::run_bounded`] allows `floe`: several times what it needs
/// (it runs in 128 MiB), far less than an unbounded read of a device reaches.
pub const MEMORY_LIMIT: u64 = 512 * 1024 * 1024;

/// How long a [`Workspace::run_bounded`] run may take.
pub const TIME_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The result of one run of `floe`.
#[derive(Debug)]
pub struct Run {
    /// The exit code (a signal is a test failure).
    pub code: u8,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// The arguments, for messages.
    pub args: Vec<String>,
}

impl Run {
    /// Panics unless the run exited with `code`.
    #[track_caller]
    pub fn expect(&self, code: u8) -> &Self {
        assert_eq!(
            self.code,
            code,
            "floe {:?} exited {} ({}), expected {} ({})\nstdout:\n{}\nstderr:\n{}",
            self.args,
            self.code,
            floe_promotion_cli::exit::name(self.code),
            code,
            floe_promotion_cli::exit::name(code),
            self.stdout,
            self.stderr
        );
        self
    }

    /// Panics unless the run succeeded.
    #[track_caller]
    pub fn ok(&self) -> &Self {
        self.expect(floe_promotion_cli::exit::OK)
    }

    /// The whole standard output as one JSON document of type `T` (trailing content fails).
    #[track_caller]
    pub fn json<T: DeserializeOwned>(&self) -> T {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "floe {:?}: stdout is not one JSON document of the expected type: {e}\nstdout:\n{}\nstderr:\n{}",
                self.args, self.stdout, self.stderr
            )
        })
    }

    /// The success document.
    #[track_caller]
    pub fn output(&self) -> Output {
        self.json()
    }

    /// A failed text-mode run: exactly one line on stderr, `floe: ...`, nothing on stdout, no
    /// panic. Returns the line.
    #[track_caller]
    pub fn one_error_line(&self, code: u8) -> String {
        self.expect(code);
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "floe {:?}: expected one line on stderr, got:\n{}",
            self.args,
            self.stderr
        );
        assert!(
            lines[0].starts_with("floe: "),
            "floe {:?}: the error line does not start with `floe: `: {}",
            self.args,
            lines[0]
        );
        assert!(
            !self.stderr.contains("panicked"),
            "floe {:?} panicked: {}",
            self.args,
            self.stderr
        );
        assert!(
            self.stdout.is_empty(),
            "floe {:?}: an error printed on stdout too: {}",
            self.args,
            self.stdout
        );
        lines[0].to_string()
    }

    /// A failed JSON-mode run: stdout is one [`ErrorOutput`] with this exit code, stderr is
    /// empty. Returns the document.
    #[track_caller]
    pub fn json_error(&self, code: u8) -> ErrorOutput {
        self.expect(code);
        let doc: ErrorOutput = self.json();
        assert_eq!(doc.exit_code, code, "{doc:?}");
        assert_eq!(doc.kind, floe_promotion_cli::exit::name(code), "{doc:?}");
        assert!(
            !doc.error.is_empty() && !doc.error.contains('\n'),
            "{doc:?}"
        );
        assert!(
            self.stderr.is_empty(),
            "floe {:?}: stderr is not empty in JSON mode: {}",
            self.args,
            self.stderr
        );
        doc
    }
}

/// A temporary working directory with a `manifest.yaml`, where `floe` runs.
#[derive(Debug)]
pub struct Workspace {
    dir: tempfile::TempDir,
    /// An empty directory given as `DOCKER_CONFIG`, so no credentials of the machine are used.
    docker_home: tempfile::TempDir,
}

impl Workspace {
    /// A workspace with `manifest` as its `manifest.yaml`.
    pub fn new(manifest: &str) -> Self {
        let ws = Workspace {
            dir: tempfile::tempdir().expect("temp dir"),
            docker_home: tempfile::tempdir().expect("temp dir"),
        };
        ws.write("manifest.yaml", manifest);
        ws
    }

    /// The working directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A path in the working directory.
    pub fn join(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// The default state file (`.floe/state.db`).
    pub fn state(&self) -> PathBuf {
        self.join(".floe/state.db")
    }

    /// Writes a file in the working directory.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&path, text).expect("write");
        path
    }

    /// Starts `floe ARGS` in the working directory without waiting for it, with a clean
    /// environment for floe and its output piped.
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        Command::new(FLOE)
            .args(args)
            .current_dir(self.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_remove("RUST_LOG")
            .env_remove("FLOE_MANIFEST")
            .env_remove("FLOE_STATE")
            .env_remove("FLOE_ACTOR")
            .env_remove("FLOE_ACTOR_GROUPS")
            .env_remove("FLOE_DOCKER_CONFIG")
            .env("DOCKER_CONFIG", self.docker_home.path())
            .env("USER", "e2e-user")
            .spawn()
            .expect("spawning floe")
    }

    /// Runs `floe ARGS` in the working directory, with a clean environment for floe.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    /// Runs `floe ARGS` with extra environment variables.
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        self.run_with(Command::new(FLOE), args, env)
    }

    /// Runs `floe ARGS` with its address space limited to [`MEMORY_LIMIT`] by `prlimit`
    /// (util-linux), and asserts it ended within [`TIME_LIMIT`]. An unbounded read then fails
    /// an allocation and aborts, a signal that fails the test, instead of eating the machine.
    pub fn run_bounded(&self, args: &[&str]) -> Run {
        let mut cmd = Command::new("prlimit");
        cmd.arg(format!("--as={MEMORY_LIMIT}")).arg("--").arg(FLOE);
        let started = std::time::Instant::now();
        let run = self.run_with(cmd, args, &[]);
        assert!(
            started.elapsed() < TIME_LIMIT,
            "floe {args:?} took {:?}",
            started.elapsed()
        );
        run
    }

    fn run_with(&self, mut cmd: Command, args: &[&str], env: &[(&str, &str)]) -> Run {
        cmd.args(args)
            .current_dir(self.path())
            .stdin(Stdio::null())
            .env_remove("RUST_LOG")
            .env_remove("FLOE_MANIFEST")
            .env_remove("FLOE_STATE")
            .env_remove("FLOE_ACTOR")
            .env_remove("FLOE_ACTOR_GROUPS")
            .env_remove("FLOE_DOCKER_CONFIG")
            .env("DOCKER_CONFIG", self.docker_home.path())
            .env("USER", "e2e-user");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("running floe");
        let code = out.status.code().unwrap_or_else(|| {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let head: String = stderr.chars().take(2000).collect();
            panic!(
                "floe {args:?} was killed by a signal: {:?}\nstderr:\n{head}",
                out.status
            )
        });
        Run {
            code: u8::try_from(code).expect("exit code fits u8"),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// `floe --output json history --limit 100000`, oldest first.
    pub fn history(&self) -> Vec<AuditEvent> {
        match self
            .run(&["--output", "json", "history", "--limit", "100000"])
            .ok()
            .output()
        {
            Output::History { mut events } => {
                events.reverse();
                events
            }
            other => panic!("history printed {other:?}"),
        }
    }
}

/// An image with one config and two layers (pseudo-random bytes from `seed`), written as an OCI
/// layout in `dir` under `tag`. Returns the manifest digest.
pub fn image_layout(dir: &Path, tag: &str, seed: u64) -> Digest {
    image_layout_annotated(dir, tag, seed, &[])
}

/// [`image_layout`] with these manifest annotations besides the usual one.
pub fn image_layout_annotated(
    dir: &Path,
    tag: &str,
    seed: u64,
    annotations: &[(&str, &str)],
) -> Digest {
    let extra: String = annotations
        .iter()
        .map(|(k, v)| format!(", {}: {}", serde_json::json!(k), serde_json::json!(v)))
        .collect();
    let mut layout = OciLayoutWriter::create(dir);
    let config = format!(
        "{{\"architecture\":\"amd64\",\"os\":\"linux\",\"seed\":{seed},\"rootfs\":{{\"type\":\"layers\",\"diff_ids\":[]}}}}"
    );
    let (config_digest, config_size) = layout.blob(config.as_bytes());
    let mut layers = Vec::new();
    for (i, size) in [40_000usize, 3_000].into_iter().enumerate() {
        let (d, s) = layout.blob(&pseudo_random_bytes(size, seed * 10 + i as u64));
        layers.push(format!(
            "{{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"{d}\",\"size\":{s}}}"
        ));
    }
    // Unusual spacing: a client that re-serialised the manifest would change its digest.
    let bytes = format!(
        "{{ \"schemaVersion\": 2, \"mediaType\": \"{OCI_MANIFEST}\",\n  \"config\": {{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"{config_digest}\",\"size\":{config_size}}},\n  \"layers\": [ {} ],\n  \"annotations\": {{ \"org.opencontainers.image.source\": \"https://example.com/app\"{extra} }} }}\n",
        layers.join(", ")
    );
    let manifest = Manifest::from_bytes(bytes.into_bytes(), Some(OCI_MANIFEST)).expect("manifest");
    layout.manifest(&manifest, Some(tag));
    layout.finish();
    manifest.digest().clone()
}

/// Pushes `NAME:TAG` as CI would: builds an image layout and `skopeo copy`s it to
/// `docker://REPO:TAG` (plain HTTP, digests preserved). `creds` is `user:password`.
pub fn push(repo: &str, tag: &str, seed: u64, creds: Option<&str>) -> Digest {
    push_annotated(repo, tag, seed, creds, &[])
}

/// [`push`] of an image with these manifest annotations besides the usual one.
pub fn push_annotated(
    repo: &str,
    tag: &str,
    seed: u64,
    creds: Option<&str>,
    annotations: &[(&str, &str)],
) -> Digest {
    let dir = tempfile::tempdir().expect("temp dir");
    let digest = image_layout_annotated(dir.path(), tag, seed, annotations);
    let src = format!("oci:{}:{tag}", dir.path().display());
    let dst = format!("docker://{repo}:{tag}");
    let mut args = vec![
        "copy",
        "--quiet",
        "--preserve-digests",
        "--dest-tls-verify=false",
    ];
    let creds_arg;
    if let Some(c) = creds {
        creds_arg = format!("--dest-creds={c}");
        args.push(&creds_arg);
    }
    args.extend([src.as_str(), dst.as_str()]);
    skopeo(&args);
    assert_eq!(skopeo_digest(&format!("{repo}:{tag}"), creds), digest);
    digest
}

/// The digest at `HOST/REPO:TAG` (or `@DIGEST`), read by skopeo.
pub fn skopeo_digest(reference: &str, creds: Option<&str>) -> Digest {
    let target = format!("docker://{reference}");
    let creds_arg = creds.map(|c| format!("--creds={c}"));
    let mut args = vec!["inspect", "--tls-verify=false", "--format", "{{.Digest}}"];
    if let Some(c) = &creds_arg {
        args.push(c);
    }
    args.push(&target);
    let out = skopeo(&args);
    Digest::new(String::from_utf8_lossy(&out).trim()).expect("skopeo printed a digest")
}

/// The tags of `HOST/REPO`, sorted, by `skopeo list-tags`; none when the repository does not
/// exist yet.
pub fn tags(repo: &str, creds: Option<&str>) -> Vec<String> {
    let mut cmd = Command::new("skopeo");
    cmd.args(["list-tags", "--tls-verify=false"]);
    if let Some(c) = creds {
        cmd.arg(format!("--creds={c}"));
    }
    let out = cmd
        .arg(format!("docker://{repo}"))
        .stdin(Stdio::null())
        .output()
        .expect("running skopeo list-tags");
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("404") || err.contains("NAME_UNKNOWN"),
            "skopeo list-tags {repo} failed: {err}"
        );
        return Vec::new();
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("list-tags JSON");
    let mut tags: Vec<String> = v["Tags"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    tags.sort();
    tags
}

/// A manifest whose environments `dev`, `staging`, `prod` are repositories `ns/<env>` on the
/// registry `host`, with `extra` YAML appended under each environment (by name).
pub fn three_env_manifest(host: &str, ns: &str, extra: &[(&str, &str)]) -> String {
    let mut out = format!(
        "artifacts:\n  promotion:\n    default_timeout_seconds: 30\n    insecure_registries: [\"{host}\"]\n    environments:\n"
    );
    for env in ["dev", "staging", "prod"] {
        out.push_str(&format!(
            "      - name: {env}\n        repository: {ns}/{env}\n"
        ));
        for (e, yaml) in extra {
            if *e == env {
                for line in yaml.lines() {
                    out.push_str("        ");
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
    }
    out
}

/// A loopback port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Standard base64 (for the `auth` field of a docker config).
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Copies a directory tree (a fixture OCI layout) into `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

pub mod cross;

impl Workspace {
    /// The digest `floe status` (the history) says runs in `env`: its first deployment's.
    pub fn current(&self, env: &str) -> Option<Digest> {
        match self
            .run(&["--output", "json", "status", "--env", env])
            .ok()
            .output()
        {
            Output::Status { environments } => environments
                .first()
                .and_then(|s| s.deployments.first())
                .map(|d| d.deployment.digest.clone()),
            other => panic!("status printed {other:?}"),
        }
    }

    /// Panics unless `floe audit verify` exits 0 and says the chain is intact.
    #[track_caller]
    pub fn assert_audit_intact(&self) {
        let run = self.run(&["audit", "verify"]);
        run.ok();
        assert!(
            run.stdout.starts_with("audit chain intact"),
            "{}",
            run.stdout
        );
    }

    /// Panics unless SQLite's `PRAGMA integrity_check` of the state file says `ok` (read by
    /// the `sqlite3` shell, a reader independent of floe).
    #[track_caller]
    pub fn assert_state_integrity(&self) {
        let out = Command::new("sqlite3")
            .arg(self.state())
            .arg("PRAGMA integrity_check;")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "running sqlite3 (apt-get install sqlite3, see scripts/registry-deps.sh): {e}"
                )
            });
        assert!(
            out.status.success(),
            "sqlite3 failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
    }
}

/// The arguments of `floe --output json promote app:VERSION --from FROM --to TO --actor ci`.
pub fn promote_args(version: &str, from: &str, to: &str) -> Vec<String> {
    promote_args_as(version, from, to, "ci")
}

/// The arguments of `floe --output json promote app:VERSION --from FROM --to TO --actor ACTOR`.
pub fn promote_args_as(version: &str, from: &str, to: &str, actor: &str) -> Vec<String> {
    [
        "--output",
        "json",
        "promote",
        &format!("app:{version}"),
        "--from",
        from,
        "--to",
        to,
        "--actor",
        actor,
    ]
    .map(String::from)
    .to_vec()
}

/// Polls `done` until it holds, at most `limit`; panics naming `what` when it never does.
#[track_caller]
pub fn wait_for(what: &str, limit: std::time::Duration, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Either `HOST/REPO` has no tag `tag`, or the whole artifact under it is there: skopeo
/// copies it (every blob downloaded and checked against its digest) into a directory.
/// Returns its digest when the tag exists.
#[track_caller]
pub fn absent_or_complete(repo: &str, tag: &str) -> Option<Digest> {
    if !tags(repo, None).iter().any(|t| t == tag) {
        return None;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let reference = format!("{repo}:{tag}");
    skopeo(&[
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        &format!("docker://{reference}"),
        &format!("dir:{}", dir.path().display()),
    ]);
    Some(skopeo_digest(&reference, None))
}
