//! The core's registry conformance suite against `OciRegistry` and a real `docker-registry`
//! (distribution 2.8) started on a free loopback port, through `Arc<dyn ArtifactRegistry>`.

use std::sync::Arc;

use floe_promotion::ArtifactRegistry;
use floe_promotion_oci::testing::TestRegistry;

floe_promotion::registry_conformance!(async {
    let registry = TestRegistry::shared();
    let client: Arc<dyn ArtifactRegistry> = Arc::new(registry.client());
    (client, registry.namespace("conformance"))
});
