//! in-toto Statement v1: a typed predicate about subjects identified by digest.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::Digest;

/// The `_type` of an in-toto Statement v1.
pub const IN_TOTO_STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";

/// An in-toto ResourceDescriptor: a subject or an input, named and identified by digests.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceDescriptor {
    /// A name for the resource (a repository reference for a subject).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A URI locating the resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Algorithm to lowercase hex digest, e.g. `sha256`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub digest: BTreeMap<String, String>,
}

impl ResourceDescriptor {
    /// A descriptor for an OCI digest, with `name`.
    pub fn oci(name: impl Into<String>, digest: &Digest) -> Self {
        ResourceDescriptor {
            name: Some(name.into()),
            uri: None,
            digest: BTreeMap::from([("sha256".to_string(), digest.hex().to_string())]),
        }
    }

    /// The `sha256` digest, when present and well formed.
    pub fn sha256(&self) -> Option<Digest> {
        self.digest
            .get("sha256")
            .and_then(|hex| format!("sha256:{hex}").parse().ok())
    }
}

/// An in-toto Statement v1.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    /// Always [`IN_TOTO_STATEMENT_V1`].
    #[serde(rename = "_type")]
    pub type_: String,
    /// What the statement is about.
    pub subject: Vec<ResourceDescriptor>,
    /// The predicate's type URI.
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// The predicate.
    pub predicate: serde_json::Value,
}

impl Statement {
    /// A statement about `subject` with a predicate of `predicate_type`.
    pub fn new(
        subject: Vec<ResourceDescriptor>,
        predicate_type: impl Into<String>,
        predicate: serde_json::Value,
    ) -> Self {
        Statement {
            type_: IN_TOTO_STATEMENT_V1.to_string(),
            subject,
            predicate_type: predicate_type.into(),
            predicate,
        }
    }

    /// Parses a statement, refusing another `_type` or a statement without subjects.
    pub fn from_json(bytes: &[u8]) -> Result<Statement> {
        let s: Statement = serde_json::from_slice(bytes).map_err(|e| {
            Error::invalid(
                "in-toto statement",
                String::from_utf8_lossy(bytes),
                format!("not an in-toto statement: {e}"),
            )
        })?;
        if s.type_ != IN_TOTO_STATEMENT_V1 {
            return Err(Error::invalid(
                "in-toto statement _type",
                s.type_,
                format!("expected {IN_TOTO_STATEMENT_V1:?}"),
            ));
        }
        if s.subject.is_empty() {
            return Err(Error::invalid(
                "in-toto statement",
                s.predicate_type,
                "the statement names no subject",
            ));
        }
        Ok(s)
    }

    /// The statement as JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Whether one subject carries exactly `digest`.
    pub fn names_digest(&self, digest: &Digest) -> bool {
        self.subject
            .iter()
            .any(|s| s.sha256().as_ref() == Some(digest))
    }
}
