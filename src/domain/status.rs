//! What joinform decided about a submission.

/// What joinform decided about a submission, as the `status` column holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmissionStatus {
    Accepted,
    Duplicate,
    Spam,
}

impl SubmissionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Duplicate => "duplicate",
            Self::Spam => "spam",
        }
    }
}
