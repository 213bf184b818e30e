//! # floe-promotion-oci
//!
//! OCI backends of [`floe_promotion`]:
//!
//! - [`OciRegistry`]: the `ArtifactRegistry` over remote registries (oci-client).
//! - [`OciLayoutRegistry`]: the `ArtifactRegistry` over OCI image-layout directories
//!   (`oci-layout:<dir>`), the format skopeo, oras and crane read and write.
//! - [`CosignVerifier`]: the `SignatureVerifier` for cosign key-based signatures, offline.
//! - [`RoutingRegistry`]: one registry over both kinds of location, copying between them
//!   with [`BlobStreams`] (blobs streamed with flat memory).

mod cosign;
pub mod keys;
mod layout;
mod remote;
mod route;
mod stream;

pub use cosign::CosignVerifier;
pub use cosign::{SIGNATURE_ANNOTATION, SIGNATURE_TYPE, SIMPLE_SIGNING_MEDIA_TYPE};
pub use keys::{CosignKeySigner, CosignKeyVerifier, generate_key_pair};
pub use layout::OciLayoutRegistry;
pub use remote::OciRegistry;
pub use remote::{CredentialSource, OciOptions};
pub use route::RoutingRegistry;
pub use stream::{BlobStream, BlobStreams};

#[cfg(feature = "testing")]
pub mod testing;
