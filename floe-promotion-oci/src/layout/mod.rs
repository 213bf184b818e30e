//! OCI image-layout directories.

/// The `ArtifactRegistry` over OCI image-layout directories.
#[derive(Debug, Clone, Default)]
pub struct OciLayoutRegistry {}
