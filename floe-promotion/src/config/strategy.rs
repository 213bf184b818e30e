//! How a new version is released in an environment (direct, canary, blue-green), and
//! automatic promotion into it.

use std::time::Duration;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::model::{EnvName, Tag};

/// How a new version is released in an environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// The pointer moves at once.
    Direct,
    /// The new digest on `canary-<env>` with a traffic weight per step (Argo Rollouts'
    /// vocabulary); the pointer moves at 100.
    Canary {
        /// The steps, weights increasing, the last at 100.
        steps: Vec<CanaryStep>,
    },
    /// Two slot tags, `<env>-blue` and `<env>-green`: a new version goes to the idle slot (the
    /// preview) and `switch` moves the pointer to it.
    BlueGreen {
        /// Switch to the preview as soon as it is staged.
        auto_switch: bool,
    },
}

/// One step of a canary release.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanaryStep {
    /// The share of traffic for the new version, in percent (1 to 100).
    pub weight: u8,
    /// How long to stay at this weight before advancing by itself; `None` waits for an explicit
    /// advance (the last step, at 100, takes none).
    pub pause: Option<Duration>,
}

/// Automatic promotion into an environment (`auto_promote` in the manifest).
#[derive(Clone, Debug)]
pub struct AutoPromotion {
    /// Where candidates come from (an earlier environment).
    pub from: EnvName,
    /// How long a version must have run in `from`, without interruption, to be a candidate.
    pub soak: Duration,
    /// Only versions matching this pattern are candidates.
    pub versions: Option<Regex>,
}

impl AutoPromotion {
    /// Candidates from `from` after a soak of `soak`, every version.
    pub fn new(from: EnvName, soak: Duration) -> Self {
        AutoPromotion {
            from,
            soak,
            versions: None,
        }
    }

    /// Whether `version` may be promoted automatically (matches `versions`, when set).
    pub fn admits(&self, version: &Tag) -> bool {
        self.versions
            .as_ref()
            .is_none_or(|p| p.is_match(version.as_str()))
    }
}
