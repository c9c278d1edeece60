//! The `outbox` table: mails waiting to be sent, sent, or given up on. A notification
//! tells a section of one sign-up; reminders, escalations and digests are queued by the
//! follow-up scheduler, one per kind, section and period.
//!
//! Rows are keyed by a UUID v7 ([`SubmissionId`]'s form): a notification's is its
//! submission's, any other mail gets a fresh one.

use rusqlite::{Connection, OptionalExtension, params};

use crate::domain::{MailKind, SubmissionId, Timestamp};

use super::submissions::{StoredSubmission, SubmissionRecord};
use super::{Erasing, StoreError};

/// Queues the notification of a submission being written in the same transaction.
pub(super) fn insert(connection: &Connection, record: &SubmissionRecord) -> Result<(), StoreError> {
    queue_notification(
        connection,
        record.id,
        &record.section,
        &record.message_id,
        record.created_at,
    )
}

/// Queues the notification of sign-up `id` for `section`, due at `now`: its row id is
/// the sign-up's.
pub(super) fn queue_notification(
    connection: &Connection,
    id: SubmissionId,
    section: &str,
    message_id: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    let mut statement = connection.prepare_cached(
        "INSERT INTO outbox (id, section, message_id, created_at, next_attempt_at,
                             submission_id)
         VALUES (?1, ?2, ?3, ?4, ?4, ?1)",
    )?;
    statement.execute(params![id, section, message_id, now])?;
    Ok(())
}

/// Queues a mail of `kind` about sign-up `submission` (of `section`), due at `now`,
/// with an id and Message-ID (at `message_domain`) of its own: a visitor's mail.
/// Erasing the sign-up deletes it (`submissions_take_their_mails`).
///
/// # Errors
/// A failed statement.
pub fn queue_about(
    connection: &Connection,
    kind: MailKind,
    submission: SubmissionId,
    section: &str,
    message_domain: &str,
    now: Timestamp,
) -> Result<SubmissionId, StoreError> {
    let id = SubmissionId::generate();
    connection
        .prepare_cached(
            "INSERT INTO outbox (id, kind, section, message_id, created_at, next_attempt_at,
                                 submission_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)",
        )?
        .execute(params![
            id,
            kind,
            section,
            format!("<{id}@{message_domain}>"),
            now,
            submission
        ])?;
    Ok(id)
}

/// Makes the mails to visitors that wait for the hourly cap due at `now`, so that the
/// worker weighs them against the cap it has now (an operator may have raised
/// `rate_limit.visitor_mails_per_hour`): a waiting one was never tried (no attempt) and
/// is due later than `now`. Returns how many. The worker calls it as it starts.
///
/// # Errors
/// A failed statement.
pub fn release_waiting_visitor_mails(
    connection: &Connection,
    now: Timestamp,
) -> Result<usize, StoreError> {
    Ok(connection.execute(
        "UPDATE outbox SET next_attempt_at = ?1
         WHERE state = 'pending' AND attempts = 0 AND next_attempt_at > ?1
           AND (kind = 'confirmation' OR kind = 'notice' OR kind = 'access')",
        [now],
    )?)
}

/// How many mails to visitors were sent at or after `since`, and when the first of
/// them was: the hourly cap (`rate_limit.visitor_mails_per_hour`) counts them, and
/// frees a place when the first leaves the hour.
///
/// # Errors
/// A failed query.
pub fn visitor_mails_sent_since(
    connection: &Connection,
    since: Timestamp,
) -> Result<(u64, Option<Timestamp>), StoreError> {
    let (sent, first): (i64, Option<Timestamp>) = connection.query_row(
        "SELECT count(*), min(sent_at) FROM outbox
         WHERE (kind = 'confirmation' OR kind = 'notice' OR kind = 'access')
           AND sent_at >= ?1",
        [since],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    Ok((u64::try_from(sent).unwrap_or(0), first))
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

/// A pending reminder, escalation or digest. What it says is read from the data when
/// it is built, just before it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueScheduled {
    /// The row's own id.
    pub id: SubmissionId,
    /// Never [`MailKind::Notification`].
    pub kind: MailKind,
    /// The section it is for (the fallback's name for an escalation).
    pub section: String,
    /// The UTC day (`2026-11-30`) or ISO week (`2026-W49`) it is for.
    pub period: String,
    /// `<unique@sender-domain>`, the same for every attempt.
    pub message_id: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// When it was queued: the give-up clock counts from here.
    pub queued_at: Timestamp,
}

/// A pending mail to a visitor (confirmation, notice, access link) with the sign-up it
/// is about, as stored now.
#[derive(Debug, Clone)]
pub struct DueVisitorMail {
    /// The row's own id.
    pub id: SubmissionId,
    /// [`MailKind::Confirmation`], [`MailKind::Notice`] or [`MailKind::Access`].
    pub kind: MailKind,
    /// `<unique@sender-domain>`, the same for every attempt.
    pub message_id: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// When it was queued: the give-up clock counts from here.
    pub queued_at: Timestamp,
    pub submission: StoredSubmission,
}

/// A pending row whose time has come.
#[derive(Debug, Clone)]
pub enum DueMail {
    Notification(Box<DueNotification>),
    Scheduled(DueScheduled),
    Visitor(Box<DueVisitorMail>),
}

impl DueMail {
    /// The row's id: for a notification, its submission's.
    pub fn id(&self) -> SubmissionId {
        match self {
            Self::Notification(due) => due.submission.id,
            Self::Scheduled(due) => due.id,
            Self::Visitor(due) => due.id,
        }
    }

    pub fn kind(&self) -> MailKind {
        match self {
            Self::Notification(_) => MailKind::Notification,
            Self::Scheduled(due) => due.kind,
            Self::Visitor(due) => due.kind,
        }
    }

    /// The section it is for: a visitor's mail, the section of its sign-up.
    pub fn section(&self) -> &str {
        match self {
            Self::Notification(due) => &due.section,
            Self::Scheduled(due) => &due.section,
            Self::Visitor(due) => &due.submission.section,
        }
    }

    pub fn attempts(&self) -> u32 {
        match self {
            Self::Notification(due) => due.attempts,
            Self::Scheduled(due) => due.attempts,
            Self::Visitor(due) => due.attempts,
        }
    }

    /// When it was queued: the give-up clock counts from here.
    pub fn queued_at(&self) -> Timestamp {
        match self {
            Self::Notification(due) => due.queued_at,
            Self::Scheduled(due) => due.queued_at,
            Self::Visitor(due) => due.queued_at,
        }
    }
}

/// Pending rows whose time has come, oldest first. A notification or visitor's mail
/// whose submission is gone (it cannot be: erasure deletes both) is left out.
///
/// # Errors
/// A failed query, or a row this version cannot read.
pub fn due(
    connection: &Connection,
    now: Timestamp,
    limit: usize,
) -> Result<Vec<DueMail>, StoreError> {
    let mut statement = connection.prepare_cached(&format!(
        "SELECT o.id, o.kind, o.section, o.period, o.message_id, o.attempts, o.created_at,
                s.id IS NOT NULL, {}
         FROM outbox o LEFT JOIN submissions s ON s.id = o.submission_id
         WHERE o.state = 'pending' AND o.next_attempt_at <= ?1
         ORDER BY o.next_attempt_at
         LIMIT ?2",
        StoredSubmission::COLUMNS
    ))?;
    let rows = statement.query_map(
        params![now, i64::try_from(limit).unwrap_or(i64::MAX)],
        |row| {
            let kind: MailKind = row.get(1)?;
            let has_submission: bool = row.get(7)?;
            Ok(match kind {
                MailKind::Notification if has_submission => {
                    Some(DueMail::Notification(Box::new(DueNotification {
                        message_id: row.get(4)?,
                        section: row.get(2)?,
                        attempts: row.get(5)?,
                        queued_at: row.get(6)?,
                        submission: StoredSubmission::from_row(row, 8)?,
                    })))
                }
                kind if kind.is_to_visitor() => has_submission
                    .then(|| {
                        Ok::<_, rusqlite::Error>(DueMail::Visitor(Box::new(DueVisitorMail {
                            id: row.get(0)?,
                            kind,
                            message_id: row.get(4)?,
                            attempts: row.get(5)?,
                            queued_at: row.get(6)?,
                            submission: StoredSubmission::from_row(row, 8)?,
                        })))
                    })
                    .transpose()?,
                MailKind::Notification => None,
                kind => Some(DueMail::Scheduled(DueScheduled {
                    id: row.get(0)?,
                    kind,
                    section: row.get(2)?,
                    period: row.get::<_, Option<String>>(3)?.unwrap_or_default(),
                    message_id: row.get(4)?,
                    attempts: row.get(5)?,
                    queued_at: row.get(6)?,
                })),
            })
        },
    )?;
    let mut due = Vec::new();
    for row in rows {
        due.extend(row?);
    }
    Ok(due)
}

/// Queues a reminder, escalation or digest for `section` and `period`, due now, unless
/// one of that kind, section and period was queued before (whatever became of it).
/// Returns whether it was queued. `message_domain` is the sender's domain, for the
/// Message-ID.
///
/// # Errors
/// A failed statement.
pub fn schedule(
    connection: &Connection,
    kind: MailKind,
    section: &str,
    period: &str,
    message_domain: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let id = SubmissionId::generate();
    let inserted = connection
        .prepare_cached(
            "INSERT INTO outbox (id, kind, section, period, message_id, created_at,
                                 next_attempt_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
             ON CONFLICT (kind, section, period) WHERE period IS NOT NULL DO NOTHING",
        )?
        .execute(params![
            id,
            kind,
            section,
            period,
            format!("<{id}@{message_domain}>"),
            now
        ])?;
    Ok(inserted == 1)
}

/// When a mail of `kind` for `section` was last queued, whatever became of it (as far as
/// retention keeps rows): a reminder or escalation is due only for sign-ups that passed
/// their bound since.
///
/// # Errors
/// A failed query.
pub fn last_queued(
    connection: &Connection,
    kind: MailKind,
    section: &str,
) -> Result<Option<Timestamp>, StoreError> {
    Ok(connection
        .query_row(
            "SELECT max(created_at) FROM outbox WHERE kind = ?1 AND section = ?2",
            params![kind, section],
            |row| row.get(0),
        )
        .optional()?
        .flatten())
}

/// Whether the row `id` is still waiting to be sent: not erased (a notification, with
/// its submission), not sent or failed meanwhile. The delivery worker asks just before
/// each send.
///
/// # Errors
/// A failed query.
pub fn still_pending(connection: &Connection, id: SubmissionId) -> Result<bool, StoreError> {
    Ok(connection
        .query_row(
            "SELECT 1 FROM outbox WHERE id = ?1 AND state = 'pending'",
            [id],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// When the next pending row (of any kind) is due, if any is pending.
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
    /// Nothing left to send when its turn came (a reminder whose sign-ups were all
    /// marked meanwhile): no attempt was made.
    Cancelled,
    /// Not tried now (mails to visitors past `rate_limit.visitor_mails_per_hour`): due
    /// again at the given time, no attempt counted.
    Deferred {
        at: Timestamp,
    },
}

/// Records an attempt's outcome for the row `id`; the caller owns the transaction. Only
/// a pending row changes, so a retry command racing with the worker cannot undo a
/// delivery.
///
/// # Errors
/// A failed statement.
pub fn record_attempt(
    connection: &Connection,
    id: SubmissionId,
    attempt: &Attempt,
    now: Timestamp,
) -> Result<(), StoreError> {
    match attempt {
        Attempt::Sent => connection
            .prepare_cached(
                "UPDATE outbox SET state = 'sent', attempts = attempts + 1, sent_at = ?2,
                                   last_error = NULL
                 WHERE id = ?1 AND state = 'pending'",
            )?
            .execute(params![id, now])?,
        Attempt::Retry { at, error } => connection
            .prepare_cached(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?2,
                                   last_error = ?3
                 WHERE id = ?1 AND state = 'pending'",
            )?
            .execute(params![id, at, error])?,
        Attempt::Failed { error } => connection
            .prepare_cached(
                "UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_error = ?2
                 WHERE id = ?1 AND state = 'pending'",
            )?
            .execute(params![id, error])?,
        Attempt::Deferred { at } => connection
            .prepare_cached(
                "UPDATE outbox SET next_attempt_at = ?2 WHERE id = ?1 AND state = 'pending'",
            )?
            .execute(params![id, at])?,
        Attempt::Cancelled => connection
            .prepare_cached(
                "UPDATE outbox SET state = 'cancelled', sent_at = NULL, last_error = NULL
                 WHERE id = ?1 AND state = 'pending'",
            )?
            .execute(params![id])?,
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
    /// A reminder with nobody left to remind of when its turn came: not sent.
    Cancelled,
    /// A notification past its section's `mail.max_notifications_per_section_per_hour`:
    /// it goes out listed in the section's next overflow mail.
    Waiting,
}

impl DeliveryState {
    /// `pending`, `sent`, `failed`, `cancelled` or `waiting`.
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
pub struct FailedMail {
    /// The row's id: a notification's is its submission's.
    pub id: SubmissionId,
    pub kind: MailKind,
    pub section: String,
    pub attempts: u32,
    /// When it was queued (or last put back by a retry).
    pub created_at: Timestamp,
    pub last_error: Option<String>,
}

/// Every failed row, oldest first.
///
/// # Errors
/// A failed query, or a row this version cannot read.
pub fn failed(connection: &Connection) -> Result<Vec<FailedMail>, StoreError> {
    let mut statement = connection.prepare(
        "SELECT id, kind, section, attempts, created_at, last_error FROM outbox
         WHERE state = 'failed' ORDER BY created_at",
    )?;
    let rows = statement.query_map([], |row| {
        Ok(FailedMail {
            id: row.get(0)?,
            kind: row.get(1)?,
            section: row.get(2)?,
            attempts: row.get(3)?,
            created_at: row.get(4)?,
            last_error: row.get(5)?,
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
             WHERE state = 'failed' AND id = ?2",
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

/// Deletes delivered, failed and cancelled mails queued before `cutoff` (retention).
/// Returns how many rows went.
///
/// # Errors
/// A failed statement; the caller's erasure transaction then rolls back.
pub fn erase_finished_before(
    connection: &Erasing<'_>,
    cutoff: Timestamp,
) -> Result<u64, StoreError> {
    let deleted = connection.execute(
        "DELETE FROM outbox WHERE state <> 'pending' AND created_at < ?1",
        [cutoff],
    )?;
    Ok(super::submissions::count(deleted))
}
