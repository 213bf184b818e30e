//! The `BlobStreams` conformance suite against every backend: the in-memory registry, an OCI
//! layout directory (a fresh temporary directory per case) and a real `docker-registry`.

use std::sync::Arc;

use floe_promotion::{ArtifactName, InMemoryRegistry, Repository};
use floe_promotion_oci::testing::TestRegistry;
use floe_promotion_oci::{BlobStreams, OciLayoutRegistry};

fn unique(base: &Repository) -> Repository {
    let name = format!("streams-{}", uuid::Uuid::new_v4().simple());
    base.join(&ArtifactName::new(name).unwrap()).unwrap()
}

mod in_memory {
    use super::*;
    floe_promotion_oci::blob_streams_conformance!(async {
        let registry: Arc<dyn BlobStreams> = Arc::new(InMemoryRegistry::new());
        (
            registry,
            unique(&Repository::new("mem/streams").unwrap()),
            (),
        )
    });
}

mod layout {
    use super::*;
    floe_promotion_oci::blob_streams_conformance!(async {
        let dir = tempfile::tempdir().expect("temporary directory");
        let registry: Arc<dyn BlobStreams> = Arc::new(OciLayoutRegistry::new());
        let repo = OciLayoutRegistry::location(dir.path().join("app")).unwrap();
        (registry, repo, dir)
    });
}

mod remote {
    use super::*;
    floe_promotion_oci::blob_streams_conformance!(async {
        let server = TestRegistry::shared();
        let registry: Arc<dyn BlobStreams> = Arc::new(server.client());
        (registry, unique(&server.namespace("streams")), ())
    });
}
