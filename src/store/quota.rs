//! `storage.max_size_mib`: a bound on the disk the database really uses, the main file
//! and its write-ahead log together, and the answer to "can it take a write now?" that
//! sign-ups and `/readyz` share.
//!
//! The main file gets three quarters of the quota, enforced by SQLite itself
//! (`max_page_count`: a write past it fails as "database full"). The WAL gets the
//! rest: when it passes an eighth of the quota, the writer checkpoints it and truncates
//! it to nothing before the next batch; if a reader keeps it from doing so and the WAL
//! passes a quarter, writes are refused until it can. `journal_size_limit` has SQLite
//! cut the file back too whenever the WAL starts over.
//!
//! Under `storage.litestream` the writer never checkpoints: Litestream does, and
//! restarts the WAL in place. The WAL's share is still measured and enforced; a WAL
//! past it then means Litestream is not checkpointing (stopped, or failing), which
//! the log says.

use std::path::PathBuf;

use rusqlite::Connection;

use super::schema::companion;
use super::{Checkpoints, StoreError};

/// Free room below which the database counts as full: more than one submission of the
/// largest kind needs (a 2,000-character message, every field at its limit, a consent
/// text, and the index entries and notification row that go with it).
const RESERVE_BYTES: u64 = 64 * 1024;

/// The quota, in bytes, and how it is shared between the main file and the WAL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    total_bytes: u64,
}

impl Quota {
    /// `None` for 0, which means no quota.
    pub fn from_mib(mib: u64) -> Option<Self> {
        (mib > 0).then(|| Self {
            total_bytes: mib.saturating_mul(1 << 20),
        })
    }

    /// The most the main file may hold, in bytes.
    pub fn main_file_bytes(self) -> u64 {
        self.total_bytes / 4 * 3
    }

    /// Past this WAL size the writer checkpoints and truncates the WAL.
    fn wal_truncate_bytes(self) -> u64 {
        self.total_bytes / 8
    }

    /// Past this WAL size (the rest of the quota) nothing more is written.
    pub fn wal_bytes(self) -> u64 {
        self.total_bytes - self.main_file_bytes()
    }
}

/// The writer's view of the quota: whether the next submission still fits.
pub(super) struct QuotaGuard {
    quota: Quota,
    wal: PathBuf,
    /// Free pages when a write last failed for want of room: until there are more, the
    /// database stays full even if the reserve says otherwise.
    full_at: Option<i64>,
    checkpoints: Checkpoints,
    /// Whether the log already said that Litestream lets the WAL grow past its share:
    /// once per episode, not once per refused batch.
    told_litestream_stalls: bool,
}

impl QuotaGuard {
    pub(super) fn new(quota: Quota, database: &std::path::Path, checkpoints: Checkpoints) -> Self {
        Self {
            quota,
            wal: companion(database, "-wal"),
            full_at: None,
            checkpoints,
            told_litestream_stalls: false,
        }
    }

    fn wal_len(&self) -> u64 {
        std::fs::metadata(&self.wal).map_or(0, |meta| meta.len())
    }

    /// Whether a submission can be written now. Truncates the WAL first if it has
    /// grown past its share.
    ///
    /// # Errors
    /// [`StoreError::OverQuota`] when it cannot; SQLite's error if the sizes cannot be
    /// read.
    pub(super) fn check(&mut self, connection: &Connection) -> Result<(), StoreError> {
        let litestream = self.checkpoints == Checkpoints::Litestream;
        if !litestream && self.wal_len() > self.quota.wal_truncate_bytes() {
            // Waits up to the busy timeout for readers; if one holds on, the WAL keeps
            // its frames and the test below decides.
            let _ = connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        }
        if self.wal_len() > self.quota.wal_bytes() {
            if litestream && !self.told_litestream_stalls {
                tracing::warn!(
                    wal_bytes = self.wal_len(),
                    share_bytes = self.quota.wal_bytes(),
                    "the write-ahead log has passed its share of storage.max_size_mib and \
                     sign-ups are refused: storage.litestream = true leaves checkpoints to \
                     Litestream, which is not checkpointing (is it running? see its log)"
                );
                self.told_litestream_stalls = true;
            }
            return Err(StoreError::OverQuota);
        }
        self.told_litestream_stalls = false;
        let free = free_pages(connection)?;
        let page_size: i64 = connection.pragma_query_value(None, "page_size", |row| row.get(0))?;
        let free_bytes = u64::try_from(free.saturating_mul(page_size)).unwrap_or(0);
        if free_bytes < RESERVE_BYTES || self.full_at.is_some_and(|full| free <= full) {
            return Err(StoreError::OverQuota);
        }
        Ok(())
    }

    /// After a write failed as "database full": remember how much room there was.
    pub(super) fn write_failed_full(&mut self, connection: &Connection) {
        self.full_at = free_pages(connection).ok();
    }

    /// After a submission was written: the room it found was real.
    pub(super) fn write_succeeded(&mut self) {
        self.full_at = None;
    }
}

/// Pages the main file may still use: those it may still grow by, plus its free ones.
fn free_pages(connection: &Connection) -> Result<i64, StoreError> {
    let pragma = |name: &str| -> Result<i64, StoreError> {
        Ok(connection.pragma_query_value(None, name, |row| row.get(0))?)
    };
    Ok(pragma("max_page_count")? - pragma("page_count")? + pragma("freelist_count")?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A guard's check on a WAL grown past its share (1 MiB quota: 256 KiB), with
    /// another connection open as a server keeps some; and the WAL's length after.
    fn check_a_grown_wal(checkpoints: Checkpoints) -> (Result<(), StoreError>, u64) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("joinform.db");
        let database = super::super::Database::new(&path, std::time::Duration::from_secs(1))
            .with_max_size_mib(1)
            .with_checkpoints(checkpoints);
        database.prepare().unwrap();
        let connection = database.connect().unwrap();
        let _other = database.connect().unwrap();
        // Without a checkpoint each rewrite of the row adds its pages to the WAL.
        connection
            .pragma_update(None, "wal_autocheckpoint", 0)
            .unwrap();
        connection
            .execute(
                "INSERT INTO audit (at, actor, action) VALUES ('2026-11-30', 'test', 'export')",
                [],
            )
            .unwrap();
        for _ in 0..16 {
            connection
                .execute(
                    "UPDATE audit SET details = json_object('p', hex(randomblob(12000)))",
                    [],
                )
                .unwrap();
        }
        let mut guard = QuotaGuard::new(Quota::from_mib(1).unwrap(), &path, checkpoints);
        assert!(guard.wal_len() > guard.quota.wal_bytes(), "the WAL grew");
        let checked = guard.check(&connection);
        (checked, guard.wal_len())
    }

    #[test]
    fn under_litestream_a_wal_past_its_share_refuses_without_a_truncation() {
        let (checked, wal) = check_a_grown_wal(Checkpoints::Joinform);
        assert!(checked.is_ok(), "{checked:?}");
        assert_eq!(wal, 0, "truncated");
        let (checked, wal) = check_a_grown_wal(Checkpoints::Litestream);
        assert!(matches!(checked, Err(StoreError::OverQuota)), "{checked:?}");
        assert!(wal > 0, "left to Litestream");
    }

    #[test]
    fn the_shares_add_up_to_the_quota() {
        let quota = Quota::from_mib(1).unwrap();
        assert_eq!(quota.main_file_bytes() + quota.wal_bytes(), 1 << 20);
        assert!(quota.wal_truncate_bytes() < quota.wal_bytes());
        assert_eq!(Quota::from_mib(0), None);
    }
}
