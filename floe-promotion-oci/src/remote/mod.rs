//! Remote registries over oci-client.

/// The `ArtifactRegistry` over remote OCI registries.
#[derive(Debug, Clone, Default)]
pub struct OciRegistry {}
