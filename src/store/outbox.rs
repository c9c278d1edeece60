//! The `outbox` table: notifications waiting to be sent, sent, or given up on.

use rusqlite::{Connection, OptionalExtension, params};

use crate::domain::{SubmissionId, Timestamp};

use super::submissions::{StoredSubmission, SubmissionRecord};
use super::{Erasing, StoreError};

/// Queues the notification of a submission being written in the same transaction.
pub(super) fn insert(connection: &Connection, record: &SubmissionRecord) -> Result<(), StoreError> {
    let mut statement = connection.prepare_cached(
        "INSERT INTO outbox (submission_id, section, message_id, created_at, next_attempt_at)
         VALUES (?1, ?2, ?3, ?4, ?4)",
    )?;
    statement.execute(params![
        record.id,
        record.section,
        record.message_id,
        record.created_at,
    ])?;
    Ok(())
}

/// A pending notification with the submission it tells of, as stored.
#[derive(Debug, Clone)]
pub struct DueNotification {
    /// `<unique@sender-domain>`, the same for every attempt.
    pub message_id: String,
    /// The section's name, as routed when the submission was written.
    pub section: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// When it was queued: the give-up clock counts from here.
    pub queued_at: Timestamp,
    pub submission: StoredSubmission,
}

/// Pending notifications whose time has come, oldest first.
///
/// # Errors
/// A failed query, or a row this version cannot read.
pub fn due(
    connection: &Connection,
    now: Timestamp,
    limit: usize,
) -> Result<Vec<DueNotification>, StoreError> {
    let mut statement = connection.prepare_cached(&format!(
        "SELECT o.message_id, o.section, o.attempts, o.created_at, {}
         FROM outbox o JOIN submissions s ON s.id = o.submission_id
         WHERE o.state = 'pending' AND o.next_attempt_at <= ?1
         ORDER BY o.next_attempt_at
         LIMIT ?2",
        StoredSubmission::COLUMNS
    ))?;
    let rows = statement.query_map(
        params![now, i64::try_from(limit).unwrap_or(i64::MAX)],
        |row| {
            Ok(DueNotification {
                message_id: row.get(0)?,
                section: row.get(1)?,
                attempts: row.get(2)?,
                queued_at: row.get(3)?,
                submission: StoredSubmission::from_row(row, 4)?,
            })
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Whether the notification of `submission_id` is still waiting to be sent: not erased
/// with its submission, not sent or failed meanwhile. The delivery worker asks just
/// before each send.
///
/// # Errors
/// A failed query.
pub fn still_pending(
    connection: &Connection,
    submission_id: SubmissionId,
) -> Result<bool, StoreError> {
    Ok(connection
        .query_row(
            "SELECT 1 FROM outbox WHERE submission_id = ?1 AND state = 'pending'",
            [submission_id],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// When the next pending notification is due, if any is pending.
///
/// # Errors
/// A failed query.
pub fn next_due(connection: &Connection) -> Result<Option<Timestamp>, StoreError> {
    Ok(connection
        .query_row(
            "SELECT min(next_attempt_at) FROM outbox WHERE state = 'pending'",
            [],
            |row| row.get(0),
        )
        .optional()?
        .flatten())
}

/// What came of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Sent,
    /// A transient failure: try again at the given time.
    Retry {
        at: Timestamp,
        error: String,
    },
    /// Permanent, or transient for too long: no more attempts.
    Failed {
        error: String,
    },
}

/// Records an attempt's outcome; the caller owns the transaction. Only a pending row
/// changes, so a retry command racing with the worker cannot undo a delivery.
pub fn record_attempt(
    connection: &Connection,
    submission_id: SubmissionId,
    attempt: &Attempt,
    now: Timestamp,
) -> Result<(), StoreError> {
    match attempt {
        Attempt::Sent => connection
            .prepare_cached(
                "UPDATE outbox SET state = 'sent', attempts = attempts + 1, sent_at = ?2,
                                   last_error = NULL
                 WHERE submission_id = ?1 AND state = 'pending'",
            )?
            .execute(params![submission_id, now])?,
        Attempt::Retry { at, error } => connection
            .prepare_cached(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?2,
                                   last_error = ?3
                 WHERE submission_id = ?1 AND state = 'pending'",
            )?
            .execute(params![submission_id, at, error])?,
        Attempt::Failed { error } => connection
            .prepare_cached(
                "UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_error = ?2
                 WHERE submission_id = ?1 AND state = 'pending'",
            )?
            .execute(params![submission_id, error])?,
    };
    Ok(())
}

/// Where a notification stands, as the `state` column holds it: the lower-case name.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString, strum::VariantArray,
)]
#[strum(serialize_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its first or next attempt.
    Pending,
    Sent,
    /// Given up on; `joinform outbox retry` puts it back to pending.
    Failed,
}

impl DeliveryState {
    /// `pending`, `sent` or `failed`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// How many rows are in each state: every state, in declaration order, zero included
/// (for `joinform outbox` and the metrics gauges).
///
/// # Errors
/// A failed query, or a state this version does not know.
pub fn counts(connection: &Connection) -> Result<Vec<(DeliveryState, i64)>, StoreError> {
    let mut statement = connection.prepare("SELECT state, count(*) FROM outbox GROUP BY state")?;
    let found = statement
        .query_map([], |row| Ok((row.get::<_, DeliveryState>(0)?, row.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(<DeliveryState as strum::VariantArray>::VARIANTS
        .iter()
        .map(|&state| {
            let count = found
                .iter()
                .find(|(s, _)| *s == state)
                .map_or(0, |(_, n)| *n);
            (state, count)
        })
        .collect())
}

/// A failed row, without personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedNotification {
    pub submission_id: SubmissionId,
    pub section: String,
    pub attempts: u32,
    /// When it was queued (or last put back by a retry).
    pub created_at: Timestamp,
    pub last_error: Option<String>,
}

pub fn failed(connection: &Connection) -> Result<Vec<FailedNotification>, StoreError> {
    let mut statement = connection.prepare(
        "SELECT submission_id, section, attempts, created_at, last_error FROM outbox
         WHERE state = 'failed' ORDER BY created_at",
    )?;
    let rows = statement.query_map([], |row| {
        Ok(FailedNotification {
            submission_id: row.get(0)?,
            section: row.get(1)?,
            attempts: row.get(2)?,
            created_at: row.get(3)?,
            last_error: row.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// What [`retry_failed`] did.
#[derive(Debug, Default)]
pub struct Retried {
    /// Rows put back to pending.
    pub changed: usize,
    /// The ids asked for that named no failed row (unknown, pending or sent).
    pub not_failed: Vec<SubmissionId>,
}

/// Puts failed rows back to pending, due now: the given ids, or every failed row when
/// `ids` is empty. Attempts restart from zero, and so does the give-up clock, which
/// counts from `created_at`.
pub fn retry_failed(
    connection: &Connection,
    ids: &[SubmissionId],
    now: Timestamp,
) -> Result<Retried, StoreError> {
    let mut retried = Retried::default();
    if ids.is_empty() {
        retried.changed = connection.execute(
            "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = ?1,
                               created_at = ?1
             WHERE state = 'failed'",
            [now],
        )?;
    } else {
        let mut statement = connection.prepare(
            "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = ?1,
                               created_at = ?1
             WHERE state = 'failed' AND submission_id = ?2",
        )?;
        for id in ids {
            match statement.execute(params![now, id])? {
                0 => retried.not_failed.push(*id),
                changed => retried.changed += changed,
            }
        }
    }
    Ok(retried)
}

/// Deletes delivered and failed notifications queued before `cutoff` (retention).
/// Returns how many rows went.
///
/// # Errors
/// A failed statement; the caller's erasure transaction then rolls back.
pub fn erase_finished_before(
    connection: &Erasing<'_>,
    cutoff: Timestamp,
) -> Result<u64, StoreError> {
    let deleted = connection.execute(
        "DELETE FROM outbox WHERE state IN ('sent', 'failed') AND created_at < ?1",
        [cutoff],
    )?;
    Ok(super::submissions::count(deleted))
}
