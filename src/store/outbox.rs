//! The `outbox` table: mails waiting to be sent, sent, or given up on. A notification
//! tells a section of one sign-up; reminders, escalations and digests are queued by the
//! follow-up scheduler, one per kind, section and period.
//!
//! Rows are keyed by a UUID v7 ([`SubmissionId`]'s form): a notification's is its
//! submission's, any other mail gets a fresh one.
//!
//! Overflow (issue 17): a notification due while its section was sent
//! `mail.max_notifications_per_section_per_hour` in the last hour is not sent but
//! `waiting`; the section's one pending overflow row ([`ensure_overflow`]) lists every
//! waiting one in a single mail, at most one such mail an hour per section.

use std::time::Duration;

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
    queue_about_as(
        connection,
        SubmissionId::generate(),
        kind,
        submission,
        section,
        message_domain,
        now,
    )
}

/// As [`queue_about`], under row id `id` chosen by the caller (a fresh one): a sealed
/// sign-up's mail to its visitor is built before it is queued, and its Message-ID,
/// `<{id}@{message_domain}>`, names the row.
///
/// # Errors
/// A failed statement (a row `id` already queued among them).
pub fn queue_about_as(
    connection: &Connection,
    id: SubmissionId,
    kind: MailKind,
    submission: SubmissionId,
    section: &str,
    message_domain: &str,
    now: Timestamp,
) -> Result<SubmissionId, StoreError> {
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

/// As [`release_waiting_visitor_mails`], for sealed sign-ups' notifications deferred by
/// `mail.max_notifications_per_section_per_hour` (never tried, due later than `now`):
/// weighed again against the cap configured now. Returns how many.
///
/// # Errors
/// A failed statement.
pub fn release_deferred_sealed_notifications(
    connection: &Connection,
    now: Timestamp,
) -> Result<usize, StoreError> {
    Ok(connection.execute(
        "UPDATE outbox SET next_attempt_at = ?1
         WHERE state = 'pending' AND attempts = 0 AND next_attempt_at > ?1
           AND kind = 'notification'
           AND EXISTS (SELECT 1 FROM submissions s
                       WHERE s.id = outbox.submission_id AND s.sealed_mail IS NOT NULL)",
        [now],
    )?)
}

/// As the worker starts: every mail to a visitor of a sealed sign-up queued before
/// `started` (this process's start) and still pending is failed with `error`, since
/// such a mail was held only in the memory of the process that stopped
/// (`visitor::held`). Saying so at once, not when the hourly cap next lets it be tried,
/// tells the operator the truth in `joinform outbox`. Returns how many.
///
/// # Errors
/// A failed statement.
pub fn fail_lost_sealed_visitor_mails(
    connection: &Connection,
    error: &str,
    started: Timestamp,
) -> Result<usize, StoreError> {
    Ok(connection.execute(
        "UPDATE outbox SET state = 'failed', last_error = ?1
         WHERE state = 'pending' AND created_at < ?2
           AND (kind = 'confirmation' OR kind = 'notice' OR kind = 'access')
           AND EXISTS (SELECT 1 FROM submissions s
                       WHERE s.id = outbox.submission_id AND s.sealed IS NOT NULL)",
        params![error, started],
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

/// How far back the notification cap counts, and how far apart a section's overflow
/// mails are: an hour.
pub const OVERFLOW_WINDOW: Duration = Duration::from_secs(3600);

/// How many notifications of `section` were sent at or after `since`, one by one or
/// listed in an overflow mail (both count against
/// `mail.max_notifications_per_section_per_hour`). Reads `outbox_notified` alone.
///
/// # Errors
/// A failed query.
pub fn notifications_sent_since(
    connection: &Connection,
    section: &str,
    since: Timestamp,
) -> Result<u64, StoreError> {
    let sent: i64 = connection
        .prepare_cached(
            "SELECT count(*) FROM outbox
             WHERE kind = 'notification' AND section = ?1 AND sent_at >= ?2",
        )?
        .query_row(params![section, since], |row| row.get(0))?;
    Ok(u64::try_from(sent).unwrap_or(0))
}

/// The first notification of `section` sent at or after `since`, if any: an hour
/// after it, the section is under its hourly cap again. Reads `outbox_notified` alone.
///
/// # Errors
/// A failed query.
pub fn first_notification_sent_since(
    connection: &Connection,
    section: &str,
    since: Timestamp,
) -> Result<Option<Timestamp>, StoreError> {
    Ok(connection
        .prepare_cached(
            "SELECT min(sent_at) FROM outbox
             WHERE kind = 'notification' AND section = ?1 AND sent_at >= ?2",
        )?
        .query_row(params![section, since], |row| row.get(0))?)
}

/// Just before `section`'s overflow mail is built: when the section was sent `cap`
/// notifications or more in the last hour, its notifications already due by `now`
/// (not yet reached by the worker) wait for that mail too, instead of the next one an
/// hour later. A sealed sign-up's notification never waits: the overflow mail cannot
/// hold what only its encrypted payload says, so the worker defers it to the next free
/// place instead. Returns how many it moved.
///
/// # Errors
/// A failed statement.
pub fn wait_due_past_cap(
    connection: &Connection,
    section: &str,
    cap: u32,
    now: Timestamp,
) -> Result<usize, StoreError> {
    if notifications_sent_since(connection, section, now.minus(OVERFLOW_WINDOW))? < u64::from(cap) {
        return Ok(0);
    }
    Ok(connection
        .prepare_cached(
            "UPDATE outbox SET state = 'waiting', last_error = NULL
             WHERE kind = 'notification' AND section = ?1 AND state = 'pending'
               AND next_attempt_at <= ?2
               AND NOT EXISTS (SELECT 1 FROM submissions s
                               WHERE s.id = outbox.submission_id AND s.sealed_mail IS NOT NULL)",
        )?
        .execute(params![section, now])?)
}

/// When `section`'s last overflow mail was sent, if one was (as far as retention
/// keeps rows).
///
/// # Errors
/// A failed query.
pub fn last_overflow_sent(
    connection: &Connection,
    section: &str,
) -> Result<Option<Timestamp>, StoreError> {
    Ok(connection
        .prepare_cached("SELECT max(sent_at) FROM outbox WHERE kind = 'overflow' AND section = ?1")?
        .query_row([section], |row| row.get(0))
        .optional()?
        .flatten())
}

/// Makes sure `section` has its one pending overflow mail, due at `now`, or an hour
/// after its last overflow mail was sent if that is later: at most one an hour. Its id
/// is a fresh UUID v7, its Message-ID at `message_domain`. Returns whether a row was
/// queued (`false`: one was pending already). The caller owns the transaction.
///
/// Runs for each notification that waits and each sign-up held during a flood, so
/// its usual case (a row is pending) costs one probe of `outbox_one_overflow`.
///
/// # Errors
/// A failed statement.
pub fn ensure_overflow(
    connection: &Connection,
    section: &str,
    message_domain: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let pending = connection
        .prepare_cached(
            "SELECT 1 FROM outbox WHERE kind = 'overflow' AND state = 'pending' AND section = ?1",
        )?
        .query_row([section], |_| Ok(()))
        .optional()?
        .is_some();
    if pending {
        return Ok(false);
    }
    let due = last_overflow_sent(connection, section)?
        .map_or(now, |last| last.plus(OVERFLOW_WINDOW).max(now));
    let id = SubmissionId::generate();
    // The unique partial index, not the probe above, is what keeps it to one.
    let inserted = connection
        .prepare_cached(
            "INSERT INTO outbox (id, kind, section, message_id, created_at, next_attempt_at)
             VALUES (?1, 'overflow', ?2, ?3, ?4, ?5)
             ON CONFLICT (section) WHERE kind = 'overflow' AND state = 'pending' DO NOTHING",
        )?
        .execute(params![
            id,
            section,
            format!("<{id}@{message_domain}>"),
            now,
            due
        ])?;
    Ok(inserted == 1)
}

/// Gives every section with waiting notifications but no pending overflow mail one
/// (as [`ensure_overflow`]): after an overflow mail failed for good, or a crash, none
/// is left waiting for a mail that will not come. Returns how many were queued. The
/// worker calls it as it starts.
///
/// # Errors
/// A failed statement.
pub fn ensure_overflows_for_waiting(
    connection: &Connection,
    message_domain: &str,
    now: Timestamp,
) -> Result<usize, StoreError> {
    let sections: Vec<String> = connection
        .prepare("SELECT DISTINCT section FROM outbox WHERE state = 'waiting'")?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    let mut queued = 0;
    for section in sections {
        if ensure_overflow(connection, &section, message_domain, now)? {
            queued += 1;
        }
    }
    Ok(queued)
}

/// The notifications of `section` waiting for its overflow mail, oldest first, at most
/// `limit` of them, with their sign-ups as stored now (an erased one is gone with its
/// row); and how many wait in all.
///
/// # Errors
/// A failed query, or a row this version cannot read.
pub fn waiting_notifications(
    connection: &Connection,
    section: &str,
    limit: usize,
) -> Result<(Vec<DueNotification>, u64), StoreError> {
    let mut statement = connection.prepare_cached(&format!(
        "SELECT o.message_id, o.section, o.attempts, o.created_at, {}
         FROM outbox o JOIN submissions s ON s.id = o.submission_id
         WHERE o.state = 'waiting' AND o.section = ?1 AND o.kind = 'notification'
         ORDER BY o.created_at, o.id
         LIMIT ?2",
        StoredSubmission::COLUMNS
    ))?;
    let listed = statement
        .query_map(
            params![section, i64::try_from(limit).unwrap_or(i64::MAX)],
            |row| {
                Ok(DueNotification {
                    message_id: row.get(0)?,
                    section: row.get(1)?,
                    attempts: row.get(2)?,
                    queued_at: row.get(3)?,
                    submission: StoredSubmission::from_row(row, 4)?,
                })
            },
        )?
        .collect::<Result<Vec<_>, _>>()?;
    let total: i64 = connection
        .prepare_cached(
            "SELECT count(*) FROM outbox
             WHERE state = 'waiting' AND section = ?1 AND kind = 'notification'",
        )?
        .query_row([section], |row| row.get(0))?;
    Ok((listed, u64::try_from(total).unwrap_or(0)))
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

/// A pending overflow mail of a section. What it lists is read when it is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueOverflow {
    /// The row's own id.
    pub id: SubmissionId,
    /// The section whose waiting notifications and held sign-ups it tells of.
    pub section: String,
    /// `<unique@sender-domain>`, the same for every attempt.
    pub message_id: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// When it was queued: the give-up clock counts from here.
    pub queued_at: Timestamp,
}

/// A pending row whose time has come.
#[derive(Debug, Clone)]
pub enum DueMail {
    Notification(Box<DueNotification>),
    Scheduled(DueScheduled),
    Visitor(Box<DueVisitorMail>),
    Overflow(DueOverflow),
}

impl DueMail {
    /// The row's id: for a notification, its submission's.
    pub fn id(&self) -> SubmissionId {
        match self {
            Self::Notification(due) => due.submission.id,
            Self::Scheduled(due) => due.id,
            Self::Visitor(due) => due.id,
            Self::Overflow(due) => due.id,
        }
    }

    pub fn kind(&self) -> MailKind {
        match self {
            Self::Notification(_) => MailKind::Notification,
            Self::Scheduled(due) => due.kind,
            Self::Visitor(due) => due.kind,
            Self::Overflow(_) => MailKind::Overflow,
        }
    }

    /// The section it is for: a visitor's mail, the section of its sign-up.
    pub fn section(&self) -> &str {
        match self {
            Self::Notification(due) => &due.section,
            Self::Scheduled(due) => &due.section,
            Self::Visitor(due) => &due.submission.section,
            Self::Overflow(due) => &due.section,
        }
    }

    pub fn attempts(&self) -> u32 {
        match self {
            Self::Notification(due) => due.attempts,
            Self::Scheduled(due) => due.attempts,
            Self::Visitor(due) => due.attempts,
            Self::Overflow(due) => due.attempts,
        }
    }

    /// When it was queued: the give-up clock counts from here.
    pub fn queued_at(&self) -> Timestamp {
        match self {
            Self::Notification(due) => due.queued_at,
            Self::Scheduled(due) => due.queued_at,
            Self::Visitor(due) => due.queued_at,
            Self::Overflow(due) => due.queued_at,
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
                MailKind::Overflow => Some(DueMail::Overflow(DueOverflow {
                    id: row.get(0)?,
                    section: row.get(2)?,
                    message_id: row.get(4)?,
                    attempts: row.get(5)?,
                    queued_at: row.get(6)?,
                })),
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

/// Which of the rows `ids` are no longer pending (erased, sent, failed or cancelled):
/// what the worker no longer needs to keep anything in memory for.
///
/// # Errors
/// A failed query.
pub fn no_longer_pending(
    connection: &Connection,
    ids: &[SubmissionId],
) -> Result<Vec<SubmissionId>, StoreError> {
    let mut statement =
        connection.prepare_cached("SELECT 1 FROM outbox WHERE id = ?1 AND state = 'pending'")?;
    let mut gone = Vec::new();
    for id in ids {
        if !statement.exists([id])? {
            gone.push(*id);
        }
    }
    Ok(gone)
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
    /// An overflow mail sent. It and the waiting notifications it listed (by id) are
    /// `sent`, dated `as_of`, the instant its content was read: the next one's sign-ups
    /// "held since the last" count from there. A notification that began to wait, or a
    /// sign-up held, after that is left for the next, which is queued
    /// ([`ensure_overflow`], its Message-ID at `message_domain`).
    SentOverflow {
        listed: Vec<SubmissionId>,
        as_of: Timestamp,
        message_domain: String,
    },
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
    /// A notification past its section's `mail.max_notifications_per_section_per_hour`:
    /// not tried, no attempt counted; it becomes `waiting` and the section's pending
    /// overflow mail is made sure of ([`ensure_overflow`], its Message-ID at
    /// `message_domain`).
    Waiting {
        message_domain: String,
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
        Attempt::Sent => mark_sent(connection, id, now)?,
        Attempt::SentOverflow {
            listed,
            as_of,
            message_domain,
        } => {
            let section: Option<String> = connection
                .prepare_cached(
                    "UPDATE outbox SET state = 'sent', attempts = attempts + 1, sent_at = ?2,
                                       last_error = NULL
                     WHERE id = ?1 AND state = 'pending' AND kind = 'overflow'
                     RETURNING section",
                )?
                .query_row(params![id, as_of], |row| row.get(0))
                .optional()?;
            // They were in a mail that left: sent, whatever became of the overflow row
            // meanwhile (a retry command cannot unsend them).
            let mut statement = connection.prepare_cached(
                "UPDATE outbox SET state = 'sent', sent_at = ?2
                 WHERE id = ?1 AND state = 'waiting' AND kind = 'notification'",
            )?;
            for listed in listed {
                statement.execute(params![listed, as_of])?;
            }
            // What arrived while it was written and sent found it still pending, so
            // queued nothing: the next is queued here.
            if let Some(section) = &section
                && left_for_next(connection, section, *as_of)?
            {
                ensure_overflow(connection, section, message_domain, now)?;
            }
            usize::from(section.is_some())
        }
        Attempt::Waiting { message_domain } => {
            let section: Option<String> = connection
                .prepare_cached(
                    "UPDATE outbox SET state = 'waiting', last_error = NULL
                     WHERE id = ?1 AND state = 'pending' AND kind = 'notification'
                     RETURNING section",
                )?
                .query_row([id], |row| row.get(0))
                .optional()?;
            if let Some(section) = &section {
                ensure_overflow(connection, section, message_domain, now)?;
            }
            usize::from(section.is_some())
        }
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

/// Whether `section` has notifications waiting, or sign-ups held after `as_of`: what an
/// overflow mail read at `as_of` left for the next. Two index probes.
fn left_for_next(
    connection: &Connection,
    section: &str,
    as_of: Timestamp,
) -> Result<bool, StoreError> {
    Ok(connection
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM outbox WHERE state = 'waiting' AND section = ?1)
                 OR EXISTS (SELECT 1 FROM submissions
                            WHERE status = 'held' AND section = ?1 AND created_at > ?2)",
        )?
        .query_row(params![section, as_of], |row| row.get(0))?)
}

fn mark_sent(
    connection: &Connection,
    id: SubmissionId,
    now: Timestamp,
) -> Result<usize, StoreError> {
    Ok(connection
        .prepare_cached(
            "UPDATE outbox SET state = 'sent', attempts = attempts + 1, sent_at = ?2,
                               last_error = NULL
             WHERE id = ?1 AND state = 'pending'",
        )?
        .execute(params![id, now])?)
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
    /// Failed overflow mails of a section that has a pending one already (a section
    /// has one at most): cancelled, since that one lists all they would have.
    pub folded: usize,
    /// The ids asked for that named no failed row (unknown, pending or sent).
    pub not_failed: Vec<SubmissionId>,
}

/// Puts failed rows back to pending, due now: the given ids, or every failed row when
/// `ids` is empty. Attempts restart from zero, and so does the give-up clock, which
/// counts from `created_at`. A failed overflow mail whose section has one pending
/// already is folded into it ([`Retried::folded`]).
///
/// # Errors
/// A failed statement.
pub fn retry_failed(
    connection: &Connection,
    ids: &[SubmissionId],
    now: Timestamp,
) -> Result<Retried, StoreError> {
    let mut retried = Retried::default();
    // OR IGNORE: an overflow row that would be a section's second pending one stays
    // failed here, and is folded below.
    if ids.is_empty() {
        retried.changed = connection.execute(
            "UPDATE OR IGNORE outbox SET state = 'pending', attempts = 0,
                                         next_attempt_at = ?1, created_at = ?1
             WHERE state = 'failed'",
            [now],
        )?;
        retried.folded = fold_failed_overflow(connection, None)?;
    } else {
        let mut statement = connection.prepare(
            "UPDATE OR IGNORE outbox SET state = 'pending', attempts = 0,
                                         next_attempt_at = ?1, created_at = ?1
             WHERE state = 'failed' AND id = ?2",
        )?;
        for id in ids {
            match statement.execute(params![now, id])? {
                0 => match fold_failed_overflow(connection, Some(*id))? {
                    0 => retried.not_failed.push(*id),
                    folded => retried.folded += folded,
                },
                changed => retried.changed += changed,
            }
        }
    }
    Ok(retried)
}

/// Cancels the failed overflow row `id` (every one, with `None`) whose section has a
/// pending overflow row. Returns how many.
fn fold_failed_overflow(
    connection: &Connection,
    id: Option<SubmissionId>,
) -> Result<usize, StoreError> {
    Ok(connection.execute(
        "UPDATE outbox SET state = 'cancelled',
                           last_error = 'folded into the section''s pending overflow mail'
         WHERE state = 'failed' AND kind = 'overflow' AND (?1 IS NULL OR id = ?1)
           AND section IN (SELECT section FROM outbox
                           WHERE kind = 'overflow' AND state = 'pending')",
        [id],
    )?)
}

/// Deletes delivered, failed and cancelled mails queued before `cutoff` (retention);
/// a waiting notification stays until its overflow mail has gone. Returns how many
/// rows went.
///
/// # Errors
/// A failed statement; the caller's erasure transaction then rolls back.
pub fn erase_finished_before(
    connection: &Erasing<'_>,
    cutoff: Timestamp,
) -> Result<u64, StoreError> {
    let deleted = connection.execute(
        "DELETE FROM outbox
         WHERE state <> 'pending' AND state <> 'waiting' AND created_at < ?1",
        [cutoff],
    )?;
    Ok(super::submissions::count(deleted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::database;

    use crate::store::submissions::{self, Admission};

    const MINUTE: Duration = Duration::from_secs(60);

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }

    /// An accepted sign-up of `email` to `section` at `now`, its notification queued.
    fn sign_up(
        connection: &Connection,
        email: &str,
        section: &str,
        now: Timestamp,
    ) -> SubmissionId {
        let submission = crate::store::test_support::submission("Kari Nordmann", email);
        let mut record = submissions::SubmissionRecord::new(submission, section, "example.org");
        record.created_at = now;
        assert!(matches!(
            submissions::admit(connection, &record).unwrap(),
            Admission::Accepted { .. }
        ));
        record.id
    }

    /// The overflow rows of `section`: (state, next_attempt_at, message_id).
    fn overflows(connection: &Connection, section: &str) -> Vec<(String, Timestamp, String)> {
        connection
            .prepare(
                "SELECT state, next_attempt_at, message_id FROM outbox
                 WHERE kind = 'overflow' AND section = ?1 ORDER BY created_at",
            )
            .unwrap()
            .query_map([section], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn state(connection: &Connection, id: SubmissionId) -> String {
        connection
            .query_row("SELECT state FROM outbox WHERE id = ?1", [id], |row| {
                row.get(0)
            })
            .unwrap()
    }

    /// However often it is asked for, a section has one pending overflow mail, due at
    /// once when it never had one; another section has its own.
    #[test]
    fn a_section_has_one_pending_overflow_mail_due_at_once_at_first() {
        let (_dir, connection) = database();
        let t0 = at("2026-11-30T12:00:00.000000Z");
        assert!(ensure_overflow(&connection, "Norway", "example.org", t0).unwrap());
        for later in 1..5 {
            let now = t0.plus(MINUTE * later);
            assert!(!ensure_overflow(&connection, "Norway", "example.org", now).unwrap());
        }
        assert!(ensure_overflow(&connection, "Sweden", "example.org", t0).unwrap());
        let norway = overflows(&connection, "Norway");
        assert_eq!(norway.len(), 1, "{norway:?}");
        let (state, due, message_id) = &norway[0];
        assert_eq!((state.as_str(), *due), ("pending", t0));
        assert!(message_id.starts_with('<') && message_id.ends_with("@example.org>"));
        assert_eq!(overflows(&connection, "Sweden").len(), 1);
        let pending = due_rows(&connection, t0);
        assert_eq!(pending.len(), 2);
        assert!(
            pending
                .iter()
                .all(|mail| matches!(mail, DueMail::Overflow(_))
                    && mail.kind() == MailKind::Overflow)
        );
    }

    /// Built at the start of a flood (for its first held sign-up), an overflow mail
    /// takes along the section's notifications already due past its cap, rather than
    /// leaving them for the next one an hour later; under the cap, none.
    #[test]
    fn notifications_due_past_the_cap_wait_for_the_overflow_mail_being_built() {
        let (_dir, connection) = database();
        let t0 = at("2026-11-30T12:00:00.000000Z");
        let sent: Vec<SubmissionId> = ["a@example.org", "b@example.org"]
            .into_iter()
            .map(|email| sign_up(&connection, email, "Norway", t0))
            .collect();
        for id in &sent {
            record_attempt(&connection, *id, &Attempt::Sent, t0).unwrap();
        }
        let due_now = sign_up(&connection, "c@example.org", "Norway", t0.plus(MINUTE));
        let sweden = sign_up(&connection, "d@example.org", "Sweden", t0.plus(MINUTE));
        let now = t0.plus(MINUTE * 2);
        assert_eq!(wait_due_past_cap(&connection, "Norway", 3, now).unwrap(), 0);
        assert_eq!(state(&connection, due_now), "pending", "under the cap");
        assert_eq!(wait_due_past_cap(&connection, "Norway", 2, now).unwrap(), 1);
        assert_eq!(state(&connection, due_now), "waiting");
        assert_eq!(state(&connection, sweden), "pending", "another section's");
        let later = t0.plus(MINUTE * 61);
        assert_eq!(
            wait_due_past_cap(&connection, "Norway", 2, later).unwrap(),
            0,
            "an hour on, the sends have left the window"
        );
    }

    fn due_rows(connection: &Connection, now: Timestamp) -> Vec<DueMail> {
        due(connection, now, 100).unwrap()
    }

    /// After an overflow mail was sent, the section's next is due an hour after it, or
    /// at once when that hour has passed: at most one an hour.
    #[test]
    fn the_next_overflow_mail_is_due_an_hour_after_the_last_was_sent() {
        let (_dir, connection) = database();
        let t0 = at("2026-11-30T12:00:00.000000Z");
        ensure_overflow(&connection, "Norway", "example.org", t0).unwrap();
        let DueMail::Overflow(first) = &due_rows(&connection, t0)[0] else {
            panic!("an overflow row");
        };
        let sent_at = t0.plus(MINUTE);
        record_attempt(&connection, first.id, &Attempt::Sent, sent_at).unwrap();
        assert_eq!(
            last_overflow_sent(&connection, "Norway").unwrap(),
            Some(sent_at)
        );
        let t1 = t0.plus(MINUTE * 10);
        assert!(ensure_overflow(&connection, "Norway", "example.org", t1).unwrap());
        let rows = overflows(&connection, "Norway");
        assert_eq!(rows[1].0, "pending");
        assert_eq!(
            rows[1].1,
            sent_at.plus(OVERFLOW_WINDOW),
            "an hour after the last"
        );
        assert!(due_rows(&connection, t1).is_empty(), "not due before then");
        // It is cancelled (nothing to say); long after, the next is due at once.
        let DueMail::Overflow(second) = &due_rows(&connection, t0.plus(OVERFLOW_WINDOW * 2))[0]
        else {
            panic!("an overflow row");
        };
        record_attempt(&connection, second.id, &Attempt::Cancelled, t1).unwrap();
        let t2 = t0.plus(OVERFLOW_WINDOW * 3);
        ensure_overflow(&connection, "Norway", "example.org", t2).unwrap();
        assert_eq!(overflows(&connection, "Norway")[2].1, t2);
    }

    /// A notification past the cap waits (no attempt) and queues its section's overflow
    /// mail; the mail sent marks exactly the ones it listed sent, at its own time.
    #[test]
    fn waiting_notifications_are_sent_with_the_overflow_mail_that_listed_them() {
        let (_dir, mut connection) = database();
        let t0 = at("2026-11-30T12:00:00.000000Z");
        let sent = sign_up(&connection, "a@example.org", "Norway", t0);
        record_attempt(&connection, sent, &Attempt::Sent, t0).unwrap();
        let since = t0.minus(OVERFLOW_WINDOW);
        assert_eq!(
            notifications_sent_since(&connection, "Norway", since).unwrap(),
            1
        );
        assert_eq!(
            notifications_sent_since(&connection, "Sweden", since).unwrap(),
            0
        );
        let waiting = Attempt::Waiting {
            message_domain: "example.org".into(),
        };
        let first = sign_up(&connection, "b@example.org", "Norway", t0);
        let second = sign_up(&connection, "c@example.org", "Norway", t0.plus(MINUTE));
        for id in [first, second] {
            record_attempt(&connection, id, &waiting, t0.plus(MINUTE)).unwrap();
            assert_eq!(state(&connection, id), "waiting");
        }
        let attempts: i64 = connection
            .query_row(
                "SELECT attempts FROM outbox WHERE id = ?1",
                [first],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(attempts, 0, "no attempt counted");
        assert_eq!(overflows(&connection, "Norway").len(), 1);
        let (listed, total) = waiting_notifications(&connection, "Norway", 1).unwrap();
        assert_eq!(total, 2);
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].submission.id, first, "oldest first");
        let late = sign_up(&connection, "d@example.org", "Norway", t0.plus(MINUTE * 2));
        record_attempt(&connection, late, &waiting, t0.plus(MINUTE * 2)).unwrap();
        let DueMail::Overflow(overflow) = &due_rows(&connection, t0.plus(MINUTE * 3))[0] else {
            panic!("an overflow row");
        };
        // Read at `sent_at`, recorded a second later.
        let sent_at = t0.plus(MINUTE * 3);
        let listing = Attempt::SentOverflow {
            listed: vec![first, second],
            as_of: sent_at,
            message_domain: "example.org".into(),
        };
        let recorded = sent_at.plus(Duration::from_secs(1));
        record_attempt(&connection, overflow.id, &listing, recorded).unwrap();
        assert_eq!(state(&connection, overflow.id), "sent");
        for id in [first, second] {
            assert_eq!(state(&connection, id), "sent");
        }
        assert_eq!(
            state(&connection, late),
            "waiting",
            "not in the mail: waits on"
        );
        assert_eq!(
            notifications_sent_since(&connection, "Norway", since).unwrap(),
            3,
            "the listed ones count against the cap"
        );
        // The late one began to wait while the mail was pending: the next is queued
        // with the mail's recording, an hour after it.
        let next = overflows(&connection, "Norway");
        assert_eq!(next.len(), 2);
        assert_eq!(
            (next[1].0.as_str(), next[1].1),
            ("pending", sent_at.plus(OVERFLOW_WINDOW))
        );
        // Should that one fail for good, the worker's start queues another.
        let DueMail::Overflow(next) = &due_rows(&connection, t0.plus(OVERFLOW_WINDOW * 2))[0]
        else {
            panic!("an overflow row");
        };
        let failed = Attempt::Failed {
            error: "550 no".into(),
        };
        record_attempt(&connection, next.id, &failed, recorded).unwrap();
        assert_eq!(
            ensure_overflows_for_waiting(&connection, "example.org", recorded).unwrap(),
            1
        );
        assert_eq!(
            ensure_overflows_for_waiting(&connection, "example.org", recorded).unwrap(),
            0
        );
        // Retention leaves a waiting row alone.
        let after = sent_at.plus(OVERFLOW_WINDOW * 100);
        let erased = crate::store::scrub::erase(&mut connection, |erasing| {
            erase_finished_before(erasing, after)
        })
        .unwrap();
        assert!(erased >= 3, "{erased}");
        assert_eq!(state(&connection, late), "waiting");
    }

    /// A sign-up held while an overflow mail was being written and sent found it
    /// pending, so queued nothing: recording the mail queues the next, and the sign-up
    /// is new to that one.
    #[test]
    fn a_sign_up_held_while_an_overflow_mail_was_sent_gets_the_next_one() {
        let (_dir, connection) = database();
        let t0 = at("2026-11-30T12:00:00.000000Z");
        ensure_overflow(&connection, "Norway", "example.org", t0).unwrap();
        let DueMail::Overflow(overflow) = &due_rows(&connection, t0)[0] else {
            panic!("an overflow row");
        };
        let as_of = t0.plus(MINUTE);
        let submission =
            crate::store::test_support::submission("Kari Nordmann", "held@example.org");
        let mut held = submissions::SubmissionRecord::new(submission, "Norway", "example.org");
        held.created_at = as_of.plus(Duration::from_millis(200));
        held.hold = Some(crate::domain::HoldReason::OverBaseline);
        assert!(matches!(
            submissions::admit(&connection, &held).unwrap(),
            Admission::Held { .. }
        ));
        assert_eq!(overflows(&connection, "Norway").len(), 1, "one was pending");
        let sent = Attempt::SentOverflow {
            listed: Vec::new(),
            as_of,
            message_domain: "example.org".into(),
        };
        let recorded = as_of.plus(Duration::from_secs(1));
        record_attempt(&connection, overflow.id, &sent, recorded).unwrap();
        let rows = overflows(&connection, "Norway");
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!(rows[1].1, as_of.plus(OVERFLOW_WINDOW));
        assert_eq!(
            submissions::held_counts(
                &connection,
                "Norway",
                last_overflow_sent(&connection, "Norway").unwrap()
            )
            .unwrap(),
            (1, 1),
            "new to the next"
        );
    }

    /// `outbox retry` of a failed overflow mail: back to pending when its section has
    /// none pending; folded (cancelled) into the pending one otherwise.
    #[test]
    fn a_failed_overflow_mail_is_retried_or_folded_into_the_pending_one() {
        let (_dir, connection) = database();
        let t0 = at("2026-11-30T12:00:00.000000Z");
        let fail = |connection: &Connection| {
            let DueMail::Overflow(overflow) = &due_rows(connection, t0)[0] else {
                panic!("an overflow row");
            };
            let failed = Attempt::Failed {
                error: "550 no".into(),
            };
            record_attempt(connection, overflow.id, &failed, t0).unwrap();
            overflow.id
        };
        ensure_overflow(&connection, "Norway", "example.org", t0).unwrap();
        let first = fail(&connection);
        ensure_overflow(&connection, "Norway", "example.org", t0).unwrap();
        let second = fail(&connection);
        let retried = retry_failed(&connection, &[], t0).unwrap();
        assert_eq!((retried.changed, retried.folded), (1, 1));
        let states = [state(&connection, first), state(&connection, second)];
        assert!(
            states.contains(&"pending".to_owned()) && states.contains(&"cancelled".to_owned()),
            "{states:?}"
        );
        ensure_overflow(&connection, "Sweden", "example.org", t0).unwrap();
        let DueMail::Overflow(sweden) = due_rows(&connection, t0)
            .into_iter()
            .find(|mail| mail.section() == "Sweden")
            .unwrap()
        else {
            panic!("an overflow row");
        };
        let failed = Attempt::Failed {
            error: "550 no".into(),
        };
        record_attempt(&connection, sweden.id, &failed, t0).unwrap();
        ensure_overflow(&connection, "Sweden", "example.org", t0).unwrap();
        let retried = retry_failed(&connection, &[sweden.id], t0).unwrap();
        assert_eq!((retried.changed, retried.folded), (0, 1));
        assert!(retried.not_failed.is_empty());
        assert_eq!(state(&connection, sweden.id), "cancelled");
    }
}
