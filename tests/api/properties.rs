//! Property tests: no input panics the decoders or validators; no body, however
//! encoded (JSON, urlencoded, multipart; plain, gzip or deflate, cut into any chunks),
//! panics the body reader or gets a 5xx; compression changes nothing but size; and
//! whatever is accepted comes back from the store unchanged.

use std::io::Write;
use std::time::Duration;

use actix_web::http::header::HeaderValue;
use actix_web::web::{self, Bytes};
use actix_web::{FromRequest, ResponseError};
use joinform::domain::{
    CountryCode, DuplicateField, ExtraFieldSpec, ExtraValues, FieldName, FormSchema, NewSubmission,
    RawForm, RawValue, STANDARD_FIELDS,
};
use joinform::http::body::{BodyError, decode_json, decode_urlencoded, read_form};
use joinform::http::error::{ErrorResponse, ResponseMode};
use joinform::store::{Database, SubmissionRecord, submissions};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

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

/// An optional field: often left empty, as visitors do.
fn maybe(text: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    prop_oneof![1 => Just(String::new()), 2 => text]
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

// ---------------------------------------------------------------------------------
// Bodies read as POST /join reads them: `read_form` over a streamed payload, in
// chunks, with the request's own headers (multipart, Content-Encoding, limits).
// ---------------------------------------------------------------------------------

/// The server's default `server.max_body_bytes`.
const LIMIT: usize = 16 * 1024;

/// No body takes longer than this to read; more means the reader waits for nothing.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

type PayloadStream = std::pin::Pin<
    Box<dyn futures_util::Stream<Item = Result<Bytes, actix_web::error::PayloadError>>>,
>;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Reads `body` with the library's body reader, as POST /join does: sent in pieces cut
/// at `cuts`, with `headers`. `None` when a header cannot be sent at all (not a
/// valid header value) and so never reaches the server.
fn read_body(
    runtime: &tokio::runtime::Runtime,
    headers: &[(&str, &[u8])],
    body: &[u8],
    cuts: &[prop::sample::Index],
    schema: &FormSchema,
) -> Option<Result<RawForm, BodyError>> {
    let mut request = actix_web::test::TestRequest::post().uri("/join");
    for (name, value) in headers {
        request = request.insert_header((*name, HeaderValue::from_bytes(value).ok()?));
    }
    let request = request.to_http_request();
    let mut at: Vec<usize> = cuts.iter().map(|cut| cut.index(body.len() + 1)).collect();
    at.extend([0, body.len()]);
    at.sort_unstable();
    at.dedup();
    let chunks: Vec<Result<Bytes, actix_web::error::PayloadError>> = at
        .windows(2)
        .map(|piece| Ok(Bytes::copy_from_slice(&body[piece[0]..piece[1]])))
        .collect();
    let stream: PayloadStream = Box::pin(futures_util::stream::iter(chunks));
    let mut payload = actix_web::dev::Payload::from(stream);
    let read = runtime.block_on(async {
        let payload = web::Payload::from_request(&request, &mut payload)
            .await
            .unwrap();
        tokio::time::timeout(READ_TIMEOUT, read_form(&request, payload, schema, LIMIT)).await
    });
    Some(read.unwrap_or_else(|_| panic!("reading the body did not finish in {READ_TIMEOUT:?}")))
}

/// The status POST /join answers a body error with.
fn status_of(error: BodyError) -> u16 {
    ErrorResponse::new(ResponseMode::Json, error)
        .status_code()
        .as_u16()
}

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// RFC 2046 boundary characters (a space only inside), 1 to 70 of them.
fn any_boundary() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9'()+_,./:=?-]{1,70}",
        "[A-Za-z0-9'()+_,./:=?-]{1,30} [A-Za-z0-9'()+_,./:=?-]{1,30}",
        "-{1,10}[a-z0-9]{0,10}",
    ]
}

/// How a part says what it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PartKind {
    /// Content-Disposition only.
    Text,
    /// With `Content-Type: text/plain; charset=utf-8`.
    TypedText,
    /// A file: `filename="…"`.
    FileName,
    /// A file: `filename*=UTF-8''…`.
    FileNameExt,
    /// A non-text Content-Type.
    Binary,
}

#[derive(Debug, Clone)]
struct Part {
    name: String,
    kind: PartKind,
    value: Vec<u8>,
}

fn any_part() -> impl Strategy<Value = Part> {
    (
        prop_oneof![
            4 => prop::sample::select(known_names()).prop_map(str::to_owned),
            1 => "[a-z_]{1,10}",
        ],
        prop_oneof![
            16 => Just(PartKind::Text),
            4 => Just(PartKind::TypedText),
            1 => Just(PartKind::FileName),
            1 => Just(PartKind::FileNameExt),
            1 => Just(PartKind::Binary),
        ],
        prop_oneof![
            8 => any_text().prop_map(String::into_bytes),
            1 => proptest::collection::vec(any::<u8>(), 0..40),
        ],
    )
        .prop_map(|(name, kind, value)| Part { name, kind, value })
}

/// A well-formed multipart/form-data body: optional preamble, the parts, the close.
fn multipart_body(boundary: &str, preamble: &[u8], parts: &[Part]) -> Vec<u8> {
    let mut body = Vec::new();
    if !preamble.is_empty() {
        body.extend_from_slice(preamble);
        body.extend_from_slice(b"\r\n");
    }
    for part in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        body.extend_from_slice(
            format!("Content-Disposition: form-data; name=\"{}\"", part.name).as_bytes(),
        );
        match part.kind {
            PartKind::FileName => body.extend_from_slice(b"; filename=\"photo.jpg\""),
            PartKind::FileNameExt => body.extend_from_slice(b"; filename*=UTF-8''photo.jpg"),
            _ => {}
        }
        body.extend_from_slice(b"\r\n");
        match part.kind {
            PartKind::TypedText => {
                body.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\r\n");
            }
            PartKind::Binary => {
                body.extend_from_slice(b"Content-Type: application/octet-stream\r\n")
            }
            _ => {}
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(&part.value);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

/// What `read_form` must make of a well-formed multipart body, part by part in order.
fn expected_multipart(parts: &[Part], schema: &FormSchema) -> Result<RawForm, String> {
    // A file anywhere refuses the body before any part is decoded: decoding waits for
    // the last part, which may be the `_charset_` that says how to decode the others.
    if parts.iter().any(|part| {
        matches!(
            part.kind,
            PartKind::FileName | PartKind::FileNameExt | PartKind::Binary
        )
    }) {
        return Err("FilePart".into());
    }
    let mut form = RawForm::default();
    for part in parts {
        // A part may start with a byte-order mark; it is not part of the value.
        let value = part
            .value
            .strip_prefix(b"\xEF\xBB\xBF")
            .unwrap_or(&part.value);
        let Ok(value) = String::from_utf8(value.to_vec()) else {
            return Err("InvalidUtf8".into());
        };
        if schema.is_known(&part.name) && form.insert(&part.name, RawValue::Text(value)).is_err() {
            return Err(format!("Duplicate({})", part.name));
        }
    }
    Ok(form)
}

/// The error, by kind, in the terms `expected_multipart` uses.
fn kind_of(error: &BodyError) -> String {
    match error {
        BodyError::TooLarge { .. } => "TooLarge".into(),
        BodyError::UnsupportedMediaType(_) => "UnsupportedMediaType".into(),
        BodyError::FilePart => "FilePart".into(),
        BodyError::Malformed(_) => "Malformed".into(),
        BodyError::InvalidUtf8 { .. } => "InvalidUtf8".into(),
        BodyError::Misencoded { .. } => "Misencoded".into(),
        BodyError::Duplicate(DuplicateField(name)) => format!("Duplicate({name})"),
    }
}

/// Ways to break a well-formed body.
#[derive(Debug, Clone)]
enum Damage {
    Truncate(prop::sample::Index),
    Insert(prop::sample::Index, Vec<u8>),
    Remove(prop::sample::Index, usize),
    /// Every CRLF becomes a bare LF.
    BareLineFeeds,
    /// One CRLF goes missing.
    DropLineBreak(prop::sample::Index),
    /// A stretch is repeated (a part, a header, half a boundary).
    Repeat(prop::sample::Index, usize),
}

fn any_damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        any::<prop::sample::Index>().prop_map(Damage::Truncate),
        (
            any::<prop::sample::Index>(),
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 1..8),
                Just(b"\r\n".to_vec()),
                Just(b"--".to_vec()),
                Just(b"\r\n\r\n".to_vec()),
                Just(b"\xff\xfe".to_vec()),
            ]
        )
            .prop_map(|(at, bytes)| Damage::Insert(at, bytes)),
        (any::<prop::sample::Index>(), 1..40usize).prop_map(|(at, n)| Damage::Remove(at, n)),
        Just(Damage::BareLineFeeds),
        any::<prop::sample::Index>().prop_map(Damage::DropLineBreak),
        (any::<prop::sample::Index>(), 1..120usize).prop_map(|(at, n)| Damage::Repeat(at, n)),
    ]
}

fn damage(body: &mut Vec<u8>, how: &Damage) {
    match how {
        Damage::Truncate(at) => body.truncate(at.index(body.len() + 1)),
        Damage::Insert(at, bytes) => {
            let at = at.index(body.len() + 1);
            body.splice(at..at, bytes.iter().copied());
        }
        Damage::Remove(at, n) => {
            let at = at.index(body.len() + 1);
            body.drain(at..(at + n).min(body.len()));
        }
        Damage::BareLineFeeds => {
            let mut fixed = Vec::with_capacity(body.len());
            for (i, &byte) in body.iter().enumerate() {
                if !(byte == b'\r' && body.get(i + 1) == Some(&b'\n')) {
                    fixed.push(byte);
                }
            }
            *body = fixed;
        }
        Damage::DropLineBreak(which) => {
            let breaks: Vec<usize> = body
                .windows(2)
                .enumerate()
                .filter(|(_, pair)| pair == b"\r\n")
                .map(|(i, _)| i)
                .collect();
            if !breaks.is_empty() {
                let at = breaks[which.index(breaks.len())];
                body.drain(at..at + 2);
            }
        }
        Damage::Repeat(at, n) => {
            let at = at.index(body.len() + 1);
            let stretch = body[at..(at + n).min(body.len())].to_vec();
            body.splice(at..at, stretch);
        }
    }
}

/// Bits of multipart syntax, shuffled into field-like text.
fn multipart_tokens(boundary: &str) -> Vec<Vec<u8>> {
    let mut tokens: Vec<Vec<u8>> = [
        &b"--"[..],
        b"\r\n",
        b"\n",
        b"\r",
        b"\r\n\r\n",
        b"Content-Disposition: form-data; name=\"name\"",
        b"Content-Disposition: form-data; name=\"email\"",
        b"Content-Disposition: form-data; name=\"organisation\"",
        b"Content-Disposition: form-data",
        b"Content-Disposition: attachment; name=\"x\"",
        b"content-disposition:form-data;name=consent",
        b"; filename=\"a.txt\"",
        b"; filename*=UTF-8''%e2%82%ac.txt",
        b"; name=\"message\"",
        b"Content-Type: text/plain",
        b"Content-Type: image/png",
        b"Content-Type: multipart/mixed; boundary=inner",
        b"Content-Type: ",
        b"Content-Length: 3",
        b"Content-Length: 99999999999999999999",
        b"Content-Transfer-Encoding: base64",
        b"Kari",
        b"kari@example.org",
        b"\"",
        b";",
        b":",
        b" ",
        b"\xff\xfe",
        b"\xe2\x82",
        b"\0",
    ]
    .iter()
    .map(|token| token.to_vec())
    .collect();
    // Whole header lines, so that the soup often has headers a parser will read.
    let lines: Vec<Vec<u8>> = tokens
        .iter()
        .filter(|token| token.len() > 12)
        .map(|token| [token.as_slice(), b"\r\n"].concat())
        .collect();
    tokens.extend(lines);
    tokens.push(b"\r\n\r\nKari".to_vec());
    tokens.push(format!("\r\n\r\nKari\r\n--{boundary}\r\n").into_bytes());
    tokens.push(boundary.as_bytes().to_vec());
    tokens.push(format!("--{boundary}\r\n").into_bytes());
    tokens.push(format!("\r\n--{boundary}").into_bytes());
    tokens.push(format!("--{boundary}--").into_bytes());
    tokens
}

/// What every multipart outcome must satisfy, whatever the body: an error the client
/// is told about (never a 5xx), or fields that each come verbatim from the body, no
/// more of them than there are Content-Disposition headers.
fn check_multipart_outcome(
    body: &[u8],
    outcome: Result<RawForm, BodyError>,
) -> Result<(), TestCaseError> {
    match outcome {
        Ok(form) => {
            let dispositions = body
                .to_ascii_lowercase()
                .windows(b"content-disposition".len())
                .filter(|w| *w == b"content-disposition")
                .count();
            prop_assert!(form.len() <= dispositions, "{} fields", form.len());
            for name in known_names() {
                match form.get(name) {
                    None => {}
                    Some(RawValue::Text(value)) => prop_assert!(
                        contains(body, value.as_bytes()),
                        "{name}: {value:?} is not in the body"
                    ),
                    Some(other) => prop_assert!(false, "{name}: {other:?} from multipart"),
                }
            }
        }
        Err(error) => {
            let status = status_of(error);
            prop_assert!(matches!(status, 400 | 413 | 415), "status {status}");
        }
    }
    Ok(())
}

fn multipart_type(boundary: &str, quoted: bool) -> Vec<u8> {
    if quoted {
        format!("multipart/form-data; boundary=\"{boundary}\"").into_bytes()
    } else {
        format!("multipart/form-data; boundary={boundary}").into_bytes()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// A well-formed multipart body yields exactly its text parts' values, refuses a
    /// file, invalid UTF-8 or a known field twice, whatever the boundary, however the
    /// body is cut into chunks.
    #[test]
    fn well_formed_multipart_decodes_to_exactly_its_parts(
        boundary in any_boundary(),
        preamble in prop_oneof![Just(Vec::new()), "[ -~]{1,40}".prop_map(String::into_bytes)],
        parts in proptest::collection::vec(any_part(), 0..8),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let delimiter = format!("--{boundary}");
        prop_assume!(!contains(&preamble, delimiter.as_bytes()));
        prop_assume!(parts.iter().all(|part| !contains(&part.value, delimiter.as_bytes())));
        let schema = schema_with_extras();
        let body = multipart_body(&boundary, &preamble, &parts);
        let content_type = multipart_type(&boundary, true);
        let runtime = runtime();
        let outcome = read_body(&runtime, &[("content-type", &content_type)], &body, &cuts, &schema)
            .expect("a quoted boundary is a valid header value");
        match (outcome, expected_multipart(&parts, &schema)) {
            (Ok(form), Ok(expected)) => prop_assert_eq!(form, expected),
            (Err(error), Err(expected)) => prop_assert_eq!(kind_of(&error), expected),
            (outcome, expected) => prop_assert!(false, "got {outcome:?}, expected {expected:?}"),
        }
    }

    /// Damaged multipart bodies (cut short, bare LFs, lost or extra line breaks,
    /// inserted bytes, repeated stretches) never panic or hang, and are either fields
    /// from the body or a 4xx.
    #[test]
    fn damaged_multipart_never_panics(
        boundary in any_boundary(),
        quoted in prop::bool::weighted(0.8),
        parts in proptest::collection::vec(any_part(), 0..6),
        damages in proptest::collection::vec(any_damage(), 1..4),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let schema = schema_with_extras();
        let mut body = multipart_body(&boundary, b"", &parts);
        for how in &damages {
            damage(&mut body, how);
        }
        let content_type = multipart_type(&boundary, quoted);
        let runtime = runtime();
        if let Some(outcome) =
            read_body(&runtime, &[("content-type", &content_type)], &body, &cuts, &schema)
        {
            check_multipart_outcome(&body, outcome)?;
        }
    }

    /// Field-like multipart text and arbitrary bytes, under any boundary (or none, or
    /// one that is not there), never panic or hang.
    #[test]
    fn field_like_and_arbitrary_multipart_never_panics(
        boundary in prop_oneof![4 => any_boundary(), 1 => "[ -~]{0,20}", 1 => "\\PC{1,5}"],
        header in prop_oneof![3 => Just(1u8), 1 => Just(0u8), 1 => Just(2u8), 1 => Just(3u8)],
        body in proptest::collection::vec(any::<u8>(), 0..512),
        tokens in proptest::collection::vec(any::<prop::sample::Index>(), 0..24),
        use_tokens in any::<bool>(),
        open in any::<bool>(),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let schema = schema_with_extras();
        let body = if use_tokens {
            let vocabulary = multipart_tokens(&boundary);
            // Half the time past the opening delimiter, into headers and values.
            let opening = if open { format!("--{boundary}\r\n").into_bytes() } else { Vec::new() };
            opening
                .into_iter()
                .chain(tokens.iter().flat_map(|t| vocabulary[t.index(vocabulary.len())].clone()))
                .collect()
        } else {
            body
        };
        let content_type = match header {
            0 => multipart_type(&boundary, false),
            1 => multipart_type(&boundary, true),
            2 => b"multipart/form-data".to_vec(),
            _ => format!("multipart/form-data; boundary={boundary}; boundary=other").into_bytes(),
        };
        let runtime = runtime();
        if let Some(outcome) =
            read_body(&runtime, &[("content-type", &content_type)], &body, &cuts, &schema)
        {
            check_multipart_outcome(&body, outcome)?;
        }
    }
}

/// The content codings a client may label its body with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    Gzip,
    XGzip,
    Deflate,
}

impl Coding {
    fn label(self) -> &'static [u8] {
        match self {
            Self::Gzip => b"gzip",
            Self::XGzip => b"x-gzip",
            Self::Deflate => b"deflate",
        }
    }

    /// `bytes` compressed as this coding says (HTTP's deflate is zlib).
    fn compress(self, level: u32, bytes: &[u8]) -> Vec<u8> {
        let level = flate2::Compression::new(level);
        match self {
            Self::Gzip | Self::XGzip => {
                let mut encoder = flate2::write::GzEncoder::new(Vec::new(), level);
                encoder.write_all(bytes).unwrap();
                encoder.finish().unwrap()
            }
            Self::Deflate => {
                let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), level);
                encoder.write_all(bytes).unwrap();
                encoder.finish().unwrap()
            }
        }
    }
}

fn any_coding() -> impl Strategy<Value = Coding> {
    prop_oneof![
        Just(Coding::Gzip),
        Just(Coding::XGzip),
        Just(Coding::Deflate)
    ]
}

const JSON: &[u8] = b"application/json";
const FORM: &[u8] = b"application/x-www-form-urlencoded";
const MULTIPART: &[u8] = b"multipart/form-data; boundary=XyZ";

fn any_content_type() -> impl Strategy<Value = &'static [u8]> {
    prop_oneof![Just(JSON), Just(FORM), Just(MULTIPART)]
}

/// Names people have, and any text.
fn any_name() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => "[\\p{Latin}\\p{Cyrillic}\\p{Han}]{1,20}( [\\p{Latin}'-]{1,20})?",
        1 => any_text(),
    ]
}

/// Bodies of every kind the server reads, valid and not, each with the Content-Type
/// it would be sent with (random bytes and field-like text under any of them).
fn any_typed_body() -> BoxedStrategy<(&'static [u8], Vec<u8>)> {
    prop_oneof![
        1 => (any_content_type(), proptest::collection::vec(any::<u8>(), 0..1024)),
        1 => (
            any_content_type(),
            "[a-z&=%0-9A-F+{}\":,\\[\\] ]{0,200}".prop_map(String::into_bytes),
        ),
        2 => (any_name(), maybe(any_text()), any_phone()).prop_map(|(name, city, phone)| {
            let body = serde_json::json!({
                "name": name, "email": "kari@example.org", "country": "NO",
                "city": city, "phone": phone, "consent": true,
            });
            (JSON, serde_json::to_vec(&body).unwrap())
        }),
        2 => (any_name(), maybe(any_text())).prop_map(|(name, organisation)| {
            let encode = |text: &str| {
                percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC)
                    .to_string()
            };
            let body = format!(
                "name={}&email=kari%40example.org&country=no&consent=on&organisation={}",
                encode(&name),
                encode(&organisation)
            );
            (FORM, body.into_bytes())
        }),
        2 => (any_name(), proptest::collection::vec(any_part(), 0..3)).prop_map(
            |(name, more)| {
                let text = |name: &str, value: &str| Part {
                    name: name.into(),
                    kind: PartKind::Text,
                    value: value.as_bytes().to_vec(),
                };
                let mut parts = vec![
                    text("name", &name),
                    text("email", "kari@example.org"),
                    text("country", "NO"),
                    text("consent", "on"),
                ];
                parts.extend(more);
                (MULTIPART, multipart_body("XyZ", b"", &parts))
            }
        ),
    ]
    .boxed()
}

/// A body's outcome in comparable terms: the fields, or the error as the client
/// sees it.
fn outcome_of(outcome: Result<RawForm, BodyError>) -> Result<RawForm, String> {
    outcome.map_err(|error| format!("{} {error}", kind_of(&error)))
}

/// The status POST /join would answer: 201 for a valid submission, 422 for fields that
/// fail validation, or the body error's status.
fn join_status(outcome: Result<RawForm, BodyError>, schema: &FormSchema) -> u16 {
    match outcome {
        Ok(form) => match NewSubmission::parse(&form, schema, None) {
            Ok(_) => 201,
            Err(_) => 422,
        },
        Err(error) => status_of(error),
    }
}

/// A valid submission as JSON, followed by `size` bytes in all of JSON whitespace: a
/// body that is valid exactly as long as it is within the limit.
fn padded_json(size: usize, pad: &[u8]) -> Vec<u8> {
    let mut body =
        br#"{"name":"Kari Nordmann","email":"kari@example.org","country":"NO","consent":true}"#
            .to_vec();
    let mut at = 0;
    while body.len() < size {
        body.push(pad[at % pad.len()]);
        at += 1;
    }
    body
}

/// What a compression bomb expands to: 512 times the limit.
const BOMB_SIZE: usize = 8 * 1024 * 1024;

/// A valid submission padded to `BOMB_SIZE` bytes, compressed with `coding`; made once.
fn bomb(coding: Coding) -> &'static [u8] {
    static BOMBS: std::sync::OnceLock<[Vec<u8>; 2]> = std::sync::OnceLock::new();
    let bombs = BOMBS.get_or_init(|| {
        let body = padded_json(BOMB_SIZE, b" ");
        [
            Coding::Gzip.compress(9, &body),
            Coding::Deflate.compress(9, &body),
        ]
    });
    match coding {
        Coding::Gzip | Coding::XGzip => &bombs[0],
        Coding::Deflate => &bombs[1],
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Compression is transparent: a compressed body within the limit reads exactly as
    /// the same body sent plain, whatever it holds, at any level, in any chunks.
    #[test]
    fn compressed_bodies_read_as_the_plain_body(
        (content_type, body) in any_typed_body(),
        coding in any_coding(),
        level in 0..=9u32,
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let schema = schema_with_extras();
        let runtime = runtime();
        let compressed = coding.compress(level, &body);
        prop_assume!(compressed.len() <= LIMIT);
        let plain = read_body(&runtime, &[("content-type", content_type)], &body, &[], &schema)
            .unwrap();
        let decompressed = read_body(
            &runtime,
            &[("content-type", content_type), ("content-encoding", coding.label())],
            &compressed,
            &cuts,
            &schema,
        )
        .unwrap();
        prop_assert_eq!(outcome_of(decompressed), outcome_of(plain));
    }

    /// A body that decompresses past the limit is 413 however small it was sent, and
    /// one that decompresses to the limit or less is read: the limit counts the bytes
    /// the server would have to hold, to the byte.
    #[test]
    fn decompressed_size_decides_413(
        size in prop_oneof![
            2 => LIMIT - 16..=LIMIT + 16,
            2 => LIMIT + 1..=16 * LIMIT,
            1 => Just(BOMB_SIZE),
        ],
        pad in proptest::collection::vec(prop::sample::select(b" \t\r\n".to_vec()), 1..8),
        coding in any_coding(),
        level in 1..=9u32,
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let schema = schema_with_extras();
        let runtime = runtime();
        let compressed = if size == BOMB_SIZE {
            let bomb = bomb(coding).to_vec();
            prop_assert!(bomb.len() < LIMIT, "the bomb is sent within the limit");
            bomb
        } else {
            coding.compress(level, &padded_json(size, &pad))
        };
        let outcome = read_body(
            &runtime,
            &[("content-type", JSON), ("content-encoding", coding.label())],
            &compressed,
            &cuts,
            &schema,
        )
        .unwrap();
        if size <= LIMIT {
            prop_assert_eq!(join_status(outcome, &schema), 201);
        } else {
            prop_assert!(
                matches!(outcome, Err(BodyError::TooLarge { limit: LIMIT })),
                "{size} bytes from {} sent: {outcome:?}",
                compressed.len()
            );
        }
    }

    /// Bytes labelled gzip or deflate that are not (random, cut short, bit-flipped,
    /// with bytes after the end, labelled with the other coding) never panic and are
    /// 400: never a 5xx, and never taken for some other body. An intact body under the
    /// right label reads as the plain body.
    #[test]
    fn broken_compressed_bodies_are_400(
        (content_type, body) in any_typed_body(),
        coding in any_coding(),
        label in any_coding(),
        breakage in prop::sample::select(vec![
            Breakage::Random, Breakage::CutShort, Breakage::BitFlip, Breakage::Trailing,
            Breakage::None,
        ]),
        at in any::<prop::sample::Index>(),
        junk in proptest::collection::vec(any::<u8>(), 1..16),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let schema = schema_with_extras();
        let runtime = runtime();
        let mut sent = coding.compress(6, &body);
        match breakage {
            Breakage::Random => sent.clone_from(&junk),
            Breakage::CutShort => sent.truncate(at.index(sent.len())),
            Breakage::BitFlip => {
                let i = at.index(sent.len());
                sent[i] ^= 1 << (junk[0] % 8);
            }
            Breakage::Trailing => sent.extend_from_slice(&junk),
            Breakage::None => {}
        }
        let outcome = read_body(
            &runtime,
            &[("content-type", content_type), ("content-encoding", label.label())],
            &sent,
            &cuts,
            &schema,
        )
        .unwrap();
        let plain = read_body(&runtime, &[("content-type", content_type)], &body, &[], &schema)
            .unwrap();
        let is_zlib = |coding| coding == Coding::Deflate;
        let same_family = is_zlib(coding) == is_zlib(label);
        let malformed = matches!(outcome, Err(BodyError::Malformed(_)));
        match breakage {
            // A flipped bit in a header field (a gzip time stamp, say) may do no harm;
            // in the data, the checksum catches it.
            Breakage::BitFlip if same_family => prop_assert!(
                malformed || outcome_of(plain) == outcome_of(outcome),
                "bit flipped at {}", at.index(sent.len())
            ),
            Breakage::None if same_family => {
                prop_assert_eq!(outcome_of(outcome), outcome_of(plain));
            }
            _ => prop_assert!(malformed, "{breakage:?}, {} bytes sent: {outcome:?}", sent.len()),
        }
    }
}

/// How `broken_compressed_bodies_are_400` spoils a compressed body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Breakage {
    /// A few random bytes instead.
    Random,
    /// Only a prefix is sent.
    CutShort,
    BitFlip,
    /// Bytes after the end of the compressed stream.
    Trailing,
    None,
}

/// What a client labels its body with.
#[derive(Debug, Clone)]
enum SentBody {
    Plain(Vec<u8>),
    Compressed(Coding, Vec<u8>),
    /// Random bytes under a coding's label.
    Junk(Coding, Vec<u8>),
    Bomb(Coding),
    /// A coding the server does not speak.
    Unsupported(&'static str, Vec<u8>),
}

impl SentBody {
    /// The Content-Encoding header and the bytes on the wire.
    fn wire(&self) -> (Option<&'static [u8]>, Vec<u8>) {
        match self {
            Self::Plain(body) => (None, body.clone()),
            Self::Compressed(coding, body) => (Some(coding.label()), coding.compress(6, body)),
            Self::Junk(coding, bytes) => (Some(coding.label()), bytes.clone()),
            Self::Bomb(coding) => (Some(coding.label()), bomb(*coding).to_vec()),
            Self::Unsupported(label, body) => (Some(label.as_bytes()), body.clone()),
        }
    }
}

fn any_sent_body() -> BoxedStrategy<(&'static [u8], SentBody)> {
    let sent: BoxedStrategy<(&'static [u8], SentBody)> = prop_oneof![
        2 => any_typed_body().prop_map(|(content_type, body)| (content_type, SentBody::Plain(body))),
        3 => (any_coding(), any_typed_body())
            .prop_map(|(c, (content_type, body))| (content_type, SentBody::Compressed(c, body))),
        2 => (
            any_content_type(),
            any_coding(),
            proptest::collection::vec(any::<u8>(), 0..256),
        )
            .prop_map(|(content_type, c, bytes)| (content_type, SentBody::Junk(c, bytes))),
        1 => any_coding().prop_map(|c| (JSON, SentBody::Bomb(c))),
        1 => (
            prop::sample::select(vec!["br", "compress", "gzip, gzip", "zstd", "gzip;q=1"]),
            any_typed_body(),
        )
            .prop_map(|(label, (content_type, body))| {
                (content_type, SentBody::Unsupported(label, body))
            }),
    ]
    .boxed();
    prop_oneof![
        8 => sent.clone(),
        1 => sent.prop_map(|(_, body)| (&b"text/plain"[..], body)),
    ]
    .boxed()
}

/// Through the real server over loopback: whatever the body and its coding, POST /join
/// answers exactly as the library's body reader and validation predict (201, or 303
/// for an HTML form; 400, 413, 415 or 422), never a 5xx, and the server stays up.
#[test]
fn post_join_answers_every_body_with_a_client_status() {
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let app = server_runtime.block_on(crate::helpers::spawn_app_with(|settings| {
        settings.form.extra_fields = EXTRA_FIELDS
            .iter()
            .map(|(name, max_length)| joinform::config::ExtraFieldSettings {
                name: (*name).into(),
                max_length: *max_length,
                required: false,
            })
            .collect();
    }));
    assert_eq!(app.settings.server.max_body_bytes, LIMIT);
    // The server's own schema, built as start-up builds it.
    let secret = joinform::secret::ServerSecret::from_bytes(&[1; 32]);
    let spam = joinform::spam::SpamChecks::from_settings(&app.settings, &secret);
    let schema = app.settings.form.schema().with_control_fields(
        spam.fields()
            .into_iter()
            .chain([joinform::http::form_page::LANGUAGE_FIELD]),
    );
    // A connection per request: one the server closed after a 413 is never reused.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let reader = runtime();

    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 64,
        ..ProptestConfig::default()
    });
    let strategy = (any_sent_body(), any::<bool>());
    runner
        .run(&strategy, |((content_type, body), accept_json)| {
            let (coding, bytes) = body.wire();
            let mut headers = vec![("content-type", content_type)];
            headers.extend(coding.map(|label| ("content-encoding", label)));
            let predicted = join_status(
                read_body(&reader, &headers, &bytes, &[], &schema).unwrap(),
                &schema,
            );
            let html = !accept_json && content_type != JSON;
            let expected = if html && predicted == 201 {
                303
            } else {
                predicted
            };
            let status = server_runtime.block_on(async {
                let mut request = client
                    .post(app.url("/join"))
                    .header("content-type", content_type)
                    .body(bytes.clone());
                if let Some(label) = coding {
                    request = request.header("content-encoding", label);
                }
                if accept_json {
                    request = request.header("accept", "application/json");
                }
                request.send().await.unwrap().status().as_u16()
            });
            prop_assert!(!(500..600).contains(&status), "a server error: {status}");
            prop_assert_eq!(status, expected);
            Ok(())
        })
        .unwrap();
    let healthy = server_runtime.block_on(async {
        client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(healthy, 200);
    server_runtime.block_on(app.stop());
}
