//! Blocking file operations on one layout directory: blobs, `index.json`, the writer lock.
//!
//! Every write goes to a temporary file in the layout's root, is flushed to disk and renamed into
//! place, so readers (floe, skopeo, ...) see a file either whole or not at all and never need a
//! lock. Writers of `index.json` serialise on an exclusive `flock` of `.floe.lock`, a file that
//! is never replaced or removed (locking `index.json` itself would lock the inode a rename
//! replaces).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use floe_promotion::input::read_bounded;
use floe_promotion::registry::{Manifest, SMALL_BLOB_LIMIT};
use floe_promotion::{Digest, Error, Repository, Result};
use sha2::{Digest as _, Sha256};
use tempfile::NamedTempFile;

use super::index::{ImageIndex, IndexChange};
use super::location::layout_dir;

const LOCK_FILE: &str = ".floe.lock";
const TEMP_PREFIX: &str = ".floe-tmp-";
const LAYOUT_FILE: &str = "oci-layout";
const LAYOUT_CONTENT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
const INDEX_FILE: &str = "index.json";
pub(super) const COPY_BUFFER: usize = 256 * 1024;
/// The largest `index.json` read: some 200,000 tags.
const MAX_INDEX: u64 = 64 * 1024 * 1024;

/// One OCI image-layout directory.
#[derive(Clone, Debug)]
pub(super) struct Layout {
    repo: Repository,
    root: PathBuf,
}

/// How a blob reached the destination of a copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Transfer {
    /// It was there already.
    Present,
    /// Hard-linked to the source's file.
    Linked,
    /// Its bytes were copied (this many).
    Copied(u64),
}

pub(super) fn io_error(action: &str, path: &Path, e: io::Error) -> Error {
    Error::io(format!("{action} {}", path.display()), e)
}

impl Layout {
    /// The layout a repository location names.
    pub(super) fn open(repo: &Repository) -> Result<Self> {
        Ok(Layout {
            root: layout_dir(repo)?,
            repo: repo.clone(),
        })
    }

    pub(super) fn repo(&self) -> &Repository {
        &self.repo
    }

    pub(super) fn root(&self) -> &Path {
        &self.root
    }

    fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    fn index_path(&self) -> PathBuf {
        self.root.join(INDEX_FILE)
    }

    pub(super) fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }

    pub(super) fn corrupt(&self, path: &Path, message: impl Into<String>) -> Error {
        Error::Store {
            backend: "oci-layout",
            location: path.display().to_string(),
            message: message.into(),
        }
    }

    /// Whether the blob (or manifest) with `digest` is stored.
    pub(super) fn has_blob(&self, digest: &Digest) -> Result<bool> {
        let path = self.blob_path(digest);
        match fs::metadata(&path) {
            Ok(m) => Ok(m.is_file()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_error("checking blob", &path, e)),
        }
    }

    /// The parsed `index.json`; `None` when the directory or the file does not exist.
    pub(super) fn read_index(&self) -> Result<Option<ImageIndex>> {
        let path = self.index_path();
        let bytes = match read_bounded(&path, MAX_INDEX, "OCI image index") {
            Ok(b) => b,
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Ok(None);
            }
            Err(Error::Io { source, .. }) => return Err(io_error("reading", &path, source)),
            Err(Error::InvalidInput { reason, .. }) => return Err(self.corrupt(&path, reason)),
            Err(e) => return Err(e),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| self.corrupt(&path, format!("not a valid OCI image index: {e}")))
    }

    /// Reads the manifest stored under `digest`, checking that its bytes hash to `digest`.
    /// A missing blob, or a blob that is not a manifest, is `NotFound`.
    pub(super) fn read_manifest(
        &self,
        digest: &Digest,
        media_type: Option<&str>,
    ) -> Result<Manifest> {
        let not_found =
            |why: &str| Error::not_found(format!("manifest {}@{digest}{why}", self.repo));
        let bytes = match self.read_blob(digest, SMALL_BLOB_LIMIT) {
            Ok(bytes) => bytes,
            Err(Error::NotFound { .. }) => return Err(not_found("")),
            Err(Error::InvalidInput { .. }) => {
                return Err(not_found(" (a blob larger than any manifest)"));
            }
            Err(e) => return Err(e),
        };
        let media_type = media_type.filter(|m| !m.is_empty());
        let manifest = Manifest::from_bytes(bytes, media_type)
            .map_err(|_| not_found(" (the blob is not a manifest)"))?;
        if manifest.body().schema_version != Some(2) {
            return Err(not_found(" (the blob is not a schema 2 manifest)"));
        }
        Ok(manifest)
    }

    /// Reads a blob of at most `max_bytes`, checking its digest.
    pub(super) fn read_blob(&self, digest: &Digest, max_bytes: u64) -> Result<Vec<u8>> {
        let path = self.blob_path(digest);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::not_found(format!("blob {}@{digest}", self.repo)));
            }
            Err(e) => return Err(io_error("reading", &path, e)),
        };
        let len = file
            .metadata()
            .map_err(|e| io_error("reading", &path, e))?
            .len();
        if len > max_bytes {
            return Err(Error::invalid(
                "blob",
                format!("{}@{digest}", self.repo),
                format!("{len} bytes is more than the limit of {max_bytes}"),
            ));
        }
        let mut bytes = Vec::with_capacity(len as usize);
        (&file)
            .take(max_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| io_error("reading", &path, e))?;
        if bytes.len() as u64 > max_bytes {
            return Err(Error::invalid(
                "blob",
                format!("{}@{digest}", self.repo),
                format!("more than the limit of {max_bytes} bytes"),
            ));
        }
        if Digest::of(&bytes) != *digest {
            return Err(self.corrupt(
                &path,
                format!(
                    "content does not match its name: hashes to {}",
                    Digest::of(&bytes)
                ),
            ));
        }
        Ok(bytes)
    }

    /// Creates the layout (directory, `oci-layout`, `index.json`, `blobs/sha256`) unless it
    /// exists. Refuses to turn a non-empty directory that is not a layout into one.
    pub(super) fn ensure(&self) -> Result<()> {
        let layout_file = self.root.join(LAYOUT_FILE);
        if layout_file.is_file() && self.blobs_dir().is_dir() && self.index_path().is_file() {
            return Ok(());
        }
        fs::create_dir_all(&self.root).map_err(|e| io_error("creating", &self.root, e))?;
        let _lock = self.lock()?;
        if !layout_file.is_file() {
            let entries =
                fs::read_dir(&self.root).map_err(|e| io_error("listing", &self.root, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| io_error("listing", &self.root, e))?;
                let name = entry.file_name();
                let name = name.to_string_lossy();
                // A crash while creating the layout may leave `blobs` and `index.json`.
                let ours = [LOCK_FILE, "blobs", INDEX_FILE].contains(&name.as_ref());
                if !ours && !name.starts_with(TEMP_PREFIX) {
                    return Err(Error::invalid(
                        "repository",
                        self.repo.as_str(),
                        format!(
                            "{} is not empty and not an OCI image layout (it has no `oci-layout` file but has {name:?})",
                            self.root.display()
                        ),
                    ));
                }
            }
        }
        let blobs = self.blobs_dir();
        fs::create_dir_all(&blobs).map_err(|e| io_error("creating", &blobs, e))?;
        if !self.index_path().is_file() {
            let bytes = serde_json::to_vec(&ImageIndex::default())
                .map_err(|e| self.corrupt(&self.index_path(), e.to_string()))?;
            self.write_file(&self.index_path(), &bytes)?;
        }
        // Written last: its presence says the layout is complete.
        if !layout_file.is_file() {
            self.write_file(&layout_file, LAYOUT_CONTENT)?;
        }
        sync_dir(&self.root)
    }

    /// Takes the exclusive writer lock of the layout, blocking until it is free. Released when
    /// the returned file is dropped (also when the process dies).
    fn lock(&self) -> Result<File> {
        let path = self.root.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io_error("opening lock file", &path, e))?;
        file.lock().map_err(|e| io_error("locking", &path, e))?;
        Ok(file)
    }

    /// Applies `changes` to `index.json` under the writer lock (read, modify, write a temporary
    /// file, flush, rename). Returns, per change, whether it changed the index.
    pub(super) fn update_index(&self, changes: &[IndexChange]) -> Result<Vec<bool>> {
        let _lock = self.lock()?;
        let mut index = self.read_index()?.unwrap_or_default();
        let changed: Vec<bool> = changes.iter().map(|c| index.apply(c)).collect();
        if changed.iter().any(|c| *c) {
            let path = self.index_path();
            let bytes =
                serde_json::to_vec(&index).map_err(|e| self.corrupt(&path, e.to_string()))?;
            self.write_file(&path, &bytes)?;
            sync_dir(&self.root)?;
        }
        Ok(changed)
    }

    /// Writes `bytes` to `path` atomically: temporary file in the root, flush, rename.
    fn write_file(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let mut tmp = self.temp_file()?;
        tmp.write_all(bytes)
            .and_then(|()| tmp.as_file().sync_data())
            .map_err(|e| io_error("writing", tmp.path(), e))?;
        tmp.persist(path)
            .map_err(|e| io_error("renaming into place", path, e.error))?;
        Ok(())
    }

    pub(super) fn temp_file(&self) -> Result<NamedTempFile> {
        let mut builder = tempfile::Builder::new();
        builder.prefix(TEMP_PREFIX);
        // Temporary files are private (0600) by default; layout files are read by other tools
        // and users, so they get the ordinary mode of new files (0666 less the umask).
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
        builder
            .tempfile_in(&self.root)
            .map_err(|e| io_error("creating a temporary file in", &self.root, e))
    }

    /// Stores `bytes` as a blob unless present; returns whether it wrote them. The caller
    /// syncs the blob directory (see [`Layout::sync_blobs`]).
    pub(super) fn write_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<bool> {
        if self.has_blob(digest)? {
            return Ok(false);
        }
        self.write_file(&self.blob_path(digest), bytes)?;
        Ok(true)
    }

    /// Flushes the blob directory, so blobs renamed into it survive a crash before `index.json`
    /// refers to them.
    pub(super) fn sync_blobs(&self) -> Result<()> {
        sync_dir(&self.blobs_dir())
    }

    /// Brings a blob of `src` here: nothing if present, else a hard link when `link` is set and
    /// the file system allows it, else a streamed copy that checks size and digest as it goes.
    pub(super) fn transfer_blob(
        &self,
        src: &Layout,
        digest: &Digest,
        expected_size: Option<u64>,
        link: bool,
    ) -> Result<Transfer> {
        if self.has_blob(digest)? {
            return Ok(Transfer::Present);
        }
        let from = src.blob_path(digest);
        let to = self.blob_path(digest);
        if link {
            match fs::hard_link(&from, &to) {
                Ok(()) => return Ok(Transfer::Linked),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    return Ok(Transfer::Present);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound && !from.exists() => {
                    return Err(Error::not_found(format!("blob {}@{digest}", src.repo)));
                }
                // Another file system, or a link the kernel refuses: copy the bytes instead.
                Err(_) => {}
            }
        }
        let mut input = match File::open(&from) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::not_found(format!("blob {}@{digest}", src.repo)));
            }
            Err(e) => return Err(io_error("reading", &from, e)),
        };
        let mut tmp = self.temp_file()?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; COPY_BUFFER];
        let mut copied = 0u64;
        loop {
            let n = match input.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_error("reading", &from, e)),
            };
            hasher.update(&buffer[..n]);
            tmp.write_all(&buffer[..n])
                .map_err(|e| io_error("writing", tmp.path(), e))?;
            copied += n as u64;
        }
        let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
        if actual != digest.as_str() {
            return Err(src.corrupt(
                &from,
                format!("content does not match its name: hashes to {actual}"),
            ));
        }
        if let Some(size) = expected_size.filter(|s| *s != copied) {
            return Err(src.corrupt(
                &from,
                format!("{copied} bytes where the manifest says {size}"),
            ));
        }
        tmp.as_file()
            .sync_data()
            .map_err(|e| io_error("writing", tmp.path(), e))?;
        tmp.persist(&to)
            .map_err(|e| io_error("renaming into place", &to, e.error))?;
        Ok(Transfer::Copied(copied))
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error("flushing directory", dir, e))
}
