//! `[spam]`: the honeypot, form tokens, content rules and duplicates.

use serde::{Deserialize, Serialize};

use secrecy::ExposeSecret;

use super::deprecated::{Renamed, Unit};
use super::{ConfigError, FormSettings, HumanDuration, SecretSetting};

/// `spam.min_fill`, once `spam.min_fill_seconds`.
pub(super) const MIN_FILL: Renamed = Renamed {
    new: "spam.min_fill",
    old: "spam.min_fill_seconds",
    unit: Unit::Seconds,
};

/// The range of `spam.pow_maxnumber`: from a few milliseconds on a phone to many
/// seconds.
pub const POW_MAXNUMBER: std::ops::RangeInclusive<u64> = 1_000..=100_000_000;

/// The spam checks: honeypot, form token, content rules and duplicates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpamSettings {
    /// The field humans never fill.
    pub honeypot_field: String,
    /// The key behind form tokens, at least 32 characters; generated beside the
    /// database when unset. (Audit hashes have a key of their own, `audit.key`.)
    pub secret: Option<SecretSetting>,
    /// Whether a post without a form token is spam.
    pub require_token: bool,
    /// A token younger than this is spam: nobody fills the form that fast.
    pub min_fill: HumanDuration,
    /// Deprecated: `min_fill` in seconds. Read, never written; folded into `min_fill`
    /// on loading (see `config::deprecated`).
    #[serde(skip_serializing)]
    pub min_fill_seconds: Option<u64>,
    /// A token older than this is spam.
    pub token_max_age: HumanDuration,
    /// The most links a message may carry before it scores.
    pub max_links: usize,
    /// Phrases (case-insensitive) that score when found in any text field.
    pub blocked_phrases: Vec<String>,
    /// Regular expressions that score when they match any text field.
    pub blocked_patterns: Vec<String>,
    /// The score at which a submission is spam.
    pub threshold: u32,
    /// Another sign-up of the same address within this window is a duplicate.
    pub duplicate_window: HumanDuration,
    /// Whether spam is stored (with its reasons) or discarded.
    pub keep: bool,
    /// The proof of work's quiet difficulty (issue 17): the largest secret number a
    /// challenge from GET /join/challenge may hide, so the average work is half of it
    /// in SHA-256 hashes. A solution to a challenge issued easier than this is refused.
    pub pow_maxnumber: u64,
    /// The hardest a challenge gets under a flood (its `maxnumber`), whatever the rate.
    pub pow_peak_maxnumber: u64,
    /// How long a proof-of-work challenge may be solved and posted.
    pub pow_ttl: HumanDuration,
    /// A quiet day's peak of sign-ups a minute. Over it, challenges grow harder (with
    /// the square of the rate's ratio to it) and sign-ups without a valid proof of
    /// work are held for review instead of notified; a minute after the rate falls
    /// back under it, both end.
    pub pow_baseline_per_minute: u32,
}

impl Default for SpamSettings {
    fn default() -> Self {
        Self {
            honeypot_field: "_gotcha".to_owned(),
            secret: None,
            require_token: false,
            min_fill: HumanDuration::from_secs(3),
            min_fill_seconds: None,
            token_max_age: HumanDuration::from_secs(24 * 3600),
            max_links: 1,
            blocked_phrases: Vec::new(),
            blocked_patterns: Vec::new(),
            threshold: 5,
            duplicate_window: HumanDuration::from_secs(24 * 3600),
            keep: true,
            pow_maxnumber: 2_000,
            pow_peak_maxnumber: 200_000,
            pow_ttl: HumanDuration::from_secs(600),
            pow_baseline_per_minute: 20,
        }
    }
}

impl SpamSettings {
    /// The configured `secret`'s text, for `ServerSecret::load`; `None` when unset.
    /// Named like secrecy's own method so that every place a secret is read shows up
    /// in one search.
    pub fn expose_secret(&self) -> Option<&str> {
        self.secret.as_ref().map(ExposeSecret::expose_secret)
    }

    /// Checks what serde cannot. The honeypot must not be one of `form`'s fields, or
    /// every honest post would be spam.
    ///
    /// # Errors
    /// The first value out of range or malformed, by its key.
    pub fn check(&self, form: &FormSettings) -> Result<(), ConfigError> {
        let honeypot = &self.honeypot_field;
        let honeypot_ok = (1..=32).contains(&honeypot.len())
            && honeypot
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            && !crate::domain::STANDARD_FIELDS.contains(&honeypot.as_str())
            && honeypot != crate::domain::PROOF_OF_WORK_FIELD
            && !form.extra_fields.iter().any(|f| &f.name == honeypot);
        if !honeypot_ok {
            return Err(ConfigError::bad(
                "spam.honeypot_field",
                "must be 1-32 characters of letters, digits, _ and -, and not the name of \
                 another field",
            ));
        }
        if let Some(secret) = &self.secret
            && secret.expose_secret().chars().count() < crate::secret::MIN_SECRET_CHARS
        {
            return Err(ConfigError::bad(
                "spam.secret",
                format!(
                    "must be at least {} characters (or unset, to generate one)",
                    crate::secret::MIN_SECRET_CHARS
                ),
            ));
        }
        MIN_FILL.within(
            self.min_fill_seconds,
            self.min_fill,
            HumanDuration::from_secs(0)..=HumanDuration::from_secs(3600),
        )?;
        if self.token_max_age <= self.min_fill {
            return Err(ConfigError::bad(
                "spam.token_max_age",
                format!(
                    "must be longer than {}",
                    MIN_FILL.written(self.min_fill_seconds)
                ),
            ));
        }
        for (index, pattern) in self.blocked_patterns.iter().enumerate() {
            // The size limit the content check compiles them with, so a pattern too
            // large for it is named here rather than silently dropped there.
            regex::RegexBuilder::new(pattern)
                .size_limit(1 << 20)
                .build()
                .map_err(|error| {
                    ConfigError::bad(format!("spam.blocked_patterns[{index}]"), error.to_string())
                })?;
        }
        if self.blocked_phrases.iter().any(|p| p.trim().is_empty()) {
            return Err(ConfigError::bad(
                "spam.blocked_phrases",
                "must not hold an empty phrase",
            ));
        }
        if !POW_MAXNUMBER.contains(&self.pow_maxnumber) {
            return Err(ConfigError::bad(
                "spam.pow_maxnumber",
                format!(
                    "must be {}..={}",
                    POW_MAXNUMBER.start(),
                    POW_MAXNUMBER.end()
                ),
            ));
        }
        if !POW_MAXNUMBER.contains(&self.pow_peak_maxnumber) {
            return Err(ConfigError::bad(
                "spam.pow_peak_maxnumber",
                format!(
                    "must be {}..={}",
                    POW_MAXNUMBER.start(),
                    POW_MAXNUMBER.end()
                ),
            ));
        }
        if self.pow_peak_maxnumber < self.pow_maxnumber {
            return Err(ConfigError::bad(
                "spam.pow_peak_maxnumber",
                "must not be lower than spam.pow_maxnumber",
            ));
        }
        if !(1..=1_000_000).contains(&self.pow_baseline_per_minute) {
            return Err(ConfigError::bad(
                "spam.pow_baseline_per_minute",
                "must be 1..=1000000",
            ));
        }
        if !(HumanDuration::from_secs(10)..=HumanDuration::from_secs(24 * 3600))
            .contains(&self.pow_ttl)
        {
            return Err(ConfigError::bad("spam.pow_ttl", "must be 10s..=24h"));
        }
        if self.threshold == 0 {
            return Err(ConfigError::bad("spam.threshold", "must be at least 1"));
        }
        Ok(())
    }
}
