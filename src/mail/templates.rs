//! Notification templates, one file per language under templates/mail/, built in.

use std::collections::HashMap;

use serde::Deserialize;

use crate::domain::LanguageTag;

include!(concat!(env!("OUT_DIR"), "/mail_templates.rs"));

/// The language used when a section's language has no template.
pub const DEFAULT_LANGUAGE: &str = "en";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub subject: String,
    pub intro: String,
    /// Shown after the intro when the person signed up before.
    pub returning: String,
    pub footer: String,
    pub labels: Labels,
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

#[derive(Debug, thiserror::Error)]
#[error("the mail template for `{language}` is invalid: {source}")]
pub struct TemplateError {
    language: String,
    #[source]
    source: toml::de::Error,
}

/// Every built-in template, parsed.
#[derive(Debug, Clone)]
pub struct Templates {
    by_language: HashMap<String, Template>,
}

impl Templates {
    pub fn load() -> Result<Self, TemplateError> {
        let mut by_language = HashMap::new();
        for (language, text) in MAIL_TEMPLATES {
            let template = toml::from_str(text).map_err(|source| TemplateError {
                language: (*language).to_owned(),
                source,
            })?;
            by_language.insert(language.to_ascii_lowercase(), template);
        }
        Ok(Self { by_language })
    }

    /// The template for `language`: the exact tag, else its primary language, else
    /// English. `None` only if no English template is built in.
    pub fn for_language(&self, language: &LanguageTag) -> Option<&Template> {
        let tag = language.as_str().to_ascii_lowercase();
        let primary = tag.split('-').next().unwrap_or_default();
        self.by_language
            .get(&tag)
            .or_else(|| self.by_language.get(primary))
            .or_else(|| self.by_language.get(DEFAULT_LANGUAGE))
    }

    pub fn has_language(&self, language: &LanguageTag) -> bool {
        let tag = language.as_str().to_ascii_lowercase();
        let primary = tag.split('-').next().unwrap_or_default();
        self.by_language.contains_key(&tag) || self.by_language.contains_key(primary)
    }

    pub fn languages(&self) -> Vec<&str> {
        let mut languages: Vec<&str> = self.by_language.keys().map(String::as_str).collect();
        languages.sort_unstable();
        languages
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
    fn placeholders_are_replaced_once() {
        let rendered = render(
            "Hello {name} of {section} {unknown}",
            &[("name", "{section}"), ("section", "Norway")],
        );
        assert_eq!(rendered, "Hello {section} of Norway {unknown}");
    }
}
