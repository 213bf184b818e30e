//! Holds on automatic promotion.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::EnvName;

/// Why a hold was placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldKind {
    /// Placed by a person (`floe hold ENV --reason`); only a release ends it.
    Manual,
    /// Placed by a rollback; a manual promotion into the environment or a release ends it.
    Rollback,
}

impl HoldKind {
    /// The snake_case name (`manual`, `rollback`).
    pub fn as_str(self) -> &'static str {
        match self {
            HoldKind::Manual => "manual",
            HoldKind::Rollback => "rollback",
        }
    }
}

impl fmt::Display for HoldKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for HoldKind {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "manual" => Ok(HoldKind::Manual),
            "rollback" => Ok(HoldKind::Rollback),
            other => Err(crate::Error::invalid(
                "hold kind",
                other,
                "expected manual or rollback",
            )),
        }
    }
}

/// One holder's hold on automatic promotion into an environment. Automatic promotion into an
/// environment waits while it has any hold; each holder releases their own, so several teams
/// can stop the line at once and it moves again only when all of them let go.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// The held environment.
    pub environment: EnvName,
    /// Who holds it (an actor id).
    pub holder: String,
    /// Why it was placed: by hand or by a rollback.
    pub kind: HoldKind,
    /// Why.
    pub reason: String,
    /// When.
    pub placed: DateTime<Utc>,
}
