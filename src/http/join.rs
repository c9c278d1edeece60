//! POST /join: where a submission enters.

use actix_web::http::header::{self, AcceptLanguage, Header, Preference};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use crate::domain::{LanguageTag, NewSubmission};
use crate::store::SubmissionRecord;

use super::AppState;
use super::body::read_form;
use super::error::{ApiError, ErrorResponse, ResponseMode};

#[derive(Serialize)]
struct Received {
    id: String,
    status: &'static str,
}

/// Decode → parse → route → commit (with its notification) → answer. The answer is
/// sent only once the submission is committed to disk; mail is the worker's business.
#[tracing::instrument(name = "join", skip_all, fields(id = tracing::field::Empty, country = tracing::field::Empty, section = tracing::field::Empty))]
pub async fn join(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ErrorResponse> {
    let mode = ResponseMode::of(&request);
    let fail = |error: ApiError| ErrorResponse::new(mode, error);
    let raw = read_form(&request, payload, &state.schema, state.max_body_bytes)
        .await
        .map_err(|e| fail(e.into()))?;
    let submission = NewSubmission::parse(&raw, &state.schema, preferred_language(&request))
        .map_err(|e| fail(e.into()))?;
    let section = state.routing.route(submission.country);
    let span = tracing::Span::current();
    span.record("country", submission.country.as_str());
    span.record("section", section.name.as_str());
    let record = SubmissionRecord::accepted(submission, &section.name, &state.message_domain);
    let id = record.id;
    span.record("id", tracing::field::display(id));
    state
        .writer
        .insert(record)
        .await
        .map_err(|e| fail(e.into()))?;
    state.delivery.notify_one();
    tracing::info!("submission stored");
    Ok(match mode {
        ResponseMode::Json => HttpResponse::Created().json(Received {
            id: id.to_string(),
            status: "received",
        }),
        ResponseMode::Html => HttpResponse::SeeOther()
            .insert_header((header::LOCATION, state.success_url.as_str()))
            .finish(),
    })
}

/// The browser's most preferred specific language, if it is a tag we accept.
pub fn preferred_language(request: &HttpRequest) -> Option<LanguageTag> {
    let accept = AcceptLanguage::parse(request).ok()?;
    accept
        .ranked()
        .into_iter()
        .find_map(|preference| match preference {
            Preference::Specific(tag) => LanguageTag::parse(tag.as_str()).ok().flatten(),
            Preference::Any => None,
        })
}
