//! `[[sections]]` and `[fallback]`: who is told of a sign-up from which country.
//!
//! Written here as in the file; `routing::Routing` parses the countries, contacts and
//! languages and checks them, since only it knows what a mailbox and a section are.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::domain::ConfirmationMode;

/// A national section, as written in the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SectionSettings {
    /// Shown to organisers and in exports; a token's `sections` name it.
    pub name: String,
    /// ISO 3166-1 alpha-2 codes (`NO`); each country belongs to one section only.
    pub countries: Vec<String>,
    /// Mailboxes (`Oslo office <oslo@example.org>`) told of each sign-up.
    pub contacts: Vec<String>,
    /// The language of the notification: a BCP 47 tag (`nb`).
    pub language: String,
    /// What a visitor of this section hears after signing up; unset: `form.confirmation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation: Option<ConfirmationMode>,
    /// ASCII-armoured OpenPGP public keys (`keys/norway.asc`), relative to the
    /// configuration file's folder. With keys, every mail to the contacts that holds
    /// personal data is PGP/MIME (RFC 3156), encrypted to all of them; without, clear.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pgp_keys: Vec<PathBuf>,
}

/// Who is told of sign-ups from countries no section covers, as written in the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FallbackSettings {
    /// Shown to organisers and in exports, like a section's name.
    pub name: String,
    /// Mailboxes told of each sign-up.
    pub contacts: Vec<String>,
    /// The language of the notification: a BCP 47 tag.
    pub language: String,
    /// What a visitor routed to the fallback hears; unset: `form.confirmation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation: Option<ConfirmationMode>,
    /// ASCII-armoured OpenPGP public keys (`keys/norway.asc`), relative to the
    /// configuration file's folder. With keys, every mail to the contacts that holds
    /// personal data is PGP/MIME (RFC 3156), encrypted to all of them; without, clear.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pgp_keys: Vec<PathBuf>,
}
