//! The id of a stored submission.

use std::fmt;

use uuid::Uuid;

use super::Timestamp;

/// How far the instant in a submission's id may be from its `created_at`: both are read
/// from the clock when the request arrives, one after the other, microseconds apart
/// unless the clock is set between the two reads. Time ranges widened by this, as id
/// ranges, hold every submission of the time range.
pub const ID_SLACK: std::time::Duration = std::time::Duration::from_secs(60);

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

    /// An id that orders at or before every id of a submission created at or after
    /// `instant`: the lower bound of a time range as a range of ids (see [`ID_SLACK`]).
    pub fn at_or_before(instant: Timestamp) -> Self {
        Self::first_at(instant.minus(ID_SLACK))
    }

    /// An id that orders after every id of a submission created before `instant`: the
    /// upper bound of a time range as a range of ids (see [`ID_SLACK`]).
    pub fn after(instant: Timestamp) -> Self {
        Self::first_at(instant.plus(ID_SLACK))
    }

    /// The id's 16 bytes (RFC 9562 order), as signed links carry it.
    pub fn to_bytes(self) -> [u8; 16] {
        self.0.into_bytes()
    }

    /// The id whose bytes `to_bytes` gave.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(Uuid::from_bytes(bytes))
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
