//! The audit trail: every export, erasure and purge, written before any data moves.
//! Rows never hold a token or an address; erasures hold a keyed hash of the address.

use std::fmt::Write;

use rusqlite::{Connection, params};
use serde_json::Value;

use crate::domain::Timestamp;
use crate::store::StoreError;

/// The actor recorded for the command line.
pub const CLI_ACTOR: &str = "cli";
/// The actor recorded for the server's own daily purge.
pub const SERVER_ACTOR: &str = "server";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Export,
    Forget,
    Purge,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Export => "export",
            Self::Forget => "forget",
            Self::Purge => "purge",
        }
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
            Timestamp::now().to_string(),
            actor,
            action.as_str(),
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
    let completed_at = completed.then(|| Timestamp::now().to_string());
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
    pub at: String,
    pub actor: String,
    pub action: String,
    pub details: String,
    pub row_count: Option<i64>,
    pub completed_at: Option<String>,
}

/// The newest `limit` entries, oldest first.
pub fn list(connection: &Connection, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
    let mut statement = connection.prepare(
        "SELECT id, at, actor, action, details, row_count, completed_at FROM
           (SELECT * FROM audit ORDER BY id DESC LIMIT ?1)
         ORDER BY id",
    )?;
    let rows = statement.query_map([limit], |row| {
        Ok(AuditEntry {
            id: row.get(0)?,
            at: row.get(1)?,
            actor: row.get(2)?,
            action: row.get(3)?,
            details: row.get(4)?,
            row_count: row.get(5)?,
            completed_at: row.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The listing, one entry per line, tab-separated.
pub fn format(entries: &[AuditEntry]) -> String {
    let mut text = String::from("id\tat\tactor\taction\trows\tcompleted\tdetails\n");
    for entry in entries {
        let _ = writeln!(
            text,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
            entry.id,
            entry.at,
            entry.actor,
            entry.action,
            entry.row_count.map_or("-".to_owned(), |n| n.to_string()),
            entry.completed_at.as_deref().unwrap_or("INCOMPLETE"),
            entry.details
        );
    }
    text
}
