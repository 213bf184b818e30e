//! Webhook endpoints (`artifacts.promotion.webhooks`) and the secrets they carry.
//!
//! Secrets are read from environment variables when the manifest is loaded, never from the
//! manifest itself, and are kept in [`Secret`], whose `Debug` and `Display` print
//! `<redacted>`: printing settings, logging them or putting them in an error never shows one.

use std::fmt;
use std::time::Duration;

use crate::history::EventKind;

/// The most retries a webhook may ask for.
pub const MAX_WEBHOOK_RETRIES: u32 = 10;

/// A secret value (a signing key, a header value). `Debug` and `Display` print `<redacted>`;
/// [`expose`](Secret::expose) is the only way to the value.
///
/// ```
/// use floe_promotion::config::Secret;
/// let s = Secret::new("hunter2");
/// assert_eq!(format!("{s} {s:?}"), "<redacted> <redacted>");
/// assert_eq!(s.expose(), "hunter2");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that must send or use it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A header value sent with each webhook request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderValue {
    /// Written in the manifest as is.
    Plain(String),
    /// Read from an environment variable at load (`{ secret_env: NAME }`); never printed.
    Secret {
        /// The variable it was read from.
        env: String,
        /// The value.
        value: Secret,
    },
}

impl HeaderValue {
    /// The value to send.
    pub fn expose(&self) -> &str {
        match self {
            HeaderValue::Plain(v) => v,
            HeaderValue::Secret { value, .. } => value.expose(),
        }
    }
}

/// One webhook endpoint: where to POST, which events, and how.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    /// The endpoint, an `http` or `https` URL. It may hold credentials (userinfo, a query
    /// token): only [`display_url`](Self::display_url) is ever printed.
    pub url: String,
    /// The event kinds sent; empty: every kind.
    pub events: Vec<EventKind>,
    /// Extra request headers, in manifest order.
    pub headers: Vec<(String, HeaderValue)>,
    /// The limit of one request.
    pub timeout: Duration,
    /// How many times a failed request (connection error, timeout, 5xx, 429) is retried.
    pub retry_count: u32,
    /// The Standard Webhooks signing secret (`whsec_<base64>` or raw) and the variable it
    /// was read from; requests are unsigned without one.
    pub secret: Option<(String, Secret)>,
}

impl WebhookSettings {
    /// An endpoint for every event, no headers, a 10 s timeout, 3 retries, no secret.
    pub fn new(url: impl Into<String>) -> Self {
        WebhookSettings {
            url: url.into(),
            events: vec![],
            headers: vec![],
            timeout: Duration::from_secs(10),
            retry_count: 3,
            secret: None,
        }
    }

    /// Sets the signing secret (read from `env`).
    pub fn with_secret(mut self, env: impl Into<String>, secret: Secret) -> Self {
        self.secret = Some((env.into(), secret));
        self
    }

    /// Whether events of `kind` are sent to this endpoint.
    pub fn accepts(&self, kind: EventKind) -> bool {
        self.events.is_empty() || self.events.contains(&kind)
    }

    /// The URL without userinfo, query or fragment: `scheme://host:port/path`. What names,
    /// logs and errors show of the endpoint.
    pub fn display_url(&self) -> String {
        display_url(&self.url).unwrap_or_else(|_| "<invalid url>".to_string())
    }

    /// Checks the URL (http or https, with a host), the timeout (> 0), the retry count
    /// (at most [`MAX_WEBHOOK_RETRIES`]) and the header names and values; the message names
    /// the field after `at`.
    pub fn validate(&self, at: &str) -> std::result::Result<(), String> {
        display_url(&self.url).map_err(|e| format!("{at}.url: {e}"))?;
        if self.timeout.is_zero() {
            return Err(format!("{at}.timeout_seconds: must be at least 1"));
        }
        if self.retry_count > MAX_WEBHOOK_RETRIES {
            return Err(format!(
                "{at}.retry_count: {} is more than {MAX_WEBHOOK_RETRIES}",
                self.retry_count
            ));
        }
        for (name, value) in &self.headers {
            check_header_name(name).map_err(|e| format!("{at}.headers: {e}"))?;
            if !value.expose().chars().all(|c| c == '\t' || !c.is_control()) {
                return Err(format!(
                    "{at}.headers.{name}: a header value may not hold control characters (line breaks)"
                ));
            }
        }
        Ok(())
    }
}

/// Headers the notifier writes itself; the manifest may not set them.
const RESERVED_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "host",
    "transfer-encoding",
    "connection",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];

/// An HTTP header name: an RFC 9110 token, not one the notifier sets.
pub(crate) fn check_header_name(name: &str) -> std::result::Result<(), String> {
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || name.len() > 256 || !name.chars().all(token) {
        return Err(format!(
            "{:?} is not a header name (letters, digits and !#$%&'*+-.^_`|~ only)",
            crate::Excerpt::new(name).to_string()
        ));
    }
    if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(format!(
            "{name} is set by the notifier itself and may not be configured"
        ));
    }
    Ok(())
}

/// `scheme://host:port/path` of an http(s) URL, or why it is not one. The error never quotes
/// the URL (it may hold credentials).
pub(crate) fn display_url(raw: &str) -> std::result::Result<String, String> {
    let url = url::Url::parse(raw.trim()).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "a {}: URL cannot receive webhooks: expected http:// or https://",
            url.scheme()
        ));
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or("the URL has no host")?;
    let port = url.port_or_known_default().ok_or("the URL has no port")?;
    Ok(format!("{}://{host}:{port}{}", url.scheme(), url.path()))
}

impl fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("url", &self.display_url())
            .field("events", &self.events)
            .field("headers", &self.headers)
            .field("timeout", &self.timeout)
            .field("retry_count", &self.retry_count)
            .field("secret", &self.secret)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_prints_no_secret() {
        let mut hook =
            WebhookSettings::new("https://user:pa55word@hooks.example.com/in?token=t0ken")
                .with_secret("HOOK_SECRET", Secret::new("whsec_c2VjcmV0LWtleQ=="));
        hook.headers.push((
            "Authorization".into(),
            HeaderValue::Secret {
                env: "HOOK_TOKEN".into(),
                value: Secret::new("Bearer s3cr3t-token"),
            },
        ));
        hook.headers
            .push(("X-Team".into(), HeaderValue::Plain("platform".into())));
        let printed = format!("{hook:?} {hook:#?}");
        for secret in ["c2VjcmV0LWtleQ", "s3cr3t-token", "pa55word", "t0ken"] {
            assert!(!printed.contains(secret), "{secret} in {printed}");
        }
        assert!(printed.contains("<redacted>"));
        assert!(printed.contains("https://hooks.example.com:443/in"));
        assert!(printed.contains("platform"), "plain headers are shown");
    }

    #[test]
    fn urls_and_limits_are_checked() {
        let ok = WebhookSettings::new("http://127.0.0.1:9/hook");
        assert_eq!(ok.validate("w"), Ok(()));
        assert_eq!(ok.display_url(), "http://127.0.0.1:9/hook");
        for bad in ["ftp://x/y", "not a url", "file:///etc/passwd", "https://"] {
            assert!(WebhookSettings::new(bad).validate("w").is_err(), "{bad}");
        }
        let mut slow = ok.clone();
        slow.timeout = Duration::ZERO;
        assert!(slow.validate("w").unwrap_err().contains("timeout_seconds"));
        let mut eager = ok.clone();
        eager.retry_count = 11;
        assert!(eager.validate("w").unwrap_err().contains("retry_count"));
        let mut headers = ok.clone();
        headers
            .headers
            .push(("Bad Header".into(), HeaderValue::Plain("x".into())));
        assert!(headers.validate("w").is_err());
        let mut reserved = ok;
        reserved
            .headers
            .push(("Webhook-Signature".into(), HeaderValue::Plain("x".into())));
        assert!(
            reserved
                .validate("w")
                .unwrap_err()
                .contains("set by the notifier")
        );
    }
}
