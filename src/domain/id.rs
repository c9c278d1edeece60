//! The id of a stored submission.

use std::fmt;

use uuid::Uuid;

use super::Timestamp;

/// The opaque id a visitor is given. Time-ordered (UUID v7), so new rows append to the
/// primary-key index instead of landing at random pages.
///
/// Ids order as their creation times do (to the millisecond), in their bytes and in
/// their hyphenated text alike (RFC 9562 §5.7), so `Ord` is time order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubmissionId(Uuid);

impl SubmissionId {
    pub fn generate() -> Self {
        // The random bits only need to make ids distinct, not secret: an id grants
        // nothing. A fast generator spares a system call per request.
        let millis = Timestamp::now().unix_millis();
        let random: [u8; 10] = std::array::from_fn(|_| fastrand::u8(..));
        Self(uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid())
    }

    /// The smallest id a submission created at `instant` can have: every id created
    /// then or later orders at or after it (time-range bounds of exports).
    pub fn first_at(instant: Timestamp) -> Self {
        Self(uuid::Builder::from_unix_timestamp_millis(instant.unix_millis(), &[0; 10]).into_uuid())
    }

    /// Reads an id in any of the UUID text forms; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        Uuid::try_parse(text).ok().map(Self)
    }
}

impl fmt::Display for SubmissionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.as_hyphenated().fmt(f)
    }
}
