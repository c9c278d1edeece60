//! Notification templates: the translated sentences and labels, one file per language
//! under templates/mail/ (`<tag>.toml`), built in; the country names (CLDR, via
//! [`crate::i18n::CountryNames`]) in each of their languages; and the body's layout,
//! templates/mail/notification.txt, an askama template checked when the binary is
//! built. The sentences' own `{name}` placeholders are filled by [`render`].

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use crate::domain::{CountryCode, LanguageTag};
use crate::i18n::CountryNames;

include!(concat!(env!("OUT_DIR"), "/mail_templates.rs"));

/// The language used when a section's language has no template.
pub const DEFAULT_LANGUAGE: &str = "en";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub subject: String,
    pub intro: String,
    /// The intro of a notification from sealed storage: it has no Reply-To outside the
    /// encryption, so it says to write to the address in it instead of replying.
    pub intro_sealed: String,
    /// Shown after the intro when the person signed up before.
    pub returning: String,
    pub footer: String,
    pub labels: Labels,
    /// The follow-up mails' texts (`[followup]`); a language without them gets the
    /// English ones ([`Templates::followup`]).
    #[serde(default)]
    pub followup: Option<FollowupTexts>,
    /// The overflow mail's texts (`[overflow]`); a language without them gets the
    /// English ones ([`Templates::overflow`]).
    #[serde(default)]
    pub overflow: Option<OverflowTexts>,
}

/// `[overflow]`: the overflow mail's sentences (sign-ups past
/// `mail.max_notifications_per_section_per_hour` in one mail, and held counts).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverflowTexts {
    /// `{section}`, `{count}`, `{held}`: sign-ups listed and held.
    pub subject: String,
    /// `{section}`, `{count}`: sign-ups listed, none held.
    pub subject_listed: String,
    /// `{section}`, `{held}`: held sign-ups only.
    pub subject_held: String,
    /// `{section}`, `{cap}`: above the list.
    pub intro: String,
    /// `{count}`, `{command}`: the sign-ups past the listed ones.
    pub more: String,
    /// `{new}`, `{held}`: how many are held.
    pub held: String,
    /// `{command}`: the review command.
    pub review: String,
    /// `{address}`: the review on the admin listener.
    pub review_admin: String,
}

/// `[followup]`: the notification's link line and the reminder, escalation and digest
/// mails' sentences.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FollowupTexts {
    /// `{link}`: the line under a notification's trailer.
    pub notification_link: String,
    /// `{name}`, `{country}`, `{date}`: a sign-up in a reminder or digest.
    pub entry: String,
    /// `{section}`, `{link}`: the link to a section's list.
    pub section_link: String,
    pub units: Units,
    pub states: StateNames,
    pub reminder: ReminderTexts,
    pub escalation: EscalationTexts,
    pub digest: DigestTexts,
}

/// The units a duration is written in (`3 d 4 h`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Units {
    pub day: String,
    pub hour: String,
    pub minute: String,
    pub second: String,
}

/// Each follow-up state's name.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateNames {
    pub new: String,
    pub contacted: String,
    pub joined: String,
    pub declined: String,
    pub unreachable: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReminderTexts {
    pub subject_one: String,
    pub subject: String,
    pub intro: String,
    pub waiting: String,
    /// `{count}`: the sign-ups past the listed ones, on the section's list.
    pub more: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationTexts {
    pub subject: String,
    pub intro: String,
    pub line: String,
    pub outro: String,
    pub footer: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestTexts {
    pub subject: String,
    pub intro: String,
    pub new: String,
    pub open: String,
    pub oldest: String,
    pub done: String,
    pub nothing: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Labels {
    pub name: String,
    pub email: String,
    pub phone: String,
    pub city: String,
    pub country: String,
    pub language: String,
    pub consent: String,
    pub yes: String,
    pub no: String,
    pub message: String,
    pub extra: String,
    pub submission_id: String,
    pub received: String,
    pub section: String,
}

/// A built-in template that does not parse. Its message names the file and TOML's
/// reason in one line, and it has no `source()`: every printer says the reason once.
#[derive(Debug, thiserror::Error)]
#[error("the mail template for `{language}` is invalid: {problem}")]
pub struct TemplateError {
    language: String,
    problem: toml::de::Error,
}

/// Every built-in template, parsed, with country names in each template's language.
#[derive(Debug, Clone)]
pub struct Templates {
    /// Lower-case tag → (the tag as shipped, its template).
    by_language: HashMap<String, (&'static str, Template)>,
    countries: std::sync::Arc<CountryNames>,
}

impl Templates {
    /// Parses every built-in template and builds their languages' country names.
    ///
    /// # Errors
    /// [`TemplateError`] names the first template that does not parse.
    pub fn load() -> Result<Self, TemplateError> {
        let mut by_language = HashMap::new();
        for (language, text) in MAIL_TEMPLATES {
            let template = toml::from_str(text).map_err(|problem| TemplateError {
                language: (*language).to_owned(),
                problem,
            })?;
            by_language.insert(language.to_ascii_lowercase(), (*language, template));
        }
        let countries = CountryNames::build(MAIL_TEMPLATES.iter().map(|(language, _)| *language));
        Ok(Self {
            by_language,
            countries: std::sync::Arc::new(countries),
        })
    }

    /// The shipped tag and template for `language`: the exact tag, else its primary
    /// language, else English.
    fn resolve(&self, language: &LanguageTag) -> Option<&(&'static str, Template)> {
        let tag = language.as_str().to_ascii_lowercase();
        let primary = tag.split('-').next().unwrap_or_default();
        self.by_language
            .get(&tag)
            .or_else(|| self.by_language.get(primary))
            .or_else(|| self.by_language.get(DEFAULT_LANGUAGE))
    }

    /// The template for `language`: the exact tag, else its primary language, else
    /// English. `None` only if no English template is built in.
    pub fn for_language(&self, language: &LanguageTag) -> Option<&Template> {
        self.resolve(language).map(|(_, template)| template)
    }

    /// The CLDR name of the country `code` (ISO 3166-1 alpha-2) in the language the
    /// mail for `language` is written in (see [`Self::for_language`]), so a section
    /// without its own template reads English names in an English mail. `None` for a
    /// code that is not an assigned country.
    pub fn country_name(&self, language: &LanguageTag, code: CountryCode) -> Option<&str> {
        let (shipped, _) = self.resolve(language)?;
        self.countries
            .list(shipped)
            .iter()
            .find(|(country, _)| *country == code)
            .map(|(_, name)| name.as_str())
    }

    /// The follow-up texts for `language`: its template's, else English's. `None` only
    /// if the English template has none.
    pub fn followup(&self, language: &LanguageTag) -> Option<&FollowupTexts> {
        self.for_language(language)
            .and_then(|template| template.followup.as_ref())
            .or_else(|| {
                self.by_language
                    .get(DEFAULT_LANGUAGE)
                    .and_then(|(_, template)| template.followup.as_ref())
            })
    }

    /// The overflow mail's texts for `language`: its template's, else English's. `None`
    /// only if the English template has none.
    pub fn overflow(&self, language: &LanguageTag) -> Option<&OverflowTexts> {
        self.for_language(language)
            .and_then(|template| template.overflow.as_ref())
            .or_else(|| {
                self.by_language
                    .get(DEFAULT_LANGUAGE)
                    .and_then(|(_, template)| template.overflow.as_ref())
            })
    }

    /// Whether `language` (or its primary language) has a template of its own.
    pub fn has_language(&self, language: &LanguageTag) -> bool {
        let tag = language.as_str().to_ascii_lowercase();
        let primary = tag.split('-').next().unwrap_or_default();
        self.by_language.contains_key(&tag) || self.by_language.contains_key(primary)
    }

    /// The built-in templates' tags, lower-case and sorted.
    pub fn languages(&self) -> Vec<&str> {
        let mut languages: Vec<&str> = self.by_language.keys().map(String::as_str).collect();
        languages.sort_unstable();
        languages
    }
}

/// The plain-text body of a notification (templates/mail/notification.txt): every
/// field the visitor gave, labelled. Plain text, so nothing is escaped.
#[derive(Debug, askama::Template)]
#[template(path = "mail/notification.txt", escape = "none")]
pub struct NotificationBody<'a> {
    /// The intro sentence, its placeholders filled.
    pub intro: String,
    /// The returning-sign-up sentence, for a person who signed up before.
    pub returning: Option<String>,
    /// The template's labels (the message's and the extra answers' headings).
    pub labels: &'a Labels,
    /// (label, value) of each field given, in order.
    pub fields: Vec<(&'a str, &'a str)>,
    /// The visitor's message, under its own heading.
    pub message: Option<&'a str>,
    /// The configured extra fields' answers, by name.
    pub extra: BTreeMap<String, String>,
    /// (label, value) of the submission's id, time and section.
    pub trailer: [(&'a str, &'a str); 3],
    /// The follow-up line with the sign-up's own link, when follow-up is on.
    pub followup: Option<String>,
    /// The line under the signature separator.
    pub footer: &'a str,
}

impl NotificationBody<'_> {
    /// The width of the label column: the longest label and its colon, and a space.
    fn width(&self) -> usize {
        self.fields
            .iter()
            .chain(&self.trailer)
            .map(|(label, _)| label.chars().count())
            .max()
            .unwrap_or(0)
            + 1
    }
}

/// The mail template's own filters (askama looks them up in a module named `filters`).
mod filters {
    use std::fmt::Display;

    /// `{{ label|column(width) }}`: the label and a colon, padded to `width` characters.
    #[askama::filter_fn]
    pub fn column(
        label: impl Display,
        _: &dyn askama::Values,
        width: &usize,
    ) -> askama::Result<String> {
        Ok(format!("{:<width$}", format!("{label}:"), width = *width))
    }
}

/// Replaces `{key}` placeholders in one pass: a value that itself contains `{name}` is
/// inserted as it is, never expanded again.
pub fn render(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let replaced = after.find('}').and_then(|end| {
            let key = &after[..end];
            values
                .iter()
                .find(|(name, _)| *name == key)
                .map(|(_, value)| (value, end))
        });
        match replaced {
            Some((value, end)) => {
                out.push_str(value);
                rest = &after[end + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_templates_parse_and_include_english_and_norwegian() {
        let templates = Templates::load().unwrap();
        assert!(templates.languages().contains(&"en"));
        assert!(templates.languages().contains(&"nb"));
        for language in templates.languages() {
            let tag = LanguageTag::parse(language).unwrap().unwrap();
            assert!(templates.followup(&tag).is_some(), "{language}");
            assert!(templates.overflow(&tag).is_some(), "{language}");
        }
        let swedish = LanguageTag::parse("sv").unwrap().unwrap();
        assert!(
            templates
                .followup(&swedish)
                .unwrap()
                .notification_link
                .starts_with("Follow-up:")
        );
    }

    #[test]
    fn languages_fall_back_to_primary_then_english() {
        let templates = Templates::load().unwrap();
        let tag = |t: &str| LanguageTag::parse(t).unwrap().unwrap();
        assert!(
            templates
                .for_language(&tag("nb-NO"))
                .unwrap()
                .subject
                .starts_with("Ny")
        );
        assert!(
            templates
                .for_language(&tag("xx"))
                .unwrap()
                .subject
                .starts_with("New")
        );
        assert!(!templates.has_language(&tag("xx")));
    }

    #[test]
    fn country_names_are_in_the_mails_language_with_english_as_fallback() {
        let templates = Templates::load().unwrap();
        let tag = |t: &str| LanguageTag::parse(t).unwrap().unwrap();
        let code = |c: &str| CountryCode::parse(c).unwrap();
        assert_eq!(
            templates.country_name(&tag("nb"), code("NO")),
            Some("Norge")
        );
        assert_eq!(
            templates.country_name(&tag("nb-NO"), code("SE")),
            Some("Sverige")
        );
        assert_eq!(
            templates.country_name(&tag("en"), code("NO")),
            Some("Norway")
        );
        // No Swedish template: the mail is English, and so are its country names.
        assert_eq!(
            templates.country_name(&tag("sv"), code("SE")),
            Some("Sweden")
        );
    }

    #[test]
    fn placeholders_are_replaced_once() {
        let rendered = render(
            "Hello {name} of {section} {unknown}",
            &[("name", "{section}"), ("section", "Norway")],
        );
        assert_eq!(rendered, "Hello {section} of Norway {unknown}");
    }
}
