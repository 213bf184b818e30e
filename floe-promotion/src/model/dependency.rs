//! Dependencies between artifacts: what an artifact needs beside it in an environment, and at
//! which digest. Declared in the manifest (`depends_on`, names only) or in the OCI annotation
//! [`DEPENDENCIES_ANNOTATION`] (`name@sha256:…`, an exact digest).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Excerpt, Result};
use crate::model::{ArtifactName, Digest, Tag};

/// The OCI manifest annotation that declares dependencies: `name@sha256:<hex>` entries
/// separated by commas or whitespace.
pub const DEPENDENCIES_ANNOTATION: &str = "dev.floe.dependencies";

/// Where a dependency was declared, which decides the digest wanted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Declared {
    /// `depends_on` in the manifest: the dependency's digest current in the source
    /// environment is wanted.
    Manifest,
    /// The [`DEPENDENCIES_ANNOTATION`] annotation: the digest it names is wanted.
    Annotation,
}

impl Declared {
    /// `manifest` or `annotation`.
    pub fn as_str(self) -> &'static str {
        match self {
            Declared::Manifest => "manifest",
            Declared::Annotation => "annotation",
        }
    }
}

/// A dependency wanted at one digest, with the version that digest has in the source
/// environment (the version a promotion of it would carry).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependency {
    /// The artifact needed.
    pub artifact: ArtifactName,
    /// The digest wanted.
    pub digest: Digest,
    /// Its version (release tag) in the source environment.
    pub version: Tag,
    /// Where it was declared.
    pub declared: Declared,
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}@{}", self.artifact, self.version, self.digest)
    }
}

/// A dependency that is not current in the target environment at the digest wanted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingDependency {
    /// The artifact needed.
    pub artifact: ArtifactName,
    /// The digest wanted.
    pub digest: Digest,
    /// Its version in the source environment.
    pub version: Tag,
    /// What the target runs of it now, if anything.
    pub current: Option<Digest>,
}

impl fmt::Display for MissingDependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}@{} (", self.artifact, self.version, self.digest)?;
        match &self.current {
            Some(d) => write!(f, "it runs {d} there)"),
            None => f.write_str("not there)"),
        }
    }
}

/// Reads the value of the [`DEPENDENCIES_ANNOTATION`] annotation: `name@sha256:<hex>` entries
/// separated by commas or whitespace, in the order written. An empty value declares nothing;
/// the same name twice at the same digest counts once; a malformed entry, or one name at two
/// digests, is [`Error::InvalidInput`] naming the entry.
///
/// ```
/// use floe_promotion::model::parse_dependency_annotation;
/// let hex = "a".repeat(64);
/// let deps = parse_dependency_annotation(&format!("migrations@sha256:{hex}, config@sha256:{hex}"))?;
/// assert_eq!(deps.len(), 2);
/// assert_eq!(deps[0].0.as_str(), "migrations");
/// assert!(parse_dependency_annotation("migrations:v1").is_err());
/// # Ok::<(), floe_promotion::Error>(())
/// ```
pub fn parse_dependency_annotation(value: &str) -> Result<Vec<(ArtifactName, Digest)>> {
    let what = "dev.floe.dependencies entry";
    let mut out: Vec<(ArtifactName, Digest)> = Vec::new();
    let mut seen: BTreeMap<ArtifactName, Digest> = BTreeMap::new();
    for entry in value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|e| !e.is_empty())
    {
        let Some((name, digest)) = entry.split_once('@') else {
            return Err(Error::invalid(
                what,
                entry,
                "expected name@sha256:<hex>, e.g. migrations@sha256:…",
            ));
        };
        let name = ArtifactName::new(name)
            .map_err(|e| Error::invalid(what, entry, format!("the name is not valid: {e}")))?;
        let digest = Digest::new(digest)
            .map_err(|e| Error::invalid(what, entry, format!("the digest is not valid: {e}")))?;
        match seen.get(&name) {
            Some(d) if d == &digest => continue,
            Some(d) => {
                return Err(Error::invalid(
                    what,
                    entry,
                    format!(
                        "{} is declared at two digests ({d} and {digest})",
                        Excerpt::new(name.as_str())
                    ),
                ));
            }
            None => {}
        }
        seen.insert(name.clone(), digest.clone());
        out.push((name, digest));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_annotation_takes_commas_and_whitespace() {
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        let v = format!(" migrations@sha256:{a},config@sha256:{b}\n\tmigrations@sha256:{a} ");
        let deps = parse_dependency_annotation(&v).unwrap();
        let names: Vec<&str> = deps.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["migrations", "config"]);
        assert!(parse_dependency_annotation("").unwrap().is_empty());
        for bad in [
            "migrations".to_string(),
            "Bad@sha256:00".to_string(),
            format!("m@sha256:{a} m@sha256:{b}"),
            "m@md5:abc".to_string(),
        ] {
            assert!(parse_dependency_annotation(&bad).is_err(), "{bad}");
        }
    }
}
