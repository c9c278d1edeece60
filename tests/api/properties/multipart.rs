//! Multipart bodies, well formed, damaged or made of field-like soup: exactly their
//! parts, or a 4xx, never a panic or a hang.

use joinform::domain::{FormSchema, RawForm, RawValue};
use joinform::http::body::BodyError;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::reader::{kind_of, read_body, runtime, status_of};
use super::{any_text, known_names, schema_with_extras};

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
pub(super) enum PartKind {
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
pub(super) struct Part {
    pub(super) name: String,
    pub(super) kind: PartKind,
    pub(super) value: Vec<u8>,
}

pub(super) fn any_part() -> impl Strategy<Value = Part> {
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
pub(super) fn multipart_body(boundary: &str, preamble: &[u8], parts: &[Part]) -> Vec<u8> {
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
