//! Copying a manifest with everything it needs and everything attached to it.

use std::collections::HashSet;
use std::sync::Arc;

use floe_promotion::registry::{CopyMode, CopyReport, Descriptor, Manifest};
use floe_promotion::{Digest, Error, Reference, Result, Tag};
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use oci_client::errors::OciDistributionError;

use super::Inner;
use super::error::{Failure, chain, classify};
use super::location::RemoteRepo;
use super::transfer::{self, Body, Side, Stop, Watch};

/// How blobs move from `src` to `dst`: same repository, same host, or across hosts.
pub(super) fn mode(src: &RemoteRepo, dst: &RemoteRepo) -> CopyMode {
    if src == dst {
        CopyMode::TagOnly
    } else if src.host() == dst.host() {
        CopyMode::Mount
    } else {
        CopyMode::Stream
    }
}

/// What is attached to a manifest in the source repository.
struct Attachments {
    sig_tag: Tag,
    /// The manifest the cosign signature tag names.
    sig: Option<Digest>,
    att_tag: Tag,
    /// The manifest the cosign attestation tag names.
    att: Option<Digest>,
    referrers: Vec<Descriptor>,
}

/// What happened to one blob.
enum BlobMove {
    Skipped,
    Mounted,
    Uploaded(u64),
}

struct CopyRun<'a> {
    src: &'a RemoteRepo,
    dst: &'a RemoteRepo,
    mode: CopyMode,
    report: CopyReport,
    seen: HashSet<Digest>,
}

impl Inner {
    /// Copies `digest` from `src` to `dst`: index children first, then blobs, then the
    /// manifest's exact bytes (by digest, no tag), then its signature tag and referrers.
    /// With `known`, the manifest at `digest` as already resolved from `src`: it is not read
    /// again.
    pub(super) async fn copy(
        &self,
        src: &RemoteRepo,
        dst: &RemoteRepo,
        digest: &Digest,
        known: Option<&Manifest>,
    ) -> Result<CopyReport> {
        if src == dst {
            // Nothing moves; the digest must still exist.
            if known.is_none() {
                self.resolve(src, &Reference::Digest(digest.clone()))
                    .await?;
            }
            return Ok(CopyReport::default());
        }
        let mode = mode(src, dst);
        if mode == CopyMode::Stream {
            // The upload client is built before any blob moves, not by the first of several
            // uploads while the others already stream: its construction (TLS roots inside
            // oci-client) then never adds to the buffers of blobs in flight.
            self.uploader(dst).await?;
        }
        let mut run = CopyRun {
            src,
            dst,
            mode,
            report: CopyReport::default(),
            seen: HashSet::new(),
        };
        self.copy_tree(&mut run, digest.clone(), known).await?;
        Ok(run.report)
    }

    /// Copies the manifest at `digest` (`known` when already resolved) with what it needs
    /// and what is attached to it.
    fn copy_tree<'a>(
        &'a self,
        run: &'a mut CopyRun<'_>,
        digest: Digest,
        known: Option<&'a Manifest>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            if !run.seen.insert(digest.clone()) {
                return Ok(());
            }
            let src = run.src;
            let manifest = match known {
                Some(m) => m.clone(),
                None => {
                    self.resolve(src, &Reference::Digest(digest.clone()))
                        .await?
                }
            };
            // What is attached to the manifest in the source is looked up while the manifest
            // and its blobs are copied: reads of the source, copied after the manifest.
            let (copied, found) = futures::join!(
                self.copy_manifest(run, &digest, &manifest),
                self.find_attachments(src, &digest)
            );
            copied?;
            self.copy_attachments(run, found?).await
        })
    }

    /// Copies `manifest` (at `digest`) itself: its children, its blobs, its exact bytes.
    async fn copy_manifest(
        &self,
        run: &mut CopyRun<'_>,
        digest: &Digest,
        manifest: &Manifest,
    ) -> Result<()> {
        {
            let (src, dst) = (run.src, run.dst);
            let body = manifest.body();
            // Children first: an index may only be written once they are there.
            for child in body.children() {
                self.copy_tree(run, child.digest.clone(), None).await?;
            }
            let mut blobs: Vec<Descriptor> = Vec::new();
            for b in body.blobs() {
                if !blobs.iter().any(|x| x.digest == b.digest) {
                    blobs.push(b.clone());
                }
            }
            let mode = run.mode;
            let moved = futures::stream::iter(blobs)
                .map(move |b: Descriptor| async move { self.copy_blob(src, dst, mode, &b).await })
                .buffer_unordered(self.options.max_concurrent_blobs.max(1))
                .try_collect::<Vec<BlobMove>>();
            // The blobs move while the destination is asked for the manifest: when it is
            // there its blobs are too, each found present by the one HEAD it costs, and the
            // report counts none of them.
            let at = Reference::Digest(digest.clone());
            let (present, moved) = futures::join!(self.head_manifest(dst, &at), moved);
            let present = present?.is_some();
            if !present {
                for m in moved? {
                    match m {
                        BlobMove::Skipped => run.report.blobs_skipped += 1,
                        BlobMove::Mounted => run.report.blobs_mounted += 1,
                        BlobMove::Uploaded(bytes) => {
                            run.report.blobs_uploaded += 1;
                            run.report.bytes_uploaded += bytes;
                        }
                    }
                }
                // `put_manifest` also records a manifest with a subject in the destination's
                // referrers index.
                self.put_manifest(dst, None, manifest).await?;
                run.report.manifests_copied += 1;
            } else if let Some(subject) = &body.subject {
                // Present already; make sure an interrupted earlier copy left it listed.
                self.add_referrer(
                    dst,
                    &subject.digest,
                    super::referrers::entry_for(manifest, body),
                )
                .await?;
            }
            Ok(())
        }
    }

    /// Looks up, concurrently, what is attached to `digest` in `src`: its cosign signature
    /// tag, its attestation tag and its referrers.
    async fn find_attachments(&self, src: &RemoteRepo, digest: &Digest) -> Result<Attachments> {
        let sig_tag = Tag::new(digest.signature_tag())?;
        let att_tag = Tag::new(digest.attestation_tag())?;
        let (sig_ref, att_ref) = (
            Reference::Tag(sig_tag.clone()),
            Reference::Tag(att_tag.clone()),
        );
        let (sig, att, referrers) = futures::try_join!(
            self.head_manifest(src, &sig_ref),
            self.head_manifest(src, &att_ref),
            self.referrers(src, digest),
        )?;
        Ok(Attachments {
            sig_tag,
            sig,
            att_tag,
            att,
            referrers,
        })
    }

    /// Copies the cosign signature tag, the attestation tag and the referrers found by
    /// [`find_attachments`](Self::find_attachments).
    async fn copy_attachments(&self, run: &mut CopyRun<'_>, found: Attachments) -> Result<()> {
        let (src, dst) = (run.src, run.dst);
        let Attachments {
            sig_tag,
            sig,
            att_tag,
            att,
            referrers,
        } = found;
        if let Some(sig) = sig {
            self.copy_tree(run, sig.clone(), None).await?;
            let current = self
                .head_manifest(dst, &Reference::Tag(sig_tag.clone()))
                .await?;
            if current.as_ref() != Some(&sig) {
                let manifest = self.resolve(src, &Reference::Digest(sig.clone())).await?;
                self.push_manifest_raw(dst, Some(&sig_tag), &manifest)
                    .await?;
                run.report.signatures_copied += 1;
            }
        }
        // The attestation tag is appended to in each repository: copied only where there is
        // none yet, so the destination's own attestations are never replaced.
        if let Some(att) = att
            && self
                .head_manifest(dst, &Reference::Tag(att_tag.clone()))
                .await?
                .is_none()
        {
            self.copy_tree(run, att.clone(), None).await?;
            let manifest = self.resolve(src, &Reference::Digest(att)).await?;
            self.push_manifest_raw(dst, Some(&att_tag), &manifest)
                .await?;
            run.report.referrers_copied += 1;
        }
        for referrer in referrers {
            let before = run.report.manifests_copied;
            self.copy_tree(run, referrer.digest.clone(), None).await?;
            if run.report.manifests_copied > before {
                run.report.referrers_copied += 1;
            }
        }
        Ok(())
    }

    /// Makes one blob present in `dst`: skipped when there, mounted within a registry
    /// (streamed when the registry declines), streamed across registries.
    async fn copy_blob(
        &self,
        src: &RemoteRepo,
        dst: &RemoteRepo,
        mode: CopyMode,
        blob: &Descriptor,
    ) -> Result<BlobMove> {
        if self.blob_exists(dst, &blob.digest).await? {
            return Ok(BlobMove::Skipped);
        }
        if mode == CopyMode::Mount && self.mount_blob(src, dst, &blob.digest).await? {
            return Ok(BlobMove::Mounted);
        }
        self.stream_blob(src, dst, blob).await?;
        Ok(BlobMove::Uploaded(blob.size))
    }

    /// Asks `dst`'s registry to mount the blob from `src`. `false` when the registry answers
    /// 202 (it opened an upload instead, e.g. because it cannot see the source blob).
    async fn mount_blob(
        &self,
        src: &RemoteRepo,
        dst: &RemoteRepo,
        digest: &Digest,
    ) -> Result<bool> {
        self.auth(dst).await?;
        let clients = self.clients(dst.host())?;
        let (sref, dref) = (src.tag_ref("latest"), dst.tag_ref("latest"));
        let target = dst.at_digest(digest);
        let mounted = self
            .retry(
                dst.host(),
                &format!("mounting blob {target}"),
                self.timeout(),
                || async {
                    match clients
                        .client
                        .mount_blob(&dref, &sref, digest.as_str())
                        .await
                    {
                        Ok(()) => Ok(true),
                        Err(OciDistributionError::SpecViolationError(_)) => Ok(false),
                        Err(e) => Err(classify(&e, dst.host(), "blob mount", &target)),
                    }
                },
            )
            .await?;
        if !mounted {
            tracing::debug!(%target, from = %src, "registry declined the mount; streaming the blob");
        }
        Ok(mounted)
    }

    /// Streams one blob from `src` into `dst`: the source's download feeds a single streaming
    /// PUT, so memory stays flat whatever the size. Progress is watched on both sides (see
    /// [`transfer`](super::transfer)), so a stall is blamed on the side that stalled.
    async fn stream_blob(
        &self,
        src: &RemoteRepo,
        dst: &RemoteRepo,
        blob: &Descriptor,
    ) -> Result<()> {
        self.auth(src).await?;
        self.auth(dst).await?;
        let clients = self.clients(src.host())?;
        let uploader = self.uploader(dst).await?;
        let (sref, dref) = (src.tag_ref("latest"), dst.tag_ref("latest"));
        let (src_target, dst_target) = (src.at_digest(&blob.digest), dst.at_digest(&blob.digest));
        let digest = blob.digest.as_str();
        if let Some(o) = &self.observer {
            o.blob_started(&blob.digest, blob.size);
        }
        let ends = Ends {
            source: Some((src.host(), &src_target)),
            destination: (dst.host(), &dst_target),
        };
        let result = self
            .retry(
                dst.host(),
                &format!("copying blob {src_target} to {dst}"),
                self.transfer_timeout(blob.size),
                || async {
                    let source = match tokio::time::timeout(
                        self.timeout(),
                        clients.open_checked_elsewhere(&sref, digest, blob.size),
                    )
                    .await
                    {
                        Ok(source) => {
                            source.map_err(|e| classify(&e, src.host(), "blob", &src_target))?
                        }
                        Err(_) => {
                            return Err(Failure::unavailable(
                                src.host(),
                                format!(
                                    "reading blob {src_target} from the source: no answer within {}",
                                    seconds(self.timeout())
                                ),
                            ));
                        }
                    };
                    if let Some(len) = source.content_length
                        && len != blob.size
                    {
                        return Err(Failure::fatal(Error::Store {
                            backend: "oci",
                            location: src_target.clone(),
                            message: format!(
                                "the registry sends {len} bytes but the manifest says {}",
                                blob.size
                            ),
                        }));
                    }
                    let on_chunk = self.observer.clone().map(|o| {
                        let d = blob.digest.clone();
                        Box::new(move |n: u64| o.blob_progress(&d, n))
                            as Box<dyn Fn(u64) + Send + Sync>
                    });
                    let watch = Watch::new();
                    let body = Body::new(source.stream, blob.size, Arc::clone(&watch), on_chunk)
                        .verify(&blob.digest);
                    self.upload(uploader, &dref, body, &watch, digest, blob.size)
                        .await
                        .map_err(|e| ends.failure(e))
                },
            )
            .await;
        if let Some(o) = &self.observer {
            o.blob_finished(&blob.digest);
        }
        result
    }

    /// Uploads `body` as the blob `digest` of `size` bytes to `dref`'s repository, ending the
    /// attempt when a side makes no progress for the request timeout or the attempt's deadline
    /// ([`transfer::deadline`]) passes.
    pub(super) async fn upload(
        &self,
        uploader: &oci_client::Client,
        dref: &oci_client::Reference,
        body: Body,
        watch: &Arc<Watch>,
        digest: &str,
        size: u64,
    ) -> std::result::Result<(), UploadError> {
        let idle = self.options.request_timeout;
        let pushed = tokio::select! {
            pushed = uploader.push_blob_stream(dref, body, digest, Some(size)) => pushed.map(|_| ()).map_err(Some),
            stop = transfer::watchdog(watch, idle, self.timeout(), transfer::deadline(idle, size)) => {
                watch.stop(stop);
                Err(None)
            }
        };
        match pushed {
            Ok(()) => Ok(()),
            Err(e) => match (watch.take_stop(), e) {
                (Some(stop), _) => Err(UploadError::Stopped(stop)),
                (None, Some(e)) => Err(UploadError::Failed(e)),
                (None, None) => Err(UploadError::Stopped(Stop::Deadline(
                    Side::Destination,
                    transfer::deadline(idle, size),
                ))),
            },
        }
    }
}

/// Why an upload failed.
#[derive(Debug)]
pub(super) enum UploadError {
    /// The transfer was stopped: a side stalled, the source failed or sent bad content.
    Stopped(Stop),
    /// The destination's client call failed.
    Failed(OciDistributionError),
}

/// The two ends of a blob transfer, to blame the right one: `(host, HOST/REPO@DIGEST)`.
pub(super) struct Ends<'a> {
    /// The registry read from; `None` when the bytes were in memory.
    pub(super) source: Option<(&'a str, &'a str)>,
    /// The registry written to.
    pub(super) destination: (&'a str, &'a str),
}

impl Ends<'_> {
    /// The failure an upload error stands for, naming the side at fault.
    pub(super) fn failure(&self, e: UploadError) -> Failure {
        let (dst_host, dst_target) = self.destination;
        let (src_host, src_target) = self.source.unwrap_or(self.destination);
        match e {
            UploadError::Failed(e) => classify(&e, dst_host, "blob upload", dst_target),
            UploadError::Stopped(Stop::SourceFailed(e)) => {
                if transfer::is_digest_error(&e) {
                    Failure::fatal(Error::Store {
                        backend: "oci",
                        location: src_target.to_string(),
                        message: format!("the blob does not match its digest: {}", chain(&e)),
                    })
                } else {
                    Failure::unavailable(
                        src_host,
                        format!("reading blob {src_target} from the source: {}", chain(&e)),
                    )
                }
            }
            UploadError::Stopped(Stop::Corrupt(message)) => Failure::fatal(Error::Store {
                backend: "oci",
                location: src_target.to_string(),
                message,
            }),
            UploadError::Stopped(Stop::Stalled(Side::Source, waited)) => Failure::unavailable(
                src_host,
                format!(
                    "reading blob {src_target} from the source: it sent nothing for {}",
                    seconds(waited)
                ),
            ),
            UploadError::Stopped(Stop::Stalled(Side::Destination, waited)) => Failure::unavailable(
                dst_host,
                format!(
                    "blob upload {dst_target}: the registry took no data for {}",
                    seconds(waited)
                ),
            ),
            UploadError::Stopped(Stop::NotStarted(waited)) => Failure::unavailable(
                dst_host,
                format!(
                    "blob upload {dst_target}: no answer to opening the upload within {}",
                    seconds(waited)
                ),
            ),
            UploadError::Stopped(Stop::Deadline(side, limit)) => {
                let (host, what) = match side {
                    Side::Source => (
                        src_host,
                        format!("reading blob {src_target} from the source"),
                    ),
                    Side::Destination => (dst_host, format!("blob upload {dst_target}")),
                };
                Failure::unavailable(
                    host,
                    format!(
                        "{what}: the transfer did not finish within {} (at least {} KiB/s on average)",
                        seconds(limit),
                        transfer::MIN_RATE / 1024
                    ),
                )
            }
        }
    }
}

/// A duration for messages: `1.5 s`.
pub(super) fn seconds(d: std::time::Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}
