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
use futures_util::{StreamExt, TryStreamExt};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::domain::{DuplicateField, FormSchema, RawForm, RawValue};

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
    #[error("the request body is not valid UTF-8")]
    InvalidUtf8,
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
    /// From the Content-Type header; a charset other than UTF-8 is refused.
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
        if let Some(charset) = mime.get_param(mime::CHARSET)
            && !charset.as_str().eq_ignore_ascii_case("utf-8")
        {
            return Err(BodyError::UnsupportedMediaType("only UTF-8 is accepted"));
        }
        Ok(format)
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
    let body = read_limited(request, payload, limit).await?;
    match format {
        BodyFormat::Json => decode_json(&body, schema),
        BodyFormat::UrlEncoded => decode_urlencoded(&body, schema),
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
async fn read_limited(
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

/// `application/x-www-form-urlencoded`, strictly: every name and value must decode to
/// UTF-8 (browsers encode UTF-8 when the page is UTF-8).
pub fn decode_urlencoded(body: &[u8], schema: &FormSchema) -> Result<RawForm, BodyError> {
    let mut form = RawForm::default();
    for pair in body
        .split(|&byte| byte == b'&')
        .filter(|pair| !pair.is_empty())
    {
        let (name, value) = match pair.iter().position(|&byte| byte == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &[][..]),
        };
        let name = percent_decode_utf8(name)?;
        let value = percent_decode_utf8(value)?;
        if schema.is_known(&name) {
            form.insert(&name, RawValue::Text(value.into_owned()))?;
        }
    }
    Ok(form)
}

fn percent_decode_utf8(encoded: &[u8]) -> Result<Cow<'_, str>, BodyError> {
    let with_spaces: Cow<'_, [u8]> = if encoded.contains(&b'+') {
        Cow::Owned(
            encoded
                .iter()
                .map(|&byte| if byte == b'+' { b' ' } else { byte })
                .collect(),
        )
    } else {
        Cow::Borrowed(encoded)
    };
    let decoded: Vec<u8> = percent_encoding::percent_decode(&with_spaces).collect();
    String::from_utf8(decoded)
        .map(Cow::Owned)
        .map_err(|_| BodyError::InvalidUtf8)
}

/// `application/json`: one object whose known members are strings (or `true`/`false`
/// for consent). `null` counts as absent; other members are skipped unread.
pub fn decode_json(body: &[u8], schema: &FormSchema) -> Result<RawForm, BodyError> {
    if std::str::from_utf8(body).is_err() {
        return Err(BodyError::InvalidUtf8);
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

/// `multipart/form-data` with text parts only.
async fn decode_multipart(
    request: &HttpRequest,
    body: Bytes,
    schema: &FormSchema,
) -> Result<RawForm, BodyError> {
    let stream = futures_util::stream::once(async move { Ok(body) });
    let mut multipart = Multipart::new(request.headers(), stream);
    let mut form = RawForm::default();
    while let Some(mut field) = multipart
        .try_next()
        .await
        .map_err(|error| BodyError::Malformed(error.to_string()))?
    {
        let disposition = field.content_disposition();
        if disposition.is_some_and(|d| d.get_filename().is_some() || d.get_filename_ext().is_some())
        {
            return Err(BodyError::FilePart);
        }
        if let Some(mime) = field.content_type()
            && mime.type_() != mime::TEXT
        {
            return Err(BodyError::FilePart);
        }
        let name = field.name().unwrap_or_default().to_owned();
        let mut value = Vec::new();
        while let Some(chunk) = field
            .try_next()
            .await
            .map_err(|error| BodyError::Malformed(error.to_string()))?
        {
            value.extend_from_slice(&chunk);
        }
        let value = String::from_utf8(value).map_err(|_| BodyError::InvalidUtf8)?;
        if schema.is_known(&name) {
            form.insert(&name, RawValue::Text(value))?;
        }
    }
    Ok(form)
}
