//! The schema's version lives in `PRAGMA user_version`. A new file gets `schema.sql`
//! whole; an older file is upgraded step by step in one transaction; a newer file is
//! refused.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// The whole schema at [`SCHEMA_VERSION`].
pub const SCHEMA_SQL: &str = include_str!("../../schema.sql");

/// The version `schema.sql` describes.
pub const SCHEMA_VERSION: i64 = 3;

/// `UPGRADES[i]` takes a database from version `i + 1` to `i + 2`. Append only; the
/// last step must leave the schema exactly as `schema.sql` makes it.
const UPGRADES: &[&str] = &[
    // 1 → 2: routing by section and the notification outbox.
    "ALTER TABLE submissions ADD COLUMN section TEXT NOT NULL DEFAULT '';
     CREATE TABLE outbox (
         -- One notification per submission; erasing the submission erases it.
         submission_id   TEXT PRIMARY KEY NOT NULL
                         REFERENCES submissions (id) ON DELETE CASCADE,
         section         TEXT NOT NULL,
         -- Stable across retries, so a receiver can spot a duplicate delivery.
         message_id      TEXT NOT NULL,
         state           TEXT NOT NULL DEFAULT 'pending'
                         CHECK (state IN ('pending', 'sent', 'failed')),
         attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
         created_at      TEXT NOT NULL,
         next_attempt_at TEXT NOT NULL,
         sent_at         TEXT,
         -- Why the last attempt failed: transport and SMTP text, never message content.
         last_error      TEXT
     ) STRICT, WITHOUT ROWID;

     CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE state = 'pending';",
    // 2 → 3: spam defence, consent record, audit trail, incremental exports. Addresses
    // are ASCII dot-atoms at a domain already stored lower-case, so `lower()` gives the
    // key that `MemberEmail::key` computes.
    "ALTER TABLE submissions ADD COLUMN email_key TEXT NOT NULL DEFAULT '';
     ALTER TABLE submissions ADD COLUMN spam_reasons TEXT
         CHECK (spam_reasons IS NULL OR json_valid(spam_reasons));
     ALTER TABLE submissions ADD COLUMN is_returning INTEGER NOT NULL DEFAULT 0
         CHECK (is_returning IN (0, 1));
     ALTER TABLE submissions ADD COLUMN client_hash TEXT;
     ALTER TABLE submissions ADD COLUMN consent_text TEXT;
     ALTER TABLE submissions ADD COLUMN consent_language TEXT;
     UPDATE submissions SET email_key = lower(email);
     DROP INDEX submissions_by_email;
     CREATE INDEX submissions_by_email_key ON submissions (email_key, created_at);

     CREATE TABLE used_tokens (
         nonce       TEXT PRIMARY KEY NOT NULL,
         expires_at  TEXT NOT NULL
     ) STRICT, WITHOUT ROWID;

     CREATE TABLE audit (
         id          INTEGER PRIMARY KEY,
         at          TEXT NOT NULL,
         actor       TEXT NOT NULL,
         action      TEXT NOT NULL CHECK (action IN ('export', 'forget', 'purge')),
         details     TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(details)),
         row_count   INTEGER,
         completed_at TEXT
     ) STRICT;

     CREATE TABLE export_cursors (
         consumer    TEXT PRIMARY KEY NOT NULL,
         last_id     TEXT NOT NULL,
         updated_at  TEXT NOT NULL
     ) STRICT, WITHOUT ROWID;",
];

const _: () = assert!(UPGRADES.len() as i64 == SCHEMA_VERSION - 1);

pub fn migrate(connection: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = transaction.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found == 0 {
        let objects: i64 =
            transaction.query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))?;
        if objects > 0 {
            return Err(StoreError::Foreign {
                path: path.to_owned(),
            });
        }
        transaction.execute_batch(SCHEMA_SQL)?;
    } else {
        // `found` is in 1..=SCHEMA_VERSION here, so the slice is in bounds.
        let first_step = usize::try_from(found - 1).unwrap_or(0);
        for (step, sql) in UPGRADES.iter().enumerate().skip(first_step) {
            tracing::info!(
                from = step + 1,
                to = step + 2,
                "upgrading the database schema"
            );
            transaction.execute_batch(sql)?;
        }
    }
    if found != SCHEMA_VERSION {
        transaction.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    }
    transaction.commit()?;
    Ok(())
}
