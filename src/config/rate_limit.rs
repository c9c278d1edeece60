//! `[rate_limit]`: how often clients may post, one by one and all together.

use serde::{Deserialize, Serialize};

use super::{ConfigError, within};

/// Request rate limits on the public form endpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Sustained posts per minute from one client; the same again for form tokens,
    /// and for the visitor's pages (confirm, withdraw, my data).
    pub per_ip_per_minute: u32,
    /// Posts one client may make at once before the sustained rate applies (likewise
    /// for tokens and the visitor's pages).
    pub per_ip_burst: u32,
    /// Posts per second from everyone together.
    pub global_per_second: u32,
    /// Sign-ups stored per address in 24 hours; past it, posts are dropped.
    pub per_email_per_day: u32,
    /// Requests per minute from one client to the follow-up pages (`/followup/…`):
    /// organisers make two per mark (the POST and the page it leads back to), so far
    /// more than the form's.
    pub followup_per_minute: u32,
    /// Follow-up page requests one client may make at once.
    pub followup_burst: u32,
    /// Mails to visitors (confirmations, notices, access links) sent per hour, all
    /// addresses together; past it they wait in the outbox, so joinform cannot be made
    /// a mail cannon. Each address gets at most one mail a day besides.
    pub visitor_mails_per_hour: u32,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            per_ip_per_minute: 10,
            per_ip_burst: 5,
            global_per_second: 200,
            per_email_per_day: 5,
            followup_per_minute: 120,
            followup_burst: 60,
            visitor_mails_per_hour: 100,
        }
    }
}

impl RateLimitSettings {
    /// Checks that every limit lets something through and fits the rate limiter.
    ///
    /// # Errors
    /// The first limit outside 1..=1000000, by its key.
    pub fn check(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("rate_limit.per_ip_per_minute", self.per_ip_per_minute),
            ("rate_limit.per_ip_burst", self.per_ip_burst),
            ("rate_limit.global_per_second", self.global_per_second),
            ("rate_limit.per_email_per_day", self.per_email_per_day),
            ("rate_limit.followup_per_minute", self.followup_per_minute),
            ("rate_limit.followup_burst", self.followup_burst),
            (
                "rate_limit.visitor_mails_per_hour",
                self.visitor_mails_per_hour,
            ),
        ] {
            within(key, value, 1..=1_000_000)?;
        }
        Ok(())
    }
}
