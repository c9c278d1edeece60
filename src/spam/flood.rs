//! Flood defence (issue 17): how fast sign-ups are coming in, compared with the
//! configured quiet day's peak (`spam.pow_baseline_per_minute`). Over it, the
//! proof-of-work challenges grow harder and sign-ups that proved nothing are held
//! for review instead of notified; when the flood ends, both fall back within a
//! minute.
//!
//! The rate is the number of sign-ups taken in during the last 60 seconds (a sliding
//! window of one-second buckets), counted when each is decided, before it is written:
//! however many requests are in flight at once, no more than the baseline a minute
//! are let through unproved.

use std::sync::Mutex;
use std::time::Instant;

/// The window the rate is measured over.
const WINDOW_SECONDS: u64 = 60;

/// The difficulty and hold rule of the moment, from the intake rate.
#[derive(Debug)]
pub struct FloodGauge {
    started: Instant,
    baseline: u32,
    quiet: u64,
    peak: u64,
    /// `(second since start, sign-ups in it)`, one slot per second of the window.
    buckets: Mutex<[(u64, u32); WINDOW_SECONDS as usize]>,
}

impl FloodGauge {
    /// `baseline` sign-ups a minute are a quiet day's peak; challenges cost `quiet`
    /// (their `maxnumber`) up to it, more above it, at most `peak`.
    pub fn new(baseline: u32, quiet: u64, peak: u64) -> Self {
        Self {
            started: Instant::now(),
            baseline: baseline.max(1),
            quiet,
            peak: peak.max(quiet),
            buckets: Mutex::new([(u64::MAX, 0); WINDOW_SECONDS as usize]),
        }
    }

    /// Counts one sign-up taken in at `now`; `true` when the sign-ups of the minute
    /// before it were already at or over the baseline: it is then held unless it
    /// carries a valid proof of work.
    pub fn take_in(&self, now: Instant) -> bool {
        let second = self.second(now);
        let mut buckets = self.lock();
        let per_minute = Self::sum(&buckets[..], second);
        let slot = &mut buckets[(second % WINDOW_SECONDS) as usize];
        if slot.0 != second {
            *slot = (second, 0);
        }
        slot.1 = slot.1.saturating_add(1);
        per_minute >= self.baseline
    }

    /// Sign-ups taken in during the minute before `now`.
    pub fn per_minute(&self, now: Instant) -> u32 {
        Self::sum(&self.lock()[..], self.second(now))
    }

    /// The `maxnumber` a challenge issued at `now` gets: `quiet` up to the baseline,
    /// then growing with the square of the rate's ratio to it (2× the baseline: 4×
    /// the work; 10×: 100×), at most `peak`. The square makes an attacker's cost
    /// rise faster than their rate, while a busy but honest day (a little over the
    /// baseline) costs its visitors little more.
    pub fn difficulty(&self, now: Instant) -> u64 {
        let rate = self.per_minute(now);
        if rate <= self.baseline {
            return self.quiet;
        }
        let ratio = f64::from(rate) / f64::from(self.baseline);
        let scaled = (self.quiet as f64) * ratio * ratio;
        if scaled >= self.peak as f64 {
            self.peak
        } else {
            // Below `peak`, a u64: the cast cannot truncate.
            (scaled as u64).max(self.quiet)
        }
    }

    /// The baseline, sign-ups a minute.
    pub fn baseline(&self) -> u32 {
        self.baseline
    }

    fn second(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.started).as_secs()
    }

    fn sum(buckets: &[(u64, u32)], second: u64) -> u32 {
        let oldest = second.saturating_sub(WINDOW_SECONDS - 1);
        buckets
            .iter()
            .filter(|(at, _)| *at != u64::MAX && *at >= oldest && *at <= second)
            .map(|(_, count)| *count)
            .fold(0_u32, u32::saturating_add)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, [(u64, u32); WINDOW_SECONDS as usize]> {
        // A panic elsewhere while counting leaves plain numbers behind: still usable.
        self.buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(gauge: &FloodGauge, seconds: u64) -> Instant {
        gauge.started + Duration::from_secs(seconds)
    }

    #[test]
    fn the_baseline_is_let_through_then_everything_is_over_it_until_a_minute_passes() {
        let gauge = FloodGauge::new(30, 1_000, 1_000_000);
        let now = at(&gauge, 5);
        let over: Vec<bool> = (0..100).map(|_| gauge.take_in(now)).collect();
        assert_eq!(over.iter().filter(|over| !**over).count(), 30);
        assert!(over[30..].iter().all(|over| *over));
        assert_eq!(gauge.per_minute(at(&gauge, 64)), 100, "still in the window");
        assert_eq!(gauge.per_minute(at(&gauge, 65)), 0, "a minute later");
        assert!(!gauge.take_in(at(&gauge, 65)));
    }

    #[test]
    fn difficulty_rises_with_the_square_of_the_rate_and_falls_back_when_it_ends() {
        let gauge = FloodGauge::new(10, 1_000, 50_000);
        let start = at(&gauge, 100);
        assert_eq!(gauge.difficulty(start), 1_000, "quiet");
        for _ in 0..10 {
            gauge.take_in(start);
        }
        assert_eq!(gauge.difficulty(start), 1_000, "at the baseline");
        for _ in 0..10 {
            gauge.take_in(start);
        }
        assert_eq!(gauge.difficulty(start), 4_000, "twice the baseline: 4×");
        for _ in 0..30 {
            gauge.take_in(at(&gauge, 130));
        }
        assert_eq!(gauge.difficulty(at(&gauge, 130)), 25_000, "5×: 25×");
        for _ in 0..100 {
            gauge.take_in(at(&gauge, 140));
        }
        assert_eq!(gauge.difficulty(at(&gauge, 140)), 50_000, "capped at peak");
        assert_eq!(
            gauge.difficulty(at(&gauge, 185)),
            50_000,
            "the last 130 are still in the window"
        );
        assert_eq!(gauge.difficulty(at(&gauge, 200)), 1_000, "falls back");
    }

    #[test]
    fn buckets_are_reused_round_the_window_without_old_counts() {
        let gauge = FloodGauge::new(1_000, 1_000, 1_000);
        for second in 0..300 {
            gauge.take_in(at(&gauge, second));
            assert!(gauge.per_minute(at(&gauge, second)) <= 60);
        }
        assert_eq!(gauge.per_minute(at(&gauge, 299)), 60);
    }
}
