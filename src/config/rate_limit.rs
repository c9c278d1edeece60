//! `[rate_limit]`: how often clients may post, one by one and all together.

use serde::{Deserialize, Serialize};

use super::{ConfigError, within};

/// Request rate limits on the public form endpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Sustained posts per minute from one client.
    pub per_ip_per_minute: u32,
    /// Posts one client may make at once before the sustained rate applies.
    pub per_ip_burst: u32,
    /// Posts per second from everyone together.
    pub global_per_second: u32,
    /// Sign-ups stored per address in 24 hours; past it, posts are dropped.
    pub per_email_per_day: u32,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            per_ip_per_minute: 10,
            per_ip_burst: 5,
            global_per_second: 200,
            per_email_per_day: 5,
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
        ] {
            within(key, value, 1..=1_000_000)?;
        }
        Ok(())
    }
}
