//! Mapping of PostgreSQL failures into the core's [`Error`]: every message names the server by
//! its redacted URL, and never holds the password.

use floe_promotion::Error;
use tokio_postgres::error::SqlState;

/// The backend name used in [`Error::Store`].
pub(crate) const BACKEND: &str = "postgres";

/// How a store names its server in messages: the URL with the password replaced by `***`.
#[derive(Clone, Debug)]
pub(crate) struct Location {
    /// The redacted URL.
    pub(crate) name: String,
    /// The password, scrubbed from every message (a driver message might quote it).
    secrets: Vec<String>,
}

impl Location {
    pub(crate) fn new(url: &str) -> Location {
        let mut secrets = Vec::new();
        if let Ok(u) = url::Url::parse(url) {
            secrets.extend(u.password().map(str::to_string));
            secrets.extend(
                u.query_pairs()
                    .filter(|(k, _)| k.eq_ignore_ascii_case("password"))
                    .map(|(_, v)| v.into_owned()),
            );
        }
        secrets.retain(|s| !s.is_empty());
        Location {
            name: redact_url(url),
            secrets,
        }
    }

    /// `message` without the password.
    pub(crate) fn scrub(&self, message: impl Into<String>) -> String {
        let mut message = message.into();
        for secret in &self.secrets {
            message = message.replace(secret.as_str(), "***");
        }
        message
    }

    /// A store error about this server.
    pub(crate) fn store(&self, message: impl Into<String>) -> Error {
        Error::Store {
            backend: BACKEND,
            location: self.name.clone(),
            message: self.scrub(message),
        }
    }

    /// The server could not be reached or refused for now: retrying may succeed.
    pub(crate) fn unavailable(&self, message: impl Into<String>) -> Error {
        Error::Unavailable {
            registry: self.name.clone(),
            message: self.scrub(message),
        }
    }

    /// Maps an error of the driver raised while doing `action`.
    pub(crate) fn sql(&self, action: &str, e: tokio_postgres::Error) -> Error {
        let detail = e.to_string();
        let detail = match e.as_db_error() {
            Some(db) => format!("{detail}: {}", db.message()),
            None => detail,
        };
        if is_transient(&e) {
            self.unavailable(format!(
                "{action}: the PostgreSQL server is unavailable: {detail}"
            ))
        } else {
            self.store(format!("{action}: {detail}"))
        }
    }

    /// Maps an error of the connection pool raised while doing `action`.
    pub(crate) fn pool(&self, action: &str, e: deadpool_postgres::PoolError) -> Error {
        match e {
            deadpool_postgres::PoolError::Backend(e) => self.sql(action, e),
            other => self.unavailable(format!(
                "{action}: no connection to the PostgreSQL server: {other}"
            )),
        }
    }
}

/// Whether `e` says the server is (for now) unreachable, shutting down or overloaded, or the
/// transaction lost a race it may win when retried.
fn is_transient(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(code) => {
            let c = code.code();
            c.starts_with("08")
                || c.starts_with("57P")
                || c.starts_with("53")
                || *code == SqlState::T_R_SERIALIZATION_FAILURE
                || *code == SqlState::T_R_DEADLOCK_DETECTED
        }
        // No SQLSTATE: an I/O error, a timeout or a closed socket.
        None => e.as_db_error().is_none(),
    }
}

/// `url` with its password replaced by `***`; anything that does not parse as a URL is shown
/// only by its scheme, since it may be a key=value string holding a password.
pub(crate) fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            // Query parameters may also hold a password.
            let pairs: Vec<(String, String)> = u
                .query_pairs()
                .map(|(k, v)| {
                    let v = if k.eq_ignore_ascii_case("password") {
                        "***".to_string()
                    } else {
                        v.into_owned()
                    };
                    (k.into_owned(), v)
                })
                .collect();
            if !pairs.is_empty() {
                u.query_pairs_mut().clear().extend_pairs(pairs);
            }
            u.to_string().replace("%2A%2A%2A", "***")
        }
        Err(_) => "postgres connection string (not shown)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        let shown = redact_url("postgres://floe:s3cret@db.example:5432/floe?sslmode=require");
        assert_eq!(
            shown,
            "postgres://floe:***@db.example:5432/floe?sslmode=require"
        );
        let shown = redact_url("postgres://floe@db/floe?password=s3cret");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert_eq!(
            redact_url("host=db password=s3cret"),
            "postgres connection string (not shown)"
        );
        let loc = Location::new("postgres://floe:s3cret@db/floe");
        let e = loc.store("failed near s3cret");
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }
}
