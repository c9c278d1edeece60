//! What joinform decided about a submission, and whether its visitor must confirm it.

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
    /// Double opt-in: stored, waiting for its visitor to confirm through the link mailed
    /// to them; never notified or exported unless asked for, and purged after
    /// `form.confirm_within`.
    Unconfirmed,
    /// Held during a flood: it proved nothing (no valid proof of work) while sign-ups
    /// came in faster than `spam.pow_baseline_per_minute`, or past
    /// `rate_limit.global_per_second`. Stored and answered like a sign-up, never
    /// notified or followed up until a review releases it.
    Held,
}

impl SubmissionStatus {
    /// The code: `accepted`, `duplicate`, `spam`, `unconfirmed` or `held`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The statuses an operator reviews (`joinform review`, `/admin/review`): sign-ups
/// held during a flood and sign-ups the spam checks flagged. Both are released or
/// discarded the same way.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString, strum::VariantArray,
)]
#[strum(serialize_all = "snake_case")]
pub enum ReviewStatus {
    Held,
    Spam,
}

impl ReviewStatus {
    /// The code, as the `status` column holds it: `held` or `spam`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The stored status this is.
    pub fn stored(self) -> SubmissionStatus {
        match self {
            Self::Held => SubmissionStatus::Held,
            Self::Spam => SubmissionStatus::Spam,
        }
    }
}

/// What a visitor hears after a sign-up is accepted (`form.confirmation`, overridable
/// per section). Spam and duplicates never cause a mail to a visitor.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    strum::IntoStaticStr,
    strum::VariantArray,
    strum::Display,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ConfirmationMode {
    /// Nothing ever goes to the visitor's address.
    #[default]
    Off,
    /// One mail: what they sent, who will contact them, and a withdraw link.
    Notice,
    /// The section is told only once the visitor confirms through the mailed link
    /// (double opt-in); until then the sign-up is [`SubmissionStatus::Unconfirmed`].
    DoubleOptIn,
}

impl ConfirmationMode {
    /// `off`, `notice` or `double_opt_in`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}
