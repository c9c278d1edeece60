//! A consistent copy of a live database (SQLite's online backup API), and the checks
//! and figures a backup or a file to restore is judged by: integrity, schema version,
//! row counts, and when it was taken.
//!
//! The copy is one `sqlite3_backup_step(-1)`: a single read transaction over the
//! whole file. Copying a few pages per step instead lets the server's commits restart
//! the copy from the first page each time (measured: 302 s and 700,000 steps for a
//! 32 MB file under a sign-up every 2 ms, against 0.65 s in one step). In WAL mode the
//! one read transaction blocks no writer; it only holds checkpoints at its read mark
//! while it lasts.
//!
//! The copy is page for page: free pages come along. They hold nothing, since
//! `secure_delete` zeroes what a deletion frees and every erasure gives its free pages
//! back to the file system (`store::erase`); the backup test searches the copy's bytes
//! for an erased address.

use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OptionalExtension};

use super::StoreError;
use super::audit::Action;
use crate::domain::Timestamp;

/// How often a copy that finds the source locked (a rare moment of a checkpoint or a
/// schema change) is tried again, and how long it waits between tries.
const BUSY_TRIES: u32 = 200;
const BUSY_PAUSE: Duration = Duration::from_millis(25);

/// Copies the whole database of `source` into `destination` (a fresh file or an
/// in-memory database), as one consistent snapshot, while other connections go on
/// writing.
///
/// # Errors
/// [`StoreError::Busy`] when the source stays locked for about 5 s; SQLite's error
/// otherwise (the destination is then incomplete and must be thrown away).
pub fn copy_live(source: &Connection, destination: &mut Connection) -> Result<(), StoreError> {
    let backup = Backup::new(source, destination)?;
    let mut busy = 0;
    loop {
        // Not `run_to_completion`: it asserts a positive page count.
        match backup.step(-1)? {
            StepResult::Done => return Ok(()),
            StepResult::More => {}
            StepResult::Busy | StepResult::Locked => {
                busy += 1;
                if busy >= BUSY_TRIES {
                    return Err(StoreError::Busy);
                }
                std::thread::sleep(BUSY_PAUSE);
            }
            // The enum is non-exhaustive; any other answer is not progress.
            _ => return Err(StoreError::Busy),
        }
    }
}

/// `PRAGMA integrity_check` (every page, index and constraint): the problems it
/// found, none when the database is sound. At most 20 are listed.
///
/// # Errors
/// SQLite's error, e.g. for a file too damaged to be read at all.
pub fn integrity_problems(connection: &Connection) -> Result<Vec<String>, StoreError> {
    let mut statement = connection.prepare("PRAGMA integrity_check(20)")?;
    let lines = statement
        .query_map([], |row| row.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(if lines.len() == 1 && lines[0] == "ok" {
        Vec::new()
    } else {
        lines
    })
}

/// Row counts of a joinform database, as `joinform backup` prints them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// (status, rows), by status name.
    pub submissions: Vec<(String, u64)>,
    /// (state, rows) of the outbox, by state name.
    pub outbox: Vec<(String, u64)>,
    pub audit: u64,
    /// The database's size in bytes (pages × page size).
    pub bytes: u64,
}

impl Counts {
    /// Sign-ups of every status together.
    pub fn submissions_total(&self) -> u64 {
        self.submissions.iter().map(|(_, n)| n).sum()
    }
}

/// Counts the rows of `connection`'s database.
///
/// # Errors
/// SQLite's error (a database without joinform's tables, among others).
pub fn counts(connection: &Connection) -> Result<Counts, StoreError> {
    let grouped = |sql: &str| -> Result<Vec<(String, u64)>, StoreError> {
        let mut statement = connection.prepare(sql)?;
        let rows = statement
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    };
    let submissions =
        grouped("SELECT status, count(*) FROM submissions GROUP BY status ORDER BY status")?;
    let outbox = grouped("SELECT state, count(*) FROM outbox GROUP BY state ORDER BY state")?;
    let audit: i64 = connection.query_row("SELECT count(*) FROM audit", [], |row| row.get(0))?;
    let pages: i64 = connection.pragma_query_value(None, "page_count", |row| row.get(0))?;
    let page_size: i64 = connection.pragma_query_value(None, "page_size", |row| row.get(0))?;
    Ok(Counts {
        submissions,
        outbox,
        audit: u64::try_from(audit).unwrap_or(0),
        bytes: u64::try_from(pages.saturating_mul(page_size)).unwrap_or(0),
    })
}

/// The newest `backup` entry of the audit trail: when it was begun and its details
/// (a JSON object), if the database has one.
///
/// # Errors
/// SQLite's error.
pub fn newest_backup_entry(
    connection: &Connection,
) -> Result<Option<(Timestamp, String)>, StoreError> {
    Ok(connection
        .query_row(
            "SELECT at, details FROM audit WHERE action = ?1 ORDER BY id DESC LIMIT 1",
            [Action::Backup.as_str()],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?)
}

/// The newest time a database records: its newest audit entry or sign-up, whichever
/// is later. For a copy made by other means than `joinform backup`, this is the
/// earliest the copy can have been taken.
///
/// # Errors
/// SQLite's error.
pub fn newest_recorded_time(connection: &Connection) -> Result<Option<Timestamp>, StoreError> {
    Ok(connection.query_row(
        "SELECT max(coalesce((SELECT max(at) FROM audit), ''),
                    coalesce((SELECT max(created_at) FROM submissions), ''))",
        [],
        |row| {
            let text: String = row.get(0)?;
            Ok(Timestamp::parse(&text))
        },
    )?)
}

/// Takes the database out of WAL mode: the WAL is copied into the file, and the
/// `-wal` and `-shm` beside it are deleted. On a connection that holds the database
/// alone ([`super::Database::connect_alone`]), before the file is copied or replaced:
/// a `-wal` left beside a file that is not its own would be replayed onto it.
///
/// # Errors
/// SQLite's error; [`StoreError::Busy`] if another connection still reads.
pub fn leave_wal_mode(connection: &Connection) -> Result<(), StoreError> {
    let mode: String =
        connection.pragma_update_and_check(None, "journal_mode", "DELETE", |row| row.get(0))?;
    if mode.eq_ignore_ascii_case("delete") {
        Ok(())
    } else {
        Err(StoreError::Busy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Database, audit};

    fn database() -> (tempfile::TempDir, Database) {
        let dir = tempfile::tempdir().unwrap();
        let database = Database::new(dir.path().join("joinform.db"), Duration::from_secs(1));
        database.prepare().unwrap();
        (dir, database)
    }

    #[test]
    fn a_copy_is_sound_and_counts_the_same_rows_as_its_source() {
        let (_dir, database) = database();
        let source = database.connect().unwrap();
        audit::record(
            &source,
            audit::CLI_ACTOR,
            Action::Backup,
            &serde_json::json!({}),
            0,
        )
        .unwrap();
        let mut copy = Connection::open_in_memory().unwrap();
        copy_live(&source, &mut copy).unwrap();
        assert!(integrity_problems(&copy).unwrap().is_empty());
        let (in_source, in_copy) = (counts(&source).unwrap(), counts(&copy).unwrap());
        assert_eq!(in_copy.audit, 1);
        assert_eq!(in_copy, in_source);
        assert_eq!(
            crate::store::schema::user_version(&copy).unwrap(),
            crate::store::schema::SCHEMA_VERSION
        );
        let (at, _) = newest_backup_entry(&copy).unwrap().unwrap();
        assert_eq!(newest_recorded_time(&copy).unwrap(), Some(at));
    }

    #[test]
    fn a_file_out_of_wal_mode_leaves_no_wal_or_shm_beside_it() {
        let (_dir, database) = database();
        let connection = database.connect_alone().unwrap();
        connection
            .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
        leave_wal_mode(&connection).unwrap();
        drop(connection);
        for suffix in ["-wal", "-shm"] {
            assert!(
                !crate::store::schema::companion(database.path(), suffix).exists(),
                "{suffix}"
            );
        }
        assert!(crate::store::schema::has_sqlite_header(database.path()).unwrap());
        let reader = crate::store::schema::open_read_only(database.path()).unwrap();
        let x: i64 = reader
            .query_row("SELECT x FROM t", [], |row| row.get(0))
            .unwrap();
        assert_eq!(x, 1);
    }

    #[test]
    fn damage_is_found_by_the_integrity_check() {
        let (_dir, database) = database();
        let connection = database.connect().unwrap();
        connection
            .execute_batch(
                "CREATE TABLE t (x TEXT); CREATE INDEX t_x ON t (x);
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
                 INSERT INTO t SELECT printf('row %d', i) FROM n;
                 PRAGMA wal_checkpoint(TRUNCATE);",
            )
            .unwrap();
        drop(connection);
        // The index's pages lie after the table's: overwrite the last page.
        let mut bytes = std::fs::read(database.path()).unwrap();
        let len = bytes.len();
        bytes[len - 4096 + 100..len - 100].fill(0x55);
        std::fs::write(database.path(), &bytes).unwrap();
        let reader = crate::store::schema::open_read_only(database.path()).unwrap();
        let problems = integrity_problems(&reader);
        assert!(
            problems.as_ref().map_or(true, |found| !found.is_empty()),
            "{problems:?}"
        );
    }
}
