//! Free text fields: city, message and configured extra fields, and the cleaning rules
//! every text field shares.

use unicode_normalization::UnicodeNormalization;

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

/// The shared rule for one-line text: no forbidden characters, NFC, whitespace trimmed
/// and collapsed to single spaces, at most `max` characters. Empty after cleaning is
/// `None`.
pub(crate) fn clean_single_line(raw: &str, max: usize) -> Result<Option<String>, FieldProblem> {
    if raw.chars().any(is_forbidden) {
        return Err(FieldProblem::ControlCharacters);
    }
    let normalized: String = raw.nfc().collect();
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
        if unified.chars().any(|c| c != '\n' && is_forbidden(c)) {
            return Err(FieldProblem::ControlCharacters);
        }
        let normalized: String = unified.nfc().collect();
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

    pub fn as_str(&self) -> &str {
        &self.0
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
