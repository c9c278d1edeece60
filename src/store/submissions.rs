//! The `submissions` table.

use std::fmt;

use rusqlite::{Connection, params};
use time::OffsetDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;
use uuid::Uuid;

use crate::domain::NewSubmission;

use super::StoreError;

/// The opaque id a visitor is given. Time-ordered (UUID v7), so new rows append to the
/// primary-key index instead of landing at random pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubmissionId(Uuid);

impl SubmissionId {
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }
}

impl fmt::Display for SubmissionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.as_hyphenated().fmt(f)
    }
}

/// A UTC instant, written as fixed-width RFC 3339 with microseconds so that text order
/// in SQLite is time order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(OffsetDateTime);

const RFC3339_MICROS: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

impl Timestamp {
    pub fn now() -> Self {
        Self(OffsetDateTime::now_utc())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.format(RFC3339_MICROS) {
            Ok(text) => f.write_str(&text),
            Err(_) => Err(fmt::Error),
        }
    }
}

/// What joinform decided about a submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmissionStatus {
    Accepted,
}

impl SubmissionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
        }
    }
}

/// A submission with what the server adds to it, ready to be written.
#[derive(Debug, Clone)]
pub struct SubmissionRecord {
    pub id: SubmissionId,
    pub created_at: Timestamp,
    pub status: SubmissionStatus,
    pub submission: NewSubmission,
}

impl SubmissionRecord {
    pub fn new(submission: NewSubmission) -> Self {
        Self {
            id: SubmissionId::generate(),
            created_at: Timestamp::now(),
            status: SubmissionStatus::Accepted,
            submission,
        }
    }
}

/// Writes one submission; the caller owns the transaction.
pub fn insert(connection: &Connection, record: &SubmissionRecord) -> Result<(), StoreError> {
    let s = &record.submission;
    let extra = serde_json::to_string(&s.extra)?;
    let mut statement = connection.prepare_cached(
        "INSERT INTO submissions (id, created_at, name, email, country, phone, city, message,
                                  language, consent, extra, status)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;
    statement.execute(params![
        record.id.to_string(),
        record.created_at.to_string(),
        s.name.as_str(),
        s.email.to_string(),
        s.country.as_str(),
        s.phone.as_ref().map(|p| p.as_str()),
        s.city.as_ref().map(|c| c.as_str()),
        s.message.as_ref().map(|m| m.as_str()),
        s.language.as_ref().map(|l| l.as_str()),
        s.consent.0,
        extra,
        record.status.as_str(),
    ])?;
    Ok(())
}
