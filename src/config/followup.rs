//! `[followup]`: when organisers are reminded of sign-ups nobody has followed up, when
//! the section's contacts are told, how long the links in those mails work and how
//! often the digest goes out.

use serde::{Deserialize, Serialize};

use super::{ConfigError, HumanDuration, ServerSettings};

/// The follow-up of sign-ups: organisers mark each one through signed links in mails.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FollowupSettings {
    /// Whether follow-up mails are sent. Unset: on exactly when `server.public_url` is
    /// set, since every follow-up mail is made of links. Read it through
    /// [`FollowupSettings::is_enabled`], which applies that rule.
    pub enabled: Option<bool>,
    /// A sign-up still `new` this long after it arrived earns its organisers a reminder.
    pub remind_after: HumanDuration,
    /// A sign-up still `new` this long after it arrived is escalated to the fallback's
    /// contacts (counts and ages only); longer than `remind_after`.
    pub escalate_after: HumanDuration,
    /// How long a link in a follow-up mail works after the mail was written.
    pub link_ttl: HumanDuration,
    /// How often the server looks for sign-ups due a reminder or an escalation.
    pub check_every: HumanDuration,
    /// How often each section's contacts get a summary of their sign-ups.
    pub digest: DigestSchedule,
}

/// How often the digest mail goes out; written in the file (and by `check-config`) in
/// lower case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum DigestSchedule {
    /// No digest.
    Off,
    /// Once a day.
    Daily,
    /// Once a week.
    Weekly,
}

impl Default for FollowupSettings {
    fn default() -> Self {
        Self {
            enabled: None,
            remind_after: HumanDuration::from_secs(3 * DAY),
            escalate_after: HumanDuration::from_secs(7 * DAY),
            link_ttl: HumanDuration::from_secs(60 * DAY),
            check_every: HumanDuration::from_secs(15 * 60),
            digest: DigestSchedule::Weekly,
        }
    }
}

const DAY: u64 = 24 * 3600;
/// The longest period any key takes: past it, a value is a typo, and expiry instants
/// stay far from the limits of the clock's arithmetic.
const LONGEST: HumanDuration = HumanDuration::from_secs(3650 * DAY);

impl FollowupSettings {
    /// Whether follow-up runs: `followup.enabled` when set, else whether
    /// `server.public_url` is.
    pub fn is_enabled(&self, server: &ServerSettings) -> bool {
        self.enabled.unwrap_or(server.public_url.is_some())
    }

    /// Checks the periods' bounds and order, and that follow-up, when asked for, has a
    /// public address to link to. The periods are checked even when follow-up is off,
    /// so turning it on later cannot reveal an old mistake.
    ///
    /// Lower bounds are seconds, not days, so tests can run the whole cycle quickly.
    ///
    /// # Errors
    /// The first value out of range, out of order or missing, by its key.
    pub fn check(&self, server: &ServerSettings) -> Result<(), ConfigError> {
        if self.enabled == Some(true) && server.public_url.is_none() {
            return Err(ConfigError::bad(
                "followup.enabled",
                "is true but server.public_url is not set: follow-up mails link to it",
            ));
        }
        for (key, value, least, least_text) in [
            ("followup.remind_after", self.remind_after, 1, "1s"),
            ("followup.escalate_after", self.escalate_after, 1, "1s"),
            ("followup.link_ttl", self.link_ttl, 60, "1m"),
            ("followup.check_every", self.check_every, 1, "1s"),
        ] {
            if value < HumanDuration::from_secs(least) || value > LONGEST {
                return Err(ConfigError::bad(
                    key,
                    format!("must be between {least_text} and 3650d"),
                ));
            }
        }
        if self.escalate_after <= self.remind_after {
            return Err(ConfigError::bad(
                "followup.escalate_after",
                format!(
                    "{} must be longer than followup.remind_after ({}): the reminder comes first",
                    self.escalate_after.in_file_units(),
                    self.remind_after.in_file_units()
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    /// A file with `extra` and the fallback every file needs.
    fn load(extra: &str) -> Result<Settings, ConfigError> {
        let file = format!(
            "{extra}\n[fallback]\nname = \"X\"\ncontacts = [\"a@example.org\"]\nlanguage = \"en\"\n"
        );
        Settings::from_toml(Some(&file), false)
    }

    #[test]
    fn the_defaults_are_off_without_a_public_url() {
        let settings = load("").unwrap();
        let followup = &settings.followup;
        assert_eq!(followup.enabled, None);
        assert!(!settings.followup_enabled());
        assert_eq!(followup.remind_after, HumanDuration::from_secs(3 * DAY));
        assert_eq!(followup.escalate_after, HumanDuration::from_secs(7 * DAY));
        assert_eq!(followup.link_ttl, HumanDuration::from_secs(60 * DAY));
        assert_eq!(followup.check_every, HumanDuration::from_secs(15 * 60));
        assert_eq!(followup.digest, DigestSchedule::Weekly);
    }

    #[test]
    fn a_public_url_turns_follow_up_on_unless_it_is_turned_off() {
        let on = load("[server]\npublic_url = \"https://join.example.org\"\n").unwrap();
        assert!(on.followup_enabled());
        let off = load(
            "[server]\npublic_url = \"https://join.example.org\"\n[followup]\nenabled = false\n",
        )
        .unwrap();
        assert!(!off.followup_enabled());
    }

    #[test]
    fn enabled_without_a_public_url_is_refused_naming_both_keys() {
        let error = load("[followup]\nenabled = true\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("followup.enabled") && error.contains("server.public_url"),
            "{error}"
        );
    }

    #[test]
    fn periods_and_digest_are_read() {
        let settings = load(
            "[followup]\nremind_after = \"2s\"\nescalate_after = \"3s\"\nlink_ttl = \"1m\"\n\
             check_every = \"1s\"\ndigest = \"daily\"\n",
        )
        .unwrap();
        let followup = &settings.followup;
        assert_eq!(followup.remind_after, HumanDuration::from_secs(2));
        assert_eq!(followup.escalate_after, HumanDuration::from_secs(3));
        assert_eq!(followup.link_ttl, HumanDuration::from_secs(60));
        assert_eq!(followup.check_every, HumanDuration::from_secs(1));
        assert_eq!(followup.digest, DigestSchedule::Daily);
        let off = load("[followup]\ndigest = \"off\"\n").unwrap();
        assert_eq!(off.followup.digest, DigestSchedule::Off);
    }

    #[test]
    fn bad_periods_are_refused_by_their_key() {
        let cases = [
            (
                "remind_after = \"0s\"",
                "followup.remind_after",
                "no wait at all",
            ),
            (
                "check_every = \"0s\"",
                "followup.check_every",
                "a busy loop",
            ),
            (
                "link_ttl = \"59s\"",
                "followup.link_ttl",
                "a link too short-lived to click",
            ),
            (
                "link_ttl = \"3651d\"",
                "followup.link_ttl",
                "a link for over ten years",
            ),
            (
                "remind_after = \"7d\"",
                "followup.escalate_after",
                "escalation as early as the reminder",
            ),
            (
                "remind_after = \"8d\"",
                "followup.escalate_after",
                "escalation before the reminder",
            ),
            ("digest = \"monthly\"", "digest", "an unknown schedule"),
            ("unknown = 1", "unknown", "an unknown key"),
        ];
        for (line, key, reason) in cases {
            let error = load(&format!("[followup]\n{line}\n"))
                .expect_err(reason)
                .to_string();
            assert!(error.contains(key), "{reason}: {error}");
        }
    }
}
