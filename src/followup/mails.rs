//! The follow-up's mails, built by the delivery worker just before it sends them (the
//! [`FollowupMail`] it is given), from the data as it is then: a person erased or marked
//! since the row was queued is in none of them, and a reminder left with nobody to
//! remind of is cancelled.
//!
//! - **Reminder**, to a section's contacts: each of its sign-ups still `new` after
//!   `followup.remind_after` (first name, country, sign-up date, how long waiting) with
//!   its own link, and the link to the section's list.
//! - **Escalation**, to the fallback's contacts: the sections with sign-ups still `new`
//!   after `followup.escalate_after`, how many each and the oldest's age. Counts and
//!   ages only: no name, address, id or link to a person.
//! - **Digest**, to a section's contacts: the sign-ups and marks of the period before
//!   its own (the day or ISO week that just ended), what is still open, and the
//!   section's link; it says so plainly when nothing happened.
//!
//! Every one is in the section's language (`[followup]` of templates/mail/<tag>.toml,
//! else English), with the headers a notification has (From, To, Message-ID, Date,
//! Auto-Submitted) and one text/plain MIME part; to a section (or fallback) with
//! `pgp_keys`, encrypted as PGP/MIME under a fixed outer Subject
//! (`mail::message::to_section`).

use std::sync::Arc;
use std::time::Duration;

use askama::Template as _;
use lettre::Message;
use lettre::message::Mailbox;
use rusqlite::Connection;

use crate::config::{DigestSchedule, FollowupSettings};
use crate::domain::{FollowupState, MailKind, SubmissionId, Timestamp};
use crate::mail::FollowupMail;
use crate::mail::message::{self, BuildError, SectionMail};
use crate::mail::templates::{FollowupTexts, Templates, Units, render};
use crate::routing::{Routing, Section};
use crate::store::followup::{self, FollowupEntry};
use crate::store::outbox::DueScheduled;

use super::links::{LinkKey, PersonToken, SectionToken};
use super::scheduler::{day, digest_period, period_start};

/// Writes the follow-up links: `{public_url}/followup/{person token}` and
/// `{public_url}/followup/section/{section token}`, each good for `followup.link_ttl`.
#[derive(Debug, Clone)]
pub struct Links {
    key: LinkKey,
    /// `server.public_url` without its trailing slash.
    base: String,
    ttl: Duration,
}

impl Links {
    pub fn new(key: LinkKey, public_url: &str, ttl: Duration) -> Self {
        Self {
            key,
            base: public_url.trim_end_matches('/').to_owned(),
            ttl,
        }
    }

    /// The page of sign-up `id`, stored under `section`, written at `now`.
    pub fn person(&self, id: SubmissionId, section: &str, now: Timestamp) -> String {
        let token = PersonToken::issue(&self.key, id, section, now.plus(self.ttl));
        format!("{}/followup/{token}", self.base)
    }

    /// The list of `section`'s sign-ups, written at `now`.
    pub fn section(&self, section: &str, now: Timestamp) -> String {
        let token = SectionToken::issue(&self.key, section, now.plus(self.ttl));
        format!("{}/followup/section/{token}", self.base)
    }
}

/// Builds the follow-up's mails; given to the delivery worker at start-up.
/// The most sign-ups a reminder lists, the longest-waiting first; it counts the rest
/// and links to the section's list. Keeps a mail readable and its size bounded when a
/// section has let hundreds wait (as after follow-up is first turned on).
pub const MAIL_LIST_LIMIT: usize = 100;

pub struct FollowupMails {
    pub routing: Arc<Routing>,
    pub templates: Arc<Templates>,
    pub links: Links,
    pub remind_after: Duration,
    pub escalate_after: Duration,
}

impl FollowupMails {
    pub fn new(
        settings: &FollowupSettings,
        routing: Arc<Routing>,
        templates: Arc<Templates>,
        links: Links,
    ) -> Self {
        Self {
            routing,
            templates,
            links,
            remind_after: settings.remind_after.get(),
            escalate_after: settings.escalate_after.get(),
        }
    }

    /// The section a row is for; the fallback when it is no longer configured.
    fn section(&self, name: &str) -> &Section {
        self.routing
            .by_name(name)
            .unwrap_or_else(|| self.routing.fallback())
    }

    fn texts(&self, section: &Section) -> Result<&FollowupTexts, BuildError> {
        self.templates
            .followup(&section.language)
            .ok_or(BuildError::NoTemplate)
    }

    /// The footer of a mail that holds personal data: the notification's.
    fn personal_footer(&self, section: &Section) -> Result<&str, BuildError> {
        self.templates
            .for_language(&section.language)
            .map(|template| template.footer.as_str())
            .ok_or(BuildError::NoTemplate)
    }

    /// `- Kari, Norge (NO), signed up 2026-01-02{suffix}` and its link below.
    fn entry_lines(
        &self,
        section: &Section,
        entry: &FollowupEntry,
        suffix: &str,
        now: Timestamp,
    ) -> Result<[String; 2], BuildError> {
        let texts = self.texts(section)?;
        let country = message::country_text(&self.templates, section, entry.country);
        let date = entry.created_at.date_text();
        let name = entry.first_name();
        let line = render(
            &texts.entry,
            &[
                ("name", name.as_str()),
                ("country", &country),
                ("date", &date),
            ],
        );
        Ok([
            format!("- {line}{suffix}"),
            format!("  {}", self.links.person(entry.id, &entry.section, now)),
        ])
    }

    fn reminder(
        &self,
        connection: &Connection,
        due: &DueScheduled,
        from: &Mailbox,
        now: Timestamp,
    ) -> Result<Option<Message>, BuildError> {
        let before = now.minus(self.remind_after);
        let overdue = followup::waiting(
            connection,
            Some(std::slice::from_ref(&due.section)),
            Some(before),
            Some(MAIL_LIST_LIMIT),
        )
        .map_err(unreadable)?;
        if overdue.is_empty() {
            return Ok(None);
        }
        let total = followup::waiting_counts(connection, before)
            .map_err(unreadable)?
            .into_iter()
            .find(|waiting| waiting.section == due.section)
            .map_or(0, |waiting| waiting.count);
        let listed = u64::try_from(overdue.len()).unwrap_or(u64::MAX);
        let section = self.section(&due.section);
        let texts = self.texts(section)?;
        let after = duration_text(self.remind_after, &texts.units);
        let count = total.max(listed).to_string();
        let values = [
            ("section", due.section.as_str()),
            ("count", count.as_str()),
            ("after", after.as_str()),
        ];
        let subject = if total <= 1 {
            &texts.reminder.subject_one
        } else {
            &texts.reminder.subject
        };
        let mut list = Vec::with_capacity(overdue.len() * 2);
        for entry in &overdue {
            let waited = duration_text(now.since(entry.waiting_since), &texts.units);
            let suffix = format!(
                " ({})",
                render(&texts.reminder.waiting, &[("waited", &waited)])
            );
            list.extend(self.entry_lines(section, entry, &suffix, now)?);
        }
        if total > listed {
            let more = (total - listed).to_string();
            list.push(render(&texts.reminder.more, &[("count", more.as_str())]));
        }
        let blocks = vec![
            vec![render(&texts.reminder.intro, &values)],
            list,
            vec![self.section_link(texts, &due.section, now)],
        ];
        let text = body(blocks, self.personal_footer(section)?)?;
        message::to_section(
            section,
            from,
            SectionMail::Reminder,
            render(subject, &values),
            &due.message_id,
            now,
            text,
        )
        .map(Some)
    }

    fn escalation(
        &self,
        connection: &Connection,
        due: &DueScheduled,
        from: &Mailbox,
        now: Timestamp,
    ) -> Result<Option<Message>, BuildError> {
        let overdue = followup::waiting_counts(connection, now.minus(self.escalate_after))
            .map_err(unreadable)?;
        if overdue.is_empty() {
            return Ok(None);
        }
        // Always the fallback's contacts, whatever the row names.
        let section = self.routing.fallback();
        let texts = self.texts(section)?;
        let after = duration_text(self.escalate_after, &texts.units);
        let lines = overdue
            .iter()
            .map(|waiting| {
                let count = waiting.count.to_string();
                let waited = duration_text(now.since(waiting.oldest), &texts.units);
                let line = render(
                    &texts.escalation.line,
                    &[
                        ("section", waiting.section.as_str()),
                        ("count", count.as_str()),
                        ("waited", waited.as_str()),
                    ],
                );
                format!("- {line}")
            })
            .collect();
        let values = [("after", after.as_str())];
        let blocks = vec![
            vec![render(&texts.escalation.intro, &values)],
            lines,
            vec![texts.escalation.outro.clone()],
        ];
        let text = body(blocks, &texts.escalation.footer)?;
        let subject = render(&texts.escalation.subject, &values);
        message::to_section(
            section,
            from,
            SectionMail::Escalation,
            subject,
            &due.message_id,
            now,
            text,
        )
        .map(Some)
    }

    fn digest(
        &self,
        connection: &Connection,
        due: &DueScheduled,
        from: &Mailbox,
        now: Timestamp,
    ) -> Result<Option<Message>, BuildError> {
        let name = due.section.as_str();
        // The period before the digest's own, whole: queued as its period starts, a
        // digest reports the one that just ended, so consecutive digests neither miss
        // nor repeat a sign-up or a mark, whenever they are built or sent.
        let (since, until) = reported_window(&due.period).unwrap_or((due.queued_at, now));
        // The subject names the day or week reported, not the one the digest opens.
        let reported = if due.period.contains("-W") {
            digest_period(DigestSchedule::Weekly, since).unwrap_or_else(|| due.period.clone())
        } else {
            day(since)
        };
        let new =
            followup::signed_up_between(connection, name, since, until).map_err(unreadable)?;
        let oldest_new = followup::waiting(
            connection,
            Some(std::slice::from_ref(&due.section)),
            None,
            Some(1),
        )
        .map_err(unreadable)?;
        let open = followup::open_counts(connection).map_err(unreadable)?;
        let count_of = |wanted: FollowupState| {
            open.iter()
                .find(|(section, state, _)| section == name && *state == wanted)
                .map_or(0, |(_, _, count)| *count)
        };
        let (still_new, contacted) = (
            count_of(FollowupState::New),
            count_of(FollowupState::Contacted),
        );
        let marks = followup::marked_between(connection, name, since, until).map_err(unreadable)?;

        let section = self.section(name);
        let texts = self.texts(section)?;
        let digest = &texts.digest;
        let (since_text, until_text) = (since.minute_text(), until.minute_text());
        let mut blocks = vec![vec![render(
            &digest.intro,
            &[
                ("section", name),
                ("since", since_text.as_str()),
                ("until", until_text.as_str()),
            ],
        )]];
        if new.is_empty() && marks.is_empty() {
            blocks.push(vec![digest.nothing.clone()]);
        }
        if !new.is_empty() {
            let count = new.len().to_string();
            let mut list = vec![render(&digest.new, &[("count", count.as_str())])];
            for entry in &new {
                let suffix = format!(" ({})", state_name(texts, entry.state));
                list.extend(self.entry_lines(section, entry, &suffix, now)?);
            }
            blocks.push(list);
        }
        let (new_count, contacted_count) = (still_new.to_string(), contacted.to_string());
        let mut open = vec![render(
            &digest.open,
            &[
                ("new", new_count.as_str()),
                ("contacted", contacted_count.as_str()),
            ],
        )];
        if let Some(oldest) = oldest_new.first() {
            let waited = duration_text(now.since(oldest.created_at), &texts.units);
            open.push(render(&digest.oldest, &[("waited", waited.as_str())]));
        }
        blocks.push(open);
        if !marks.is_empty() {
            let marks = marks
                .iter()
                .map(|(state, count)| format!("{} {count}", state_name(texts, *state)))
                .collect::<Vec<_>>()
                .join(", ");
            blocks.push(vec![render(&digest.done, &[("marks", marks.as_str())])]);
        }
        blocks.push(vec![self.section_link(texts, name, now)]);
        let text = body(blocks, self.personal_footer(section)?)?;
        let subject = render(
            &digest.subject,
            &[("section", name), ("period", reported.as_str())],
        );
        message::to_section(
            section,
            from,
            SectionMail::Digest,
            subject,
            &due.message_id,
            now,
            text,
        )
        .map(Some)
    }

    fn section_link(&self, texts: &FollowupTexts, section: &str, now: Timestamp) -> String {
        render(
            &texts.section_link,
            &[
                ("section", section),
                ("link", &self.links.section(section, now)),
            ],
        )
    }
}

impl FollowupMail for FollowupMails {
    fn build(
        &self,
        connection: &Connection,
        due: &DueScheduled,
        from: &Mailbox,
        now: Timestamp,
    ) -> Result<Option<Message>, BuildError> {
        match due.kind {
            MailKind::Reminder => self.reminder(connection, due, from, now),
            MailKind::Escalation => self.escalation(connection, due, from, now),
            MailKind::Digest => self.digest(connection, due, from, now),
            // Notifications and mails to visitors are not the follow-up's; one here has
            // nothing to say.
            MailKind::Notification
            | MailKind::Confirmation
            | MailKind::Notice
            | MailKind::Access
            | MailKind::Overflow => Ok(None),
        }
    }

    fn notification_link(&self, id: SubmissionId, section: &str, now: Timestamp) -> Option<String> {
        Some(self.links.person(id, section, now))
    }
}

fn unreadable(error: crate::store::StoreError) -> BuildError {
    BuildError::Unreadable(error.to_string())
}

fn state_name(texts: &FollowupTexts, state: FollowupState) -> &str {
    let names = &texts.states;
    match state {
        FollowupState::New => &names.new,
        FollowupState::Contacted => &names.contacted,
        FollowupState::Joined => &names.joined,
        FollowupState::Declined => &names.declined,
        FollowupState::Unreachable => &names.unreachable,
    }
}

/// A duration in its two largest units, whole: `3 d 4 h`, `2 h`, `5 min 3 s`, `0 s`.
pub fn duration_text(duration: Duration, units: &Units) -> String {
    let mut rest = duration.as_secs();
    let mut parts = Vec::new();
    for (size, unit) in [
        (86_400, &units.day),
        (3_600, &units.hour),
        (60, &units.minute),
        (1, &units.second),
    ] {
        let count = rest / size;
        rest %= size;
        if count > 0 || (!parts.is_empty() && parts.len() < 2) {
            parts.push(format!("{count} {unit}"));
        }
        if parts.len() == 2 {
            break;
        }
    }
    // Trailing zeros say nothing: `2 h 0 min` is `2 h`.
    while parts.len() > 1 && parts.last().is_some_and(|part| part.starts_with("0 ")) {
        parts.pop();
    }
    if parts.is_empty() {
        return format!("0 {}", units.second);
    }
    parts.join(" ")
}

/// The body of a follow-up mail (templates/mail/followup.txt): paragraphs of lines,
/// then the signature. Plain text, so nothing is escaped.
#[derive(Debug, askama::Template)]
#[template(path = "mail/followup.txt", escape = "none")]
struct FollowupBody<'a> {
    /// Paragraphs, each a list of lines; empty ones are left out.
    blocks: Vec<Vec<String>>,
    /// The line under the signature separator.
    footer: &'a str,
}

fn body(blocks: Vec<Vec<String>>, footer: &str) -> Result<String, BuildError> {
    FollowupBody {
        blocks: blocks
            .into_iter()
            .filter(|block| !block.is_empty())
            .collect(),
        footer,
    }
    .render()
    .map_err(BuildError::Body)
}

/// The window a digest of `period` reports: from the start of the period before it
/// (the day before, or the ISO week before) to the start of its own. `None` for a
/// period that is neither a day nor a week.
fn reported_window(period: &str) -> Option<(Timestamp, Timestamp)> {
    let until = period_start(period)?;
    let length = if period.contains("-W") {
        Duration::from_secs(7 * 86_400)
    } else {
        Duration::from_secs(86_400)
    };
    Some((until.minus(length), until))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units() -> Units {
        Units {
            day: "d".into(),
            hour: "h".into(),
            minute: "min".into(),
            second: "s".into(),
        }
    }

    #[test]
    fn durations_are_written_in_their_two_largest_units() {
        for (seconds, text) in [
            (0, "0 s"),
            (5, "5 s"),
            (65, "1 min 5 s"),
            (7_200, "2 h"),
            (7_260, "2 h 1 min"),
            (3 * 86_400 + 4 * 3_600 + 59, "3 d 4 h"),
            (86_400 + 30, "1 d"),
        ] {
            assert_eq!(
                duration_text(Duration::from_secs(seconds), &units()),
                text,
                "{seconds}"
            );
        }
    }

    #[test]
    fn a_digest_reports_the_whole_period_before_its_own() {
        let at = |text: &str| Timestamp::parse(text).unwrap();
        assert_eq!(
            reported_window("2026-12-01"),
            Some((
                at("2026-11-30T00:00:00.000000Z"),
                at("2026-12-01T00:00:00.000000Z")
            ))
        );
        // ISO week 49 of 2026 starts on Monday 30 November.
        assert_eq!(
            reported_window("2026-W49"),
            Some((
                at("2026-11-23T00:00:00.000000Z"),
                at("2026-11-30T00:00:00.000000Z")
            ))
        );
        assert_eq!(reported_window("yesterday"), None);
    }

    #[test]
    fn the_body_is_paragraphs_then_the_signature() {
        let text = body(
            vec![
                vec!["Intro.".into()],
                Vec::new(),
                vec!["- one".into(), "  link".into()],
            ],
            "Footer.",
        )
        .unwrap();
        assert_eq!(text, "Intro.\n\n- one\n  link\n\n-- \nFooter.\n");
    }
}
