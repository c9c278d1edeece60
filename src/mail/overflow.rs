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
//! To a section with `pgp_keys` it is PGP/MIME, its outer Subject the fixed
//! "Notification overflow" (no section, no count), as `message::to_section` makes it.

use askama::Template as _;
use lettre::Message;
use lettre::message::Mailbox;
use rusqlite::Connection;

use crate::domain::{SubmissionId, Timestamp, shown_name};
use crate::routing::Section;
use crate::store::outbox::{self, DueNotification, DueOverflow};
use crate::store::submissions;

use super::message::{self, BuildError, SectionMail};
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
/// [`BuildError`] when no template is built in, lettre refuses the message, or
/// encryption to the section's keys fails.
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
    let Some((subject, text)) =
        subject_and_body(&due.section, content, section, templates, cap, link)?
    else {
        return Ok(None);
    };
    message::to_section(
        section,
        from,
        SectionMail::Overflow,
        subject,
        &due.message_id,
        now,
        text,
    )
    .map(Some)
}

/// The subject and plain-text body of [`message`]; `None` when it has nothing to say.
fn subject_and_body(
    name: &str,
    content: &OverflowContent,
    section: &Section,
    templates: &Templates,
    cap: u32,
    link: impl Fn(&DueNotification) -> Option<String>,
) -> Result<Option<(String, String)>, BuildError> {
    if content.listed.is_empty() && content.held_new == 0 {
        return Ok(None);
    }
    let template = templates
        .for_language(&section.language)
        .ok_or(BuildError::NoTemplate)?;
    let texts = templates
        .overflow(&section.language)
        .ok_or(BuildError::NoTemplate)?;
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
    Ok(Some((render(subject, &values), text)))
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
    // A sealed sign-up's fields cannot be read here: it is shown by its id, country
    // and date, and its empty address is left out.
    let email = (!s.email.is_empty()).then_some(s.email.as_str());
    let fields = [
        (labels.email.as_str(), email),
        (labels.phone.as_str(), s.phone.as_deref()),
        (labels.city.as_str(), s.city.as_deref()),
        (labels.country.as_str(), Some(country.as_str())),
        (labels.language.as_str(), s.language.as_deref()),
        (labels.consent.as_str(), Some(consent.as_str())),
        (labels.received.as_str(), Some(received.as_str())),
        (labels.submission_id.as_str(), Some(id.as_str())),
    ];
    let heading = match s.sealed {
        Some(_) => shown_name(&s.name, true, s.id),
        None => s.name.clone(),
    };
    let mut lines = vec![format!("{number}. {heading}")];
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
    use crate::domain::{ConfirmationMode, CountryCode, LanguageTag, SubmissionStatus};
    use crate::store::submissions::StoredSubmission;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }

    fn waiting(n: u8, message: Option<&str>) -> DueNotification {
        let id = format!("01900000-0000-7000-8000-0000000000{n:02}");
        DueNotification {
            message_id: format!("<{id}@example.org>"),
            section: "United Kingdom".into(),
            attempts: 0,
            queued_at: at("2026-11-30T12:00:00.000000Z"),
            submission: StoredSubmission {
                id: SubmissionId::parse(&id).unwrap(),
                created_at: at("2026-11-30T12:00:00.000000Z"),
                name: format!("Person {n}"),
                email: format!("p{n}@example.org"),
                country: CountryCode::parse("GB").unwrap(),
                phone: None,
                city: None,
                message: message.map(str::to_owned),
                language: Some("en".into()),
                consent: true,
                extra: serde_json::from_str(r#"{"member_of":"Unite"}"#).unwrap(),
                status: SubmissionStatus::Accepted,
                section: "United Kingdom".into(),
                is_returning: false,
                followup: None,
                followup_at: None,
                followup_by: None,
                contacted_at: None,
                consent_text: None,
                consent_language: None,
                consent_version: None,
                visitor_language: None,
                confirmed_at: None,
                released_at: None,
                sealed: None,
                sealed_mail: None,
            },
        }
    }

    fn section() -> Section {
        Section {
            name: "United Kingdom".into(),
            countries: Vec::new(),
            contacts: Vec::new(),
            language: LanguageTag::parse("en").unwrap().unwrap(),
            confirmation: ConfirmationMode::Off,
            pgp_keys: Vec::new(),
        }
    }

    fn content(listed: Vec<DueNotification>, more: u64, held: (u64, u64)) -> OverflowContent {
        OverflowContent {
            as_of: at("2026-11-30T13:00:00.000000Z"),
            listed,
            more,
            more_since: (more > 0).then(|| at("2026-11-30T12:30:00.000000Z")),
            held_new: held.0,
            held_total: held.1,
        }
    }

    fn text(content: &OverflowContent) -> Option<(String, String)> {
        let templates = Templates::load().unwrap();
        let link = |due: &DueNotification| {
            Some(format!(
                "https://join.example.org/followup/{}",
                due.submission.id
            ))
        };
        subject_and_body("United Kingdom", content, &section(), &templates, 60, link).unwrap()
    }

    /// The layout, to the byte: a numbered entry per sign-up as its notification
    /// would have told of it, the rest counted with the command that exports them,
    /// then the held ones as counts with where to review them.
    #[test]
    fn the_mail_lists_each_sign_up_counts_the_rest_and_the_held() {
        let listed = vec![waiting(1, Some("Hello.\nCall me.")), waiting(2, None)];
        let (subject, body) = text(&content(listed, 3, (4, 9))).unwrap();
        assert_eq!(
            subject,
            "Sign-up summary for United Kingdom: 2 listed, 9 held for review"
        );
        let expected = "\
United Kingdom had more sign-ups in the last hour than are mailed one by one (60 an hour), so these come in one mail instead, oldest first. Write to each person at the address given.

1. Person 1
   Email:                   p1@example.org
   Country:                 United Kingdom (GB)
   Language:                en
   Consent to be contacted: yes
   Received (UTC):          2026-11-30T12:00:00.000000Z
   Submission id:           01900000-0000-7000-8000-000000000001
   Message:
     Hello.
     Call me.
   Other answers:
     member_of: Unite
   Follow-up: mark when you have contacted them: https://join.example.org/followup/01900000-0000-7000-8000-000000000001

2. Person 2
   Email:                   p2@example.org
   Country:                 United Kingdom (GB)
   Language:                en
   Consent to be contacted: yes
   Received (UTC):          2026-11-30T12:00:00.000000Z
   Submission id:           01900000-0000-7000-8000-000000000002
   Other answers:
     member_of: Unite
   Follow-up: mark when you have contacted them: https://join.example.org/followup/01900000-0000-7000-8000-000000000002

…and 3 more, in the next summary. To export them now: joinform export --section \"United Kingdom\" --since 2026-11-30T12:30:00.000000Z

Held for review: 9 in all, 4 of them since the last summary (if any). They came while sign-ups arrived far faster than usual (most likely from bots), without the check a browser makes in the background, so nobody has been told of them, and this mail does not name them. Held sign-ups nobody releases are deleted after some weeks.

To review them (release or discard), on the server: joinform review list --status held --section \"United Kingdom\"
or on the admin listener: GET /admin/review?status=held&section=United%20Kingdom

-- 
Sent by joinform. This message holds personal data: please keep it within the organisation.
";
        assert_eq!(body, expected);
    }

    /// Held sign-ups only: counts, and the footer of a mail without personal data;
    /// nothing waiting and nobody newly held: nothing to send.
    #[test]
    fn held_only_is_counts_only_and_nothing_new_is_nothing_to_send() {
        let (subject, body) = text(&content(Vec::new(), 0, (2, 2))).unwrap();
        assert_eq!(
            subject,
            "Sign-up summary for United Kingdom: 2 held for review"
        );
        assert!(
            body.starts_with(
                "Held for review: 2 in all, 2 of them since the last summary (if any)."
            )
        );
        assert!(
            body.ends_with("This message holds no personal data.\n"),
            "{body}"
        );
        assert_eq!(text(&content(Vec::new(), 0, (0, 5))), None);
    }

    #[test]
    fn a_section_name_is_one_shell_word() {
        assert_eq!(quoted("Norway"), "\"Norway\"");
        assert_eq!(quoted("A \"b\" $c"), "\"A \\\"b\\\" \\$c\"");
    }
}
