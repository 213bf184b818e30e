//! One environment as written (repository, gates, rules, approvals, windows, strategy),
//! converted for the [`Loader`](super::Loader).

use super::*;

impl Loader<'_> {
    pub(super) fn environment(
        &self,
        raw: &RawEnvironment,
        name: &EnvName,
        names: &[EnvName],
        gate_commands: &HashMap<String, CommandSpec>,
    ) -> Result<Environment> {
        let field = |f: &str| format!("environment {name}: {f}");
        let known = || {
            names
                .iter()
                .map(EnvName::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut env = Environment::new(name.clone());
        if let Some(repo) = &raw.repository {
            env.repository = Some(self.repository(&field("repository"), repo)?);
        }
        if let Some(gates) = &raw.gates {
            env.gates = self.gates(name, gates, gate_commands)?;
        }
        if let Some(t) = &raw.gate_timeout_seconds {
            env.gate_timeout = Some(self.seconds(&field("gate_timeout_seconds"), t)?);
        }
        if let Some(a) = &raw.authorization {
            env.authorization = Authorization {
                allowed_groups: a.allowed_groups.clone(),
                allowed_operators: a.allowed_operators.clone(),
                separation_of_duties: a.separation_of_duties,
            };
        }
        if let Some(a) = &raw.approval {
            let raw_policy = &a.value;
            let timeout = match &raw_policy.timeout {
                Some(d) => self.duration(&field("approval.timeout"), d)?,
                None => Duration::from_secs(24 * 3600),
            };
            let policy = ApprovalPolicy {
                rules: raw_policy
                    .rules
                    .iter()
                    .map(|r| ApprovalRule {
                        name: r.value.name.clone(),
                        required: r.value.required,
                        users: r.value.users.clone(),
                        groups: r.value.groups.clone(),
                    })
                    .collect(),
                timeout,
                separation: raw_policy
                    .separation_of_duties
                    .as_ref()
                    .map(|s| s.value)
                    .unwrap_or_default(),
                signers: raw_policy
                    .signers
                    .as_ref()
                    .map(|s| self.signers(&field("approval.signers"), s))
                    .transpose()?,
            };
            if let Err(message) = policy.validate(&field("approval")) {
                // Point at the rule the message is about, else at the approval block.
                let spot = raw_policy
                    .rules
                    .iter()
                    .find(|r| message.contains(&format!("[{}]", r.value.name)))
                    .map(|r| &r.referenced)
                    .unwrap_or(&a.referenced);
                return Err(self.err(Some(spot), message));
            }
            env.approval = Some(policy);
        }
        if let Some(policy) = &raw.policy {
            let mut settings = PolicySettings::default();
            if let Some(p) = &policy.version_pattern {
                settings.version_pattern = Some(self.regex(&field("policy.version_pattern"), p)?);
            }
            if let Some(d) = &policy.minimum_soak {
                settings.minimum_soak = Some(self.duration(&field("policy.minimum_soak"), d)?);
            }
            for source in &policy.allowed_sources {
                let f = field("policy.allowed_sources");
                let source_name = self.env_name(&f, source)?;
                if !names.contains(&source_name) {
                    return Err(self.at(
                        source,
                        format!(
                            "{f}: unknown environment {:?} (known: {})",
                            source.value,
                            known()
                        ),
                    ));
                }
                settings.allowed_sources.push(source_name);
            }
            env.policy = settings;
        }
        for (i, window) in raw.freeze_windows.iter().enumerate() {
            env.freeze_windows
                .push(self.freeze_window(&field(&format!("freeze_windows[{i}]")), window)?);
        }
        let now = Utc::now();
        for (i, window) in raw.windows.iter().enumerate() {
            env.windows
                .push(self.window(&field(&format!("windows[{i}]")), window, now)?);
        }
        if let Some(s) = &raw.strategy {
            env.strategy = self.strategy(&field("strategy"), s)?;
        }
        if let Some(auto) = &raw.auto_promote {
            let f = field("auto_promote.from");
            let from = self.env_name(&f, &auto.value.from)?;
            let Some(from_position) = names.iter().position(|n| n == &from) else {
                return Err(self.at(
                    &auto.value.from,
                    format!(
                        "{f}: unknown environment {:?} (known: {})",
                        auto.value.from.value,
                        known()
                    ),
                ));
            };
            let own_position = names.iter().position(|n| n == &env.name);
            if own_position.is_none_or(|own| from_position >= own) {
                return Err(self.at(
                    &auto.value.from,
                    format!(
                        "{f}: {from} does not come before {} in the promotion order; automatic promotion only moves forward",
                        env.name
                    ),
                ));
            }
            let soak = match &auto.value.soak {
                Some(d) => self.duration(&field("auto_promote.soak"), d)?,
                None => Duration::ZERO,
            };
            let versions = match &auto.value.versions {
                Some(p) => Some(self.regex(&field("auto_promote.versions"), p)?),
                None => None,
            };
            env.auto_promotion = Some(AutoPromotion {
                from,
                soak,
                versions,
            });
        }
        Ok(env)
    }
}
