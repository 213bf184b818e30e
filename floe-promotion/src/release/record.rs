//! The release record a [`ReleaseStore`](super::ReleaseStore) keeps, and the rules every store
//! applies to what it is given.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::model::text::{is_unsafe_char, printable};
use crate::model::{ArtifactName, Digest, EnvName, Tag};

/// The longest status accepted, in bytes.
pub const MAX_STATUS_LEN: usize = 64;

/// The longest effect key accepted, in bytes.
pub const MAX_EFFECT_KEY_LEN: usize = 256;

/// Which long-running process a release is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ReleaseKind {
    /// A promotion waiting for, or executing after, approval.
    Approval,
    /// A canary rollout in steps.
    Canary,
    /// A blue-green switch.
    BlueGreen,
    /// An automatic promotion's claim on one candidate, so that concurrent passes promote it
    /// once.
    AutoPromotion,
}

impl ReleaseKind {
    /// The name stored and shown: `approval`, `canary`, `blue_green`, `auto_promotion`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseKind::Approval => "approval",
            ReleaseKind::Canary => "canary",
            ReleaseKind::BlueGreen => "blue_green",
            ReleaseKind::AutoPromotion => "auto_promotion",
        }
    }
}

impl fmt::Display for ReleaseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a state machine stores about its process: its state name as an indexed `status`
/// (e.g. `pending`), and its whole state as JSON. Each machine encodes and decodes its own
/// state ([`ReleaseState::encode`], [`Release::decode_state`]), so the store stays generic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseState {
    /// The machine's state name: 1 to [`MAX_STATUS_LEN`] bytes of `a-z`, `0-9`, `_`, `-`.
    pub status: String,
    /// The machine's state.
    pub state: serde_json::Value,
}

impl ReleaseState {
    /// A state from its parts.
    pub fn new(status: impl Into<String>, state: serde_json::Value) -> Self {
        ReleaseState {
            status: status.into(),
            state,
        }
    }

    /// Encodes a machine's typed state as JSON under `status`.
    pub fn encode<S: Serialize>(status: impl Into<String>, state: &S) -> Result<Self> {
        let status = status.into();
        let state = serde_json::to_value(state).map_err(|e| {
            Error::invalid(
                "release state",
                status.clone(),
                format!("the state cannot be encoded as JSON: {e}"),
            )
        })?;
        Ok(ReleaseState { status, state })
    }
}

/// The stored state of one long-running release process (an approval, a canary, a blue-green
/// switch) of one artifact version into one environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// Id.
    pub id: Uuid,
    /// Which process it is.
    pub kind: ReleaseKind,
    /// The environment it releases into.
    pub environment: EnvName,
    /// The artifact.
    pub artifact: ArtifactName,
    /// The version tag being released, e.g. `v1.2.0`.
    pub tag: Tag,
    /// The digest the release is bound to.
    pub digest: Digest,
    /// The machine's state name (indexed, see [`ReleaseFilter::status`]).
    pub status: String,
    /// The machine's state.
    pub state: serde_json::Value,
    /// When it was created.
    pub created: DateTime<Utc>,
    /// When it was last updated (its creation for version 1).
    pub updated: DateTime<Utc>,
    /// Compare-and-set version: 1 when created, one more on every update.
    pub version: u64,
}

impl Release {
    /// A new release at version 1, with a random id, created and updated `now`.
    pub fn new(
        kind: ReleaseKind,
        environment: EnvName,
        artifact: ArtifactName,
        tag: Tag,
        digest: Digest,
        state: ReleaseState,
        now: DateTime<Utc>,
    ) -> Self {
        Release {
            id: Uuid::new_v4(),
            kind,
            environment,
            artifact,
            tag,
            digest,
            status: state.status,
            state: state.state,
            created: now,
            updated: now,
            version: 1,
        }
    }

    /// The status and state, as given to [`ReleaseStore::update`](super::ReleaseStore::update).
    pub fn release_state(&self) -> ReleaseState {
        ReleaseState::new(self.status.clone(), self.state.clone())
    }

    /// Decodes the stored state as a machine's typed state; the error names the release.
    pub fn decode_state<S: DeserializeOwned>(&self) -> Result<S> {
        S::deserialize(&self.state).map_err(|e| {
            Error::Conflict(format!(
                "{} release {} (status {}, version {}): the stored state is not a valid {} state: {e}",
                self.kind,
                self.id,
                self.status,
                self.version,
                std::any::type_name::<S>()
            ))
        })
    }

    /// This release after a successful compare-and-set: the new state, one more version,
    /// updated `now`. The rule every store applies inside its atomic update.
    pub fn advanced(&self, state: ReleaseState, now: DateTime<Utc>) -> Release {
        Release {
            status: state.status,
            state: state.state,
            updated: now,
            version: self.version + 1,
            ..self.clone()
        }
    }

    /// Whether it matches every field set in `filter`.
    pub fn matches(&self, filter: &ReleaseFilter) -> bool {
        filter
            .environment
            .as_ref()
            .is_none_or(|e| *e == self.environment)
            && filter.artifact.as_ref().is_none_or(|a| *a == self.artifact)
            && filter.kind.is_none_or(|k| k == self.kind)
            && filter.status.as_deref().is_none_or(|s| s == self.status)
    }

    /// The order of [`ReleaseStore::list`](super::ReleaseStore::list): oldest first, then by id.
    pub fn list_order(&self) -> (DateTime<Utc>, Uuid) {
        (self.created, self.id)
    }
}

/// Which releases [`ReleaseStore::list`](super::ReleaseStore::list) returns: those matching
/// every field that is set. `ReleaseFilter::default()` matches all.
///
/// ```
/// use floe_promotion::EnvName;
/// use floe_promotion::release::{ReleaseFilter, ReleaseKind};
///
/// let pending_approvals_in_prod = ReleaseFilter::default()
///     .environment(EnvName::new("prod")?)
///     .kind(ReleaseKind::Approval)
///     .status("pending");
/// # Ok::<(), floe_promotion::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReleaseFilter {
    /// Only releases into this environment.
    pub environment: Option<EnvName>,
    /// Only releases of this artifact.
    pub artifact: Option<ArtifactName>,
    /// Only releases of this kind.
    pub kind: Option<ReleaseKind>,
    /// Only releases with this status.
    pub status: Option<String>,
}

impl ReleaseFilter {
    /// Only releases into `environment`.
    pub fn environment(mut self, environment: EnvName) -> Self {
        self.environment = Some(environment);
        self
    }

    /// Only releases of `artifact`.
    pub fn artifact(mut self, artifact: ArtifactName) -> Self {
        self.artifact = Some(artifact);
        self
    }

    /// Only releases of `kind`.
    pub fn kind(mut self, kind: ReleaseKind) -> Self {
        self.kind = Some(kind);
        self
    }

    /// Only releases whose status is `status`.
    pub fn status(mut self, status: impl Into<String>) -> Self {
        self.status = Some(status.into());
        self
    }
}

/// Refuses a status that is empty, longer than [`MAX_STATUS_LEN`] bytes, or holds anything
/// but `a-z`, `0-9`, `_` and `-`. The rule every store applies before writing.
pub fn check_status(status: &str) -> Result<()> {
    if status.is_empty() || status.len() > MAX_STATUS_LEN {
        return Err(Error::invalid(
            "release status",
            status,
            format!("a release status has 1 to {MAX_STATUS_LEN} bytes"),
        ));
    }
    if let Some(c) = status
        .chars()
        .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '_' | '-'))
    {
        return Err(Error::invalid(
            "release status",
            printable(status).into_owned(),
            format!(
                "a release status holds only a-z, 0-9, '_' and '-'; found {}",
                c.escape_default()
            ),
        ));
    }
    Ok(())
}

/// Refuses an effect key that is empty, longer than [`MAX_EFFECT_KEY_LEN`] bytes, or holds a
/// control or bidirectional-override character. The rule every store applies before writing.
pub fn check_effect_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_EFFECT_KEY_LEN {
        return Err(Error::invalid(
            "effect key",
            key,
            format!("an effect key has 1 to {MAX_EFFECT_KEY_LEN} bytes"),
        ));
    }
    if let Some((at, c)) = key.char_indices().find(|(_, c)| is_unsafe_char(*c)) {
        return Err(Error::invalid(
            "effect key",
            printable(key).into_owned(),
            format!(
                "an effect key may not contain control characters; found {} at byte {at}",
                c.escape_unicode()
            ),
        ));
    }
    Ok(())
}

/// Refuses what [`ReleaseStore::create`](super::ReleaseStore::create) must not store: a
/// version other than 1 or an invalid status.
pub fn check_new_release(release: &Release) -> Result<()> {
    if release.version != 1 {
        return Err(Error::invalid(
            "release version",
            release.version.to_string(),
            format!(
                "{} release {} is created at version 1 (see Release::new)",
                release.kind, release.id
            ),
        ));
    }
    check_status(&release.status)
}

/// The conflict of a compare-and-set that found another version; names both.
pub fn version_conflict(release: &Release, expected: u64) -> Error {
    Error::Conflict(format!(
        "{} release {} of {} in {} changed concurrently: expected version {expected}, stored \
         version {} (status {})",
        release.kind,
        release.id,
        release.artifact,
        release.environment,
        release.version,
        release.status
    ))
}

/// The conflict of a `create` whose id is taken; names the release that holds it.
pub fn release_exists(existing: &Release) -> Error {
    Error::Conflict(format!(
        "release {} already exists ({} of {} in {}, version {})",
        existing.id, existing.kind, existing.artifact, existing.environment, existing.version
    ))
}

/// The error for an unknown release id.
pub fn release_not_found(id: Uuid) -> Error {
    Error::not_found(format!("release {id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_checked() {
        for ok in [
            "pending",
            "step-2",
            "blue_green",
            "a",
            &"x".repeat(MAX_STATUS_LEN),
        ] {
            check_status(ok).expect(ok);
        }
        for bad in [
            "",
            "Pending",
            "wait ing",
            "a\nb",
            "é",
            &"x".repeat(MAX_STATUS_LEN + 1),
        ] {
            assert!(
                matches!(
                    check_status(bad),
                    Err(Error::InvalidInput {
                        what: "release status",
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn effect_keys_are_checked() {
        check_effect_key("write-tags@v3 prod/app:v1.2.0 ✓").expect("printable text is fine");
        for bad in [
            "",
            "a\u{1b}[2Jb",
            "a\u{202e}b",
            &"k".repeat(MAX_EFFECT_KEY_LEN + 1),
        ] {
            assert!(
                matches!(
                    check_effect_key(bad),
                    Err(Error::InvalidInput {
                        what: "effect key",
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn kinds_serialise_as_their_names() {
        for kind in [
            ReleaseKind::Approval,
            ReleaseKind::Canary,
            ReleaseKind::BlueGreen,
        ] {
            assert_eq!(
                serde_json::to_value(kind).expect("json"),
                serde_json::Value::String(kind.as_str().into())
            );
            assert_eq!(kind.to_string(), kind.as_str());
        }
    }

    #[test]
    fn decode_state_names_the_release() {
        let release = Release::new(
            ReleaseKind::Canary,
            EnvName::new("prod").expect("env"),
            ArtifactName::new("app").expect("artifact"),
            Tag::new("v1").expect("tag"),
            Digest::of(b"x"),
            ReleaseState::new("step", serde_json::json!({"weight": "ten"})),
            Utc::now(),
        );
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Step {
            weight: u8,
        }
        let e = release.decode_state::<Step>().expect_err("wrong type");
        let msg = e.to_string();
        assert!(msg.contains(&release.id.to_string()), "{msg}");
        assert!(msg.contains("canary"), "{msg}");
    }
}
