//! The registry conformance suite against the in-memory registry, through `Arc<dyn _>`.

use std::sync::Arc;

use floe_promotion::{ArtifactRegistry, InMemoryRegistry, Repository};

floe_promotion::registry_conformance!(async {
    let registry: Arc<dyn ArtifactRegistry> = Arc::new(InMemoryRegistry::new());
    (registry, Repository::new("mem/conformance").expect("valid"))
});
