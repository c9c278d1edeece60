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
/// had no mail in the last day. Returns whether a mail was queued. Either way it reads
/// the same index and writes at most one row or two, so the time it takes tells
/// nothing.
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
    let newest = super::submissions::newest_of_address(connection, key)?;
    let Some((id, section)) = newest else {
        return Ok(false);
    };
    if !claim(connection, address_hash, now)? {
        return Ok(false);
    }
    super::outbox::queue_about(
        connection,
        MailKind::Access,
        id,
        &section,
        message_domain,
        now,
    )?;
    Ok(true)
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
