//! Field names and the problems a field's value can have.

use std::fmt;

use serde::Serialize;

/// The fields every form has; extra fields may not reuse these names.
pub const STANDARD_FIELDS: [&str; 8] = [
    "name", "email", "country", "phone", "city", "message", "language", "consent",
];

/// The field a proof of work (ALTCHA) is posted in: the name the standard widget
/// posts, so no configured field may take it. Other control fields start with `_`,
/// which a configured field name cannot.
pub const PROOF_OF_WORK_FIELD: &str = "altcha";

/// The name of a form field, standard or configured.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct FieldName(String);

impl FieldName {
    pub fn standard(name: &'static str) -> Self {
        Self(name.to_owned())
    }

    /// An extra field's name: lower-case ASCII letters, digits and `_`, starting with a
    /// letter, at most 32 characters, and none of the standard names.
    pub fn parse_extra(name: &str) -> Result<Self, &'static str> {
        let mut chars = name.chars();
        let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !starts_with_letter || !rest_ok || name.len() > 32 {
            return Err("must be 1-32 characters of a-z, 0-9 and _, starting with a letter");
        }
        if STANDARD_FIELDS.contains(&name) {
            return Err("is the name of a standard field");
        }
        if name == PROOF_OF_WORK_FIELD {
            return Err("is the field of the proof of work (ALTCHA)");
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FieldName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What is wrong with one field's value. Each has a stable snake_case code that
/// clients may rely on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum FieldProblem {
    Required,
    TooLong { max: usize },
    ControlCharacters,
    EncodedWord,
    InvalidEmail,
    InvalidCountry,
    InvalidPhone,
    InvalidLanguage,
    ConsentRequired,
    InvalidConsent,
    InvalidType,
}

impl FieldProblem {
    /// The stable code: the variant's name in snake_case (`too_long`).
    pub fn code(self) -> &'static str {
        self.into()
    }

    /// The message shown to the visitor, in English.
    pub fn message(self) -> String {
        match self {
            Self::Required => "This field is required.".to_owned(),
            Self::TooLong { max } => format!("This field is limited to {max} characters."),
            Self::ControlCharacters => {
                "This field contains line breaks or invisible control characters.".to_owned()
            }
            Self::EncodedWord => "Remove the characters =? from this field.".to_owned(),
            Self::InvalidEmail => {
                "This is not an email address we can write to, such as name@example.org.".to_owned()
            }
            Self::InvalidCountry => "Choose a country from the list.".to_owned(),
            Self::InvalidPhone => {
                "Enter a phone number of 6 to 15 digits; + ( ) - . and spaces are allowed."
                    .to_owned()
            }
            Self::InvalidLanguage => "This is not a language tag such as en or pt-BR.".to_owned(),
            Self::ConsentRequired => {
                "Please agree to the privacy notice so that we may contact you.".to_owned()
            }
            Self::InvalidConsent => "Consent must be yes or no.".to_owned(),
            Self::InvalidType => "This field must be text.".to_owned(),
        }
    }
}

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: FieldName,
    pub problem: FieldProblem,
}

/// Every problem found in a submission: all are reported at once.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    pub fn push(&mut self, field: FieldName, problem: FieldProblem) {
        self.0.push(FieldError { field, problem });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &FieldError> {
        self.0.iter()
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Field names and codes only: the values may be personal data.
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|e| format!("{}: {}", e.field, e.problem.code()))
            .collect();
        write!(f, "invalid fields ({})", parts.join(", "))
    }
}

impl std::error::Error for ValidationErrors {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_name_displays_as_itself() {
        assert_eq!(FieldName::standard("email").to_string(), "email");
        assert_eq!(
            FieldName::parse_extra("member_of").unwrap().to_string(),
            "member_of"
        );
    }

    #[test]
    fn validation_errors_display_field_names_and_codes_only() {
        let mut errors = ValidationErrors::default();
        errors.push(FieldName::standard("email"), FieldProblem::InvalidEmail);
        errors.push(
            FieldName::standard("phone"),
            FieldProblem::TooLong { max: 32 },
        );
        assert_eq!(
            errors.to_string(),
            "invalid fields (email: invalid_email, phone: too_long)"
        );
    }

    #[test]
    fn every_problem_has_its_own_english_message() {
        let problems = [
            FieldProblem::Required,
            FieldProblem::TooLong { max: 7 },
            FieldProblem::ControlCharacters,
            FieldProblem::EncodedWord,
            FieldProblem::InvalidEmail,
            FieldProblem::InvalidCountry,
            FieldProblem::InvalidPhone,
            FieldProblem::InvalidLanguage,
            FieldProblem::ConsentRequired,
            FieldProblem::InvalidConsent,
            FieldProblem::InvalidType,
        ];
        let messages: std::collections::BTreeSet<String> =
            problems.iter().map(|problem| problem.message()).collect();
        assert_eq!(messages.len(), problems.len(), "{messages:#?}");
        assert_eq!(FieldProblem::Required.message(), "This field is required.");
        assert_eq!(
            FieldProblem::TooLong { max: 7 }.message(),
            "This field is limited to 7 characters."
        );
        assert!(
            FieldProblem::InvalidEmail
                .message()
                .contains("name@example.org")
        );
    }

    #[test]
    fn extra_field_names() {
        for name in ["organisation", "a", "union_2", "x1_", &"a".repeat(32)] {
            assert_eq!(
                FieldName::parse_extra(name).map(|n| n.0),
                Ok(name.to_owned()),
                "{name}"
            );
        }
        let shape = Err("must be 1-32 characters of a-z, 0-9 and _, starting with a letter");
        for (name, reason) in [
            ("", "empty"),
            (&"a".repeat(33) as &str, "33 characters"),
            ("1union", "starts with a digit"),
            ("_union", "starts with an underscore"),
            ("Union", "upper case"),
            ("uniOn", "upper case inside"),
            ("union-2", "hyphen"),
            ("union name", "space"),
            ("unión", "non-ASCII letter"),
            ("union\u{200B}", "invisible character"),
        ] {
            assert_eq!(FieldName::parse_extra(name), shape, "{reason}");
        }
        for name in STANDARD_FIELDS {
            assert_eq!(
                FieldName::parse_extra(name),
                Err("is the name of a standard field"),
                "{name}"
            );
        }
        assert_eq!(
            FieldName::parse_extra(PROOF_OF_WORK_FIELD),
            Err("is the field of the proof of work (ALTCHA)")
        );
    }
}
