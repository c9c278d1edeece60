//! What the store's unit tests share: a fresh database file, and a sign-up as the join
//! handler parses one.

use std::time::Duration;

use rusqlite::Connection;

use crate::domain::{Consent, CountryCode, ExtraValues, MemberEmail, MemberName, NewSubmission};

use super::Database;

/// A new database at the current schema in a temporary folder (kept while the folder
/// lives), and a connection to it.
pub(crate) fn database() -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().unwrap();
    let database = Database::new(dir.path().join("joinform.db"), Duration::from_secs(1));
    database.prepare().unwrap();
    let connection = database.connect().unwrap();
    (dir, connection)
}

/// A sign-up from Norway by `name` at `email`, consenting, with no optional field.
pub(crate) fn submission(name: &str, email: &str) -> NewSubmission {
    NewSubmission {
        name: MemberName::parse(name).unwrap(),
        email: MemberEmail::parse(email).unwrap(),
        country: CountryCode::parse("NO").unwrap(),
        phone: None,
        city: None,
        message: None,
        language: None,
        consent: Consent(true),
        extra: ExtraValues::default(),
    }
}
