//! `[retention]`: how long data is kept.

use serde::{Deserialize, Serialize};

use super::{ConfigError, within};

/// How long data is kept; `joinform purge` and the server's daily purge apply it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSettings {
    /// Accepted (and duplicate) submissions are deleted this many days after sign-up.
    pub accepted_days: u32,
    /// Spam is deleted this many days after it arrived.
    pub spam_days: u32,
    /// Sent and failed notifications are deleted this many days after they were queued.
    pub outbox_days: u32,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            accepted_days: 730,
            spam_days: 30,
            outbox_days: 30,
        }
    }
}

impl RetentionSettings {
    /// Checks that each period keeps data at least a day and at most a century.
    ///
    /// # Errors
    /// The first period outside 1..=36500 days, by its key.
    pub fn check(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("retention.accepted_days", self.accepted_days),
            ("retention.spam_days", self.spam_days),
            ("retention.outbox_days", self.outbox_days),
        ] {
            within(key, value, 1..=36_500)?;
        }
        Ok(())
    }
}
