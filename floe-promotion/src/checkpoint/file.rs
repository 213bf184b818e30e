//! Checkpoints in a JSON Lines file: one DSSE envelope per line, appended and synced.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::{CheckpointStore, StoredCheckpoint, claimed_sequence};
use crate::attest::Envelope;
use crate::error::{Error, Result};
use crate::{Digest, Excerpt};

/// The largest checkpoint file read: 256 MiB (a checkpoint line is under 1 KiB).
const MAX_FILE: u64 = 256 * 1024 * 1024;

/// A JSON Lines file of checkpoint envelopes, the one the user names.
///
/// `put` appends one line under an exclusive lock of the file (so processes append one at a
/// time) and syncs it to disk before returning; a line a crash left incomplete was never
/// acknowledged and is cut off by the next `put`. `list` reads under a shared lock. The file
/// and its directory are created on the first `put`.
#[derive(Clone, Debug)]
pub struct FileCheckpoints {
    path: PathBuf,
}

impl FileCheckpoints {
    /// The checkpoints in the file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileCheckpoints { path: path.into() }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn io(path: &Path, doing: &str, e: std::io::Error) -> Error {
    Error::io(
        format!("{doing} the checkpoint file {}", Excerpt::path(path)),
        e,
    )
}

/// One line read back: its number, its bytes (without the newline) and its envelope.
struct Line {
    number: usize,
    text: String,
    stored: StoredCheckpoint,
}

/// Parses the file's complete lines. An unterminated last line is returned apart, as the
/// byte offset where it starts, for `put` to cut off; `list` refuses it.
fn parse(path: &Path, bytes: &[u8]) -> Result<(Vec<Line>, Option<usize>)> {
    let shown = Excerpt::path(path);
    let mut lines = Vec::new();
    let mut start = 0;
    let mut number = 0;
    while start < bytes.len() {
        number += 1;
        let Some(len) = bytes[start..].iter().position(|b| *b == b'\n') else {
            return Ok((lines, Some(start)));
        };
        let raw = &bytes[start..start + len];
        start += len + 1;
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let location = format!("{shown}:line {number}");
        let text = std::str::from_utf8(raw)
            .map_err(|_| Error::invalid("checkpoint", location.clone(), "not UTF-8 text"))?;
        let envelope = Envelope::from_json(raw).map_err(|e| {
            Error::invalid(
                "checkpoint",
                location.clone(),
                format!("not a DSSE envelope: {e}"),
            )
        })?;
        let sequence = claimed_sequence(&envelope).ok_or_else(|| {
            Error::invalid(
                "checkpoint",
                location.clone(),
                "the envelope does not hold a floe checkpoint",
            )
        })?;
        lines.push(Line {
            number,
            text: text.to_string(),
            stored: StoredCheckpoint {
                sequence,
                envelope,
                location,
            },
        });
    }
    Ok((lines, None))
}

fn read_all(path: &Path, file: &mut File) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.take(MAX_FILE + 1).read_to_end(&mut bytes))
        .map_err(|e| io(path, "reading", e))?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(Error::invalid(
            "checkpoint file",
            Excerpt::path(path),
            format!("larger than {MAX_FILE} bytes"),
        ));
    }
    Ok(bytes)
}

fn put_blocking(path: &Path, sequence: u64, envelope: &Envelope) -> Result<String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        std::fs::create_dir_all(dir).map_err(|e| io(path, "creating the directory of", e))?;
    }
    let created = !path.exists();
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| io(path, "opening", e))?;
    file.lock().map_err(|e| io(path, "locking", e))?;
    let bytes = read_all(path, &mut file)?;
    let (lines, incomplete) = parse(path, &bytes)?;
    let line = String::from_utf8_lossy(&envelope.to_json()).into_owned();
    if let Some(existing) = lines.iter().find(|l| l.stored.sequence == sequence) {
        if existing.stored.envelope == *envelope {
            return Ok(existing.stored.location.clone());
        }
        return Err(Error::Conflict(format!(
            "checkpoint {sequence} is already stored at {} with another signature or time (envelope {}); it is kept",
            existing.stored.location,
            Digest::of(existing.text.as_bytes())
        )));
    }
    if let Some(start) = incomplete {
        // Never acknowledged: a put syncs its whole line before returning.
        file.set_len(start as u64)
            .map_err(|e| io(path, "cutting an incomplete line off", e))?;
    }
    let number = lines.last().map_or(0, |l| l.number) + 1;
    let mut record = line.into_bytes();
    record.push(b'\n');
    file.write_all(&record)
        .and_then(|()| file.sync_all())
        .map_err(|e| io(path, "appending to", e))?;
    if created && let Some(dir) = path.parent() {
        // The new file's directory entry must survive a crash too.
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(format!("{}:line {number}", Excerpt::path(path)))
}

fn list_blocking(path: &Path) -> Result<Vec<StoredCheckpoint>> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(io(path, "opening", e)),
    };
    file.lock_shared().map_err(|e| io(path, "locking", e))?;
    let bytes = read_all(path, &mut file)?;
    let (lines, incomplete) = parse(path, &bytes)?;
    if incomplete.is_some() {
        let number = lines.last().map_or(0, |l| l.number) + 1;
        return Err(Error::invalid(
            "checkpoint",
            format!("{}:line {number}", Excerpt::path(path)),
            "the last line is incomplete (a write was interrupted; the next checkpoint removes it)",
        ));
    }
    let mut out: Vec<StoredCheckpoint> = lines.into_iter().map(|l| l.stored).collect();
    out.sort_by_key(|c| c.sequence);
    Ok(out)
}

async fn blocking<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Store {
            backend: "checkpoint file",
            location: Excerpt::path(path),
            message: format!("the file task failed: {e}"),
        })?
}

#[async_trait]
impl CheckpointStore for FileCheckpoints {
    async fn put(&self, sequence: u64, envelope: &Envelope) -> Result<String> {
        let path = self.path.clone();
        let envelope = envelope.clone();
        blocking(&self.path, move || put_blocking(&path, sequence, &envelope)).await
    }

    async fn list(&self) -> Result<Vec<StoredCheckpoint>> {
        let path = self.path.clone();
        blocking(&self.path, move || list_blocking(&path)).await
    }

    fn describe(&self) -> String {
        Excerpt::path(&self.path)
    }
}
