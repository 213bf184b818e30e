//! Options of [`OciRegistry`](super::OciRegistry): transport, credentials, timeouts, retries.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Where the credentials for a registry host come from.
///
/// `Debug` never shows a password or token.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CredentialSource {
    /// No credentials.
    Anonymous,
    /// A docker config file (`config.json`): its `auths` entries, `credHelpers` and
    /// `credsStore` (credential helpers `docker-credential-<name>` are run as commands).
    /// `path: None` reads `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`, and means
    /// anonymous access when that file does not exist. A host without an entry is anonymous.
    DockerConfig {
        /// The config file, or `None` for the default location.
        path: Option<PathBuf>,
    },
    /// HTTP Basic credentials (also used to obtain bearer tokens from a token service).
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// A bearer token, sent as is.
    Bearer {
        /// The token.
        token: String,
    },
}

impl Default for CredentialSource {
    /// The docker config at its default location.
    fn default() -> Self {
        CredentialSource::DockerConfig { path: None }
    }
}

impl CredentialSource {
    /// The docker config file at `path`.
    pub fn docker_config(path: impl Into<PathBuf>) -> Self {
        CredentialSource::DockerConfig {
            path: Some(path.into()),
        }
    }

    /// HTTP Basic credentials.
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Self {
        CredentialSource::Basic {
            username: username.into(),
            password: password.into(),
        }
    }

    /// A bearer token.
    pub fn bearer(token: impl Into<String>) -> Self {
        CredentialSource::Bearer {
            token: token.into(),
        }
    }
}

impl fmt::Debug for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialSource::Anonymous => f.write_str("Anonymous"),
            CredentialSource::DockerConfig { path } => {
                f.debug_struct("DockerConfig").field("path", path).finish()
            }
            CredentialSource::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            CredentialSource::Bearer { .. } => f
                .debug_struct("Bearer")
                .field("token", &"<redacted>")
                .finish(),
        }
    }
}

/// How an [`OciRegistry`](super::OciRegistry) talks to registries.
///
/// ```
/// use std::time::Duration;
/// use floe_promotion_oci::{CredentialSource, OciOptions};
/// let options = OciOptions {
///     insecure_hosts: vec!["127.0.0.1:5000".into()],
///     credentials: CredentialSource::docker_config("/etc/floe/docker-config.json"),
///     request_timeout: Duration::from_secs(20),
///     ..OciOptions::default()
/// };
/// assert!(format!("{options:?}").contains("127.0.0.1:5000"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OciOptions {
    /// Hosts (`HOST[:PORT]`, exactly as written in repository locations) reached over plain
    /// HTTP. Every other host is reached over HTTPS with certificate verification.
    pub insecure_hosts: Vec<String>,
    /// Credentials for every host without an entry in `host_credentials`.
    pub credentials: CredentialSource,
    /// Credentials per host (`HOST[:PORT]`), overriding `credentials`.
    pub host_credentials: BTreeMap<String, CredentialSource>,
    /// The time limit for a registry that does not answer or moves no bytes:
    ///
    /// - **connecting** to a registry may take this long, and so may each **read** of an
    ///   answer or of a download (not during a blob upload: see below);
    /// - one attempt of an operation that moves no blob bytes (manifests, tags, HEADs, mounts,
    ///   blob downloads up to their first byte) may take **twice** this (it may start with an
    ///   authentication round trip);
    /// - a **blob transfer** (a streamed copy, an upload, a download) is limited by its
    ///   progress, not by its length: an attempt fails when the side it waits on moves no bytes
    ///   for this long (**idle timeout**: the source sends nothing, or the destination takes no
    ///   more of the upload; the error names that side), and when it has not finished within its
    ///   **deadline**: twice this plus one second per 64 KiB of blob, i.e. an average of at
    ///   least 64 KiB/s. Once the whole upload body is handed to the connection, only the
    ///   deadline bounds the wait for the destination's answer, since the last bytes may still
    ///   sit in socket buffers. Progress is seen as the connection takes more of the body, in
    ///   steps as large as the operating system's socket buffer drains (up to a few MiB), so
    ///   keep this well above the time such a step takes on a slow link.
    pub request_timeout: Duration,
    /// How many times a request is retried after a connection error, a timeout, a 5xx or a
    /// 429 answer. 4xx answers are never retried.
    pub retries: u32,
    /// The wait before the first retry; it doubles for each further retry (at most 10 s).
    pub retry_backoff: Duration,
    /// How many blobs a copy moves at once.
    pub max_concurrent_blobs: usize,
}

impl Default for OciOptions {
    fn default() -> Self {
        OciOptions {
            insecure_hosts: Vec::new(),
            credentials: CredentialSource::default(),
            host_credentials: BTreeMap::new(),
            request_timeout: Duration::from_secs(30),
            retries: 3,
            retry_backoff: Duration::from_millis(200),
            max_concurrent_blobs: 4,
        }
    }
}

impl OciOptions {
    /// Options that reach `hosts` over plain HTTP (and every other host over HTTPS).
    pub fn with_insecure_hosts<I, S>(mut self, hosts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.insecure_hosts
            .extend(hosts.into_iter().map(Into::into));
        self
    }

    /// Options with this [`request_timeout`](Self::request_timeout).
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Options with `credentials` for every host.
    pub fn with_credentials(mut self, credentials: CredentialSource) -> Self {
        self.credentials = credentials;
        self
    }

    /// Options with `credentials` for `host` only.
    pub fn with_host_credentials(
        mut self,
        host: impl Into<String>,
        credentials: CredentialSource,
    ) -> Self {
        self.host_credentials.insert(host.into(), credentials);
        self
    }

    /// The credential source that applies to `host`.
    pub(crate) fn credentials_for(&self, host: &str) -> &CredentialSource {
        self.host_credentials.get(host).unwrap_or(&self.credentials)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let options = OciOptions::default()
            .with_credentials(CredentialSource::basic("alice", "s3cret-pw"))
            .with_host_credentials("ghcr.io", CredentialSource::bearer("tok-123456"));
        let shown = format!("{options:?} {:#?}", options.credentials);
        assert!(shown.contains("alice"), "{shown}");
        assert!(!shown.contains("s3cret-pw"), "{shown}");
        assert!(!shown.contains("tok-123456"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn host_credentials_override_the_default() {
        let options = OciOptions::default()
            .with_credentials(CredentialSource::Anonymous)
            .with_host_credentials("a.example", CredentialSource::basic("u", "p"));
        assert_eq!(
            options.credentials_for("a.example"),
            &CredentialSource::basic("u", "p")
        );
        assert_eq!(
            options.credentials_for("b.example"),
            &CredentialSource::Anonymous
        );
    }
}
