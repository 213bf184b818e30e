use std::collections::BTreeMap;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use async_trait::async_trait;
use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Child;

use super::{GateContext, GateOutcome, PromotionGate};
use crate::error::{Error, Result};

/// How long a stopped command's process group has between SIGTERM and SIGKILL.
///
/// A command is stopped when its own timeout expires, when the gate runner gives up on it
/// (the evaluation future is dropped), or when it exits and leaves processes behind in its
/// group. It gets SIGTERM first, to clean up; whatever still runs after this grace period gets
/// SIGKILL.
pub(crate) const KILL_GRACE: Duration = Duration::from_secs(5);

/// How much of a gate command's stdout and stderr is kept: the last 64 KiB of each.
pub(crate) const OUTPUT_TAIL: usize = 64 * 1024;

/// The longest stderr excerpt quoted in a gate message, in characters.
const MESSAGE_CHARS: usize = 300;

/// How often a stopping process group is checked.
const POLL: Duration = Duration::from_millis(20);

/// How long SIGKILLed processes get to disappear before the stopper gives up on them.
const KILL_WAIT: Duration = Duration::from_secs(2);

/// How long the pipes are read after the command is gone. A process that left the group
/// (`setsid`) may hold them open; its output is not worth a hang.
const PIPE_DRAIN: Duration = Duration::from_secs(1);

/// A command to run as a gate: an argument vector, never a shell line.
///
/// `${ARTIFACT_REF}` and `${ARTIFACT_DIGEST}` inside an argument are replaced by the artifact's
/// reference (`<repository>@<digest>`) and digest; each argument stays one argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandSpec {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// This command's timeout (the environment's gate timeout when `None`).
    pub timeout: Option<Duration>,
    /// Extra environment variables.
    pub env: BTreeMap<String, String>,
    /// Working directory.
    pub working_dir: Option<PathBuf>,
}

impl CommandSpec {
    /// A command from its argument vector; refuses an empty one.
    pub fn new<I, S>(argv: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let argv: Vec<String> = argv.into_iter().map(Into::into).collect();
        if argv.first().is_none_or(|p| p.is_empty()) {
            return Err(Error::invalid(
                "command",
                format!("{argv:?}"),
                "a command needs a program as its first argument",
            ));
        }
        Ok(CommandSpec {
            argv,
            timeout: None,
            env: BTreeMap::new(),
            working_dir: None,
        })
    }

    /// Sets the timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The program, as written (before substitution).
    pub fn program(&self) -> &str {
        self.argv.first().map(String::as_str).unwrap_or_default()
    }

    /// The limit a gate runner should give a gate running this command: the command's own
    /// timeout plus the time it takes to stop it, so that the gate reports the timeout itself
    /// after the command is gone.
    pub(crate) fn runner_timeout(&self) -> Option<Duration> {
        self.timeout
            .map(|t| t.saturating_add(KILL_GRACE).saturating_add(KILL_WAIT))
    }
}

/// Runs a command; exit status 0 passes, anything else fails.
///
/// The command runs directly (no shell) in its own process group, with these environment
/// variables besides the inherited ones and [`CommandSpec::env`]: `FLOE_ARTIFACT`,
/// `FLOE_VERSION`, `FLOE_DIGEST`, `FLOE_FROM`, `FLOE_TO` and `FLOE_ARTIFACT_REF`
/// (`<repository>@<digest>`). Its stdin is empty; the last 64 KiB of stdout and stderr are
/// kept, and a failure quotes the last non-empty stderr line.
///
/// The whole process group is stopped, SIGTERM first and SIGKILL 5 seconds later, when the
/// command's timeout expires (the gate then fails with "timed out after …"), when the
/// evaluation is cancelled (the future is dropped), and when the command exits but leaves
/// processes behind. A program that cannot be started is an error, not a failure.
///
/// [`timeout`](PromotionGate::timeout) is the command's timeout plus that grace period (and
/// two seconds for SIGKILL to take effect), so that a gate runner lets the gate report its own
/// timeout.
#[derive(Debug, Clone)]
pub struct CommandGate {
    name: String,
    spec: CommandSpec,
}

impl CommandGate {
    /// A gate named `name` running `spec`.
    pub fn new(name: impl Into<String>, spec: CommandSpec) -> Self {
        CommandGate {
            name: name.into(),
            spec,
        }
    }

    /// The command it runs.
    pub fn spec(&self) -> &CommandSpec {
        &self.spec
    }
}

#[async_trait]
impl PromotionGate for CommandGate {
    fn name(&self) -> &str {
        &self.name
    }

    async fn evaluate(&self, ctx: &GateContext) -> Result<GateOutcome> {
        let out = run_captured(&self.spec, ctx, Capture::Last(OUTPUT_TAIL)).await?;
        let program = self.spec.program();
        Ok(match out.status {
            Completion::TimedOut(limit) => GateOutcome::fail(format!(
                "`{program}` timed out after {}; it was stopped",
                humantime::format_duration(limit)
            )),
            Completion::Exited(status) if status.success() => {
                GateOutcome::pass(format!("`{program}` exited with code 0"))
            }
            Completion::Exited(status) => {
                GateOutcome::fail(failure_message(program, status, &out.stderr))
            }
        })
    }

    fn timeout(&self) -> Option<Duration> {
        self.spec.runner_timeout()
    }
}

/// "`prog` exited with code 3: <last stderr line>".
pub(crate) fn failure_message(program: &str, status: ExitStatus, stderr: &[u8]) -> String {
    let how = describe_status(status);
    match last_line(stderr) {
        Some(line) => format!("`{program}` {how}: {line}"),
        None => format!("`{program}` {how}"),
    }
}

/// "exited with code 3", "was killed by SIGKILL".
pub(crate) fn describe_status(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(sig)) => match Signal::try_from(sig) {
            Ok(s) => format!("was killed by {s}"),
            Err(_) => format!("was killed by signal {sig}"),
        },
        (None, None) => "ended without an exit code".to_string(),
    }
}

/// The last non-empty line of `bytes`, without control characters, at most
/// [`MESSAGE_CHARS`] characters.
pub(crate) fn last_line(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let line = text.lines().map(str::trim).rev().find(|l| !l.is_empty())?;
    let clean: String = line.chars().filter(|c| !c.is_control()).collect();
    Some(clip(&clean, MESSAGE_CHARS))
}

fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_string(),
    }
}

/// Replaces `${ARTIFACT_REF}` and `${ARTIFACT_DIGEST}` inside one argument.
pub(crate) fn substitute(arg: &str, ctx: &GateContext) -> String {
    arg.replace("${ARTIFACT_REF}", &artifact_ref(ctx))
        .replace("${ARTIFACT_DIGEST}", ctx.digest.as_str())
}

fn artifact_ref(ctx: &GateContext) -> String {
    format!("{}@{}", ctx.source, ctx.digest)
}

/// Which part of a stream is kept.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Capture {
    /// The last `n` bytes (logs: the end says what went wrong).
    Last(usize),
    /// The first `n` bytes; more is an overflow (reports: a cut one is useless).
    First(usize),
}

/// How a command ended.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Completion {
    /// It exited (or was killed by a signal it did not get from us).
    Exited(ExitStatus),
    /// Its timeout expired and it was stopped.
    TimedOut(Duration),
}

/// What a command printed and how it ended.
#[derive(Debug)]
pub(crate) struct CommandOutput {
    /// How it ended.
    pub(crate) status: Completion,
    /// Stdout, as much as [`Capture`] kept.
    pub(crate) stdout: Vec<u8>,
    /// Whether stdout was longer than what was kept.
    pub(crate) stdout_overflow: bool,
    /// The last [`OUTPUT_TAIL`] bytes of stderr.
    pub(crate) stderr: Vec<u8>,
}

/// A bounded buffer for one output stream.
struct Sink {
    buf: Vec<u8>,
    capture: Capture,
    overflow: bool,
}

impl Sink {
    fn new(capture: Capture) -> Self {
        Sink {
            buf: Vec::new(),
            capture,
            overflow: false,
        }
    }

    fn push(&mut self, data: &[u8]) {
        match self.capture {
            Capture::Last(limit) => {
                self.buf.extend_from_slice(data);
                // Trim in batches so that a chatty command costs amortised O(1) per byte.
                if self.buf.len() > limit.saturating_mul(2).max(limit + 8192) {
                    let cut = self.buf.len() - limit;
                    self.buf.drain(..cut);
                    self.overflow = true;
                }
            }
            Capture::First(limit) => {
                let room = limit.saturating_sub(self.buf.len());
                if data.len() > room {
                    self.overflow = true;
                }
                self.buf.extend_from_slice(&data[..room.min(data.len())]);
            }
        }
    }

    fn finish(mut self) -> (Vec<u8>, bool) {
        if let Capture::Last(limit) = self.capture
            && self.buf.len() > limit
        {
            let cut = self.buf.len() - limit;
            self.buf.drain(..cut);
            self.overflow = true;
        }
        (self.buf, self.overflow)
    }
}

/// Reads a stream to its end into `sink`; a read error ends it like EOF.
async fn drain<R: AsyncRead + Unpin>(reader: Option<R>, sink: &mut Sink) {
    let Some(mut reader) = reader else { return };
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => sink.push(&chunk[..n]),
        }
    }
}

/// Runs `spec` for `ctx`, with the placeholders substituted and the `FLOE_*` variables set,
/// and captures its output (stdout as `stdout` says, stderr's last [`OUTPUT_TAIL`] bytes).
///
/// The command runs in its own process group, which is stopped (SIGTERM, then SIGKILL after
/// [`KILL_GRACE`]) when the timeout expires, when the returned future is dropped, and when the
/// command exits leaving processes behind. A program that cannot be started is
/// [`Error::Io`] naming it.
pub(crate) async fn run_captured(
    spec: &CommandSpec,
    ctx: &GateContext,
    stdout: Capture,
) -> Result<CommandOutput> {
    let argv: Vec<String> = spec.argv.iter().map(|a| substitute(a, ctx)).collect();
    let Some((program, args)) = argv.split_first() else {
        return Err(Error::invalid(
            "command",
            "[]",
            "a command needs a program as its first argument",
        ));
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .envs(&spec.env)
        .env("FLOE_ARTIFACT", ctx.artifact.as_str())
        .env("FLOE_VERSION", ctx.version.as_str())
        .env("FLOE_DIGEST", ctx.digest.as_str())
        .env("FLOE_FROM", ctx.from.as_str())
        .env("FLOE_TO", ctx.to.as_str())
        .env("FLOE_ARTIFACT_REF", artifact_ref(ctx))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group, so that stopping it reaches everything it started.
        .process_group(0)
        .kill_on_drop(false);
    if let Some(dir) = &spec.working_dir {
        cmd.current_dir(dir);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::io(format!("starting gate command {:?}", spec.program()), e))?;
    let out_pipe = child.stdout.take();
    let err_pipe = child.stderr.take();
    let mut group = ProcessGroup::new(child)?;

    let mut out = Sink::new(stdout);
    let mut err = Sink::new(Capture::Last(OUTPUT_TAIL));
    let deadline = spec.timeout.map(|t| tokio::time::Instant::now() + t);
    let status = {
        let out_fut = drain(out_pipe, &mut out);
        let err_fut = drain(err_pipe, &mut err);
        let expiry = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(out_fut, err_fut, expiry);
        let (mut out_done, mut err_done) = (false, false);
        let status = loop {
            tokio::select! {
                () = &mut out_fut, if !out_done => out_done = true,
                () = &mut err_fut, if !err_done => err_done = true,
                status = group.wait() => break Some(status),
                () = &mut expiry => break None,
            }
        };
        // Timed out, or exited: either way nothing of it may outlive the gate.
        group.stop().await;
        let _ = tokio::time::timeout(PIPE_DRAIN, async {
            if !out_done {
                (&mut out_fut).await;
            }
            if !err_done {
                (&mut err_fut).await;
            }
        })
        .await;
        status
    };
    let status = match (status, spec.timeout) {
        (Some(Ok(status)), _) => Completion::Exited(status),
        (Some(Err(e)), _) => {
            return Err(Error::io(
                format!("waiting for gate command {:?}", spec.program()),
                e,
            ));
        }
        (None, limit) => Completion::TimedOut(limit.unwrap_or_default()),
    };
    let (stdout, stdout_overflow) = out.finish();
    let (stderr, _) = err.finish();
    Ok(CommandOutput {
        status,
        stdout,
        stdout_overflow,
        stderr,
    })
}

/// A child process and the process group it leads. Dropped while armed, it stops the group
/// from a background thread: SIGTERM at once, SIGKILL after [`KILL_GRACE`].
struct ProcessGroup {
    child: Option<Child>,
    pgid: Pid,
    armed: bool,
}

impl ProcessGroup {
    fn new(child: Child) -> Result<Self> {
        let pgid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .filter(|&id| id > 1)
            .map(Pid::from_raw);
        match pgid {
            Some(pgid) => Ok(ProcessGroup {
                child: Some(child),
                pgid,
                armed: true,
            }),
            // Cannot happen for a child just spawned; refuse rather than signal a wrong group.
            None => Err(Error::io(
                "starting gate command",
                io::Error::other("the child process has no usable process id"),
            )),
        }
    }

    /// Waits for the group leader to exit.
    async fn wait(&mut self) -> io::Result<ExitStatus> {
        match &mut self.child {
            Some(child) => child.wait().await,
            None => Err(io::Error::other("the command was already reaped")),
        }
    }

    /// Stops whatever is left of the group: SIGTERM, up to [`KILL_GRACE`] to exit, SIGKILL.
    /// Returns at once when nothing is left.
    async fn stop(&mut self) {
        if step(&mut self.child, self.pgid) {
            let _ = killpg(self.pgid, Signal::SIGTERM);
            let deadline = tokio::time::Instant::now() + KILL_GRACE;
            while step(&mut self.child, self.pgid) {
                if tokio::time::Instant::now() >= deadline {
                    let _ = killpg(self.pgid, Signal::SIGKILL);
                    let deadline = tokio::time::Instant::now() + KILL_WAIT;
                    while step(&mut self.child, self.pgid) && tokio::time::Instant::now() < deadline
                    {
                        tokio::time::sleep(POLL).await;
                    }
                    break;
                }
                tokio::time::sleep(POLL).await;
            }
        }
        self.armed = false;
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let pgid = self.pgid;
        let mut child = self.child.take();
        let _ = killpg(pgid, Signal::SIGTERM);
        // A thread rather than a task: it must work while the runtime shuts down, too.
        let escalate = move || {
            let deadline = std::time::Instant::now() + KILL_GRACE;
            while step(&mut child, pgid) {
                if std::time::Instant::now() >= deadline {
                    let _ = killpg(pgid, Signal::SIGKILL);
                    let deadline = std::time::Instant::now() + KILL_WAIT;
                    while step(&mut child, pgid) && std::time::Instant::now() < deadline {
                        std::thread::sleep(POLL);
                    }
                    return;
                }
                std::thread::sleep(POLL);
            }
        };
        if std::thread::Builder::new()
            .name("floe-gate-stop".into())
            .spawn(escalate)
            .is_err()
        {
            // No thread for the grace period: better a hard stop than processes left running.
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

/// Reaps the leader if it has exited and tells whether the group still has a live member.
fn step(child: &mut Option<Child>, pgid: Pid) -> bool {
    if let Some(c) = child {
        let _ = c.try_wait();
    }
    group_alive(pgid)
}

/// Whether a process group has a member that is not a zombie.
fn group_alive(pgid: Pid) -> bool {
    match killpg(pgid, None) {
        Err(Errno::ESRCH) => false,
        // Zombies still count for kill(2), and orphans are only reaped when the system's
        // init reaps them (some container inits never do): ask procfs when there is one.
        _ => live_members(pgid).unwrap_or(true),
    }
}

/// Whether procfs lists a member of `pgid` that is not a zombie; `None` without procfs.
fn live_members(pgid: Pid) -> Option<bool> {
    let entries = std::fs::read_dir("/proc").ok()?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next();
        let pgrp = fields.nth(1).and_then(|p| p.parse::<i32>().ok());
        if pgrp == Some(pgid.as_raw()) && !matches!(state, Some("Z" | "X")) {
            return Some(true);
        }
    }
    Some(false)
}
