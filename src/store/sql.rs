//! How domain values are written to and read from their columns, so call sites bind
//! and read typed values and no column's format is spelt out twice.
//!
//! - `Timestamp`: `TEXT`, fixed-width RFC 3339 UTC with microseconds, so that text
//!   order is time order.
//! - `SubmissionId`: `TEXT`, the hyphenated lower-case UUID; text order is id order,
//!   which for UUID v7 is time order.
//! - `CountryCode`: `TEXT`, ISO 3166-1 alpha-2, upper-case.
//! - The status and state enums: `TEXT`, their stable codes (the CHECK constraints in
//!   schema.sql list the same codes).
//!
//! A value that does not read back is reported as `FromSqlError::Other`, which rusqlite
//! turns into an error naming the column: it means a file written by something else.

use rusqlite::ToSql;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};

use crate::domain::{
    CountryCode, FollowupState, MailKind, SubmissionId, SubmissionStatus, Timestamp,
};

/// A column value that is text but not one this type writes.
#[derive(Debug, thiserror::Error)]
#[error("`{text}` is not a {kind} as joinform writes it")]
struct Unreadable {
    kind: &'static str,
    text: String,
}

fn unreadable(kind: &'static str, text: &str) -> FromSqlError {
    FromSqlError::Other(Box::new(Unreadable {
        kind,
        text: text.chars().take(64).collect(),
    }))
}

impl ToSql for Timestamp {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.to_string()))
    }
}

impl FromSql for Timestamp {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let text = value.as_str()?;
        Self::parse(text).ok_or_else(|| unreadable("timestamp", text))
    }
}

impl ToSql for SubmissionId {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.to_string()))
    }
}

impl FromSql for SubmissionId {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let text = value.as_str()?;
        Self::parse(text).ok_or_else(|| unreadable("submission id", text))
    }
}

impl ToSql for CountryCode {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for CountryCode {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let text = value.as_str()?;
        Self::parse(text).map_err(|_| unreadable("country code", text))
    }
}

/// The enums stored as their codes: written with `IntoStaticStr`, read with
/// `EnumString` (both derived with the same `serialize_all`).
macro_rules! sql_code {
    ($($kind:ty => $name:literal),* $(,)?) => {$(
        impl ToSql for $kind {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                let code: &'static str = self.into();
                Ok(ToSqlOutput::from(code))
            }
        }

        impl FromSql for $kind {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                let text = value.as_str()?;
                text.parse().map_err(|_| unreadable($name, text))
            }
        }
    )*};
}

sql_code!(
    SubmissionStatus => "submission status",
    FollowupState => "follow-up state",
    MailKind => "mail kind",
    super::audit::Action => "audit action",
    super::outbox::DeliveryState => "delivery state",
);

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;

    fn round_trip<T: ToSql + FromSql>(value: &T) -> (String, T) {
        let connection = Connection::open_in_memory().unwrap();
        connection
            .query_row("SELECT ?1, ?1", [value], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .unwrap()
    }

    #[test]
    fn values_are_written_as_their_documented_text_and_read_back() {
        let instant = Timestamp::parse("2026-11-30T09:41:11.123456Z").unwrap();
        assert_eq!(
            round_trip(&instant),
            ("2026-11-30T09:41:11.123456Z".to_owned(), instant)
        );
        let id = SubmissionId::generate();
        assert_eq!(round_trip(&id), (id.to_string(), id));
        assert_eq!(
            round_trip(&SubmissionStatus::Duplicate),
            ("duplicate".to_owned(), SubmissionStatus::Duplicate)
        );
    }

    #[test]
    fn text_of_another_format_is_an_error_naming_the_kind() {
        let connection = Connection::open_in_memory().unwrap();
        for (text, kind) in [
            ("2026-11-30 09:41", "timestamp"),
            ("42", "submission id"),
            ("Accepted", "submission status"),
        ] {
            let error = match kind {
                "timestamp" => connection
                    .query_row("SELECT ?1", [text], |row| row.get::<_, Timestamp>(0))
                    .map(drop),
                "submission id" => connection
                    .query_row("SELECT ?1", [text], |row| row.get::<_, SubmissionId>(0))
                    .map(drop),
                _ => connection
                    .query_row("SELECT ?1", [text], |row| row.get::<_, SubmissionStatus>(0))
                    .map(drop),
            }
            .unwrap_err();
            assert!(error.to_string().contains(kind), "{text}: {error}");
        }
    }
}
