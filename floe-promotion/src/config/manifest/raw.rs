//! The raw layer of the manifest: structs that mirror the YAML exactly, with
//! `deny_unknown_fields` everywhere, so a typo is an error with its line and column; the
//! conversion in the parent module checks every value.

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawManifest {
    pub(super) artifacts: RawArtifacts,
    #[serde(default)]
    pub(super) groups: Option<signed_votes::RawGroups>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawArtifacts {
    #[serde(default)]
    pub(super) registry: Option<RawRegistry>,
    pub(super) promotion: RawPromotion,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRegistry {
    pub(super) uri: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPromotion {
    #[serde(default)]
    pub(super) environments: Option<Spanned<Vec<RawEnvironment>>>,
    #[serde(default)]
    pub(super) webhooks: Option<Spanned<Vec<Spanned<webhooks::RawWebhook>>>>,
    #[serde(default)]
    pub(super) attestation: Option<attestation::RawAttestation>,
    #[serde(default)]
    pub(super) gate_commands: Option<Entries<Spanned<RawGateValue>>>,
    #[serde(default)]
    pub(super) default_timeout_seconds: Option<Spanned<u64>>,
    #[serde(default)]
    pub(super) signature_enforcement: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) trusted_keys: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) insecure_registries: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) registry_timeout_seconds: Option<Spanned<u64>>,
    #[serde(default)]
    pub(super) allow_skip: bool,
    #[serde(default)]
    pub(super) lease_ttl_seconds: Option<Spanned<u64>>,
    #[serde(default)]
    pub(super) tag_scheme: Option<RawTagScheme>,
    #[serde(default)]
    pub(super) artifacts: Option<artifacts::RawArtifacts>,
    #[serde(default)]
    pub(super) server: Option<server::RawServer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTagScheme {
    #[serde(default)]
    pub(super) environment: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) pointer: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) rollback: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEnvironment {
    pub(super) name: Spanned<String>,
    #[serde(default)]
    pub(super) repository: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) gates: Option<RawGates>,
    #[serde(default)]
    pub(super) gate_timeout_seconds: Option<Spanned<u64>>,
    #[serde(default)]
    pub(super) authorization: Option<RawAuthorization>,
    #[serde(default)]
    pub(super) approval: Option<Spanned<RawApproval>>,
    #[serde(default)]
    pub(super) policy: Option<RawPolicy>,
    #[serde(default)]
    pub(super) freeze_windows: Vec<Spanned<RawFreezeWindow>>,
    #[serde(default)]
    pub(super) windows: Vec<Spanned<RawWindow>>,
    #[serde(default)]
    pub(super) strategy: Option<Spanned<RawStrategy>>,
    #[serde(default, alias = "auto_promotion")]
    pub(super) auto_promote: Option<Spanned<RawAutoPromotion>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAuthorization {
    #[serde(default)]
    pub(super) allowed_groups: Vec<String>,
    #[serde(default)]
    pub(super) allowed_operators: Vec<String>,
    #[serde(default)]
    pub(super) separation_of_duties: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApproval {
    pub(super) rules: Vec<Spanned<RawApprovalRule>>,
    #[serde(default)]
    pub(super) timeout: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) separation_of_duties: Option<Spanned<ApprovalSeparation>>,
    #[serde(default)]
    pub(super) signers: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApprovalRule {
    pub(super) name: String,
    pub(super) required: u32,
    #[serde(default)]
    pub(super) users: Vec<String>,
    #[serde(default)]
    pub(super) groups: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPolicy {
    #[serde(default)]
    pub(super) version_pattern: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) minimum_soak: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) allowed_sources: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFreezeWindow {
    #[serde(default)]
    pub(super) start: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) end: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) days: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    pub(super) from: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) to: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) reason: Option<String>,
}

/// A promotion window: `{ kind, rrule, duration, timezone, start?, reason }` or
/// `{ kind, start, end | duration, timezone?, reason }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWindow {
    #[serde(default)]
    pub(super) kind: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) rrule: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) duration: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) timezone: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) start: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) end: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAutoPromotion {
    pub(super) from: Spanned<String>,
    #[serde(default)]
    pub(super) soak: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) versions: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStrategyMap {
    #[serde(default)]
    pub(super) direct: Option<Spanned<de::IgnoredAny>>,
    #[serde(default)]
    pub(super) canary: Option<Spanned<RawCanary>>,
    #[serde(default)]
    pub(super) blue_green: Option<Spanned<RawBlueGreen>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCanary {
    pub(super) steps: Spanned<Vec<Spanned<RawCanaryStep>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCanaryStep {
    pub(super) weight: Spanned<i64>,
    #[serde(default)]
    pub(super) pause: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBlueGreen {
    #[serde(default)]
    pub(super) auto_switch: bool,
}

/// `strategy: direct`, `strategy: blue_green`, `strategy: { canary: { steps: [...] } }` or
/// `strategy: { blue_green: { auto_switch: false } }`.
pub(super) enum RawStrategy {
    Name(String),
    Map(Box<RawStrategyMap>),
}

impl<'de> Deserialize<'de> for RawStrategy {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawStrategy;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "direct, blue_green, or a mapping like { canary: { steps: [{ weight: 10, pause: 1h }, { weight: 100 }] } }",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<RawStrategy, E> {
                Ok(RawStrategy::Name(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<RawStrategy, A::Error> {
                RawStrategyMap::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|m| RawStrategy::Map(Box::new(m)))
            }
        }
        d.deserialize_any(V)
    }
}

/// A mapping read in document order, keys with their locations.
pub(super) struct Entries<T>(pub(super) Vec<(Spanned<String>, T)>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Entries<T> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Entries<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Entries<T>, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    let value = map.next_value::<T>()?;
                    entries.push((key, value));
                }
                Ok(Entries(entries))
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

/// A command written as an argv list or as a plain string (checked, then split).
pub(super) enum RawArgs {
    Argv(Vec<String>),
    Line(String),
}

impl<'de> Deserialize<'de> for RawArgs {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawArgs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a command as a list of arguments, e.g. [make, lint]")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<RawArgs, E> {
                Ok(RawArgs::Line(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                seq: A,
            ) -> std::result::Result<RawArgs, A::Error> {
                Vec::<String>::deserialize(de::value::SeqAccessDeserializer::new(seq))
                    .map(RawArgs::Argv)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCommandMap {
    pub(super) command: Spanned<RawArgs>,
    #[serde(default)]
    pub(super) timeout_seconds: Option<Spanned<u64>>,
}

/// A command gate's value: `true`/`false` (a `gate_commands` reference), an argv list, a
/// string, or `{ command, timeout_seconds }`.
pub(super) enum RawGateValue {
    Flag(bool),
    Args(RawArgs),
    Map(RawCommandMap),
}

impl<'de> Deserialize<'de> for RawGateValue {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawGateValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a command: a list of arguments, { command: [...], timeout_seconds: N }, or true to use the gate_commands entry of that name",
                )
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> std::result::Result<RawGateValue, E> {
                Ok(RawGateValue::Flag(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<RawGateValue, E> {
                Ok(RawGateValue::Args(RawArgs::Line(v.to_string())))
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                seq: A,
            ) -> std::result::Result<RawGateValue, A::Error> {
                Vec::<String>::deserialize(de::value::SeqAccessDeserializer::new(seq))
                    .map(|v| RawGateValue::Args(RawArgs::Argv(v)))
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<RawGateValue, A::Error> {
                RawCommandMap::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawGateValue::Map)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPolicyRules {
    #[serde(default)]
    pub(super) require_evidence: bool,
    #[serde(default)]
    pub(super) required_annotations: Option<RawAnnotations>,
    #[serde(default)]
    pub(super) allowed_media_types: Vec<String>,
    #[serde(default)]
    pub(super) max_size: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) max_size_bytes: Option<Spanned<u64>>,
}

/// `policy_compliance: true` or its rules.
pub(super) enum RawPolicyCompliance {
    Flag(bool),
    Rules(Box<RawPolicyRules>),
}

impl<'de> Deserialize<'de> for RawPolicyCompliance {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawPolicyCompliance;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false, or a mapping of policy rules")
            }
            fn visit_bool<E: de::Error>(
                self,
                v: bool,
            ) -> std::result::Result<RawPolicyCompliance, E> {
                Ok(RawPolicyCompliance::Flag(v))
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<RawPolicyCompliance, A::Error> {
                RawPolicyRules::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|r| RawPolicyCompliance::Rules(Box::new(r)))
            }
        }
        d.deserialize_any(V)
    }
}

/// `required_annotations: { key: value-or-null }` or `[key, ...]`.
pub(super) enum RawAnnotations {
    Keys(Vec<String>),
    Map(Entries<Option<String>>),
}

impl<'de> Deserialize<'de> for RawAnnotations {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawAnnotations;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a list of annotation keys or a mapping of key to value (null: any value)",
                )
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                seq: A,
            ) -> std::result::Result<RawAnnotations, A::Error> {
                Vec::<String>::deserialize(de::value::SeqAccessDeserializer::new(seq))
                    .map(RawAnnotations::Keys)
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<RawAnnotations, A::Error> {
                Entries::<Option<String>>::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawAnnotations::Map)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScan {
    #[serde(default)]
    pub(super) command: Option<Spanned<RawArgs>>,
    #[serde(default)]
    pub(super) report: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) block_on_severity: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    pub(super) ignore_unfixed: bool,
    #[serde(default)]
    pub(super) timeout_seconds: Option<Spanned<u64>>,
}

/// `security_scan: false` or its settings.
pub(super) enum RawScanGate {
    Off,
    On(Box<RawScan>),
}

impl<'de> Deserialize<'de> for RawScanGate {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawScanGate;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping with `command: [...]` or `report: PATH`, or false")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> std::result::Result<RawScanGate, E> {
                if v {
                    Err(E::custom(
                        "security_scan: true names no scanner: give { command: [...] } or { report: PATH }",
                    ))
                } else {
                    Ok(RawScanGate::Off)
                }
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<RawScanGate, A::Error> {
                RawScan::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|s| RawScanGate::On(Box::new(s)))
            }
        }
        d.deserialize_any(V)
    }
}

/// An environment's `gates`: the built-in keys, and any other key as a command gate.
#[derive(Default)]
pub(super) struct RawGates {
    pub(super) tests: bool,
    pub(super) policy_compliance: Option<Spanned<RawPolicyCompliance>>,
    pub(super) security_scan: Option<Spanned<RawScanGate>>,
    pub(super) signature: Option<bool>,
    pub(super) commands: Vec<(Spanned<String>, Spanned<RawGateValue>)>,
}

impl<'de> Deserialize<'de> for RawGates {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawGates;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of gates: tests, policy_compliance, security_scan, signature, or a named command")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<RawGates, A::Error> {
                let mut gates = RawGates::default();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    match key.value.as_str() {
                        "tests" => gates.tests = map.next_value()?,
                        "policy_compliance" => gates.policy_compliance = Some(map.next_value()?),
                        "security_scan" => gates.security_scan = Some(map.next_value()?),
                        "signature" => gates.signature = Some(map.next_value()?),
                        _ => {
                            let value = map.next_value()?;
                            gates.commands.push((key, value));
                        }
                    }
                }
                Ok(gates)
            }
        }
        d.deserialize_map(V)
    }
}
