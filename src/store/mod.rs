//! SQLite: opening a connection with our PRAGMAs, the schema and its upgrades, the
//! single writer that commits submissions in groups, and plain functions per table.

pub mod audit;
pub mod backup;
mod checkpoint;
mod error;
pub mod export_cursors;
pub mod followup;
pub mod outbox;
mod quota;
pub mod review;
pub mod schema;
mod scrub;
pub mod seal;
mod sql;
pub mod submissions;
#[cfg(test)]
pub(crate) mod test_support;
pub mod visitor_mails;
mod writer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

pub use checkpoint::{Checkpointer, Checkpoints};
pub use error::StoreError;
pub use quota::Quota;
pub use scrub::{Erasing, erase, rewrite_file};
pub use submissions::{Admission, AdmissionOutcome, AdmissionRules, Admitted, SubmissionRecord};
pub use writer::{WriteFailure, Writer, WriterThread};

/// Where the database lives and how connections to it behave.
#[derive(Debug, Clone)]
pub struct Database {
    path: PathBuf,
    busy_timeout: Duration,
    quota: Option<Quota>,
    checkpoints: Checkpoints,
}

impl Database {
    pub fn new(path: impl Into<PathBuf>, busy_timeout: Duration) -> Self {
        Self {
            path: path.into(),
            busy_timeout,
            quota: None,
            checkpoints: Checkpoints::Joinform,
        }
    }

    /// The same database settings for the file at `path` (the file a symbolic link
    /// named by the configuration points to).
    pub fn with_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.path = path.into();
        self
    }

    /// Who checkpoints the WAL (`storage.litestream`); joinform unless told otherwise.
    pub fn with_checkpoints(mut self, checkpoints: Checkpoints) -> Self {
        self.checkpoints = checkpoints;
        self
    }

    /// Who checkpoints the WAL of this database.
    pub fn checkpoints(&self) -> Checkpoints {
        self.checkpoints
    }

    /// Caps the disk the database uses, main file and WAL together, at `max_size_mib`
    /// MiB (see [`Quota`]); past it, sign-ups are refused and `/readyz` says so. 0: no
    /// cap.
    pub fn with_max_size_mib(mut self, max_size_mib: u64) -> Self {
        self.quota = Quota::from_mib(max_size_mib);
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates the file and its folder if needed, and brings the schema to the current
    /// version. Called once at start-up, before any other connection is opened.
    ///
    /// # Errors
    /// A file joinform must not use (newer, foreign, not SQLite) is refused before a
    /// byte of it is written (see [`schema::inspect`]).
    pub fn prepare(&self) -> Result<(), StoreError> {
        if let Some(folder) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(folder).map_err(|source| StoreError::CreateFolder {
                path: folder.to_owned(),
                source,
            })?;
        }
        // Before SQLite opens anything: it gives a new -wal or -shm the database's mode.
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut name = self.path.as_os_str().to_owned();
            name.push(suffix);
            crate::owner_only::restrict(Path::new(&name));
        }
        schema::inspect(&self.path)?;
        let mut connection = self.connect()?;
        schema::migrate(&mut connection, &self.path)
    }

    /// A connection with every PRAGMA we rely on. All connections come from here.
    /// Under [`Checkpoints::Litestream`] it never checkpoints (`wal_autocheckpoint =
    /// 0`), which also tells [`erase`] not to truncate the WAL.
    pub fn connect(&self) -> Result<Connection, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(&self.path, flags)?;
        connection.busy_timeout(self.busy_timeout)?;
        // Only takes effect on a new, empty file, and only before WAL is switched on;
        // on an existing file it changes nothing.
        connection.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
        // WAL lets readers (exports, probes) run beside the writer; FULL syncs the WAL
        // on every commit, so a reported commit survives power loss.
        let mode: String =
            connection.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::NoWal { mode });
        }
        connection.pragma_update(None, "synchronous", "FULL")?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
        // Deleted personal data is overwritten, not left in free pages.
        connection.pragma_update(None, "secure_delete", "ON")?;
        if self.checkpoints == Checkpoints::Litestream {
            // Litestream's tips: a checkpoint it did not run makes it take a snapshot.
            connection.pragma_update(
                None,
                "wal_autocheckpoint",
                Checkpoints::LITESTREAM_AUTOCHECKPOINT,
            )?;
        }
        if let Some(quota) = self.quota {
            let page_size: i64 =
                connection.pragma_query_value(None, "page_size", |row| row.get(0))?;
            let main_bytes = i64::try_from(quota.main_file_bytes()).unwrap_or(i64::MAX);
            connection.pragma_update(None, "max_page_count", main_bytes / page_size.max(512))?;
            let wal_bytes = i64::try_from(quota.wal_bytes()).unwrap_or(i64::MAX);
            connection.pragma_update(None, "journal_size_limit", wal_bytes)?;
        }
        Ok(connection)
    }

    /// A connection that holds the database alone until it is closed
    /// (`locking_mode = EXCLUSIVE`, its lock taken at once), for a command that rewrites
    /// rows a server must not read or write meanwhile (`joinform seal`). While any other
    /// connection has the file open (a server keeps several), SQLite refuses the lock,
    /// so this is also how such a command tells that a server uses the database.
    ///
    /// # Errors
    /// [`StoreError::InUse`] when another connection has the database open (after
    /// the busy timeout); SQLite's error otherwise.
    pub fn connect_alone(&self) -> Result<Connection, StoreError> {
        let connection = self.connect()?;
        connection.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
        // The lock is taken by the first write transaction and then kept.
        connection
            .execute_batch("BEGIN EXCLUSIVE; COMMIT;")
            .map_err(|error| match StoreError::from(error) {
                StoreError::Busy => StoreError::InUse {
                    path: self.path.clone(),
                },
                other => other,
            })?;
        Ok(connection)
    }

    /// Starts the single writer thread on its own connection.
    pub fn start_writer(&self) -> Result<(Writer, WriterThread), StoreError> {
        let connection = self.connect()?;
        if self.checkpoints == Checkpoints::Joinform {
            connection.pragma_update(
                None,
                "wal_autocheckpoint",
                checkpoint::WRITER_AUTOCHECKPOINT_PAGES,
            )?;
        }
        let quota = self
            .quota
            .map(|quota| quota::QuotaGuard::new(quota, &self.path, self.checkpoints));
        Ok(writer::start(connection, quota))
    }

    /// Starts the thread that copies the WAL back into the database; `None` under
    /// [`Checkpoints::Litestream`], which does that itself.
    ///
    /// # Errors
    /// SQLite's error opening its connection; [`StoreError::WriterStopped`] when the
    /// thread cannot be started.
    pub fn start_checkpointer(&self) -> Result<Option<Checkpointer>, StoreError> {
        if self.checkpoints == Checkpoints::Litestream {
            return Ok(None);
        }
        let connection = self.connect()?;
        Checkpointer::start(connection)
            .map(Some)
            .map_err(|_| StoreError::WriterStopped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pragma(connection: &Connection, name: &str) -> String {
        connection
            .pragma_query_value(None, name, |row| {
                Ok(match row.get_ref(0)? {
                    rusqlite::types::ValueRef::Text(text) => {
                        String::from_utf8_lossy(text).into_owned()
                    }
                    rusqlite::types::ValueRef::Integer(number) => number.to_string(),
                    other => format!("{other:?}"),
                })
            })
            .unwrap()
    }

    #[test]
    fn every_connection_gets_the_durability_pragmas() {
        let dir = tempfile::tempdir().unwrap();
        let database = Database::new(dir.path().join("joinform.db"), Duration::from_millis(1234))
            .with_max_size_mib(2);
        database.prepare().unwrap();
        for connection in [database.connect().unwrap(), database.connect().unwrap()] {
            assert_eq!(pragma(&connection, "journal_mode"), "wal");
            // FULL is 2: every commit syncs the WAL.
            assert_eq!(pragma(&connection, "synchronous"), "2");
            assert_eq!(pragma(&connection, "foreign_keys"), "1");
            assert_eq!(pragma(&connection, "busy_timeout"), "1234");
            assert_eq!(pragma(&connection, "secure_delete"), "1");
            let pages: i64 = pragma(&connection, "max_page_count").parse().unwrap();
            let page_size: i64 = pragma(&connection, "page_size").parse().unwrap();
            // Three quarters of the quota for the main file, the rest for the WAL.
            assert_eq!(pages * page_size, (2 << 20) / 4 * 3);
            assert_eq!(
                pragma(&connection, "journal_size_limit"),
                (1 << 19).to_string()
            );
        }
    }

    #[test]
    fn under_litestream_no_connection_checkpoints_and_no_thread_starts() {
        let dir = tempfile::tempdir().unwrap();
        let joinform = Database::new(dir.path().join("joinform.db"), Duration::from_secs(1));
        joinform.prepare().unwrap();
        let litestream = joinform.clone().with_checkpoints(Checkpoints::Litestream);
        assert_eq!(
            pragma(&joinform.connect().unwrap(), "wal_autocheckpoint"),
            "1000"
        );
        assert_eq!(
            pragma(&litestream.connect().unwrap(), "wal_autocheckpoint"),
            "0"
        );
        let alone = litestream.connect_alone().unwrap();
        assert_eq!(pragma(&alone, "wal_autocheckpoint"), "0");
        drop(alone);
        assert!(litestream.start_checkpointer().unwrap().is_none());
        let checkpointer = joinform.start_checkpointer().unwrap();
        checkpointer.unwrap().stop();
    }
}
