//! The id of a stored submission.

use std::fmt;

use uuid::Uuid;

use super::Timestamp;

/// The opaque id a visitor is given. Time-ordered (UUID v7), so new rows append to the
/// primary-key index instead of landing at random pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubmissionId(Uuid);

impl SubmissionId {
    pub fn generate() -> Self {
        // The random bits only need to make ids distinct, not secret: an id grants
        // nothing. A fast generator spares a system call per request.
        let millis = Timestamp::now().unix_millis();
        let random: [u8; 10] = std::array::from_fn(|_| fastrand::u8(..));
        Self(uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid())
    }
}

impl fmt::Display for SubmissionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.as_hyphenated().fmt(f)
    }
}
