//! Which section hears of a sign-up: the section covering the visitor's country, else
//! the fallback. Built and checked once, at start-up and by `check-config`.

use std::collections::HashMap;
use std::fmt::Write;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use lettre::message::Mailbox;

use crate::config::{ConfigError, Settings};
use crate::domain::{ConfirmationMode, CountryCode, LanguageTag, ReservedDomain, Timestamp};
use crate::openpgp::{self, Certificate};

/// A key that expires within this long of start-up is warned about (`check-config`,
/// the start-up log): mail encrypted to it soon cannot be read by new software.
pub const KEY_EXPIRY_WARNING: Duration = Duration::from_secs(30 * 86_400);

/// A section (or the fallback) with everything parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub countries: Vec<CountryCode>,
    pub contacts: Vec<Mailbox>,
    pub language: LanguageTag,
    /// What a visitor routed here hears: the section's `confirmation`, else the form's.
    pub confirmation: ConfirmationMode,
    /// The contacts' OpenPGP keys (`pgp_keys`), each checked usable for encryption:
    /// mail about sign-ups to this section is encrypted to all of them. Empty: clear.
    pub pgp_keys: Vec<Certificate>,
}

impl Section {
    /// Whether mail with personal data to this section is encrypted (it has keys).
    pub fn encrypts(&self) -> bool {
        !self.pgp_keys.is_empty()
    }
}

#[derive(Debug, Clone)]
pub struct Routing {
    sections: Vec<Section>,
    by_country: HashMap<CountryCode, usize>,
    fallback: Section,
    /// `storage.seal_keys`: empty unless storage is sealed.
    seal_keys: Vec<Certificate>,
    /// Whether the sections and the fallback are the shipped example's
    /// ([`Settings::routes_to_shipped_example`]).
    shipped_example: bool,
}

/// A section's (or the fallback's) contact at a domain reserved for examples: mail to
/// it reaches nobody.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservedContact {
    /// Where it is configured: `sections[0].contacts[1]`, `fallback.contacts[0]`.
    pub key: String,
    /// The section's (or the fallback's) name.
    pub section: String,
    /// The address's domain, as configured (`oslo.example.org`).
    pub domain: String,
    /// The reserved name it falls under.
    pub reserved: ReservedDomain,
}

/// How an operator replaces the example routing, for the messages that say it is in
/// force.
const CONFIGURE_ROUTING: &str = "write your own [[sections]] and [fallback] in a \
     configuration file (--config FILE or JOINFORM_CONFIG), or set JOINFORM_SECTIONS and \
     JOINFORM_FALLBACK";

/// Reads and checks the keys at `paths` (`key` names them in errors, as
/// `sections[0].pgp_keys[1]`).
fn read_keys(
    key: &str,
    paths: &[PathBuf],
    now: SystemTime,
) -> Result<Vec<Certificate>, ConfigError> {
    let mut keys: Vec<Certificate> = Vec::new();
    for (index, path) in paths.iter().enumerate() {
        let found = openpgp::read_certificates(path, now)
            .map_err(|error| ConfigError::bad(format!("{key}[{index}]"), error.to_string()))?;
        for certificate in found {
            // The same key listed twice would be encrypted to twice: harmless, but
            // a sign of a mistake in the list.
            if keys.contains(&certificate) {
                return Err(ConfigError::bad(
                    format!("{key}[{index}]"),
                    format!("key {} is listed twice", certificate.fingerprint()),
                ));
            }
            keys.push(certificate);
        }
    }
    Ok(keys)
}

fn parse_contacts(key: &str, contacts: &[String]) -> Result<Vec<Mailbox>, ConfigError> {
    if contacts.is_empty() {
        return Err(ConfigError::bad(
            key.to_owned(),
            "needs at least one contact",
        ));
    }
    contacts
        .iter()
        .enumerate()
        .map(|(index, contact)| {
            contact.parse::<Mailbox>().map_err(|error| {
                ConfigError::bad(
                    format!("{key}[{index}]"),
                    format!(
                        "`{contact}` is not a mailbox such as \"Oslo <oslo@example.org>\": {error}"
                    ),
                )
            })
        })
        .collect()
}

fn parse_language(key: &str, language: &str) -> Result<LanguageTag, ConfigError> {
    match LanguageTag::parse(language) {
        Ok(Some(tag)) => Ok(tag),
        _ => Err(ConfigError::bad(
            key.to_owned(),
            format!("`{language}` is not a language tag such as en or nb"),
        )),
    }
}

fn parse_name(key: &str, name: &str) -> Result<String, ConfigError> {
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed.len() > 100 || trimmed.chars().any(char::is_control) {
        return Err(ConfigError::bad(
            key.to_owned(),
            "must be 1-100 characters on one line",
        ));
    }
    Ok(trimmed.to_owned())
}

impl Routing {
    /// The routing `settings` describe, with every OpenPGP key read and checked now.
    ///
    /// # Errors
    /// The first unusable value, by its key: a bad name, country, contact or language;
    /// a key file unreadable, revoked, expired or unable to encrypt; in a sealed
    /// installation, a section without `pgp_keys` or one that mails its visitors.
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        Self::from_settings_at(settings, SystemTime::now())
    }

    /// As [`Routing::from_settings`], checking keys' expiry at `now`.
    ///
    /// # Errors
    /// As [`Routing::from_settings`].
    pub fn from_settings_at(settings: &Settings, now: SystemTime) -> Result<Self, ConfigError> {
        let mut sections = Vec::with_capacity(settings.sections.len());
        let mut by_country = HashMap::new();
        for (index, raw) in settings.sections.iter().enumerate() {
            let key = format!("sections[{index}]");
            let name = parse_name(&format!("{key}.name"), &raw.name)?;
            if sections.iter().any(|s: &Section| s.name == name) {
                return Err(ConfigError::bad(
                    format!("{key}.name"),
                    format!("`{name}` is used twice"),
                ));
            }
            if raw.countries.is_empty() {
                return Err(ConfigError::bad(
                    format!("{key}.countries"),
                    "needs at least one country",
                ));
            }
            let mut countries = Vec::with_capacity(raw.countries.len());
            for code in &raw.countries {
                let country = CountryCode::parse(code).map_err(|_| {
                    ConfigError::bad(
                        format!("{key}.countries"),
                        format!("`{code}` is not an assigned ISO 3166-1 alpha-2 code"),
                    )
                })?;
                if let Some(&other) = by_country.get(&country) {
                    let other: &Section = &sections[other];
                    return Err(ConfigError::bad(
                        format!("{key}.countries"),
                        format!("{country} is already in section `{}`", other.name),
                    ));
                }
                by_country.insert(country, index);
                countries.push(country);
            }
            sections.push(Section {
                name,
                countries,
                contacts: parse_contacts(&format!("{key}.contacts"), &raw.contacts)?,
                language: parse_language(&format!("{key}.language"), &raw.language)?,
                confirmation: settings.confirmation_of(raw.confirmation),
                pgp_keys: read_keys(&format!("{key}.pgp_keys"), &raw.pgp_keys, now)?,
            });
        }
        let raw = settings.fallback.as_ref().ok_or_else(|| {
            ConfigError::bad(
                "fallback",
                "missing: add a [fallback] with name, contacts and language for countries no \
                 section covers",
            )
        })?;
        let name = parse_name("fallback.name", &raw.name)?;
        if sections.iter().any(|s| s.name == name) {
            return Err(ConfigError::bad(
                "fallback.name",
                format!("`{name}` is also a section's name"),
            ));
        }
        let fallback = Section {
            name,
            countries: Vec::new(),
            contacts: parse_contacts("fallback.contacts", &raw.contacts)?,
            language: parse_language("fallback.language", &raw.language)?,
            confirmation: settings.confirmation_of(raw.confirmation),
            pgp_keys: read_keys("fallback.pgp_keys", &raw.pgp_keys, now)?,
        };
        let seal_keys = read_keys("storage.seal_keys", &settings.storage.seal_keys, now)?;
        let routing = Self {
            sections,
            by_country,
            fallback,
            seal_keys,
            shipped_example: settings.routes_to_shipped_example(),
        };
        routing.check_sealed()?;
        Ok(routing)
    }

    /// In a sealed installation the server cannot read a sign-up back, so it cannot
    /// mail a section in clear: every section needs keys. (Mails to the visitor are
    /// built while the request still holds the clear sign-up, and kept in memory.)
    fn check_sealed(&self) -> Result<(), ConfigError> {
        if !self.is_sealed() {
            return Ok(());
        }
        for (index, section) in self.sections.iter().enumerate() {
            check_sealed_section(&format!("sections[{index}]"), section)?;
        }
        check_sealed_section("fallback", &self.fallback)
    }

    /// The fingerprints of `storage.seal_keys` (upper-case hex), for the start-up log;
    /// empty when storage is not sealed.
    pub fn seal_fingerprints(&self) -> Vec<&str> {
        self.seal_keys
            .iter()
            .map(Certificate::fingerprint)
            .collect()
    }

    /// Whether storage is sealed (`storage.seal_keys` is set).
    pub fn is_sealed(&self) -> bool {
        !self.seal_keys.is_empty()
    }

    /// The keys a sealed submission of `section` is encrypted to: the installation's
    /// `seal_keys`, then the section's `pgp_keys`. Empty when storage is not sealed.
    pub fn seal_recipients<'a>(&'a self, section: &'a Section) -> Vec<&'a Certificate> {
        if !self.is_sealed() {
            return Vec::new();
        }
        let mut recipients: Vec<&Certificate> = self.seal_keys.iter().collect();
        for key in &section.pgp_keys {
            if !recipients.contains(&key) {
                recipients.push(key);
            }
        }
        recipients
    }

    /// Every key that expires within [`KEY_EXPIRY_WARNING`] of `now`, as lines for
    /// `check-config` and the start-up log: where it is configured, its fingerprint
    /// and the day it expires.
    pub fn expiring_keys(&self, now: SystemTime) -> Vec<String> {
        let mut lines = Vec::new();
        let mut note = |place: &str, key: &Certificate| {
            if key.expires_within(now, KEY_EXPIRY_WARNING)
                && let Some(at) = key.expires_at()
            {
                lines.push(format!(
                    "{place}: key {} expires on {}: extend it and export it again before \
                     then, since the server will not start with an expired key, and what a \
                     running server encrypts to it meanwhile may not open in new software",
                    key.fingerprint(),
                    Timestamp::from_system_time(at).date_text()
                ));
            }
        };
        for section in self.sections_and_fallback() {
            for key in &section.pgp_keys {
                note(&format!("section {}", section.name), key);
            }
        }
        for key in &self.seal_keys {
            note("storage.seal_keys", key);
        }
        lines
    }

    /// Every contact, of every section and the fallback, at a domain reserved for
    /// examples and tests ([`ReservedDomain`]), in the order of the configuration.
    pub fn reserved_contacts(&self) -> Vec<ReservedContact> {
        let keys = (0..self.sections.len())
            .map(|index| format!("sections[{index}]"))
            .chain(std::iter::once("fallback".to_owned()));
        let mut found = Vec::new();
        for (key, section) in keys.zip(self.sections_and_fallback()) {
            for (index, contact) in section.contacts.iter().enumerate() {
                let domain = contact.email.domain();
                if let Some(reserved) = ReservedDomain::of(domain) {
                    found.push(ReservedContact {
                        key: format!("{key}.contacts[{index}]"),
                        section: section.name.clone(),
                        domain: domain.to_owned(),
                        reserved,
                    });
                }
            }
        }
        found
    }

    /// One line when no sign-up can reach a person: the routing is the shipped
    /// example, or every contact is at a reserved domain. `serve` logs it as a warning
    /// at start and `check-config` prints it; it names no address.
    pub fn example_warning(&self) -> Option<String> {
        let contacts = self
            .sections_and_fallback()
            .map(|section| section.contacts.len())
            .sum::<usize>();
        if self.shipped_example {
            Some(format!(
                "routing is the shipped example (the sections and fallback of the shipped \
                 config/joinform.toml, contacts at example.org): no sign-up reaches a person; \
                 {CONFIGURE_ROUTING}"
            ))
        } else if self.reserved_contacts().len() == contacts {
            Some(format!(
                "every contact of every section and the fallback is at a domain reserved for \
                 examples (example.org, .test, ...): no sign-up reaches a person; \
                 {CONFIGURE_ROUTING}"
            ))
        } else {
            None
        }
    }

    /// For `check-config` with `mail.transport = "smtp"`: refuses a contact, or the
    /// sender `from` (`mail.from`), at a domain reserved for examples. Over SMTP such
    /// mail goes nowhere, or is refused, while the server looks live. `serve` does not
    /// refuse (tests deliver to `example.org` through a local SMTP server): it logs
    /// [`Routing::smtp_warnings`].
    ///
    /// # Errors
    /// [`ConfigError::BadValue`] naming the first such contact's key and section and
    /// its domain (never the whole address), with how many more there are; else the
    /// sender's, at `mail.from`.
    pub fn check_smtp_recipients(&self, from: &Mailbox) -> Result<(), ConfigError> {
        let reserved = self.reserved_contacts();
        if let Some(first) = reserved.first() {
            let more = match reserved.len() - 1 {
                0 => String::new(),
                1 => " (and 1 more contact at a reserved domain)".to_owned(),
                n => format!(" (and {n} more contacts at reserved domains)"),
            };
            return Err(ConfigError::bad(
                first.key.clone(),
                format!(
                    "section `{}` is mailed over SMTP (mail.transport = \"smtp\") at the \
                     domain `{}`: {}; write the section's real contacts{more}",
                    first.section, first.domain, first.reserved
                ),
            ));
        }
        if let Some(reserved) = ReservedDomain::of(from.email.domain()) {
            return Err(ConfigError::bad(
                "mail.from",
                format!(
                    "the sender's domain `{}`: {reserved}, so receivers cannot check the \
                     sender and replies and bounces go nowhere; use a mailbox of your \
                     organisation's domain",
                    from.email.domain()
                ),
            ));
        }
        Ok(())
    }

    /// What `serve` logs at start with `mail.transport = "smtp"`: one line per section
    /// (and the fallback) with contacts at reserved domains, naming the domains, and
    /// one for a sender at one.
    pub fn smtp_warnings(&self, from: &Mailbox) -> Vec<String> {
        let mut by_section: Vec<(&str, Vec<&str>)> = Vec::new();
        let reserved = self.reserved_contacts();
        for contact in &reserved {
            let domain = contact.domain.as_str();
            match by_section.last_mut() {
                Some((section, domains)) if *section == contact.section => {
                    if !domains.contains(&domain) {
                        domains.push(domain);
                    }
                }
                _ => by_section.push((&contact.section, vec![domain])),
            }
        }
        let mut lines: Vec<String> = by_section
            .into_iter()
            .map(|(section, domains)| {
                format!(
                    "section `{section}`: contacts at {} are at domains reserved for examples \
                     and tests (RFC 2606, RFC 6761), so its mail sent over SMTP reaches no one",
                    domains
                        .iter()
                        .map(|domain| format!("`{domain}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
            .collect();
        if let Some(reserved) = ReservedDomain::of(from.email.domain()) {
            lines.push(format!(
                "mail.from: the sender's domain `{}`: {reserved}; receivers cannot check \
                 the sender",
                from.email.domain()
            ));
        }
        lines
    }

    /// The section that hears of a sign-up from `country`.
    pub fn route(&self, country: CountryCode) -> &Section {
        self.by_country
            .get(&country)
            .and_then(|&index| self.sections.get(index))
            .unwrap_or(&self.fallback)
    }

    /// A section (or the fallback) by its name, as stored with a submission.
    pub fn by_name(&self, name: &str) -> Option<&Section> {
        self.sections_and_fallback()
            .find(|section| section.name == name)
    }

    /// Whether the section `name` asks its visitors to confirm (double opt-in); a
    /// section no longer configured goes by the fallback, as its mail would.
    pub fn confirms(&self, name: &str) -> bool {
        self.by_name(name).unwrap_or(&self.fallback).confirmation
            == crate::domain::ConfirmationMode::DoubleOptIn
    }

    /// Whether any section (or the fallback) asks its visitors to confirm.
    pub fn any_confirms(&self) -> bool {
        self.sections_and_fallback()
            .any(|section| section.confirmation == crate::domain::ConfirmationMode::DoubleOptIn)
    }

    pub fn fallback(&self) -> &Section {
        &self.fallback
    }

    pub fn sections_and_fallback(&self) -> impl Iterator<Item = &Section> {
        self.sections.iter().chain(std::iter::once(&self.fallback))
    }

    /// The routing table, as `check-config` prints it: each section's countries and
    /// contacts, then whether its mail is encrypted (with each key's fingerprint) or
    /// clear text, and whether storage is sealed.
    pub fn table(&self) -> String {
        let mut table = String::from("routing:\n");
        let contacts = |section: &Section| {
            section
                .contacts
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        for section in &self.sections {
            let countries: Vec<&str> = section.countries.iter().map(|c| c.as_str()).collect();
            let _ = writeln!(
                table,
                "  {} [{}]: {} -> {}",
                section.name,
                section.language,
                countries.join(" "),
                contacts(section)
            );
        }
        let _ = writeln!(
            table,
            "  {} [{}] (fallback): every other country -> {}",
            self.fallback.name,
            self.fallback.language,
            contacts(&self.fallback)
        );
        table.push_str("mail to sections:\n");
        for section in self.sections_and_fallback() {
            if section.encrypts() {
                let keys: Vec<&str> = section
                    .pgp_keys
                    .iter()
                    .map(Certificate::fingerprint)
                    .collect();
                let _ = writeln!(
                    table,
                    "  {}: OpenPGP-encrypted (PGP/MIME) to {}",
                    section.name,
                    keys.join(", ")
                );
            } else {
                let _ = writeln!(table, "  {}: clear text (no pgp_keys)", section.name);
            }
        }
        if self.is_sealed() {
            let keys: Vec<&str> = self
                .seal_keys
                .iter()
                .map(Certificate::fingerprint)
                .collect();
            let _ = writeln!(
                table,
                "storage: sealed, personal fields encrypted to {} and each section's keys",
                keys.join(", ")
            );
        } else {
            table.push_str("storage: clear (no storage.seal_keys)\n");
        }
        table
    }
}

fn check_sealed_section(key: &str, section: &Section) -> Result<(), ConfigError> {
    if !section.encrypts() {
        return Err(ConfigError::bad(
            format!("{key}.pgp_keys"),
            format!(
                "storage is sealed (storage.seal_keys), so section `{}` needs pgp_keys: its \
                 notifications are encrypted when the sign-up is stored, and the server \
                 cannot read them afterwards",
                section.name
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{FallbackSettings, SectionSettings};

    fn settings(sections: Vec<SectionSettings>, fallback: bool) -> Settings {
        Settings {
            sections,
            fallback: fallback.then(|| FallbackSettings {
                name: "International".into(),
                contacts: vec!["Desk <desk@example.org>".into()],
                language: "en".into(),
                confirmation: None,
                pgp_keys: Vec::new(),
            }),
            ..Settings::default()
        }
    }

    fn section(name: &str, countries: &[&str], contacts: &[&str]) -> SectionSettings {
        SectionSettings {
            name: name.into(),
            countries: countries.iter().map(|c| (*c).to_owned()).collect(),
            contacts: contacts.iter().map(|c| (*c).to_owned()).collect(),
            language: "nb".into(),
            confirmation: None,
            pgp_keys: Vec::new(),
        }
    }

    #[test]
    fn a_country_goes_to_its_section_and_others_to_the_fallback() {
        let routing = Routing::from_settings(&settings(
            vec![section(
                "Norway",
                &["no", "SJ"],
                &["Oslo <oslo@example.org>"],
            )],
            true,
        ))
        .unwrap();
        let norway = CountryCode::parse("NO").unwrap();
        let svalbard = CountryCode::parse("SJ").unwrap();
        let peru = CountryCode::parse("PE").unwrap();
        assert_eq!(routing.route(norway).name, "Norway");
        assert_eq!(routing.route(svalbard).name, "Norway");
        assert_eq!(routing.route(peru).name, "International");
        assert_eq!(
            routing.by_name("International").unwrap().name,
            "International"
        );
        assert!(
            routing
                .table()
                .contains("Norway [nb]: NO SJ -> Oslo <oslo@example.org>")
        );
    }

    #[test]
    fn bad_routing_is_refused_with_the_key() {
        let ok = || section("Norway", &["NO"], &["oslo@example.org"]);
        let cases = [
            (
                vec![ok(), section("Nordics", &["SE", "NO"], &["a@example.org"])],
                true,
                "sections[1].countries",
                "a country in two sections",
            ),
            (
                vec![section("Norway", &["XX"], &["oslo@example.org"])],
                true,
                "sections[0].countries",
                "an unknown country",
            ),
            (
                vec![section("Norway", &["NO"], &["not a mailbox"])],
                true,
                "sections[0].contacts[0]",
                "an unparsable contact",
            ),
            (
                vec![section("Norway", &["NO"], &[])],
                true,
                "sections[0].contacts",
                "no contacts",
            ),
            (vec![ok()], false, "fallback", "no fallback"),
            (
                vec![ok(), section("Norway", &["SE"], &["a@example.org"])],
                true,
                "sections[1].name",
                "a name used twice",
            ),
        ];
        for (sections, fallback, key, reason) in cases {
            match Routing::from_settings(&settings(sections, fallback)) {
                Err(ConfigError::BadValue { key: found, .. }) => assert_eq!(found, key, "{reason}"),
                other => panic!("{reason}: {other:?}"),
            }
        }
    }

    fn key(name: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/openpgp")
            .join(name)
    }

    /// A section's keys are read and checked, printed by fingerprint; a section
    /// without keys is said to be mailed in clear text.
    #[test]
    fn keys_are_read_per_section_and_the_table_says_who_gets_clear_text() {
        let mut norway = section("Norway", &["NO"], &["oslo@example.org"]);
        norway.pgp_keys = vec![key("norway.asc"), key("sweden-rsa.asc")];
        let routing = Routing::from_settings(&settings(vec![norway], true)).unwrap();
        let table = routing.table();
        assert!(
            table.contains(
                "Norway: OpenPGP-encrypted (PGP/MIME) to 14E6B35B2E26669A693B3526E5516617CE918B09, "
            ),
            "{table}"
        );
        assert!(
            table.contains("International: clear text (no pgp_keys)"),
            "{table}"
        );
        assert!(table.contains("storage: clear"), "{table}");
        assert!(!routing.is_sealed());
        assert!(routing.seal_recipients(routing.fallback()).is_empty());
    }

    #[test]
    fn unusable_keys_are_refused_by_their_key_in_the_file() {
        for (file, words) in [
            ("expired.asc", "expired on 2020-01-02"),
            ("revoked.asc", "is revoked"),
            ("sign-only.asc", "can only sign"),
            ("missing.asc", "cannot read the key file"),
        ] {
            let mut norway = section("Norway", &["NO"], &["oslo@example.org"]);
            norway.pgp_keys = vec![key("norway.asc"), key(file)];
            match Routing::from_settings(&settings(vec![norway], true)) {
                Err(ConfigError::BadValue { key, problem }) => {
                    assert_eq!(key, "sections[0].pgp_keys[1]", "{file}");
                    assert!(problem.contains(words), "{file}: {problem}");
                }
                other => panic!("{file}: {other:?}"),
            }
        }
        let mut twice = section("Norway", &["NO"], &["oslo@example.org"]);
        twice.pgp_keys = vec![key("norway.asc"), key("norway.asc")];
        let error = Routing::from_settings(&settings(vec![twice], true)).unwrap_err();
        assert!(error.to_string().contains("listed twice"), "{error}");
    }

    /// Sealed storage needs every section (and the fallback) to have keys; its sign-ups
    /// are sealed to the operator's keys and the section's.
    #[test]
    fn a_sealed_installation_needs_keys_everywhere() {
        let keyed = |name: &str, country: &str| {
            let mut section = section(name, &[country], &["a@example.org"]);
            section.pgp_keys = vec![key("norway.asc")];
            section
        };
        let mut sealed = settings(vec![keyed("Norway", "NO")], true);
        sealed.storage.seal_keys = vec![key("operator.asc")];
        let error = Routing::from_settings(&sealed).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("fallback.pgp_keys: storage is sealed"),
            "{error}"
        );
        if let Some(fallback) = &mut sealed.fallback {
            fallback.pgp_keys = vec![key("sweden-rsa.asc")];
        }
        let routing = Routing::from_settings(&sealed).unwrap();
        assert!(routing.is_sealed());
        let recipients: Vec<&str> = routing
            .seal_recipients(routing.fallback())
            .into_iter()
            .map(Certificate::fingerprint)
            .collect();
        assert_eq!(recipients.len(), 2);
        assert_eq!(recipients[0], "E420995879C896C6F28CDDB9893165786908C774");
        // Its visitors may be mailed: those mails are built while the request still
        // holds the clear sign-up, and kept in memory until sent.
        sealed.sections[0].confirmation = Some(ConfirmationMode::Notice);
        if let Some(fallback) = &mut sealed.fallback {
            fallback.confirmation = Some(ConfirmationMode::DoubleOptIn);
        }
        assert!(Routing::from_settings(&sealed).is_ok());
    }

    #[test]
    fn keys_expiring_within_thirty_days_are_warned_about() {
        let made = SystemTime::UNIX_EPOCH + Duration::from_secs(1_577_836_800);
        let mut norway = section("Norway", &["NO"], &["oslo@example.org"]);
        norway.pgp_keys = vec![key("expired.asc")];
        let routing = Routing::from_settings_at(&settings(vec![norway], true), made).unwrap();
        let warnings = routing.expiring_keys(made);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].starts_with(
            "section Norway: key 6050D9AE13E814037AF3866B4D3D3168B8F9DFE7 expires on 2020-01-02"
        ));
        let plain = Routing::from_settings(&settings(
            vec![section("Norway", &["NO"], &["a@example.org"])],
            true,
        ))
        .unwrap();
        assert!(plain.expiring_keys(SystemTime::now()).is_empty());
    }
}
