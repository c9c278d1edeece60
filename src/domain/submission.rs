//! A whole submission: the raw fields a decoder produced, the form's schema, and the
//! parsed `NewSubmission` that the rest of the code works with.

use std::collections::{BTreeMap, HashMap};

use super::field::STANDARD_FIELDS;
use super::text::{is_forbidden, trim_edges};
use super::{
    City, CountryCode, ExtraValue, FieldName, FieldProblem, LanguageTag, MemberEmail, MemberName,
    Message, PhoneNumber, ValidationErrors,
};

/// One field's value as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawValue {
    Text(String),
    /// A JSON `true`/`false`.
    Bool(bool),
    /// A JSON number, array or object: never valid for a form field.
    Other,
}

/// A field the schema knows was given more than once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the field `{0}` is given more than once")]
pub struct DuplicateField(pub String);

/// The known fields of one request, each at most once. Unknown fields never get here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawForm {
    fields: HashMap<String, RawValue>,
}

impl RawForm {
    pub fn insert(&mut self, name: &str, value: RawValue) -> Result<(), DuplicateField> {
        if self.fields.contains_key(name) {
            return Err(DuplicateField(name.to_owned()));
        }
        self.fields.insert(name.to_owned(), value);
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&RawValue> {
        self.fields.get(name)
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

/// A configured extra field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraFieldSpec {
    pub name: FieldName,
    pub max_chars: usize,
    pub required: bool,
}

/// Which fields a form has and which it requires, from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormSchema {
    pub consent_required: bool,
    pub extra_fields: Vec<ExtraFieldSpec>,
    /// Fields that are not data but signals for the spam checks (honeypot, token):
    /// decoders keep them, parsing ignores them, and they are never stored.
    pub control_fields: Vec<String>,
}

impl FormSchema {
    pub fn with_control_fields<'a>(mut self, names: impl IntoIterator<Item = &'a str>) -> Self {
        self.control_fields = names.into_iter().map(str::to_owned).collect();
        self
    }

    /// Whether a decoder should keep a field; every other field is dropped unread.
    pub fn is_known(&self, name: &str) -> bool {
        STANDARD_FIELDS.contains(&name)
            || self.extra_fields.iter().any(|f| f.name.as_str() == name)
            || self.control_fields.iter().any(|f| f == name)
    }
}

/// Whether the visitor agreed to be contacted and their data kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consent(pub bool);

impl Consent {
    fn parse(raw: Option<&RawValue>) -> Result<Self, FieldProblem> {
        match raw {
            None => Ok(Self(false)),
            Some(RawValue::Bool(given)) => Ok(Self(*given)),
            Some(RawValue::Other) => Err(FieldProblem::InvalidConsent),
            Some(RawValue::Text(text)) if trim_edges(text).chars().any(is_forbidden) => {
                Err(FieldProblem::ControlCharacters)
            }
            Some(RawValue::Text(text)) => match trim_edges(text).to_ascii_lowercase().as_str() {
                "on" | "true" | "yes" | "1" => Ok(Self(true)),
                "" | "off" | "false" | "no" | "0" => Ok(Self(false)),
                _ => Err(FieldProblem::InvalidConsent),
            },
        }
    }
}

/// The extra fields' values, by field name; only the fields the visitor filled in.
pub type ExtraValues = BTreeMap<String, String>;

/// A submission that passed every rule. No raw string survives past this point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubmission {
    pub name: MemberName,
    pub email: MemberEmail,
    pub country: CountryCode,
    pub phone: Option<PhoneNumber>,
    pub city: Option<City>,
    pub message: Option<Message>,
    pub language: Option<LanguageTag>,
    pub consent: Consent,
    pub extra: ExtraValues,
}

impl NewSubmission {
    /// Parses every field and reports every problem at once. `default_language` comes
    /// from the request's Accept-Language and is used when no `language` is given.
    pub fn parse(
        raw: &RawForm,
        schema: &FormSchema,
        default_language: Option<LanguageTag>,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let name = check(&mut errors, raw, "name", MemberName::parse);
        let email = check(&mut errors, raw, "email", MemberEmail::parse);
        let country = check(&mut errors, raw, "country", CountryCode::parse);
        let phone = check(&mut errors, raw, "phone", PhoneNumber::parse);
        let city = check(&mut errors, raw, "city", City::parse);
        let message = check(&mut errors, raw, "message", Message::parse);
        let language = check(&mut errors, raw, "language", LanguageTag::parse);
        let consent = match Consent::parse(raw.get("consent")) {
            Ok(Consent(false)) if schema.consent_required => Err(FieldProblem::ConsentRequired),
            other => other,
        };
        let consent = consent
            .map_err(|problem| errors.push(FieldName::standard("consent"), problem))
            .ok();
        let mut extra = ExtraValues::new();
        for spec in &schema.extra_fields {
            let value = text_of(raw, spec.name.as_str())
                .and_then(|text| ExtraValue::parse(text, spec.max_chars));
            match value {
                Ok(Some(value)) => {
                    extra.insert(spec.name.as_str().to_owned(), value.into_string());
                }
                Ok(None) if spec.required => errors.push(spec.name.clone(), FieldProblem::Required),
                Ok(None) => {}
                Err(problem) => errors.push(spec.name.clone(), problem),
            }
        }
        let (Some(name), Some(email), Some(country), Some(phone), Some(city), Some(message)) =
            (name, email, country, phone, city, message)
        else {
            return Err(errors);
        };
        let (Some(language), Some(consent), true) = (language, consent, errors.is_empty()) else {
            return Err(errors);
        };
        Ok(Self {
            name,
            email,
            country,
            phone,
            city,
            message,
            language: language.or(default_language),
            consent,
            extra,
        })
    }
}

/// A field's text; absent is empty, a JSON non-string is a type error.
fn text_of<'a>(raw: &'a RawForm, name: &str) -> Result<&'a str, FieldProblem> {
    match raw.get(name) {
        None => Ok(""),
        Some(RawValue::Text(text)) => Ok(text),
        Some(RawValue::Bool(_) | RawValue::Other) => Err(FieldProblem::InvalidType),
    }
}

/// Parses one standard field, recording its problem under its name.
fn check<T>(
    errors: &mut ValidationErrors,
    raw: &RawForm,
    name: &'static str,
    parse: impl FnOnce(&str) -> Result<T, FieldProblem>,
) -> Option<T> {
    text_of(raw, name)
        .and_then(parse)
        .map_err(|problem| errors.push(FieldName::standard(name), problem))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> RawForm {
        let mut raw = RawForm::default();
        for (name, value) in pairs {
            raw.insert(name, RawValue::Text((*value).to_owned()))
                .unwrap();
        }
        raw
    }

    /// Each problem as (field, code).
    fn problems(errors: &ValidationErrors) -> Vec<(&str, &str)> {
        errors
            .iter()
            .map(|e| (e.field.as_str(), e.problem.code()))
            .collect()
    }

    fn schema() -> FormSchema {
        FormSchema {
            consent_required: true,
            extra_fields: vec![ExtraFieldSpec {
                name: FieldName::parse_extra("organisation").unwrap(),
                max_chars: 10,
                required: true,
            }],
            control_fields: Vec::new(),
        }
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let raw = form(&[("email", "nope"), ("country", "ZZ"), ("phone", "12")]);
        let errors = NewSubmission::parse(&raw, &schema(), None).unwrap_err();
        let found = problems(&errors);
        assert_eq!(
            found,
            [
                ("name", "required"),
                ("email", "invalid_email"),
                ("country", "invalid_country"),
                ("phone", "invalid_phone"),
                ("consent", "consent_required"),
                ("organisation", "required"),
            ]
        );
    }

    #[test]
    fn a_valid_form_parses_and_takes_the_default_language() {
        let raw = form(&[
            ("name", "Kari Nordmann"),
            ("email", "kari@example.org"),
            ("country", "no"),
            ("consent", "on"),
            ("organisation", "Union"),
        ]);
        let default = LanguageTag::parse("nb").unwrap();
        let submission = NewSubmission::parse(&raw, &schema(), default).unwrap();
        assert_eq!(submission.country.as_str(), "NO");
        assert_eq!(submission.language.unwrap().as_str(), "nb");
        assert_eq!(
            submission.extra.get("organisation").map(String::as_str),
            Some("Union")
        );
        assert_eq!(submission.phone, None);
    }

    #[test]
    fn consent_values() {
        for (value, expected) in [
            (RawValue::Text("on".into()), Ok(Consent(true))),
            (RawValue::Text("YES".into()), Ok(Consent(true))),
            (RawValue::Text("1".into()), Ok(Consent(true))),
            (RawValue::Text("true".into()), Ok(Consent(true))),
            (RawValue::Bool(true), Ok(Consent(true))),
            (RawValue::Text("no".into()), Ok(Consent(false))),
            (RawValue::Bool(false), Ok(Consent(false))),
            (
                RawValue::Text("maybe".into()),
                Err(FieldProblem::InvalidConsent),
            ),
            (RawValue::Other, Err(FieldProblem::InvalidConsent)),
        ] {
            assert_eq!(Consent::parse(Some(&value)), expected, "{value:?}");
        }
    }

    #[test]
    fn non_text_json_values_are_type_errors() {
        let mut raw = form(&[("name", "Kari"), ("country", "NO"), ("consent", "on")]);
        raw.insert("email", RawValue::Other).unwrap();
        let errors = NewSubmission::parse(&raw, &schema(), None).unwrap_err();
        assert!(
            errors
                .iter()
                .any(|e| e.field.as_str() == "email" && e.problem == FieldProblem::InvalidType)
        );
    }

    #[test]
    fn duplicates_are_refused() {
        let mut raw = form(&[("name", "Kari")]);
        assert_eq!(
            raw.insert("name", RawValue::Text("Ola".into())),
            Err(DuplicateField("name".into()))
        );
        assert_eq!(raw.len(), 1);
        assert!(!raw.is_empty());
        assert!(RawForm::default().is_empty());
        assert_eq!(form(&[("name", "Kari"), ("city", "Oslo")]).len(), 2);
    }

    #[test]
    fn a_decoder_keeps_standard_extra_and_control_fields_only() {
        let schema = schema().with_control_fields(["_gotcha", "_token"]);
        for known in ["name", "consent", "organisation", "_gotcha", "_token"] {
            assert!(schema.is_known(known), "{known}");
        }
        for unknown in ["organization", "_lang", "Name", "", "submit"] {
            assert!(!schema.is_known(unknown), "{unknown:?}");
        }
    }

    #[test]
    fn optional_consent_and_extra_fields_may_be_left_out() {
        let optional = FormSchema {
            consent_required: false,
            extra_fields: vec![ExtraFieldSpec {
                required: false,
                ..schema().extra_fields[0].clone()
            }],
            control_fields: Vec::new(),
        };
        let raw = form(&[
            ("name", "Kari"),
            ("email", "kari@example.org"),
            ("country", "NO"),
        ]);
        let submission = NewSubmission::parse(&raw, &optional, None).unwrap();
        assert_eq!(submission.consent, Consent(false));
        assert!(submission.extra.is_empty());
        let errors = NewSubmission::parse(&raw, &schema(), None).unwrap_err();
        let found = problems(&errors);
        assert_eq!(
            found,
            [
                ("consent", "consent_required"),
                ("organisation", "required")
            ]
        );
    }

    /// Format characters of every kind copy-paste brings, and a variation selector.
    const INVISIBLE: [(char, &str); 13] = [
        ('\u{200B}', "zero-width space"),
        ('\u{FEFF}', "byte-order mark"),
        ('\u{200E}', "left-to-right mark"),
        ('\u{200F}', "right-to-left mark"),
        ('\u{202A}', "left-to-right embedding"),
        ('\u{202C}', "pop directional formatting"),
        ('\u{202D}', "left-to-right override"),
        ('\u{202E}', "right-to-left override"),
        ('\u{2066}', "left-to-right isolate"),
        ('\u{2069}', "pop directional isolate"),
        ('\u{2060}', "word joiner"),
        ('\u{00AD}', "soft hyphen"),
        ('\u{FE0F}', "variation selector 16"),
    ];

    /// Every single-line field: a valid value and what is stored for it.
    const SINGLE_LINE: [(&str, &str); 8] = [
        ("name", "Kari Nordmann"),
        ("email", "kari@example.org"),
        ("country", "NO"),
        ("phone", "+47 912 34 567"),
        ("city", "Tromsø"),
        ("language", "nb"),
        ("consent", "yes"),
        ("organisation", "Union"),
    ];

    fn stored(submission: &NewSubmission, field: &str) -> String {
        match field {
            "name" => submission.name.as_str().to_owned(),
            "email" => submission.email.to_string(),
            "country" => submission.country.as_str().to_owned(),
            "phone" => submission
                .phone
                .as_ref()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default(),
            "city" => submission
                .city
                .as_ref()
                .map(|c| c.as_str().to_owned())
                .unwrap_or_default(),
            "language" => submission
                .language
                .as_ref()
                .map(|l| l.as_str().to_owned())
                .unwrap_or_default(),
            "consent" => if submission.consent.0 { "yes" } else { "no" }.to_owned(),
            other => submission.extra.get(other).cloned().unwrap_or_default(),
        }
    }

    fn form_with(field: &str, value: &str) -> RawForm {
        let pairs: Vec<(&str, &str)> = SINGLE_LINE
            .iter()
            .map(|&(name, valid)| (name, if name == field { value } else { valid }))
            .collect();
        form(&pairs)
    }

    #[test]
    fn invisible_characters_at_either_end_of_every_single_line_field_are_trimmed() {
        for (field, valid) in SINGLE_LINE {
            for (c, what) in INVISIBLE {
                for (value, place) in [
                    (format!("{c}{valid}"), "start"),
                    (format!("{valid}{c}"), "end"),
                    (format!("{c}{c} {valid} {c}"), "both ends, with spaces"),
                ] {
                    let submission =
                        NewSubmission::parse(&form_with(field, &value), &schema(), None)
                            .unwrap_or_else(|e| panic!("{field}, {what} at the {place}: {e}"));
                    assert_eq!(
                        stored(&submission, field),
                        valid,
                        "{field}, {what} at the {place}"
                    );
                }
            }
        }
    }

    #[test]
    fn inside_a_value_bidi_controls_stay_refused_and_line_breaks_at_the_edges_too() {
        for (field, valid) in SINGLE_LINE {
            if field == "phone" {
                // A phone number has no text to disguise: every invisible character is
                // dropped (see PhoneNumber::parse).
                continue;
            }
            let mut chars = valid.chars();
            let first = chars.next().unwrap_or_default();
            let rest: String = chars.collect();
            for c in ['\u{202E}', '\u{202A}', '\u{2066}', '\u{2069}'] {
                let errors = NewSubmission::parse(
                    &form_with(field, &format!("{first}{c}{rest}")),
                    &schema(),
                    None,
                )
                .expect_err(field);
                let expected = if field == "email" {
                    FieldProblem::InvalidEmail
                } else {
                    FieldProblem::ControlCharacters
                };
                assert_eq!(
                    errors
                        .iter()
                        .map(|e| (e.field.as_str(), e.problem))
                        .collect::<Vec<_>>(),
                    [(field, expected)],
                    "{field}: U+{:04X} inside",
                    c as u32
                );
            }
            for edge in [
                format!("\n{valid}"),
                format!("{valid}\r\n"),
                format!("\t{valid}"),
            ] {
                let errors = NewSubmission::parse(&form_with(field, &edge), &schema(), None)
                    .expect_err(field);
                assert_eq!(errors.iter().count(), 1, "{field}: {edge:?}");
            }
        }
    }
}
