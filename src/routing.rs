//! Which section hears of a sign-up: the section covering the visitor's country, else
//! the fallback. Built and checked once, at start-up and by `check-config`.

use std::collections::HashMap;
use std::fmt::Write;

use lettre::message::Mailbox;

use crate::config::{ConfigError, Settings};
use crate::domain::{ConfirmationMode, CountryCode, LanguageTag};

/// A section (or the fallback) with everything parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub countries: Vec<CountryCode>,
    pub contacts: Vec<Mailbox>,
    pub language: LanguageTag,
    /// What a visitor routed here hears: the section's `confirmation`, else the form's.
    pub confirmation: ConfirmationMode,
}

#[derive(Debug, Clone)]
pub struct Routing {
    sections: Vec<Section>,
    by_country: HashMap<CountryCode, usize>,
    fallback: Section,
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
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
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
        };
        Ok(Self {
            sections,
            by_country,
            fallback,
        })
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

    /// The routing table, as `check-config` prints it.
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
        table
    }
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
}
