//! Whatever is accepted comes back from the store unchanged.

use std::time::Duration;

use joinform::domain::{CountryCode, ExtraValues, NewSubmission};
use joinform::store::{Database, SubmissionRecord, submissions};
use proptest::prelude::*;

use super::{
    EXTRA_FIELDS, any_phone, any_text, form_of, maybe, plausible_email, schema_with_extras,
};

/// An assigned country code in any case with spaces around it, or any two letters.
fn any_country() -> impl Strategy<Value = String> {
    let assigned: Vec<String> = CountryCode::all().map(|c| c.as_str().to_owned()).collect();
    prop_oneof![
        4 => (
            proptest::sample::select(assigned),
            any::<[bool; 2]>(),
            " {0,2}",
            " {0,2}",
        )
            .prop_map(|(code, lower, before, after)| {
                let cased: String = code
                    .chars()
                    .zip(lower)
                    .map(|(c, lower)| if lower { c.to_ascii_lowercase() } else { c })
                    .collect();
                format!("{before}{cased}{after}")
            }),
        1 => "[a-zA-Z]{2}",
    ]
}

/// One stored row, as an operator reading the file sees it.
#[derive(Debug)]
struct StoredValues {
    name: String,
    email: String,
    country: String,
    phone: Option<String>,
    city: Option<String>,
    message: Option<String>,
    language: Option<String>,
    consent: bool,
    extra: String,
}

#[test]
fn accepted_values_round_trip_through_the_store_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("joinform.db");
    let database = Database::new(&path, Duration::from_secs(1));
    database.prepare().unwrap();
    let connection = database.connect().unwrap();
    // Faster than one fsync per case; durability is not what this test is about.
    connection
        .pragma_update(None, "synchronous", "OFF")
        .unwrap();
    // A connection of its own, as anyone reading the file would have.
    let reader = rusqlite::Connection::open(&path).unwrap();
    let schema = schema_with_extras();

    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 512,
        ..ProptestConfig::default()
    });
    let strategy = (
        (
            any_text(),
            prop_oneof![
                1 => "[a-z0-9._+-]{1,20}@[a-z0-9]{1,20}\\.[a-z]{2,6}",
                1 => plausible_email(),
            ],
            any_country(),
            any_phone(),
        ),
        (
            maybe(any_text()),
            maybe(any_text()),
            "([a-z]{2}(-[A-Z]{2})?)?",
        ),
        (
            prop_oneof![
                1 => Just(String::new()),
                2 => "[\\p{Latin}\\p{Cyrillic}\\p{Han} .&'-]{1,70}",
                1 => any_text(),
            ],
            prop_oneof![
                1 => Just(String::new()),
                2 => "[A-Z0-9 -]{0,12}",
                1 => any_text(),
            ],
            prop::sample::select(vec!["on", "true", "YES", "1", " on "]),
        ),
    );
    let seen = std::cell::RefCell::new(Coverage::default());
    runner
        .run(
            &strategy,
            |((name, email, country, phone), (city, message, language), (org, member, consent))| {
                let raw = form_of(&[
                    ("name", name),
                    ("email", email),
                    ("country", country.clone()),
                    ("phone", phone),
                    ("city", city),
                    ("message", message),
                    ("language", language),
                    ("consent", consent.into()),
                    ("organisation", org),
                    ("member_no", member),
                ]);
                let Ok(submission) = NewSubmission::parse(&raw, &schema, None) else {
                    return Ok(());
                };
                // The accepted country is the one typed, canonical; nothing else.
                prop_assert_eq!(
                    submission.country.as_str(),
                    country.trim().to_ascii_uppercase()
                );
                let mut record = SubmissionRecord::new(submission.clone(), "Norway", "example.org");
                // Generated addresses repeat; every case must still be written.
                record.rules.per_email_per_day = u32::MAX;
                submissions::admit(&connection, &record).unwrap();
                let stored = reader
                    .query_row(
                        "SELECT name, email, country, phone, city, message, language, consent,
                                extra
                         FROM submissions WHERE id = ?1",
                        [record.id.to_string()],
                        |row| {
                            Ok(StoredValues {
                                name: row.get(0)?,
                                email: row.get(1)?,
                                country: row.get(2)?,
                                phone: row.get(3)?,
                                city: row.get(4)?,
                                message: row.get(5)?,
                                language: row.get(6)?,
                                consent: row.get(7)?,
                                extra: row.get(8)?,
                            })
                        },
                    )
                    .unwrap();
                prop_assert_eq!(stored.name.as_str(), submission.name.as_str());
                prop_assert_eq!(&stored.email, &submission.email.to_string());
                prop_assert_eq!(stored.country.as_str(), submission.country.as_str());
                prop_assert_eq!(
                    stored.phone.as_deref(),
                    submission.phone.as_ref().map(|p| p.as_str())
                );
                prop_assert_eq!(
                    stored.city.as_deref(),
                    submission.city.as_ref().map(|c| c.as_str())
                );
                prop_assert_eq!(
                    stored.message.as_deref(),
                    submission.message.as_ref().map(|m| m.as_str())
                );
                prop_assert_eq!(
                    stored.language.as_deref(),
                    submission.language.as_ref().map(|l| l.as_str())
                );
                prop_assert_eq!(stored.consent, submission.consent.0);
                // The extra values come back as the same JSON object, value for value.
                let extra: ExtraValues = serde_json::from_str(&stored.extra).unwrap();
                prop_assert_eq!(&extra, &submission.extra);
                seen.borrow_mut().count(&submission);
                // What is stored parses again to the same values: nothing was altered.
                let mut again = vec![
                    ("name", stored.name),
                    ("email", stored.email),
                    ("country", stored.country),
                    ("phone", stored.phone.unwrap_or_default()),
                    ("city", stored.city.unwrap_or_default()),
                    ("message", stored.message.unwrap_or_default()),
                    ("language", stored.language.unwrap_or_default()),
                    ("consent", if stored.consent { "on" } else { "off" }.into()),
                ];
                again.extend(
                    EXTRA_FIELDS
                        .iter()
                        .map(|(field, _)| (*field, extra.get(*field).cloned().unwrap_or_default())),
                );
                prop_assert_eq!(
                    NewSubmission::parse(&form_of(&again), &schema, None).unwrap(),
                    submission
                );
                Ok(())
            },
        )
        .unwrap();
    // The strategies must reach every kind of value, or the test proves little.
    let seen = seen.into_inner();
    assert!(seen.accepted > 50, "valid submissions: {seen:?}");
    assert!(seen.with_phone > 20, "with a phone number: {seen:?}");
    assert!(seen.with_extra > 20, "with extra values: {seen:?}");
    assert!(seen.countries.len() > 30, "distinct countries: {seen:?}");
}

/// What the round-trip test reached.
#[derive(Debug, Default)]
struct Coverage {
    accepted: usize,
    with_phone: usize,
    with_extra: usize,
    countries: std::collections::BTreeSet<CountryCode>,
}

impl Coverage {
    fn count(&mut self, submission: &NewSubmission) {
        self.accepted += 1;
        self.with_phone += usize::from(submission.phone.is_some());
        self.with_extra += usize::from(!submission.extra.is_empty());
        self.countries.insert(submission.country);
    }
}
