use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::Digest;

/// Declares a string newtype that can only hold a validated value.
///
/// The value is kept behind an [`Arc`], so a clone (a promotion copies its names into its
/// events, gate contexts and record) shares it instead of copying it.
macro_rules! validated_string {
    ($(#[$doc:meta])* $name:ident, $what:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Validates and wraps the value; refuses it before any I/O is done with it.
            pub fn new(s: impl Into<String>) -> Result<Self> {
                let s: String = s.into();
                let check: fn(&str) -> std::result::Result<(), String> = $check;
                match check(&s) {
                    Ok(()) => Ok(Self(Arc::from(s))),
                    Err(reason) => Err(Error::invalid($what, s, reason)),
                }
            }

            /// The value as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Whether [`Self::new`] accepts `s`, without copying it.
            #[allow(dead_code)]
            pub(crate) fn is_valid(s: &str) -> bool {
                let check: fn(&str) -> std::result::Result<(), String> = $check;
                check(s).is_ok()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
            }
        }

        impl FromStr for $name {
            type Err = Error;
            /// Validates `s` before copying it, once.
            fn from_str(s: &str) -> Result<Self> {
                let check: fn(&str) -> std::result::Result<(), String> = $check;
                match check(s) {
                    Ok(()) => Ok(Self(Arc::from(s))),
                    Err(reason) => Err(Error::invalid($what, s, reason)),
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(s: String) -> Result<Self> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0.as_ref().to_owned()
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        // As a JSON string, exactly as the `String` it held before it was shared.
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                d.deserialize_string(crate::model::names::StrVisitor::<$name>::new())
            }
        }
    };
}

/// Reads a validated string from any string a deserializer has (borrowed or owned), with the
/// errors a `String` would give.
pub(crate) struct StrVisitor<T>(std::marker::PhantomData<T>);

impl<T> StrVisitor<T> {
    pub(crate) fn new() -> Self {
        StrVisitor(std::marker::PhantomData)
    }
}

impl<T: FromStr<Err = Error>> serde::de::Visitor<'_> for StrVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> std::result::Result<T, E> {
        s.parse().map_err(E::custom)
    }
}

// The validators below are written out rather than regexes: they run for every name read back
// from the audit history (a full `verify` reads millions), and a regex match costs a cache
// lookup that dominates for such short strings. `tests::validators_agree_with_the_regexes`
// checks each against the regex it documents.

/// `^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`
fn is_tag(s: &str) -> bool {
    let b = s.as_bytes();
    matches!(b.first(), Some(c) if c.is_ascii_alphanumeric())
        && b.len() <= 128
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

/// `^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$`
fn is_env_name(s: &str) -> bool {
    let b = s.as_bytes();
    matches!(b.first(), Some(c) if c.is_ascii_alphanumeric())
        && b.len() <= 63
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-'))
}

/// `^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`: path
/// components separated by `/`, each runs of `[a-z0-9]` separated by `.`, `_`, `__` or dashes.
fn is_artifact_path(s: &str) -> bool {
    s.split('/').all(|component| {
        let b = component.as_bytes();
        let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        let mut i = 0;
        loop {
            let run = b[i..].iter().take_while(|c| alnum(c)).count();
            if run == 0 {
                return false;
            }
            i += run;
            match b.get(i) {
                None => return true,
                Some(b'.') => i += 1,
                Some(b'_') => i += if b.get(i + 1) == Some(&b'_') { 2 } else { 1 },
                Some(b'-') => i += b[i..].iter().take_while(|&&c| c == b'-').count(),
                Some(_) => return false,
            }
        }
    })
}

validated_string!(
    /// An OCI tag that is safe everywhere: `^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`.
    ///
    /// Shell metacharacters, slashes, spaces and leading separators are refused, so a tag can be
    /// passed to any command or path without quoting.
    ///
    /// ```
    /// use floe_promotion::Tag;
    /// assert!(Tag::new("v1.2.3-staging").is_ok());
    /// assert!(Tag::new("v1;rm -rf /").is_err());
    /// assert!(Tag::new("-v1").is_err());
    /// ```
    Tag,
    "tag",
    |s| {
        if is_tag(s) {
            Ok(())
        } else {
            Err("a tag is 1 to 128 characters of A-Z a-z 0-9 . _ - and starts with a letter or digit".into())
        }
    }
);

validated_string!(
    /// The name of an environment, e.g. `dev`, `staging`, `prod`.
    ///
    /// Environment names appear inside tags (`v1.2.3-staging`), so they use a subset of the tag
    /// alphabet: `^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$`.
    EnvName,
    "environment name",
    |s| {
        if is_env_name(s) {
            Ok(())
        } else {
            Err("an environment name is 1 to 63 characters of A-Z a-z 0-9 _ - and starts with a letter or digit".into())
        }
    }
);

validated_string!(
    /// The name of an artifact: an OCI repository path such as `myapp` or `team/myapp`.
    ArtifactName,
    "artifact name",
    |s| {
        if s.len() <= 255 && is_artifact_path(s) {
            Ok(())
        } else {
            Err("an artifact name is an OCI repository path: lowercase a-z 0-9 separated by . _ __ - or /, at most 255 characters".into())
        }
    }
);

validated_string!(
    /// Where one artifact's repository lives, as the registry backend understands it:
    /// `registry.example.com/floe/prod/myapp` or `oci-layout:./registry/prod/myapp`.
    ///
    /// The core treats it as an opaque location; backends parse it.
    Repository,
    "repository",
    |s| {
        if s.is_empty() || s.len() > 1024 {
            Err("a repository location is 1 to 1024 characters".into())
        } else if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            Err("a repository location has no spaces or control characters".into())
        } else {
            Ok(())
        }
    }
);

impl Repository {
    /// The repository of `artifact` below the namespace `self`, joined with `/`. Fails with
    /// [`Error::InvalidInput`] when the joined location is longer than a repository may be
    /// (1024 characters), naming it.
    pub fn join(&self, artifact: &ArtifactName) -> Result<Repository> {
        Repository::new(format!("{}/{}", self.0.trim_end_matches('/'), artifact))
    }
}

/// What a reference points at inside a repository: a tag or a digest.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reference {
    /// A tag, which may move (unless the tag scheme makes it immutable).
    Tag(Tag),
    /// A digest, which never moves.
    Digest(Digest),
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(t) => write!(f, ":{t}"),
            Reference::Digest(d) => write!(f, "@{d}"),
        }
    }
}

impl From<Tag> for Reference {
    fn from(t: Tag) -> Self {
        Reference::Tag(t)
    }
}

impl From<Digest> for Reference {
    fn from(d: Digest) -> Self {
        Reference::Digest(d)
    }
}

/// An artifact and a version (tag) or digest, as a user writes it: `myapp:v1.2.3` or
/// `myapp@sha256:...`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ArtifactRef {
    /// Artifact name.
    pub name: ArtifactName,
    /// Version tag or digest.
    pub reference: Reference,
}

impl FromStr for ArtifactRef {
    type Err = Error;

    /// Parses `NAME:VERSION` or `NAME@sha256:<hex>`.
    fn from_str(s: &str) -> Result<Self> {
        if let Some((name, digest)) = s.split_once('@') {
            return Ok(ArtifactRef {
                name: ArtifactName::new(name)?,
                reference: Reference::Digest(Digest::new(digest)?),
            });
        }
        match s.rsplit_once(':') {
            Some((name, version)) if !name.is_empty() => Ok(ArtifactRef {
                name: ArtifactName::new(name)?,
                reference: Reference::Tag(Tag::new(version)?),
            }),
            _ => Err(Error::invalid(
                "artifact reference",
                s,
                "expected NAME:VERSION or NAME@sha256:<hex>",
            )),
        }
    }
}

impl fmt::Display for ArtifactRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.name, self.reference)
    }
}

/// Who performs an operation: an id and the groups it belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Actor {
    /// The identity, e.g. a user name or a CI job identity.
    pub id: String,
    /// Groups used by authorization rules.
    #[serde(default)]
    pub groups: Vec<String>,
}

impl Actor {
    /// An actor with no groups. Refuses an empty id or one with control characters.
    pub fn new(id: impl Into<String>) -> Result<Self> {
        let id = id.into();
        if id.trim().is_empty() || id.len() > 256 || id.chars().any(super::text::is_unsafe_char) {
            return Err(Error::invalid(
                "actor id",
                super::text::printable(&id).into_owned(),
                "an actor id is 1 to 256 printable characters",
            ));
        }
        Ok(Actor { id, groups: vec![] })
    }

    /// Adds groups.
    pub fn with_groups<I, S>(mut self, groups: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.groups.extend(groups.into_iter().map(Into::into));
        self
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use regex::Regex;

    /// A regex and the validator that implements it.
    type Pair = (Regex, fn(&str) -> bool);

    /// The regexes the validators implement, as the first release matched them.
    fn regexes() -> [Pair; 3] {
        [
            (
                Regex::new(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$").expect("regex"),
                is_tag,
            ),
            (
                Regex::new(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$").expect("regex"),
                is_env_name,
            ),
            (
                Regex::new(
                    r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$",
                )
                .expect("regex"),
                is_artifact_path,
            ),
        ]
    }

    #[test]
    fn validators_agree_with_the_regexes_on_edge_cases() {
        let long = |n| "a".repeat(n);
        let cases = [
            "",
            "a",
            "A",
            "0",
            "-",
            ".",
            "_",
            "/",
            "a-",
            "a.",
            "a_",
            "a/",
            "/a",
            "a//b",
            "a/b",
            "a.b",
            "a..b",
            "a_b",
            "a__b",
            "a___b",
            "a-b",
            "a--b",
            "a---b",
            "a.-b",
            "a-.b",
            "a_-b",
            "a-_b",
            "a._b",
            "a/-b",
            "a/b-",
            "ab/c_d__e-f.g",
            "A/b",
            "a b",
            "a\n",
            "a\nb",
            "é",
            "aé",
            "a\u{0}",
            "-a",
            ".a",
            "_a",
            "a:b",
            "a@b",
        ];
        for (re, valid) in regexes() {
            for s in cases.iter().map(|s| s.to_string()).chain([
                long(62),
                long(63),
                long(64),
                long(127),
                long(128),
                long(129),
            ]) {
                assert_eq!(valid(&s), re.is_match(&s), "{re} on {s:?}");
            }
        }
    }

    proptest! {
        #[test]
        fn validators_agree_with_the_regexes(
            s in "[a-cA-C0-9._/\\-]{0,12}|[a-z0-9._/-]{0,40}|\\PC{0,6}|[A-Za-z0-9._-]{60,130}"
        ) {
            for (re, valid) in regexes() {
                prop_assert_eq!(valid(&s), re.is_match(&s), "{} on {:?}", re, s);
            }
        }
    }

    #[test]
    fn tags_with_metacharacters_are_refused() {
        for bad in [
            "", "-x", ".x", "_x", "a b", "a;b", "a$b", "a`b", "a|b", "a&b", "a/b", "a\nb", "a'b",
            "a\"b", "a>b", "$(x)", "ä",
        ] {
            let err = Tag::new(bad).unwrap_err();
            assert!(err.to_string().starts_with("invalid tag"), "{bad:?}: {err}");
        }
        assert!(Tag::new("a".repeat(128)).is_ok());
        assert!(Tag::new("a".repeat(129)).is_err());
    }

    #[test]
    fn environment_names_fit_in_tags() {
        assert!(EnvName::new("prod-eu_1").is_ok());
        for bad in ["", "a.b", "a b", "-a", "a/b"] {
            assert!(EnvName::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn artifact_names_are_oci_paths() {
        assert!(ArtifactName::new("team/my-app").is_ok());
        for bad in ["", "My", "a//b", "/a", "a/", "a:b", "a..b"] {
            assert!(ArtifactName::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn artifact_refs_parse() {
        let r: ArtifactRef = "team/app:v1.0".parse().unwrap();
        assert_eq!(r.name.as_str(), "team/app");
        assert_eq!(r.reference, Reference::Tag(Tag::new("v1.0").unwrap()));
        assert_eq!(r.to_string(), "team/app:v1.0");
        let d = Digest::of(b"a");
        let r: ArtifactRef = format!("app@{d}").parse().unwrap();
        assert_eq!(r.reference, Reference::Digest(d));
        assert!("app".parse::<ArtifactRef>().is_err());
        assert!(":v1".parse::<ArtifactRef>().is_err());
        assert!("app:v1;ls".parse::<ArtifactRef>().is_err());
    }

    #[test]
    fn repository_join() {
        let r = Repository::new("oci-layout:./reg/prod/").unwrap();
        assert_eq!(
            r.join(&ArtifactName::new("app").unwrap()).unwrap().as_str(),
            "oci-layout:./reg/prod/app"
        );
        assert!(Repository::new("a b").is_err());
        // A namespace and an artifact name that are each valid, but too long together.
        let long = Repository::new(format!("registry.example.com/{}", "n".repeat(900))).unwrap();
        let name = ArtifactName::new("a".repeat(200)).unwrap();
        let err = long.join(&name).unwrap_err().to_string();
        assert!(err.contains("1 to 1024 characters"), "{err}");
    }

    #[test]
    fn actors_need_an_id() {
        assert!(Actor::new("").is_err());
        assert!(Actor::new("a\u{7}").is_err());
        assert_eq!(
            Actor::new("ci").unwrap().with_groups(["ops"]).groups,
            vec!["ops"]
        );
    }
}
