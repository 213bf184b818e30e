//! Gates as written: commands (argv, placeholders, no shell), the built-in gates, policy
//! rules and scan settings, converted for the [`Loader`](super::Loader).

use super::*;

impl Loader<'_> {
    pub(super) fn gate_name(&self, field: &str, value: &Spanned<String>) -> Result<String> {
        let name = value.value.as_str();
        let ok = name.len() <= 63
            && name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if ok {
            Ok(name.to_string())
        } else {
            Err(self.at(
                value,
                format!(
                    "{field}: invalid gate name {name:?}: 1 to 63 characters of A-Z a-z 0-9 _ - . starting with a letter or digit"
                ),
            ))
        }
    }

    /// An argv list as is, or a string without shell syntax split on whitespace.
    pub(super) fn argv(&self, field: &str, args: &RawArgs, at: &Location) -> Result<Vec<String>> {
        let argv = match args {
            RawArgs::Argv(argv) => argv.clone(),
            RawArgs::Line(line) => {
                let mut rest = line.clone();
                for p in PLACEHOLDERS {
                    rest = rest.replace(p, "");
                }
                if let Some(c) = rest.chars().find(|c| SHELL_CHARS.contains(c)) {
                    return Err(self.err(
                        Some(at),
                        format!(
                            "{field}: {line:?} contains `{c}`: commands are argument lists and never run through a shell; write it as a YAML list, e.g. [trivy, image, \"${{ARTIFACT_REF}}\"]"
                        ),
                    ));
                }
                line.split_whitespace().map(str::to_string).collect()
            }
        };
        if argv.first().is_none_or(|p| p.trim().is_empty()) {
            return Err(self.err(
                Some(at),
                format!("{field}: a command needs a program as its first argument"),
            ));
        }
        let mut argv = argv;
        // A program given as a relative path (`./smoke.sh`, `scripts/check`) is the manifest's
        // neighbour, like every other path in it; a bare name is looked up in PATH.
        if argv[0].contains('/') && Path::new(&argv[0]).is_relative() {
            argv[0] = self.path(&argv[0]).to_string_lossy().into_owned();
        }
        Ok(argv)
    }

    /// Commands run in the manifest's directory, so relative arguments mean the same from
    /// wherever floe is started.
    pub(super) fn anchored(&self, mut spec: CommandSpec) -> CommandSpec {
        if spec.working_dir.is_none() {
            spec.working_dir = self.base.clone();
        }
        spec
    }

    pub(super) fn command(
        &self,
        field: &str,
        args: &Spanned<RawArgs>,
        timeout: Option<&Spanned<u64>>,
    ) -> Result<CommandSpec> {
        let argv = self.argv(&format!("{field}.command"), &args.value, &args.referenced)?;
        let mut spec =
            CommandSpec::new(argv).map_err(|e| self.at(args, format!("{field}: {e}")))?;
        if let Some(t) = timeout {
            spec.timeout = Some(self.seconds(&format!("{field}.timeout_seconds"), t)?);
        }
        Ok(self.anchored(spec))
    }

    /// A `gate_commands` entry or an inline command gate.
    pub(super) fn command_value(
        &self,
        field: &str,
        value: &Spanned<RawGateValue>,
    ) -> Result<CommandSpec> {
        match &value.value {
            RawGateValue::Args(args) => {
                let argv = self.argv(field, args, &value.referenced)?;
                CommandSpec::new(argv)
                    .map(|spec| self.anchored(spec))
                    .map_err(|e| self.at(value, format!("{field}: {e}")))
            }
            RawGateValue::Map(map) => {
                self.command(field, &map.command, map.timeout_seconds.as_ref())
            }
            RawGateValue::Flag(_) => Err(self.at(
                value,
                format!("{field}: expected a command: a list of arguments or {{ command: [...], timeout_seconds: N }}"),
            )),
        }
    }

    pub(super) fn gates(
        &self,
        env: &EnvName,
        raw: &RawGates,
        gate_commands: &HashMap<String, CommandSpec>,
    ) -> Result<GateSettings> {
        let field = |f: &str| format!("environment {env}: gates.{f}");
        let mut gates = GateSettings {
            tests: raw.tests,
            signature: raw.signature,
            ..GateSettings::default()
        };
        if let Some(pc) = &raw.policy_compliance {
            gates.policy_compliance = match &pc.value {
                RawPolicyCompliance::Flag(false) => None,
                RawPolicyCompliance::Flag(true) => Some(PolicyRules {
                    require_evidence: true,
                    ..PolicyRules::default()
                }),
                RawPolicyCompliance::Rules(rules) => {
                    Some(self.policy_rules(&field("policy_compliance"), pc, rules)?)
                }
            };
        }
        if let Some(scan) = &raw.security_scan
            && let RawScanGate::On(s) = &scan.value
        {
            gates.security_scan = Some(self.scan(&field("security_scan"), scan, s)?);
        }
        for (key, value) in &raw.commands {
            let name = self.gate_name(&field(""), key)?;
            let f = field(&name);
            let spec = match &value.value {
                RawGateValue::Flag(false) => continue,
                RawGateValue::Flag(true) => match gate_commands.get(&name) {
                    Some(spec) => spec.clone(),
                    None => {
                        let mut defined: Vec<&str> =
                            gate_commands.keys().map(String::as_str).collect();
                        defined.sort_unstable();
                        return Err(self.at(
                            key,
                            format!(
                                "{f}: true refers to promotion.gate_commands.{name}, which is not defined (built-in gates: {}; gate_commands: {})",
                                BUILTIN_GATES.join(", "),
                                if defined.is_empty() { "none".to_string() } else { defined.join(", ") }
                            ),
                        ));
                    }
                },
                _ => self.command_value(&f, value)?,
            };
            gates.commands.push((name, spec));
        }
        Ok(gates)
    }

    pub(super) fn policy_rules(
        &self,
        field: &str,
        at: &Spanned<RawPolicyCompliance>,
        raw: &RawPolicyRules,
    ) -> Result<PolicyRules> {
        let mut rules = PolicyRules {
            require_evidence: raw.require_evidence,
            allowed_media_types: raw.allowed_media_types.clone(),
            ..PolicyRules::default()
        };
        rules.required_annotations = match &raw.required_annotations {
            None => BTreeMap::new(),
            Some(RawAnnotations::Keys(keys)) => keys.iter().map(|k| (k.clone(), None)).collect(),
            Some(RawAnnotations::Map(entries)) => entries
                .0
                .iter()
                .map(|(k, v)| (k.value.clone(), v.clone()))
                .collect(),
        };
        rules.max_size_bytes = match (&raw.max_size, &raw.max_size_bytes) {
            (Some(_), Some(b)) => {
                return Err(self.at(
                    b,
                    format!("{field}: give max_size or max_size_bytes, not both"),
                ));
            }
            (Some(s), None) => Some(parse_size(&s.value).ok_or_else(|| {
                self.at(
                    s,
                    format!(
                        "{field}.max_size: {:?} is not a size (expected e.g. 50MiB, 2GB or a number of bytes)",
                        s.value
                    ),
                )
            })?),
            (None, Some(b)) => Some(b.value),
            (None, None) => None,
        };
        if rules == PolicyRules::default() {
            return Err(self.at(
                at,
                format!("{field}: no rule is set; write policy_compliance: false to turn it off"),
            ));
        }
        Ok(rules)
    }

    pub(super) fn scan(
        &self,
        field: &str,
        at: &Spanned<RawScanGate>,
        raw: &RawScan,
    ) -> Result<ScanSettings> {
        let source = match (&raw.command, &raw.report) {
            (Some(cmd), None) => {
                ScanSource::Command(self.command(field, cmd, raw.timeout_seconds.as_ref())?)
            }
            (None, Some(report)) => {
                if raw.timeout_seconds.is_some() {
                    return Err(self.at(
                        at,
                        format!("{field}: timeout_seconds applies to a scanner command, not to a report file"),
                    ));
                }
                if report.value.trim().is_empty() {
                    return Err(self.at(report, format!("{field}.report: an empty path")));
                }
                ScanSource::Report(self.path(&report.value))
            }
            (Some(_), Some(_)) => {
                return Err(self.at(at, format!("{field}: give command or report, not both")));
            }
            (None, None) => {
                return Err(self.at(
                    at,
                    format!("{field}: needs a scanner: command: [...] or report: PATH"),
                ));
            }
        };
        let block_on_severity = match &raw.block_on_severity {
            None => vec![Severity::Critical, Severity::High],
            Some(list) => {
                if list.value.is_empty() {
                    return Err(self.at(
                        list,
                        format!("{field}.block_on_severity: at least one severity is required (a scan that blocks nothing is not a gate)"),
                    ));
                }
                let mut out = Vec::new();
                for s in &list.value {
                    let sev = self.severity(&format!("{field}.block_on_severity"), s)?;
                    if !out.contains(&sev) {
                        out.push(sev);
                    }
                }
                out
            }
        };
        Ok(ScanSettings {
            source,
            block_on_severity,
            ignore_unfixed: raw.ignore_unfixed,
        })
    }
}

/// "50MiB", "2GB", "1024": a size in bytes (SI units are powers of 1000, IEC of 1024).
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let number: u64 = number.parse().ok()?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "k" => 1000,
        "mb" | "m" => 1000_u64.pow(2),
        "gb" | "g" => 1000_u64.pow(3),
        "tb" | "t" => 1000_u64.pow(4),
        "kib" | "ki" => 1 << 10,
        "mib" | "mi" => 1 << 20,
        "gib" | "gi" => 1 << 30,
        "tib" | "ti" => 1 << 40,
        _ => return None,
    };
    number.checked_mul(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("50MiB"), Some(50 << 20));
        assert_eq!(parse_size("2GB"), Some(2_000_000_000));
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("10 kib"), Some(10240));
        for bad in ["", "MiB", "1.5GiB", "-1", "5XB", "99999999999999999999"] {
            assert_eq!(parse_size(bad), None, "{bad:?}");
        }
        assert_eq!(parse_size("99999999999TiB"), None);
    }
}
