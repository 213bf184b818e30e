//! A throwaway PostgreSQL server for tests (feature `testing`).
//!
//! [`TestPostgres`] runs `initdb` and `postgres` from Debian's `postgresql` package (the newest
//! `/usr/lib/postgresql/<version>/bin`, else the directory of `initdb` on `PATH`) in a
//! temporary directory, listening on a free loopback port with its unix socket inside that
//! directory. When the test process runs as root (which `initdb` refuses), the binaries run as
//! the unprivileged system user `floe-pg`, created with `useradd` when missing. Every command
//! is run with an argument vector, never through a shell.
//!
//! The server is started with `setpriv --pdeathsig INT` from a thread that lives as long as the
//! test process, so it shuts down (fast) when the test process exits, also when it is kept in
//! a static ([`TestPostgres::shared`]). Directories left behind by exited test processes are
//! removed by the next one.
//!
//! Every test case gets its own database ([`TestPostgres::fresh_database`]), so cases run in
//! parallel against one server.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The unprivileged user that runs the server when the tests run as root.
pub const SERVER_USER: &str = "floe-pg";
/// The superuser created by `initdb`.
pub const SUPERUSER: &str = "postgres";

const DIR_PREFIX: &str = "floe-test-postgres-";
const OWNER_FILE: &str = "owner.pid";

/// A PostgreSQL server in a temporary directory on `127.0.0.1:<free port>`, stopped on drop
/// (and when the test process exits).
pub struct TestPostgres {
    bin: PathBuf,
    port: u16,
    dir: tempfile::TempDir,
    user: Option<(u32, u32)>,
    durable: bool,
    child: Mutex<Option<Child>>,
}

impl std::fmt::Debug for TestPostgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPostgres")
            .field("port", &self.port)
            .field("dir", &self.dir.path())
            .finish()
    }
}

impl TestPostgres {
    /// Initialises and starts a server. Panics with advice when PostgreSQL is not installed
    /// (`scripts/registry-deps.sh` installs it).
    pub fn start() -> TestPostgres {
        Self::start_server(false)
    }

    /// Starts a server that fsyncs every commit, as a production server does (for
    /// benchmarks); [`start`](Self::start) trades durability for speed.
    pub fn start_durable() -> TestPostgres {
        Self::start_server(true)
    }

    fn start_server(durable: bool) -> TestPostgres {
        sweep_stale_dirs();
        let bin = bin_dir().unwrap_or_else(|| {
            panic!(
                "PostgreSQL server binaries (initdb, postgres) not found under \
                 /usr/lib/postgresql/*/bin or on PATH: run scripts/registry-deps.sh"
            )
        });
        let dir = tempfile::Builder::new()
            .prefix(DIR_PREFIX)
            .tempdir()
            .unwrap_or_else(|e| panic!("creating a temp dir for the test server: {e}"));
        std::fs::write(dir.path().join(OWNER_FILE), std::process::id().to_string())
            .unwrap_or_else(|e| panic!("writing {}: {e}", dir.path().display()));
        let user = if is_root() {
            let ids = server_user();
            std::os::unix::fs::chown(dir.path(), Some(ids.0), Some(ids.1))
                .unwrap_or_else(|e| panic!("chown {}: {e}", dir.path().display()));
            Some(ids)
        } else {
            None
        };
        let server = TestPostgres {
            bin,
            port: 0,
            dir,
            user,
            durable,
            child: Mutex::new(None),
        };
        server.initdb();
        let mut last = String::new();
        let mut server = server;
        for _ in 0..5 {
            server.port = free_port();
            match server.spawn() {
                Ok(()) => return server,
                Err(e) => last = e,
            }
        }
        panic!("the test PostgreSQL server did not start: {last}");
    }

    /// One server per test process, started on first use.
    pub fn shared() -> &'static TestPostgres {
        static SHARED: OnceLock<TestPostgres> = OnceLock::new();
        SHARED.get_or_init(TestPostgres::start)
    }

    /// The port the server listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `database` as the superuser (trust authentication).
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{SUPERUSER}@127.0.0.1:{}/{database}?sslmode=disable",
            self.port
        )
    }

    /// Creates a database with a unique name and returns its URL.
    pub async fn fresh_database(&self) -> String {
        let name = format!("floe_{}", uuid::Uuid::new_v4().simple());
        let (client, connection) =
            tokio_postgres::connect(&self.url(SUPERUSER), tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| panic!("connecting to the test server: {e}"));
        let task = tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("creating database {name}: {e}"));
        drop(client);
        let _ = task.await;
        self.url(&name)
    }

    /// The server's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    /// Stops the server (fast shutdown: open sessions are ended) and waits for it.
    pub fn stop(&self) {
        let child = self.child.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(mut child) = child {
            signal_int(&child);
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and data directory after [`stop`](Self::stop).
    pub fn restart(&self) {
        self.stop();
        self.spawn()
            .unwrap_or_else(|e| panic!("restarting the test server: {e}"));
    }

    /// `argv` as a command that runs as the server user (through `setpriv` when root).
    fn command(&self, program: &str, pdeathsig: bool) -> Command {
        let binary = self.bin.join(program);
        let mut cmd = Command::new("setpriv");
        if let Some((uid, gid)) = self.user {
            cmd.arg(format!("--reuid={uid}"))
                .arg(format!("--regid={gid}"))
                .arg("--clear-groups");
        }
        if pdeathsig {
            cmd.arg("--pdeathsig").arg("INT");
        }
        cmd.arg("--").arg(binary);
        cmd.current_dir(self.dir.path());
        cmd.env("LC_ALL", "C.UTF-8");
        cmd
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn initdb(&self) {
        let out = self
            .command("initdb", false)
            .arg("-D")
            .arg(self.data_dir())
            .args(["-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--no-sync"])
            .args(["--locale", "C.UTF-8"])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running initdb: {e}"));
        if !out.status.success() {
            panic!(
                "initdb failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    fn spawn(&self) -> Result<(), String> {
        let log_path = self.dir.path().join("postgres.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("opening {}: {e}", log_path.display()))?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let _ = std::fs::remove_file(self.data_dir().join("postmaster.pid"));
        let mut cmd = self.command("postgres", true);
        cmd.arg("-D")
            .arg(self.data_dir())
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-k")
            .arg(self.dir.path())
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "max_connections=400"]);
        if self.durable {
            cmd.args(["-c", "shared_buffers=256MB"]);
        } else {
            cmd.args(["-c", "shared_buffers=32MB", "-c", "fsync=off"])
                .args(["-c", "synchronous_commit=off", "-c", "full_page_writes=off"]);
        }
        cmd.stdin(Stdio::null()).stdout(log).stderr(log2);
        let mut child = spawn_from_long_lived_thread(cmd)?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("postgres exited ({status}): {}", self.log()));
            }
            let ready = std::fs::read_to_string(self.data_dir().join("postmaster.pid"))
                .is_ok_and(|pid| pid.lines().any(|l| l.trim() == "ready"));
            if ready {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("postgres did not become ready: {}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        *self.child.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
        Ok(())
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

fn signal_int(child: &Child) {
    // Fast shutdown. The pid is the postgres process (setpriv execs it).
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGINT,
        );
    }
}

/// The directory holding `initdb` and `postgres`.
fn bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("postgres").is_file())
                .then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("initdb"))
        .filter_map(|p| std::fs::canonicalize(p).ok())
        .filter_map(|p| p.parent().map(Path::to_path_buf))
        .find(|dir| dir.join("postgres").is_file())
}

fn is_root() -> bool {
    // The effective uid from /proc, without unsafe code.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// The uid and gid of [`SERVER_USER`], created when missing.
fn server_user() -> (u32, u32) {
    static USER: OnceLock<(u32, u32)> = OnceLock::new();
    *USER.get_or_init(|| {
        if let Some(ids) = lookup_user(SERVER_USER) {
            return ids;
        }
        let out = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
            ])
            .arg(SERVER_USER)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running useradd: {e}"));
        // Another test process may have created it at the same moment.
        lookup_user(SERVER_USER).unwrap_or_else(|| {
            panic!(
                "creating the user {SERVER_USER} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        })
    })
}

fn lookup_user(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut f = line.split(':');
        if f.next()? != name {
            return None;
        }
        let _password = f.next()?;
        Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
    })
}

/// Removes the directories of test servers whose owning process has exited.
fn sweep_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let ours = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(DIR_PREFIX));
        if !ours {
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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("finding a free loopback port: {e}"))
}

/// Spawns `command` from a thread that never ends, so that `--pdeathsig` (which fires when the
/// spawning *thread* exits) fires only when the whole test process exits.
fn spawn_from_long_lived_thread(command: Command) -> Result<Child, String> {
    type Job = (Command, std::sync::mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<std::sync::mpsc::Sender<Job>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("test-postgres-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
            })
            .unwrap_or_else(|e| panic!("starting the test server spawner thread: {e}"));
        Mutex::new(tx)
    });
    let (reply, answer) = std::sync::mpsc::channel();
    spawner
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .send((command, reply))
        .map_err(|_| "the spawner thread is gone".to_string())?;
    answer
        .recv()
        .map_err(|_| "the spawner thread did not answer".to_string())?
        .map_err(|e| format!("spawning postgres: {e}"))
}
