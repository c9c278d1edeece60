//! Building the organiser's notification. Every header value goes through lettre's
//! typed builders, which encode it: nothing a visitor typed can add a header.
//!
//! The body is a MIME single part (`SinglePart::plain`), not a bare body: lettre writes
//! `MIME-Version: 1.0` only on that path, and RFC 2045 §4 requires it of any message
//! with `Content-Type` and `Content-Transfer-Encoding`. Spam filters score its absence.

use askama::Template as _;
use lettre::Address;
use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message, MessageBuilder, SinglePart};

use crate::domain::{CountryCode, MemberEmail, MemberName, Timestamp};
use crate::routing::Section;
use crate::store::outbox::DueNotification;

use super::pgp_mime::{self, Outer};
use super::templates::{NotificationBody, Template, Templates, render};

/// Why a notification cannot be built. Each message is complete on its own (it is
/// stored as the outbox row's last error), so none exposes a `source()` that a chain
/// printer would repeat.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("the stored email address does not parse")]
    StoredEmail,
    #[error("the stored name does not parse")]
    StoredName,
    #[error("no mail template is built in")]
    NoTemplate,
    #[error("the message cannot be built: {0}")]
    Message(lettre::error::Error),
    #[error("the body cannot be rendered: {0}")]
    Body(askama::Error),
    /// The data the mail is built from cannot be read now: the row is tried again.
    #[error("the data cannot be read: {0}")]
    Unreadable(String),
    /// OpenPGP encryption to the section's keys failed (never holds the content).
    #[error("the mail cannot be encrypted: {0}")]
    Encrypt(String),
    /// Sealed storage: the sign-up's row holds no encrypted notification, and the
    /// server cannot read its fields to build one.
    #[error("the sign-up is sealed and holds no encrypted notification: nothing can be sent")]
    Sealed,
    /// Sealed storage: a mail to the visitor is built while the request holds the
    /// clear sign-up and kept only in memory; this one is not there (the server
    /// restarted, or too many were held).
    #[error(
        "a sealed sign-up's mail to its visitor is kept only in memory and was lost at a restart"
    )]
    SealedVisitorMailLost,
}

/// `Auto-Submitted: auto-generated` (RFC 3834): auto-responders do not answer it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".to_owned())
    }
}

/// The visitor as a mailbox for Reply-To: their name and address (ASCII domain).
fn visitor_mailbox(name: &MemberName, email: &str) -> Result<Mailbox, BuildError> {
    Ok(Mailbox::new(
        Some(name.as_str().to_owned()),
        visitor_address(email)?,
    ))
}

/// A stored visitor's address, parsed again, with its domain in ASCII (punycode) as
/// SMTP needs it.
///
/// # Errors
/// [`BuildError::StoredEmail`] when it no longer parses.
pub(crate) fn visitor_address(email: &str) -> Result<Address, BuildError> {
    let email = MemberEmail::parse(email).map_err(|_| BuildError::StoredEmail)?;
    let ascii = email.to_ascii();
    let (local, domain) = ascii.rsplit_once('@').ok_or(BuildError::StoredEmail)?;
    Address::new(local, domain).map_err(|_| BuildError::StoredEmail)
}

/// The notification for one outbox row, to `section`'s contacts: a MIME 1.0 message
/// (RFC 2045) with one `text/plain; charset=utf-8` part. `followup_link` is the
/// sign-up's own follow-up page, shown near the trailer when follow-up is on.
///
/// To a section with `pgp_keys` it is PGP/MIME (RFC 3156), the same message encrypted
/// inside, with [`outer_notification_subject`] and the visitor's bare address as
/// Reply-To outside (`mail::pgp_mime`).
///
/// # Errors
/// [`BuildError`] when the stored name or address no longer parses, no template is
/// built in, lettre refuses the message, or encryption fails.
pub fn notification(
    due: &DueNotification,
    section: &Section,
    from: &Mailbox,
    templates: &Templates,
    followup_link: Option<&str>,
) -> Result<Message, BuildError> {
    let (headers, body) =
        notification_parts(due, section, from, templates, followup_link, Storage::Clear)?;
    if !section.encrypts() {
        return headers.singlepart(body).map_err(BuildError::Message);
    }
    let submission = &due.submission;
    let outer = Outer {
        from,
        to: &section.contacts,
        subject: outer_notification_subject(submission.id),
        message_id: &due.message_id,
        date: notification_date(submission),
        reply_to: Some(visitor_address(&submission.email)?),
    };
    pgp_mime::encrypt(headers, body, &section.pgp_keys, &outer)
}

/// The Subject outside an encrypted notification: no personal data, only the id that
/// tells two apart in a list (`New sign-up 0190…`). The real one is inside.
pub fn outer_notification_subject(id: crate::domain::SubmissionId) -> String {
    format!("New sign-up {id}")
}

/// Dated when the section could first hear of the person: a double opt-in sign-up
/// confirmed, or a held one released, days later must not sort days back in the
/// organisers' inbox.
fn notification_date(
    submission: &crate::store::submissions::StoredSubmission,
) -> std::time::SystemTime {
    submission
        .released_at
        .or(submission.confirmed_at)
        .unwrap_or(submission.created_at)
        .to_system_time()
}

/// Where the sign-up a notification is about is stored, which decides how it tells the
/// organisers to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// In clear: the mail's Reply-To (outside any encryption) is the visitor.
    Clear,
    /// Sealed: the mail is made once, encrypted, and sent without a Reply-To outside,
    /// so its intro says to write to the address in it (`intro_sealed`).
    Sealed,
}

/// The clear notification's headers and its one body part, before they are joined
/// in clear or encrypted.
///
/// # Errors
/// As [`notification`], but for encryption.
pub fn notification_parts(
    due: &DueNotification,
    section: &Section,
    from: &Mailbox,
    templates: &Templates,
    followup_link: Option<&str>,
    storage: Storage,
) -> Result<(MessageBuilder, SinglePart), BuildError> {
    let template = templates
        .for_language(&section.language)
        .ok_or(BuildError::NoTemplate)?;
    let submission = &due.submission;
    // Parsed again because the name goes into headers: only a name that passes today's
    // rules (no line breaks, no encoded words) may.
    let name = MemberName::parse(&submission.name).map_err(|_| BuildError::StoredName)?;
    let values = [
        ("name", name.as_str()),
        ("section", section.name.as_str()),
        ("country", submission.country.as_str()),
    ];
    let mut builder = Message::builder()
        .from(from.clone())
        .reply_to(visitor_mailbox(&name, &submission.email)?)
        .subject(render(&template.subject, &values))
        .message_id(Some(due.message_id.clone()))
        .header(AutoSubmitted)
        .date(notification_date(submission));
    for contact in &section.contacts {
        builder = builder.to(contact.clone());
    }
    let country = country_text(templates, section, submission.country);
    let followup = followup_link.and_then(|link| {
        let texts = templates.followup(&section.language)?;
        Some(render(&texts.notification_link, &[("link", link)]))
    });
    let intro = match storage {
        Storage::Clear => &template.intro,
        Storage::Sealed => &template.intro_sealed,
    };
    let text = body(due, section, template, intro, &country, &values, followup)?;
    Ok((builder, SinglePart::plain(text)))
}

/// The country as organisers read it: its name in the mail's language, with the code
/// (`Norge (NO)`); the code alone when it has no name.
pub(crate) fn country_text(templates: &Templates, section: &Section, code: CountryCode) -> String {
    match templates.country_name(&section.language, code) {
        Some(name) => format!("{name} ({code})"),
        None => code.to_string(),
    }
}

/// What a mail joinform writes itself to a section's contacts is (the notification
/// aside): it names the mail outside when the mail is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SectionMail {
    /// The follow-up's reminder: first names, countries, dates and links.
    Reminder,
    /// The follow-up's escalation to the fallback: sections and counts only.
    Escalation,
    /// The follow-up's digest: first names of the period's sign-ups, and counts.
    Digest,
    /// The overflow mail: every waiting notification in full, or held counts only.
    Overflow,
}

impl SectionMail {
    /// The Subject outside the encrypted mail: fixed per kind, so it holds no name,
    /// section, date or count (a count of one can point at a person).
    pub(crate) fn outer_subject(self) -> &'static str {
        match self {
            Self::Reminder => "Follow-up reminder",
            Self::Escalation => "Follow-up escalation",
            Self::Digest => "Sign-up digest",
            Self::Overflow => "Notification overflow",
        }
    }
}

/// A mail joinform writes itself to `section`'s contacts (reminders, escalations,
/// digests, overflow mails): From the sender, no Reply-To, `Auto-Submitted`, dated
/// `date`, one `text/plain; charset=utf-8` MIME 1.0 part, as the notification is.
///
/// To a section with `pgp_keys` every kind is PGP/MIME (RFC 3156), encrypted to all
/// its keys, with `kind`'s [`SectionMail::outer_subject`] and no Reply-To outside and
/// the real headers inside (`mail::pgp_mime`). That includes the kinds that can hold
/// counts only (the escalation, an overflow mail about held sign-ups only): a section
/// that gave keys receives nothing in clear from joinform, one rule with no exception
/// to get wrong. Only the visitor's own mails (confirmation, notice, access) are
/// never encrypted: they are built elsewhere, to the visitor.
///
/// # Errors
/// [`BuildError::Message`] when lettre refuses it; [`BuildError::Encrypt`] when
/// encryption fails.
pub(crate) fn to_section(
    section: &Section,
    from: &Mailbox,
    kind: SectionMail,
    subject: String,
    message_id: &str,
    date: Timestamp,
    text: String,
) -> Result<Message, BuildError> {
    let mut builder = Message::builder()
        .from(from.clone())
        .subject(subject)
        .message_id(Some(message_id.to_owned()))
        .header(AutoSubmitted)
        .date(date.to_system_time());
    for contact in &section.contacts {
        builder = builder.to(contact.clone());
    }
    let body = SinglePart::plain(text);
    if !section.encrypts() {
        return builder.singlepart(body).map_err(BuildError::Message);
    }
    let outer = Outer {
        from,
        to: &section.contacts,
        subject: kind.outer_subject().to_owned(),
        message_id,
        date: date.to_system_time(),
        reply_to: None,
    };
    pgp_mime::encrypt(builder, body, &section.pgp_keys, &outer)
}

/// The plain-text body (templates/mail/notification.txt): every field the visitor
/// gave, labelled.
fn body(
    due: &DueNotification,
    section: &Section,
    template: &Template,
    intro: &str,
    country: &str,
    values: &[(&str, &str)],
    followup: Option<String>,
) -> Result<String, BuildError> {
    let s = &due.submission;
    let (id, received) = (s.id.to_string(), s.created_at.to_string());
    let labels = &template.labels;
    let consent = if s.consent { &labels.yes } else { &labels.no };
    let fields = [
        (labels.name.as_str(), Some(s.name.as_str())),
        (labels.email.as_str(), Some(s.email.as_str())),
        (labels.phone.as_str(), s.phone.as_deref()),
        (labels.city.as_str(), s.city.as_deref()),
        (labels.country.as_str(), Some(country)),
        (labels.language.as_str(), s.language.as_deref()),
        (labels.consent.as_str(), Some(consent.as_str())),
    ];
    NotificationBody {
        intro: render(intro, values),
        returning: s.is_returning.then(|| render(&template.returning, values)),
        labels,
        fields: fields
            .into_iter()
            .filter_map(|(label, value)| Some((label, value?)))
            .collect(),
        message: s.message.as_deref(),
        // Extra answers are stored as JSON strings (`ExtraValue`), one per field.
        extra: s
            .extra
            .iter()
            .filter_map(|(name, value)| Some((name.clone(), value.as_str()?.to_owned())))
            .collect(),
        trailer: [
            (labels.submission_id.as_str(), id.as_str()),
            (labels.received.as_str(), received.as_str()),
            (labels.section.as_str(), section.name.as_str()),
        ],
        followup,
        footer: &template.footer,
    }
    .render()
    .map_err(BuildError::Body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        CountryCode, FollowupState, LanguageTag, SubmissionId, SubmissionStatus, Timestamp,
    };
    use crate::store::submissions::StoredSubmission;

    fn due(full: bool) -> DueNotification {
        DueNotification {
            message_id: "m@example.org".into(),
            section: "Norway".into(),
            attempts: 0,
            queued_at: Timestamp::parse("2026-01-02T03:04:05.000000Z").unwrap(),
            submission: StoredSubmission {
                id: SubmissionId::parse("01900000-0000-7000-8000-000000000000").unwrap(),
                created_at: Timestamp::parse("2026-01-02T03:04:05.123000Z").unwrap(),
                // A value that looks like a placeholder is shown as it is.
                name: "Kari {section} Nordmann".into(),
                email: "kari@example.org".into(),
                country: CountryCode::parse("NO").unwrap(),
                phone: full.then(|| "+47 22 33 44 55".into()),
                city: full.then(|| "Tromsø".into()),
                message: full.then(|| "Hei!\nJeg vil gjerne bli med.\n".into()),
                language: full.then(|| "nb".into()),
                consent: full,
                extra: if full {
                    serde_json::from_str(r#"{"member_of":"Fagforbundet","a":"{x}"}"#).unwrap()
                } else {
                    serde_json::Map::new()
                },
                status: SubmissionStatus::Accepted,
                section: "Norway".into(),
                is_returning: full,
                followup: Some(FollowupState::New),
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

    /// Section Norway, in English, mailing `contacts`, in clear.
    fn norway(contacts: &[&str]) -> Section {
        Section {
            name: "Norway".into(),
            countries: Vec::new(),
            contacts: contacts.iter().map(|c| c.parse().unwrap()).collect(),
            language: LanguageTag::parse("en").unwrap().unwrap(),
            confirmation: crate::domain::ConfirmationMode::Off,
            pgp_keys: Vec::new(),
        }
    }

    fn english_body(full: bool) -> String {
        english_body_with(full, None)
    }

    fn english_body_with(full: bool, link: Option<&str>) -> String {
        let templates = Templates::load().unwrap();
        let section = norway(&[]);
        let template = templates.for_language(&section.language).unwrap();
        let due = due(full);
        let values = [
            ("name", due.submission.name.as_str()),
            ("section", "Norway"),
            ("country", "NO"),
        ];
        let followup = link.map(|link| {
            let texts = templates.followup(&section.language).unwrap();
            render(&texts.notification_link, &[("link", link)])
        });
        body(
            &due,
            &section,
            template,
            &template.intro,
            "Norway (NO)",
            &values,
            followup,
        )
        .unwrap()
    }

    /// A notification is dated when its section could first hear of the person: the
    /// sign-up, else its confirmation, else its release by a review, whichever is last
    /// set; so one released days later does not sort days back in the inbox.
    #[test]
    fn a_notification_is_dated_when_the_section_could_first_hear_of_the_person() {
        let templates = Templates::load().unwrap();
        let section = norway(&["oslo@example.org"]);
        let from: Mailbox = "joinform <joinform@example.org>".parse().unwrap();
        let date_of = |due: &DueNotification| {
            let message = notification(due, &section, &from, &templates, None).unwrap();
            let text = String::from_utf8(message.formatted()).unwrap();
            text.lines()
                .find_map(|line| line.strip_prefix("Date: "))
                .unwrap()
                .to_owned()
        };
        let mut due = due(false);
        assert_eq!(date_of(&due), "Fri, 02 Jan 2026 03:04:05 +0000");
        due.submission.confirmed_at =
            Some(Timestamp::parse("2026-01-03T10:00:00.000000Z").unwrap());
        assert_eq!(date_of(&due), "Sat, 03 Jan 2026 10:00:00 +0000");
        due.submission.confirmed_at = None;
        due.submission.released_at = Some(Timestamp::parse("2026-01-05T08:30:00.000000Z").unwrap());
        assert_eq!(date_of(&due), "Mon, 05 Jan 2026 08:30:00 +0000");
    }

    /// The layout of templates/mail/notification.txt, to the byte: what organisers'
    /// mail filters and habits may rely on.
    #[test]
    fn the_body_lists_every_field_given_in_one_column() {
        let full = "\
Kari {section} Nordmann filled in the join form and was routed to Norway. Reply to this email to answer them directly.

Kari {section} Nordmann has signed up before: this is a returning sign-up, not a duplicate.

Name:                    Kari {section} Nordmann
Email:                   kari@example.org
Phone:                   +47 22 33 44 55
City:                    Tromsø
Country:                 Norway (NO)
Language:                nb
Consent to be contacted: yes

Message:
Hei!
Jeg vil gjerne bli med.


Other answers:
  a: {x}
  member_of: Fagforbundet

Submission id:           01900000-0000-7000-8000-000000000000
Received (UTC):          2026-01-02T03:04:05.123000Z
Section:                 Norway

-- 
Sent by joinform. This message holds personal data: please keep it within the organisation.
";
        assert_eq!(english_body(true), full);
        let least = "\
Kari {section} Nordmann filled in the join form and was routed to Norway. Reply to this email to answer them directly.

Name:                    Kari {section} Nordmann
Email:                   kari@example.org
Country:                 Norway (NO)
Consent to be contacted: no

Submission id:           01900000-0000-7000-8000-000000000000
Received (UTC):          2026-01-02T03:04:05.123000Z
Section:                 Norway

-- 
Sent by joinform. This message holds personal data: please keep it within the organisation.
";
        assert_eq!(english_body(false), least);
    }

    /// With follow-up on, the sign-up's own link stands between the trailer and the
    /// signature, on a line of its own.
    #[test]
    fn the_body_with_follow_up_carries_the_sign_ups_link_above_the_signature() {
        let with_link = "\
Kari {section} Nordmann filled in the join form and was routed to Norway. Reply to this email to answer them directly.

Name:                    Kari {section} Nordmann
Email:                   kari@example.org
Country:                 Norway (NO)
Consent to be contacted: no

Submission id:           01900000-0000-7000-8000-000000000000
Received (UTC):          2026-01-02T03:04:05.123000Z
Section:                 Norway

Follow-up: mark when you have contacted them: https://join.example.org/followup/AbC-_1

-- 
Sent by joinform. This message holds personal data: please keep it within the organisation.
";
        assert_eq!(
            english_body_with(false, Some("https://join.example.org/followup/AbC-_1")),
            with_link
        );
    }

    /// To a section with keys, the notification is PGP/MIME: outside, nothing of the
    /// sign-up but the bare address in Reply-To; inside, the clear notification's
    /// headers and body, with `protected-headers="v1"`.
    #[test]
    fn to_a_section_with_keys_the_notification_is_encrypted_with_its_headers_inside() {
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/openpgp");
        let now = std::time::SystemTime::now();
        let keys = crate::openpgp::read_certificates(&fixtures.join("norway.asc"), now).unwrap();
        let templates = Templates::load().unwrap();
        let mut section = norway(&["oslo@example.org"]);
        let from: Mailbox = "joinform <joinform@example.org>".parse().unwrap();
        let due = due(true);
        let clear = notification(&due, &section, &from, &templates, None).unwrap();
        section.pgp_keys = keys;
        let sealed = notification(&due, &section, &from, &templates, None).unwrap();
        let text = String::from_utf8(sealed.formatted()).unwrap();
        let (outer, _) = text.split_once("\r\n\r\n").unwrap();
        assert!(outer.contains("Subject: New sign-up 01900000-0000-7000-8000-000000000000"));
        assert!(outer.contains("Reply-To: kari@example.org\r\n"), "{outer}");
        assert!(outer.contains("multipart/encrypted"));
        for value in ["Kari", "Nordmann", "+47", "Troms", "Hei", "Fagforbundet"] {
            assert!(!text.contains(value), "{value} is in the clear: {text}");
        }
        let armored = &text[text.find("-----BEGIN PGP MESSAGE").unwrap()
            ..text.find("-----END PGP MESSAGE-----").unwrap() + 25];
        let secret = std::fs::read(fixtures.join("norway.secret.asc")).unwrap();
        let inner = crate::openpgp::SecretKey::parse(&secret)
            .unwrap()
            .decrypt("", armored.as_bytes())
            .unwrap();
        let inner = String::from_utf8(inner).unwrap();
        assert!(inner.contains("protected-headers=\"v1\""), "{inner}");
        assert!(inner.contains("Subject: New member sign-up: Kari {section} Nordmann (Norway)"));
        assert!(
            inner.contains("?= <kari@example.org>"),
            "the named Reply-To: {inner}"
        );
        // The clear notification's body part, byte for byte, is inside.
        let clear = String::from_utf8(clear.formatted()).unwrap();
        let clear_body = clear.split_once("\r\n\r\n").unwrap().1;
        assert!(inner.contains(clear_body.trim_end()), "{inner}");
    }

    /// A mail joinform writes to a section with keys (a reminder here) is PGP/MIME
    /// under the kind's fixed Subject and without Reply-To; inside are its real
    /// headers and its body. To a section without keys it is the same mail in clear.
    #[test]
    fn a_mail_to_a_section_with_keys_is_encrypted_under_a_fixed_subject() {
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/openpgp");
        let now = std::time::SystemTime::now();
        let mut section = norway(&["oslo@example.org"]);
        let from: Mailbox = "joinform <joinform@example.org>".parse().unwrap();
        let date = Timestamp::parse("2026-01-02T03:04:05.000000Z").unwrap();
        let build = |section: &Section| {
            let message = to_section(
                section,
                &from,
                SectionMail::Reminder,
                "1 sign-up waiting for an answer (Norway)".into(),
                "<r@example.org>",
                date,
                "- Kari, Norge (NO), signed up 2026-01-01\n".into(),
            )
            .unwrap();
            String::from_utf8(message.formatted()).unwrap()
        };
        let clear = build(&section);
        assert!(clear.contains("Subject: 1 sign-up waiting"), "{clear}");
        assert!(clear.contains("- Kari, Norge"), "{clear}");
        section.pgp_keys =
            crate::openpgp::read_certificates(&fixtures.join("norway.asc"), now).unwrap();
        let sealed = build(&section);
        let (outer, _) = sealed.split_once("\r\n\r\n").unwrap();
        assert!(outer.contains("Subject: Follow-up reminder\r\n"), "{outer}");
        assert!(outer.contains("Message-ID: <r@example.org>"), "{outer}");
        assert!(!outer.contains("Reply-To"), "{outer}");
        for value in ["Kari", "Norge", "waiting", "2026-01-01"] {
            assert!(!sealed.contains(value), "{value} is in the clear: {sealed}");
        }
        let armored = &sealed[sealed.find("-----BEGIN PGP MESSAGE").unwrap()
            ..sealed.find("-----END PGP MESSAGE-----").unwrap() + 25];
        let secret = std::fs::read(fixtures.join("norway.secret.asc")).unwrap();
        let inner = crate::openpgp::SecretKey::parse(&secret)
            .unwrap()
            .decrypt("", armored.as_bytes())
            .unwrap();
        let inner = String::from_utf8(inner).unwrap();
        assert!(inner.contains("protected-headers=\"v1\""), "{inner}");
        assert!(
            inner.contains("Subject: 1 sign-up waiting for an answer (Norway)\r\n"),
            "{inner}"
        );
        let clear_body = clear.split_once("\r\n\r\n").unwrap().1;
        assert!(inner.contains(clear_body.trim_end()), "{inner}");
    }
}
