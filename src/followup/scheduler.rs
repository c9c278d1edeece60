//! The follow-up scheduler: a task beside the delivery worker that, every
//! `followup.check_every` (and once at start), queues the reminders, escalations and
//! digests that are due, then wakes the worker. What they say is read only when they
//! are sent ([`super::mails`]).
//!
//! Each mail is an outbox row keyed by (kind, section, period), inserted with
//! `ON CONFLICT DO NOTHING` (`store::outbox::schedule`): however often the scheduler
//! runs, however many times the server restarts and however many servers share the
//! database, a section gets at most one reminder a day, the fallback one escalation a
//! day, and each section one digest a day or week.
//!
//! Periods come from the wall clock's UTC date. A clock set forward skips ahead to a
//! later period (its mails are queued then); a clock set back re-enters a period that
//! already has its rows, so nothing is sent twice.

use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;
use time::{Date, Month, OffsetDateTime, Weekday};
use tokio::sync::{Notify, watch};

use crate::config::{DigestSchedule, FollowupSettings};
use crate::domain::{MailKind, Timestamp};
use crate::routing::Routing;
use crate::store::followup::waiting_counts;
use crate::store::outbox;
use crate::store::{StoreError, Writer};

/// What to queue, from the settings and the sections: everything a round needs, so the
/// round itself runs on the writer thread without the async side.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Every configured section's name, then the fallback's.
    sections: Vec<String>,
    fallback: String,
    remind_after: Duration,
    escalate_after: Duration,
    digest: DigestSchedule,
    /// The sender's domain, for the Message-IDs.
    message_domain: String,
}

impl Plan {
    pub fn new(settings: &FollowupSettings, routing: &Routing, message_domain: &str) -> Self {
        Self {
            sections: routing
                .sections_and_fallback()
                .map(|section| section.name.clone())
                .collect(),
            fallback: routing.fallback().name.clone(),
            remind_after: settings.remind_after.get(),
            escalate_after: settings.escalate_after.get(),
            digest: settings.digest,
            message_domain: message_domain.to_owned(),
        }
    }

    /// Queues what is due at `now`, in the caller's transaction: a reminder for each
    /// section with a sign-up that has become overdue (still `new` after
    /// `remind_after`) since its last reminder, an escalation to the fallback when a
    /// sign-up has passed `escalate_after` since the last escalation, and each
    /// section's digest for the current period. Returns how many rows were queued (rows queued
    /// before for the same period are left alone and not counted).
    ///
    /// # Errors
    /// A failed query or insert.
    pub fn queue(&self, connection: &Connection, now: Timestamp) -> Result<usize, StoreError> {
        let today = day(now);
        let mut queued = 0;
        let mut schedule = |kind, section: &str, period: &str| {
            outbox::schedule(connection, kind, section, period, &self.message_domain, now)
                .map(|inserted| queued += usize::from(inserted))
        };
        // Each sign-up brings about one reminder and one escalation, not one a day for
        // as long as nobody acts: a mail is due when some sign-up passed its bound
        // after the last one of its kind was queued. The mail itself lists every
        // sign-up still waiting, older ones included.
        let passed_since = |kind, section: &str, bound: Duration, newest: Timestamp| {
            outbox::last_queued(connection, kind, section).map(|last| match last {
                Some(last) => newest > last.minus(bound),
                None => true,
            })
        };
        for waiting in waiting_counts(connection, now.minus(self.remind_after))? {
            if passed_since(
                MailKind::Reminder,
                &waiting.section,
                self.remind_after,
                waiting.newest,
            )? {
                schedule(MailKind::Reminder, &waiting.section, &today)?;
            }
        }
        let escalated = waiting_counts(connection, now.minus(self.escalate_after))?;
        if let Some(newest) = escalated.iter().map(|waiting| waiting.newest).max()
            && passed_since(
                MailKind::Escalation,
                &self.fallback,
                self.escalate_after,
                newest,
            )?
        {
            schedule(MailKind::Escalation, &self.fallback, &today)?;
        }
        if let Some(period) = digest_period(self.digest, now) {
            for section in &self.sections {
                schedule(MailKind::Digest, section, &period)?;
            }
        }
        Ok(queued)
    }
}

/// The scheduler task; built at start-up when follow-up is on.
pub struct Scheduler {
    pub plan: Arc<Plan>,
    pub writer: Writer,
    pub every: Duration,
    /// The delivery worker's wake-up, signalled after a round queued something.
    pub wake: Arc<Notify>,
}

impl Scheduler {
    /// Runs a round at once, then every `every`, until `stopping` turns true. Each
    /// round is one job of the single writer.
    pub async fn run(self, mut stopping: watch::Receiver<bool>) {
        tracing::info!("follow-up scheduler started");
        loop {
            let plan = Arc::clone(&self.plan);
            let now = Timestamp::now();
            match self.writer.run(move |c| plan.queue(c, now)).await {
                Ok(0) => {}
                Ok(queued) => {
                    tracing::info!(queued, "follow-up mails queued");
                    self.wake.notify_one();
                }
                Err(failure) => {
                    tracing::warn!(%failure, "follow-up mails not queued; next try next round");
                }
            }
            tokio::select! {
                () = tokio::time::sleep(self.every) => {}
                _ = stopping.wait_for(|stop| *stop) => break,
            }
        }
        tracing::info!("follow-up scheduler stopped");
    }
}

fn utc(now: Timestamp) -> OffsetDateTime {
    OffsetDateTime::from(now.to_system_time())
}

/// The UTC date of `now`: `2026-11-30`, a reminder's and escalation's period.
pub fn day(now: Timestamp) -> String {
    now.date_text()
}

/// The digest period `now` falls in: its UTC date, or its ISO week (`2026-W49`);
/// `None` when digests are off.
pub fn digest_period(schedule: DigestSchedule, now: Timestamp) -> Option<String> {
    match schedule {
        DigestSchedule::Off => None,
        DigestSchedule::Daily => Some(day(now)),
        DigestSchedule::Weekly => {
            let (year, week, _) = utc(now).date().to_iso_week_date();
            Some(format!("{year:04}-W{week:02}"))
        }
    }
}

/// When a period ([`day`] or an ISO week) starts, at midnight UTC (a week on its
/// Monday); `None` for text that is neither.
pub fn period_start(period: &str) -> Option<Timestamp> {
    let date = match period.split_once("-W") {
        Some((year, week)) => {
            Date::from_iso_week_date(year.parse().ok()?, week.parse().ok()?, Weekday::Monday)
                .ok()?
        }
        None => {
            let mut parts = period.splitn(3, '-');
            let year = parts.next()?.parse().ok()?;
            let month = Month::try_from(parts.next()?.parse::<u8>().ok()?).ok()?;
            Date::from_calendar_date(year, month, parts.next()?.parse().ok()?).ok()?
        }
    };
    Some(Timestamp::from_datetime(date.midnight().assume_utc()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SubmissionId;
    use crate::store::Database;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }

    fn sign_up(connection: &Connection, created: &str) {
        let created = at(created);
        connection
            .execute(
                "INSERT INTO submissions (id, created_at, name, email, country, consent,
                                          section, email_key, followup, followup_at)
                 VALUES (?1, ?2, 'Kari', 'k@example.org', 'NO', 1, 'Norway',
                         'k@example.org', 'new', ?2)",
                rusqlite::params![SubmissionId::first_at(created), created],
            )
            .unwrap();
    }

    fn queued(connection: &Connection, kind: &str) -> Vec<(String, String)> {
        connection
            .prepare("SELECT section, period FROM outbox WHERE kind = ?1 ORDER BY created_at")
            .unwrap()
            .query_map([kind], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// A sign-up nobody marks brings about one reminder and one escalation, not one a
    /// day; a later sign-up brings about the next ones, which list both.
    #[test]
    fn each_sign_up_is_reminded_of_and_escalated_once() {
        let dir = tempfile::tempdir().unwrap();
        let database = Database::new(dir.path().join("joinform.db"), Duration::from_secs(1));
        database.prepare().unwrap();
        let connection = database.connect().unwrap();
        let plan = Plan {
            sections: vec!["Norway".into(), "International".into()],
            fallback: "International".into(),
            remind_after: Duration::from_secs(3600),
            escalate_after: Duration::from_secs(7200),
            digest: DigestSchedule::Off,
            message_domain: "example.org".into(),
        };
        sign_up(&connection, "2026-12-01T10:00:00.000000Z");
        assert_eq!(
            plan.queue(&connection, at("2026-12-01T10:30:00.000000Z"))
                .unwrap(),
            0
        );
        assert_eq!(
            plan.queue(&connection, at("2026-12-01T12:30:00.000000Z"))
                .unwrap(),
            2
        );
        let day = |d: &str| d.to_owned();
        assert_eq!(
            queued(&connection, "reminder"),
            [("Norway".into(), day("2026-12-01"))]
        );
        assert_eq!(
            queued(&connection, "escalation"),
            [("International".into(), day("2026-12-01"))]
        );
        // Days later, still nobody has acted: nothing more (the digest says so).
        for now in ["2026-12-02T12:00:00.000000Z", "2026-12-05T12:00:00.000000Z"] {
            assert_eq!(plan.queue(&connection, at(now)).unwrap(), 0, "{now}");
        }
        // A new sign-up becomes overdue: the next day's reminder and escalation.
        sign_up(&connection, "2026-12-05T09:00:00.000000Z");
        assert_eq!(
            plan.queue(&connection, at("2026-12-05T10:30:00.000000Z"))
                .unwrap(),
            1
        );
        assert_eq!(
            plan.queue(&connection, at("2026-12-05T11:30:00.000000Z"))
                .unwrap(),
            1
        );
        assert_eq!(
            queued(&connection, "reminder"),
            [
                ("Norway".into(), day("2026-12-01")),
                ("Norway".into(), day("2026-12-05"))
            ]
        );
        assert_eq!(queued(&connection, "escalation").len(), 2);
        assert_eq!(
            plan.queue(&connection, at("2026-12-06T12:00:00.000000Z"))
                .unwrap(),
            0
        );
    }

    #[test]
    fn periods_are_the_utc_day_or_iso_week_and_start_at_midnight() {
        // A Sunday late in the day: still ISO week 49 (weeks start on Mondays).
        let now = Timestamp::parse("2026-12-06T23:59:59.000000Z").unwrap();
        assert_eq!(day(now), "2026-12-06");
        assert_eq!(
            digest_period(DigestSchedule::Daily, now).unwrap(),
            "2026-12-06"
        );
        assert_eq!(
            digest_period(DigestSchedule::Weekly, now).unwrap(),
            "2026-W49"
        );
        assert_eq!(digest_period(DigestSchedule::Off, now), None);
        // The first days of January can belong to the previous ISO year.
        let new_year = Timestamp::parse("2027-01-01T00:00:00.000000Z").unwrap();
        assert_eq!(
            digest_period(DigestSchedule::Weekly, new_year).unwrap(),
            "2026-W53"
        );
        assert_eq!(
            period_start("2026-12-06").unwrap().to_string(),
            "2026-12-06T00:00:00.000000Z"
        );
        assert_eq!(
            period_start("2026-W49").unwrap().to_string(),
            "2026-11-30T00:00:00.000000Z"
        );
        for bad in ["", "2026", "2026-13-01", "2026-W60", "x-W1", "2026-02-30"] {
            assert_eq!(period_start(bad), None, "{bad}");
        }
    }
}
