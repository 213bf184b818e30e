//! `floe keygen [--out keys/floe] --password-env NAME`: a signing key pair for
//! attestations, in cosign's format. Never overwrites a file; never half-written.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use floe_promotion::attest::KeyVerifier as _;
use floe_promotion_oci::{CosignKeyVerifier, generate_key_pair};

use super::*;
use crate::cli::KeygenArgs;
use crate::output::KeygenOutput;

/// `PATH` with `.ext` appended to its file name (`keys/floe` → `keys/floe.key`).
fn with_suffix(path: &Path, ext: &str) -> PathBuf {
    let mut s = OsString::from(path.as_os_str());
    s.push(ext);
    PathBuf::from(s)
}

/// Creates `path` (it must not exist) with `bytes`; on Unix readable by its owner only when
/// `private`.
fn create_new(path: &Path, bytes: &[u8], private: bool) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let context = || format!("writing {}", Excerpt::path(path));
    let mut file = options.open(path).map_err(|e| Error::io(context(), e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io(context(), e))
}

pub(super) async fn run(a: KeygenArgs) -> Result<(Option<Output>, u8)> {
    let password = match std::env::var_os(&a.password_env) {
        Some(v) if !v.is_empty() => v.into_encoded_bytes(),
        _ => {
            return Err(Error::invalid(
                "--password-env",
                &a.password_env,
                "the variable is not set or empty; it holds the password that encrypts the key",
            ));
        }
    };
    let private_path = with_suffix(&a.out, ".key");
    let public_path = with_suffix(&a.out, ".pub");
    for path in [&private_path, &public_path] {
        if path.exists() {
            return Err(Error::invalid(
                "--out",
                Excerpt::path(path),
                "exists already: floe keygen never overwrites a key (choose another --out)",
            ));
        }
    }
    if let Some(dir) = private_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating the directory {}", Excerpt::path(dir)), e))?;
    }
    let (private, public) = generate_key_pair(&password)?;
    let fingerprint = CosignKeyVerifier::from_pem("the new public key", public.as_bytes())?
        .fingerprint()
        .to_string();
    create_new(&private_path, private.as_bytes(), true)?;
    if let Err(e) = create_new(&public_path, public.as_bytes(), false) {
        // Nothing half-written: a key without its public half is removed again.
        let _ = std::fs::remove_file(&private_path);
        return Err(e);
    }
    Ok((
        Some(Output::Keygen(KeygenOutput {
            private_key: private_path.display().to_string(),
            public_key: public_path.display().to_string(),
            fingerprint,
        })),
        exit::OK,
    ))
}
