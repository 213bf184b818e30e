//! `artifacts.promotion.server`: the raw section and its conversion into [`ServerSettings`].

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::Loader;
use crate::config::{OidcIssuer, ServerSettings, TlsFiles};
use crate::error::Result;

/// The `server` section as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    #[serde(default)]
    identity: Option<RawIdentity>,
    #[serde(default)]
    tls: Option<RawTls>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdentity {
    #[serde(default)]
    oidc: Vec<Spanned<RawOidc>>,
    #[serde(default)]
    static_tokens: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOidc {
    issuer: Spanned<String>,
    audience: Spanned<String>,
    #[serde(default)]
    jwks_uri: Option<Spanned<String>>,
    #[serde(default)]
    actor_claim: Option<Spanned<String>>,
    #[serde(default)]
    groups_claim: Option<Spanned<String>>,
    #[serde(default)]
    actor_prefix: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: Spanned<String>,
    key: Spanned<String>,
}

impl Loader<'_> {
    /// The `server` section, checked where it was written; relative paths are resolved
    /// against the manifest's directory.
    pub(super) fn server(&self, raw: &RawServer) -> Result<ServerSettings> {
        let mut settings = ServerSettings::default();
        if let Some(identity) = &raw.identity {
            for (i, oidc) in identity.oidc.iter().enumerate() {
                let field = format!("artifacts.promotion.server.identity.oidc[{i}]");
                settings.oidc.push(self.oidc(&field, oidc)?);
            }
            if let Some(file) = &identity.static_tokens {
                settings.static_tokens =
                    Some(self.server_path("server.identity.static_tokens", file)?);
            }
        }
        if let Some(tls) = &raw.tls {
            settings.tls = Some(TlsFiles {
                cert: self.server_path("server.tls.cert", &tls.cert)?,
                key: self.server_path("server.tls.key", &tls.key)?,
            });
        }
        Ok(settings)
    }

    fn server_path(&self, field: &str, value: &Spanned<String>) -> Result<std::path::PathBuf> {
        let v = value.value.trim();
        if v.is_empty() {
            return Err(self.at(value, format!("{field}: a path is required")));
        }
        Ok(self.path(v))
    }

    fn oidc(&self, field: &str, raw: &Spanned<RawOidc>) -> Result<OidcIssuer> {
        let o = &raw.value;
        let https_url = |name: &str, v: &Spanned<String>| -> Result<String> {
            let s = v.value.trim();
            let url = url::Url::parse(s).map_err(|e| {
                self.at(
                    v,
                    format!(
                        "{field}.{name}: {:?} is not a URL: {e}",
                        crate::Excerpt::new(s).to_string()
                    ),
                )
            })?;
            let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
            if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
                return Err(self.at(
                    v,
                    format!("{field}.{name}: expected an https URL (http only on loopback)"),
                ));
            }
            Ok(s.to_string())
        };
        let claim = |name: &str, v: &Option<Spanned<String>>, default: &str| -> Result<String> {
            match v {
                None => Ok(default.to_string()),
                Some(v) if v.value.trim().is_empty() => {
                    Err(self.at(v, format!("{field}.{name}: a claim name is required")))
                }
                Some(v) => Ok(v.value.trim().to_string()),
            }
        };
        let audience = o.audience.value.trim();
        if audience.is_empty() {
            return Err(self.at(
                &o.audience,
                format!("{field}.audience: an audience is required"),
            ));
        }
        let mut issuer = OidcIssuer::new(https_url("issuer", &o.issuer)?, audience);
        issuer.jwks_uri = o
            .jwks_uri
            .as_ref()
            .map(|v| https_url("jwks_uri", v))
            .transpose()?;
        issuer.actor_claim = claim("actor_claim", &o.actor_claim, "sub")?;
        issuer.groups_claim = claim("groups_claim", &o.groups_claim, "groups")?;
        issuer.actor_prefix = o
            .actor_prefix
            .as_ref()
            .map(|v| v.value.trim().to_string())
            .unwrap_or_default();
        Ok(issuer)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{EnvironmentConfig, parse_manifest};

    const HEAD: &str = "artifacts:\n  registry: { uri: oci://registry.example.com/floe }\n  promotion:\n    environments: [{ name: dev }, { name: prod }]\n    server:\n";

    fn parse(section: &str) -> crate::Result<crate::config::InMemoryConfig> {
        parse_manifest(
            &format!("{HEAD}{section}"),
            Some(std::path::Path::new("/etc/floe/manifest.yaml")),
        )
    }

    #[test]
    fn a_full_section_is_read_with_paths_beside_the_manifest() {
        let config = parse(
            "      identity:\n        oidc:\n          - issuer: https://token.example.com\n            audience: floe\n            groups_claim: teams\n        static_tokens: tokens.yaml\n      tls: { cert: tls/cert.pem, key: /abs/key.pem }\n",
        )
        .unwrap();
        let server = config.settings().server.clone().unwrap();
        assert_eq!(server.oidc[0].issuer, "https://token.example.com");
        assert_eq!(server.oidc[0].audience, "floe");
        assert_eq!(server.oidc[0].actor_claim, "sub");
        assert_eq!(server.oidc[0].groups_claim, "teams");
        assert_eq!(
            server.static_tokens.as_deref(),
            Some(std::path::Path::new("/etc/floe/tokens.yaml"))
        );
        let tls = server.tls.unwrap();
        assert_eq!(tls.cert, std::path::Path::new("/etc/floe/tls/cert.pem"));
        assert_eq!(tls.key, std::path::Path::new("/abs/key.pem"));
    }

    #[test]
    fn no_section_means_no_server_settings() {
        let config = parse_manifest(HEAD.trim_end_matches("    server:\n"), None).unwrap();
        assert!(config.settings().server.is_none());
    }

    #[test]
    fn a_plain_http_issuer_off_loopback_is_refused_naming_the_field() {
        let e = parse("      identity:\n        oidc: [{ issuer: http://token.example.com, audience: floe }]\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("server.identity.oidc[0].issuer") && e.contains("https"),
            "{e}"
        );
    }

    #[test]
    fn an_unknown_key_and_an_empty_audience_are_refused() {
        let e = parse("      identity: { tokens: x }\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("tokens"), "{e}");
        let e = parse(
            "      identity:\n        oidc: [{ issuer: https://t.example.com, audience: ' ' }]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("oidc[0].audience"), "{e}");
    }
}
