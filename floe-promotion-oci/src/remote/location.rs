//! Parsing of remote repository locations: `HOST[:PORT]/PATH`.

use std::fmt;

use floe_promotion::{ArtifactName, Digest, Error, Repository, Result, Tag};
use oci_client::Reference;

/// A repository on a remote registry: the host (with port) and the repository path.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct RemoteRepo {
    host: String,
    path: String,
}

impl fmt::Display for RemoteRepo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.host, self.path)
    }
}

impl fmt::Debug for RemoteRepo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RemoteRepo({self})")
    }
}

impl RemoteRepo {
    /// Parses `registry.example.com/floe/prod/app` or `127.0.0.1:5000/floe/dev/app`: the first
    /// path component is the host, the rest the repository.
    pub(crate) fn parse(repo: &Repository) -> Result<Self> {
        let shown = redact_userinfo(repo.as_str());
        let s = shown.as_str();
        if s.starts_with("oci-layout:") {
            return Err(Error::invalid(
                "repository",
                s,
                "an oci-layout: location is an OCI image-layout directory; use OciLayoutRegistry for it (OciRegistry handles remote registries, HOST/PATH)",
            ));
        }
        if s.contains("://") {
            return Err(Error::invalid(
                "repository",
                s,
                "write a remote repository as HOST[:PORT]/PATH without a scheme; plain HTTP is chosen per host with the insecure hosts option",
            ));
        }
        let Some((host, path)) = s.split_once('/') else {
            return Err(Error::invalid(
                "repository",
                s,
                "expected HOST[:PORT]/PATH, e.g. registry.example.com/floe/prod/app",
            ));
        };
        validate_host(host).map_err(|reason| Error::invalid("repository", s, reason))?;
        let path = path.trim_end_matches('/');
        ArtifactName::new(path).map_err(|_| {
            Error::invalid(
                "repository",
                s,
                format!(
                    "the repository path {path:?} after the host is not an OCI repository name (lowercase a-z 0-9 separated by . _ __ - or /)"
                ),
            )
        })?;
        Ok(RemoteRepo {
            host: host.to_string(),
            path: path.to_string(),
        })
    }

    /// The host as written (`127.0.0.1:5000`, `registry.example.com`).
    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    /// An oci-client reference to a tag in this repository.
    pub(crate) fn tag_ref(&self, tag: &str) -> Reference {
        Reference::with_tag(self.host.clone(), self.path.clone(), tag.to_string())
    }

    /// An oci-client reference to a digest in this repository.
    pub(crate) fn digest_ref(&self, digest: &Digest) -> Reference {
        Reference::with_digest(self.host.clone(), self.path.clone(), digest.to_string())
    }

    /// An oci-client reference for a floe reference.
    pub(crate) fn reference(&self, reference: &floe_promotion::Reference) -> Reference {
        match reference {
            floe_promotion::Reference::Tag(t) => self.tag_ref(t.as_str()),
            floe_promotion::Reference::Digest(d) => self.digest_ref(d),
        }
    }

    /// The key under which oci-client stores credentials for this host.
    pub(crate) fn auth_key(&self) -> String {
        self.tag_ref("latest").resolve_registry().to_string()
    }

    /// `HOST/PATH:TAG`, for messages.
    pub(crate) fn at_tag(&self, tag: &Tag) -> String {
        format!("{self}:{tag}")
    }

    /// `HOST/PATH@DIGEST`, for messages.
    pub(crate) fn at_digest(&self, digest: &Digest) -> String {
        format!("{self}@{digest}")
    }
}

/// Hides a `user:password@` prefix, so a location pasted with credentials is never echoed.
fn redact_userinfo(s: &str) -> String {
    let host_part = s.split('/').next().unwrap_or(s);
    match host_part.rfind('@') {
        Some(at) => format!("<redacted>{}", &s[at..]),
        None => s.to_string(),
    }
}

/// A host is a DNS name or IPv4 address with an optional port, or a bracketed IPv6 address.
/// No credentials (`user@`), no path, no spaces.
pub(crate) fn validate_host(host: &str) -> std::result::Result<(), String> {
    if host.is_empty() || host.len() > 255 {
        return Err("the host is 1 to 255 characters".into());
    }
    let ok = host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '_'));
    if !ok {
        return Err(format!(
            "the host {host:?} may only hold letters, digits, '.', '-', '_', ':' and brackets (no credentials, no scheme)"
        ));
    }
    if host.starts_with(['.', '-', ':']) {
        return Err(format!(
            "the host {host:?} does not start with a letter or digit"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(s: &str) -> Repository {
        Repository::new(s).unwrap()
    }

    #[test]
    fn host_and_path_are_split_at_the_first_slash() {
        let r = RemoteRepo::parse(&repo("127.0.0.1:5000/floe/dev/app")).unwrap();
        assert_eq!(r.host(), "127.0.0.1:5000");
        assert_eq!(r.to_string(), "127.0.0.1:5000/floe/dev/app");
        let r = RemoteRepo::parse(&repo("registry.example.com/app/")).unwrap();
        assert_eq!(r.to_string(), "registry.example.com/app");
        assert_eq!(
            RemoteRepo::parse(&repo("docker.io/library/alpine"))
                .unwrap()
                .auth_key(),
            "index.docker.io"
        );
    }

    #[test]
    fn bad_locations_are_refused_with_a_reason() {
        for (bad, needle) in [
            ("oci-layout:./registry/dev/app", "OciLayoutRegistry"),
            ("https://registry.example.com/app", "without a scheme"),
            ("registry.example.com", "HOST[:PORT]/PATH"),
            ("user:pw@registry.example.com/app", "no credentials"),
            (
                "user:pw@registry.example.com/app",
                "<redacted>@registry.example.com/app",
            ),
            ("registry.example.com/App", "not an OCI repository name"),
            ("registry.example.com/a//b", "not an OCI repository name"),
            ("/app", "1 to 255"),
        ] {
            let err = RemoteRepo::parse(&repo(bad)).unwrap_err().to_string();
            assert!(err.contains(needle), "{bad}: {err}");
            assert!(err.starts_with("invalid repository"), "{bad}: {err}");
            assert!(!err.contains("pw@"), "{bad}: {err}");
        }
    }
}
