//! Where the organisers are with an accepted sign-up, and the kinds of mail the outbox
//! holds.

/// The follow-up state of an accepted sign-up, as the `followup` column holds it: the
/// snake_case name. `New` until someone marks it; `Contacted` once somebody got in
/// touch; then one of the three outcomes.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
    strum::Display,
)]
#[strum(serialize_all = "snake_case")]
pub enum FollowupState {
    New,
    Contacted,
    Joined,
    Declined,
    Unreachable,
}

impl FollowupState {
    /// The states a sign-up can be marked with: every one but `New`, which only a
    /// sign-up nobody has marked yet has.
    pub const MARKS: [Self; 4] = [
        Self::Contacted,
        Self::Joined,
        Self::Declined,
        Self::Unreachable,
    ];

    /// The code: `new`, `contacted`, `joined`, `declined` or `unreachable`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Parses a state a sign-up may be marked with (see [`Self::MARKS`]).
    ///
    /// # Errors
    /// [`BadMark`] for `new` (a mark cannot be taken back to it) and for anything that
    /// is not a state's code.
    pub fn parse_mark(text: &str) -> Result<Self, BadMark> {
        match text.parse::<Self>() {
            Ok(Self::New) => Err(BadMark::New),
            Ok(state) => Ok(state),
            Err(_) => Err(BadMark::Unknown(text.chars().take(32).collect())),
        }
    }
}

/// Why a text is not a state a sign-up can be marked with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadMark {
    #[error(
        "a sign-up cannot be marked `new` again; marks are contacted, joined, declined, unreachable"
    )]
    New,
    #[error("`{0}` is not a follow-up state; marks are contacted, joined, declined, unreachable")]
    Unknown(String),
}

/// What a row of the outbox is, as its `kind` column holds it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
    strum::Display,
)]
#[strum(serialize_all = "snake_case")]
pub enum MailKind {
    /// A new sign-up, to its section's contacts.
    Notification,
    /// A section's sign-ups still `new` after `followup.remind_after`, to its contacts.
    Reminder,
    /// Counts and ages of sections' sign-ups still `new` after
    /// `followup.escalate_after`, to the fallback's contacts. No personal data.
    Escalation,
    /// A section's day or week: new, still open, done.
    Digest,
    /// To a visitor (double opt-in): the link that confirms their sign-up.
    Confirmation,
    /// To a visitor: what they sent, who will contact them, and a withdraw link.
    Notice,
    /// To a visitor who asked on `/my-data`: the link to what is stored about them.
    Access,
    /// To a section's contacts, at most one an hour: the notifications past
    /// `mail.max_notifications_per_section_per_hour`, listed in one mail, and how many
    /// sign-ups a flood left held for review.
    Overflow,
}

impl MailKind {
    /// The code: `notification`, `reminder`, `escalation`, `digest`, `confirmation`,
    /// `notice`, `access` or `overflow`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Whether it goes to a visitor's own address (and so counts against
    /// `rate_limit.visitor_mails_per_hour` and the one mail per address per day).
    pub fn is_to_visitor(self) -> bool {
        matches!(self, Self::Confirmation | Self::Notice | Self::Access)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_every_state_but_new() {
        assert_eq!(
            FollowupState::parse_mark("joined"),
            Ok(FollowupState::Joined)
        );
        assert_eq!(FollowupState::parse_mark("new"), Err(BadMark::New));
        assert!(matches!(
            FollowupState::parse_mark("Joined"),
            Err(BadMark::Unknown(_))
        ));
        for state in FollowupState::MARKS {
            assert_eq!(FollowupState::parse_mark(state.as_str()), Ok(state));
        }
    }
}
