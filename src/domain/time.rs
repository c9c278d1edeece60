//! Instants as joinform stores and compares them.

use std::fmt;

use time::OffsetDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;

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

    pub fn from_system_time(time: std::time::SystemTime) -> Self {
        Self(OffsetDateTime::from(time))
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

    /// Whole seconds since the Unix epoch, rounded down; 0 before it (signed links
    /// carry expiry instants so).
    pub fn unix_seconds(self) -> u64 {
        u64::try_from(self.0.unix_timestamp()).unwrap_or(0)
    }

    /// The instant `seconds` after the Unix epoch; `None` past the year 9999, which
    /// the stored text form cannot write.
    pub fn from_unix_seconds(seconds: u64) -> Option<Self> {
        let seconds = i64::try_from(seconds).ok()?;
        OffsetDateTime::from_unix_timestamp(seconds).ok().map(Self)
    }

    /// How long after `earlier` this is; zero if it is not after it.
    pub fn since(self, earlier: Self) -> std::time::Duration {
        (self.0 - earlier.0).try_into().unwrap_or_default()
    }

    /// The instant, for mail Date headers.
    pub fn to_system_time(self) -> std::time::SystemTime {
        self.0.into()
    }

    /// The UTC date, `2026-11-30`: how pages and mails show a day to a person.
    pub fn date_text(self) -> String {
        let date = self.0.date();
        format!(
            "{:04}-{:02}-{:02}",
            date.year(),
            u8::from(date.month()),
            date.day()
        )
    }

    /// The UTC date and minute, `2026-11-30 09:41`: minutes are enough for a person.
    pub fn minute_text(self) -> String {
        format!(
            "{} {:02}:{:02}",
            self.date_text(),
            self.0.hour(),
            self.0.minute()
        )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_minutes_are_written_in_utc() {
        let at = Timestamp::parse("2026-01-02T03:04:59.999999Z").unwrap();
        assert_eq!(at.date_text(), "2026-01-02");
        assert_eq!(at.minute_text(), "2026-01-02 03:04");
    }
}
