//! Property tests: no input panics the decoders or validators, and whatever is accepted
//! comes back from the store unchanged.

use std::time::Duration;

use joinform::domain::{FormSchema, NewSubmission, RawForm, RawValue};
use joinform::http::body::{decode_json, decode_urlencoded};
use joinform::store::{Database, SubmissionRecord, submissions};
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_urlencoded(&body, &schema());
        let _ = decode_json(&body, &schema());
    }

    #[test]
    fn decoders_never_panic_on_field_like_text(body in "[a-z&=%0-9A-F+{}\":,\\[\\] ]{0,200}") {
        let _ = decode_urlencoded(body.as_bytes(), &schema());
        let _ = decode_json(body.as_bytes(), &schema());
    }

    #[test]
    fn validators_never_panic(
        name in any_text(), email in plausible_email(), country in "[a-zA-Z]{0,3}|\\PC{0,3}",
        phone in "[0-9+() .-]{0,20}|\\PC{0,10}", city in any_text(), message in any_text(),
        language in "[a-zA-Z-]{0,40}", consent in any_text(),
    ) {
        let raw = form_of(&[
            ("name", name), ("email", email), ("country", country), ("phone", phone),
            ("city", city), ("message", message), ("language", language), ("consent", consent),
        ]);
        let _ = NewSubmission::parse(&raw, &schema(), None);
    }
}

#[test]
fn accepted_values_round_trip_through_the_store_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let database = Database::new(dir.path().join("joinform.db"), Duration::from_secs(1));
    database.prepare().unwrap();
    let connection = database.connect().unwrap();
    // Faster than one fsync per case; durability is not what this test is about.
    connection
        .pragma_update(None, "synchronous", "OFF")
        .unwrap();

    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 512,
        ..ProptestConfig::default()
    });
    let strategy = (
        any_text(),
        plausible_email(),
        any_text(),
        any_text(),
        "[a-z]{2}(-[A-Z]{2})?",
    );
    let accepted = std::cell::Cell::new(0);
    runner
        .run(&strategy, |(name, email, city, message, language)| {
            let raw = form_of(&[
                ("name", name),
                ("email", email),
                ("country", "NO".into()),
                ("city", city),
                ("message", message),
                ("language", language),
                ("consent", "on".into()),
            ]);
            let Ok(submission) = NewSubmission::parse(&raw, &schema(), None) else {
                return Ok(());
            };
            accepted.set(accepted.get() + 1);
            let mut record = SubmissionRecord::new(submission.clone(), "Norway", "example.org");
            // Generated addresses repeat; every case must still be written.
            record.rules.per_email_per_day = u32::MAX;
            submissions::admit(&connection, &record).unwrap();
            let stored: (
                String,
                String,
                Option<String>,
                Option<String>,
                Option<String>,
            ) = connection
                .query_row(
                    "SELECT name, email, city, message, language FROM submissions WHERE id = ?1",
                    [record.id.to_string()],
                    |row| {
                        Ok((
                            row.get(0)?,
                            row.get(1)?,
                            row.get(2)?,
                            row.get(3)?,
                            row.get(4)?,
                        ))
                    },
                )
                .unwrap();
            prop_assert_eq!(stored.0.as_str(), submission.name.as_str());
            prop_assert_eq!(&stored.1, &submission.email.to_string());
            prop_assert_eq!(
                stored.2.as_deref(),
                submission.city.as_ref().map(|c| c.as_str())
            );
            prop_assert_eq!(
                stored.3.as_deref(),
                submission.message.as_ref().map(|m| m.as_str())
            );
            prop_assert_eq!(
                stored.4.as_deref(),
                submission.language.as_ref().map(|l| l.as_str())
            );
            // What is stored parses again to the same values: nothing was altered.
            let again = form_of(&[
                ("name", stored.0),
                ("email", stored.1),
                ("country", "NO".into()),
                ("city", stored.2.unwrap_or_default()),
                ("message", stored.3.unwrap_or_default()),
                ("language", stored.4.unwrap_or_default()),
                ("consent", "on".into()),
            ]);
            prop_assert_eq!(
                NewSubmission::parse(&again, &schema(), None).unwrap(),
                submission
            );
            Ok(())
        })
        .unwrap();
    assert!(
        accepted.get() > 50,
        "the strategies produce enough valid submissions: {}",
        accepted.get()
    );
}

fn spam_settings() -> joinform::config::Settings {
    let mut settings = joinform::config::Settings::default();
    settings.spam.blocked_phrases = vec!["giveaway".into(), "ставки".into()];
    settings.spam.blocked_patterns = vec![r"(?i)\bcasino\b".into(), r"[\p{Han}]{20,}".into()];
    settings
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Every valid submission is judged, whatever its text, without a panic and in
    /// bounded time (the regex crate matches in linear time; this guards against a
    /// rule that would not).
    #[test]
    fn spam_judging_never_panics_and_stays_fast(
        name in any_text(),
        city in any_text(),
        message in prop_oneof![any_text(), "(https?://[a-z.]{1,20} ){0,50}"],
        honeypot in prop_oneof![Just(String::new()), any_text()],
        token in prop_oneof![Just(String::new()), any_text(), "[0-9a-f]{1,20}\\.[0-9a-f]{32}\\.[0-9a-f]{64}"],
    ) {
        let settings = spam_settings();
        let secret = joinform::secret::ServerSecret::from_bytes(&[1; 32]);
        let checks = joinform::spam::SpamChecks::from_settings(&settings, &secret);
        let mut raw = form_of(&[
            ("name", name),
            ("email", "kari@example.org".into()),
            ("country", "NO".into()),
            ("city", city),
            ("message", message),
            ("consent", "on".into()),
        ]);
        raw.insert("_gotcha", RawValue::Text(honeypot)).unwrap();
        raw.insert("_token", RawValue::Text(token)).unwrap();
        if let Ok(submission) = NewSubmission::parse(&raw, &schema(), None) {
            let started = std::time::Instant::now();
            let judgement = checks.judge(&raw, &submission);
            prop_assert!(started.elapsed() < Duration::from_secs(1));
            // No made-up token passes the signature check.
            prop_assert!(judgement.token.is_none());
        }
    }

    /// Forwarding headers from a trusted proxy can hold anything; reading them never
    /// panics and always yields an address.
    #[test]
    fn client_address_parsing_never_panics(
        forwarded in "[ -~]{0,200}",
        x_forwarded_for in "[ -~]{0,200}",
    ) {
        use joinform::config::ForwardingHeader;
        for header in [ForwardingHeader::XForwardedFor, ForwardingHeader::Forwarded] {
            let trusted =
                joinform::spam::TrustedProxies::new(vec!["127.0.0.0/8".parse().unwrap()], header);
            let mut request = actix_web::test::TestRequest::default()
                .peer_addr("127.0.0.1:5000".parse().unwrap());
            if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&forwarded) {
                request = request.insert_header(("forwarded", value));
            }
            if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&x_forwarded_for) {
                request = request.insert_header(("x-forwarded-for", value));
            }
            let request = request.to_http_request();
            prop_assert!(joinform::spam::ClientIp::of(&request, &trusted).is_some());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Whatever a visitor typed, its CSV cell cannot start a formula, and a CSV reader
    /// gets the text back exactly (behind the one added `'`).
    #[test]
    fn csv_cells_are_neutralised_and_round_trip(cell in prop_oneof![
        any::<String>(),
        "[=+@\t\r\0-][ -~]{0,30}",
        "[\",\n\r a-z]{0,30}",
    ]) {
        let safe = joinform::export::neutralise(&cell);
        let first = safe.chars().next();
        prop_assert!(!matches!(first, Some('=' | '+' | '-' | '@' | '\t' | '\r' | '\0')));
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record([safe.as_ref(), "next"]).unwrap();
        let bytes = writer.into_inner().unwrap();
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(bytes.as_slice());
        let record = reader.records().next().unwrap().unwrap();
        let expected = if safe.len() == cell.len() { cell.clone() } else { format!("'{cell}") };
        prop_assert_eq!(&record[0], expected.as_str());
        prop_assert_eq!(&record[1], "next");
    }
}
