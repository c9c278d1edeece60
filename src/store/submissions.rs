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
        // The random bits only need to make ids distinct, not secret: an id grants
        // nothing. A fast generator spares a system call per request.
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| {
                u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
            });
        let random: [u8; 10] = std::array::from_fn(|_| fastrand::u8(..));
        Self(uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid())
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

    /// Reads a timestamp as this type writes it.
    pub fn parse(text: &str) -> Option<Self> {
        time::PrimitiveDateTime::parse(text, RFC3339_MICROS)
            .ok()
            .map(|naive| Self(naive.assume_utc()))
    }

    pub fn plus(self, duration: std::time::Duration) -> Self {
        Self(
            self.0
                .saturating_add(duration.try_into().unwrap_or(time::Duration::MAX)),
        )
    }

    /// `duration` before this instant (retention cut-offs).
    pub fn minus(self, duration: std::time::Duration) -> Self {
        Self(
            self.0
                .saturating_sub(duration.try_into().unwrap_or(time::Duration::MAX)),
        )
    }

    /// Any instant, in UTC (export date filters).
    pub fn from_datetime(instant: OffsetDateTime) -> Self {
        Self(instant.to_offset(time::UtcOffset::UTC))
    }

    /// Milliseconds since the Unix epoch, as UUID v7 ids carry them.
    pub fn unix_millis(self) -> u64 {
        u64::try_from(self.0.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
    }

    /// How long after `earlier` this is; zero if it is not after it.
    pub fn since(self, earlier: Self) -> std::time::Duration {
        (self.0 - earlier.0).try_into().unwrap_or_default()
    }

    /// The instant, for mail Date headers.
    pub fn to_system_time(self) -> std::time::SystemTime {
        self.0.into()
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
    /// The name of the section it was routed to.
    pub section: String,
    pub submission: NewSubmission,
    /// The notification to queue with it, in the same transaction.
    pub notification: Option<Notification>,
}

/// An outbox row to write beside a submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// `<unique@sender-domain>`, kept across retries.
    pub message_id: String,
}

impl SubmissionRecord {
    /// An accepted submission, routed to `section`, with its notification.
    pub fn accepted(submission: NewSubmission, section: &str, message_domain: &str) -> Self {
        let id = SubmissionId::generate();
        Self {
            id,
            created_at: Timestamp::now(),
            status: SubmissionStatus::Accepted,
            section: section.to_owned(),
            submission,
            notification: Some(Notification {
                message_id: format!("<{id}@{message_domain}>"),
            }),
        }
    }
}

/// Writes one submission; the caller owns the transaction.
pub fn insert(connection: &Connection, record: &SubmissionRecord) -> Result<(), StoreError> {
    let s = &record.submission;
    let extra = serde_json::to_string(&s.extra)?;
    let mut statement = connection.prepare_cached(
        "INSERT INTO submissions (id, created_at, name, email, country, phone, city, message,
                                  language, consent, extra, status, section, email_key)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
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
        record.section,
        s.email.key(),
    ])?;
    if let Some(notification) = &record.notification {
        super::outbox::insert(connection, record, notification)?;
    }
    Ok(())
}
