//! Mapping of SQLite failures into the core's [`Error`]: every message names the database file.

use std::time::Duration;

use floe_promotion::Error;
use rusqlite::ErrorCode;

/// The backend name used in [`Error::Store`].
pub(crate) const BACKEND: &str = "sqlite";

/// A store error about the database file `file`.
pub(crate) fn store_err(file: &str, message: impl Into<String>) -> Error {
    Error::Store {
        backend: BACKEND,
        location: file.to_string(),
        message: message.into(),
    }
}

/// Maps a rusqlite error raised while doing `action` on `file`.
///
/// `SQLITE_BUSY`/`SQLITE_LOCKED` (after the busy timeout) become [`Error::Unavailable`]: the
/// operation may succeed when retried. Everything else is [`Error::Store`] with a message
/// saying what is wrong with the file.
pub(crate) fn sql_err(file: &str, action: &str, busy: Duration, e: rusqlite::Error) -> Error {
    let detail = e.to_string();
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Error::Unavailable {
            registry: file.to_string(),
            message: format!(
                "{action}: the database is locked by another connection or process \
                 (waited {} ms): {detail}",
                busy.as_millis()
            ),
        },
        Some(ErrorCode::NotADatabase) => store_err(
            file,
            format!("{action}: the file is not a SQLite database (or is encrypted): {detail}"),
        ),
        Some(ErrorCode::DatabaseCorrupt) => store_err(
            file,
            format!("{action}: the database file is corrupt: {detail}"),
        ),
        Some(ErrorCode::ReadOnly) => store_err(
            file,
            format!("{action}: the database is read-only: {detail}"),
        ),
        Some(ErrorCode::CannotOpen) => store_err(
            file,
            format!("{action}: cannot open the database file: {detail}"),
        ),
        Some(ErrorCode::DiskFull) => {
            store_err(file, format!("{action}: the disk is full: {detail}"))
        }
        Some(ErrorCode::SystemIoFailure) => {
            store_err(file, format!("{action}: I/O error: {detail}"))
        }
        Some(ErrorCode::PermissionDenied) => {
            store_err(file, format!("{action}: permission denied: {detail}"))
        }
        _ => store_err(file, format!("{action}: {detail}")),
    }
}
