//! The one error type of the workspace.
//!
//! Backends keep private error types and map them into [`Error`]; no backend type appears in a
//! public signature. Each variant has one meaning, and the CLI maps each to one exit code.
//!
//! Values a user handed in are shown through [`Excerpt`]: a 10 KB tag is refused on a short
//! line that still shows how it starts and how long it is.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::gate::GateResult;
use crate::model::{Digest, EnvName, MissingDependency};
use crate::state::EnvLock;

/// Result alias used across the workspace.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every failure the library reports.
///
/// Messages name the file, field, value, registry or reference involved and never contain
/// credentials. Their `Display` shortens the caller's values (`value`, `file`, `location`) to
/// an [`Excerpt`]; the fields keep them whole.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value given by the caller is malformed: a tag, digest, name or option.
    #[error("invalid {what} {}: {reason}", Excerpt::quoted(value))]
    InvalidInput {
        /// What kind of value it is, e.g. "tag".
        what: &'static str,
        /// The offending value.
        value: String,
        /// Why it was refused.
        reason: String,
    },

    /// A configuration file (the manifest) is invalid.
    #[error("{}{}: {message}", file.as_deref().map(Excerpt::path).unwrap_or_else(|| "<manifest>".into()), location.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default())]
    Config {
        /// The file, when the configuration came from one.
        file: Option<PathBuf>,
        /// Line and column (1-based), when known.
        location: Option<(usize, usize)>,
        /// What is wrong and what was expected.
        message: String,
    },

    /// A setting or operation exists in the model but its behaviour is not implemented yet.
    #[error("not supported yet: {feature}: {detail}")]
    NotSupported {
        /// The setting or operation.
        feature: String,
        /// Why it is refused.
        detail: String,
    },

    /// A repository, tag, manifest, blob, environment or record does not exist.
    #[error("not found: {what}")]
    NotFound {
        /// What was looked for, with its location.
        what: String,
    },

    /// The registry refused the credentials (or their absence).
    #[error("unauthorized at {registry}: {message}")]
    Unauthorized {
        /// The registry host or location.
        registry: String,
        /// What was refused.
        message: String,
    },

    /// The registry or store could not be reached or answered with a server error.
    #[error("unavailable: {registry}: {message}")]
    Unavailable {
        /// The registry host, directory or store.
        registry: String,
        /// What failed.
        message: String,
    },

    /// An immutable tag already points at another digest.
    #[error(
        "immutable tag {tag} in {repository} already points at {existing}, refusing to move it to {attempted}"
    )]
    Immutability {
        /// The repository.
        repository: String,
        /// The tag.
        tag: String,
        /// The digest the tag holds.
        existing: Digest,
        /// The digest that was to be written.
        attempted: Digest,
    },

    /// A signature check failed or could not be made.
    #[error("signature check failed for {digest}: {message}")]
    Signature {
        /// The digest whose signature was checked.
        digest: Digest,
        /// Why it failed.
        message: String,
    },

    /// One or more gates failed (including timeouts and gate errors).
    #[error("gate failed: {}", summarize_gates(.failed))]
    GateFailed {
        /// The failing gates' results.
        failed: Vec<GateResult>,
    },

    /// The promotion path is not allowed: backwards, skipping, unknown order.
    #[error("invalid transition {from} -> {to}: {reason}")]
    InvalidTransition {
        /// Source environment.
        from: String,
        /// Target environment.
        to: String,
        /// Why it is refused.
        reason: String,
    },

    /// The version was never in the environment (rollback or promotion source).
    #[error("version {artifact}:{version} was never promoted to {environment}")]
    VersionNotPromoted {
        /// Artifact name.
        artifact: String,
        /// Version.
        version: String,
        /// Environment.
        environment: EnvName,
    },

    /// The actor is not allowed to operate on the environment.
    #[error("not authorized: {actor} may not {action} {environment}: {reason}")]
    Forbidden {
        /// Actor id.
        actor: String,
        /// What was attempted ("promote to", "rollback", "lock"...).
        action: &'static str,
        /// The environment.
        environment: EnvName,
        /// Which rule refused.
        reason: String,
    },

    /// The environment is locked.
    #[error("environment {} is locked by {} since {}: {}", .lock.environment, .lock.owner, .lock.created.to_rfc3339(), .lock.reason)]
    Locked {
        /// The lock in force.
        lock: Box<EnvLock>,
    },

    /// Separation of duties: the same actor may not perform both steps.
    #[error("separation of duties: {actor} {reason}")]
    SeparationOfDuties {
        /// Actor id.
        actor: String,
        /// What they did before.
        reason: String,
    },

    /// The promotion waits for approval.
    #[error("approval pending: request {request_id} needs {needed} more approval(s)")]
    ApprovalPending {
        /// Approval request id.
        request_id: String,
        /// Approvals still needed.
        needed: u32,
    },

    /// An approval request was rejected or has expired.
    #[error("approval {request_id} {state}")]
    ApprovalClosed {
        /// Approval request id.
        request_id: String,
        /// "rejected" or "expired" (with who and why when known).
        state: String,
    },

    /// A vote on an approval request into an environment that requires signed votes
    /// (`approval.signers`) carries no valid signature of a listed signer over this request,
    /// digest, environment and decision; or a signed vote was given where no signers are
    /// configured.
    #[error("approval {request_id}: vote refused: {reason}")]
    VoteSignature {
        /// Approval request id.
        request_id: String,
        /// Why: unsigned, unlisted key, another message, another namespace.
        reason: String,
    },

    /// An environment policy refuses the promotion (version pattern, soak, source, freeze).
    #[error("policy violation in {environment}: {rule}: {detail}")]
    PolicyViolation {
        /// The environment whose policy refused.
        environment: EnvName,
        /// The rule, e.g. "minimum_soak".
        rule: &'static str,
        /// Details.
        detail: String,
    },

    /// Declared dependencies are not current in the target environment at the digest wanted.
    #[error("dependency missing in {environment}: {artifact} needs {}", list(.missing))]
    DependencyMissing {
        /// The target environment.
        environment: EnvName,
        /// The dependent artifact (`name:version`).
        artifact: String,
        /// Each dependency missing, with the digest wanted and what the target runs instead.
        missing: Vec<MissingDependency>,
    },

    /// A dependency promoted before its dependent (`promote_with_dependencies`) failed, so
    /// the dependent was not attempted. The exit code is the dependency's error's.
    #[error(
        "dependency {dependency} of {artifact} was not promoted to {environment}, so {artifact} was not attempted: {source}"
    )]
    DependencyFailed {
        /// The target environment.
        environment: EnvName,
        /// The dependent artifact (`name:version`).
        artifact: String,
        /// The dependency that failed (`name:version`).
        dependency: String,
        /// Why it failed.
        #[source]
        source: Box<Error>,
    },

    /// The digest was revoked: it is refused everywhere until it is unrevoked.
    #[error("{artifact} {digest} is revoked (by {by}: {reason}); it may not enter {environment}")]
    Revoked {
        /// The artifact as named in the request.
        artifact: String,
        /// The revoked digest.
        digest: crate::model::Digest,
        /// The environment it was to enter.
        environment: EnvName,
        /// Who revoked it.
        by: String,
        /// Why.
        reason: String,
    },

    /// Another promoter holds the environment's promotion lease.
    #[error("environment {environment} is being promoted by {holder} (lease until {until})")]
    Busy {
        /// Environment.
        environment: EnvName,
        /// Lease holder.
        holder: String,
        /// Lease expiry (RFC 3339).
        until: String,
    },

    /// A state conflict: the record changed concurrently or is in a state that refuses the call.
    #[error("conflict: {0}")]
    Conflict(String),

    /// The audit chain does not verify.
    #[error("audit chain broken at event {seq}: {problem}")]
    Integrity {
        /// Sequence number of the first bad event.
        seq: u64,
        /// What is wrong with it.
        problem: String,
    },

    /// A storage backend failed (database file, disk).
    #[error("{backend} store {}: {message}", Excerpt::location(location))]
    Store {
        /// Backend name, e.g. "sqlite".
        backend: &'static str,
        /// The file or location.
        location: String,
        /// What failed.
        message: String,
    },

    /// Local I/O failed (reading a file, running a command).
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// The missing dependencies, comma-separated.
fn list(missing: &[MissingDependency]) -> String {
    missing
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// How many characters of a value (a name, a tag, an option) an [`Excerpt`] shows whole.
pub const EXCERPT_CHARS: usize = 80;

/// How many characters of a path or location an [`Excerpt`] shows whole: real paths fit.
pub const LOCATION_EXCERPT_CHARS: usize = 160;

/// A value as a message shows it: whole up to a limit of characters ([`EXCERPT_CHARS`] for
/// values, [`LOCATION_EXCERPT_CHARS`] for paths and locations); a longer one as its start and
/// its end (three quarters and a quarter of the limit, cut on character boundaries) around `…`,
/// followed by its length: `"aaaa…zzzz" (10240 bytes)`.
///
/// Refusals quote what was refused; a 10 KB tag must not make a 10 KB line, and the end of a
/// long path (its file name) stays visible.
///
/// ```
/// use floe_promotion::Excerpt;
/// assert_eq!(Excerpt::quoted("v1;id").to_string(), r#""v1;id""#);
/// let long = format!("{}z", "a".repeat(10_239));
/// let shown = Excerpt::quoted(&long).to_string();
/// assert!(shown.starts_with(r#""aaaa"#) && shown.ends_with(r#"aaz" (10240 bytes)"#));
/// assert!(shown.contains('…') && shown.len() < 100);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Excerpt<'a> {
    value: &'a str,
    quoted: bool,
    chars: usize,
}

impl<'a> Excerpt<'a> {
    /// The value as it is, up to [`EXCERPT_CHARS`] characters whole.
    pub fn new(value: &'a str) -> Self {
        Excerpt {
            value,
            quoted: false,
            chars: EXCERPT_CHARS,
        }
    }

    /// The value in double quotes, escaped as `{:?}` escapes it (a name, a tag, an option), up
    /// to [`EXCERPT_CHARS`] characters whole.
    pub fn quoted(value: &'a str) -> Self {
        Excerpt {
            quoted: true,
            ..Excerpt::new(value)
        }
    }

    /// A location (a file, a directory, a store) as it is, up to [`LOCATION_EXCERPT_CHARS`]
    /// characters whole.
    pub fn location(value: &'a str) -> Self {
        Excerpt {
            chars: LOCATION_EXCERPT_CHARS,
            ..Excerpt::new(value)
        }
    }

    /// A path, shown like [`Excerpt::location`].
    pub fn path(path: &Path) -> String {
        Excerpt::location(&path.display().to_string()).to_string()
    }
}

impl fmt::Display for Excerpt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.value;
        if v.char_indices().nth(self.chars).is_none() {
            return if self.quoted {
                write!(f, "{v:?}")
            } else {
                f.write_str(v)
            };
        }
        let head_chars = self.chars * 3 / 4;
        let tail_chars = self.chars - head_chars;
        let head_end = v.char_indices().nth(head_chars).map_or(v.len(), |(i, _)| i);
        let tail_start = v
            .char_indices()
            .rev()
            .nth(tail_chars.saturating_sub(1))
            .map_or(0, |(i, _)| i);
        let (head, tail) = (&v[..head_end], &v[tail_start..]);
        if self.quoted {
            // Escaped as a whole would escape them; the quotes go around head…tail.
            let (head, tail) = (format!("{head:?}"), format!("{tail:?}"));
            write!(
                f,
                "{}…{} ({} bytes)",
                &head[..head.len() - 1],
                &tail[1..],
                v.len()
            )
        } else {
            write!(f, "{head}…{tail} ({} bytes)", v.len())
        }
    }
}

fn summarize_gates(failed: &[GateResult]) -> String {
    failed
        .iter()
        .map(|g| format!("{} ({}: {})", g.gate, g.status, g.message))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    /// Shorthand for [`Error::InvalidInput`].
    pub fn invalid(
        what: &'static str,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Error::InvalidInput {
            what,
            value: value.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::NotFound`].
    pub fn not_found(what: impl Into<String>) -> Self {
        Error::NotFound { what: what.into() }
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Shorthand for [`Error::NotSupported`].
    pub fn not_supported(feature: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::NotSupported {
            feature: feature.into(),
            detail: detail.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_shown_whole() {
        let exact = "a".repeat(EXCERPT_CHARS);
        assert_eq!(Excerpt::new(&exact).to_string(), exact);
        assert_eq!(Excerpt::quoted(&exact).to_string(), format!("{exact:?}"));
        assert_eq!(Excerpt::quoted("a\nb").to_string(), r#""a\nb""#);
        assert_eq!(Excerpt::new("").to_string(), "");
        let path = "p".repeat(LOCATION_EXCERPT_CHARS);
        assert_eq!(Excerpt::location(&path).to_string(), path);
    }

    #[test]
    fn long_values_show_their_start_end_and_length() {
        let long = format!("{}{}{}", "b".repeat(60), "c".repeat(10_000), "d".repeat(20));
        assert_eq!(
            Excerpt::new(&long).to_string(),
            format!("{}…{} (10080 bytes)", "b".repeat(60), "d".repeat(20))
        );
        assert_eq!(
            Excerpt::quoted(&long).to_string(),
            format!("\"{}…{}\" (10080 bytes)", "b".repeat(60), "d".repeat(20))
        );
        let one_more = "e".repeat(EXCERPT_CHARS + 1);
        assert_eq!(
            Excerpt::new(&one_more).to_string(),
            format!("{}…{} (81 bytes)", "e".repeat(60), "e".repeat(20))
        );
        // A long path keeps its file name.
        let path = format!("/{}/report.json", "dir/".repeat(1_000));
        let shown = Excerpt::path(Path::new(&path)).to_string();
        assert!(shown.starts_with("/dir/dir/"), "{shown}");
        assert!(shown.ends_with("/report.json (4013 bytes)"), "{shown}");
        assert!(
            shown.chars().count() < LOCATION_EXCERPT_CHARS + 20,
            "{shown}"
        );
    }

    #[test]
    fn the_cut_falls_on_a_character_boundary() {
        // Two-byte characters: a cut by bytes could split one.
        let long = "é".repeat(5_000);
        let shown = Excerpt::new(&long).to_string();
        assert_eq!(
            shown,
            format!("{}…{} (10000 bytes)", "é".repeat(60), "é".repeat(20))
        );
        let mixed = format!("a{}b", "日本".repeat(3_000));
        let shown = Excerpt::quoted(&mixed).to_string();
        assert!(shown.starts_with("\"a日本"), "{shown}");
        assert!(shown.ends_with("日本b\" (18002 bytes)"), "{shown}");
        assert_eq!(
            shown.chars().count(),
            EXCERPT_CHARS + 3 + " (18002 bytes)".len()
        );
    }

    #[test]
    fn errors_shorten_the_values_they_quote() {
        let tag = "v".repeat(10_240);
        let e = Error::invalid("tag", tag.clone(), "too long");
        let text = e.to_string();
        assert!(text.len() < 150, "{text}");
        assert!(text.starts_with(&format!("invalid tag \"{}", &tag[..60])));
        assert!(text.ends_with("v\" (10240 bytes): too long"), "{text}");
        // The field keeps the value whole.
        let Error::InvalidInput { value, .. } = &e else {
            panic!()
        };
        assert_eq!(value, &tag);
        // A short value is quoted as before.
        assert_eq!(
            Error::invalid("tag", "v1;id", "bad").to_string(),
            r#"invalid tag "v1;id": bad"#
        );

        let file = PathBuf::from("d".repeat(5_000));
        let e = Error::Config {
            file: Some(file),
            location: Some((1, 2)),
            message: "bad".into(),
        };
        assert_eq!(
            e.to_string(),
            format!(
                "{}…{} (5000 bytes):1:2: bad",
                "d".repeat(120),
                "d".repeat(40)
            )
        );
        let e = Error::Store {
            backend: "sqlite",
            location: "s".repeat(300),
            message: "cannot open".into(),
        };
        assert!(e.to_string().ends_with("s (300 bytes): cannot open"), "{e}");
        // A real path is shown whole.
        let blob = format!("/tmp/.tmpAbCdEf/layout/blobs/sha256/{}", "0".repeat(64));
        let e = Error::Store {
            backend: "oci-layout",
            location: blob.clone(),
            message: "corrupt".into(),
        };
        assert_eq!(e.to_string(), format!("oci-layout store {blob}: corrupt"));
    }
}
