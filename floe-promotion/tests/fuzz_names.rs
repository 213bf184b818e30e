//! Fuzz target: the parsers of names and references (`Tag`, `EnvName`, `ArtifactName`,
//! `Repository`, `Digest`, `ArtifactRef`, the `Reference` inside it).
//!
//! On arbitrary strings, on strings close to valid ones and on valid ones with one character
//! changed: no parser panics; every accepted value prints back as exactly the text it was
//! parsed from, parses again to an equal value and reads back equal through serde; and it
//! keeps the promises its type documents (a tag holds no shell metacharacter, slash or space,
//! an environment name is also a valid tag, a digest is `sha256:` and 64 lowercase hex digits).
//!
//! CI runs 256 cases per property; run longer with
//! `PROPTEST_CASES=100000 cargo test -p floe-promotion --test fuzz_names -- --nocapture`
//! (each property prints how many cases it ran).

use std::fmt::Display;
use std::str::FromStr;

use floe_promotion::{ArtifactName, ArtifactRef, Digest, EnvName, Reference, Repository, Tag};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Characters a shell, a path or a command line gives a meaning to.
const HOSTILE: &[char] = &[
    ';', '|', '&', '$', '`', '(', ')', '<', '>', '\'', '"', '\\', '*', '?', '[', ']', '{', '}',
    '~', '#', '!', '/', ' ', '\t', '\n', '\r', '\0', '%', '=', ':', '@', '+', ',',
];

/// Runs `test` on `cases` values of `strategy` (`PROPTEST_CASES` overrides the default 256)
/// and prints how many ran.
fn fuzz<S: Strategy>(name: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let config = Config {
        source_file: Some(file!()),
        ..Config::default()
    };
    let cases = std::sync::atomic::AtomicU64::new(0);
    let mut runner = TestRunner::new(config);
    let result = runner.run(&strategy, |v| {
        cases.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        test(v)
    });
    println!(
        "fuzz_names::{name}: {} cases",
        cases.load(std::sync::atomic::Ordering::Relaxed)
    );
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

/// Strings of every kind: arbitrary Unicode, near-valid names, valid names with one hostile
/// character put in, and long ones around the length limits.
fn inputs() -> impl Strategy<Value = String> {
    let near_valid = "[A-Za-z0-9][A-Za-z0-9._/-]{0,40}";
    prop_oneof![
        any::<String>(),
        "\\PC{0,20}",
        near_valid,
        "[a-z0-9]{1,8}([._/-]{1,2}[a-z0-9]{1,8}){0,6}",
        "sha256:[0-9a-fA-F]{62,66}",
        "[a-z0-9/_.-]{1,20}[:@][A-Za-z0-9._:-]{0,80}",
        (
            "[A-Za-z0-9]{1,40}",
            0usize..40,
            proptest::sample::select(HOSTILE)
        )
            .prop_map(|(s, at, c)| {
                let at = at.min(s.len());
                format!("{}{c}{}", &s[..at], &s[at..])
            }),
        ("[a-zA-Z0-9]", 60usize..1100).prop_map(|(c, n)| c.repeat(n)),
    ]
}

/// Display gives back exactly `text`, parsing the display gives an equal value, and serde
/// (a JSON string) agrees with the parser both ways.
fn round_trips<T>(value: &T, text: &str) -> Result<(), TestCaseError>
where
    T: Display
        + FromStr
        + PartialEq
        + std::fmt::Debug
        + serde::Serialize
        + serde::de::DeserializeOwned,
    <T as FromStr>::Err: std::fmt::Debug,
{
    prop_assert_eq!(value.to_string(), text);
    let again: T = text
        .parse()
        .map_err(|e| TestCaseError::fail(format!("{text:?} parsed once, not twice: {e:?}")))?;
    prop_assert_eq!(&again, value);
    let json = serde_json::to_string(value).expect("serialize");
    prop_assert_eq!(&json, &serde_json::to_string(text).expect("string"));
    let back: T = serde_json::from_str(&json).expect("deserialize what was serialized");
    prop_assert_eq!(&back, value);
    Ok(())
}

/// Serde refuses what the parser refuses.
fn serde_refuses<T: serde::de::DeserializeOwned>(text: &str) -> Result<(), TestCaseError> {
    let json = serde_json::to_string(text).expect("string");
    prop_assert!(
        serde_json::from_str::<T>(&json).is_err(),
        "serde accepted {text:?}, which the parser refuses"
    );
    Ok(())
}

/// An error message quotes the refused value in some form and stays one line.
fn one_line(e: &floe_promotion::Error) -> Result<(), TestCaseError> {
    let text = e.to_string();
    prop_assert!(!text.contains('\n'), "multi-line error: {text:?}");
    prop_assert!(text.starts_with("invalid "), "{text}");
    Ok(())
}

#[test]
fn tags() {
    fuzz("tags", inputs(), |s| {
        match Tag::new(s.as_str()) {
            Ok(tag) => {
                round_trips(&tag, &s)?;
                prop_assert!((1..=128).contains(&s.len()), "{s:?}");
                prop_assert!(s.as_bytes()[0].is_ascii_alphanumeric(), "{s:?}");
                prop_assert!(!s.contains(HOSTILE), "a tag holds a metacharacter: {s:?}");
                prop_assert!(
                    s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)),
                    "{s:?}"
                );
            }
            Err(e) => {
                one_line(&e)?;
                serde_refuses::<Tag>(&s)?;
            }
        }
        Ok(())
    });
}

#[test]
fn environment_names() {
    fuzz("environment_names", inputs(), |s| {
        match EnvName::new(s.as_str()) {
            Ok(env) => {
                round_trips(&env, &s)?;
                prop_assert!((1..=63).contains(&s.len()), "{s:?}");
                // Environment names go inside tags (`v1.2.3-staging`).
                prop_assert!(Tag::new(s.as_str()).is_ok(), "not a valid tag: {s:?}");
                prop_assert!(
                    Tag::new(format!("v1.2.3-{s}")).is_ok(),
                    "v1.2.3-{s} is not a tag"
                );
                prop_assert!(!s.contains('.'), "{s:?}");
            }
            Err(e) => {
                one_line(&e)?;
                serde_refuses::<EnvName>(&s)?;
            }
        }
        Ok(())
    });
}

#[test]
fn artifact_names() {
    fuzz("artifact_names", inputs(), |s| {
        match ArtifactName::new(s.as_str()) {
            Ok(name) => {
                round_trips(&name, &s)?;
                prop_assert!((1..=255).contains(&s.len()), "{s:?}");
                prop_assert!(
                    s.bytes().all(|b| b.is_ascii_lowercase()
                        || b.is_ascii_digit()
                        || b"._-/".contains(&b)),
                    "{s:?}"
                );
                // A repository path: no empty, `.` or `..` component, so it cannot climb out
                // of the namespace it is joined to.
                for component in s.split('/') {
                    prop_assert!(
                        !component.is_empty() && component != "." && component != "..",
                        "{s:?}"
                    );
                    prop_assert!(
                        component.as_bytes()[0].is_ascii_alphanumeric()
                            && component.as_bytes()[component.len() - 1].is_ascii_alphanumeric(),
                        "{s:?}"
                    );
                }
            }
            Err(e) => {
                one_line(&e)?;
                serde_refuses::<ArtifactName>(&s)?;
            }
        }
        Ok(())
    });
}

#[test]
fn repositories() {
    fuzz(
        "repositories",
        (inputs(), "[a-z0-9]{1,8}(/[a-z0-9]{1,8}){0,3}"),
        |(s, artifact)| {
            match Repository::new(s.as_str()) {
                Ok(repo) => {
                    round_trips(&repo, &s)?;
                    prop_assert!((1..=1024).contains(&s.len()), "{s:?}");
                    prop_assert!(
                        !s.chars().any(|c| c.is_whitespace() || c.is_control()),
                        "{s:?}"
                    );
                    // Joining a valid artifact gives a valid location, or an error when the
                    // two do not fit the limit together.
                    let artifact = ArtifactName::new(artifact).expect("generated valid");
                    let expected = format!("{}/{artifact}", s.trim_end_matches('/'));
                    match repo.join(&artifact) {
                        Ok(joined) => {
                            prop_assert_eq!(joined.as_str(), expected.as_str());
                            round_trips(&joined, &expected)?;
                        }
                        Err(e) => {
                            prop_assert!(expected.len() > 1024, "{expected:?}: {e}");
                            one_line(&e)?;
                        }
                    }
                }
                Err(e) => {
                    one_line(&e)?;
                    serde_refuses::<Repository>(&s)?;
                }
            }
            Ok(())
        },
    );
}

#[test]
fn digests() {
    fuzz("digests", (inputs(), any::<Vec<u8>>()), |(s, bytes)| {
        match Digest::new(s.as_str()) {
            Ok(d) => {
                round_trips(&d, &s)?;
                let hex = s.strip_prefix("sha256:").expect("prefix");
                prop_assert_eq!(hex.len(), 64);
                prop_assert!(
                    hex.bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                );
                prop_assert_eq!(d.hex(), hex);
                prop_assert!(Tag::new(d.signature_tag()).is_ok());
                prop_assert!(Tag::new(d.referrers_tag()).is_ok());
            }
            Err(e) => {
                one_line(&e)?;
                serde_refuses::<Digest>(&s)?;
            }
        }
        // Every computed digest is a valid one.
        let d = Digest::of(&bytes);
        round_trips(&d, d.as_str())?;
        Ok(())
    });
}

#[test]
fn artifact_references() {
    fuzz("artifact_references", inputs(), |s| {
        match ArtifactRef::from_str(&s) {
            Ok(r) => {
                // Accepted text prints back as itself and parses to the same reference.
                prop_assert_eq!(r.to_string(), s.as_str());
                let again: ArtifactRef = r.to_string().parse().expect("reparse");
                prop_assert_eq!(&again, &r);
                prop_assert!(ArtifactName::new(r.name.as_str()).is_ok());
                match &r.reference {
                    Reference::Tag(t) => {
                        prop_assert_eq!(s.as_str(), format!("{}:{t}", r.name));
                        prop_assert!(!t.as_str().contains(HOSTILE), "{t:?}");
                    }
                    Reference::Digest(d) => {
                        prop_assert_eq!(s.as_str(), format!("{}@{d}", r.name));
                    }
                }
                let json = serde_json::to_string(&r).expect("serialize");
                let back: ArtifactRef = serde_json::from_str(&json).expect("deserialize");
                prop_assert_eq!(back, r);
            }
            Err(e) => one_line(&e)?,
        }
        Ok(())
    });
}

/// Valid references built from parts always parse back to those parts.
#[test]
fn built_references_parse_back() {
    let reference = prop_oneof![
        "[A-Za-z0-9][A-Za-z0-9._-]{0,127}".prop_map(|t| Reference::Tag(Tag::new(t).unwrap())),
        any::<Vec<u8>>().prop_map(|b| Reference::Digest(Digest::of(&b))),
    ];
    fuzz(
        "built_references_parse_back",
        (
            "[a-z0-9]{1,6}([._-][a-z0-9]{1,6}){0,3}(/[a-z0-9]{1,6}){0,3}",
            reference,
        ),
        |(name, reference)| {
            let r = ArtifactRef {
                name: ArtifactName::new(name).expect("generated valid"),
                reference,
            };
            let parsed: ArtifactRef = r
                .to_string()
                .parse()
                .map_err(|e| TestCaseError::fail(format!("{r} does not parse: {e}")))?;
            prop_assert_eq!(parsed, r);
            Ok(())
        },
    );
}
