//! The visitor's name.

use super::text::clean_single_line;
use super::{FieldProblem, SubmissionId};

pub const NAME_MAX_CHARS: usize = 100;

/// A person's name as they write it, in any script: one line, NFC, single spaces,
/// 1 to 100 characters, and no `=?`.
///
/// The name goes into the notification's Subject and Reply-To. Mail programs decode
/// `=?charset?q?...?=` there as an RFC 2047 encoded word, and lettre passes ASCII text
/// through as typed, so a name could smuggle a decoded line break or a fake header
/// into what the organiser sees. No real name holds `=?`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberName(String);

/// How follow-up pages and mails, the review list and the overflow mail name a
/// stored sign-up: the first word of its `name`; for a sealed one (`sealed`: the
/// server cannot read the name), its id, which they show beside its country and
/// date. The one place this is decided.
pub fn shown_name(name: &str, sealed: bool, id: SubmissionId) -> String {
    if sealed {
        id.to_string()
    } else {
        name.split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned()
    }
}

impl MemberName {
    pub fn parse(raw: &str) -> Result<Self, FieldProblem> {
        let name = clean_single_line(raw, NAME_MAX_CHARS)?.ok_or(FieldProblem::Required)?;
        if name.contains("=?") {
            return Err(FieldProblem::EncodedWord);
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sign_up_is_shown_by_its_first_name_or_when_sealed_by_its_id() {
        let id = SubmissionId::generate();
        assert_eq!(shown_name("Kari  Nordmann", false, id), "Kari");
        assert_eq!(shown_name("", false, id), "");
        assert_eq!(shown_name("", true, id), id.to_string());
        assert_eq!(shown_name("Kari Nordmann", true, id), id.to_string());
    }

    #[test]
    fn names_in_every_script_are_accepted() {
        for name in [
            "Øyvind Ærø",
            "Нурсултан Абишев",
            "李小龙",
            "محمد",
            "O'Brien-Smith",
            "Nguyễn Thị Minh Khai",
            "नरेन्द्र",
            "ئەحمەد",
            "José María",
        ] {
            assert_eq!(
                MemberName::parse(name).map(|n| n.0),
                Ok(name.to_owned()),
                "{name}"
            );
        }
    }

    #[test]
    fn whitespace_is_trimmed_and_collapsed() {
        let name = MemberName::parse("  Kari \u{00A0}  Nordmann ").unwrap();
        assert_eq!(name.as_str(), "Kari Nordmann");
    }

    #[test]
    fn decomposed_input_is_stored_composed() {
        // "Ø" is its own code point, but "é" typed as e + combining acute composes.
        let name = MemberName::parse("Re\u{0301}my").unwrap();
        assert_eq!(name.as_str(), "R\u{00E9}my");
    }

    #[test]
    fn refusals_with_reasons() {
        let cases = [
            ("", FieldProblem::Required, "empty"),
            ("   ", FieldProblem::Required, "only spaces"),
            (
                "Kari\nNordmann",
                FieldProblem::ControlCharacters,
                "line feed",
            ),
            (
                "Kari\rNordmann",
                FieldProblem::ControlCharacters,
                "carriage return",
            ),
            ("Kari\0", FieldProblem::ControlCharacters, "NUL"),
            ("Kari\tN", FieldProblem::ControlCharacters, "tab"),
            (
                "=?utf-8?q?Kari=0D=0ABcc:_evil@example.com?=",
                FieldProblem::EncodedWord,
                "an encoded word that decodes to a line break",
            ),
            ("Kari =?x", FieldProblem::EncodedWord, "the start of one"),
            (
                "Kari\u{0085}",
                FieldProblem::ControlCharacters,
                "C1 next line",
            ),
        ];
        for (raw, problem, reason) in cases {
            assert_eq!(MemberName::parse(raw), Err(problem), "{reason}");
        }
        let too_long = "a".repeat(101);
        assert_eq!(
            MemberName::parse(&too_long),
            Err(FieldProblem::TooLong { max: 100 })
        );
        assert!(MemberName::parse(&"a".repeat(100)).is_ok());
    }
}
