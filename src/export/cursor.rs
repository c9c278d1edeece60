//! Incremental exports: the last submission id each named consumer (a CRM sync) has
//! received.

use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use crate::domain::Timestamp;
use crate::store::StoreError;

/// Sign-ups younger than this are left for the next incremental export. Ids are taken
/// when a request arrives and committed a little later, so a younger id might still be
/// on its way to the disk when a newer one is already exported; past the busy timeout
/// and the writer's queue, a request has either committed or failed.
pub const SETTLE: Duration = Duration::from_secs(60);

/// The consumer's checkpoint, if it exported before.
pub fn get(connection: &Connection, consumer: &str) -> Result<Option<String>, StoreError> {
    Ok(connection
        .query_row(
            "SELECT last_id FROM export_cursors WHERE consumer = ?1",
            [consumer],
            |row| row.get(0),
        )
        .optional()?)
}

/// Moves the checkpoint; only ever forwards.
pub fn set(connection: &Connection, consumer: &str, last_id: &str) -> Result<(), StoreError> {
    connection.execute(
        "INSERT INTO export_cursors (consumer, last_id, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (consumer) DO UPDATE SET last_id = excluded.last_id,
                                              updated_at = excluded.updated_at
         WHERE excluded.last_id > export_cursors.last_id",
        params![consumer, last_id, Timestamp::now().to_string()],
    )?;
    Ok(())
}

/// The smallest id a submission created at `instant` can have: ids are UUID v7, whose
/// text sorts by their millisecond timestamp first.
pub fn first_id_at(instant: Timestamp) -> String {
    uuid::Builder::from_unix_timestamp_millis(instant.unix_millis(), &[0; 10])
        .into_uuid()
        .as_hyphenated()
        .to_string()
}

/// The upper id bound of an incremental export run now.
pub fn settled_bound(now: Timestamp) -> String {
    first_id_at(now.minus(SETTLE))
}
