//! Free text fields: city, message and configured extra fields, and the cleaning rules
//! every text field shares.

use icu_properties::props::{ExtendedPictographic, GeneralCategory, VariationSelector};
use icu_properties::{CodePointMapData, CodePointSetData};
use std::borrow::Cow;

use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

use super::FieldProblem;

pub const CITY_MAX_CHARS: usize = 100;
pub const MESSAGE_MAX_CHARS: usize = 2_000;

/// Characters no field may carry: C0/C1 controls, Unicode line and paragraph
/// separators, and the bidirectional overrides and isolates that can make text display
/// as something else than it is.
pub(crate) fn is_forbidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// Characters that show nothing and say nothing: format characters (Unicode
/// General_Category Cf: direction marks, embeddings, overrides and isolates, zero-width
/// space and joiners, the byte-order mark, ...) and variation selectors. Contacts apps
/// and rich-text copy-paste wrap values in them, so they are trimmed from the ends of
/// a field rather than refused.
pub(crate) fn is_invisible(c: char) -> bool {
    CodePointMapData::<GeneralCategory>::new().get(c) == GeneralCategory::Format
        || CodePointSetData::new::<VariationSelector>().contains(c)
}

/// The edge rule every single-line field shares: whitespace and [invisible](is_invisible)
/// characters go from both ends, in any mix. Controls and line separators are not
/// trimmed: a line break or tab was never part of what someone typed in one line, so the
/// field's own check refuses it. Inside a value nothing changes here: an embedded bidi
/// override stays refused, and a zero-width non-joiner inside a Persian name stays.
///
/// One exception at the end: the variation selector or tag characters that finish an
/// emoji (U+FE0F in ❤️, the tags of a subdivision flag such as Scotland's 🏴) are part
/// of what was typed (Unicode Technical Standard #51, §1.4.5 and Annex C), so they stay
/// after an Extended_Pictographic character.
pub fn trim_edges(raw: &str) -> &str {
    let from_start = raw.trim_start_matches(is_edge_filler);
    let body = from_start.trim_end_matches(is_edge_filler);
    let ends_in_emoji = body
        .chars()
        .next_back()
        .is_some_and(|c| CodePointSetData::new::<ExtendedPictographic>().contains(c));
    if !ends_in_emoji {
        return body;
    }
    let emoji_rest: usize = from_start[body.len()..]
        .chars()
        .take_while(|&c| is_emoji_continuation(c))
        .map(char::len_utf8)
        .sum();
    &from_start[..body.len() + emoji_rest]
}

/// Variation selectors and the tag characters (U+E0020 to U+E007F) that continue an
/// emoji sequence.
fn is_emoji_continuation(c: char) -> bool {
    CodePointSetData::new::<VariationSelector>().contains(c)
        || ('\u{E0020}'..='\u{E007F}').contains(&c)
}

/// What [`trim_edges`] takes away.
fn is_edge_filler(c: char) -> bool {
    is_invisible(c) || (c.is_whitespace() && !is_forbidden(c))
}

/// `text` in NFC. Borrowed when the quick check says it already is (always so for
/// ASCII, and for most typed text), so only text that needs composing pays for the
/// decomposition and recomposition, which were about 4 % of a request's CPU.
fn nfc(text: &str) -> Cow<'_, str> {
    match is_nfc_quick(text.chars()) {
        IsNormalized::Yes => Cow::Borrowed(text),
        IsNormalized::No | IsNormalized::Maybe => Cow::Owned(text.nfc().collect()),
    }
}

/// The shared rule for one-line text: [edges trimmed](trim_edges), no forbidden
/// characters, NFC, whitespace collapsed to single spaces, at most `max` characters.
/// Empty after cleaning is `None`.
pub(crate) fn clean_single_line(raw: &str, max: usize) -> Result<Option<String>, FieldProblem> {
    let raw = trim_edges(raw);
    if raw.chars().any(is_forbidden) {
        return Err(FieldProblem::ControlCharacters);
    }
    let normalized = nfc(raw);
    let mut cleaned = String::with_capacity(normalized.len());
    for word in normalized.split_whitespace() {
        if !cleaned.is_empty() {
            cleaned.push(' ');
        }
        cleaned.push_str(word);
    }
    if cleaned.is_empty() {
        return Ok(None);
    }
    if cleaned.chars().count() > max {
        return Err(FieldProblem::TooLong { max });
    }
    Ok(Some(cleaned))
}

/// The city or town the visitor lives in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct City(String);

impl City {
    /// `Ok(None)` when the visitor left it empty.
    pub fn parse(raw: &str) -> Result<Option<Self>, FieldProblem> {
        Ok(clean_single_line(raw, CITY_MAX_CHARS)?.map(Self))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The visitor's free-text message: the one field where line breaks are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message(String);

impl Message {
    /// Line breaks of any convention become `\n`; leading and trailing whitespace goes;
    /// everything else is kept as typed (in NFC).
    pub fn parse(raw: &str) -> Result<Option<Self>, FieldProblem> {
        let unified = raw.replace("\r\n", "\n").replace('\r', "\n");
        // The single-line edge rule, plus the blank lines around the text.
        let unified = unified.trim_matches(|c: char| c == '\n' || is_edge_filler(c));
        if unified.chars().any(|c| c != '\n' && is_forbidden(c)) {
            return Err(FieldProblem::ControlCharacters);
        }
        let normalized = nfc(unified);
        let trimmed = normalized.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        if trimmed.chars().count() > MESSAGE_MAX_CHARS {
            return Err(FieldProblem::TooLong {
                max: MESSAGE_MAX_CHARS,
            });
        }
        Ok(Some(Self(trimmed.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The value of a configured extra field: one line, up to the field's own limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraValue(String);

impl ExtraValue {
    pub fn parse(raw: &str, max_chars: usize) -> Result<Option<Self>, FieldProblem> {
        Ok(clean_single_line(raw, max_chars)?.map(Self))
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_keeps_line_breaks_and_unifies_them() {
        let message = Message::parse("  Hello\r\nworld\rand\nmore  ")
            .unwrap()
            .unwrap();
        assert_eq!(message.as_str(), "Hello\nworld\nand\nmore");
    }

    #[test]
    fn message_loses_blank_lines_and_invisible_characters_around_it() {
        let message = Message::parse("\u{200B}\n\nHello\n\u{FEFF}\n\u{200E}")
            .unwrap()
            .unwrap();
        assert_eq!(message.as_str(), "Hello");
    }

    #[test]
    fn message_limit_is_2000_characters() {
        let at_limit = "ж".repeat(MESSAGE_MAX_CHARS);
        assert!(Message::parse(&at_limit).unwrap().is_some());
        assert_eq!(
            Message::parse(&format!("{at_limit}ж")),
            Err(FieldProblem::TooLong { max: 2_000 })
        );
    }

    #[test]
    fn an_emoji_keeps_its_own_selector_and_tags_at_the_end() {
        let scotland = "🏴\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}";
        let cases = [
            (
                "Sam ❤\u{FE0F}",
                "Sam ❤\u{FE0F}",
                "heart with its emoji selector",
            ),
            (
                &format!("Ewan {scotland}") as &str,
                &format!("Ewan {scotland}") as &str,
                "subdivision flag",
            ),
            (
                "Sam ❤\u{FE0F}\u{200B}\u{200F}",
                "Sam ❤\u{FE0F}",
                "wrapping after the emoji still goes",
            ),
            (
                "Sam\u{FE0F}",
                "Sam",
                "a selector after a letter is wrapping",
            ),
            (
                "\u{FE0F}❤ Sam",
                "❤ Sam",
                "a selector at the start is wrapping",
            ),
        ];
        for (raw, kept, reason) in cases {
            assert_eq!(trim_edges(raw), kept, "{reason}");
        }
    }

    #[test]
    fn message_refuses_other_controls() {
        assert_eq!(
            Message::parse("tab\there"),
            Err(FieldProblem::ControlCharacters)
        );
        assert_eq!(
            Message::parse("nul\0"),
            Err(FieldProblem::ControlCharacters)
        );
    }

    #[test]
    fn city_is_one_line() {
        assert_eq!(
            City::parse("Oslo\nBergen"),
            Err(FieldProblem::ControlCharacters)
        );
        assert_eq!(
            City::parse("  Tromsø  ").unwrap().unwrap().as_str(),
            "Tromsø"
        );
        assert_eq!(City::parse("   "), Ok(None));
    }

    #[test]
    fn bidi_overrides_are_refused() {
        assert_eq!(
            City::parse("abc\u{202E}def"),
            Err(FieldProblem::ControlCharacters)
        );
    }

    #[test]
    fn limits_count_characters_not_bytes() {
        let hundred_cyrillic = "Ж".repeat(100);
        assert!(City::parse(&hundred_cyrillic).unwrap().is_some());
        assert_eq!(
            City::parse(&"Ж".repeat(101)),
            Err(FieldProblem::TooLong { max: 100 })
        );
    }
}
