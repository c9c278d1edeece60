//! How quickly sign-ups are followed up: the figures `joinform followup stats` prints,
//! computed from what the store reads (`store::followup::contact_times`), with no I/O,
//! so they can be checked against hand-made rows.
//!
//! - **Time to first contact** of a sign-up: from its sign-up to the first time it left
//!   `new` (`contacted_at`). Over a window (the last 30 or 90 days), the median and the
//!   90th percentile are taken over the window's sign-ups that were contacted.
//! - **Percentiles** are nearest-rank: the p-th percentile of n sorted values is the
//!   value at rank ⌈p·n/100⌉ (1-based). It is always one of the observed times, never an
//!   interpolation, so "p90 = 5h" means a real sign-up waited 5 h; with 3 values the
//!   median is the middle one and the p90 the largest.
//! - **Contacted within `followup.remind_after`**: the share of the window's sign-ups
//!   whose outcome is known: those contacted (in time or late) and those still
//!   uncontacted past `remind_after`. A sign-up younger than that and not yet contacted
//!   may still be contacted in time, so it counts neither way.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::domain::Timestamp;
use crate::store::followup::ContactTime;

/// The figures of one window (all sections, or one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowFigures {
    /// Accepted sign-ups in the window.
    pub signed_up: u64,
    /// Those of them contacted so far.
    pub contacted: u64,
    /// Median time to first contact of the contacted ones (nearest rank).
    pub median: Option<Duration>,
    /// 90th percentile of the same (nearest rank).
    pub p90: Option<Duration>,
    /// Sign-ups whose outcome is known: contacted, or uncontacted past `remind_after`.
    pub decided: u64,
    /// Of those, the ones contacted within `remind_after`.
    pub in_time: u64,
}

impl WindowFigures {
    /// `in_time` out of `decided`, in whole per cent (rounded half up); `None` when no
    /// outcome is known yet.
    pub fn percent_in_time(&self) -> Option<u64> {
        (self.decided > 0).then(|| (self.in_time * 200 + self.decided) / (self.decided * 2))
    }
}

/// The figures of the sign-ups among `rows` that came in the `window` before `now`.
pub fn window_figures<'a>(
    rows: impl IntoIterator<Item = &'a ContactTime>,
    now: Timestamp,
    window: Duration,
    remind_after: Duration,
) -> WindowFigures {
    let start = now.minus(window);
    let deadline_passed_before = now.minus(remind_after);
    let mut figures = WindowFigures::default();
    let mut waits = Vec::new();
    for row in rows.into_iter().filter(|row| row.waiting_since >= start) {
        figures.signed_up += 1;
        match row.contacted_at {
            Some(contacted_at) => {
                let wait = contacted_at.since(row.waiting_since);
                figures.contacted += 1;
                figures.decided += 1;
                if wait <= remind_after {
                    figures.in_time += 1;
                }
                waits.push(wait);
            }
            // Overdue as everywhere else (`store::followup::waiting`): waiting longer
            // than `remind_after`, i.e. signed up strictly before now less it.
            None if row.waiting_since < deadline_passed_before => figures.decided += 1,
            None => {}
        }
    }
    waits.sort_unstable();
    figures.median = nearest_rank(&waits, 50);
    figures.p90 = nearest_rank(&waits, 90);
    figures
}

/// The `percent`-th percentile of `sorted` (ascending) by the nearest-rank method: the
/// value at rank ⌈percent·n/100⌉, counting from 1 (the smallest for 0). `None` for no
/// values.
pub fn nearest_rank(sorted: &[Duration], percent: u32) -> Option<Duration> {
    let n = sorted.len();
    let percent = usize::try_from(percent.min(100)).unwrap_or(100);
    let rank = (percent * n).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// The figures of `rows` by section, in section order, and over all of them.
pub fn by_section(
    rows: &[ContactTime],
    now: Timestamp,
    window: Duration,
    remind_after: Duration,
) -> (BTreeMap<&str, WindowFigures>, WindowFigures) {
    let mut sections: BTreeMap<&str, Vec<&ContactTime>> = BTreeMap::new();
    for row in rows {
        sections.entry(row.section.as_str()).or_default().push(row);
    }
    let each = sections
        .into_iter()
        .map(|(section, rows)| (section, window_figures(rows, now, window, remind_after)))
        .collect();
    (each, window_figures(rows, now, window, remind_after))
}

/// A duration as people read it, its two largest units, rounded down: `2d 4h`, `3h 5m`,
/// `35m`, `42s`.
pub fn human(duration: Duration) -> String {
    let seconds = duration.as_secs();
    let (days, hours, minutes) = (seconds / 86_400, seconds / 3600 % 24, seconds / 60 % 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{seconds}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3600;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn at(now: Timestamp, ago: u64) -> Timestamp {
        now.minus(secs(ago))
    }

    /// A sign-up `ago` seconds before `now`, contacted `wait` seconds after it.
    fn row(section: &str, now: Timestamp, ago: u64, wait: Option<u64>) -> ContactTime {
        let waiting_since = at(now, ago);
        ContactTime {
            section: section.to_owned(),
            waiting_since,
            contacted_at: wait.map(|wait| waiting_since.plus(secs(wait))),
        }
    }

    /// Overdue means waiting longer than `remind_after`, as the lists and reminders
    /// count it: a sign-up exactly `remind_after` old is not overdue yet.
    #[test]
    fn overdue_starts_after_remind_after_as_in_the_lists() {
        let now = Timestamp::now();
        let remind_after = secs(3 * 24 * HOUR);
        let exactly = [row("A", now, 3 * 24 * HOUR, None)];
        let past = [row("A", now, 3 * 24 * HOUR + 1, None)];
        let window = secs(30 * 24 * HOUR);
        assert_eq!(
            window_figures(&exactly, now, window, remind_after).decided,
            0
        );
        assert_eq!(window_figures(&past, now, window, remind_after).decided, 1);
    }

    #[test]
    fn nearest_rank_takes_an_observed_value() {
        let values: Vec<Duration> = (1..=10).map(secs).collect();
        let cases = [
            (&values[..], 50, Some(5), "rank ⌈5⌉ = 5 of 10"),
            (&values[..], 90, Some(9), "rank ⌈9⌉ = 9 of 10"),
            (&values[..], 91, Some(10), "rank ⌈9.1⌉ = 10"),
            (&values[..], 100, Some(10), "the largest"),
            (&values[..], 0, Some(1), "the smallest"),
            (&values[..3], 50, Some(2), "the middle of three"),
            (&values[..3], 90, Some(3), "⌈2.7⌉ = 3: the largest of three"),
            (
                &values[..2],
                50,
                Some(1),
                "⌈1⌉ = 1: the lower of two, not a mean",
            ),
            (&values[..1], 90, Some(1), "one value is every percentile"),
            (&[][..], 50, None, "no values, no percentile"),
        ];
        for (sorted, percent, expected, reason) in cases {
            assert_eq!(
                nearest_rank(sorted, percent),
                expected.map(secs),
                "{reason}"
            );
        }
    }

    #[test]
    fn a_window_counts_its_own_sign_ups_and_judges_only_known_outcomes() {
        let now = Timestamp::now();
        let remind_after = secs(3 * 24 * HOUR);
        let rows = [
            row("A", now, 10 * 24 * HOUR, Some(HOUR)),    // in time
            row("A", now, 9 * 24 * HOUR, Some(2 * HOUR)), // in time
            row("A", now, 8 * 24 * HOUR, Some(4 * 24 * HOUR)), // late
            row("A", now, 5 * 24 * HOUR, None),           // overdue: decided, not in time
            row("A", now, HOUR, None),                    // may still be in time: undecided
            row("A", now, 40 * 24 * HOUR, Some(60)),      // outside 30 days
        ];
        let month = window_figures(&rows, now, secs(30 * 24 * HOUR), remind_after);
        assert_eq!(
            month,
            WindowFigures {
                signed_up: 5,
                contacted: 3,
                median: Some(secs(2 * HOUR)),
                p90: Some(secs(4 * 24 * HOUR)),
                decided: 4,
                in_time: 2,
            }
        );
        assert_eq!(month.percent_in_time(), Some(50));
        let quarter = window_figures(&rows, now, secs(90 * 24 * HOUR), remind_after);
        assert_eq!((quarter.signed_up, quarter.contacted), (6, 4));
        assert_eq!(quarter.median, Some(secs(HOUR)), "⌈2⌉ of [1m, 1h, 2h, 4d]");
        assert_eq!(quarter.percent_in_time(), Some(60));
    }

    #[test]
    fn an_empty_window_has_no_times_and_no_share() {
        let figures = window_figures(&[], Timestamp::now(), secs(HOUR), secs(60));
        assert_eq!(figures, WindowFigures::default());
        assert_eq!(figures.percent_in_time(), None);
    }

    #[test]
    fn shares_round_half_up() {
        let share = |in_time, decided| {
            WindowFigures {
                decided,
                in_time,
                ..WindowFigures::default()
            }
            .percent_in_time()
        };
        assert_eq!(share(2, 3), Some(67));
        assert_eq!(share(1, 3), Some(33));
        assert_eq!(share(1, 8), Some(13), "12.5 rounds up");
        assert_eq!(share(3, 3), Some(100));
    }

    #[test]
    fn sections_are_summed_apart_and_together() {
        let now = Timestamp::now();
        let rows = [
            row("Sweden", now, 2 * HOUR, Some(HOUR)),
            row("Norway", now, 5 * HOUR, Some(3 * HOUR)),
            row("Norway", now, 6 * HOUR, None),
        ];
        let (each, total) = by_section(&rows, now, secs(24 * HOUR), secs(4 * HOUR));
        assert_eq!(
            each.keys().copied().collect::<Vec<_>>(),
            ["Norway", "Sweden"]
        );
        assert_eq!(each["Norway"].signed_up, 2);
        assert_eq!(each["Norway"].percent_in_time(), Some(50));
        assert_eq!(each["Sweden"].median, Some(secs(HOUR)));
        assert_eq!((total.signed_up, total.contacted, total.in_time), (3, 2, 2));
    }

    #[test]
    fn durations_read_as_their_two_largest_units() {
        let cases = [
            (0, "0s"),
            (42, "42s"),
            (35 * 60 + 59, "35m"),
            (HOUR, "1h"),
            (3 * HOUR + 5 * 60, "3h 5m"),
            (2 * 86_400 + 4 * HOUR + 59 * 60, "2d 4h"),
            (3 * 86_400 + 59, "3d"),
        ];
        for (seconds, text) in cases {
            assert_eq!(human(secs(seconds)), text);
        }
    }
}
