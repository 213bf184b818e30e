//! Streaming blobs in and out of a layout ([`BlobStreams`]): a blob file is read a chunk at a
//! time with its digest checked as it goes; a blob is written to a temporary file in the
//! layout that is renamed into place only once its size and digest are checked.

use async_trait::async_trait;
use bytes::BytesMut;
use floe_promotion::{Digest, Error, Repository, Result};
use futures::StreamExt;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::store::{COPY_BUFFER, Layout, io_error};
use super::{OciLayoutRegistry, blocking};
use crate::stream::{BlobStream, BlobStreams, verified};

impl Layout {
    /// The bytes of the blob `digest`, which must be `size` bytes, as a stream that checks them.
    async fn open_stream(&self, digest: &Digest, size: u64) -> Result<BlobStream> {
        let path = self.blob_path(digest);
        let file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::not_found(format!("blob {}@{digest}", self.repo())));
            }
            Err(e) => return Err(io_error("reading", &path, e)),
        };
        let (layout, digest) = (self.clone(), digest.clone());
        // Chunks of the file as they are read; `None` once the file has ended or failed.
        let chunks = futures::stream::unfold(Some(file), move |state| {
            let path = path.clone();
            async move {
                let mut file = state?;
                let mut buffer = BytesMut::with_capacity(COPY_BUFFER);
                match file.read_buf(&mut buffer).await {
                    Ok(0) => None,
                    Ok(_) => Some((Ok(buffer.freeze()), Some(file))),
                    Err(e) => Some((Err(io_error("reading", &path, e)), None)),
                }
            }
        });
        let path = layout.blob_path(&digest);
        Ok(verified(chunks.boxed(), digest, size, move |why| {
            layout.corrupt(
                &path,
                format!("the blob file does not match its name: {why}"),
            )
        }))
    }

    /// Writes the blob `digest` of `size` bytes from `stream`: into a temporary file in the
    /// layout, checked as it arrives, flushed, then renamed into place. Nothing is left behind
    /// when the stream fails or its bytes do not match.
    async fn write_stream(&self, digest: &Digest, size: u64, mut stream: BlobStream) -> Result<()> {
        let layout = self.clone();
        let present = blocking(self.repo(), {
            let digest = digest.clone();
            move || {
                layout.ensure()?;
                layout.has_blob(&digest)
            }
        })
        .await?;
        if present {
            return Ok(());
        }
        let layout = self.clone();
        // Removed (by its drop) on every early return below.
        let tmp = blocking(self.repo(), move || layout.temp_file()).await?;
        let tmp_path = tmp.path().to_path_buf();
        let handle = tmp
            .as_file()
            .try_clone()
            .map_err(|e| io_error("opening", &tmp_path, e))?;
        let mut file = tokio::fs::File::from_std(handle);
        let write_error = |e| io_error("writing", &tmp_path, e);
        let refused = |message: String| Error::Store {
            backend: "oci-layout",
            location: format!("{}@{digest}", self.repo()),
            message: format!("refused the blob offered: {message}; nothing was stored"),
        };
        let mut hasher = Sha256::new();
        let mut received = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            received += chunk.len() as u64;
            if received > size {
                return Err(refused(format!("more than the {size} bytes expected")));
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(write_error)?;
        }
        if received != size {
            return Err(refused(format!("{received} of the {size} bytes expected")));
        }
        let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
        if actual != digest.as_str() {
            return Err(refused(format!("the bytes hash to {actual}")));
        }
        file.flush().await.map_err(write_error)?;
        file.sync_data().await.map_err(write_error)?;
        drop(file);
        let layout = self.clone();
        let digest = digest.clone();
        blocking(self.repo(), move || {
            let to = layout.blob_path(&digest);
            tmp.persist(&to)
                .map_err(|e| io_error("renaming into place", &to, e.error))?;
            layout.sync_blobs()
        })
        .await
    }
}

#[async_trait]
impl BlobStreams for OciLayoutRegistry {
    async fn blob_exists(&self, repo: &Repository, digest: &Digest) -> Result<bool> {
        let layout = Layout::open(repo)?;
        let digest = digest.clone();
        blocking(repo, move || layout.has_blob(&digest)).await
    }

    async fn open_blob(&self, repo: &Repository, digest: &Digest, size: u64) -> Result<BlobStream> {
        Layout::open(repo)?.open_stream(digest, size).await
    }

    async fn push_blob_stream(
        &self,
        repo: &Repository,
        digest: &Digest,
        size: u64,
        stream: BlobStream,
    ) -> Result<()> {
        Layout::open(repo)?.write_stream(digest, size, stream).await
    }
}
