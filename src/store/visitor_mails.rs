//! The `visitor_mails` table: when each visitor's address last had a mail queued, so
//! that an address gets at most one mail in 24 hours, whatever asks for it (sign-ups,
//! `/my-data`) and even across an erasure. Rows hold a keyed hash of the address, never
//! the address, and are dropped once a day old.

use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use crate::domain::{MailKind, Timestamp};

use super::StoreError;

/// One mail per address per this long.
pub const PER_ADDRESS: Duration = Duration::from_secs(24 * 3600);

/// Takes the address's mail for the day at `now`: `true` (and records `now`) when its
/// last mail was queued at least [`PER_ADDRESS`] ago or never; `false` otherwise,
/// changing nothing. The caller owns the transaction.
///
/// # Errors
/// A failed statement.
pub fn claim(
    connection: &Connection,
    address_hash: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let changed = connection
        .prepare_cached(
            "INSERT INTO visitor_mails (address_hash, last_at) VALUES (?1, ?2)
             ON CONFLICT (address_hash) DO UPDATE SET last_at = excluded.last_at
                 WHERE last_at <= ?3",
        )?
        .execute(params![address_hash, now, now.minus(PER_ADDRESS)])?;
    Ok(changed == 1)
}

/// Drops the rows a day old or older at `now`: they no longer hold anything back.
///
/// # Errors
/// A failed statement.
pub fn sweep(connection: &Connection, now: Timestamp) -> Result<usize, StoreError> {
    Ok(connection.execute(
        "DELETE FROM visitor_mails WHERE last_at <= ?1",
        [now.minus(PER_ADDRESS)],
    )?)
}

/// A visitor asked on `/my-data` for what is stored under address key `key`: queues
/// an access-link mail about their newest sign-up, when one is stored and the address
/// had no mail in the last day. Returns whether a mail was queued.
///
/// Either way the transaction writes: when nothing is queued (an unknown address, or
/// one that had its mail today), a placeholder row is written to `visitor_mails` and
/// deleted again. A transaction that changed no page commits without writing the WAL
/// or syncing it, so without this an answer to a known address would take a disk sync
/// longer than one to an unknown address, and its timing would tell who signed up.
/// What still differs is a statement or two of work in memory (tens of microseconds,
/// far below a network's jitter, and the pages' rate limit bounds the samples).
///
/// # Errors
/// A failed statement.
pub fn request_access(
    connection: &Connection,
    key: &str,
    address_hash: &str,
    message_domain: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let queued = match super::submissions::newest_of_address(connection, key)? {
        Some((id, section)) if claim(connection, address_hash, now)? => {
            super::outbox::queue_about(
                connection,
                MailKind::Access,
                id,
                &section,
                message_domain,
                now,
            )?;
            true
        }
        _ => false,
    };
    if !queued {
        write_placeholder(connection, now)?;
    }
    Ok(queued)
}

/// Writes a row under a random hash (shaped as an address hash, so it lands where one
/// would) and deletes it: the table ends as it was, but its page is written at commit.
fn write_placeholder(connection: &Connection, now: Timestamp) -> Result<(), StoreError> {
    let placeholder: String = std::iter::repeat_with(|| fastrand::digit(16))
        .take(64)
        .collect();
    connection
        .prepare_cached("INSERT INTO visitor_mails (address_hash, last_at) VALUES (?1, ?2)")?
        .execute(params![placeholder, now])?;
    connection
        .prepare_cached("DELETE FROM visitor_mails WHERE address_hash = ?1")?
        .execute([placeholder])?;
    Ok(())
}

/// When the address last had a mail queued, if within the last day (for tests and
/// `joinform outbox`).
///
/// # Errors
/// A failed query.
pub fn last_at(
    connection: &Connection,
    address_hash: &str,
) -> Result<Option<Timestamp>, StoreError> {
    Ok(connection
        .query_row(
            "SELECT last_at FROM visitor_mails WHERE address_hash = ?1",
            [address_hash],
            |row| row.get(0),
        )
        .optional()?)
}

#[cfg(test)]
mod tests {
    use rusqlite::TransactionBehavior;

    use super::*;
    use crate::store::Database;

    /// What an access request writes, committed: whether it queued a mail, and how
    /// much the WAL grew.
    fn request(connection: &mut Connection, wal: &std::path::Path, key: &str) -> (bool, u64) {
        let size = || std::fs::metadata(wal).map_or(0, |m| m.len());
        let before = size();
        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();
        let hash = format!("{:0>64}", key.len());
        let queued =
            request_access(&transaction, key, &hash, "example.org", Timestamp::now()).unwrap();
        transaction.commit().unwrap();
        (queued, size() - before)
    }

    #[test]
    fn every_answer_to_an_access_request_writes_the_wal_and_leaves_only_real_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("joinform.db");
        let database = Database::new(&path, Duration::from_secs(1));
        database.prepare().unwrap();
        let mut connection = database.connect().unwrap();
        connection
            .execute(
                "INSERT INTO submissions (id, created_at, name, email, country, consent,
                                          section, email_key)
                 VALUES ('0190a5a0-0000-7000-8000-000000000001',
                         '2026-01-01T00:00:00.000000Z', 'A', 'a@example.org', 'NO', 1,
                         'Norway', 'a@example.org')",
                [],
            )
            .unwrap();
        let wal = dir.path().join("joinform.db-wal");
        let known = request(&mut connection, &wal, "a@example.org");
        let again = request(&mut connection, &wal, "a@example.org");
        let unknown = request(&mut connection, &wal, "nobody@example.org");
        assert!(
            known.0,
            "the first request of a stored address queues its mail"
        );
        assert!(!again.0 && !unknown.0);
        for (case, (_, grew)) in [("known", known), ("again", again), ("unknown", unknown)] {
            assert!(grew > 0, "{case}: the commit wrote nothing");
        }
        let rows: i64 = connection
            .query_row("SELECT count(*) FROM visitor_mails", [], |row| row.get(0))
            .unwrap();
        assert_eq!(rows, 1, "only the known address's day is held");
    }
}
