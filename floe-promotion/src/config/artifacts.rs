//! The per-artifact catalogue beside the environments (`artifacts.promotion.artifacts`): what
//! each artifact depends on.

use std::collections::BTreeMap;

use crate::model::ArtifactName;
use crate::orchestrate::DependencyGraph;

/// One artifact's settings (`artifacts.promotion.artifacts.<name>`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArtifactSettings {
    /// The artifacts it needs beside it in every environment (`depends_on`), by name; each
    /// is wanted at its digest current in the source environment of the promotion.
    pub depends_on: Vec<ArtifactName>,
}

impl ArtifactSettings {
    /// Settings with these dependencies.
    pub fn depending_on(depends_on: Vec<ArtifactName>) -> Self {
        ArtifactSettings { depends_on }
    }
}

/// The dependency graph of a catalogue (every artifact, and an edge per `depends_on` entry).
pub fn catalogue_graph(artifacts: &BTreeMap<ArtifactName, ArtifactSettings>) -> DependencyGraph {
    let mut graph = DependencyGraph::new();
    for (name, settings) in artifacts {
        graph.add(name);
        for d in &settings.depends_on {
            graph.depends(name, d);
        }
    }
    graph
}

/// Refuses a catalogue whose `depends_on` names an artifact it does not list, or whose
/// dependencies form a cycle (named: `app -> migrations -> app`). The message starts with the
/// field.
pub fn validate_catalogue(
    artifacts: &BTreeMap<ArtifactName, ArtifactSettings>,
) -> std::result::Result<(), String> {
    for (name, settings) in artifacts {
        for d in &settings.depends_on {
            if !artifacts.contains_key(d) {
                return Err(format!(
                    "artifacts.promotion.artifacts.{name}.depends_on: unknown artifact {:?} (known: {})",
                    d.as_str(),
                    artifacts
                        .keys()
                        .map(ArtifactName::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
    }
    if let Some(cycle) = catalogue_graph(artifacts).find_cycle() {
        return Err(format!(
            "artifacts.promotion.artifacts.{}.depends_on: a dependency cycle: {cycle}",
            cycle
                .0
                .first()
                .map(ArtifactName::as_str)
                .unwrap_or_default()
        ));
    }
    Ok(())
}
