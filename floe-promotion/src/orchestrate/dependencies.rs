//! Dependency order: a graph of artifacts (an edge from each dependent to each of its
//! dependencies), its cycles, and the order in which a set is promoted.
//!
//! The order is topological with dependencies first; artifacts with no order between them
//! come by name, so the same declarations always give the same order. The graph knows names
//! only: which digest of a dependency is wanted is decided where the dependencies are
//! resolved (see the README, "Dependency promotion").

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;

use petgraph::Direction;
use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::model::ArtifactName;

/// A dependency cycle, as the path that closes it: `app -> migrations -> app` is
/// `[app, migrations, app]`. It starts at the member whose name sorts first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cycle(pub Vec<ArtifactName>);

impl fmt::Display for Cycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.0.iter().map(ArtifactName::as_str).collect();
        f.write_str(&names.join(" -> "))
    }
}

/// Artifacts and what each depends on.
///
/// ```
/// use floe_promotion::ArtifactName;
/// use floe_promotion::orchestrate::DependencyGraph;
/// let n = |s: &str| ArtifactName::new(s).unwrap();
/// let mut g = DependencyGraph::new();
/// g.depends(&n("app"), &n("migrations"));
/// g.depends(&n("app"), &n("config"));
/// g.depends(&n("migrations"), &n("config"));
/// let order: Vec<String> = g.order_for(&n("app")).unwrap().iter().map(|a| a.to_string()).collect();
/// assert_eq!(order, ["config", "migrations", "app"]);
/// g.depends(&n("config"), &n("app"));
/// // The walk takes neighbours by name: app -> config closes first.
/// assert_eq!(g.find_cycle().unwrap().to_string(), "app -> config -> app");
/// ```
#[derive(Clone, Debug, Default)]
pub struct DependencyGraph {
    graph: DiGraph<ArtifactName, ()>,
    nodes: BTreeMap<ArtifactName, NodeIndex>,
}

impl DependencyGraph {
    /// An empty graph.
    pub fn new() -> Self {
        DependencyGraph::default()
    }

    /// Adds an artifact (once), returning its node.
    fn node(&mut self, artifact: &ArtifactName) -> NodeIndex {
        if let Some(n) = self.nodes.get(artifact) {
            return *n;
        }
        let n = self.graph.add_node(artifact.clone());
        self.nodes.insert(artifact.clone(), n);
        n
    }

    /// Adds an artifact with no dependencies (yet).
    pub fn add(&mut self, artifact: &ArtifactName) {
        self.node(artifact);
    }

    /// Records that `dependent` needs `dependency` (once; both are added).
    pub fn depends(&mut self, dependent: &ArtifactName, dependency: &ArtifactName) {
        let (a, b) = (self.node(dependent), self.node(dependency));
        self.graph.update_edge(a, b, ());
    }

    /// Whether the graph holds `artifact`.
    pub fn contains(&self, artifact: &ArtifactName) -> bool {
        self.nodes.contains_key(artifact)
    }

    /// What `artifact` depends on directly, by name.
    pub fn dependencies_of(&self, artifact: &ArtifactName) -> Vec<ArtifactName> {
        self.neighbours(artifact, Direction::Outgoing)
    }

    fn neighbours(&self, artifact: &ArtifactName, direction: Direction) -> Vec<ArtifactName> {
        let Some(n) = self.nodes.get(artifact) else {
            return vec![];
        };
        let set: BTreeSet<ArtifactName> = self
            .graph
            .neighbors_directed(*n, direction)
            .map(|m| self.graph[m].clone())
            .collect();
        set.into_iter().collect()
    }

    /// A cycle, when there is one: of the strongly connected components that close a cycle,
    /// the one holding the smallest name, walked from that name.
    pub fn find_cycle(&self) -> Option<Cycle> {
        let mut best: Option<BTreeSet<NodeIndex>> = None;
        for scc in tarjan_scc(&self.graph) {
            let cyclic = scc.len() > 1
                || scc
                    .first()
                    .is_some_and(|n| self.graph.contains_edge(*n, *n));
            if !cyclic {
                continue;
            }
            let min = |s: &BTreeSet<NodeIndex>| s.iter().map(|n| self.graph[*n].clone()).min();
            let set: BTreeSet<NodeIndex> = scc.into_iter().collect();
            if best.as_ref().is_none_or(|b| min(&set) < min(b)) {
                best = Some(set);
            }
        }
        let scc = best?;
        let start = *scc.iter().min_by_key(|n| &self.graph[**n])?;
        // Depth first inside the component, neighbours by name, back to the start.
        let mut path = vec![start];
        let mut visited = HashSet::from([start]);
        let mut found = false;
        self.walk(start, start, &scc, &mut path, &mut visited, &mut found);
        found.then(|| Cycle(path.iter().map(|n| self.graph[*n].clone()).collect()))
    }

    fn walk(
        &self,
        at: NodeIndex,
        start: NodeIndex,
        scc: &BTreeSet<NodeIndex>,
        path: &mut Vec<NodeIndex>,
        visited: &mut HashSet<NodeIndex>,
        found: &mut bool,
    ) {
        let mut next: Vec<NodeIndex> = self
            .graph
            .neighbors_directed(at, Direction::Outgoing)
            .filter(|n| scc.contains(n))
            .collect();
        next.sort_by(|a, b| self.graph[*a].cmp(&self.graph[*b]));
        next.dedup();
        for n in next {
            if *found {
                return;
            }
            if n == start {
                path.push(n);
                *found = true;
                return;
            }
            if visited.insert(n) {
                path.push(n);
                self.walk(n, start, scc, path, visited, found);
                if !*found {
                    path.pop();
                }
            }
        }
    }

    /// Every artifact, dependencies before their dependents, ties by name; the cycle when
    /// there is one.
    pub fn order(&self) -> Result<Vec<ArtifactName>, Cycle> {
        self.order_of(self.nodes.keys().cloned().collect())
    }

    /// `root` and everything it depends on, directly or not, in promotion order: dependencies
    /// first, ties by name, `root` last. The cycle when the set holds one.
    pub fn order_for(&self, root: &ArtifactName) -> Result<Vec<ArtifactName>, Cycle> {
        let mut set = BTreeSet::from([root.clone()]);
        let mut todo = vec![root.clone()];
        while let Some(a) = todo.pop() {
            for d in self.dependencies_of(&a) {
                if set.insert(d.clone()) {
                    todo.push(d);
                }
            }
        }
        self.order_of(set)
    }

    /// Kahn's algorithm over `set`, always taking the smallest ready name.
    fn order_of(&self, set: BTreeSet<ArtifactName>) -> Result<Vec<ArtifactName>, Cycle> {
        let mut waiting: BTreeMap<ArtifactName, usize> = set
            .iter()
            .map(|a| {
                let n = self
                    .dependencies_of(a)
                    .iter()
                    .filter(|d| set.contains(*d))
                    .count();
                (a.clone(), n)
            })
            .collect();
        let mut ready: BTreeSet<ArtifactName> = waiting
            .iter()
            .filter(|(_, n)| **n == 0)
            .map(|(a, _)| a.clone())
            .collect();
        let mut out = Vec::with_capacity(set.len());
        while let Some(a) = ready.pop_first() {
            waiting.remove(&a);
            for dependent in self.neighbours(&a, Direction::Incoming) {
                if let Some(n) = waiting.get_mut(&dependent) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        ready.insert(dependent);
                    }
                }
            }
            out.push(a);
        }
        if out.len() < set.len() {
            let mut rest = DependencyGraph::new();
            for a in waiting.keys() {
                rest.add(a);
                for d in self.dependencies_of(a) {
                    if waiting.contains_key(&d) {
                        rest.depends(a, &d);
                    }
                }
            }
            return Err(rest
                .find_cycle()
                .unwrap_or_else(|| Cycle(waiting.keys().cloned().collect())));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> ArtifactName {
        ArtifactName::new(s).unwrap()
    }

    fn names(v: &[ArtifactName]) -> Vec<&str> {
        v.iter().map(ArtifactName::as_str).collect()
    }

    #[test]
    fn order_is_topological_with_ties_by_name() {
        let mut g = DependencyGraph::new();
        g.depends(&n("app"), &n("zeta"));
        g.depends(&n("app"), &n("alpha"));
        g.depends(&n("app"), &n("mid"));
        g.depends(&n("mid"), &n("zeta"));
        g.add(&n("other"));
        assert_eq!(
            names(&g.order_for(&n("app")).unwrap()),
            ["alpha", "zeta", "mid", "app"]
        );
        assert_eq!(
            names(&g.order().unwrap()),
            ["alpha", "other", "zeta", "mid", "app"]
        );
        assert!(g.find_cycle().is_none());
    }

    #[test]
    fn cycles_are_named_from_their_smallest_member() {
        let mut g = DependencyGraph::new();
        g.depends(&n("web"), &n("app"));
        g.depends(&n("app"), &n("migrations"));
        g.depends(&n("migrations"), &n("app"));
        assert_eq!(
            g.find_cycle().unwrap().to_string(),
            "app -> migrations -> app"
        );
        assert_eq!(
            g.order_for(&n("web")).unwrap_err().to_string(),
            "app -> migrations -> app"
        );
        let mut own = DependencyGraph::new();
        own.depends(&n("app"), &n("app"));
        assert_eq!(own.find_cycle().unwrap().to_string(), "app -> app");
    }
}
