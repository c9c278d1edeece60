//! Bodies read as POST /join reads them: `read_form` over a streamed payload, in
//! chunks, with the request's own headers (multipart, Content-Encoding, limits).

use std::time::Duration;

use actix_web::http::header::HeaderValue;
use actix_web::web::{self, Bytes};
use actix_web::{FromRequest, ResponseError};
use joinform::domain::{DuplicateField, FormSchema, NewSubmission, RawForm};
use joinform::http::body::{BodyError, read_form};
use joinform::http::error::{ErrorResponse, ResponseMode};
use proptest::prelude::*;

/// The server's default `server.max_body_bytes`.
pub(super) const LIMIT: usize = 16 * 1024;

/// No body takes longer than this to read; more means the reader waits for nothing.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

type PayloadStream = std::pin::Pin<
    Box<dyn futures_util::Stream<Item = Result<Bytes, actix_web::error::PayloadError>>>,
>;

pub(super) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Reads `body` with the library's body reader, as POST /join does: sent in pieces cut
/// at `cuts`, with `headers`. `None` when a header cannot be sent at all (not a
/// valid header value) and so never reaches the server.
pub(super) fn read_body(
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
pub(super) fn status_of(error: BodyError) -> u16 {
    ErrorResponse::new(ResponseMode::Json, error)
        .status_code()
        .as_u16()
}

/// The error, by kind, in the terms `expected_multipart` uses.
pub(super) fn kind_of(error: &BodyError) -> String {
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

/// The status POST /join would answer: 201 for a valid submission, 422 for fields that
/// fail validation, or the body error's status.
pub(super) fn join_status(outcome: Result<RawForm, BodyError>, schema: &FormSchema) -> u16 {
    match outcome {
        Ok(form) => match NewSubmission::parse(&form, schema, None) {
            Ok(_) => 201,
            Err(_) => 422,
        },
        Err(error) => status_of(error),
    }
}
