//! Validated identities: digests, tags, names, references and actors.

mod digest;
mod names;
pub mod text;

pub use digest::Digest;
pub use names::{Actor, ArtifactName, ArtifactRef, EnvName, Reference, Repository, Tag};
