//! What joinform decided about a submission.

/// What joinform decided about a submission, as the `status` column holds it: the
/// snake_case name of the variant.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString, strum::VariantArray,
)]
#[strum(serialize_all = "snake_case")]
pub enum SubmissionStatus {
    Accepted,
    Duplicate,
    Spam,
}

impl SubmissionStatus {
    /// The code: `accepted`, `duplicate` or `spam`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}
