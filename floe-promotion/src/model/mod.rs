//! Value types: validated identities (digests, tags, names, references, actors), free text,
//! gate results, locks and leases. They depend on nothing but the error type, so every
//! capability can use them without an import cycle.

mod dependency;
mod digest;
pub mod gate;
pub mod hold;
pub mod lease;
pub mod lock;
mod names;
mod process;
pub mod revocation;
mod signed_vote;
pub mod text;

pub use dependency::{
    DEPENDENCIES_ANNOTATION, Declared, Dependency, MissingDependency, parse_dependency_annotation,
};
pub use digest::Digest;
pub use names::{Actor, ArtifactName, ArtifactRef, EnvName, Reference, Repository, Tag};
pub use signed_vote::{SignedVote, VOTE_NAMESPACE, VoteDecision, VoteMessage, VoteSignature};
