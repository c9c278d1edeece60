//! The one clean-up routine for every deletion of personal data (erasure on request,
//! `joinform purge`, the server's daily purge), so that no path can forget a step:
//!
//! 1. the deletion, in an `IMMEDIATE` transaction (`secure_delete` zeroes the cells);
//! 2. `PRAGMA incremental_vacuum` in the same transaction, so the freed pages leave the
//!    file instead of waiting in its free list;
//! 3. after the commit, a TRUNCATE checkpoint: the WAL's older frames still hold the
//!    deleted rows until the WAL is copied back and emptied.
//!
//! Under `storage.litestream` step 3 is left out: Litestream's read transaction would
//! hold it for the whole busy timeout, on the writer thread, and it would fail anyway.
//! The deleted rows' old frames then stay in the WAL until Litestream checkpoints, and
//! in its LTX files (beside the database and in the replica) until its retention drops
//! them (README, "Continuous replication").

use std::ops::Deref;

use rusqlite::{Connection, TransactionBehavior};

use super::{Checkpoints, StoreError};

/// The connection inside [`erase`]'s transaction. Functions that delete personal data
/// take this rather than a plain connection, so they can only run inside the routine.
pub struct Erasing<'c>(&'c Connection);

impl Deref for Erasing<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.0
    }
}

/// Runs `work` (a deletion) and leaves no trace of what it deleted in the database
/// file or its WAL. Returns what `work` returned once everything is committed.
///
/// The WAL truncation waits up to the busy timeout for readers; if one still holds on
/// (a long export), it is logged and the next truncation (the next erasure, purge, or
/// the checkpoint at shutdown) empties it. A connection that leaves checkpoints to
/// Litestream ([`super::Checkpoints::of`]) does not truncate: see the module's note.
///
/// # Errors
/// Whatever `work` returns, or SQLite's error; then nothing was deleted.
pub fn erase<T>(
    connection: &mut Connection,
    work: impl FnOnce(&Erasing<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let value = work(&Erasing(&transaction))?;
    reclaim_free_pages(&transaction)?;
    transaction.commit()?;
    if Checkpoints::of(connection) == Checkpoints::Joinform {
        // A reader that still holds the WAL is logged; the next truncation empties it.
        let _ = truncate_wal(connection);
    }
    Ok(value)
}

/// Rewrites the whole database file (`VACUUM`: every table and index copied afresh,
/// no free page left) and then empties the WAL, so that no copy of a value the file
/// held before is left in it, its free pages or its WAL: after `joinform seal`, where
/// rows were rewritten rather than deleted. Returns whether the WAL was emptied (not
/// when another connection is reading it: then run it again once that one is gone).
/// It truncates under `storage.litestream` too: its caller holds the database alone
/// ([`super::Database::connect_alone`]), so Litestream is stopped, and on its next
/// start it sees the truncated WAL and takes a fresh snapshot, which is what a
/// rewritten file needs.
///
/// # Errors
/// SQLite's error (the file is then as it was).
pub fn rewrite_file(connection: &Connection) -> Result<bool, StoreError> {
    connection.execute_batch("VACUUM")?;
    Ok(truncate_wal(connection))
}

/// How long a deletion keeps trying to empty the WAL while other connections
/// checkpoint.
const TRUNCATE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

/// Gives free pages back to the file system (`auto_vacuum = INCREMENTAL`).
fn reclaim_free_pages(connection: &Connection) -> Result<(), StoreError> {
    // The pragma returns a row per page freed; stepping through them does the work.
    let mut statement = connection.prepare("PRAGMA incremental_vacuum")?;
    let mut rows = statement.query([])?;
    while rows.next()?.is_some() {}
    Ok(())
}

/// Copies the WAL into the database and empties it.
///
/// While another connection checkpoints (the server's checkpoint thread does, every
/// 200 ms), SQLite answers BUSY at once without calling the busy handler
/// (`sqlite3_wal_checkpoint_v2`: the checkpoint lock is not waited for), so the
/// truncation is tried again for up to [`TRUNCATE_PATIENCE`]; readers are waited for by
/// the busy handler inside each try.
fn truncate_wal(connection: &Connection) -> bool {
    let started = std::time::Instant::now();
    let result = loop {
        let result = connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
            row.get::<_, i64>(0)
        });
        let busy = match &result {
            Ok(busy) => *busy != 0,
            Err(rusqlite::Error::SqliteFailure(error, _)) => {
                error.code == rusqlite::ErrorCode::DatabaseBusy
            }
            Err(_) => false,
        };
        if !busy || started.elapsed() >= TRUNCATE_PATIENCE {
            break result;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    match result {
        Ok(0) => true,
        Ok(_) => {
            tracing::warn!(
                "WAL not truncated after a deletion: a reader is busy; the next erasure, \
                 purge or shutdown truncates it"
            );
            false
        }
        Err(error) => {
            tracing::warn!(%error, "WAL checkpoint after a deletion failed");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::Database;
    use crate::store::schema::companion;

    /// The WAL's length after an erasure, with another connection open as a server
    /// keeps some (the last connection to close would checkpoint by itself).
    fn wal_after_an_erasure(checkpoints: Checkpoints) -> u64 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("joinform.db");
        let database = Database::new(&path, Duration::from_secs(1)).with_checkpoints(checkpoints);
        database.prepare().unwrap();
        let mut connection = database.connect().unwrap();
        let _other = database.connect().unwrap();
        assert_eq!(Checkpoints::of(&connection), checkpoints);
        connection
            .execute(
                "INSERT INTO audit (at, actor, action) VALUES ('2026-11-30', 'test', 'forget')",
                [],
            )
            .unwrap();
        let deleted = erase(&mut connection, |erasing| {
            Ok(erasing.execute("DELETE FROM audit", [])?)
        })
        .unwrap();
        assert_eq!(deleted, 1);
        std::fs::metadata(companion(&path, "-wal")).unwrap().len()
    }

    #[test]
    fn an_erasure_truncates_the_wal_unless_litestream_checkpoints() {
        assert_eq!(wal_after_an_erasure(Checkpoints::Joinform), 0);
        // Litestream's read transaction would hold a truncation for the whole busy
        // timeout; its own checkpoint copies the frames back later.
        assert!(wal_after_an_erasure(Checkpoints::Litestream) > 0);
    }
}
