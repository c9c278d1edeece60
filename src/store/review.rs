//! Review of what the spam checks flagged: the stored spam sign-ups listed, released
//! (accepted after all, and notified as usual) or discarded (erased). A wrongly flagged
//! person is otherwise lost to the organisers.
//!
//! Only `spam` is reviewed for now; issue 17's `held` status will join it here.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::json;

use super::audit::{self, Action};
use super::submissions::{accept, count};
use super::{Erasing, StoreError};
use crate::domain::{CountryCode, SubmissionId, SubmissionStatus, Timestamp};

/// One spam sign-up as a review lists it: no address, phone, message or full name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flagged {
    pub id: SubmissionId,
    pub created_at: Timestamp,
    pub section: String,
    pub country: CountryCode,
    /// The first word of the name, enough to recognise a person among bots.
    pub first_name: String,
    /// The spam reasons' codes, as stored (`honeypot`, `link_in_name`…).
    pub reasons: Vec<String>,
}

/// The newest `limit` spam sign-ups (of `section` only, when given), newest first, and
/// how many there are in all.
///
/// # Errors
/// A failed query.
pub fn flagged(
    connection: &Connection,
    section: Option<&str>,
    limit: u32,
) -> Result<(Vec<Flagged>, u64), StoreError> {
    let total: i64 = connection.query_row(
        "SELECT count(*) FROM submissions
         WHERE status = 'spam' AND (?1 IS NULL OR section = ?1)",
        [section],
        |row| row.get(0),
    )?;
    let mut statement = connection.prepare(
        "SELECT id, created_at, section, country, name, spam_reasons FROM submissions
         WHERE status = 'spam' AND (?1 IS NULL OR section = ?1)
         ORDER BY created_at DESC, id DESC LIMIT ?2",
    )?;
    let rows = statement.query_map(params![section, limit], |row| {
        let name: String = row.get(4)?;
        let reasons: Option<String> = row.get(5)?;
        Ok(Flagged {
            id: row.get(0)?,
            created_at: row.get(1)?,
            section: row.get(2)?,
            country: row.get(3)?,
            first_name: name
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned(),
            // The column is CHECKed to be valid JSON; a list of codes is all we write.
            reasons: reasons
                .and_then(|text| serde_json::from_str(&text).ok())
                .unwrap_or_default(),
        })
    })?;
    let rows = rows.collect::<Result<_, _>>()?;
    Ok((rows, u64::try_from(total).unwrap_or(0)))
}

/// What a release or a discard did: the ids it changed, and the ids given that were no
/// stored spam sign-up (unknown, or accepted…), which it left alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reviewed {
    pub done: Vec<SubmissionId>,
    pub not_spam: Vec<SubmissionId>,
    /// Spam of a section that asks its visitors to confirm (double opt-in), left as it
    /// is by a release (see [`release`]).
    pub needs_confirmation: Vec<SubmissionId>,
}

/// A stored spam sign-up and its section.
type SpamOf = (SubmissionId, String);

/// Splits `ids` into the stored spam sign-ups (with their sections) and the rest; an id
/// given twice counts once.
fn spam_among(
    connection: &Connection,
    ids: &[SubmissionId],
) -> Result<(Vec<SpamOf>, Vec<SubmissionId>), StoreError> {
    let mut statement =
        connection.prepare_cached("SELECT status, section FROM submissions WHERE id = ?1")?;
    let mut spam: Vec<SpamOf> = Vec::new();
    let mut not_spam = Vec::new();
    for &id in ids {
        if spam.iter().any(|(seen, _)| *seen == id) || not_spam.contains(&id) {
            continue;
        }
        let found: Option<(SubmissionStatus, String)> = statement
            .query_row([id], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        match found {
            Some((SubmissionStatus::Spam, section)) => spam.push((id, section)),
            _ => not_spam.push(id),
        }
    }
    Ok((spam, not_spam))
}

/// Releases the spam sign-ups among `ids` at `now`, in the caller's (`IMMEDIATE`)
/// transaction: each becomes `accepted` through the step a confirmation takes, so its
/// follow-up starts `new` from `now` and its notification is queued for the running
/// server's worker. Its `spam_reasons` are kept: the record of why it was flagged,
/// for judging the checks later (nothing reads them to decide anything). No mail goes
/// to the visitor. Audited as `release` by `actor`, with the ids and their count, when
/// any was released.
///
/// A sign-up of a section where `confirms(section)` (double opt-in) is not released:
/// its section may hear of a person only once that person confirmed, and an operator
/// cannot confirm for them (the visitor signs up again instead). It is listed in
/// [`Reviewed::needs_confirmation`].
///
/// # Errors
/// A failed statement; the caller's transaction then rolls back.
pub fn release(
    connection: &Connection,
    ids: &[SubmissionId],
    now: Timestamp,
    message_domain: &str,
    confirms: &dyn Fn(&str) -> bool,
    actor: &str,
) -> Result<Reviewed, StoreError> {
    let (spam, not_spam) = spam_among(connection, ids)?;
    let mut done = Vec::new();
    let mut needs_confirmation = Vec::new();
    for (id, section) in spam {
        if confirms(&section) {
            needs_confirmation.push(id);
        } else {
            accept(connection, id, &section, now, message_domain)?;
            done.push(id);
        }
    }
    record(connection, actor, Action::Release, &done)?;
    Ok(Reviewed {
        done,
        not_spam,
        needs_confirmation,
    })
}

/// Erases the spam sign-ups among `ids`, inside [`super::erase`] (which returns the
/// freed pages and empties the WAL once it commits). Audited as `discard` by `actor`,
/// with the ids and their count, when any was discarded.
///
/// # Errors
/// A failed statement; the erasure then rolls back.
pub fn discard(
    connection: &Erasing<'_>,
    ids: &[SubmissionId],
    actor: &str,
) -> Result<Reviewed, StoreError> {
    let (spam, not_spam) = spam_among(connection, ids)?;
    let mut statement =
        connection.prepare_cached("DELETE FROM submissions WHERE id = ?1 AND status = 'spam'")?;
    let mut done = Vec::new();
    for (id, _) in spam {
        if statement.execute([id])? == 1 {
            done.push(id);
        }
    }
    record(connection, actor, Action::Discard, &done)?;
    Ok(Reviewed {
        done,
        not_spam,
        needs_confirmation: Vec::new(),
    })
}

fn record(
    connection: &Connection,
    actor: &str,
    action: Action,
    ids: &[SubmissionId],
) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let texts: Vec<String> = ids.iter().map(ToString::to_string).collect();
    let rows = count(ids.len());
    audit::record(
        connection,
        actor,
        action,
        &json!({ "ids": texts, "count": rows }),
        rows,
    )?;
    Ok(())
}
