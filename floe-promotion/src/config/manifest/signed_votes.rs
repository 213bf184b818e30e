//! Signed approval votes in the manifest: the top-level `groups: { release: [bob, erin] }`
//! (group membership of signers, declared rather than claimed on the command line) and an
//! environment's `approval.signers` (an `allowed_signers` file, relative to the manifest).
//! Rules of an environment with signers are checked against both: a user with no key in the
//! file, or a group nobody declared, could never sign a vote.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_saphyr::Spanned;

use super::{Entries, Loader, RawEnvironment};
use crate::config::{AllowedSigners, Environment};
use crate::error::{Error, Excerpt, Result};
use crate::model::Actor;

/// `groups` as written: group name to member principals.
pub(super) type RawGroups = Entries<Vec<Spanned<String>>>;

impl Loader<'_> {
    /// The declared groups, checked where they were written: names without spaces or control
    /// characters, each once; members that are valid actor ids.
    pub(super) fn groups(&self, raw: Option<&RawGroups>) -> Result<BTreeMap<String, Vec<String>>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, members) in raw.iter().flat_map(|g| &g.0) {
            let n = name.value.trim();
            if n.is_empty() || n.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(self.at(
                    name,
                    format!(
                        "groups: {:?} is not a group name (no spaces or control characters)",
                        Excerpt::new(n).to_string()
                    ),
                ));
            }
            if out.contains_key(n) {
                return Err(self.at(name, format!("groups: {n:?} is declared twice")));
            }
            let mut list = Vec::new();
            for m in members {
                let member = m.value.trim();
                Actor::new(member).map_err(|e| self.at(m, format!("groups.{n}: {e}")))?;
                if !list.iter().any(|x| x == member) {
                    list.push(member.to_string());
                }
            }
            out.insert(n.to_string(), list);
        }
        Ok(out)
    }

    /// `approval.signers`: the `allowed_signers` file, resolved against the manifest's
    /// directory and read now. A missing or unreadable file is a manifest error at the
    /// `signers` line naming the file; a malformed line is an error in the signers file
    /// naming its line and field.
    pub(super) fn signers(
        &self,
        field: &str,
        value: &Spanned<String>,
    ) -> Result<Arc<AllowedSigners>> {
        if value.value.trim().is_empty() {
            return Err(self.at(value, format!("{field}: an empty path")));
        }
        let path = self.path(value.value.trim());
        AllowedSigners::load(&path)
            .map(Arc::new)
            .map_err(|e| match e {
                Error::Io { source, .. } => self.at(
                    value,
                    format!(
                        "{field}: cannot read the allowed_signers file {}: {source}",
                        Excerpt::path(&path)
                    ),
                ),
                other => other,
            })
    }

    /// Rules of environments with signers name only principals the file lists and groups the
    /// manifest declares.
    pub(super) fn check_signed_rules(
        &self,
        raw: &[RawEnvironment],
        environments: &[Environment],
        groups: &BTreeMap<String, Vec<String>>,
    ) -> Result<()> {
        for (raw_env, env) in raw.iter().zip(environments) {
            let (Some(policy), Some(raw_policy)) = (&env.approval, &raw_env.approval) else {
                continue;
            };
            let Some(signers) = &policy.signers else {
                continue;
            };
            for (rule, raw_rule) in policy.rules.iter().zip(&raw_policy.value.rules) {
                let field = format!("environment {}: approval.rules[{}]", env.name, rule.name);
                if let Some(user) = rule.users.iter().find(|u| !signers.has_principal(u)) {
                    return Err(self.at(
                        raw_rule,
                        format!(
                            "{field}.users: {user:?} has no key in the allowed_signers file {}, so {user} could never sign a vote",
                            Excerpt::path(signers.file())
                        ),
                    ));
                }
                if let Some(group) = rule.groups.iter().find(|g| !groups.contains_key(*g)) {
                    return Err(self.at(
                        raw_rule,
                        format!(
                            "{field}.groups: group {group:?} is not declared under the top-level `groups:`; with approval.signers a voter's groups come from there (declared: {})",
                            if groups.is_empty() {
                                "none".to_string()
                            } else {
                                groups.keys().cloned().collect::<Vec<_>>().join(", ")
                            }
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}
