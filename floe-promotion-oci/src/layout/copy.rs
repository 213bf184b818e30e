//! Copying a manifest and everything attached to it from one layout to another.
//!
//! Blobs and manifests are placed first (children before their index, blobs before their
//! manifest), then every `index.json` entry the copy adds is written in one locked update. A copy
//! that fails half-way leaves only unreferenced blobs behind, and any manifest it placed has all
//! of its blobs.

use std::collections::{BTreeMap, HashSet};
use std::fs;

use floe_promotion::registry::{CopyReport, Descriptor};
use floe_promotion::{Digest, Error, Result};

use super::index::{ImageIndex, IndexChange, IndexEntry};
use super::referrers::SubjectCache;
use super::store::{Layout, Transfer};

/// How a copied manifest appears in the destination's `index.json`.
enum Role {
    /// Not at all: an index child, reachable through its index.
    Child,
    /// As an untagged entry: the copied artifact and its referrers.
    Untagged,
    /// Under a tag: the cosign signature `sha256-<hex>.sig` or attestations `sha256-<hex>.att`.
    Tag(String),
}

struct CopyJob<'a> {
    src: &'a Layout,
    dst: &'a Layout,
    link: bool,
    src_index: ImageIndex,
    referrers: BTreeMap<Digest, Vec<Descriptor>>,
    seen: HashSet<Digest>,
    report: CopyReport,
    changes: Vec<IndexChange>,
    /// Positions in `changes` of signature tags, counted when they change the index.
    signature_changes: Vec<usize>,
}

/// Copies `digest` from `src` to `dst` (see `ArtifactRegistry::copy`).
pub(super) fn copy(
    src: &Layout,
    dst: &Layout,
    digest: &Digest,
    link: bool,
    cache: &SubjectCache,
) -> Result<CopyReport> {
    if is_same_directory(src, dst) {
        src.read_manifest(digest, None)?;
        return Ok(CopyReport::default());
    }
    let src_index = src.read_index()?.ok_or_else(|| {
        Error::not_found(format!(
            "manifest {}@{digest} (no layout at {})",
            src.repo(),
            src.root().display()
        ))
    })?;
    // Fail on a missing source before creating anything in the destination.
    let hint = src_index
        .entry_for(digest.as_str())
        .map(|e| e.media_type.clone());
    src.read_manifest(digest, hint.as_deref())?;
    let referrers = cache.referrers(src, &src_index)?;
    dst.ensure()?;
    let mut job = CopyJob {
        src,
        dst,
        link,
        src_index,
        referrers,
        seen: HashSet::new(),
        report: CopyReport::default(),
        changes: Vec::new(),
        signature_changes: Vec::new(),
    };
    job.copy_one(digest, Role::Untagged)?;
    dst.sync_blobs()?;
    let changed = dst.update_index(&job.changes)?;
    job.report.signatures_copied = job
        .signature_changes
        .iter()
        .filter(|i| changed.get(**i).copied().unwrap_or(false))
        .count() as u64;
    Ok(job.report)
}

/// Whether both locations are one directory on disk (through symlinks or other spellings).
fn is_same_directory(a: &Layout, b: &Layout) -> bool {
    match (fs::canonicalize(a.root()), fs::canonicalize(b.root())) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

impl CopyJob<'_> {
    /// Copies one manifest and what it needs and carries; returns whether its manifest was
    /// newly placed in the destination.
    fn copy_one(&mut self, digest: &Digest, role: Role) -> Result<bool> {
        let hint = self
            .src_index
            .entry_for(digest.as_str())
            .map(|e| e.media_type.clone());
        let manifest = self.src.read_manifest(digest, hint.as_deref())?;
        match role {
            Role::Child => {}
            Role::Untagged => self
                .changes
                .push(IndexChange::Untagged(IndexEntry::of(&manifest))),
            Role::Tag(tag) => {
                self.signature_changes.push(self.changes.len());
                let entry = IndexEntry::of(&manifest).tagged(&tag);
                self.changes.push(IndexChange::Tag(tag, entry));
            }
        }
        if !self.seen.insert(digest.clone()) {
            return Ok(false);
        }
        let body = manifest.body();
        for child in body.children() {
            self.copy_one(&child.digest, Role::Child)?;
        }
        for blob in body.blobs() {
            match self
                .dst
                .transfer_blob(self.src, &blob.digest, Some(blob.size), self.link)?
            {
                Transfer::Present => self.report.blobs_skipped += 1,
                Transfer::Linked => self.report.blobs_mounted += 1,
                Transfer::Copied(n) => {
                    self.report.blobs_uploaded += 1;
                    self.report.bytes_uploaded += n;
                }
            }
        }
        let size = manifest.bytes().len() as u64;
        let placed = self
            .dst
            .transfer_blob(self.src, digest, Some(size), self.link)?
            != Transfer::Present;
        if placed {
            self.report.manifests_copied += 1;
        }

        let signature_tag = digest.signature_tag();
        if let Some(entry) = self.src_index.tagged(&signature_tag) {
            let signature = Digest::new(entry.digest.clone()).map_err(|e| Error::Store {
                backend: "oci-layout",
                location: self.src.root().join("index.json").display().to_string(),
                message: format!("entry of tag {signature_tag}: {e}"),
            })?;
            self.copy_one(&signature, Role::Tag(signature_tag))?;
        }
        // The attestation tag is appended to in each repository: copied only where there is
        // none yet, so the destination's own attestations are never replaced.
        let attestation_tag = digest.attestation_tag();
        if let Some(entry) = self.src_index.tagged(&attestation_tag)
            && (self.dst.read_index()?).is_none_or(|i| i.tagged(&attestation_tag).is_none())
        {
            let attestations = Digest::new(entry.digest.clone()).map_err(|e| Error::Store {
                backend: "oci-layout",
                location: self.src.root().join("index.json").display().to_string(),
                message: format!("entry of tag {attestation_tag}: {e}"),
            })?;
            self.copy_one(&attestations, Role::Tag(attestation_tag))?;
            // Not a signature: not counted as one.
            self.signature_changes.pop();
        }
        let referrers = self.referrers.get(digest).cloned().unwrap_or_default();
        for referrer in referrers {
            if self.copy_one(&referrer.digest, Role::Untagged)? {
                self.report.referrers_copied += 1;
            }
        }
        Ok(placed)
    }
}
