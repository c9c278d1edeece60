//! The overflow mail (issue 17): to a section's contacts, at most one an hour, instead
//! of one notification per sign-up past `mail.max_notifications_per_section_per_hour`.
//! It lists every notification that waited (what each would have said, with its
//! follow-up link) and says how many sign-ups a flood left held for review, and where
//! to review them: counts only, never a held person.
//!
//! Built by the delivery worker just before it is sent, from the data as it is then
//! ([`OverflowContent::read`]): a person erased meanwhile is in none of it. In the
//! section's language (`[overflow]` of templates/mail/<tag>.toml, else English), with
//! the headers of the other mails to a section (no Reply-To: it is about many people).

use askama::Template as _;
use lettre::Message;
use lettre::message::Mailbox;
use rusqlite::Connection;

use crate::domain::{SubmissionId, Timestamp};
use crate::routing::Section;
use crate::store::outbox::{self, DueNotification, DueOverflow};
use crate::store::submissions;

use super::message::{self, BuildError};
use super::templates::{Labels, Templates, render};

/// The most waiting notifications one overflow mail lists, oldest first. The rest stay
/// waiting for the next one; the mail counts them and says how to export them now.
/// Keeps a mail readable and its size bounded (a listed sign-up is about 1 KiB).
pub const LIST_LIMIT: usize = 250;

/// What an overflow mail says, read on one connection.
#[derive(Debug, Clone)]
pub struct OverflowContent {
    /// When it was read: the mail is dated so, and the next one's held sign-ups "new
    /// since the last" count from here.
    pub as_of: Timestamp,
    /// The waiting notifications it lists, oldest first, at most [`LIST_LIMIT`].
    pub listed: Vec<DueNotification>,
    /// Waiting ones past the listed ones.
    pub more: u64,
    /// When the oldest of those began (its sign-up's time), for the export command.
    pub more_since: Option<Timestamp>,
    /// Sign-ups of the section held since its last overflow mail was sent (all, when
    /// none was), and held in all.
    pub held_new: u64,
    pub held_total: u64,
}

impl OverflowContent {
    /// Reads what `due` has to say now.
    ///
    /// # Errors
    /// [`BuildError::Unreadable`] when the database cannot be read (tried again later).
    pub fn read(connection: &Connection, due: &DueOverflow) -> Result<Self, BuildError> {
        let as_of = Timestamp::now();
        let unreadable =
            |error: crate::store::StoreError| BuildError::Unreadable(error.to_string());
        let (mut listed, total) =
            outbox::waiting_notifications(connection, &due.section, LIST_LIMIT + 1)
                .map_err(unreadable)?;
        let more_since = (listed.len() > LIST_LIMIT)
            .then(|| listed.pop().map(|first| first.submission.created_at))
            .flatten();
        let shown = u64::try_from(listed.len()).unwrap_or(u64::MAX);
        let last = outbox::last_overflow_sent(connection, &due.section).map_err(unreadable)?;
        let (held_new, held_total) =
            submissions::held_counts(connection, &due.section, last).map_err(unreadable)?;
        Ok(Self {
            as_of,
            listed,
            more: total.saturating_sub(shown),
            more_since,
            held_new,
            held_total,
        })
    }

    /// The ids of the notifications listed, to be marked sent with the mail.
    pub fn listed_ids(&self) -> Vec<SubmissionId> {
        self.listed.iter().map(|due| due.submission.id).collect()
    }
}

/// What a sent overflow mail covered: the waiting notifications it listed, and when its
/// content was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Covered {
    pub listed: Vec<SubmissionId>,
    pub as_of: Timestamp,
}

/// The overflow mail for `due`, to `section`'s contacts (the fallback's when the section
/// is gone: the texts still name `due.section`), from `from`, written at `now`; `cap` is
/// the hourly number, `link` gives a listed sign-up its follow-up link (when follow-up is
/// on). `None` when it has nothing to say: nothing waits and nobody new is held.
///
/// # Errors
/// [`BuildError`] when no template is built in or lettre refuses the message.
#[allow(clippy::too_many_arguments)]
pub fn message(
    due: &DueOverflow,
    content: &OverflowContent,
    section: &Section,
    from: &Mailbox,
    templates: &Templates,
    cap: u32,
    link: impl Fn(&DueNotification) -> Option<String>,
    now: Timestamp,
) -> Result<Option<Message>, BuildError> {
    if content.listed.is_empty() && content.held_new == 0 {
        return Ok(None);
    }
    let template = templates
        .for_language(&section.language)
        .ok_or(BuildError::NoTemplate)?;
    let texts = templates
        .overflow(&section.language)
        .ok_or(BuildError::NoTemplate)?;
    let name = due.section.as_str();
    let (count, held, new) = (
        content.listed.len().to_string(),
        content.held_total.to_string(),
        content.held_new.to_string(),
    );
    let cap = cap.to_string();
    let values = [
        ("section", name),
        ("count", count.as_str()),
        ("held", held.as_str()),
        ("new", new.as_str()),
        ("cap", cap.as_str()),
    ];
    let subject = match (content.listed.is_empty(), content.held_total == 0) {
        (false, false) => &texts.subject,
        (false, true) => &texts.subject_listed,
        (true, _) => &texts.subject_held,
    };
    let mut blocks = Vec::new();
    if !content.listed.is_empty() {
        blocks.push(vec![render(&texts.intro, &values)]);
        let width = label_width(&template.labels);
        for (number, listed) in content.listed.iter().enumerate() {
            let followup = link(listed).and_then(|link| {
                let texts = templates.followup(&section.language)?;
                Some(render(&texts.notification_link, &[("link", link.as_str())]))
            });
            blocks.push(entry(
                number + 1,
                listed,
                section,
                templates,
                &template.labels,
                width,
                followup,
            ));
        }
        if content.more > 0 {
            let more = content.more.to_string();
            let mut command = format!("joinform export --section {}", quoted(name));
            if let Some(since) = content.more_since {
                command.push_str(&format!(" --since {since}"));
            }
            blocks.push(vec![render(
                &texts.more,
                &[("count", more.as_str()), ("command", command.as_str())],
            )]);
        }
    }
    if content.held_total > 0 {
        let command = format!(
            "joinform review list --status held --section {}",
            quoted(name)
        );
        let address = format!(
            "GET /admin/review?status=held&section={}",
            percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC)
        );
        blocks.push(vec![render(&texts.held, &values)]);
        blocks.push(vec![
            render(&texts.review, &[("command", command.as_str())]),
            render(&texts.review_admin, &[("address", address.as_str())]),
        ]);
    }
    // Names and addresses in it, or counts only.
    let footer = if content.listed.is_empty() {
        templates
            .followup(&section.language)
            .map(|texts| texts.escalation.footer.as_str())
            .ok_or(BuildError::NoTemplate)?
    } else {
        template.footer.as_str()
    };
    let text = OverflowBody { blocks, footer }
        .render()
        .map_err(BuildError::Body)?;
    message::to_section(
        section,
        from,
        render(subject, &values),
        &due.message_id,
        now,
        text,
    )
    .map(Some)
}

/// One listed sign-up: a heading with its number and name, then what its notification
/// would have said, labelled and indented.
fn entry(
    number: usize,
    due: &DueNotification,
    section: &Section,
    templates: &Templates,
    labels: &Labels,
    width: usize,
    followup: Option<String>,
) -> Vec<String> {
    let s = &due.submission;
    let country = message::country_text(templates, section, s.country);
    let (received, id) = (s.created_at.to_string(), s.id.to_string());
    let consent = if s.consent { &labels.yes } else { &labels.no };
    let fields = [
        (labels.email.as_str(), Some(s.email.as_str())),
        (labels.phone.as_str(), s.phone.as_deref()),
        (labels.city.as_str(), s.city.as_deref()),
        (labels.country.as_str(), Some(country.as_str())),
        (labels.language.as_str(), s.language.as_deref()),
        (labels.consent.as_str(), Some(consent.as_str())),
        (labels.received.as_str(), Some(received.as_str())),
        (labels.submission_id.as_str(), Some(id.as_str())),
    ];
    let mut lines = vec![format!("{number}. {}", s.name)];
    for (label, value) in fields {
        if let Some(value) = value {
            lines.push(format!("   {:<width$} {value}", format!("{label}:")));
        }
    }
    if let Some(text) = s.message.as_deref() {
        lines.push(format!("   {}:", labels.message));
        lines.extend(text.lines().map(|line| format!("     {line}")));
    }
    let extra: Vec<String> = s
        .extra
        .iter()
        .filter_map(|(name, value)| Some(format!("     {name}: {}", value.as_str()?)))
        .collect();
    if !extra.is_empty() {
        lines.push(format!("   {}:", labels.extra));
        lines.extend(extra);
    }
    lines.extend(followup.map(|line| format!("   {line}")));
    lines
}

/// The label column's width: the longest label an entry shows, its colon, and a space.
fn label_width(labels: &Labels) -> usize {
    [
        &labels.email,
        &labels.phone,
        &labels.city,
        &labels.country,
        &labels.language,
        &labels.consent,
        &labels.received,
        &labels.submission_id,
    ]
    .iter()
    .map(|label| label.chars().count())
    .max()
    .unwrap_or(0)
        + 1
}

/// A section's name as one shell word: in double quotes, with `\`, `"`, `$` and `` ` ``
/// escaped.
fn quoted(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        if matches!(c, '\\' | '"' | '$' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The body (templates/mail/followup.txt, the layout of every mail joinform writes
/// to a section itself): paragraphs of lines, then the signature.
#[derive(askama::Template)]
#[template(path = "mail/followup.txt", escape = "none")]
struct OverflowBody<'a> {
    blocks: Vec<Vec<String>>,
    footer: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_name_is_one_shell_word() {
        assert_eq!(quoted("Norway"), "\"Norway\"");
        assert_eq!(quoted("A \"b\" $c"), "\"A \\\"b\\\" \\$c\"");
    }
}
