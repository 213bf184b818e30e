//! The store handle: opening the file, the connection pool and running work off the executor.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use floe_promotion::{Error, Result};
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::errors::{sql_err, store_err};
use crate::schema;

/// How to open a [`SqliteStore`].
#[derive(Clone, Debug)]
pub struct SqliteOptions {
    busy_timeout: Duration,
    read_only: bool,
    max_idle: usize,
    wal_autocheckpoint: u32,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            busy_timeout: Duration::from_secs(10),
            read_only: false,
            max_idle: 4,
            wal_autocheckpoint: 1000,
        }
    }
}

impl SqliteOptions {
    /// How long a call waits for another connection or process that holds the write lock
    /// before failing with [`Error::Unavailable`]. Default: 10 s.
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Opens the file read-only: it must exist and have this build's schema, and every write
    /// fails with [`Error::Store`]. Default: read-write, creating the file.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// How many idle connections the store keeps open for reuse. Default: 4.
    pub fn max_idle_connections(mut self, n: usize) -> Self {
        self.max_idle = n;
        self
    }

    /// How many pages the WAL may hold before the commit that reaches them copies them into
    /// the database file (SQLite's `wal_autocheckpoint`; 0 never does). Default: 1,000, as in
    /// SQLite.
    ///
    /// The first connection of each process reads every frame written since the last
    /// checkpoint when it opens the file. A program that keeps the store open pays that once
    /// and is best served by the default: in one process, a durable append took about 206 µs
    /// at 1,000 pages and 308 µs at 100 (criterion, 1M events). A program that opens the file
    /// anew for each short command pays it every time: with 1,000 pages a command spent about
    /// 1 ms opening a file whose WAL was nearly full, and in 300 `floe lock` and `unlock`
    /// commands in a row a command took 5.33 ms on average against 4.36 ms with 100 (see
    /// [`SHORT_LIVED_WAL_PAGES`]).
    pub fn wal_autocheckpoint(mut self, pages: u32) -> Self {
        self.wal_autocheckpoint = pages;
        self
    }
}

/// The automatic checkpoint for a process that opens the store for one short command and
/// exits (the `floe` command): see [`SqliteOptions::wal_autocheckpoint`].
pub const SHORT_LIVED_WAL_PAGES: u32 = 100;

/// The audit history, locks, leases, approvals and release state of floe-promotion in one
/// SQLite file.
///
/// Implements [`HistoryStore`](floe_promotion::HistoryStore),
/// [`LockStore`](floe_promotion::LockStore), [`ReleaseStore`](floe_promotion::ReleaseStore)
/// and [`CursorStore`](floe_promotion::notify::CursorStore).
/// Clones share the same connections. Several stores, in one process or in several, may open
/// the same file: SQLite's locking serialises their writes (see the crate documentation).
#[derive(Clone)]
pub struct SqliteStore {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.shared.path)
            .field("read_only", &self.shared.options.read_only)
            .finish()
    }
}

/// What clones of a store share.
pub(crate) struct Shared {
    pub(crate) path: PathBuf,
    /// The path as shown in messages.
    pub(crate) name: String,
    pub(crate) options: SqliteOptions,
    idle: Mutex<Vec<Connection>>,
    /// Serialises this process's writers before they reach SQLite's lock, so that they queue
    /// fairly instead of polling the busy handler; other processes still meet the file lock.
    write_gate: Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    pub(crate) fn err(&self, action: &str, e: rusqlite::Error) -> Error {
        sql_err(&self.name, action, self.options.busy_timeout, e)
    }

    fn connect(&self) -> Result<Connection> {
        self.connect_with(OpenFlags::SQLITE_OPEN_CREATE)
    }

    /// A connection to the file only if it exists: never creates one.
    fn connect_existing(&self) -> Result<Connection> {
        self.connect_with(OpenFlags::empty())
    }

    /// A connection opened with `create` (`SQLITE_OPEN_CREATE` or nothing) for writing.
    fn connect_with(&self, create: OpenFlags) -> Result<Connection> {
        let flags = if self.options.read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE | create | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        let conn = Connection::open_with_flags(&self.path, flags)
            .map_err(|e| self.err("opening the database", e))?;
        conn.busy_timeout(self.options.busy_timeout)
            .map_err(|e| self.err("setting the busy timeout", e))?;
        // FULL: every commit is fsynced before it is acknowledged, so an acknowledged audit
        // event survives a crash or power loss.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| self.err("setting synchronous=FULL", e))?;
        conn.pragma_update(None, "cache_size", -16_000)
            .map_err(|e| self.err("setting the cache size", e))?;
        if !self.options.read_only {
            // Closing the last connection leaves the WAL as it is instead of copying it into
            // the database file: a command that commits two transactions would otherwise pay
            // two more fsyncs and an unlink at exit. Every commit is already durable in the
            // WAL (synchronous=FULL), which SQLite reads back on the next open; the database
            // file is brought up to date by the automatic checkpoint once the WAL holds
            // `wal_autocheckpoint` pages, inside the commit that reaches them.
            conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
                .map_err(|e| self.err("keeping the WAL at close", e))?;
            conn.pragma_update(None, "wal_autocheckpoint", self.options.wal_autocheckpoint)
                .map_err(|e| self.err("setting the automatic checkpoint", e))?;
        }
        Ok(conn)
    }

    /// An exclusive lock on `<database>.setup-lock`, held while a writable open creates the
    /// file, switches it to WAL and migrates it; released when dropped.
    fn setup_lock(&self) -> Result<SetupLock> {
        let mut name = self.path.as_os_str().to_os_string();
        name.push(".setup-lock");
        let path = PathBuf::from(name);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| store_err(&self.name, format!("cannot create {}: {e}", path.display())))?;
        file.lock()
            .map_err(|e| store_err(&self.name, format!("cannot lock {}: {e}", path.display())))?;
        Ok(SetupLock(file))
    }

    /// Creates the database when the path names no file (or an empty one), so that it
    /// appears complete or not at all: the schema is built in `<database>.creating` without
    /// fsyncs, which is then synced once and renamed into place, and the directory synced.
    /// A crash leaves either no database or a complete empty one, and a new file costs two
    /// fsyncs where building it in place cost eight. Called under the setup lock.
    fn create_if_missing(&self) -> Result<()> {
        match std::fs::symlink_metadata(&self.path) {
            // A link, or an empty file the user cannot write, is opened in place as before.
            Ok(meta) if meta.len() > 0 || meta.is_symlink() || meta.permissions().readonly() => {
                return Ok(());
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(store_err(&self.name, format!("cannot read the file: {e}"))),
        }
        let mut name = self.path.as_os_str().to_os_string();
        name.push(".creating");
        let tmp = PathBuf::from(name);
        let fail = |what: &str, e: &dyn fmt::Display| {
            store_err(&self.name, format!("{what} {}: {e}", tmp.display()))
        };
        // A leftover of a creation that crashed holds nothing: start again.
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut leftover = tmp.as_os_str().to_os_string();
            leftover.push(suffix);
            match std::fs::remove_file(PathBuf::from(leftover)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(fail("cannot remove the leftover", &e)),
            }
        }
        {
            let mut conn = Connection::open_with_flags(
                &tmp,
                OpenFlags::SQLITE_OPEN_READ_WRITE
                    | OpenFlags::SQLITE_OPEN_CREATE
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(|e| self.err("creating the database", e))?;
            // Nothing in this file counts until it is renamed into place after one fsync.
            conn.pragma_update(None, "synchronous", "OFF")
                .map_err(|e| self.err("creating the database", e))?;
            let mode: String = conn
                .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
                .map_err(|e| self.err("switching to WAL mode", e))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(store_err(
                    &self.name,
                    format!("cannot use WAL mode (journal_mode is {mode})"),
                ));
            }
            schema::migrate(&mut conn, &self.name, |action, e| self.err(action, e))?;
            // Closing the only connection checkpoints the WAL into the file and removes it.
            conn.close()
                .map_err(|(_, e)| self.err("creating the database", e))?;
        }
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| fail("cannot sync", &e))?;
        // A WAL (and its index) left beside a database file that is gone belongs to that
        // file: SQLite would replay its frames into the new one. Closing keeps the WAL (see
        // `connect`), so deleting only the database file leaves one behind.
        for suffix in ["-wal", "-shm"] {
            let mut stale = self.path.as_os_str().to_os_string();
            stale.push(suffix);
            let stale = PathBuf::from(stale);
            match std::fs::remove_file(&stale) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(store_err(
                        &self.name,
                        format!("cannot remove the stale {}: {e}", stale.display()),
                    ));
                }
            }
        }
        std::fs::rename(&tmp, &self.path).map_err(|e| fail("cannot rename", &e))?;
        if let Some(dir) = self.path.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| {
                    store_err(&self.name, format!("cannot sync {}: {e}", dir.display()))
                })?;
        }
        Ok(())
    }

    fn checkout(&self) -> Result<Connection> {
        match lock(&self.idle).pop() {
            Some(c) => Ok(c),
            None => self.connect(),
        }
    }

    fn checkin(&self, conn: Connection) {
        let mut idle = lock(&self.idle);
        if idle.len() < self.options.max_idle {
            idle.push(conn);
        }
    }

    /// Runs `f` with a pooled connection on the current (blocking) thread.
    pub(crate) fn with_conn<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut conn = self.checkout()?;
        let result = f(&mut conn);
        // A failed call rolled its transaction back when the transaction was dropped; the
        // connection is reusable unless it is still inside one.
        if conn.is_autocommit() {
            self.checkin(conn);
        }
        result
    }

    /// Runs `f` in a write transaction (`BEGIN IMMEDIATE`), committing when it returns `Ok`;
    /// the commit is on disk before this returns.
    pub(crate) fn with_write<T>(
        &self,
        action: &str,
        f: impl FnOnce(&Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        self.with_write_as(action, Durability::Full, f)
    }

    /// Runs `f` in a write transaction with the given durability. A [`Durability::Relaxed`]
    /// commit is atomic and survives the process being killed, but is not fsynced: an
    /// operating-system crash or power loss may lose it (never the durable writes before or
    /// after it, and never the file's consistency). The next durable commit syncs it too.
    pub(crate) fn with_write_as<T>(
        &self,
        action: &str,
        durability: Durability,
        f: impl FnOnce(&Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        if self.options.read_only {
            return Err(store_err(
                &self.name,
                format!("{action}: the store was opened read-only"),
            ));
        }
        let _gate = lock(&self.write_gate);
        self.with_conn(|conn| {
            if durability == Durability::Relaxed {
                conn.pragma_update(None, "synchronous", "NORMAL")
                    .map_err(|e| self.err("setting synchronous=NORMAL", e))?;
            }
            let result = (|| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(|e| self.err(action, e))?;
                let value = f(&tx)?;
                tx.commit().map_err(|e| self.err(action, e))?;
                tracing::debug!(action, ?durability, "committed a write transaction");
                Ok(value)
            })();
            if durability == Durability::Relaxed {
                // A pooled connection must go back durable; if it cannot, it is not reused.
                if let Err(e) = conn.pragma_update(None, "synchronous", "FULL") {
                    let _ = conn.execute_batch("BEGIN");
                    return Err(self.err("setting synchronous=FULL", e));
                }
            }
            result
        })
    }

    /// Runs `f` in a read transaction: every statement in it sees one snapshot.
    pub(crate) fn with_read<T>(
        &self,
        action: &str,
        f: impl FnOnce(&Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        self.with_conn(|conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Deferred)
                .map_err(|e| self.err(action, e))?;
            let value = f(&tx)?;
            // Ending a read transaction cannot lose data; its error is only reported.
            tx.finish().map_err(|e| self.err(action, e))?;
            Ok(value)
        })
    }
}

impl SqliteStore {
    /// Opens (creating it if needed) the database file at `path`, read-write, with the
    /// default options. The directory must exist.
    ///
    /// Fails with a clear error naming the file when the directory is missing, the file is
    /// not a SQLite database, is corrupt, belongs to another application, has a newer schema
    /// than this build, or is locked longer than the busy timeout.
    pub async fn open(path: impl AsRef<Path>) -> Result<SqliteStore> {
        Self::open_with(path, SqliteOptions::default()).await
    }

    /// Opens an existing database file read-only (for `history`, `status`, `verify`,
    /// `export` on a file the caller may not write).
    pub async fn open_read_only(path: impl AsRef<Path>) -> Result<SqliteStore> {
        Self::open_with(path, SqliteOptions::default().read_only(true)).await
    }

    /// Opens the database file at `path` with `options`. The file is opened, checked and
    /// migrated on a blocking thread.
    pub async fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<SqliteStore> {
        let path = path.as_ref().to_path_buf();
        let store = tokio::task::spawn_blocking(move || Self::open_blocking(path, options))
            .await
            .map_err(|e| Error::Store {
                backend: crate::errors::BACKEND,
                location: String::new(),
                message: format!("the thread opening the database failed: {e}"),
            })??;
        // A second connection, opened meanwhile in the background: the first two calls made
        // at once (a promotion records its request while it reads the lock) do not wait for
        // one to open. A failure here is met again, and reported, by the call that needs it.
        let shared = Arc::clone(&store.shared);
        tokio::task::spawn_blocking(move || {
            if lock(&shared.idle).len() < 2
                && let Ok(conn) = shared.connect_existing()
            {
                shared.checkin(conn);
            }
        });
        Ok(store)
    }

    /// Like [`open_with`](Self::open_with), on the calling thread: for programs without an
    /// async runtime, or already on a blocking thread.
    pub fn open_blocking(path: impl AsRef<Path>, options: SqliteOptions) -> Result<SqliteStore> {
        let path = path.as_ref().to_path_buf();
        let name = path.display().to_string();
        if path.as_os_str().is_empty() {
            return Err(Error::invalid(
                "database path",
                "",
                "the path of the SQLite database is empty",
            ));
        }
        if path.is_dir() {
            return Err(store_err(&name, "the database path is a directory"));
        }
        if options.read_only {
            if !path.exists() {
                return Err(Error::not_found(format!("SQLite database {name}")));
            }
        } else {
            let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
            if let Some(dir) = parent
                && !dir.is_dir()
            {
                return Err(if dir.exists() {
                    store_err(&name, format!("{} is not a directory", dir.display()))
                } else {
                    Error::not_found(format!(
                        "directory {} of the SQLite database {name}",
                        dir.display()
                    ))
                });
            }
        }
        let shared = Shared {
            path,
            name,
            options,
            idle: Mutex::new(Vec::new()),
            write_gate: Mutex::new(()),
        };
        // Processes that open a new file at the same moment would race to create it and
        // switch it to WAL (which SQLite can refuse as busy without waiting): creation, the
        // switch and the migration happen under an exclusive lock of a file beside the
        // database.
        let setup = if shared.options.read_only {
            None
        } else {
            let lock = shared.setup_lock()?;
            shared.create_if_missing()?;
            Some(lock)
        };
        let mut conn = shared.connect()?;
        if shared.options.read_only {
            schema::check_read_only(&conn, &shared.name)?;
        } else {
            let read_only = conn
                .is_readonly(rusqlite::MAIN_DB)
                .map_err(|e| shared.err("opening the database", e))?;
            if read_only {
                return Err(store_err(
                    &shared.name,
                    "the database file is not writable (commands that change state need write access)",
                ));
            }
            let current: String = conn
                .query_row("PRAGMA journal_mode", [], |r| r.get(0))
                .map_err(|e| shared.err("reading the journal mode", e))?;
            if !current.eq_ignore_ascii_case("wal") {
                let mode: String = conn
                    .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
                    .map_err(|e| shared.err("switching to WAL mode", e))?;
                if !mode.eq_ignore_ascii_case("wal") {
                    return Err(store_err(
                        &shared.name,
                        format!("cannot use WAL mode (journal_mode is {mode})"),
                    ));
                }
            }
            schema::migrate(&mut conn, &shared.name, |action, e| shared.err(action, e))?;
        }
        drop(setup);
        shared.checkin(conn);
        Ok(SqliteStore {
            shared: Arc::new(shared),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Runs SQLite's `PRAGMA integrity_check` and fails with [`Error::Store`] listing the
    /// problems when the file is damaged.
    pub async fn check_integrity(&self) -> Result<()> {
        self.blocking("checking integrity", |shared| {
            shared.with_conn(|conn| {
                let mut stmt = conn
                    .prepare("PRAGMA integrity_check")
                    .map_err(|e| shared.err("checking integrity", e))?;
                let problems: Vec<String> = stmt
                    .query_map([], |r| r.get(0))
                    .and_then(|rows| rows.collect())
                    .map_err(|e| shared.err("checking integrity", e))?;
                if problems == ["ok"] {
                    Ok(())
                } else {
                    Err(store_err(
                        &shared.name,
                        format!("integrity check failed: {}", problems.join("; ")),
                    ))
                }
            })
        })
        .await
    }

    /// Runs `f` on a blocking thread, never on the async executor's threads.
    pub(crate) async fn blocking<T, F>(&self, action: &'static str, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Shared) -> Result<T> + Send + 'static,
    {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || f(&shared))
            .await
            .map_err(|e| {
                store_err(
                    &self.shared.name,
                    format!("{action}: the worker thread failed: {e}"),
                )
            })?
    }
}

/// How a write transaction reaches the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Durability {
    /// Fsynced before the call returns (`synchronous=FULL`): audit events, locks, holds,
    /// releases, revocations.
    Full,
    /// Atomic and safe from a process crash, synced by the next durable commit
    /// (`synchronous=NORMAL` in WAL mode): what is safe to lose to a power cut, a notification
    /// cursor (the event is delivered again, consumers deduplicate by id), a lease grant (a
    /// power cut that loses it also ended every process it kept out) or a lease release (the
    /// lease expires, or `floe lease break` removes it).
    Relaxed,
}

/// The setup lock of a database file (see `Shared::setup_lock`).
struct SetupLock(std::fs::File);

impl Drop for SetupLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synchronous(shared: &Shared) -> i64 {
        shared
            .with_conn(|conn| {
                conn.query_row("PRAGMA synchronous", [], |r| r.get(0))
                    .map_err(|e| shared.err("reading synchronous", e))
            })
            .expect("read synchronous")
    }

    /// A relaxed write commits, and its pooled connection goes back to `synchronous=FULL`
    /// (2), whether the write succeeded or failed, so later writes are durable again.
    #[test]
    fn relaxed_writes_leave_pooled_connections_durable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store =
            SqliteStore::open_blocking(dir.path().join("state.db"), SqliteOptions::default())
                .expect("open");
        let shared = &store.shared;
        assert_eq!(synchronous(shared), 2);
        shared
            .with_write_as("relaxed", Durability::Relaxed, |tx| {
                tx.execute_batch("CREATE TABLE t (x INTEGER)")
                    .map_err(|e| shared.err("create", e))?;
                let inside: i64 = tx
                    .query_row("PRAGMA synchronous", [], |r| r.get(0))
                    .map_err(|e| shared.err("read", e))?;
                assert_eq!(inside, 1, "the relaxed write ran with synchronous=NORMAL");
                Ok(())
            })
            .expect("relaxed write");
        assert_eq!(synchronous(shared), 2);
        let failed: Result<()> = shared.with_write_as("relaxed", Durability::Relaxed, |tx| {
            tx.execute_batch("INSERT INTO t VALUES (1)")
                .map_err(|e| shared.err("insert", e))?;
            Err(store_err("test", "refused"))
        });
        assert!(failed.is_err());
        assert_eq!(synchronous(shared), 2);
        let rows: i64 = shared
            .with_read("count", |tx| {
                tx.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
                    .map_err(|e| shared.err("count", e))
            })
            .expect("count");
        assert_eq!(rows, 0, "the failed relaxed write was rolled back");
    }

    /// An async open leaves a second connection in the pool, opened in the background, so
    /// that the first two calls made at once both find one; it opens the file as it is and
    /// never creates one (a file removed meanwhile stays removed).
    #[tokio::test]
    async fn an_async_open_readies_a_second_connection_and_creates_no_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.db");
        let store = SqliteStore::open(&path).await.expect("open");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while lock(&store.shared.idle).len() < 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "no second connection after 10 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(lock(&store.shared.idle).len(), 2);

        // The connection opened in the background would create a file that is gone.
        let shared = &store.shared;
        for suffix in ["", "-wal", "-shm"] {
            let mut name = path.as_os_str().to_os_string();
            name.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(name));
        }
        assert!(
            shared.connect_existing().is_err(),
            "a removed file is not created again"
        );
        assert!(!path.exists());
    }
}
