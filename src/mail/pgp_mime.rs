//! PGP/MIME (RFC 3156 §4): a mail to a section with OpenPGP keys leaves as
//! `multipart/encrypted`, its real headers protected inside.
//!
//! The encrypted payload is a whole MIME entity: the mail's own headers (Subject, From,
//! To, Reply-To, Date, Message-ID) above a `multipart/mixed` body whose Content-Type
//! carries `protected-headers="v1"` (draft-autocrypt-lamps-protected-headers-02;
//! Thunderbird shows the inner Subject from it, mime.sys.mjs `extractProtectedHeaders`).
//! The outer headers carry no sign-up's value: a fixed Subject, the sender, the
//! contacts, the date and the Message-ID; Reply-To, where there is one, is the
//! visitor's bare address only, since a reply must reach them and clients do not read
//! an inner Reply-To (chatmail/core issue 7130).

use lettre::Address;
use lettre::message::header::{ContentDisposition, ContentTransferEncoding, ContentType};
use lettre::message::{Mailbox, Message, MessageBuilder, MultiPart, SinglePart};

use crate::openpgp::{self, Certificate};

use super::message::{AutoSubmitted, BuildError};

/// RFC 3156 §4: the `protocol` parameter of `multipart/encrypted`, and the first
/// part's type.
const PROTOCOL: &str = "application/pgp-encrypted";

/// The payload to encrypt for a mail that `headers` (every header but the body's:
/// From, To, Subject, Date, Message-ID, Reply-To, …) and `body` would make: a MIME
/// 1.0 message whose top-level Content-Type is `multipart/mixed` with
/// `protected-headers="v1"`, holding `body` as its one part. CRLF line ends.
///
/// # Errors
/// [`BuildError::Message`] when lettre refuses the headers (no From).
pub fn protected_payload(headers: MessageBuilder, body: SinglePart) -> Result<Vec<u8>, BuildError> {
    let mut mixed = MultiPart::mixed().singlepart(body);
    let boundary = mixed.boundary();
    let content_type = ContentType::parse(&format!(
        "multipart/mixed; boundary=\"{boundary}\"; protected-headers=\"v1\""
    ))
    .map_err(|error| BuildError::Unreadable(error.to_string()))?;
    mixed.headers_mut().set(content_type);
    let inner = headers.multipart(mixed).map_err(BuildError::Message)?;
    Ok(inner.formatted())
}

/// The two parts of `multipart/encrypted` around `armored`, an ASCII-armoured OpenPGP
/// message (RFC 3156 §4: `application/pgp-encrypted` with `Version: 1`, then
/// `application/octet-stream`).
fn encrypted_parts(armored: String) -> Result<MultiPart, BuildError> {
    let octet_stream = ContentType::parse("application/octet-stream; name=\"encrypted.asc\"")
        .map_err(|error| BuildError::Unreadable(error.to_string()))?;
    let control =
        ContentType::parse(PROTOCOL).map_err(|error| BuildError::Unreadable(error.to_string()))?;
    Ok(MultiPart::encrypted(PROTOCOL.to_owned())
        .singlepart(
            SinglePart::builder()
                .header(control)
                .header(ContentTransferEncoding::SevenBit)
                .body(String::from("Version: 1\r\n")),
        )
        .singlepart(
            SinglePart::builder()
                .header(octet_stream)
                .header(ContentDisposition::inline_with_name("encrypted.asc"))
                .header(ContentTransferEncoding::SevenBit)
                .body(armored),
        ))
}

/// What the outside of an encrypted mail shows: nothing a visitor gave but, where the
/// mail is about one person, their bare address as Reply-To.
#[derive(Debug, Clone)]
pub struct Outer<'a> {
    /// `mail.from`.
    pub from: &'a Mailbox,
    /// The section's contacts.
    pub to: &'a [Mailbox],
    /// A fixed subject holding no personal data (`New sign-up 0190…`).
    pub subject: String,
    pub message_id: &'a str,
    pub date: std::time::SystemTime,
    /// The visitor's address, without their name; `None` for mail about no one person.
    pub reply_to: Option<Address>,
}

/// The `multipart/encrypted` mail `outer` describes, around `armored` (an OpenPGP
/// message made earlier, as sealed storage makes it when the sign-up is stored).
///
/// # Errors
/// [`BuildError::Message`] when lettre refuses the message.
pub fn wrap(outer: &Outer<'_>, armored: String) -> Result<Message, BuildError> {
    let mut builder = Message::builder()
        .from(outer.from.clone())
        .subject(outer.subject.clone())
        .message_id(Some(outer.message_id.to_owned()))
        .date(outer.date)
        .header(AutoSubmitted);
    for contact in outer.to {
        builder = builder.to(contact.clone());
    }
    if let Some(address) = &outer.reply_to {
        builder = builder.reply_to(Mailbox::new(None, address.clone()));
    }
    builder
        .multipart(encrypted_parts(armored)?)
        .map_err(BuildError::Message)
}

/// The mail `headers` and `body` make, encrypted to `keys` as PGP/MIME with `outer`
/// outside: what a section with `pgp_keys` receives.
///
/// # Errors
/// [`BuildError::Message`] when lettre refuses a message; [`BuildError::Encrypt`] when
/// encryption fails.
pub fn encrypt(
    headers: MessageBuilder,
    body: SinglePart,
    keys: &[Certificate],
    outer: &Outer<'_>,
) -> Result<Message, BuildError> {
    let payload = protected_payload(headers, body)?;
    let recipients: Vec<&Certificate> = keys.iter().collect();
    let armored = openpgp::encrypt_armored(&recipients, payload)
        .map_err(|error| BuildError::Encrypt(error.to_string()))?;
    wrap(outer, armored)
}
