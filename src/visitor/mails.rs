//! The mails to visitors, built by the delivery worker just before it sends them (the
//! [`VisitorMail`] it is given), from the sign-up as it is stored then.
//!
//! - **Notice** (`notice` mode): what was received (name, country, section), who will
//!   get in touch, and a withdraw link.
//! - **Confirmation** (`double_opt_in`): the confirm link and until when it works,
//!   that nothing is passed on before, when the details are deleted if nobody
//!   confirms, and a withdraw link.
//! - **Access** (a request on `/my-data`): the link to what is stored, good for a day,
//!   and a withdraw link.
//!
//! Each is in the visitor's language (`templates/visitor_mail/<tag>.toml`): the one
//! stored for their mails, else the one the sign-up names, else the section's, else
//! English. Subject and body hold no text the visitor typed except their name: people
//! put insults and links into form fields to abuse confirmation mails against the
//! address's owner, so the message, phone, city and extra answers never go back out,
//! and the Subject is fixed.
//!
//! Headers: From `mail.from`, To the bare stored address (a display name would be
//! visitor text in a header), the row's Message-ID, `Auto-Submitted: auto-generated`
//! (RFC 3834), no Reply-To; one `text/plain; charset=utf-8` MIME 1.0 part.

use std::borrow::Cow;
use std::sync::Arc;

use askama::Template as _;
use lettre::Message;
use lettre::message::{Mailbox, SinglePart};

use crate::domain::{CountryCode, MailKind, SubmissionId, SubmissionStatus, Timestamp};
use crate::i18n::{self, CountryNames, Texts};
use crate::mail::VisitorMail;
use crate::mail::message::{AutoSubmitted, BuildError, visitor_address};
use crate::mail::templates::render;
use crate::routing::{Routing, Section};
use crate::store::outbox::DueVisitorMail;
use crate::store::submissions::StoredSubmission;

use super::VisitorLinks;
use super::held::HeldInMemory;

/// How long after its row was queued a sealed sign-up's mail may still be on its way
/// into memory (its request holds it once the writer reports the row queued): a row
/// tried sooner is tried again, not failed as lost.
const HOLD_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Builds the mails to visitors; given to the delivery worker at start-up when any
/// section's `confirmation` is not `off`.
pub struct VisitorMails {
    routing: Arc<Routing>,
    links: VisitorLinks,
    /// Country names in every shipped language, built once.
    countries: CountryNames,
    /// A sealed installation's mails, built by the requests and held until sent.
    held: Arc<HeldInMemory>,
}

impl VisitorMails {
    /// The mails of `routing`'s sections, with links from `links`. Builds the country
    /// names of every shipped language (CLDR), once.
    pub fn new(routing: Arc<Routing>, links: VisitorLinks) -> Self {
        Self {
            routing,
            links,
            countries: CountryNames::build(i18n::shipped()),
            held: Arc::new(HeldInMemory::new(super::held::DEFAULT_LIMIT)),
        }
    }

    /// The same, sending a sealed sign-up's mails from `held` (where the requests
    /// put them).
    #[must_use]
    pub fn with_held(mut self, held: Arc<HeldInMemory>) -> Self {
        self.held = held;
        self
    }

    /// Whether a sealed sign-up's mail built earlier still has something to say at
    /// `now`, judged from what the server can read of its row (the status, the
    /// times): as [`Self::compose`] judges a clear one.
    fn still_worth_sending(&self, due: &DueVisitorMail, now: Timestamp) -> bool {
        let submission = &due.submission;
        match due.kind {
            _ if submission.status == SubmissionStatus::Spam => false,
            MailKind::Confirmation => {
                let since = submission.released_at.unwrap_or(submission.created_at);
                submission.status == SubmissionStatus::Unconfirmed
                    && now < self.links.confirm_expiry(since)
            }
            MailKind::Notice | MailKind::Access => true,
            MailKind::Notification
            | MailKind::Reminder
            | MailKind::Escalation
            | MailKind::Digest
            | MailKind::Overflow => false,
        }
    }

    /// The section a sign-up is stored under; the fallback when it is no longer
    /// configured (its notification goes there too).
    fn section(&self, name: &str) -> &Section {
        self.routing
            .by_name(name)
            .unwrap_or_else(|| self.routing.fallback())
    }

    /// The country's name in `language`; its code when CLDR has none.
    fn country_name(&self, language: &str, code: CountryCode) -> Cow<'_, str> {
        self.countries
            .list(language)
            .iter()
            .find(|(country, _)| *country == code)
            .map_or_else(
                || Cow::Owned(code.to_string()),
                |(_, name)| Cow::Borrowed(name.as_str()),
            )
    }

    /// The notice's paragraphs: what was received and who will get in touch.
    fn notice(&self, words: Words, due: &DueVisitorMail, section: &Section) -> Vec<Vec<String>> {
        let submission = &due.submission;
        let country = self.country_name(words.texts.language(), submission.country);
        let fields = [
            (words.get("mail_label_name"), words.text(&submission.name)),
            (words.get("mail_label_country"), words.text(&country)),
            (words.get("mail_label_section"), words.text(&section.name)),
        ];
        // The labels' column: the longest label, its colon and a space.
        let width = fields
            .iter()
            .map(|(label, _)| label.chars().count())
            .max()
            .unwrap_or(0)
            + 1;
        let table = fields
            .iter()
            .map(|(label, value)| format!("{:<width$} {value}", format!("{label}:")))
            .collect();
        vec![
            vec![words.get("mail_notice_intro").to_owned()],
            table,
            vec![words.fill(
                "mail_notice_contact",
                &[("section", &words.text(&section.name))],
            )],
        ]
    }

    /// The confirmation's paragraphs; `None` when the sign-up no longer waits for
    /// its visitor (confirmed meanwhile) or its link has expired while the mail
    /// waited (behind the hourly cap): a link that cannot work is not worth a mail.
    fn confirmation(
        &self,
        words: Words,
        due: &DueVisitorMail,
        now: Timestamp,
    ) -> Option<Vec<Vec<String>>> {
        let submission = &due.submission;
        // A sign-up a review released to be confirmed waits from its release.
        let since = submission.released_at.unwrap_or(submission.created_at);
        let expires = self.links.confirm_expiry(since);
        if submission.status != SubmissionStatus::Unconfirmed || now >= expires {
            return None;
        }
        let until = words.fixed(&expires.date_text());
        let deleted = words.fixed(&self.links.unconfirmed_deleted_by(since).date_text());
        Some(vec![
            vec![
                words.get("mail_confirmation_intro").to_owned(),
                self.links.confirm(submission.id, since),
            ],
            vec![
                words.fill("mail_confirmation_until", &[("date", &until)]),
                words.get("mail_confirmation_held").to_owned(),
            ],
            vec![words.fill("mail_confirmation_ignore", &[("date", &deleted)])],
        ])
    }

    /// The access mail's paragraphs.
    fn access(&self, words: Words, due: &DueVisitorMail, now: Timestamp) -> Vec<Vec<String>> {
        vec![
            vec![
                words.get("mail_access_intro").to_owned(),
                self.links.access(due.submission.id, now),
            ],
            vec![
                words.get("mail_access_valid").to_owned(),
                words.get("mail_access_ignore").to_owned(),
            ],
        ]
    }
}

impl VisitorMails {
    /// The Subject and body of `due`'s mail written at `now`, or `None` when it has
    /// nothing left to say.
    fn compose(
        &self,
        due: &DueVisitorMail,
        now: Timestamp,
    ) -> Result<Option<(&'static str, String)>, BuildError> {
        let submission = &due.submission;
        // A mail about spam would put the spammer's words (the name) in a stranger's
        // inbox: none is queued for one, and none is sent if one ever is.
        if submission.status == SubmissionStatus::Spam {
            return Ok(None);
        }
        let section = self.section(&submission.section);
        let words = Words::new(language(submission, section));
        let (subject, mut blocks, withdraw, footer) = match due.kind {
            MailKind::Notice => (
                "mail_notice_subject",
                self.notice(words, due, section),
                "mail_notice_withdraw",
                "mail_footer_sign_up",
            ),
            MailKind::Confirmation => match self.confirmation(words, due, now) {
                Some(blocks) => (
                    "mail_confirmation_subject",
                    blocks,
                    "mail_withdraw",
                    "mail_footer_sign_up",
                ),
                None => return Ok(None),
            },
            MailKind::Access => (
                "mail_access_subject",
                self.access(words, due, now),
                "mail_withdraw",
                "mail_footer_access",
            ),
            // Not a visitor's mail: nothing to say to a visitor about it.
            MailKind::Notification
            | MailKind::Reminder
            | MailKind::Escalation
            | MailKind::Digest
            | MailKind::Overflow => return Ok(None),
        };
        // Every mail to a visitor carries their way out (GDPR articles 7(3) and 17).
        blocks.push(vec![
            words.get(withdraw).to_owned(),
            self.links.withdraw(submission.id, now),
        ]);
        // A sealed sign-up's access mail is built without its name, which the server
        // cannot read.
        let greeting = if submission.name.is_empty() {
            words.get("mail_greeting_plain").to_owned()
        } else {
            words.fill("mail_greeting", &[("name", &words.text(&submission.name))])
        };
        let text = VisitorBody {
            greeting,
            blocks,
            footer: words.get(footer),
        }
        .render()
        .map_err(BuildError::Body)?;
        Ok(Some((words.get(subject), text)))
    }
}

impl VisitorMail for VisitorMails {
    /// A clear sign-up's mail is built now from its row; a sealed one's was built by
    /// its request and is taken from memory, unless it has nothing left to say.
    fn build(
        &self,
        due: &DueVisitorMail,
        from: &Mailbox,
        now: Timestamp,
    ) -> Result<Option<Message>, BuildError> {
        if due.submission.sealed.is_none() {
            return self.compose_message(due, from, now);
        }
        if !self.still_worth_sending(due, now) {
            return Ok(None);
        }
        match self.held.get(due.id) {
            Some(message) => Ok(Some(message)),
            // Its request holds the mail just after the writer commits the row: a
            // worker woken by another request may get there first.
            None if now.since(due.queued_at) < HOLD_GRACE => Err(BuildError::Unreadable(
                "the sealed sign-up's mail is not held yet".to_owned(),
            )),
            None => Err(BuildError::SealedVisitorMailLost),
        }
    }

    fn settled(&self, row: SubmissionId) {
        self.held.remove(row);
    }

    fn kept(&self) -> Vec<SubmissionId> {
        self.held.rows()
    }
}

impl VisitorMails {
    /// The message for `due`, built from the sign-up it carries, from `from`, written
    /// at `now`; `None` when it has nothing to say.
    ///
    /// # Errors
    /// The stored address does not parse, or lettre or the template refuse it.
    pub fn compose_message(
        &self,
        due: &DueVisitorMail,
        from: &Mailbox,
        now: Timestamp,
    ) -> Result<Option<Message>, BuildError> {
        let Some((subject, text)) = self.compose(due, now)? else {
            return Ok(None);
        };
        Message::builder()
            .from(from.clone())
            // The bare address: a display name would put visitor text in a header.
            .to(Mailbox::new(None, visitor_address(&due.submission.email)?))
            .subject(subject)
            .message_id(Some(due.message_id.clone()))
            .header(AutoSubmitted)
            .date(now.to_system_time())
            .singlepart(SinglePart::plain(text))
            .map(Some)
            .map_err(BuildError::Message)
    }
}

/// The shipped language a visitor's mail is written in: the one stored for their mails
/// (the page's, else the one the visitor named, else the section's), else the one the
/// sign-up names, else the section's, else English. A sign-up in a section whose
/// `confirmation` is `off` has no language stored for mails, yet its access link can
/// be asked for: it comes in the language of the form the visitor filled in, not in
/// the section's.
fn language(submission: &StoredSubmission, section: &Section) -> &'static str {
    submission
        .visitor_language
        .as_deref()
        .and_then(i18n::resolve)
        .or_else(|| submission.language.as_deref().and_then(i18n::resolve))
        .or_else(|| i18n::resolve(section.language.as_str()))
        .unwrap_or(i18n::REFERENCE_LANGUAGE)
}

/// One language's sentences, and how values sit in them.
#[derive(Debug, Clone, Copy)]
struct Words {
    texts: Texts,
    /// Written right to left: values are set apart with Unicode isolates (below).
    right_to_left: bool,
}

impl Words {
    fn new(language: &'static str) -> Self {
        Self {
            texts: Texts::new(language),
            right_to_left: i18n::is_right_to_left(language),
        }
    }

    fn get(self, key: &'static str) -> &'static str {
        self.texts.get(key)
    }

    /// `key`'s sentence with its placeholders filled once: a value holding `{date}`
    /// (a name can) is written as it is, never expanded.
    fn fill(self, key: &'static str, values: &[(&str, &str)]) -> String {
        render(self.get(key), values)
    }

    /// A value in either direction (a name, a section, a country) for a sentence. In
    /// a right-to-left mail it is first-strong isolated (U+2068 … U+2069), so that a
    /// Latin name neither reorders the Arabic around it nor takes its punctuation
    /// along; left-to-right mails get the value as it is.
    fn text(self, value: &str) -> Cow<'_, str> {
        self.isolate('\u{2068}', value)
    }

    /// A value that always reads left to right (a date): in a right-to-left mail,
    /// `2026-12-07` would otherwise show as `07-12-2026`.
    fn fixed(self, value: &str) -> String {
        self.isolate('\u{2066}', value).into_owned()
    }

    fn isolate(self, opening: char, value: &str) -> Cow<'_, str> {
        if self.right_to_left {
            Cow::Owned(format!("{opening}{value}\u{2069}"))
        } else {
            Cow::Borrowed(value)
        }
    }
}

/// The body of a mail to a visitor (templates/visitor_mail/mail.txt). Plain text, so
/// nothing is escaped.
#[derive(Debug, askama::Template)]
#[template(path = "visitor_mail/mail.txt", escape = "none")]
struct VisitorBody<'a> {
    greeting: String,
    /// Paragraphs, each a list of lines.
    blocks: Vec<Vec<String>>,
    /// The line under the signature separator: why the mail came.
    footer: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{EMBEDDED_CONFIG, Settings};
    use crate::domain::SubmissionId;
    use crate::secret::ServerSecret;
    use crate::store::submissions::StoredSubmission;
    use crate::visitor::{LinkPurpose, VisitorLinkKey};

    const PUBLIC_URL: &str = "https://join.example.org";

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }

    fn key() -> VisitorLinkKey {
        VisitorLinkKey::from_secret(&ServerSecret::from_bytes(&[7; 32]))
    }

    /// The shipped configuration's sections (Norway in `nb`, Sweden in `sv`, the
    /// fallback in `en`), with a public address and the default 7-day confirmation.
    fn mails() -> VisitorMails {
        let mut settings = Settings::from_toml(Some(EMBEDDED_CONFIG), false).unwrap();
        settings.server.public_url = Some(format!("{PUBLIC_URL}/"));
        let routing = Arc::new(Routing::from_settings(&settings).unwrap());
        VisitorMails::new(routing, VisitorLinks::new(&settings, key()).unwrap())
    }

    /// A mail of `kind` about a sign-up to `section`, with every field filled in: the
    /// ones no mail may repeat included.
    fn due(kind: MailKind, section: &str, language: Option<&str>) -> DueVisitorMail {
        let created = at("2026-11-30T14:00:00.000000Z");
        DueVisitorMail {
            id: SubmissionId::generate(),
            kind,
            message_id: "<m@example.org>".into(),
            attempts: 0,
            queued_at: created,
            submission: StoredSubmission {
                id: SubmissionId::parse("01900000-0000-7000-8000-000000000000").unwrap(),
                created_at: created,
                // A value that looks like a placeholder is written as it is.
                name: "Kari {section} Nordmann".into(),
                email: "kari@example.org".into(),
                country: CountryCode::parse("NO").unwrap(),
                phone: Some("+47 22 33 44 55".into()),
                city: Some("Tromsø".into()),
                message: Some("Visit http://spam.example now".into()),
                // The language the visitor named: the one stored for their mails, as
                // with a form page in that language.
                language: language.map(str::to_owned),
                consent: true,
                extra: serde_json::from_str(r#"{"member_of":"Fagforbundet"}"#).unwrap(),
                status: if kind == MailKind::Confirmation {
                    SubmissionStatus::Unconfirmed
                } else {
                    SubmissionStatus::Accepted
                },
                section: section.into(),
                is_returning: false,
                followup: None,
                followup_at: None,
                followup_by: None,
                contacted_at: None,
                consent_text: Some("I agree.".into()),
                consent_language: Some("en".into()),
                consent_version: Some("0123456789abcdef".into()),
                visitor_language: language.map(str::to_owned),
                confirmed_at: None,
                released_at: None,
                sealed: None,
                sealed_mail: None,
            },
        }
    }

    const NOW: &str = "2026-11-30T14:00:05.000000Z";

    fn compose(due: &DueVisitorMail) -> (&'static str, String) {
        mails().compose(due, at(NOW)).unwrap().unwrap()
    }

    /// The links in `text` under `path` (`withdraw`, `confirm`, `my-data`): their
    /// tokens.
    fn tokens<'a>(text: &'a str, path: &str) -> Vec<&'a str> {
        let prefix = format!("{PUBLIC_URL}/{path}/");
        text.lines()
            .filter_map(|line| line.strip_prefix(prefix.as_str()))
            .collect()
    }

    /// `text` with every token replaced by `TOKEN`, for comparing layouts.
    fn without_tokens(text: &str) -> String {
        text.lines()
            .map(|line| match line.rsplit_once('/') {
                Some((start, _)) if line.starts_with(PUBLIC_URL) => format!("{start}/TOKEN\n"),
                _ => format!("{line}\n"),
            })
            .collect()
    }

    fn assert_withdraw_link(text: &str, due: &DueVisitorMail) {
        let found = tokens(text, "withdraw");
        assert_eq!(found.len(), 1, "{text}");
        let (id, _) = key()
            .verify(LinkPurpose::Withdraw, found[0], at(NOW))
            .unwrap();
        assert_eq!(id, due.submission.id);
    }

    /// Whatever the visitor typed but their name stays out: message, phone, city,
    /// extra answers, the address itself.
    fn assert_no_other_visitor_text(text: &str) {
        for typed in [
            "spam.example",
            "22 33 44 55",
            "Tromsø",
            "Fagforbundet",
            "kari@",
        ] {
            assert!(!text.contains(typed), "{typed} in:\n{text}");
        }
    }

    /// The layout of a notice, to the byte (in English: the fallback's language).
    #[test]
    fn a_notice_says_what_was_received_and_who_will_call_and_nothing_else() {
        let due = due(MailKind::Notice, "International", None);
        let (subject, text) = compose(&due);
        assert_eq!(subject, "We have received your sign-up");
        assert_eq!(
            without_tokens(&text),
            "\
Hello Kari {section} Nordmann,

Thank you for signing up. This is what we received:

Name:    Kari {section} Nordmann
Country: Norway
Section: International

Someone from International will contact you.

If it was not you, or if you change your mind, this link withdraws the sign-up and erases everything stored with this address:
https://join.example.org/withdraw/TOKEN

-- 
You get this mail because someone signed up with this address on our join form. An address gets at most one such mail a day.
"
        );
        assert_withdraw_link(&text, &due);
        assert_no_other_visitor_text(&text);
    }

    #[test]
    fn a_confirmation_holds_a_signed_link_until_when_it_works_and_when_the_details_go() {
        let due = due(MailKind::Confirmation, "International", None);
        let (subject, text) = compose(&due);
        assert_eq!(subject, "Please confirm your sign-up");
        assert_eq!(
            without_tokens(&text),
            "\
Hello Kari {section} Nordmann,

Thank you for signing up. Please confirm that it was you: open this link and press the button on the page.
https://join.example.org/confirm/TOKEN

The link works until 2026-12-07 (UTC).
Until you confirm, nothing you sent is passed on to anyone.

If it was not you, simply ignore this mail: the details will be deleted automatically by 2026-12-08.

To withdraw your sign-up and erase everything stored with this address, open this link:
https://join.example.org/withdraw/TOKEN

-- 
You get this mail because someone signed up with this address on our join form. An address gets at most one such mail a day.
"
        );
        let found = tokens(&text, "confirm");
        assert_eq!(found.len(), 1, "{text}");
        // Good for form.confirm_within (7 days) from the sign-up.
        assert_eq!(
            key().verify(LinkPurpose::Confirm, found[0], at(NOW)),
            Ok((due.submission.id, at("2026-12-07T14:00:00.000000Z")))
        );
        assert_withdraw_link(&text, &due);
        assert_no_other_visitor_text(&text);
    }

    #[test]
    fn a_confirmation_with_nothing_left_to_confirm_is_not_sent() {
        let mut confirmed = due(MailKind::Confirmation, "Norway", None);
        confirmed.submission.status = SubmissionStatus::Accepted;
        assert!(mails().compose(&confirmed, at(NOW)).unwrap().is_none());
        // Its link would already have expired (the mail waited behind the hourly cap).
        let waiting = due(MailKind::Confirmation, "Norway", None);
        let expired = at("2026-12-07T14:00:00.000000Z");
        assert!(mails().compose(&waiting, expired).unwrap().is_none());
        let just_before = at("2026-12-07T13:59:59.000000Z");
        assert!(mails().compose(&waiting, just_before).unwrap().is_some());
    }

    #[test]
    fn an_access_mail_links_to_the_data_for_a_day() {
        let due = due(MailKind::Access, "International", None);
        let (subject, text) = compose(&due);
        assert_eq!(subject, "The link to your data");
        let found = tokens(&text, "my-data");
        assert_eq!(found.len(), 1, "{text}");
        assert_eq!(
            key().verify(LinkPurpose::Access, found[0], at(NOW)),
            Ok((due.submission.id, at("2026-12-01T14:00:05.000000Z")))
        );
        assert!(text.contains("The link works for 24 hours."), "{text}");
        assert!(text.contains("If you did not ask for this"), "{text}");
        assert!(text.contains("asked for it with this address"), "{text}");
        assert_withdraw_link(&text, &due);
        assert_no_other_visitor_text(&text);
    }

    #[test]
    fn the_language_is_the_visitors_else_the_named_one_else_the_sections_else_english() {
        for (section, stored, named, subject, country) in [
            // The stored language wins over the named one and the section's.
            (
                "Sweden",
                Some("nb"),
                Some("de"),
                "Vi har mottatt påmeldingen din",
                "Norge",
            ),
            // None stored (a section that mails nobody, asked for an access link):
            // the one the sign-up names, a tag resolved to a shipped language.
            (
                "Sweden",
                None,
                Some("en-GB"),
                "We have received your sign-up",
                "Norway",
            ),
            // Neither: the section's.
            (
                "Sweden",
                None,
                None,
                "Vi har tagit emot din anmälan",
                "Norge",
            ),
            (
                "Norway",
                None,
                None,
                "Vi har mottatt påmeldingen din",
                "Norge",
            ),
            // A named tag this version does not ship: the section's.
            (
                "Sweden",
                None,
                Some("xx"),
                "Vi har tagit emot din anmälan",
                "Norge",
            ),
            // A section no longer configured: the fallback's (English).
            (
                "Atlantis",
                None,
                None,
                "We have received your sign-up",
                "Norway",
            ),
            // A stored tag this version does not ship: the section's.
            (
                "Norway",
                Some("xx"),
                None,
                "Vi har mottatt påmeldingen din",
                "Norge",
            ),
        ] {
            let mut due = due(MailKind::Notice, section, stored);
            due.submission.language = named.map(str::to_owned);
            let (found, text) = compose(&due);
            assert_eq!(found, subject, "{section} {stored:?} {named:?}");
            assert!(
                text.contains(country),
                "{section} {stored:?} {named:?}:\n{text}"
            );
        }
    }

    /// In Arabic, the Latin name, the section and the dates sit in Unicode isolates,
    /// so they neither reorder the sentence nor turn `2026-12-07` into `07-12-2026`.
    #[test]
    fn values_in_a_right_to_left_mail_are_isolated() {
        let (_, text) = compose(&due(MailKind::Confirmation, "Norway", Some("ar")));
        assert!(
            text.contains("\u{2068}Kari {section} Nordmann\u{2069}"),
            "{text}"
        );
        assert!(text.contains("\u{2066}2026-12-07\u{2069}"), "{text}");
        assert!(text.contains("\u{2066}2026-12-08\u{2069}"), "{text}");
        let (_, text) = compose(&due(MailKind::Notice, "Norway", Some("ar")));
        assert!(text.contains("\u{2068}Norway\u{2069}"), "{text}");
        assert!(text.contains("\u{2068}النرويج\u{2069}"), "{text}");
        // Left-to-right mails get no invisible characters.
        let (_, text) = compose(&due(MailKind::Notice, "Norway", Some("nb")));
        assert!(
            !text.contains(['\u{2066}', '\u{2068}', '\u{2069}']),
            "{text}"
        );
    }

    /// The `{…}` placeholders of `text`, sorted.
    fn placeholders(text: &str) -> Vec<&str> {
        let mut found: Vec<&str> = text
            .match_indices('{')
            .filter_map(|(start, _)| {
                let end = text[start..].find('}')?;
                Some(&text[start..=start + end])
            })
            .collect();
        found.sort_unstable();
        found
    }

    /// Every language's sentence has exactly the placeholders of the English one: a
    /// translated or missing `{date}` would show as written, or leave the date out.
    #[test]
    fn every_language_keeps_the_placeholders() {
        type Table = std::collections::HashMap<String, String>;
        let table = |language: &str| -> Table {
            let (_, text) = i18n::VISITOR_MAIL_TEXTS
                .iter()
                .find(|(tag, _)| *tag == language)
                .unwrap_or_else(|| panic!("{language} has no mail texts"));
            toml::from_str(text).unwrap()
        };
        let english = table("en");
        assert!(
            placeholders(&english["mail_greeting"]) == ["{name}"]
                && placeholders(&english["mail_notice_contact"]) == ["{section}"]
                && placeholders(&english["mail_confirmation_ignore"]) == ["{date}"]
        );
        for language in i18n::shipped() {
            let translated = table(language);
            for (key, text) in &english {
                let theirs = translated.get(key).map(String::as_str).unwrap_or_default();
                assert_eq!(
                    placeholders(theirs),
                    placeholders(text),
                    "{language} {key}: {theirs}"
                );
            }
        }
    }

    #[test]
    fn the_message_goes_to_the_bare_address_from_the_sender_without_reply_to() {
        let due = due(MailKind::Notice, "Norway", None);
        let from: Mailbox = "joinform <joinform@example.org>".parse().unwrap();
        let message = mails()
            .build(&due, &from, at(NOW))
            .unwrap()
            .expect("a notice has something to say");
        let raw = String::from_utf8(message.formatted()).unwrap();
        let head = raw.split("\r\n\r\n").next().unwrap();
        for line in [
            "From: joinform <joinform@example.org>",
            "To: kari@example.org",
            "Message-ID: <m@example.org>",
            "Auto-Submitted: auto-generated",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
        ] {
            assert!(head.lines().any(|l| l == line), "{line} not in:\n{head}");
        }
        assert!(!head.contains("Reply-To"), "{head}");
        assert!(
            !head.contains("Kari"),
            "no visitor text in a header:\n{head}"
        );
        assert_eq!(
            message.envelope().to(),
            ["kari@example.org".parse::<lettre::Address>().unwrap()]
        );
    }

    /// `due` as a sealed sign-up's row reads: personal columns empty, the blob set.
    fn sealed(mut due: DueVisitorMail) -> DueVisitorMail {
        let submission = &mut due.submission;
        submission.name = String::new();
        submission.email = String::new();
        submission.phone = None;
        submission.city = None;
        submission.message = None;
        submission.sealed = Some(vec![0xc1]);
        due
    }

    #[test]
    fn a_sealed_sign_ups_mail_is_the_one_its_request_held_until_settled() {
        let held = Arc::new(HeldInMemory::new(10));
        let mails = mails().with_held(Arc::clone(&held));
        let from: Mailbox = "joinform <joinform@example.org>".parse().unwrap();
        let clear = due(MailKind::Notice, "Norway", None);
        let built = mails
            .compose_message(&clear, &from, at(NOW))
            .unwrap()
            .unwrap();
        let row = sealed(clear);
        held.hold(row.id, built.clone()).unwrap();
        let sent = mails.build(&row, &from, at(NOW)).unwrap().unwrap();
        assert_eq!(sent.formatted(), built.formatted());
        // Kept for a retry until the worker says the row is done with.
        assert_eq!(mails.kept(), [row.id]);
        mails.settled(row.id);
        assert!(mails.kept().is_empty());
        assert!(held.is_empty());
    }

    #[test]
    fn a_sealed_sign_ups_mail_not_in_memory_is_retried_briefly_then_lost() {
        let mails = mails().with_held(Arc::new(HeldInMemory::new(10)));
        let from: Mailbox = "joinform <joinform@example.org>".parse().unwrap();
        let row = sealed(due(MailKind::Notice, "Norway", None));
        // Within seconds of its queuing, its request may still be holding it.
        let soon = row.queued_at.plus(std::time::Duration::from_secs(1));
        assert!(matches!(
            mails.build(&row, &from, soon),
            Err(BuildError::Unreadable(_))
        ));
        let error = mails.build(&row, &from, at(NOW)).unwrap_err();
        assert!(matches!(error, BuildError::SealedVisitorMailLost));
        assert_eq!(
            error.to_string(),
            "a sealed sign-up's mail to its visitor is kept only in memory and was lost at \
             a restart"
        );
    }

    #[test]
    fn a_sealed_confirmation_with_nothing_left_to_confirm_is_cancelled_unread() {
        let held = Arc::new(HeldInMemory::new(10));
        let mails = mails().with_held(Arc::clone(&held));
        let from: Mailbox = "joinform <joinform@example.org>".parse().unwrap();
        let mut row = sealed(due(MailKind::Confirmation, "Norway", None));
        held.hold(
            row.id,
            Message::builder()
                .from(from.clone())
                .to("kari@example.org".parse().unwrap())
                .body(String::from("x"))
                .unwrap(),
        )
        .unwrap();
        assert!(mails.build(&row, &from, at(NOW)).unwrap().is_some());
        let expired = at("2026-12-07T14:00:00.000000Z");
        assert!(mails.build(&row, &from, expired).unwrap().is_none());
        row.submission.status = SubmissionStatus::Accepted;
        assert!(mails.build(&row, &from, at(NOW)).unwrap().is_none());
    }

    /// A sealed sign-up's access mail is built without its name: it greets nobody.
    #[test]
    fn an_access_mail_without_a_name_greets_without_one() {
        let mut due = due(MailKind::Access, "International", None);
        due.submission.name = String::new();
        let (_, text) = compose(&due);
        assert!(text.starts_with("Hello,\n"), "{text}");
    }
}
