//! Property tests, an aspect a file: no input panics the decoders or validators; no
//! body, however encoded (JSON, urlencoded, multipart; plain, gzip or deflate, cut into
//! any chunks), panics the body reader or gets a 5xx; compression changes nothing but
//! size; and whatever is accepted comes back from the store unchanged.
//!
//! This file holds what several aspects draw on: the forms and the text visitors type.

mod compression;
mod csv;
mod decoding;
mod multipart;
mod post_join;
mod reader;
mod spam;
mod store;
mod validation;

use joinform::domain::{ExtraFieldSpec, FieldName, FormSchema, RawForm, RawValue, STANDARD_FIELDS};
use proptest::prelude::*;

fn schema() -> FormSchema {
    FormSchema {
        consent_required: true,
        extra_fields: Vec::new(),
        control_fields: Vec::new(),
    }
}

/// Text from every script and class that matters: letters of several scripts,
/// combining marks, spaces of all kinds, controls, bidi marks, emoji, quotes.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-zA-Z '.@-]{0,40}",
        "[\\p{Cyrillic}\\p{Han}\\p{Arabic}\\p{Latin} ]{0,40}",
        "[\\s\\p{Cc}\\p{Cf}\\p{Mn}a-z]{0,20}",
    ]
}

fn plausible_email() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9._%+'-]{1,20}@[a-z0-9-]{1,20}(\\.[a-z0-9-]{1,10}){1,3}",
        "[a-z]{1,10}@[\\p{Latin}\\p{Cyrillic}]{1,10}\\.[a-z]{2,4}",
        any_text(),
    ]
}

fn form_of(fields: &[(&str, String)]) -> RawForm {
    let mut raw = RawForm::default();
    for (name, value) in fields {
        raw.insert(name, RawValue::Text(value.clone())).unwrap();
    }
    raw
}

/// The configured extra fields of the round-trip and decoder tests.
const EXTRA_FIELDS: [(&str, usize); 2] = [("organisation", 60), ("member_no", 12)];

/// A form with extra fields and a honeypot, as a configured site has.
fn schema_with_extras() -> FormSchema {
    FormSchema {
        consent_required: true,
        extra_fields: EXTRA_FIELDS
            .iter()
            .map(|(name, max_chars)| ExtraFieldSpec {
                name: FieldName::parse_extra(name).unwrap(),
                max_chars: *max_chars,
                required: false,
            })
            .collect(),
        control_fields: vec!["_gotcha".into()],
    }
}

/// Every field name `schema_with_extras` keeps.
fn known_names() -> Vec<&'static str> {
    STANDARD_FIELDS
        .iter()
        .copied()
        .chain(EXTRA_FIELDS.iter().map(|(name, _)| *name))
        .chain(["_gotcha"])
        .collect()
}

/// Phone numbers as people type them (with stray spaces), and junk.
fn any_phone() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "\\+?[0-9]{6,15}",
        3 => " {0,2}(\\+[0-9]{2} {1,2})?(\\([0-9]{1,2}\\) ?)?[0-9]{3}([ .-]{1,2}[0-9]{2,3}){1,3} {0,2}",
        1 => "[0-9+() .-]{0,20}",
        1 => "\\PC{0,10}",
        1 => Just(String::new()),
    ]
}

/// An optional field: often left empty, as visitors do.
fn maybe(text: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    prop_oneof![1 => Just(String::new()), 2 => text]
}
