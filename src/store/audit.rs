//! The `audit` table: every export, erasure, purge, follow-up change, review of held
//! and spam sign-ups and sealing of clear rows, written before any data moves.
//! Rows never hold a token or an address; erasures hold a keyed hash of the address.

use rusqlite::{Connection, params};
use serde_json::Value;

use super::StoreError;
use crate::domain::Timestamp;

/// The actor recorded for the command line.
pub const CLI_ACTOR: &str = "cli";
/// The actor recorded for the server's own daily purge.
pub const SERVER_ACTOR: &str = "server";
/// The actor of what a visitor does through their own links (withdraw, access).
pub const VISITOR_ACTOR: &str = "visitor";

/// What an entry records, as the `action` column holds it: the lower-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString)]
#[strum(serialize_all = "snake_case")]
pub enum Action {
    Export,
    Forget,
    Purge,
    /// A sign-up's follow-up state changed.
    Followup,
    /// A visitor was shown what is stored about them (GDPR article 15).
    Access,
    /// Held or spam sign-ups were accepted (or made duplicates) by an operator.
    Release,
    /// Held or spam sign-ups were erased by an operator.
    Discard,
    /// `joinform seal` rewrote the sign-ups stored in clear as sealed.
    Seal,
    /// `joinform backup` copied the whole database (every sign-up) to a file.
    Backup,
    /// `joinform restore` put a backup in place of the database.
    Restore,
}

impl Action {
    /// The code: `export`, `forget`, `purge`, `followup`, `access`, `release`,
    /// `discard`, `seal`, `backup` or `restore`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The row id of an audit entry, to complete it later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditId(pub i64);

/// Opens an entry: the work it describes has not happened yet.
pub fn begin(
    connection: &Connection,
    actor: &str,
    action: Action,
    details: &Value,
) -> Result<AuditId, StoreError> {
    connection
        .prepare_cached("INSERT INTO audit (at, actor, action, details) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![
            Timestamp::now(),
            actor,
            action,
            serde_json::to_string(details)?,
        ])?;
    Ok(AuditId(connection.last_insert_rowid()))
}

/// Records how many rows the work touched; `completed` is false when it stopped early
/// (an export whose client went away), so the entry stays marked incomplete.
pub fn finish(
    connection: &Connection,
    id: AuditId,
    row_count: u64,
    completed: bool,
) -> Result<(), StoreError> {
    let completed_at = completed.then(Timestamp::now);
    connection
        .prepare_cached("UPDATE audit SET row_count = ?2, completed_at = ?3 WHERE id = ?1")?
        .execute(params![
            id.0,
            i64::try_from(row_count).unwrap_or(i64::MAX),
            completed_at
        ])?;
    Ok(())
}

/// An entry for work done inside the caller's transaction: begun and completed at once.
pub fn record(
    connection: &Connection,
    actor: &str,
    action: Action,
    details: &Value,
    row_count: u64,
) -> Result<AuditId, StoreError> {
    let id = begin(connection, actor, action, details)?;
    finish(connection, id, row_count, true)?;
    Ok(id)
}

/// One entry as `joinform audit` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub at: Timestamp,
    pub actor: String,
    pub action: Action,
    /// The JSON object as stored.
    pub details: String,
    pub row_count: Option<i64>,
    /// `None` while the work is unfinished, or when it stopped early.
    pub completed_at: Option<Timestamp>,
}

/// The newest `limit` entries, oldest first.
pub fn list(connection: &Connection, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
    let mut statement = connection.prepare(
        "SELECT id, at, actor, action, details, row_count, completed_at FROM
           (SELECT * FROM audit ORDER BY id DESC LIMIT ?1)
         ORDER BY id",
    )?;
    let rows = statement.query_map([limit], entry)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every entry at or after `since` (of `action` only, when given), oldest first: what
/// `joinform audit --since` lists and `joinform forget --replay` reads.
///
/// # Errors
/// SQLite's error.
pub fn since(
    connection: &Connection,
    since: Timestamp,
    action: Option<Action>,
) -> Result<Vec<AuditEntry>, StoreError> {
    let mut statement = connection.prepare(
        "SELECT id, at, actor, action, details, row_count, completed_at FROM audit
         WHERE at >= ?1 AND (?2 IS NULL OR action = ?2)
         ORDER BY id",
    )?;
    let rows = statement.query_map(params![since, action.map(Action::as_str)], entry)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The entry in `row`, selected as `id, at, actor, action, details, row_count,
/// completed_at`.
fn entry(row: &rusqlite::Row<'_>) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        id: row.get(0)?,
        at: row.get(1)?,
        actor: row.get(2)?,
        action: row.get(3)?,
        details: row.get(4)?,
        row_count: row.get(5)?,
        completed_at: row.get(6)?,
    })
}

/// When entry `id` was begun.
///
/// # Errors
/// SQLite's error, or `QueryReturnedNoRows` for an id that names no entry.
pub fn begun_at(connection: &Connection, id: AuditId) -> Result<Timestamp, StoreError> {
    Ok(
        connection.query_row("SELECT at FROM audit WHERE id = ?1", [id.0], |row| {
            row.get(0)
        })?,
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::test_support::database;

    #[test]
    fn since_lists_the_entries_from_a_time_on_of_one_action_or_all() {
        let (_dir, connection) = database();
        let first = record(&connection, CLI_ACTOR, Action::Forget, &json!({}), 1).unwrap();
        let cut: Timestamp = begun_at(&connection, first)
            .unwrap()
            .plus(std::time::Duration::from_micros(1));
        std::thread::sleep(std::time::Duration::from_millis(2));
        record(&connection, CLI_ACTOR, Action::Export, &json!({}), 0).unwrap();
        let last = record(&connection, CLI_ACTOR, Action::Forget, &json!({}), 1).unwrap();
        let all = since(&connection, cut, None).unwrap();
        assert_eq!(all.len(), 2);
        let forgets = since(&connection, cut, Some(Action::Forget)).unwrap();
        assert_eq!(forgets.iter().map(|e| e.id).collect::<Vec<_>>(), [last.0]);
        let from_start = since(&connection, begun_at(&connection, first).unwrap(), None).unwrap();
        assert_eq!(from_start.len(), 3, "at the time itself counts");
    }
}
