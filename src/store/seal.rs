//! `joinform seal`: the rows of a database kept in clear, read in batches, and each
//! rewritten sealed in place (`storage.seal_keys`). The sealing itself (OpenPGP) is
//! done by the caller between the two.

use rusqlite::{Connection, params};

use crate::domain::{MailKind, SubmissionId};

use super::StoreError;
use super::submissions::{SealedRecord, StoredSubmission};

/// A sign-up still stored in clear, with what its sealed notification needs.
#[derive(Debug, Clone)]
pub struct ClearRow {
    pub submission: StoredSubmission,
    /// The Message-ID of its notification when it has an outbox row (kept, so that a
    /// receiver still recognises a retry); `None` when it has none (sent and purged,
    /// or never queued).
    pub message_id: Option<String>,
    /// Its notification waits to be sent (pending, waiting for the overflow mail, or
    /// failed and retryable): it now goes out as the sealed payload.
    pub unsent_notification: bool,
}

/// At most `limit` sign-ups still stored in clear (`sealed IS NULL`) whose id is after
/// `after` (from the first when `None`), in id order.
///
/// # Errors
/// A failed query, or a row this version cannot read.
pub fn clear_rows(
    connection: &Connection,
    after: Option<SubmissionId>,
    limit: u32,
) -> Result<Vec<ClearRow>, StoreError> {
    let mut statement = connection.prepare_cached(&format!(
        "SELECT {}, o.message_id, o.state IN ('pending', 'waiting', 'failed')
         FROM submissions s
         LEFT JOIN outbox o ON o.id = s.id AND o.kind = ?3
         WHERE s.sealed IS NULL AND (?1 IS NULL OR s.id > ?1)
         ORDER BY s.id LIMIT ?2",
        StoredSubmission::COLUMNS
    ))?;
    let rows = statement.query_map(params![after, limit, MailKind::Notification], |row| {
        let submission = StoredSubmission::from_row(row, 0)?;
        let next = 26;
        Ok(ClearRow {
            submission,
            message_id: row.get(next)?,
            unsent_notification: row.get::<_, Option<bool>>(next + 1)?.unwrap_or(false),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// How many sign-ups are still stored in clear.
///
/// # Errors
/// A failed query.
pub fn clear_count(connection: &Connection) -> Result<u64, StoreError> {
    let count: i64 = connection.query_row(
        "SELECT count(*) FROM submissions WHERE sealed IS NULL",
        [],
        |row| row.get(0),
    )?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// Rewrites sign-up `id`, stored in clear, as sealed: its personal columns emptied
/// ('' or NULL, `extra` '{}'), `sealed` and `sealed_mail` (the returning sign-up's
/// notification when `returning`) set, and `email_key` the keyed hash. A row sealed
/// meanwhile is left alone. Returns whether the row was rewritten.
///
/// # Errors
/// A failed statement.
pub fn seal_row(
    connection: &Connection,
    id: SubmissionId,
    sealed: &SealedRecord,
    returning: bool,
) -> Result<bool, StoreError> {
    let mail = if returning {
        &sealed.mail_returning
    } else {
        &sealed.mail
    };
    let changed = connection
        .prepare_cached(
            "UPDATE submissions
             SET name = '', email = '', phone = NULL, city = NULL, message = NULL,
                 extra = '{}', consent_text = NULL,
                 sealed = ?2, sealed_mail = ?3, email_key = ?4
             WHERE id = ?1 AND sealed IS NULL",
        )?
        .execute(params![id, sealed.fields, mail, sealed.email_key])?;
    Ok(changed == 1)
}
