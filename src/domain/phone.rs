//! The visitor's phone number.

use super::FieldProblem;
use super::text::is_forbidden;

const MIN_DIGITS: usize = 6;
/// ITU-T E.164 numbers have at most 15 digits.
const MAX_DIGITS: usize = 15;
const MAX_CHARS: usize = 32;

/// A plausible phone number: 6 to 15 digits, with an optional leading `+` and the
/// separators people type (`( ) - .` and spaces). Kept as typed, whitespace collapsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// `Ok(None)` when the visitor left it empty.
    pub fn parse(raw: &str) -> Result<Option<Self>, FieldProblem> {
        if raw.chars().any(is_forbidden) {
            return Err(FieldProblem::ControlCharacters);
        }
        let collapsed = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        if collapsed.is_empty() {
            return Ok(None);
        }
        let digits = collapsed.chars().filter(char::is_ascii_digit).count();
        let body = collapsed.strip_prefix('+').unwrap_or(&collapsed);
        let separators_only = body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '(' | ')' | '-' | '.' | ' '));
        if collapsed.chars().count() > MAX_CHARS
            || !separators_only
            || !(MIN_DIGITS..=MAX_DIGITS).contains(&digits)
        {
            return Err(FieldProblem::InvalidPhone);
        }
        Ok(Some(Self(collapsed)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plausible_numbers() {
        for raw in [
            "+47 22 33 44 55",
            "(0)30 1234-5678",
            "555.123.4567",
            "123456",
            "+447911123456",
        ] {
            assert!(PhoneNumber::parse(raw).unwrap().is_some(), "{raw}");
        }
        assert_eq!(PhoneNumber::parse("   "), Ok(None));
    }

    #[test]
    fn implausible_numbers() {
        let cases = [
            ("12345", "five digits"),
            ("1234567890123456", "sixteen digits"),
            ("+47 22 33 44 55 ext 3", "letters"),
            ("47+22334455", "plus not leading"),
            ("++4722334455", "two pluses"),
            ("+47 (22) 33 44 55 66 77 88 99 00 1", "over 32 characters"),
        ];
        for (raw, reason) in cases {
            assert_eq!(
                PhoneNumber::parse(raw),
                Err(FieldProblem::InvalidPhone),
                "{reason}"
            );
        }
    }
}
