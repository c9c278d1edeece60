//! The visitor-facing text, built into the binary, one TOML file per language in each
//! of three folders: templates/form/ (the form and thank-you pages), templates/visitor/
//! (the confirm, withdraw and my-data pages) and templates/visitor_mail/ (mails to
//! visitors); and country names from CLDR. The three files of a language make one
//! table: a key may be in only one of them.
//!
//! English (`en.toml`) is the reference: a string another language lacks falls back to
//! it, and a test fails when a shipped language lacks a key. The languages shipped are
//! the form's.

mod countries;

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::domain::FieldProblem;

pub use countries::CountryNames;

include!(concat!(env!("OUT_DIR"), "/form_texts.rs"));
include!(concat!(env!("OUT_DIR"), "/visitor_texts.rs"));
include!(concat!(env!("OUT_DIR"), "/visitor_mail_texts.rs"));

/// The language every other falls back to.
pub const REFERENCE_LANGUAGE: &str = "en";

/// Primary languages written right to left (among those we ship or may ship).
const RIGHT_TO_LEFT: [&str; 7] = ["ar", "dv", "fa", "he", "ps", "sd", "ur"];

/// Tags that name a shipped language under another code: Norwegian without a written
/// standard, and Nynorsk, read Bokmål more easily than English.
const ALIASES: [(&str, &str); 2] = [("no", "nb"), ("nn", "nb")];

#[derive(Debug, thiserror::Error)]
pub enum TranslationError {
    #[error("the form translation `{language}` is not a TOML table of strings: {source}")]
    Invalid {
        language: String,
        #[source]
        source: toml::de::Error,
    },
    #[error("no English form translation (templates/form/en.toml) is built in")]
    NoReference,
    #[error("the key `{key}` of `{language}` is in two of its files")]
    DuplicateKey { language: String, key: String },
    #[error("`{language}` has visitor texts but no form translation")]
    Orphan { language: String },
}

/// Every built-in translation, parsed.
#[derive(Debug)]
pub struct Translations {
    by_language: HashMap<&'static str, HashMap<String, String>>,
}

static TRANSLATIONS: OnceLock<Result<Translations, String>> = OnceLock::new();

/// The built-in translations, parsed on first use. Start-up calls [`check`], so a bad
/// file stops the server before any request; afterwards this cannot fail.
pub fn translations() -> Option<&'static Translations> {
    TRANSLATIONS
        .get_or_init(|| Translations::parse().map_err(|error| error.to_string()))
        .as_ref()
        .ok()
}

/// Parses every built-in translation, for start-up.
pub fn check() -> Result<(), TranslationError> {
    Translations::parse().map(|_| ())
}

/// The language tags shipped, sorted.
pub fn shipped() -> impl Iterator<Item = &'static str> {
    FORM_TEXTS.iter().map(|(tag, _)| *tag)
}

/// The shipped language for `wanted` (a BCP 47 tag in any case): the exact tag, else
/// its primary language, else an alias of it.
pub fn resolve(wanted: &str) -> Option<&'static str> {
    // Invisible characters around the value (a direction mark from copy-paste) are
    // trimmed as in every other field.
    let wanted = crate::domain::trim_edges(wanted)
        .to_ascii_lowercase()
        .replace('_', "-");
    let primary = wanted.split('-').next().unwrap_or_default();
    let aliased = ALIASES
        .iter()
        .find(|(alias, _)| *alias == primary)
        .map(|(_, target)| *target);
    [Some(wanted.as_str()), Some(primary), aliased]
        .into_iter()
        .flatten()
        .find_map(|candidate| shipped().find(|tag| tag.eq_ignore_ascii_case(candidate)))
}

/// Whether text in `language` runs right to left.
pub fn is_right_to_left(language: &str) -> bool {
    let primary = language.split('-').next().unwrap_or_default();
    RIGHT_TO_LEFT
        .iter()
        .any(|tag| tag.eq_ignore_ascii_case(primary))
}

impl Translations {
    fn parse() -> Result<Self, TranslationError> {
        let mut by_language: HashMap<&'static str, HashMap<String, String>> = HashMap::new();
        let parse = |language: &str, text: &str| {
            toml::from_str::<HashMap<String, String>>(text).map_err(|source| {
                TranslationError::Invalid {
                    language: language.to_owned(),
                    source,
                }
            })
        };
        for (language, text) in FORM_TEXTS {
            by_language.insert(*language, parse(language, text)?);
        }
        for (language, text) in VISITOR_TEXTS.iter().chain(VISITOR_MAIL_TEXTS) {
            let table = by_language
                .get_mut(language)
                .ok_or_else(|| TranslationError::Orphan {
                    language: (*language).to_owned(),
                })?;
            for (key, value) in parse(language, text)? {
                if table.contains_key(&key) {
                    return Err(TranslationError::DuplicateKey {
                        language: (*language).to_owned(),
                        key,
                    });
                }
                table.insert(key, value);
            }
        }
        if !by_language.contains_key(REFERENCE_LANGUAGE) {
            return Err(TranslationError::NoReference);
        }
        Ok(Self { by_language })
    }

    /// The keys of the reference language that `language` lacks, sorted.
    pub fn missing_keys(&self, language: &str) -> Vec<&str> {
        self.key_difference(REFERENCE_LANGUAGE, language)
    }

    /// Keys of `language` the reference does not have (typos), sorted.
    pub fn unknown_keys(&self, language: &str) -> Vec<&str> {
        self.key_difference(language, REFERENCE_LANGUAGE)
    }

    /// The keys `from` has and `other` lacks, sorted; none if either is not shipped.
    fn key_difference(&self, from: &str, other: &str) -> Vec<&str> {
        let (Some(from), Some(other)) = (self.by_language.get(from), self.by_language.get(other))
        else {
            return Vec::new();
        };
        let mut keys: Vec<&str> = from
            .keys()
            .filter(|key| !other.contains_key(*key))
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        keys
    }

    fn lookup(&self, language: &str, key: &str) -> Option<&str> {
        self.by_language
            .get(language)
            .and_then(|texts| texts.get(key))
            .or_else(|| self.by_language.get(REFERENCE_LANGUAGE)?.get(key))
            .map(String::as_str)
    }
}

/// The texts of one language, falling back to English string by string.
#[derive(Debug, Clone, Copy)]
pub struct Texts {
    language: &'static str,
}

impl Texts {
    /// `language` should be a shipped tag (from [`resolve`]); any other gets English.
    pub fn new(language: &'static str) -> Self {
        Self { language }
    }

    pub fn language(self) -> &'static str {
        self.language
    }

    /// The string for `key`; the key itself if even English lacks it, so that a
    /// mistake shows on the page instead of failing a request.
    pub fn get(self, key: &'static str) -> &'static str {
        translations()
            .and_then(|all| all.lookup(self.language, key))
            .unwrap_or(key)
    }

    /// The message for a field's problem.
    pub fn field_problem(self, problem: FieldProblem) -> String {
        let key = match problem {
            FieldProblem::Required => "error_required",
            FieldProblem::TooLong { .. } => "error_too_long",
            FieldProblem::ControlCharacters => "error_control_characters",
            FieldProblem::EncodedWord => "error_encoded_word",
            FieldProblem::InvalidEmail => "error_invalid_email",
            FieldProblem::InvalidCountry => "error_invalid_country",
            FieldProblem::InvalidPhone => "error_invalid_phone",
            FieldProblem::InvalidLanguage => "error_invalid_language",
            FieldProblem::ConsentRequired => "error_consent_required",
            FieldProblem::InvalidConsent => "error_invalid_consent",
            FieldProblem::InvalidType => "error_invalid_type",
        };
        let text = self.get(key);
        match problem {
            FieldProblem::TooLong { max } => text.replace("{max}", &max.to_string()),
            _ => text.to_owned(),
        }
    }

    /// The consent sentence as plain text, with the privacy link's words in place:
    /// what is stored with a submission as the text the visitor agreed to.
    pub fn consent_text(self) -> String {
        self.get("consent")
            .replace("{privacy}", self.get("privacy_link"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_language_has_every_key_and_no_other() {
        let all = translations().expect("the built-in translations parse");
        let required = [
            "en", "nb", "sv", "da", "de", "fr", "es", "pt", "it", "ru", "tr", "ar", "ur",
        ];
        for tag in required {
            assert!(shipped().any(|t| t == tag), "{tag} is shipped");
        }
        for tag in shipped() {
            assert_eq!(
                all.missing_keys(tag),
                Vec::<&str>::new(),
                "{tag} lacks keys"
            );
            assert_eq!(
                all.unknown_keys(tag),
                Vec::<&str>::new(),
                "{tag} has unknown keys"
            );
        }
    }

    #[test]
    fn placeholders_survive_translation() {
        for tag in shipped() {
            let texts = Texts::new(tag);
            assert!(texts.get("consent").contains("{privacy}"), "{tag}");
            assert!(texts.get("error_too_long").contains("{max}"), "{tag}");
            assert!(
                texts
                    .field_problem(FieldProblem::TooLong { max: 77 })
                    .contains("77")
            );
        }
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

    /// Every text of every language has exactly the placeholders of the English one,
    /// in all three folders: a translated or missing `{date}` or `{privacy}` would show
    /// as written, or leave the value (or the link) out.
    #[test]
    fn every_language_keeps_the_placeholders_of_english() {
        let all = translations().expect("the built-in translations parse");
        let english = &all.by_language[REFERENCE_LANGUAGE];
        for tag in shipped() {
            for (key, text) in english {
                let theirs = all.lookup(tag, key).unwrap_or_default();
                assert_eq!(
                    placeholders(theirs),
                    placeholders(text),
                    "{tag} {key}: {theirs}"
                );
            }
        }
    }

    #[test]
    fn a_missing_string_falls_back_to_english() {
        let all = translations().unwrap();
        assert_eq!(all.lookup("de", "no_such_key"), None);
        // A tag we do not ship reads English throughout.
        assert_eq!(Texts::new("xx").get("submit"), "Send");
        assert_eq!(Texts::new("de").get("submit"), "Absenden");
        assert_eq!(Texts::new("de").get("not_a_key"), "not_a_key");
    }

    #[test]
    fn languages_resolve_by_tag_primary_language_and_alias() {
        for (wanted, expected) in [
            ("de", Some("de")),
            ("DE-at", Some("de")),
            ("pt_BR", Some("pt")),
            ("no", Some("nb")),
            ("nn-NO", Some("nb")),
            ("nb", Some("nb")),
            ("ar-EG", Some("ar")),
            ("zz", None),
            ("", None),
        ] {
            assert_eq!(resolve(wanted), expected, "{wanted}");
        }
    }

    #[test]
    fn direction() {
        for tag in ["ar", "fa", "ur", "ar-EG", "he"] {
            assert!(is_right_to_left(tag), "{tag}");
        }
        for tag in ["en", "de", "tr", "ru", "arn"] {
            assert!(!is_right_to_left(tag), "{tag}");
        }
    }
}
