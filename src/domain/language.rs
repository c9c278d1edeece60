//! The visitor's language.

use std::fmt;

use super::FieldProblem;
use super::text::{is_forbidden, trim_edges};

const MAX_CHARS: usize = 35;

/// A well-formed BCP 47 language tag (`nb`, `pt-BR`, `sr-Latn-RS`) of at most 35
/// characters, kept as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanguageTag(String);

impl LanguageTag {
    /// `Ok(None)` when the field is empty.
    pub fn parse(raw: &str) -> Result<Option<Self>, FieldProblem> {
        let tag = trim_edges(raw);
        if tag.chars().any(is_forbidden) {
            return Err(FieldProblem::ControlCharacters);
        }
        if tag.is_empty() {
            return Ok(None);
        }
        if tag.len() > MAX_CHARS || language_tags::LanguageTag::parse(tag).is_err() {
            return Err(FieldProblem::InvalidLanguage);
        }
        Ok(Some(Self(tag.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LanguageTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_tags() {
        for raw in ["en", "nb", "pt-BR", "sr-Latn-RS", "zh-Hant-TW", "ar"] {
            assert_eq!(LanguageTag::parse(raw).unwrap().unwrap().as_str(), raw);
        }
    }

    #[test]
    fn malformed_tags() {
        for raw in ["english!", "e", "en--GB", "x", &"a".repeat(36), "en_GB"] {
            assert_eq!(
                LanguageTag::parse(raw),
                Err(FieldProblem::InvalidLanguage),
                "{raw}"
            );
        }
    }

    #[test]
    fn the_35_character_limit_holds_for_well_formed_tags() {
        // Well-formed BCP 47 (private-use subtags of up to 8 characters), 39 characters:
        // only the length limit refuses it.
        let private_use = "en-x-abcdefgh-abcdefgh-abcdefgh-abcdef";
        assert_eq!(private_use.len(), 38);
        let thirty_nine = format!("{private_use}g");
        assert!(language_tags::LanguageTag::parse(&thirty_nine).is_ok());
        assert_eq!(
            LanguageTag::parse(&thirty_nine),
            Err(FieldProblem::InvalidLanguage)
        );
        let thirty_six = "en-x-abcdefgh-abcdefgh-abcdefgh-abc";
        assert_eq!(thirty_six.len(), 35);
        assert!(LanguageTag::parse(thirty_six).unwrap().is_some());
        let thirty_six = format!("{thirty_six}d");
        assert_eq!(
            LanguageTag::parse(&thirty_six),
            Err(FieldProblem::InvalidLanguage)
        );
        // Counted after trimming what surrounds the tag.
        let padded = format!(
            "\u{200B} {} \u{FEFF}",
            "en-x-abcdefgh-abcdefgh-abcdefgh-abc"
        );
        assert!(LanguageTag::parse(&padded).unwrap().is_some());
    }
}
