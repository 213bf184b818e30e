//! `artifacts.promotion.webhooks`: the raw entries and their conversion into
//! [`WebhookSettings`], secrets read from the environment variables they name.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};
use serde_saphyr::Spanned;

use super::{Entries, Loader};
use crate::config::webhook::{check_header_name, display_url};
use crate::config::{HeaderValue, MAX_WEBHOOK_RETRIES, Secret, WebhookSettings};
use crate::error::Result;
use crate::history::EventKind;

/// One `webhooks` entry as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebhook {
    url: Spanned<String>,
    #[serde(default)]
    events: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    headers: Option<Entries<Spanned<RawHeaderValue>>>,
    #[serde(default)]
    timeout_seconds: Option<Spanned<u64>>,
    #[serde(default)]
    retry_count: Option<Spanned<u64>>,
    #[serde(default)]
    secret_env: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecretRef {
    secret_env: Spanned<String>,
}

/// A header value: a plain scalar, or `{ secret_env: NAME }`.
enum RawHeaderValue {
    Plain(String),
    Secret(RawSecretRef),
}

impl<'de> Deserialize<'de> for RawHeaderValue {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawHeaderValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a header value: a string, or { secret_env: NAME } to read it from an environment variable")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<RawHeaderValue, E> {
                Ok(RawHeaderValue::Plain(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<RawHeaderValue, E> {
                Ok(RawHeaderValue::Plain(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<RawHeaderValue, E> {
                Ok(RawHeaderValue::Plain(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> std::result::Result<RawHeaderValue, E> {
                Ok(RawHeaderValue::Plain(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<RawHeaderValue, A::Error> {
                RawSecretRef::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawHeaderValue::Secret)
            }
        }
        d.deserialize_any(V)
    }
}

/// Whether `name` is a portable environment variable name.
pub(super) fn env_name_ok(name: &str) -> bool {
    name.len() <= 256
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Loader<'_> {
    /// Every `webhooks` entry, checked where it was written.
    pub(super) fn webhooks(
        &self,
        raw: &Spanned<Vec<Spanned<RawWebhook>>>,
    ) -> Result<Vec<WebhookSettings>> {
        raw.value
            .iter()
            .enumerate()
            .map(|(i, hook)| self.webhook(&format!("artifacts.promotion.webhooks[{i}]"), hook))
            .collect()
    }

    /// A secret read from the variable `name` names; the error names the variable, never a
    /// value.
    fn secret(&self, field: &str, name: &Spanned<String>) -> Result<Secret> {
        let var = name.value.trim();
        if !env_name_ok(var) {
            return Err(self.at(
                name,
                format!(
                    "{field}: {:?} is not an environment variable name (A-Z a-z 0-9 _, not starting with a digit)",
                    crate::Excerpt::new(var).to_string()
                ),
            ));
        }
        match (self.env)(var) {
            Some(value) if !value.is_empty() => Ok(Secret::new(value)),
            Some(_) => Err(self.at(
                name,
                format!("{field}: the environment variable {var} is empty; set it to the secret"),
            )),
            None => Err(self.at(
                name,
                format!(
                    "{field}: the environment variable {var} is not set; secrets are read from the environment, never from the manifest"
                ),
            )),
        }
    }

    fn webhook(&self, field: &str, raw: &Spanned<RawWebhook>) -> Result<WebhookSettings> {
        let w = &raw.value;
        // The URL is never quoted: it may hold credentials.
        display_url(&w.url.value).map_err(|e| self.at(&w.url, format!("{field}.url: {e}")))?;
        let mut hook = WebhookSettings::new(w.url.value.trim());
        for name in w.events.iter().flatten() {
            let kind: EventKind = name.value.trim().parse().map_err(|_| {
                self.at(
                    name,
                    format!(
                        "{field}.events: unknown event {:?} (known: {})",
                        crate::Excerpt::new(&name.value).to_string(),
                        EventKind::ALL.map(EventKind::as_str).join(", ")
                    ),
                )
            })?;
            if !hook.events.contains(&kind) {
                hook.events.push(kind);
            }
        }
        for (name, value) in w.headers.iter().flat_map(|h| &h.0) {
            check_header_name(&name.value)
                .map_err(|e| self.at(name, format!("{field}.headers: {e}")))?;
            let f = format!("{field}.headers.{}", name.value);
            let value = match &value.value {
                RawHeaderValue::Plain(v) => {
                    if v.chars().any(|c| c != '\t' && c.is_control()) {
                        return Err(self.at(
                            value,
                            format!(
                                "{f}: a header value may not hold control characters (line breaks)"
                            ),
                        ));
                    }
                    HeaderValue::Plain(v.clone())
                }
                RawHeaderValue::Secret(s) => {
                    let secret = self.secret(&format!("{f}.secret_env"), &s.secret_env)?;
                    if secret.expose().chars().any(|c| c != '\t' && c.is_control()) {
                        return Err(self.at(
                            &s.secret_env,
                            format!(
                                "{f}.secret_env: the value of {} holds control characters (line breaks), which a header cannot carry",
                                s.secret_env.value.trim()
                            ),
                        ));
                    }
                    HeaderValue::Secret {
                        env: s.secret_env.value.trim().to_string(),
                        value: secret,
                    }
                }
            };
            hook.headers.push((name.value.clone(), value));
        }
        if let Some(t) = &w.timeout_seconds {
            hook.timeout = self.seconds(&format!("{field}.timeout_seconds"), t)?;
            if hook.timeout > Duration::from_secs(300) {
                return Err(self.at(
                    t,
                    format!("{field}.timeout_seconds: at most 300 (a request that takes longer holds up its queue)"),
                ));
            }
        }
        if let Some(r) = &w.retry_count {
            if r.value > u64::from(MAX_WEBHOOK_RETRIES) {
                return Err(self.at(
                    r,
                    format!(
                        "{field}.retry_count: {} is more than {MAX_WEBHOOK_RETRIES}",
                        r.value
                    ),
                ));
            }
            hook.retry_count = u32::try_from(r.value).unwrap_or(MAX_WEBHOOK_RETRIES);
        }
        if let Some(name) = &w.secret_env {
            let secret = self.secret(&format!("{field}.secret_env"), name)?;
            hook.secret = Some((name.value.trim().to_string(), secret));
        }
        hook.validate(field).map_err(|m| self.at(raw, m))?;
        Ok(hook)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::Error;
    use crate::config::{EnvironmentConfig, parse_manifest_with_env};

    const HEAD: &str = "artifacts:\n  registry: { uri: oci://registry.example.com/floe }\n  promotion:\n    environments: [{ name: dev }, { name: prod }]\n    webhooks:\n";

    fn env(name: &str) -> Option<String> {
        match name {
            "HOOK_SECRET" => Some("whsec_c2VjcmV0LWtleS1mb3ItdGVzdHM=".into()),
            "HOOK_TOKEN" => Some("Bearer t0ken-value".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn load(hooks: &str) -> crate::Result<crate::config::InMemoryConfig> {
        parse_manifest_with_env(
            &format!("{HEAD}{hooks}"),
            Some(Path::new("/repo/manifest.yaml")),
            &env,
        )
    }

    /// The error's location and message.
    fn refused(hooks: &str) -> ((usize, usize), String) {
        match load(hooks) {
            Err(Error::Config {
                file,
                location,
                message,
            }) => {
                assert_eq!(file.as_deref(), Some(Path::new("/repo/manifest.yaml")));
                (location.expect("a location"), message)
            }
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn a_full_entry_loads() {
        let config = load(
            "      - url: https://hooks.example.com/floe\n        events: [promotion_succeeded, rollback_succeeded]\n        headers:\n          X-Team: platform\n          Authorization: { secret_env: HOOK_TOKEN }\n        timeout_seconds: 5\n        retry_count: 2\n        secret_env: HOOK_SECRET\n      - url: http://127.0.0.1:8080/all\n",
        )
        .expect("loads");
        let hooks = &config.settings().webhooks;
        assert_eq!(hooks.len(), 2);
        assert_eq!(hooks[0].events.len(), 2);
        assert_eq!(hooks[0].retry_count, 2);
        assert_eq!(hooks[0].timeout.as_secs(), 5);
        assert_eq!(hooks[0].headers[1].1.expose(), "Bearer t0ken-value");
        assert_eq!(
            hooks[0].secret.as_ref().map(|(_, s)| s.expose()),
            Some("whsec_c2VjcmV0LWtleS1mb3ItdGVzdHM=")
        );
        assert!(hooks[1].events.is_empty() && hooks[1].secret.is_none());
        let printed = format!("{:?}", config.settings());
        assert!(!printed.contains("t0ken-value") && !printed.contains("c2VjcmV0"));
    }

    #[test]
    fn a_missing_secret_names_field_line_column_and_variable() {
        let (at, message) = refused(
            "      - url: https://hooks.example.com/floe\n        secret_env: FLOE_HOOK_SECRET\n",
        );
        assert_eq!(at, (7, 21));
        assert!(
            message.contains("artifacts.promotion.webhooks[0].secret_env")
                && message.contains("FLOE_HOOK_SECRET")
                && message.contains("not set"),
            "{message}"
        );
        let (at, message) =
            refused("      - url: https://hooks.example.com/floe\n        secret_env: EMPTY\n");
        assert_eq!(at, (7, 21));
        assert!(message.contains("EMPTY is empty"), "{message}");
        let (at, message) = refused(
            "      - url: https://hooks.example.com/floe\n        headers:\n          Authorization: { secret_env: NOPE }\n",
        );
        assert_eq!(at.0, 8);
        assert!(
            message.contains("webhooks[0].headers.Authorization.secret_env")
                && message.contains("NOPE"),
            "{message}"
        );
    }

    #[test]
    fn an_unknown_event_is_named() {
        let (at, message) = refused(
            "      - url: https://hooks.example.com/floe\n        events: [promotion_succeeded, promoted]\n",
        );
        // The parser points at the flow item (its column, or the space before it).
        assert_eq!(at.0, 7);
        assert!((39..=40).contains(&at.1), "{at:?}");
        assert!(
            message.contains("artifacts.promotion.webhooks[0].events")
                && message.contains("\"promoted\"")
                && message.contains("promotion_succeeded"),
            "{message}"
        );
    }

    #[test]
    fn a_bad_url_is_refused_without_quoting_it() {
        let (at, message) = refused("      - url: ftp://user:pw@files.example.com/in\n");
        assert_eq!(at, (6, 14));
        assert!(
            message.contains("webhooks[0].url") && message.contains("ftp"),
            "{message}"
        );
        assert!(!message.contains("pw@"), "{message}");
        let (at, message) = refused("      - url: not a url\n");
        assert_eq!(at, (6, 14));
        assert!(message.contains("not a URL"), "{message}");
    }

    #[test]
    fn limits_and_header_names_are_checked() {
        let (at, message) =
            refused("      - url: https://h.example.com/\n        timeout_seconds: 0\n");
        assert_eq!(at.0, 7);
        assert!(message.contains("timeout_seconds"), "{message}");
        let (_, message) =
            refused("      - url: https://h.example.com/\n        retry_count: 11\n");
        assert!(
            message.contains("retry_count: 11 is more than 10"),
            "{message}"
        );
        let (_, message) =
            refused("      - url: https://h.example.com/\n        headers: { \"Bad Name\": x }\n");
        assert!(message.contains("not a header name"), "{message}");
        let (_, message) = refused(
            "      - url: https://h.example.com/\n        headers: { webhook-signature: x }\n",
        );
        assert!(message.contains("set by the notifier"), "{message}");
        let (_, message) =
            refused("      - url: https://h.example.com/\n        secret_env: \"A=B\"\n");
        assert!(
            message.contains("not an environment variable name"),
            "{message}"
        );
        let (_, message) = refused("      - url: https://h.example.com/\n        sekret: X\n");
        assert!(message.contains("sekret"), "{message}");
    }

    #[test]
    fn garbage_never_panics() {
        for hooks in [
            "      - 42\n",
            "      - url: [1, 2]\n",
            "      - url: https://h.example.com/\n        events: promotion_succeeded\n",
            "      - url: https://h.example.com/\n        headers: [a, b]\n",
            "      - url: https://h.example.com/\n        headers: { A: { secret_env: 3 } }\n",
            "      - url: https://h.example.com/\n        retry_count: -1\n",
            "      - url: https://h.example.com/\n        retry_count: 99999999999999999999999\n",
            "      - url: \"https://\\u0000/\"\n",
            "      - {}\n",
            "      x\n",
        ] {
            assert!(load(hooks).is_err(), "{hooks}");
        }
    }
}
