//! Compression changes nothing but size: a compressed body reads as the plain one,
//! the decompressed size decides 413, and broken compressed bodies are 400.

use std::io::Write;

use joinform::domain::{FormSchema, RawForm};
use joinform::http::body::BodyError;
use proptest::prelude::*;

use super::multipart::{Part, PartKind, any_part, multipart_body};
use super::reader::{LIMIT, join_status, kind_of, read_body, runtime};
use super::{any_phone, any_text, maybe, schema_with_extras};

/// The content codings a client may label its body with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Coding {
    Gzip,
    XGzip,
    Deflate,
}

impl Coding {
    pub(super) fn label(self) -> &'static [u8] {
        match self {
            Self::Gzip => b"gzip",
            Self::XGzip => b"x-gzip",
            Self::Deflate => b"deflate",
        }
    }

    /// `bytes` compressed as this coding says (HTTP's deflate is zlib).
    pub(super) fn compress(self, level: u32, bytes: &[u8]) -> Vec<u8> {
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

pub(super) fn any_coding() -> impl Strategy<Value = Coding> {
    prop_oneof![
        Just(Coding::Gzip),
        Just(Coding::XGzip),
        Just(Coding::Deflate)
    ]
}

pub(super) const JSON: &[u8] = b"application/json";
const FORM: &[u8] = b"application/x-www-form-urlencoded";
const MULTIPART: &[u8] = b"multipart/form-data; boundary=XyZ";

pub(super) fn any_content_type() -> impl Strategy<Value = &'static [u8]> {
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
pub(super) fn any_typed_body() -> BoxedStrategy<(&'static [u8], Vec<u8>)> {
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

/// Reads `sent` as POST /join does, with its Content-Type and, if `coding` is given,
/// that coding's Content-Encoding (headers that are always valid), cut at `cuts`.
fn read_labelled(
    runtime: &tokio::runtime::Runtime,
    content_type: &'static [u8],
    coding: Option<Coding>,
    sent: &[u8],
    cuts: &[prop::sample::Index],
    schema: &FormSchema,
) -> Result<RawForm, BodyError> {
    let mut headers = vec![("content-type", content_type)];
    headers.extend(coding.map(|coding| ("content-encoding", coding.label())));
    read_body(runtime, &headers, sent, cuts, schema).expect("valid header values")
}

/// What a compression bomb expands to: 512 times the limit.
const BOMB_SIZE: usize = 8 * 1024 * 1024;

/// A valid submission padded to `BOMB_SIZE` bytes, compressed with `coding`; made once.
pub(super) fn bomb(coding: Coding) -> &'static [u8] {
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
        let plain = read_labelled(&runtime, content_type, None, &body, &[], &schema);
        let decompressed =
            read_labelled(&runtime, content_type, Some(coding), &compressed, &cuts, &schema);
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
        let outcome = read_labelled(&runtime, JSON, Some(coding), &compressed, &cuts, &schema);
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
        let outcome = read_labelled(&runtime, content_type, Some(label), &sent, &cuts, &schema);
        let plain = read_labelled(&runtime, content_type, None, &body, &[], &schema);
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
