//! Keys the file no longer documents but still reads: durations once written as bare
//! numbers with their unit in the key's name (`retention.accepted_days = 730`), now
//! human durations under a name without it (`retention.accepted = "730d"`).
//!
//! Each table keeps such an old key as an `Option<u64>` that is read but never written
//! (so defaults and `check-config` show only the new key), beside a [`Renamed`] saying
//! which duration it feeds and in what unit. [`Settings::fold_deprecated`], run once
//! after loading, turns each old key that was set into its new key's value; the old
//! field stays set, so checks and warnings can name the key the operator wrote.

use std::ops::RangeInclusive;
use std::time::Duration;

use super::{ConfigError, HumanDuration, Settings, mail, retention, spam, storage};

/// The unit an old key counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unit {
    /// `_ms`
    Millis,
    /// `_seconds`
    Seconds,
    /// `_days`
    Days,
}

impl Unit {
    /// `count` of this unit. A count too large to hold becomes the longest duration,
    /// which every range check refuses.
    fn duration(self, count: u64) -> HumanDuration {
        let duration = match self {
            Self::Millis => Some(Duration::from_millis(count)),
            Self::Seconds => Some(Duration::from_secs(count)),
            Self::Days => count.checked_mul(86_400).map(Duration::from_secs),
        };
        HumanDuration::new(duration.unwrap_or(Duration::MAX))
    }

    /// How many of this unit `duration` holds, rounded down: a bound as the old key
    /// wrote it.
    fn count(self, duration: HumanDuration) -> u128 {
        let duration = duration.get();
        match self {
            Self::Millis => duration.as_millis(),
            Self::Seconds => u128::from(duration.as_secs()),
            Self::Days => u128::from(duration.as_secs() / 86_400),
        }
    }
}

/// A duration key that replaced a key holding a bare number of `unit`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Renamed {
    /// The key as the file documents it: `retention.accepted`.
    pub new: &'static str,
    /// The deprecated key: `retention.accepted_days`.
    pub old: &'static str,
    /// What the old key counted.
    pub unit: Unit,
}

impl Renamed {
    /// The key the operator wrote: the old one when `old` (its value) is set.
    pub fn written(self, old: Option<u64>) -> &'static str {
        if old.is_some() { self.old } else { self.new }
    }

    /// Checks that `value` lies in `range`, naming the key the operator wrote (`old`
    /// set: the deprecated key) and giving the bounds in that key's units.
    ///
    /// # Errors
    /// `key: must be between START and END` when it does not.
    pub fn within(
        self,
        old: Option<u64>,
        value: HumanDuration,
        range: RangeInclusive<HumanDuration>,
    ) -> Result<(), ConfigError> {
        if range.contains(&value) {
            return Ok(());
        }
        let (start, end) = (*range.start(), *range.end());
        let problem = if old.is_some() {
            format!(
                "must be between {} and {}",
                self.unit.count(start),
                self.unit.count(end)
            )
        } else {
            format!(
                "must be between {} and {}",
                start.in_file_units(),
                end.in_file_units()
            )
        };
        Err(ConfigError::bad(self.written(old), problem))
    }

    /// Sets `new` from `old`, when the old key was set; `new_written` says whether the
    /// operator also wrote the new key.
    ///
    /// # Errors
    /// Both keys set: which value wins would be a guess.
    fn fold(
        self,
        old: Option<u64>,
        new: &mut HumanDuration,
        new_written: bool,
    ) -> Result<(), ConfigError> {
        let Some(count) = old else { return Ok(()) };
        if new_written {
            return Err(ConfigError::bad(
                self.old,
                format!(
                    "is the deprecated name of {}, which is set too: keep only {}",
                    self.new, self.new
                ),
            ));
        }
        *new = self.unit.duration(count);
        Ok(())
    }
}

impl Settings {
    /// Turns each deprecated key that was set into its new key's value.
    /// `written(key)` says whether the file or the environment set `key` (rather than
    /// the defaults).
    ///
    /// # Errors
    /// An old key and its new key both set, naming both.
    pub(super) fn fold_deprecated(
        &mut self,
        written: impl Fn(&str) -> bool,
    ) -> Result<(), ConfigError> {
        let Self {
            storage,
            spam,
            retention,
            mail,
            ..
        } = self;
        for (key, old, new) in [
            (
                storage::BUSY_TIMEOUT,
                storage.busy_timeout_ms,
                &mut storage.busy_timeout,
            ),
            (spam::MIN_FILL, spam.min_fill_seconds, &mut spam.min_fill),
            (
                retention::ACCEPTED,
                retention.accepted_days,
                &mut retention.accepted,
            ),
            (retention::SPAM, retention.spam_days, &mut retention.spam),
            (
                retention::OUTBOX,
                retention.outbox_days,
                &mut retention.outbox,
            ),
            (
                mail::SMTP_TIMEOUT,
                mail.smtp.timeout_seconds,
                &mut mail.smtp.timeout,
            ),
        ] {
            key.fold(old, new, written(key.new))?;
        }
        Ok(())
    }

    /// One line per deprecated key in use, saying what to write instead:
    /// `retention.accepted_days is deprecated: write retention.accepted = "730d"`.
    pub fn deprecation_warnings(&self) -> Vec<String> {
        [
            (
                storage::BUSY_TIMEOUT,
                self.storage.busy_timeout_ms,
                self.storage.busy_timeout,
            ),
            (
                spam::MIN_FILL,
                self.spam.min_fill_seconds,
                self.spam.min_fill,
            ),
            (
                retention::ACCEPTED,
                self.retention.accepted_days,
                self.retention.accepted,
            ),
            (
                retention::SPAM,
                self.retention.spam_days,
                self.retention.spam,
            ),
            (
                retention::OUTBOX,
                self.retention.outbox_days,
                self.retention.outbox,
            ),
            (
                mail::SMTP_TIMEOUT,
                self.mail.smtp.timeout_seconds,
                self.mail.smtp.timeout,
            ),
        ]
        .into_iter()
        .filter(|(_, old, _)| old.is_some())
        .map(|(key, _, value)| {
            format!(
                "{} is deprecated: write {} = \"{}\" instead",
                key.old,
                key.new,
                value.in_file_units()
            )
        })
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file with `extra` and the fallback every file needs.
    fn load(extra: &str) -> Result<Settings, ConfigError> {
        let file = format!(
            "{extra}\n[fallback]\nname = \"X\"\ncontacts = [\"a@example.org\"]\nlanguage = \"en\"\n"
        );
        Settings::from_toml(Some(&file), false)
    }

    /// Each old key, as a file wrote it, and the new key's text for the same value.
    const OLD_AND_NEW: [(&str, &str, &str, &str); 6] = [
        (
            "storage",
            "busy_timeout_ms = 2500",
            "busy_timeout",
            "2s 500ms",
        ),
        ("spam", "min_fill_seconds = 7", "min_fill", "7s"),
        ("retention", "accepted_days = 365", "accepted", "365d"),
        ("retention", "spam_days = 14", "spam", "14d"),
        ("retention", "outbox_days = 90", "outbox", "90d"),
        ("mail.smtp", "timeout_seconds = 20", "timeout", "20s"),
    ];

    #[test]
    fn each_old_key_means_what_it_meant() {
        for (table, old, new, text) in OLD_AND_NEW {
            let by_old = load(&format!("[{table}]\n{old}\n")).expect(old);
            let by_new = load(&format!("[{table}]\n{new} = \"{text}\"\n")).expect(new);
            let durations = |s: &Settings| {
                [
                    s.storage.busy_timeout,
                    s.spam.min_fill,
                    s.retention.accepted,
                    s.retention.spam,
                    s.retention.outbox,
                    s.mail.smtp.timeout,
                ]
            };
            assert_eq!(durations(&by_old), durations(&by_new), "{old}");
            assert_ne!(
                durations(&by_old),
                durations(&Settings::default()),
                "{old}: not the default"
            );
            let old_key = format!("{table}.{}", old.split(' ').next().unwrap());
            assert_eq!(
                by_old.deprecation_warnings(),
                [format!(
                    "{old_key} is deprecated: write {table}.{new} = \"{text}\" instead"
                )],
            );
            assert!(by_new.deprecation_warnings().is_empty(), "{new}");
        }
        let busy = load("[storage]\nbusy_timeout_ms = 2500\n").unwrap();
        assert_eq!(busy.storage.busy_timeout.get(), Duration::from_millis(2500));
    }

    #[test]
    fn an_old_key_beside_its_new_one_is_refused_naming_both() {
        for (table, old, new, text) in OLD_AND_NEW {
            let problem = load(&format!("[{table}]\n{old}\n{new} = \"{text}\"\n"))
                .expect_err(old)
                .to_string();
            let old_key = format!("{table}.{}", old.split(' ').next().unwrap());
            assert!(problem.contains(&old_key), "{problem}");
            assert!(problem.contains(&format!("{table}.{new}")), "{problem}");
        }
        // The new key at its default value counts as set too.
        let problem = load("[retention]\naccepted_days = 730\naccepted = \"730d\"\n")
            .expect_err("both, same value")
            .to_string();
        assert!(problem.contains("retention.accepted_days"), "{problem}");
    }

    #[test]
    fn a_range_is_checked_in_the_units_of_the_key_written() {
        let cases = [
            (
                "[storage]\nbusy_timeout_ms = 99\n",
                "storage.busy_timeout_ms: must be between 100 and 600000",
            ),
            (
                "[storage]\nbusy_timeout = \"11m\"\n",
                "storage.busy_timeout: must be between 100ms and 10m",
            ),
            (
                "[spam]\nmin_fill_seconds = 3601\n",
                "spam.min_fill_seconds: must be between 0 and 3600",
            ),
            (
                "[spam]\nmin_fill = \"2h\"\n",
                "spam.min_fill: must be between 0s and 1h",
            ),
            (
                "[retention]\nspam_days = 0\n",
                "retention.spam_days: must be between 1 and 36500",
            ),
            (
                "[retention]\noutbox_days = 9223372036854775807\n",
                "retention.outbox_days: must be between 1 and 36500",
            ),
            (
                "[retention]\naccepted = \"23h\"\n",
                "retention.accepted: must be between 1d and 36500d",
            ),
            (
                "[mail.smtp]\ntimeout_seconds = 0\n",
                "mail.smtp.timeout_seconds: must be between 1 and 300",
            ),
            (
                "[mail.smtp]\ntimeout = \"301s\"\n",
                "mail.smtp.timeout: must be between 1s and 5m",
            ),
            (
                "[spam]\nmin_fill_seconds = 90000\n",
                "spam.min_fill_seconds: must be between 0 and 3600",
            ),
            (
                "[spam]\nmin_fill_seconds = 60\ntoken_max_age = \"1m\"\n",
                "spam.token_max_age: must be longer than spam.min_fill_seconds",
            ),
            (
                "[spam]\ntoken_max_age = \"3s\"\n",
                "spam.token_max_age: must be longer than spam.min_fill",
            ),
        ];
        for (file, expected) in cases {
            let problem = load(file).expect_err(file).to_string();
            assert_eq!(problem, expected, "{file}");
        }
    }

    #[test]
    fn defaults_and_written_settings_hold_no_old_key() {
        let defaults = toml::Table::try_from(Settings::default()).unwrap();
        let text = toml::to_string(&defaults).unwrap();
        for old in ["_ms", "_seconds", "_days"] {
            assert!(!text.contains(old), "{old} in\n{text}");
        }
    }
}
