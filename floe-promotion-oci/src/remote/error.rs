//! Mapping of oci-client errors into the core's error variants, and which ones are retried.

use floe_promotion::{Error, Excerpt};
use oci_client::errors::{OciDistributionError, OciEnvelope, OciErrorCode};

/// A failed attempt: the error to report and whether another attempt may succeed.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) error: Error,
    pub(crate) retryable: bool,
}

impl Failure {
    /// A failure that retrying cannot fix.
    pub(crate) fn fatal(error: Error) -> Self {
        Failure {
            error,
            retryable: false,
        }
    }

    /// A transient failure of `host` (connection, timeout, 5xx).
    pub(crate) fn unavailable(host: &str, message: impl Into<String>) -> Self {
        Failure {
            error: Error::Unavailable {
                registry: host.to_string(),
                message: message.into(),
            },
            retryable: true,
        }
    }
}

/// The message of an error and its sources, joined with ": ", without repeats.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// Text a registry sent (an error body, an error envelope's messages) as a message shows it:
/// on one line, shortened to its start and end when long (a registry may answer with a page
/// of HTML, or anything).
fn registry_text(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    Excerpt::location(&line).to_string()
}

fn envelope_message(e: &OciEnvelope) -> String {
    e.errors
        .iter()
        .map(|x| {
            let code = serde_json::to_value(&x.code)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_else(|| format!("{:?}", x.code));
            if x.message.is_empty() {
                code
            } else {
                format!("{code}: {}", x.message)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Whether a registry refused a manifest write because the tag is immutable (Harbor, ECR,
/// Artifactory and others answer with their own codes; they all say "immutable").
pub(crate) fn is_immutable_tag_refusal(e: &OciDistributionError) -> bool {
    let text = match e {
        OciDistributionError::RegistryError { envelope, .. } => envelope_message(envelope),
        OciDistributionError::ServerError { code, message, .. } if (400..500).contains(code) => {
            message.clone()
        }
        _ => return false,
    };
    text.to_ascii_lowercase().contains("immutable")
}

/// Classifies an oci-client error for an operation on `target` (e.g. `HOST/REPO:TAG`) at `host`.
/// `what` names the object looked for, for "not found" messages ("manifest", "blob").
pub(crate) fn classify(e: &OciDistributionError, host: &str, what: &str, target: &str) -> Failure {
    use OciDistributionError as E;
    let not_found =
        |detail: String| Failure::fatal(Error::not_found(format!("{what} {target} ({detail})")));
    let unauthorized = |detail: String| {
        Failure::fatal(Error::Unauthorized {
            registry: host.to_string(),
            message: format!("{what} {target}: {detail}"),
        })
    };
    match e {
        // Some calls (`blob_exists`) turn an HTTP error status into a request error.
        E::RequestError(re) if re.status().is_some() => {
            let code = re.status().map(|s| s.as_u16()).unwrap_or_default();
            classify_status(code, "", host, what, target)
        }
        E::RequestError(_) | E::IoError(_) => {
            Failure::unavailable(host, format!("{what} {target}: {}", chain(e)))
        }
        E::ServerError { code, message, url } if (400..500).contains(code) => {
            // Some calls (manifest and blob uploads) do not parse the error body; do it here.
            match serde_json::from_str::<OciEnvelope>(message) {
                // The status decides where it is unambiguous; the codes say the rest.
                Ok(envelope) if matches!(code, 401 | 403 | 404) => {
                    classify_status(*code, &envelope_message(&envelope), host, what, target)
                }
                Ok(envelope) if !envelope.errors.is_empty() => classify(
                    &E::RegistryError {
                        envelope,
                        url: url.clone(),
                    },
                    host,
                    what,
                    target,
                ),
                _ => classify_status(*code, message, host, what, target),
            }
        }
        E::ServerError { code, message, .. } => classify_status(*code, message, host, what, target),
        E::RegistryError { envelope, .. } => {
            let detail = registry_text(&envelope_message(envelope));
            let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|x| &x.code).collect();
            if codes.iter().any(|c| {
                matches!(
                    c,
                    OciErrorCode::BlobUnknown
                        | OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::ManifestBlobUnknown
                        | OciErrorCode::NotFound
                )
            }) {
                not_found(detail)
            } else if codes
                .iter()
                .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
            {
                unauthorized(detail)
            } else if codes
                .iter()
                .any(|c| matches!(c, OciErrorCode::Toomanyrequests))
            {
                Failure::unavailable(host, format!("{what} {target}: {detail}"))
            } else {
                Failure::fatal(Error::invalid(
                    "registry request",
                    target,
                    format!("{host} refused it: {detail}"),
                ))
            }
        }
        E::UnauthorizedError { .. } => {
            unauthorized("HTTP 401: the credentials were refused or are missing".into())
        }
        E::AuthenticationFailure(reason) => unauthorized(format!(
            "the token service refused the credentials: {}",
            registry_text(reason)
        )),
        E::ImageManifestNotFoundError(detail) => not_found(detail.clone()),
        E::DigestError(_) => Failure::fatal(Error::Store {
            backend: "oci",
            location: target.to_string(),
            message: format!("content from {host} does not match its digest: {e}"),
        }),
        other => Failure::fatal(Error::Store {
            backend: "oci",
            location: target.to_string(),
            message: format!("{what}: {}", chain(other)),
        }),
    }
}

/// Classifies an HTTP status whose body is not an OCI error envelope.
fn classify_status(code: u16, message: &str, host: &str, what: &str, target: &str) -> Failure {
    let detail = match registry_text(message).as_str() {
        "" => format!("HTTP {code}"),
        text => format!("HTTP {code} {text}"),
    };
    match code {
        401 | 403 => Failure::fatal(Error::Unauthorized {
            registry: host.to_string(),
            message: format!("{what} {target}: {detail}"),
        }),
        404 => Failure::fatal(Error::not_found(format!("{what} {target} ({detail})"))),
        408 | 429 | 500..=599 => Failure::unavailable(host, format!("{what} {target}: {detail}")),
        _ => Failure::fatal(Error::invalid(
            "registry request",
            target,
            format!("{host} refused it: {detail}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_client::errors::OciError;

    fn registry_error(code: OciErrorCode, message: &str) -> OciDistributionError {
        OciDistributionError::RegistryError {
            envelope: OciEnvelope {
                errors: vec![OciError {
                    code,
                    message: message.into(),
                    detail: serde_json::Value::Null,
                }],
            },
            url: "http://h/v2/r/manifests/t".into(),
        }
    }

    fn server_error(code: u16) -> OciDistributionError {
        OciDistributionError::ServerError {
            code,
            url: "http://h/v2/".into(),
            message: "boom".into(),
        }
    }

    #[test]
    fn codes_map_to_variants_with_registry_and_reference() {
        let f = classify(
            &registry_error(OciErrorCode::ManifestUnknown, "manifest unknown"),
            "h:5000",
            "manifest",
            "h:5000/app:v1",
        );
        assert!(!f.retryable);
        assert!(matches!(f.error, Error::NotFound { .. }), "{:?}", f.error);
        assert!(f.error.to_string().contains("h:5000/app:v1"), "{}", f.error);

        let f = classify(
            &registry_error(
                OciErrorCode::Denied,
                "requested access to the resource is denied",
            ),
            "h:5000",
            "manifest",
            "h:5000/app:v1",
        );
        assert!(matches!(f.error, Error::Unauthorized { .. }));
        assert!(!f.retryable);
        assert!(f.error.to_string().contains("h:5000"));
    }

    #[test]
    fn server_errors_retry_client_errors_do_not() {
        for code in [500, 502, 503, 504, 429, 408] {
            let f = classify(&server_error(code), "h", "manifest", "h/app:v1");
            assert!(f.retryable, "{code}");
            assert!(matches!(f.error, Error::Unavailable { .. }), "{code}");
        }
        for (code, unauthorized) in [(400, false), (401, true), (403, true), (405, false)] {
            let f = classify(&server_error(code), "h", "manifest", "h/app:v1");
            assert!(!f.retryable, "{code}");
            assert_eq!(
                matches!(f.error, Error::Unauthorized { .. }),
                unauthorized,
                "{code}: {:?}",
                f.error
            );
        }
        let f = classify(&server_error(404), "h", "blob", "h/app@x");
        assert!(matches!(f.error, Error::NotFound { .. }));
    }

    #[test]
    fn envelopes_in_unparsed_bodies_are_read() {
        let e = OciDistributionError::ServerError {
            code: 400,
            url: "http://h/v2/app/manifests/v1".into(),
            message: r#"{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry","detail":"sha256:aa"}]}"#.into(),
        };
        let f = classify(&e, "h", "manifest", "h/app:v1");
        assert!(matches!(f.error, Error::NotFound { .. }), "{:?}", f.error);
        assert!(
            f.error.to_string().contains("MANIFEST_BLOB_UNKNOWN"),
            "{}",
            f.error
        );
    }

    #[test]
    fn immutable_tag_refusals_are_recognised() {
        assert!(is_immutable_tag_refusal(&registry_error(
            OciErrorCode::Other("TAG_IMMUTABLE".into()),
            "tag v1 is immutable"
        )));
        assert!(is_immutable_tag_refusal(&OciDistributionError::ServerError {
            code: 400,
            url: "u".into(),
            message: "The image tag 'v1' already exists in the repository and cannot be overwritten because the repository is immutable.".into(),
        }));
        assert!(!is_immutable_tag_refusal(&registry_error(
            OciErrorCode::ManifestInvalid,
            "manifest invalid"
        )));
        assert!(!is_immutable_tag_refusal(&server_error(500)));
    }
}
