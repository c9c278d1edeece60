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
        let next = StoredSubmission::COLUMN_COUNT;
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::Database;

    /// A database with `count` sign-ups in clear, the second with a pending
    /// notification; their ids, in order.
    fn database(count: usize) -> (tempfile::TempDir, Connection, Vec<SubmissionId>) {
        let dir = tempfile::tempdir().unwrap();
        let database = Database::new(dir.path().join("joinform.db"), Duration::from_secs(1));
        database.prepare().unwrap();
        let connection = database.connect().unwrap();
        let mut ids: Vec<SubmissionId> = (0..count).map(|_| SubmissionId::generate()).collect();
        ids.sort();
        for (n, id) in ids.iter().enumerate() {
            connection
                .execute(
                    "INSERT INTO submissions (id, created_at, name, email, country, consent,
                                              section, email_key, phone)
                     VALUES (?1, '2026-11-30T12:00:00.000000Z', ?2, ?3, 'NO', 1, 'Norway',
                             ?3, '+4791234567')",
                    params![id, format!("Person {n}"), format!("p{n}@example.org")],
                )
                .unwrap();
        }
        connection
            .execute(
                "INSERT INTO outbox (id, kind, section, message_id, created_at,
                                     next_attempt_at, submission_id)
                 VALUES (?1, 'notification', 'Norway', '<kept@example.org>',
                         '2026-11-30T12:00:00.000000Z', '2026-11-30T12:00:00.000000Z', ?1)",
                [ids[1]],
            )
            .unwrap();
        (dir, connection, ids)
    }

    fn record(n: u8) -> SealedRecord {
        SealedRecord {
            fields: vec![n; 8],
            email_key: format!("{n:064x}"),
            mail: "first".to_owned(),
            mail_returning: "returning".to_owned(),
        }
    }

    #[test]
    fn clear_rows_come_in_batches_after_an_id_with_their_notification() {
        let (_dir, connection, ids) = database(5);
        let first = clear_rows(&connection, None, 2).unwrap();
        let got: Vec<SubmissionId> = first.iter().map(|row| row.submission.id).collect();
        assert_eq!(got, ids[..2]);
        assert_eq!(first[0].message_id, None);
        assert_eq!(first[1].message_id.as_deref(), Some("<kept@example.org>"));
        assert!(!first[0].unsent_notification && first[1].unsent_notification);
        let next = clear_rows(&connection, Some(ids[1]), 2).unwrap();
        let got: Vec<SubmissionId> = next.iter().map(|row| row.submission.id).collect();
        assert_eq!(got, ids[2..4]);
        assert_eq!(clear_rows(&connection, Some(ids[4]), 2).unwrap().len(), 0);
    }

    #[test]
    fn a_row_is_sealed_once_and_its_personal_columns_emptied() {
        let (_dir, connection, ids) = database(3);
        assert!(seal_row(&connection, ids[0], &record(1), false).unwrap());
        assert!(seal_row(&connection, ids[1], &record(2), true).unwrap());
        assert!(
            !seal_row(&connection, ids[0], &record(9), false).unwrap(),
            "a sealed row is left alone"
        );
        assert_eq!(clear_count(&connection).unwrap(), 1);
        let left: Vec<SubmissionId> = clear_rows(&connection, None, 10)
            .unwrap()
            .iter()
            .map(|row| row.submission.id)
            .collect();
        assert_eq!(left, [ids[2]]);
        let (name, email, phone, sealed, mail, key): (
            String,
            String,
            Option<String>,
            Vec<u8>,
            String,
            String,
        ) = connection
            .query_row(
                "SELECT name, email, phone, sealed, sealed_mail, email_key FROM submissions
                 WHERE id = ?1",
                [ids[1]],
                |row| {
                    Ok((
                        row.get(0)?,
                        row.get(1)?,
                        row.get(2)?,
                        row.get(3)?,
                        row.get(4)?,
                        row.get(5)?,
                    ))
                },
            )
            .unwrap();
        assert_eq!((name.as_str(), email.as_str(), phone), ("", "", None));
        assert_eq!(sealed, vec![2; 8]);
        assert_eq!(mail, "returning", "a returning sign-up's notification");
        assert_eq!(key, format!("{:064x}", 2));
    }
}
