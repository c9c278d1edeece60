//! The words of the follow-up pages, one TOML file per language under
//! templates/followup/, built into the binary (build.rs). A page is in its section's
//! language when a file has it (the exact tag, its primary language, or Bokmål for
//! `no` and `nn`), else in English; a string a file lacks falls back to English, and a
//! test fails when a shipped file lacks a key.

use std::collections::HashMap;
use std::sync::OnceLock;

include!(concat!(env!("OUT_DIR"), "/followup_texts.rs"));

/// The language every other falls back to.
const REFERENCE_LANGUAGE: &str = "en";

/// Tags that name a shipped language under another code, as for the form.
const ALIASES: [(&str, &str); 2] = [("no", "nb"), ("nn", "nb")];

type Table = HashMap<String, String>;

/// Every built-in file, parsed on first use; a file that does not parse is left out
/// (and the test below fails), so a request never fails on one.
fn tables() -> &'static HashMap<&'static str, Table> {
    static TABLES: OnceLock<HashMap<&'static str, Table>> = OnceLock::new();
    TABLES.get_or_init(|| {
        FOLLOWUP_TEXTS
            .iter()
            .filter_map(|(tag, text)| Some((*tag, toml::from_str::<Table>(text).ok()?)))
            .collect()
    })
}

/// The language tags shipped, sorted.
pub fn shipped() -> impl Iterator<Item = &'static str> {
    FOLLOWUP_TEXTS.iter().map(|(tag, _)| *tag)
}

/// The shipped language for `wanted` (a BCP 47 tag in any case): the exact tag, else
/// its primary language, else an alias of it, else English.
pub fn resolve(wanted: &str) -> &'static str {
    let wanted = wanted.trim().to_ascii_lowercase().replace('_', "-");
    let primary = wanted.split('-').next().unwrap_or_default();
    let aliased = ALIASES
        .iter()
        .find(|(alias, _)| *alias == primary)
        .map(|(_, target)| *target);
    [Some(wanted.as_str()), Some(primary), aliased]
        .into_iter()
        .flatten()
        .find_map(|candidate| shipped().find(|tag| tag.eq_ignore_ascii_case(candidate)))
        .unwrap_or(REFERENCE_LANGUAGE)
}

/// The follow-up pages' words in one language, falling back to English string by
/// string.
#[derive(Debug, Clone, Copy)]
pub struct FollowupTexts {
    language: &'static str,
}

impl FollowupTexts {
    /// The texts for `wanted`, as [`resolve`] finds them.
    pub fn new(wanted: &str) -> Self {
        Self {
            language: resolve(wanted),
        }
    }

    /// The shipped tag these texts are in: what the page's `lang` says.
    pub fn language(self) -> &'static str {
        self.language
    }

    /// The string for `key`; the key itself if even English lacks it, so that a
    /// mistake shows on the page instead of failing a request.
    pub fn get(self, key: &'static str) -> &'static str {
        let tables = tables();
        tables
            .get(self.language)
            .and_then(|table| table.get(key))
            .or_else(|| tables.get(REFERENCE_LANGUAGE)?.get(key))
            .map_or(key, String::as_str)
    }

    /// The string for `key` with `{placeholder}` replaced by `value`.
    pub fn fill(self, key: &'static str, placeholder: &str, value: &str) -> String {
        self.get(key).replace(&format!("{{{placeholder}}}"), value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_file_parses_and_has_every_key_and_no_other() {
        let tables = tables();
        assert_eq!(tables.len(), FOLLOWUP_TEXTS.len(), "every file parses");
        for tag in ["en", "nb", "sv", "da", "fr", "de", "es"] {
            assert!(tables.contains_key(tag), "{tag} is shipped");
        }
        let reference = &tables[REFERENCE_LANGUAGE];
        for (tag, table) in tables {
            let mut missing: Vec<&String> = reference
                .keys()
                .filter(|k| !table.contains_key(*k))
                .collect();
            let mut unknown: Vec<&String> = table
                .keys()
                .filter(|k| !reference.contains_key(*k))
                .collect();
            missing.sort();
            unknown.sort();
            assert!(missing.is_empty(), "{tag} lacks {missing:?}");
            assert!(unknown.is_empty(), "{tag} has unknown keys {unknown:?}");
            for (key, text) in table {
                assert!(!text.trim().is_empty(), "{tag}.{key} is empty");
            }
        }
    }

    #[test]
    fn placeholders_survive_translation() {
        for (tag, _) in FOLLOWUP_TEXTS {
            let texts = FollowupTexts::new(tag);
            for (key, placeholder) in [
                ("person_intro", "{section}"),
                ("section_intro", "{section}"),
                ("state_since", "{time}"),
                ("saved", "{state}"),
                ("age_days", "{n}"),
            ] {
                assert!(texts.get(key).contains(placeholder), "{tag}.{key}");
            }
        }
    }

    #[test]
    fn languages_resolve_by_tag_primary_language_and_alias_else_english() {
        for (wanted, expected) in [
            ("nb", "nb"),
            ("de-AT", "de"),
            ("FR_ch", "fr"),
            ("no", "nb"),
            ("nn-NO", "nb"),
            ("ar", "en"),
            ("", "en"),
        ] {
            assert_eq!(resolve(wanted), expected, "{wanted}");
        }
        assert_eq!(FollowupTexts::new("de").get("state_joined"), "Beigetreten");
        assert_eq!(FollowupTexts::new("zz").get("state_joined"), "Joined");
        assert_eq!(FollowupTexts::new("de").get("not_a_key"), "not_a_key");
    }
}
