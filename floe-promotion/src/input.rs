//! Bounded reads of what users hand in: report files, key files, audit exports, configs.
//!
//! The size a file system reports is not trusted (a device or a pipe reports 0, a file can grow
//! while it is read): every read stops one byte past its limit, and more than the limit is
//! refused with an error naming the file and the limit. Memory stays bounded whatever the input.

use std::fs::File;
use std::io::{self, BufRead, Read};
use std::path::Path;

use crate::error::{Error, Excerpt, Result};

/// Reads the whole file at `path`, refusing it when it holds more than `limit` bytes.
///
/// `what` names the file in messages, e.g. `"trusted key"` or `"--file"`. At most `limit + 1`
/// bytes are ever read.
///
/// # Errors
///
/// - [`Error::InvalidInput`] naming `what`, the path and the limit when the file holds more
///   than `limit` bytes;
/// - [`Error::Io`] naming `what` and the path when it cannot be opened or read; its source keeps
///   the [`io::ErrorKind`] (`NotFound`...).
///
/// ```
/// use floe_promotion::input::read_bounded;
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("report.json");
/// std::fs::write(&path, "{}")?;
/// assert_eq!(read_bounded(&path, 1024, "report")?, b"{}");
/// let err = read_bounded(std::path::Path::new("/dev/zero"), 1024, "report").unwrap_err();
/// assert!(err.to_string().contains("more than the 1 KiB limit"), "{err}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn read_bounded(path: &Path, limit: u64, what: &'static str) -> Result<Vec<u8>> {
    let context = || format!("reading {what} {}", Excerpt::path(path));
    let file = File::open(path).map_err(|e| Error::io(context(), e))?;
    // The reported size only sizes the buffer; a file that reports 0 still stops at the limit.
    let hint = file.metadata().map(|m| m.len()).unwrap_or(0).min(limit);
    let mut bytes = Vec::with_capacity(usize::try_from(hint).unwrap_or(0));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(context(), e))?;
    if bytes.len() as u64 > limit {
        return Err(too_large(what, &path.display().to_string(), limit));
    }
    Ok(bytes)
}

/// What [`read_line_bounded`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoundedLine {
    /// A line is in the buffer, without its line ending.
    Line,
    /// The input is at its end; the buffer is empty.
    End,
    /// The line goes on past the limit; the buffer holds its first `limit + 1` bytes and the
    /// rest of the line, if any, is left unread.
    TooLong,
}

/// Reads one line of at most `limit` bytes (not counting its `\n` or `\r\n`) into `line`,
/// which is cleared first. At most `limit + 2` bytes are read.
///
/// ```
/// use floe_promotion::input::{BoundedLine, read_line_bounded};
/// let mut input: &[u8] = b"short\nmuch too long\n";
/// let mut line = Vec::new();
/// assert_eq!(read_line_bounded(&mut input, &mut line, 8)?, BoundedLine::Line);
/// assert_eq!(line, b"short");
/// assert_eq!(read_line_bounded(&mut input, &mut line, 8)?, BoundedLine::TooLong);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn read_line_bounded(
    input: &mut impl BufRead,
    line: &mut Vec<u8>,
    limit: u64,
) -> io::Result<BoundedLine> {
    line.clear();
    // Room for the limit, a `\r` and the `\n`: a line of exactly `limit` bytes still fits.
    let n = input
        .take(limit.saturating_add(2))
        .read_until(b'\n', line)?;
    if n == 0 {
        return Ok(BoundedLine::End);
    }
    let ended = line.last() == Some(&b'\n');
    if ended {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    if line.len() as u64 > limit {
        line.truncate(usize::try_from(limit.saturating_add(1)).unwrap_or(usize::MAX));
        return Ok(BoundedLine::TooLong);
    }
    Ok(BoundedLine::Line)
}

/// The refusal of an input larger than its limit.
pub(crate) fn too_large(what: &'static str, name: &str, limit: u64) -> Error {
    Error::invalid(
        what,
        name,
        format!("more than the {} limit", size_text(limit)),
    )
}

/// `limit` as a person reads it: "1 MiB", "64 KiB", "1000 bytes".
pub(crate) fn size_text(limit: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * KIB;
    const GIB: u64 = 1024 * MIB;
    match limit {
        0 => "0 bytes".into(),
        l if l % GIB == 0 => format!("{} GiB", l / GIB),
        l if l % MIB == 0 => format!("{} MiB", l / MIB),
        l if l % KIB == 0 => format!("{} KiB", l / KIB),
        l => format!("{l} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_of(len: usize) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("input");
        std::fs::write(&path, vec![b'x'; len]).unwrap();
        (dir, path)
    }

    #[test]
    fn a_file_up_to_the_limit_is_read_whole() {
        for len in [0, 1, 99, 100] {
            let (_dir, path) = file_of(len);
            assert_eq!(read_bounded(&path, 100, "input").unwrap().len(), len);
        }
    }

    #[test]
    fn a_file_past_the_limit_is_refused_naming_it_and_the_limit() {
        let (_dir, path) = file_of(101);
        let err = read_bounded(&path, 100, "report").unwrap_err();
        assert!(matches!(err, Error::InvalidInput { what: "report", .. }));
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains("more than the 100 bytes limit"), "{text}");
    }

    /// A device reports a size of 0 and never ends: the read still stops at the limit.
    #[test]
    fn a_device_is_read_up_to_the_limit() {
        let err = read_bounded(Path::new("/dev/zero"), 1024 * 1024, "--file").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"invalid --file "/dev/zero": more than the 1 MiB limit"#
        );
    }

    /// A sparse file claims a size far past the limit: refused without reading it.
    #[test]
    fn a_huge_sparse_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.pub");
        std::fs::File::create(&path)
            .unwrap()
            .set_len(1 << 40)
            .unwrap();
        let err = read_bounded(&path, 64 * 1024, "trusted key").unwrap_err();
        assert!(
            err.to_string().contains("more than the 64 KiB limit"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_file_keeps_its_error_kind_and_is_named() {
        let err = read_bounded(Path::new("/nonexistent/key.pub"), 10, "trusted key").unwrap_err();
        let Error::Io { context, source } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(source.kind(), io::ErrorKind::NotFound);
        assert_eq!(context, "reading trusted key /nonexistent/key.pub");
    }

    #[test]
    fn lines_are_read_one_by_one_up_to_the_limit() {
        let mut input: &[u8] = b"abc\r\n12345\n\n123456\nlast";
        let mut line = Vec::new();
        let mut seen = Vec::new();
        loop {
            match read_line_bounded(&mut input, &mut line, 5).unwrap() {
                BoundedLine::Line => seen.push(String::from_utf8(line.clone()).unwrap()),
                BoundedLine::TooLong => {
                    assert_eq!(line, b"123456");
                    seen.push("<too long>".into());
                    break;
                }
                BoundedLine::End => break,
            }
        }
        assert_eq!(seen, ["abc", "12345", "", "<too long>"]);
        // The rest is still there.
        assert_eq!(
            read_line_bounded(&mut input, &mut line, 5).unwrap(),
            BoundedLine::Line
        );
        assert_eq!(line, b"last");
        assert_eq!(
            read_line_bounded(&mut input, &mut line, 5).unwrap(),
            BoundedLine::End
        );
        assert!(line.is_empty());
    }

    #[test]
    fn an_endless_line_stops_at_the_limit() {
        let mut input = io::BufReader::new(io::repeat(b'a'));
        let mut line = Vec::new();
        assert_eq!(
            read_line_bounded(&mut input, &mut line, 1000).unwrap(),
            BoundedLine::TooLong
        );
        assert_eq!(line.len(), 1001);
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(size_text(1024 * 1024), "1 MiB");
        assert_eq!(size_text(8 * 1024 * 1024), "8 MiB");
        assert_eq!(size_text(64 * 1024), "64 KiB");
        assert_eq!(size_text(4 * 1024 * 1024 * 1024), "4 GiB");
        assert_eq!(size_text(1000), "1000 bytes");
        assert_eq!(size_text(0), "0 bytes");
    }
}
