//! `oci-layout:<dir>` repository locations.

use std::path::{Component, Path, PathBuf};

use floe_promotion::{Error, Repository, Result};

/// The scheme of OCI image-layout repository locations.
pub(super) const SCHEME: &str = "oci-layout:";

/// The layout directory a repository location names, as written (relative paths stay relative
/// to the process's working directory).
pub(super) fn layout_dir(repo: &Repository) -> Result<PathBuf> {
    let s = repo.as_str();
    let Some(dir) = s.strip_prefix(SCHEME) else {
        return Err(Error::invalid(
            "repository",
            s,
            "an OCI image-layout location is `oci-layout:<dir>`, e.g. `oci-layout:./registry/prod/app`",
        ));
    };
    if dir.is_empty() {
        return Err(Error::invalid(
            "repository",
            s,
            "no directory after `oci-layout:`",
        ));
    }
    Ok(PathBuf::from(dir))
}

/// Whether two layout directories are the same path, compared without touching the file system:
/// relative paths are made absolute against the working directory and `.` components and
/// trailing slashes are dropped. `..` is kept (collapsing it is wrong across symlinks), so two
/// spellings of one directory may compare different, never the reverse.
pub(super) fn same_dir(a: &Path, b: &Path) -> bool {
    normalize(a) == normalize(b)
}

fn normalize(p: &Path) -> PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    abs.components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_oci_layout_locations() {
        let repo = Repository::new("oci-layout:./reg/prod/app").unwrap();
        assert_eq!(layout_dir(&repo).unwrap(), PathBuf::from("./reg/prod/app"));
        let repo = Repository::new("oci-layout:/abs/dir").unwrap();
        assert_eq!(layout_dir(&repo).unwrap(), PathBuf::from("/abs/dir"));
    }

    #[test]
    fn refuses_other_locations() {
        for bad in ["registry.example.com/app", "oci:./dir", "oci-layout:"] {
            let err = layout_dir(&Repository::new(bad).unwrap()).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::InvalidInput {
                        what: "repository",
                        ..
                    }
                ),
                "{bad}: {err}"
            );
            assert!(err.to_string().contains(bad), "{bad}: {err}");
        }
    }

    #[test]
    fn same_dir_is_lexical() {
        assert!(same_dir(Path::new("./a/b/"), Path::new("a/b")));
        let cwd = std::env::current_dir().unwrap();
        assert!(same_dir(&cwd.join("a"), Path::new("a")));
        assert!(!same_dir(Path::new("a/b"), Path::new("a/c")));
        assert!(!same_dir(Path::new("a/x/../b"), Path::new("a/b")));
    }
}
