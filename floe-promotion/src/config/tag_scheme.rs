//! How environment, pointer, rollback, canary and slot tags are named, and which tags are
//! releases.

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::{EnvName, Tag};

/// Tag templates. Placeholders: `{version}`, `{env}`, and `{n}` (rollback counter).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagScheme {
    /// Immutable environment tag, default `{version}-{env}`.
    pub environment: String,
    /// Mutable pointer tag, default `latest-{env}`.
    pub pointer: String,
    /// Immutable rollback tag, default `{version}-{env}-rollback-{n}`.
    pub rollback: String,
}

impl Default for TagScheme {
    fn default() -> Self {
        TagScheme {
            environment: "{version}-{env}".into(),
            pointer: "latest-{env}".into(),
            rollback: "{version}-{env}-rollback-{n}".into(),
        }
    }
}

impl TagScheme {
    /// The template with `{version}`, `{env}` and `{n}` replaced, in one pass (every
    /// promotion renders two tags). Versions and environment names hold no braces, so this is
    /// what replacing the placeholders one after the other gives.
    fn render(template: &str, version: &str, env: &EnvName, n: u64) -> Result<Tag> {
        let mut out = String::with_capacity(template.len() + version.len() + env.as_str().len());
        let mut rest = template;
        while let Some(at) = rest.find('{') {
            out.push_str(&rest[..at]);
            rest = &rest[at..];
            if let Some(after) = rest.strip_prefix("{version}") {
                out.push_str(version);
                rest = after;
            } else if let Some(after) = rest.strip_prefix("{env}") {
                out.push_str(env.as_str());
                rest = after;
            } else if let Some(after) = rest.strip_prefix("{n}") {
                use std::fmt::Write as _;
                let _ = write!(out, "{n}");
                rest = after;
            } else {
                out.push('{');
                rest = &rest[1..];
            }
        }
        out.push_str(rest);
        Tag::new(out)
    }

    /// The environment tag of `version` in `env`.
    pub fn environment_tag(&self, version: &Tag, env: &EnvName) -> Result<Tag> {
        Self::render(&self.environment, version.as_str(), env, 0)
    }

    /// The pointer tag of `env`.
    pub fn pointer_tag(&self, env: &EnvName) -> Result<Tag> {
        Self::render(&self.pointer, "", env, 0)
    }

    /// The canary tag of `env`, `canary-<env>`: the digest under test while a canary runs.
    pub fn canary_tag(&self, env: &EnvName) -> Result<Tag> {
        Tag::new(format!("canary-{env}"))
    }

    /// The `n`th rollback tag of `version` in `env`.
    pub fn rollback_tag(&self, version: &Tag, env: &EnvName, n: u64) -> Result<Tag> {
        Self::render(&self.rollback, version.as_str(), env, n)
    }

    /// The blue-green slot tag `<env>-<slot>` of `env` (`prod-blue`, `prod-green`). Slot tags
    /// are fixed, not templates: [`TagScheme::is_release_tag`] never takes them for a release.
    pub fn slot_tag(&self, env: &EnvName, slot: crate::release::blue_green::Slot) -> Result<Tag> {
        Tag::new(format!("{env}-{slot}"))
    }

    /// Whether `tag` is a release tag (as CI pushes into the first environment), not a tag
    /// this scheme writes for one of `environments` (a pointer tag, an environment or
    /// rollback tag of any version, a blue-green slot tag `<env>-blue` or `<env>-green`) and
    /// not a tag named after a digest (`sha256-<hex>`, with any suffix: the OCI referrers tag
    /// schema, cosign's `.sig` and `.att`).
    pub fn is_release_tag(&self, tag: &Tag, environments: &[EnvName]) -> bool {
        if environments.iter().any(|env| {
            tag.as_str()
                .strip_prefix(env.as_str())
                .is_some_and(|rest| rest == "-blue" || rest == "-green")
        }) {
            return false;
        }
        if let Some((algorithm, rest)) = tag.as_str().split_once('-')
            && matches!(algorithm, "sha256" | "sha384" | "sha512")
            && rest.len() >= 64
            && rest
                .split('.')
                .next()
                .is_some_and(|hex| hex.len() >= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return false;
        }
        let pattern = |template: &str, env: &EnvName| {
            let mut re = String::from("^");
            let mut rest = template;
            while let Some(start) = rest.find('{') {
                re.push_str(&regex::escape(&rest[..start]));
                let after = &rest[start..];
                let (piece, len) = if after.starts_with("{version}") {
                    (".+".to_string(), "{version}".len())
                } else if after.starts_with("{env}") {
                    (regex::escape(env.as_str()), "{env}".len())
                } else if after.starts_with("{n}") {
                    ("[0-9]+".to_string(), "{n}".len())
                } else {
                    (regex::escape("{"), 1)
                };
                re.push_str(&piece);
                rest = &after[len..];
            }
            re.push_str(&regex::escape(rest));
            re.push('$');
            Regex::new(&re).map(|r| r.is_match(tag.as_str()))
        };
        if environments
            .iter()
            .any(|env| tag.as_str() == format!("canary-{env}"))
        {
            return false;
        }
        !environments.iter().any(|env| {
            [&self.pointer, &self.environment, &self.rollback]
                .iter()
                .any(|t| pattern(t, env).unwrap_or(false))
        })
    }

    /// Checks that each template has the placeholders it needs and renders a safe tag, and
    /// that the three kinds cannot collide.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let checks = [
            (
                "tag_scheme.environment",
                &self.environment,
                &["{version}", "{env}"][..],
            ),
            ("tag_scheme.pointer", &self.pointer, &["{env}"][..]),
            (
                "tag_scheme.rollback",
                &self.rollback,
                &["{version}", "{env}", "{n}"][..],
            ),
        ];
        let env = EnvName::new("prod").map_err(|e| e.to_string())?;
        for (field, template, needed) in checks {
            for p in needed {
                if !template.contains(p) {
                    return Err(format!("{field}: {template:?} must contain {p}"));
                }
            }
            Self::render(template, "v1.0.0", &env, 1)
                .map_err(|_| format!("{field}: {template:?} does not yield a valid tag"))?;
        }
        if self.environment == self.rollback || self.pointer == self.environment {
            return Err(
                "tag_scheme: the environment, pointer and rollback templates must differ".into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_replaces_each_placeholder_as_chained_replaces_did() {
        let env = EnvName::new("staging").unwrap();
        for template in [
            "{version}-{env}",
            "latest-{env}",
            "{version}-{env}-rollback-{n}",
            "{n}{n}{env}{version}",
            "x{{version}}-{ver{env}sion}-{n",
            "{",
            "",
            "plain",
        ] {
            let chained = template
                .replace("{version}", "v1.2.3")
                .replace("{env}", "staging")
                .replace("{n}", "12");
            let rendered = TagScheme::render(template, "v1.2.3", &env, 12);
            assert_eq!(
                rendered.as_ref().map(|t| t.as_str()).ok(),
                Tag::new(chained.clone()).as_ref().map(|t| t.as_str()).ok(),
                "{template}"
            );
        }
    }

    #[test]
    fn release_tags_are_told_from_the_tags_the_scheme_writes() {
        let envs: Vec<EnvName> = ["dev", "staging", "prod"]
            .iter()
            .map(|e| EnvName::new(*e).unwrap())
            .collect();
        let scheme = TagScheme::default();
        for release in [
            "v1",
            "v1.2.3",
            "1.0.0-rc.1",
            "latest",
            "v1-qa",
            "prod",
            "qa-blue",
            "prod-blue2",
        ] {
            assert!(
                scheme.is_release_tag(&Tag::new(release).unwrap(), &envs),
                "{release}"
            );
        }
        for written in [
            "latest-staging",
            "v1-prod",
            "v1.2.3-staging",
            "v1-prod-rollback-2",
            "v1-dev",
            "canary-prod",
            "prod-blue",
            "staging-green",
            "sha256-77b56b4af2ef6f404b6c96eceb8b8c37fe0a84eba1d2d54aa0a2364397d84c32",
            "sha256-77b56b4af2ef6f404b6c96eceb8b8c37fe0a84eba1d2d54aa0a2364397d84c32.sig",
            "sha256-77b56b4af2ef6f404b6c96eceb8b8c37fe0a84eba1d2d54aa0a2364397d84c32.att",
        ] {
            assert!(
                !scheme.is_release_tag(&Tag::new(written).unwrap(), &envs),
                "{written}"
            );
        }
        let custom = TagScheme {
            environment: "{env}.{version}".into(),
            pointer: "current.{env}".into(),
            rollback: "{env}.{version}.rb{n}".into(),
        };
        assert!(!custom.is_release_tag(&Tag::new("prod.v1").unwrap(), &envs));
        assert!(!custom.is_release_tag(&Tag::new("current.dev").unwrap(), &envs));
        assert!(!custom.is_release_tag(&Tag::new("prod.v1.rb3").unwrap(), &envs));
        assert!(custom.is_release_tag(&Tag::new("prodxv1").unwrap(), &envs));
        assert!(custom.is_release_tag(&Tag::new("v1-prod").unwrap(), &envs));
    }
}
