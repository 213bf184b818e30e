//! `artifacts.promotion.artifacts`: the per-artifact catalogue as written, and its conversion
//! into [`ArtifactSettings`], with unknown dependencies and cycles pointed at where they were
//! written.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{Entries, Loader};
use crate::config::{ArtifactSettings, catalogue_graph};
use crate::error::Result;
use crate::model::ArtifactName;

/// One artifact's entry as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawArtifact {
    #[serde(default)]
    depends_on: Vec<Spanned<String>>,
}

/// A missing value (`app:` with nothing after it) is an artifact without settings.
pub(super) type RawArtifacts = Entries<Option<Spanned<RawArtifact>>>;

const FIELD: &str = "artifacts.promotion.artifacts";

impl Loader<'_> {
    /// The catalogue, checked where it was written: valid and unique names, dependencies
    /// that the catalogue lists, no cycle (reported at the entry of the cycle's first member).
    pub(super) fn artifacts(
        &self,
        raw: &RawArtifacts,
    ) -> Result<BTreeMap<ArtifactName, ArtifactSettings>> {
        let mut keys: BTreeMap<ArtifactName, &Spanned<String>> = BTreeMap::new();
        for (key, _) in &raw.0 {
            let name = ArtifactName::new(key.value.as_str())
                .map_err(|e| self.at(key, format!("{FIELD}: {e}")))?;
            if keys.insert(name, key).is_some() {
                return Err(self.at(key, format!("{FIELD}: {:?} is listed twice", key.value)));
            }
        }
        let mut out = BTreeMap::new();
        for (key, value) in &raw.0 {
            let name = ArtifactName::new(key.value.as_str())
                .map_err(|e| self.at(key, format!("{FIELD}: {e}")))?;
            let mut settings = ArtifactSettings::default();
            for d in value.iter().flat_map(|v| &v.value.depends_on) {
                let field = format!("{FIELD}.{name}.depends_on");
                let dep = ArtifactName::new(d.value.trim())
                    .map_err(|e| self.at(d, format!("{field}: {e}")))?;
                if !keys.contains_key(&dep) {
                    return Err(self.at(
                        d,
                        format!(
                            "{field}: unknown artifact {:?}: list it under {FIELD} (known: {})",
                            dep.as_str(),
                            keys.keys()
                                .map(ArtifactName::as_str)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
                if !settings.depends_on.contains(&dep) {
                    settings.depends_on.push(dep);
                }
            }
            out.insert(name, settings);
        }
        if let Some(cycle) = catalogue_graph(&out).find_cycle()
            && let Some(start) = cycle.0.first()
            && let Some(key) = keys.get(start)
        {
            return Err(self.at(
                *key,
                format!("{FIELD}.{start}.depends_on: a dependency cycle: {cycle}"),
            ));
        }
        Ok(out)
    }
}
