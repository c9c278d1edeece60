//! Reading a request body within its size limit (after decompression too) and
//! decoding it, whatever its encoding, into the known fields of a [`RawForm`].

use std::borrow::Cow;
use std::fmt;
use std::io::Write;

use actix_multipart::Multipart;
use actix_web::HttpMessage;
use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::web::{Bytes, Payload};
use encoding_rs::{Encoding, UTF_8};
use futures_util::{StreamExt, TryStreamExt};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::domain::{DuplicateField, FormSchema, RawForm, RawValue};
use crate::i18n;

use super::form_page::LANGUAGE_FIELD;

/// The field browsers fill with the encoding they sent a form in, when the form has a
/// hidden input of this name (HTML Standard, "constructing the entry list"). Decoders
/// read it and drop it: it is never a field of the submission.
pub const CHARSET_FIELD: &str = "_charset_";

/// The UTF-8 byte-order mark. A body or part may start with it (RFC 8259 section 8.1
/// allows it for JSON); it is a signature, not content.
const BYTE_ORDER_MARK: &[u8] = b"\xEF\xBB\xBF";

/// Why a body could not be turned into fields.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the request body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("{0}")]
    UnsupportedMediaType(&'static str),
    #[error("file uploads are not accepted; send text fields only")]
    FilePart,
    #[error("the request body is malformed: {0}")]
    Malformed(String),
    /// The body (or a part) is not UTF-8 and names no other encoding: most often a form
    /// on a page that is not UTF-8. `page_language` is the shipped language its `_lang` field
    /// names, if it has one, for wording the answer.
    #[error("the request body is not valid UTF-8")]
    InvalidUtf8 { page_language: Option<&'static str> },
    /// The body names an encoding (`_charset_` or a `charset` parameter) that its bytes
    /// do not follow.
    #[error("the request body is not valid {charset}, the encoding it names")]
    Misencoded { charset: &'static str },
    #[error(transparent)]
    Duplicate(#[from] DuplicateField),
}

/// The encodings a body may come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    Json,
    UrlEncoded,
    Multipart,
}

impl BodyFormat {
    /// From the Content-Type header. A `charset` parameter other than UTF-8 is refused:
    /// JSON is UTF-8 (RFC 8259 section 8.1), and a client that sets its own
    /// Content-Type can send UTF-8. Browsers never send the parameter; a form on a page
    /// in a legacy encoding names it in [`CHARSET_FIELD`] instead.
    ///
    /// # Errors
    /// [`BodyError::UnsupportedMediaType`] for a missing, malformed or other content
    /// type, or a charset joinform cannot read.
    pub fn of(request: &HttpRequest) -> Result<Self, BodyError> {
        let mime = request
            .mime_type()
            .map_err(|_| BodyError::UnsupportedMediaType("the Content-Type header is malformed"))?
            .ok_or(BodyError::UnsupportedMediaType(
                "a Content-Type header is required",
            ))?;
        let format = match (
            mime.type_().as_str(),
            mime.subtype().as_str(),
            mime.suffix(),
        ) {
            ("application", "json", _) | ("application", _, Some(mime::JSON)) => Self::Json,
            ("application", "x-www-form-urlencoded", _) => Self::UrlEncoded,
            ("multipart", "form-data", _) => Self::Multipart,
            _ => {
                return Err(BodyError::UnsupportedMediaType(
                    "send application/x-www-form-urlencoded, multipart/form-data or application/json",
                ));
            }
        };
        // Not mapped like `_charset_`: a Content-Type that says UTF-16 means UTF-16.
        if let Some(charset) = mime.get_param(mime::CHARSET)
            && Encoding::for_label_no_replacement(charset.as_str().trim().as_bytes()) != Some(UTF_8)
        {
            return Err(BodyError::UnsupportedMediaType(
                "send UTF-8; a form on a page in another encoding may name it in _charset_",
            ));
        }
        Ok(format)
    }
}

/// The encoding a body's Content-Type names in its `charset` parameter: after
/// [`BodyFormat::of`], UTF-8 or none.
///
/// # Errors
/// [`BodyError::UnsupportedMediaType`] for a charset the WHATWG Encoding Standard does
/// not know.
pub fn declared_encoding(request: &HttpRequest) -> Result<Option<&'static Encoding>, BodyError> {
    let Ok(Some(mime)) = request.mime_type() else {
        return Ok(None);
    };
    mime.get_param(mime::CHARSET)
        .map(|charset| encoding_named(charset.as_str()))
        .transpose()
}

/// The encoding a label names (WHATWG Encoding Standard labels, any case). UTF-16 is
/// read as UTF-8, as browsers encode a form on a UTF-16 page.
fn encoding_named(label: &str) -> Result<&'static Encoding, BodyError> {
    Encoding::for_label_no_replacement(label.trim().as_bytes())
        .map(Encoding::output_encoding)
        .ok_or(BodyError::UnsupportedMediaType(
            "the body names a character encoding joinform does not know; send UTF-8",
        ))
}

/// The body without a leading UTF-8 byte-order mark.
fn without_bom(body: Bytes) -> Bytes {
    if body.starts_with(BYTE_ORDER_MARK) {
        body.slice(BYTE_ORDER_MARK.len()..)
    } else {
        body
    }
}

/// Reads and decodes the body into the fields `schema` knows.
pub async fn read_form(
    request: &HttpRequest,
    payload: Payload,
    schema: &FormSchema,
    limit: usize,
) -> Result<RawForm, BodyError> {
    let format = BodyFormat::of(request)?;
    let declared = declared_encoding(request)?;
    // The mark is stripped after decompression: it belongs to the text, not the wire.
    let body = without_bom(read_limited(request, payload, limit).await?);
    match format {
        BodyFormat::Json => decode_json(&body, schema),
        BodyFormat::UrlEncoded => decode_urlencoded_in(&body, schema, declared),
        BodyFormat::Multipart => decode_multipart(request, body, schema).await,
    }
}

/// Reads and drops a body the server will not use, up to `limit` bytes, so that the
/// connection stays usable for the client's next request. A longer body is left: the
/// connection is then closed after the answer.
pub async fn discard_body(mut payload: Payload, limit: usize) {
    let mut received = 0usize;
    while let Some(Ok(chunk)) = payload.next().await {
        received += chunk.len();
        if received > limit {
            return;
        }
    }
}

/// Content codings a client may compress its body with.
#[derive(Debug, Clone, Copy)]
enum ContentCoding {
    Identity,
    Gzip,
    /// HTTP's "deflate" is the zlib format (RFC 9110 section 8.4.1.2).
    Deflate,
}

fn content_coding(request: &HttpRequest) -> Result<ContentCoding, BodyError> {
    let Some(value) = request.headers().get(header::CONTENT_ENCODING) else {
        return Ok(ContentCoding::Identity);
    };
    let value = value
        .to_str()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match value.as_str() {
        "" | "identity" => Ok(ContentCoding::Identity),
        "gzip" | "x-gzip" => Ok(ContentCoding::Gzip),
        "deflate" => Ok(ContentCoding::Deflate),
        _ => Err(BodyError::UnsupportedMediaType(
            "the body may be sent as is, or compressed with gzip or deflate",
        )),
    }
}

/// A buffer that refuses to grow past its limit, so that a small compressed body
/// cannot expand into a large allocation.
struct LimitedBuffer {
    bytes: Vec<u8>,
    limit: usize,
    overflowed: bool,
}

impl Write for LimitedBuffer {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + data.len() > self.limit {
            self.overflowed = true;
            return Err(std::io::Error::other("body over the limit"));
        }
        self.bytes.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

enum Decoder {
    Identity(LimitedBuffer),
    Gzip(flate2::write::GzDecoder<LimitedBuffer>),
    Deflate(flate2::write::ZlibDecoder<LimitedBuffer>),
}

impl Decoder {
    fn new(coding: ContentCoding, limit: usize) -> Self {
        let buffer = LimitedBuffer {
            bytes: Vec::new(),
            limit,
            overflowed: false,
        };
        match coding {
            ContentCoding::Identity => Self::Identity(buffer),
            ContentCoding::Gzip => Self::Gzip(flate2::write::GzDecoder::new(buffer)),
            ContentCoding::Deflate => Self::Deflate(flate2::write::ZlibDecoder::new(buffer)),
        }
    }

    fn buffer(&self) -> &LimitedBuffer {
        match self {
            Self::Identity(buffer) => buffer,
            Self::Gzip(decoder) => decoder.get_ref(),
            Self::Deflate(decoder) => decoder.get_ref(),
        }
    }

    fn write_all(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        match self {
            Self::Identity(buffer) => buffer.write_all(chunk),
            Self::Gzip(decoder) => decoder.write_all(chunk),
            Self::Deflate(decoder) => decoder.write_all(chunk),
        }
    }

    /// The whole decompressed body. The last bytes of a compressed body may only come
    /// out here, so a limit passed now is still a limit passed, not a broken body.
    fn finish(mut self, limit: usize) -> Result<LimitedBuffer, BodyError> {
        let flushed = match &mut self {
            Self::Identity(_) => Ok(()),
            Self::Gzip(decoder) => decoder.try_finish(),
            Self::Deflate(decoder) => decoder.try_finish(),
        };
        if flushed.is_err() || self.buffer().overflowed {
            return Err(self.error(limit));
        }
        let buffer = match self {
            Self::Identity(buffer) => Ok(buffer),
            Self::Gzip(decoder) => decoder.finish(),
            Self::Deflate(decoder) => decoder.finish(),
        };
        buffer.map_err(|_| undecompressable())
    }

    /// Maps a write error to what the client did wrong.
    fn error(&self, limit: usize) -> BodyError {
        if self.buffer().overflowed {
            BodyError::TooLarge { limit }
        } else {
            undecompressable()
        }
    }
}

fn undecompressable() -> BodyError {
    BodyError::Malformed("the compressed body cannot be decompressed".into())
}

/// The body, decompressed, refused as soon as either its sent or its decompressed size
/// passes `limit`.
pub(super) async fn read_limited(
    request: &HttpRequest,
    mut payload: Payload,
    limit: usize,
) -> Result<Bytes, BodyError> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    let mut decoder = Decoder::new(content_coding(request)?, limit);
    let mut received = 0usize;
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|error| BodyError::Malformed(error.to_string()))?;
        received += chunk.len();
        if received > limit {
            return Err(BodyError::TooLarge { limit });
        }
        if decoder.write_all(&chunk).is_err() {
            return Err(decoder.error(limit));
        }
    }
    let buffer = decoder.finish(limit)?;
    Ok(Bytes::from(buffer.bytes))
}

/// `application/x-www-form-urlencoded` in UTF-8, or in the encoding its
/// [`CHARSET_FIELD`] names. Every name and value must decode.
///
/// # Errors
/// See [`decode_urlencoded_in`].
pub fn decode_urlencoded(body: &[u8], schema: &FormSchema) -> Result<RawForm, BodyError> {
    decode_urlencoded_in(body, schema, None)
}

/// `application/x-www-form-urlencoded` whose Content-Type may name an encoding
/// (`declared`). A browser encodes a form in its page's encoding and says which only
/// in [`CHARSET_FIELD`], if the form has that field; without either, the body is
/// UTF-8, strictly.
///
/// # Errors
/// [`BodyError::InvalidUtf8`] for a body that is not UTF-8 and names no encoding;
/// [`BodyError::Misencoded`] when it does not follow the one it names;
/// [`BodyError::UnsupportedMediaType`] for an unknown `_charset_`;
/// [`BodyError::Malformed`] when the Content-Type and `_charset_` disagree;
/// [`BodyError::Duplicate`] for a known field (or `_charset_`) given twice.
pub fn decode_urlencoded_in(
    body: &[u8],
    schema: &FormSchema,
    declared: Option<&'static Encoding>,
) -> Result<RawForm, BodyError> {
    let body = body.strip_prefix(BYTE_ORDER_MARK).unwrap_or(body);
    let pairs: Vec<DecodedPair<'_>> = body
        .split(|&byte| byte == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.iter().position(|&byte| byte == b'=') {
            Some(at) => (percent_decode(&pair[..at]), percent_decode(&pair[at + 1..])),
            None => (percent_decode(pair), Cow::Borrowed(&[][..])),
        })
        .collect();
    let charset_fields = pairs
        .iter()
        .filter(|(name, _)| **name == *CHARSET_FIELD.as_bytes())
        .map(|(_, value)| &**value);
    let encoding = form_encoding(declared, charset_fields)?;
    let page_language = || {
        pairs
            .iter()
            .find(|(name, _)| **name == *LANGUAGE_FIELD.as_bytes())
            .and_then(|(_, value)| i18n::resolve(&String::from_utf8_lossy(value)))
    };
    let mut form = RawForm::default();
    for (name, value) in &pairs {
        let name = decode_text(name, encoding, page_language)?;
        let value = decode_value(value, encoding, page_language)?;
        if name != CHARSET_FIELD && schema.is_known(&name) {
            form.insert(&name, RawValue::Text(value))?;
        }
    }
    Ok(form)
}

/// A name and its value, percent-decoded, borrowed from the body where nothing needed decoding.
type DecodedPair<'a> = (Cow<'a, [u8]>, Cow<'a, [u8]>);

/// `+` is a space, then percent-decoding, to bytes in the form's encoding: `%` and two
/// hex digits is that byte, any other `%` stays as it is (as `percent_encoding` does).
/// One pass, and no copy at all for the many names and values that need no decoding
/// (two fresh vectors per name and per value were a measurable part of a request).
fn percent_decode(encoded: &[u8]) -> Cow<'_, [u8]> {
    if !encoded.iter().any(|&byte| byte == b'+' || byte == b'%') {
        return Cow::Borrowed(encoded);
    }
    let mut decoded = Vec::with_capacity(encoded.len());
    let mut rest = encoded;
    while let Some((&byte, tail)) = rest.split_first() {
        rest = tail;
        match byte {
            b'+' => decoded.push(b' '),
            b'%' => match tail {
                [high, low, after @ ..] => match (hex_digit(*high), hex_digit(*low)) {
                    (Some(high), Some(low)) => {
                        decoded.push(high << 4 | low);
                        rest = after;
                    }
                    _ => decoded.push(b'%'),
                },
                _ => decoded.push(b'%'),
            },
            other => decoded.push(other),
        }
    }
    Cow::Owned(decoded)
}

/// The value of one ASCII hex digit, either case.
fn hex_digit(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// The encoding a form was sent in: what its Content-Type and its [`CHARSET_FIELD`]
/// name (they must agree), or `None` when neither names one.
fn form_encoding<'a>(
    declared: Option<&'static Encoding>,
    mut charset_fields: impl Iterator<Item = &'a [u8]>,
) -> Result<Option<&'static Encoding>, BodyError> {
    let field = charset_fields.next();
    if charset_fields.next().is_some() {
        return Err(DuplicateField(CHARSET_FIELD.to_owned()).into());
    }
    let field = field
        .map(|label| encoding_named(&String::from_utf8_lossy(label)))
        .transpose()?;
    match (declared, field) {
        (Some(declared), Some(field)) if declared != field => Err(BodyError::Malformed(
            "the Content-Type charset and the _charset_ field name different encodings".into(),
        )),
        (declared, field) => Ok(field.or(declared)),
    }
}

/// Text in `encoding`; strict UTF-8 when that is UTF-8 or the form named none.
fn decode_text(
    bytes: &[u8],
    encoding: Option<&'static Encoding>,
    page_language: impl FnOnce() -> Option<&'static str>,
) -> Result<String, BodyError> {
    match encoding {
        Some(encoding) if encoding != UTF_8 => encoding
            .decode_without_bom_handling_and_without_replacement(bytes)
            .map(Cow::into_owned)
            .ok_or(BodyError::Misencoded {
                charset: encoding.name(),
            }),
        _ => String::from_utf8(bytes.to_vec()).map_err(|_| BodyError::InvalidUtf8 {
            page_language: page_language(),
        }),
    }
}

/// A field's value, decoded as [`decode_text`] does; from a legacy encoding, with the
/// decimal character references the browser wrote for what that encoding cannot hold
/// turned back into characters (see [`resolve_decimal_references`]).
fn decode_value(
    bytes: &[u8],
    encoding: Option<&'static Encoding>,
    page_language: impl FnOnce() -> Option<&'static str>,
) -> Result<String, BodyError> {
    let text = decode_text(bytes, encoding, page_language)?;
    Ok(match encoding {
        Some(encoding) if encoding != UTF_8 => match resolve_decimal_references(&text) {
            Cow::Borrowed(_) => text,
            Cow::Owned(resolved) => resolved,
        },
        // In a UTF-8 form every character travels as itself, so an `&#1044;` there is
        // what the visitor typed.
        _ => text,
    })
}

/// The longest decimal reference resolved: `1114111` is U+10FFFF, the last code point.
const MAX_REFERENCE_DIGITS: usize = 7;

/// `text` with each decimal character reference (`&#1044;`) replaced by its character.
///
/// A browser submitting a form in a legacy encoding (Latin-1, Shift_JIS, windows-1251,
/// ...) writes each character that encoding cannot hold as `&#` + its code point in
/// decimal + `;` (WHATWG Encoding Standard, "encode" with error mode "html", which the
/// HTML Standard's form submission uses), so a Cyrillic name from a Latin-1 page
/// arrives as `&#1044;&#1084;...`. A literal `&` typed by the visitor is sent as `%26`,
/// which after percent-decoding looks the same: the ambiguity is in the format, and a
/// visitor who typed `&#1044;` on such a page gets `Д`. Browsers never write the hex
/// form `&#x414;`, so it stays as typed. A reference to no Unicode scalar value
/// (a surrogate, past U+10FFFF, more than seven digits), without its `;`, or to a
/// control character, which no one types into a form field, also stays as typed, for
/// the field's own rules to judge.
pub fn resolve_decimal_references(text: &str) -> Cow<'_, str> {
    if !text.contains("&#") {
        return Cow::Borrowed(text);
    }
    let mut resolved = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("&#") {
        resolved.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        // ASCII digits are one byte each, so `digits` is also a byte offset.
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let character = Some(&after[..digits])
            .filter(|number| (1..=MAX_REFERENCE_DIGITS).contains(&number.len()))
            .filter(|_| after[digits..].starts_with(';'))
            .and_then(|number| number.parse::<u32>().ok())
            .and_then(char::from_u32)
            .filter(|character| !character.is_control());
        match character {
            Some(character) => {
                resolved.push(character);
                rest = &after[digits + 1..];
            }
            None => {
                resolved.push_str("&#");
                rest = after;
            }
        }
    }
    resolved.push_str(rest);
    Cow::Owned(resolved)
}

/// `application/json`: one object whose known members are strings (or `true`/`false`
/// for consent). `null` counts as absent; other members are skipped unread.
pub fn decode_json(body: &[u8], schema: &FormSchema) -> Result<RawForm, BodyError> {
    let body = body.strip_prefix(BYTE_ORDER_MARK).unwrap_or(body);
    if std::str::from_utf8(body).is_err() {
        return Err(BodyError::InvalidUtf8 {
            page_language: None,
        });
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let form = JsonForm { schema }
        .deserialize(&mut deserializer)
        .and_then(|form| deserializer.end().map(|()| form))
        .map_err(|error| {
            // Position only: serde's message may quote what the visitor typed.
            BodyError::Malformed(format!(
                "invalid JSON at line {} column {}{}",
                error.line(),
                error.column(),
                if error.is_data() {
                    " (expected an object of fields)"
                } else {
                    ""
                }
            ))
        })?;
    Ok(form?)
}

struct JsonForm<'a> {
    schema: &'a FormSchema,
}

impl<'de> DeserializeSeed<'de> for JsonForm<'_> {
    /// A duplicate is not a syntax error: the rest is read and the duplicate reported.
    type Value = Result<RawForm, DuplicateField>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for JsonForm<'_> {
    type Value = Result<RawForm, DuplicateField>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON object of form fields")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut form = RawForm::default();
        let mut duplicate = None;
        while let Some(name) = map.next_key::<Cow<'de, str>>()? {
            if !self.schema.is_known(&name) {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let value = match map.next_value::<serde_json::Value>()? {
                serde_json::Value::Null => continue,
                serde_json::Value::String(text) => RawValue::Text(text),
                serde_json::Value::Bool(flag) => RawValue::Bool(flag),
                _ => RawValue::Other,
            };
            if let Err(error) = form.insert(&name, value) {
                duplicate.get_or_insert(error);
            }
        }
        Ok(match duplicate {
            Some(error) => Err(error),
            None => Ok(form),
        })
    }
}

/// One text part of a multipart body, not yet decoded.
struct TextPart {
    name: String,
    value: Vec<u8>,
    /// The `charset` of the part's own Content-Type, if any.
    charset: Option<&'static Encoding>,
}

/// `multipart/form-data` with text parts only. A file input left empty (a part with an
/// empty file name and no content, as browsers send it) is absent. Each part is UTF-8,
/// or in its own Content-Type's charset, or else in the encoding the
/// [`CHARSET_FIELD`] part names (RFC 7578 section 4.6).
async fn decode_multipart(
    request: &HttpRequest,
    body: Bytes,
    schema: &FormSchema,
) -> Result<RawForm, BodyError> {
    let stream = futures_util::stream::once(async move { Ok(body) });
    let mut multipart = Multipart::new(request.headers(), stream);
    let mut parts = Vec::new();
    while let Some(mut field) = multipart
        .try_next()
        .await
        .map_err(|error| BodyError::Malformed(error.to_string()))?
    {
        let file_name = field.content_disposition().and_then(|d| {
            d.get_filename()
                .map(str::is_empty)
                .or_else(|| d.get_filename_ext().map(|ext| ext.value.is_empty()))
        });
        let text_type = match field.content_type() {
            None => Ok(None),
            Some(mime) if mime.type_() == mime::TEXT => mime
                .get_param(mime::CHARSET)
                .map(|charset| encoding_named(charset.as_str()))
                .transpose(),
            Some(_) => Err(BodyError::FilePart),
        };
        let name = field.name().unwrap_or_default().to_owned();
        let mut value = Vec::new();
        while let Some(chunk) = field
            .try_next()
            .await
            .map_err(|error| BodyError::Malformed(error.to_string()))?
        {
            value.extend_from_slice(&chunk);
        }
        match (file_name, value.is_empty()) {
            // A file input the visitor left empty.
            (Some(true), true) => continue,
            (Some(_), _) => return Err(BodyError::FilePart),
            (None, _) => {}
        }
        let charset = text_type?;
        if let Some(text) = value.strip_prefix(BYTE_ORDER_MARK) {
            value = text.to_vec();
        }
        parts.push(TextPart {
            name,
            value,
            charset,
        });
    }
    let charset_fields = parts
        .iter()
        .filter(|part| part.name == CHARSET_FIELD)
        .map(|part| part.value.as_slice());
    let encoding = form_encoding(None, charset_fields)?;
    let page_language = || {
        parts
            .iter()
            .find(|part| part.name == LANGUAGE_FIELD)
            .and_then(|part| i18n::resolve(&String::from_utf8_lossy(&part.value)))
    };
    let mut form = RawForm::default();
    for part in &parts {
        let value = decode_value(&part.value, part.charset.or(encoding), page_language)?;
        if part.name != CHARSET_FIELD && schema.is_known(&part.name) {
            form.insert(&part.name, RawValue::Text(value))?;
        }
    }
    Ok(form)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_agrees_with_the_percent_encoding_crate() {
        // The crate's decoder after `+` became a space is what this replaced.
        let cases: [&[u8]; 12] = [
            b"",
            b"plain",
            b"Jane+Example",
            b"j%40example.org",
            b"%2B33612345678",
            b"100%",
            b"%4",
            b"%zz%41",
            b"%+41",
            b"%%41",
            b"a%C3%A9b%c3%a9",
            b"%E2%80%8B+x+%",
        ];
        for case in cases {
            let spaced: Vec<u8> = case
                .iter()
                .map(|&byte| if byte == b'+' { b' ' } else { byte })
                .collect();
            let expected: Vec<u8> = percent_encoding::percent_decode(&spaced).collect();
            assert_eq!(&*percent_decode(case), expected.as_slice(), "{case:?}");
        }
    }

    #[test]
    fn decimal_references_become_their_characters() {
        let cases = [
            (
                "&#1044;&#1084;&#1080;&#1090;&#1088;&#1080;&#1081;",
                "Дмитрий",
                "a Cyrillic name from a Latin-1 page",
            ),
            (
                "花子 &#127800;",
                "花子 🌸",
                "outside the BMP, from Shift_JIS",
            ),
            (
                "Ren\u{e9}e &#1044;.",
                "Renée Д.",
                "beside text the encoding held",
            ),
            ("&#&#1044;", "&#Д", "a stray &# before a reference"),
            ("&#1114111;", "\u{10FFFF}", "the last code point"),
            (
                "&#65533;",
                "\u{FFFD}",
                "the replacement character ISO-2022-JP sends for ESC",
            ),
        ];
        for (typed, expected, reason) in cases {
            assert_eq!(resolve_decimal_references(typed), expected, "{reason}");
        }
    }

    #[test]
    fn what_is_not_a_browsers_reference_stays_as_typed() {
        let cases = [
            ("Kari & Ola", "no reference"),
            ("&#x414;", "hex: browsers write decimal"),
            ("&#1044", "no semicolon"),
            ("&#;", "no digits"),
            ("&#-1;", "a sign"),
            ("&#55296;", "a surrogate (U+D800)"),
            ("&#57343;", "a surrogate (U+DFFF)"),
            ("&#1114112;", "past U+10FFFF"),
            ("&#00000001044;", "more than seven digits"),
            ("&#99999999999999999999999;", "more digits than a u32 holds"),
            ("&#0;", "NUL"),
            ("&#10;", "a line feed: a control"),
            ("&#133;", "a C1 control (NEL)"),
            ("&#", "&# at the end"),
        ];
        for (typed, reason) in cases {
            assert_eq!(resolve_decimal_references(typed), typed, "{reason}");
        }
    }

    #[test]
    fn text_without_references_is_not_copied() {
        assert!(matches!(
            resolve_decimal_references("Kari Nordmann"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn references_are_resolved_only_in_a_legacy_encoding() {
        let schema = FormSchema {
            consent_required: true,
            extra_fields: Vec::new(),
            control_fields: Vec::new(),
        };
        let name = |body: &[u8]| match decode_urlencoded(body, &schema) {
            Ok(form) => form.get("name").cloned(),
            Err(error) => panic!("{error}"),
        };
        let cases: [(&[u8], &str, &str); 3] = [
            (
                b"_charset_=windows-1252&name=Ren%E9e+%26%231044%3B",
                "Renée Д",
                "windows-1252",
            ),
            (
                b"_charset_=UTF-8&name=Ren%C3%A9e+%26%231044%3B",
                "Renée &#1044;",
                "a UTF-8 form names _charset_: typed as is",
            ),
            (
                b"name=Ren%C3%A9e+%26%231044%3B",
                "Renée &#1044;",
                "a UTF-8 form: typed as is",
            ),
        ];
        for (body, expected, reason) in cases {
            assert_eq!(
                name(body),
                Some(RawValue::Text(expected.to_owned())),
                "{reason}"
            );
        }
    }
}
