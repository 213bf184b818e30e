//! Credentials for one registry host: explicit ones, or a docker config file and its
//! credential helpers.

use std::path::{Path, PathBuf};

use docker_credential::{CredentialRetrievalError, DockerCredential};
use floe_promotion::input::read_bounded;
use floe_promotion::{Error, Result};
use oci_client::secrets::RegistryAuth;

use super::options::CredentialSource;

/// The largest docker config file read (they are a few KiB).
const MAX_DOCKER_CONFIG: u64 = 4 * 1024 * 1024;

/// Resolves the credentials `source` gives for `host`. Blocking: it reads a file and may run a
/// credential helper.
pub(crate) fn resolve(source: &CredentialSource, host: &str) -> Result<RegistryAuth> {
    match source {
        CredentialSource::Anonymous => Ok(RegistryAuth::Anonymous),
        CredentialSource::Basic { username, password } => {
            Ok(RegistryAuth::Basic(username.clone(), password.clone()))
        }
        CredentialSource::Bearer { token } => Ok(RegistryAuth::Bearer(token.clone())),
        CredentialSource::DockerConfig { path: Some(path) } => {
            let bytes = read_bounded(path, MAX_DOCKER_CONFIG, "docker config")?;
            from_docker_config(&bytes, path, host)
        }
        CredentialSource::DockerConfig { path: None } => match default_config_path() {
            Some(path) => match read_bounded(&path, MAX_DOCKER_CONFIG, "docker config") {
                Ok(bytes) => from_docker_config(&bytes, &path, host),
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                    Ok(RegistryAuth::Anonymous)
                }
                Err(e) => Err(e),
            },
            None => Ok(RegistryAuth::Anonymous),
        },
    }
}

/// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
fn default_config_path() -> Option<PathBuf> {
    std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
        .map(|dir| dir.join("config.json"))
}

/// The keys a docker config may use for `host`, most specific first.
fn server_keys(host: &str) -> Vec<String> {
    let mut keys = vec![
        host.to_string(),
        format!("https://{host}"),
        format!("http://{host}"),
        format!("https://{host}/v2/"),
        format!("https://{host}/v1/"),
    ];
    if matches!(
        host,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    ) {
        keys.insert(0, "https://index.docker.io/v1/".into());
        keys.push("docker.io".into());
        keys.push("index.docker.io".into());
    }
    keys
}

fn from_docker_config(bytes: &[u8], path: &Path, host: &str) -> Result<RegistryAuth> {
    // Parse once up front so that a malformed file is reported as such, with its name.
    serde_json::from_slice::<serde_json::Value>(bytes).map_err(|e| Error::Config {
        file: Some(path.to_path_buf()),
        location: Some((e.line(), e.column())),
        message: format!("not a docker config file: {e}"),
    })?;
    for key in server_keys(host) {
        match docker_credential::get_credential_from_reader(bytes, &key) {
            Ok(DockerCredential::UsernamePassword(user, password)) => {
                return Ok(RegistryAuth::Basic(user, password));
            }
            // An identity token is what `docker login` stores for token services; oci-client
            // has no refresh-token flow, so it is sent as a bearer token.
            Ok(DockerCredential::IdentityToken(token)) => return Ok(RegistryAuth::Bearer(token)),
            Err(CredentialRetrievalError::NoCredentialConfigured) => continue,
            Err(CredentialRetrievalError::HelperFailure { helper, stdout, .. })
                if stdout.to_ascii_lowercase().contains("not found") =>
            {
                tracing::debug!(%helper, %key, "credential helper has no entry");
                continue;
            }
            Err(CredentialRetrievalError::HelperFailure { helper, .. }) => {
                return Err(Error::Unauthorized {
                    registry: host.to_string(),
                    message: format!(
                        "credential helper {helper} (from docker config {}) failed for {key}",
                        path.display()
                    ),
                });
            }
            Err(CredentialRetrievalError::HelperCommunicationError) => {
                return Err(Error::Unauthorized {
                    registry: host.to_string(),
                    message: format!(
                        "could not run the credential helper named in docker config {} (is docker-credential-<name> on PATH?)",
                        path.display()
                    ),
                });
            }
            Err(e) => {
                return Err(Error::Config {
                    file: Some(path.to_path_buf()),
                    location: None,
                    message: format!("credentials for {key}: {e}"),
                });
            }
        }
    }
    Ok(RegistryAuth::Anonymous)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
        let path = dir.path().join("config.json");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn auths_entries_are_found_by_host_or_url() {
        let dir = tempfile::tempdir().unwrap();
        // "dXNlcjpwYXNz" is base64("user:pass").
        let path = write(
            &dir,
            r#"{"auths":{"127.0.0.1:5000":{"auth":"dXNlcjpwYXNz"},"https://reg.example.com":{"username":"u2","password":"p2"}}}"#,
        );
        let source = CredentialSource::docker_config(&path);
        assert_eq!(
            resolve(&source, "127.0.0.1:5000").unwrap(),
            RegistryAuth::Basic("user".into(), "pass".into())
        );
        assert_eq!(
            resolve(&source, "reg.example.com").unwrap(),
            RegistryAuth::Basic("u2".into(), "p2".into())
        );
        assert_eq!(
            resolve(&source, "other.example.com").unwrap(),
            RegistryAuth::Anonymous
        );
    }

    #[test]
    fn a_missing_or_malformed_explicit_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.json");
        let err = resolve(&CredentialSource::docker_config(&missing), "h").unwrap_err();
        assert!(err.to_string().contains("nope.json"), "{err}");
        let bad = write(&dir, "{\"auths\": [");
        let err = resolve(&CredentialSource::docker_config(&bad), "h").unwrap_err();
        assert!(err.to_string().contains("config.json"), "{err}");
    }

    #[test]
    fn a_missing_helper_is_reported_without_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            &dir,
            r#"{"credHelpers":{"reg.example.com":"floe-test-helper-that-does-not-exist"}}"#,
        );
        let err = resolve(&CredentialSource::docker_config(&path), "reg.example.com").unwrap_err();
        assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
        assert!(err.to_string().contains("credential helper"), "{err}");
    }
}
