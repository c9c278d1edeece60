//! Durations as the file writes them: whole numbers with a unit, `30s`, `15m`, `1h`,
//! `3d`, alone or combined (`1h 30m`).
//!
//! humantime reads and writes them; this module only keeps the file's rule of whole
//! numbers and says what went wrong in the words the file's comments use.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use humantime::DurationError;
use serde::{Deserialize, Serialize};

/// A duration of the configuration: read from and written as text such as `30s`,
/// `15m`, `1h`, `3d` or `1h 30m` (see its `FromStr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(Duration);

impl HumanDuration {
    /// `duration` long.
    pub const fn new(duration: Duration) -> Self {
        Self(duration)
    }

    /// `milliseconds` long.
    pub const fn from_millis(milliseconds: u64) -> Self {
        Self(Duration::from_millis(milliseconds))
    }

    /// `seconds` long.
    pub const fn from_secs(seconds: u64) -> Self {
        Self(Duration::from_secs(seconds))
    }

    /// The duration itself.
    pub fn get(self) -> Duration {
        self.0
    }

    /// As the file's comments write durations, in days, hours, minutes and seconds
    /// (`60d`, `1h 30m`): what `check-config` shows. `Display` counts in humantime's
    /// months and years (`60d` is `1month 29days 13h 26m 24s`), which nobody wrote.
    /// Reads back through `from_str` as the same duration.
    pub fn in_file_units(self) -> String {
        if self.0.subsec_nanos() != 0 {
            return self.to_string();
        }
        let mut left = self.0.as_secs();
        let mut parts = Vec::new();
        for (unit, seconds) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
            if left >= seconds {
                parts.push(format!("{}{unit}", left / seconds));
                left %= seconds;
            }
        }
        if parts.is_empty() {
            "0s".to_owned()
        } else {
            parts.join(" ")
        }
    }
}

impl FromStr for HumanDuration {
    type Err = String;

    /// Parses `30s`, `15m`, `1h`, `3d` or a sum of such (`1h 30m`), with spaces allowed
    /// around and between them. humantime's longer unit names (`sec`, `hours`, `days`,
    /// `weeks`, ...) are accepted too.
    ///
    /// # Errors
    /// A message quoting the text and saying what is wrong: a fraction (`1.5h`), a
    /// missing or unknown unit, a value too long to hold, or no duration at all.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let not_a_duration = || format!("`{text}` is not a duration such as 30s, 15m, 1h or 3d");
        // humantime reads `1.5h`, but the file has always asked for whole numbers, and
        // a decimal comma (`1,5h`) deserves the same answer rather than "not a
        // duration".
        let fractional = text
            .as_bytes()
            .windows(2)
            .any(|pair| pair[0].is_ascii_digit() && matches!(pair[1], b'.' | b','));
        if fractional {
            return Err(format!(
                "{}: whole numbers only (90m, not 1.5h)",
                not_a_duration()
            ));
        }
        humantime::parse_duration(text)
            .map(Self)
            .map_err(|error| match error {
                DurationError::UnknownUnit { .. } => {
                    // humantime's units are lower-case and many (`3 days`, `2w`); name
                    // the usual ones, since `3D` or `5 Min` is the common slip.
                    format!("`{text}`: unknown unit: write a lower-case unit such as ms, s, m, h, d or w (500ms, 30s, 15m, 3d)")
                }
                DurationError::NumberOverflow => format!("`{text}` is too long"),
                _ => not_a_duration(),
            })
    }
}

/// As humantime writes it (`30s`, `1day`, `1h 30m`), which `from_str` reads back as the
/// same duration.
impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        humantime::format_duration(self.0).fmt(f)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const UNITS: [(&str, u64); 4] = [("s", 1), ("m", 60), ("h", 3600), ("d", 86_400)];

    proptest! {
        /// What the file has always accepted, a whole number and one of four units
        /// with spaces around, still means what it meant.
        #[test]
        fn a_number_and_a_unit_mean_what_they_always_did(
            number in 0_u64..=u64::MAX / 86_400,
            unit in 0_usize..4,
            before in " {0,2}",
            between in " {0,2}",
            after in " {0,2}",
        ) {
            let (name, seconds) = UNITS[unit];
            let text = format!("{before}{number}{between}{name}{after}");
            prop_assert_eq!(text.parse(), Ok(HumanDuration::from_secs(number * seconds)));
        }

        /// What is written out is read back as the same duration.
        #[test]
        fn a_written_duration_reads_back(seconds in 0_u64..=100 * 365 * 86_400) {
            let duration = HumanDuration::from_secs(seconds);
            prop_assert_eq!(duration.to_string().parse(), Ok(duration));
            prop_assert_eq!(duration.in_file_units().parse(), Ok(duration));
        }
    }

    #[test]
    fn a_bad_duration_is_explained() {
        let cases = [
            ("1.5h", "whole numbers only", "a fraction"),
            ("1,5h", "whole numbers only", "a decimal comma"),
            ("30", "unknown unit", "no unit"),
            ("30x", "unknown unit", "an unknown unit"),
            ("3D", "lower-case unit", "an upper-case unit"),
            ("h", "is not a duration such as 30s", "no number"),
            ("", "is not a duration such as 30s", "nothing"),
            ("-5s", "is not a duration such as 30s", "a sign"),
            ("99999999999999999999s", "is too long", "too many seconds"),
            ("213503982334602d", "is too long", "too many days"),
        ];
        for (text, expected, reason) in cases {
            let problem = text.parse::<HumanDuration>().expect_err(reason);
            assert!(problem.contains(expected), "{reason}: {problem}");
            assert!(
                problem.contains(&format!("`{text}`")),
                "{reason}: {problem}"
            );
        }
    }

    #[test]
    fn file_units_are_days_hours_minutes_and_seconds() {
        for (seconds, written) in [
            (0, "0s"),
            (2, "2s"),
            (15 * 60, "15m"),
            (5400, "1h 30m"),
            (60 * 86_400, "60d"),
            (86_400 + 1, "1d 1s"),
        ] {
            assert_eq!(HumanDuration::from_secs(seconds).in_file_units(), written);
        }
    }

    #[test]
    fn sums_and_long_unit_names_are_read() {
        assert_eq!("1h 30m".parse(), Ok(HumanDuration::from_secs(5400)));
        assert_eq!("2 days".parse(), Ok(HumanDuration::from_secs(2 * 86_400)));
    }
}
