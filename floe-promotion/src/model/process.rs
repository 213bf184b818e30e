//! Which process holds a promotion lease, and whether it is provably still running.
//!
//! A promoter killed while it holds a lease leaves the lease until it expires. Breaking it early
//! is safe only when its holder is gone; on the holder's own machine that can be proven (no
//! process with that id and start time), elsewhere it cannot.

use serde::{Deserialize, Serialize};

/// The process that took a lease: the machine's host name, the process id and, where the
/// system tells it, the process's start time (so a reused process id is not mistaken for the
/// holder).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderProcess {
    /// The host name of the machine the holder ran on.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// Its start time in clock ticks since boot (Linux `/proc/<pid>/stat`, field 22), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_ticks: Option<u64>,
}

/// Whether a lease's holder is running, as far as this machine can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    /// The holder's process runs on this machine.
    Alive,
    /// The holder ran on this machine and no longer does.
    Gone,
    /// The holder ran elsewhere, or did not say which process it was: nothing can be proven.
    Unknown,
}

impl HolderProcess {
    /// This process, or `None` when the host name cannot be read. Looked up once per process.
    pub fn current() -> Option<Self> {
        static CURRENT: std::sync::OnceLock<Option<HolderProcess>> = std::sync::OnceLock::new();
        CURRENT
            .get_or_init(|| {
                let host = host_name()?;
                let pid = std::process::id();
                Some(HolderProcess {
                    host,
                    pid,
                    start_ticks: start_ticks(pid),
                })
            })
            .clone()
    }

    /// Whether this process is running, seen from the machine this runs on.
    pub fn liveness(&self) -> Liveness {
        if host_name().as_deref() != Some(self.host.as_str()) {
            return Liveness::Unknown;
        }
        if !pid_exists(self.pid) {
            return Liveness::Gone;
        }
        match (self.start_ticks, start_ticks(self.pid)) {
            // The id was reused by a process that started at another time.
            (Some(recorded), Some(now)) if recorded != now => Liveness::Gone,
            _ => Liveness::Alive,
        }
    }
}

/// This machine's host name.
fn host_name() -> Option<String> {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
}

/// Whether a process with this id exists (signal 0: permission errors mean it exists).
fn pid_exists(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None) {
        Ok(()) => true,
        Err(nix::errno::Errno::EPERM) => true,
        Err(_) => false,
    }
}

/// The start time of process `pid` in clock ticks since boot, from `/proc/<pid>/stat`.
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: count after it.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive() {
        let me = HolderProcess::current().expect("host name");
        assert_eq!(me.pid, std::process::id());
        assert!(me.start_ticks.is_some(), "Linux reports start times");
        assert_eq!(me.liveness(), Liveness::Alive);
    }

    #[test]
    fn an_exited_process_is_gone() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let gone = HolderProcess {
            host: host_name().unwrap(),
            pid,
            start_ticks: None,
        };
        assert_eq!(gone.liveness(), Liveness::Gone);
    }

    #[test]
    fn a_reused_process_id_is_not_the_holder() {
        let mut me = HolderProcess::current().unwrap();
        me.start_ticks = me.start_ticks.map(|t| t + 1);
        assert_eq!(me.liveness(), Liveness::Gone);
    }

    #[test]
    fn another_machine_proves_nothing() {
        let mut me = HolderProcess::current().unwrap();
        me.host = format!("{}-elsewhere", me.host);
        assert_eq!(me.liveness(), Liveness::Unknown);
    }
}
