//! Building the organiser's notification. Every header value goes through lettre's
//! typed builders, which encode it: nothing a visitor typed can add a header.
//!
//! The body is a MIME single part (`SinglePart::plain`), not a bare body: lettre writes
//! `MIME-Version: 1.0` only on that path, and RFC 2045 §4 requires it of any message
//! with `Content-Type` and `Content-Transfer-Encoding`. Spam filters score its absence.

use std::collections::BTreeMap;
use std::fmt::Write;

use lettre::Address;
use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message, SinglePart};

use crate::domain::{MemberEmail, MemberName, Timestamp};
use crate::routing::Section;
use crate::store::outbox::DueNotification;

use super::templates::{Template, Templates, render};

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
}

/// `Auto-Submitted: auto-generated` (RFC 3834): auto-responders do not answer it.
#[derive(Debug, Clone, Copy)]
struct AutoSubmitted;

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
    let email = MemberEmail::parse(email).map_err(|_| BuildError::StoredEmail)?;
    let ascii = email.to_ascii();
    let (local, domain) = ascii.rsplit_once('@').ok_or(BuildError::StoredEmail)?;
    let address = Address::new(local, domain).map_err(|_| BuildError::StoredEmail)?;
    Ok(Mailbox::new(Some(name.as_str().to_owned()), address))
}

/// The notification for one outbox row, to `section`'s contacts: a MIME 1.0 message
/// (RFC 2045) with one `text/plain; charset=utf-8` part.
///
/// # Errors
/// [`BuildError`] when the stored name or address no longer parses, no template is
/// built in, or lettre refuses the message.
pub fn notification(
    due: &DueNotification,
    section: &Section,
    from: &Mailbox,
    templates: &Templates,
) -> Result<Message, BuildError> {
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
        .header(AutoSubmitted);
    if let Some(received) = Timestamp::parse(&submission.created_at) {
        builder = builder.date(received.to_system_time());
    }
    for contact in &section.contacts {
        builder = builder.to(contact.clone());
    }
    // Organisers read the country: its name in the mail's language, with the code.
    let country = match templates.country_name(&section.language, &submission.country) {
        Some(name) => format!("{name} ({})", submission.country),
        None => submission.country.clone(),
    };
    let text = body(due, section, template, &country, &values);
    builder
        .singlepart(SinglePart::plain(text))
        .map_err(BuildError::Message)
}

/// The plain-text body: every field the visitor gave, labelled.
fn body(
    due: &DueNotification,
    section: &Section,
    template: &Template,
    country: &str,
    values: &[(&str, &str)],
) -> String {
    let s = &due.submission;
    let labels = &template.labels;
    let consent = if s.consent { &labels.yes } else { &labels.no };
    let fields: Vec<(&str, Option<&str>)> = vec![
        (&labels.name, Some(&s.name)),
        (&labels.email, Some(&s.email)),
        (&labels.phone, s.phone.as_deref()),
        (&labels.city, s.city.as_deref()),
        (&labels.country, Some(country)),
        (&labels.language, s.language.as_deref()),
        (&labels.consent, Some(consent)),
    ];
    let extra: BTreeMap<String, String> = serde_json::from_str(&s.extra).unwrap_or_default();
    let trailer = [
        (labels.submission_id.as_str(), s.id.as_str()),
        (labels.received.as_str(), s.created_at.as_str()),
        (labels.section.as_str(), section.name.as_str()),
    ];
    let width = fields
        .iter()
        .map(|(label, _)| *label)
        .chain(trailer.iter().map(|(label, _)| *label))
        .map(|label| label.chars().count())
        .max()
        .unwrap_or(0)
        + 1;
    let line = |text: &mut String, label: &str, value: &str| {
        let _ = writeln!(text, "{:<width$} {value}", format!("{label}:"));
    };

    let mut text = render(&template.intro, values);
    if s.is_returning {
        text.push_str("\n\n");
        text.push_str(&render(&template.returning, values));
    }
    text.push_str("\n\n");
    for (label, value) in &fields {
        if let Some(value) = value {
            line(&mut text, label, value);
        }
    }
    if let Some(message) = &s.message {
        let _ = write!(text, "\n{}:\n{message}\n", labels.message);
    }
    if !extra.is_empty() {
        let _ = writeln!(text, "\n{}:", labels.extra);
        for (name, value) in &extra {
            let _ = writeln!(text, "  {name}: {value}");
        }
    }
    text.push('\n');
    for (label, value) in trailer {
        line(&mut text, label, value);
    }
    let _ = write!(text, "\n-- \n{}\n", template.footer);
    text
}
