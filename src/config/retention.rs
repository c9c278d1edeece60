//! `[retention]`: how long data is kept.

use serde::{Deserialize, Serialize};

use super::deprecated::{Renamed, Unit};
use super::{ConfigError, HumanDuration};

/// `retention.accepted`, once `retention.accepted_days`.
pub(super) const ACCEPTED: Renamed = Renamed {
    new: "retention.accepted",
    old: "retention.accepted_days",
    unit: Unit::Days,
};
/// `retention.spam`, once `retention.spam_days`.
pub(super) const SPAM: Renamed = Renamed {
    new: "retention.spam",
    old: "retention.spam_days",
    unit: Unit::Days,
};
/// `retention.outbox`, once `retention.outbox_days`.
pub(super) const OUTBOX: Renamed = Renamed {
    new: "retention.outbox",
    old: "retention.outbox_days",
    unit: Unit::Days,
};

const DAY: u64 = 86_400;

/// How long data is kept; `joinform purge` and the server's daily purge apply it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSettings {
    /// Accepted (and duplicate) submissions are deleted this long after sign-up.
    pub accepted: HumanDuration,
    /// Spam is deleted this long after it arrived.
    pub spam: HumanDuration,
    /// Sent and failed notifications are deleted this long after they were queued.
    pub outbox: HumanDuration,
    /// Deprecated: `accepted` in days. Read, never written; folded into `accepted` on
    /// loading (see `config::deprecated`).
    #[serde(skip_serializing)]
    pub accepted_days: Option<u64>,
    /// Deprecated: `spam` in days, as `accepted_days`.
    #[serde(skip_serializing)]
    pub spam_days: Option<u64>,
    /// Deprecated: `outbox` in days, as `accepted_days`.
    #[serde(skip_serializing)]
    pub outbox_days: Option<u64>,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            accepted: HumanDuration::from_secs(730 * DAY),
            spam: HumanDuration::from_secs(30 * DAY),
            outbox: HumanDuration::from_secs(30 * DAY),
            accepted_days: None,
            spam_days: None,
            outbox_days: None,
        }
    }
}

impl RetentionSettings {
    /// Checks that each period keeps data at least a day and at most a century.
    ///
    /// # Errors
    /// The first period outside 1d..=36500d, by the key it was written as.
    pub fn check(&self) -> Result<(), ConfigError> {
        for (key, old, value) in [
            (ACCEPTED, self.accepted_days, self.accepted),
            (SPAM, self.spam_days, self.spam),
            (OUTBOX, self.outbox_days, self.outbox),
        ] {
            key.within(
                old,
                value,
                HumanDuration::from_secs(DAY)..=HumanDuration::from_secs(36_500 * DAY),
            )?;
        }
        Ok(())
    }
}
