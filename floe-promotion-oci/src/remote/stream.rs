//! [`BlobStreams`] over a remote registry: a blob download as a checked stream, and an upload
//! fed by any stream through the same watched, single streaming `PUT` as copies between
//! registries ([`transfer`](super::transfer)).

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use floe_promotion::{Digest, Error, Repository, Result};
use futures::StreamExt;

use super::copy::{Ends, UploadError, seconds};
use super::error::{Failure, chain, classify};
use super::location::RemoteRepo;
use super::transfer::{Body, Stop, Watch};
use super::{Inner, OciRegistry};
use crate::stream::{BlobStream, BlobStreams, verified};

impl Inner {
    /// Opens the download of a blob; the request is retried, the bytes are checked.
    async fn open_blob(&self, r: &RemoteRepo, digest: &Digest, size: u64) -> Result<BlobStream> {
        self.auth(r).await?;
        let clients = self.clients(r.host())?;
        let oref = r.tag_ref("latest");
        let target = r.at_digest(digest);
        let source = self
            .retry(
                r.host(),
                &format!("reading blob {target}"),
                self.timeout(),
                || async {
                    tokio::time::timeout(
                        self.timeout(),
                        clients.open_checked_elsewhere(&oref, digest.as_str(), size),
                    )
                    .await
                    .map_err(|_| {
                        Failure::unavailable(
                            r.host(),
                            format!(
                                "reading blob {target}: no answer within {}",
                                seconds(self.timeout())
                            ),
                        )
                    })?
                    .map_err(|e| classify(&e, r.host(), "blob", &target))
                },
            )
            .await?;
        if let Some(len) = source.content_length
            && len != size
        {
            return Err(Error::Store {
                backend: "oci",
                location: target,
                message: format!("the registry sends {len} bytes but the manifest says {size}"),
            });
        }
        // Each read is limited by the client's read timeout; a failed read is the registry's.
        let host = r.host().to_string();
        let read_target = target.clone();
        let chunks = source.stream.map(move |chunk| {
            chunk.map_err(|e| Error::Unavailable {
                registry: host.clone(),
                message: format!("reading blob {read_target}: {}", chain(&e)),
            })
        });
        Ok(verified(chunks.boxed(), digest.clone(), size, move |why| {
            Error::Store {
                backend: "oci",
                location: target.clone(),
                message: format!("the blob does not match its digest: {why}"),
            }
        }))
    }

    /// Uploads the blob `digest` of `size` bytes from `stream`: one attempt, watched on both
    /// sides, the bytes checked before the last one goes out.
    async fn push_blob_stream(
        &self,
        r: &RemoteRepo,
        digest: &Digest,
        size: u64,
        stream: BlobStream,
    ) -> Result<()> {
        if self.blob_exists(r, digest).await? {
            return Ok(());
        }
        let uploader = self.uploader(r).await?;
        let oref = r.tag_ref("latest");
        let target = r.at_digest(digest);
        // The body hands the HTTP client I/O errors; the source's own error is kept here.
        let source_error: Arc<Mutex<Option<Error>>> = Arc::default();
        let keep = Arc::clone(&source_error);
        let source = stream
            .map(move |chunk| {
                chunk.map_err(|e| {
                    let mut slot = keep.lock().unwrap_or_else(|p| p.into_inner());
                    slot.get_or_insert(e);
                    std::io::Error::other("the source of the blob failed")
                })
            })
            .boxed();
        let on_chunk = self.observer.clone().map(|o| {
            let d = digest.clone();
            Box::new(move |n: u64| o.blob_progress(&d, n)) as Box<dyn Fn(u64) + Send + Sync>
        });
        if let Some(o) = &self.observer {
            o.blob_started(digest, size);
        }
        let watch = Watch::new();
        let body = Body::new(source, size, Arc::clone(&watch), on_chunk).verify(digest);
        let outcome = tokio::time::timeout(
            self.transfer_timeout(size),
            self.upload(uploader, &oref, body, &watch, digest.as_str(), size),
        )
        .await;
        if let Some(o) = &self.observer {
            o.blob_finished(digest);
        }
        let failed = match outcome {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => e,
            Err(_) => {
                return Err(Error::Unavailable {
                    registry: r.host().to_string(),
                    message: format!(
                        "blob upload {target}: no answer within {}",
                        seconds(self.transfer_timeout(size))
                    ),
                });
            }
        };
        let kept = source_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        Err(match (kept, failed) {
            (Some(source), _) => source,
            (None, UploadError::Stopped(Stop::Corrupt(message))) => Error::Store {
                backend: "oci",
                location: target,
                message: format!("refused the blob offered: {message}"),
            },
            (None, other) => {
                Ends {
                    source: None,
                    destination: (r.host(), &target),
                }
                .failure(other)
                .error
            }
        })
    }
}

#[async_trait]
impl BlobStreams for OciRegistry {
    async fn blob_exists(&self, repo: &Repository, digest: &Digest) -> Result<bool> {
        let r = RemoteRepo::parse(repo)?;
        self.inner.blob_exists(&r, digest).await
    }

    async fn open_blob(&self, repo: &Repository, digest: &Digest, size: u64) -> Result<BlobStream> {
        let r = RemoteRepo::parse(repo)?;
        self.inner.open_blob(&r, digest, size).await
    }

    async fn push_blob_stream(
        &self,
        repo: &Repository,
        digest: &Digest,
        size: u64,
        stream: BlobStream,
    ) -> Result<()> {
        let r = RemoteRepo::parse(repo)?;
        self.inner.push_blob_stream(&r, digest, size, stream).await
    }
}
