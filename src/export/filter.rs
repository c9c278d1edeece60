//! What an export selects: section, country, status, a time range and the follow-up
//! state, from the command line or the admin listener's query string alike.

use serde_json::{Value, json};
use strum::{Display, IntoStaticStr, VariantArray};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

use crate::domain::{CountryCode, FollowupState, SubmissionId, SubmissionStatus, Timestamp};
use crate::store::submissions::Selection;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("`{0}` is not a date (2024-05-31) or an RFC 3339 time (2024-05-31T12:00:00Z)")]
    BadTime(String),
    #[error("`{0}` is not an ISO 3166-1 alpha-2 country code")]
    BadCountry(String),
    #[error("`{0}` is not a status: accepted, duplicate, spam, unconfirmed, held or all")]
    BadStatus(String),
    #[error("`{0}` is not a format: csv, json or ndjson")]
    BadFormat(String),
    #[error("a byte-order mark for spreadsheets (excel) goes with the CSV format only")]
    ExcelWithoutCsv,
    #[error("the time range is empty: since ({since}) must be before until ({until})")]
    EmptyRange { since: Timestamp, until: Timestamp },
    #[error(
        "followup: `{0}` is not a follow-up state: new, contacted, joined, declined or unreachable"
    )]
    BadFollowup(String),
    #[error(
        "overdue selects sign-ups still `new`, so it cannot go with followup `{0}`: \
         leave one of them out"
    )]
    OverdueNotNew(FollowupState),
    #[error(
        "followup and overdue select accepted sign-ups (only those are followed up), so \
         they cannot go with status `{0}`"
    )]
    FollowupNotAccepted(StatusFilter),
}

/// A follow-up state by its code (`new`, `contacted`, `joined`, `declined`,
/// `unreachable`), as the command line and the query string give it.
///
/// # Errors
/// [`FilterError::BadFollowup`] naming the text.
pub fn parse_followup(text: &str) -> Result<FollowupState, FilterError> {
    text.parse()
        .map_err(|_| FilterError::BadFollowup(text.chars().take(32).collect()))
}

/// Which verdicts an export includes. Accepted only by default: spam and duplicates
/// must be asked for; `all` is every verdict but `unconfirmed`, which only its own name
/// selects (double opt-in sign-ups nobody confirmed may have been made by someone
/// else).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, IntoStaticStr, VariantArray, Display)]
#[strum(serialize_all = "snake_case")]
pub enum StatusFilter {
    #[default]
    Accepted,
    Duplicate,
    Spam,
    Unconfirmed,
    /// Held in a flood, waiting for a review (issue 17).
    Held,
    All,
}

impl StatusFilter {
    /// `accepted`, `duplicate`, `spam`, `unconfirmed`, `held` or `all`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl std::str::FromStr for StatusFilter {
    type Err = FilterError;

    /// One of the codes, as the command line and the query string give it.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        super::variant_named(text).ok_or_else(|| FilterError::BadStatus(text.to_owned()))
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
    pub after_id: Option<SubmissionId>,
    /// …and before this one.
    pub before_id: Option<SubmissionId>,
    /// Only accepted sign-ups in this follow-up state.
    pub followup: Option<FollowupState>,
    /// Only overdue sign-ups: still `new` and signed up before this instant (now less
    /// `followup.remind_after`).
    pub overdue_before: Option<Timestamp>,
}

impl ExportFilter {
    /// Refuses a filter that can select nothing by its own terms (`since` not before
    /// `until`: most likely the two were swapped; overdue with a follow-up state other
    /// than `new`; a follow-up filter with spam or duplicates): an empty export would
    /// hide the mistake.
    ///
    /// # Errors
    /// [`FilterError::EmptyRange`], [`FilterError::OverdueNotNew`],
    /// [`FilterError::FollowupNotAccepted`].
    pub fn check(&self) -> Result<(), FilterError> {
        if let (Some(since), Some(until)) = (self.since, self.until)
            && since >= until
        {
            return Err(FilterError::EmptyRange { since, until });
        }
        if let (Some(state), Some(_)) = (self.followup, self.overdue_before)
            && state != FollowupState::New
        {
            return Err(FilterError::OverdueNotNew(state));
        }
        let followed_up = self.followup.is_some() || self.overdue_before.is_some();
        if followed_up
            && matches!(
                self.status,
                StatusFilter::Duplicate
                    | StatusFilter::Spam
                    | StatusFilter::Unconfirmed
                    | StatusFilter::Held
            )
        {
            return Err(FilterError::FollowupNotAccepted(self.status));
        }
        Ok(())
    }

    /// The rows of `submissions` this filter selects.
    pub fn selection(&self) -> Selection<'_> {
        Selection {
            sections: self.sections.as_deref(),
            country: self.country,
            status: match self.status {
                StatusFilter::Accepted => Some(SubmissionStatus::Accepted),
                StatusFilter::Duplicate => Some(SubmissionStatus::Duplicate),
                StatusFilter::Spam => Some(SubmissionStatus::Spam),
                StatusFilter::Unconfirmed => Some(SubmissionStatus::Unconfirmed),
                StatusFilter::Held => Some(SubmissionStatus::Held),
                StatusFilter::All => None,
            },
            since: self.since,
            until: self.until,
            after_id: self.after_id,
            before_id: self.before_id,
            followup: self.followup,
            overdue_before: self.overdue_before,
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
            "after_id": self.after_id.map(|id| id.to_string()),
            "followup": self.followup.map(FollowupState::as_str),
            "overdue_before": self.overdue_before.map(|t| t.to_string()),
        })
    }
}
