//! The `export_cursors` table: the last submission id each named consumer of
//! incremental exports (a CRM sync) has received.

use rusqlite::{Connection, OptionalExtension, params};

use crate::domain::{SubmissionId, Timestamp};

use super::StoreError;

/// The consumer's checkpoint, if it exported before.
///
/// # Errors
/// A failed query, or a stored id that is not one (a file written by something else).
pub fn get(connection: &Connection, consumer: &str) -> Result<Option<SubmissionId>, StoreError> {
    Ok(connection
        .query_row(
            "SELECT last_id FROM export_cursors WHERE consumer = ?1",
            [consumer],
            |row| row.get(0),
        )
        .optional()?)
}

/// Moves the checkpoint to `last_id`; only ever forwards (ids order as time does).
///
/// # Errors
/// A failed statement.
pub fn set(
    connection: &Connection,
    consumer: &str,
    last_id: SubmissionId,
) -> Result<(), StoreError> {
    connection.execute(
        "INSERT INTO export_cursors (consumer, last_id, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (consumer) DO UPDATE SET last_id = excluded.last_id,
                                              updated_at = excluded.updated_at
         WHERE excluded.last_id > export_cursors.last_id",
        params![consumer, last_id, Timestamp::now()],
    )?;
    Ok(())
}
