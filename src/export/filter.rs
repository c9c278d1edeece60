//! What an export selects: section, country, status and a time range, from the command
//! line or the admin listener's query string alike.

use std::fmt;
use std::str::FromStr;

use rusqlite::types::Value as SqlValue;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

use crate::domain::{CountryCode, SubmissionId, Timestamp};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("`{0}` is not a date (2024-05-31) or an RFC 3339 time (2024-05-31T12:00:00Z)")]
    BadTime(String),
    #[error("`{0}` is not an ISO 3166-1 alpha-2 country code")]
    BadCountry(String),
    #[error("`{0}` is not a status: accepted, duplicate, spam or all")]
    BadStatus(String),
    #[error("`{0}` is not a format: csv, json or ndjson")]
    BadFormat(String),
}

/// Which verdicts an export includes. Accepted only by default: spam and duplicates
/// must be asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StatusFilter {
    #[default]
    Accepted,
    Duplicate,
    Spam,
    All,
}

impl StatusFilter {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Duplicate => "duplicate",
            Self::Spam => "spam",
            Self::All => "all",
        }
    }
}

impl FromStr for StatusFilter {
    type Err = FilterError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "accepted" => Ok(Self::Accepted),
            "duplicate" => Ok(Self::Duplicate),
            "spam" => Ok(Self::Spam),
            "all" => Ok(Self::All),
            other => Err(FilterError::BadStatus(other.to_owned())),
        }
    }
}

impl fmt::Display for StatusFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which end of a time range a bound is: a bare date means the start of that day for
/// `since` and the end of it for `until`, so `--until 2024-05-31` includes 31 May.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Since,
    Until,
}

/// A date (`2024-05-31`, UTC) or an RFC 3339 time with its offset.
pub fn parse_time(text: &str, bound: Bound) -> Result<Timestamp, FilterError> {
    let text = text.trim();
    if let Ok(date) = time::Date::parse(text, format_description!("[year]-[month]-[day]")) {
        let day = match bound {
            Bound::Since => Some(date),
            Bound::Until => date.next_day(),
        };
        let day = day.ok_or_else(|| FilterError::BadTime(text.to_owned()))?;
        return Ok(Timestamp::from_datetime(day.midnight().assume_utc()));
    }
    OffsetDateTime::parse(text, &Rfc3339)
        .map(Timestamp::from_datetime)
        .map_err(|_| FilterError::BadTime(text.to_owned()))
}

pub fn parse_country(text: &str) -> Result<CountryCode, FilterError> {
    CountryCode::parse(text).map_err(|_| FilterError::BadCountry(text.to_owned()))
}

/// The rows an export selects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportFilter {
    /// Only these sections; `None` means every section. A section-scoped admin token
    /// always sets it.
    pub sections: Option<Vec<String>>,
    pub country: Option<CountryCode>,
    pub status: StatusFilter,
    /// Signed up at or after this instant.
    pub since: Option<Timestamp>,
    /// Signed up before this instant.
    pub until: Option<Timestamp>,
    /// Incremental exports: ids after this one…
    pub after_id: Option<String>,
    /// …and before this one.
    pub before_id: Option<String>,
}

impl ExportFilter {
    /// The SQL condition and its parameters.
    pub(super) fn to_sql(&self) -> (String, Vec<SqlValue>) {
        let mut conditions = Vec::new();
        let mut values = Vec::new();
        if let Some(sections) = &self.sections {
            if sections.is_empty() {
                // A scope with no section sees nothing, never everything.
                return ("0".to_owned(), Vec::new());
            }
            let mut alternatives = Vec::new();
            for section in sections {
                values.push(SqlValue::Text(section.clone()));
                alternatives.push(format!("section = ?{}", values.len()));
            }
            conditions.push(format!("({})", alternatives.join(" OR ")));
        }
        let mut add = |condition: &str, value: SqlValue| {
            values.push(value);
            conditions.push(condition.replace('?', &format!("?{}", values.len())));
        };
        if let Some(country) = self.country {
            add("country = ?", SqlValue::Text(country.as_str().to_owned()));
        }
        if self.status != StatusFilter::All {
            add(
                "status = ?",
                SqlValue::Text(self.status.as_str().to_owned()),
            );
        }
        // The time range is also given as a range of ids, a little wider, so that it is
        // a range of the table's key (there is no index on `created_at`); `created_at`
        // then decides exactly.
        if let Some(since) = self.since {
            add("created_at >= ?", SqlValue::Text(since.to_string()));
            let first = SubmissionId::at_or_before(since);
            add("id >= ?", SqlValue::Text(first.to_string()));
        }
        if let Some(until) = self.until {
            add("created_at < ?", SqlValue::Text(until.to_string()));
            add(
                "id < ?",
                SqlValue::Text(SubmissionId::after(until).to_string()),
            );
        }
        if let Some(after) = &self.after_id {
            add("id > ?", SqlValue::Text(after.clone()));
        }
        if let Some(before) = &self.before_id {
            add("id < ?", SqlValue::Text(before.clone()));
        }
        if conditions.is_empty() {
            ("1".to_owned(), values)
        } else {
            (conditions.join(" AND "), values)
        }
    }

    /// The filter for the audit trail: no personal data is in it.
    pub fn details(&self) -> Value {
        json!({
            "sections": self.sections,
            "country": self.country.map(|c| c.as_str().to_owned()),
            "status": self.status.as_str(),
            "since": self.since.map(|t| t.to_string()),
            "until": self.until.map(|t| t.to_string()),
            "after_id": self.after_id,
        })
    }
}
