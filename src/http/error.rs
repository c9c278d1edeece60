//! Every error a client can see, mapped to its status and body in one place, in JSON or
//! HTML as the client asked. An HTML answer is a page like every other: the site's
//! layout and Content-Security-Policy, in the language negotiated for the request
//! (templates/error.html, [`pages::error_page`]).

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, Accept, Header};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, HttpResponseBuilder, ResponseError, web};
use serde::Serialize;

use crate::config::FormSettings;
use crate::domain::ValidationErrors;
use crate::i18n::{REFERENCE_LANGUAGE, Texts};
use crate::sealing::SealError;
use crate::store::WriteFailure;

use super::AppState;
use super::body::BodyError;
use super::followup_page::LinkFailure;
use super::followup_texts::FollowupTexts;
use super::pages::{self, Layout};
use super::visitor_pages::{self, VisitorFailure};

/// Seconds a client should wait before retrying when the store cannot commit: every
/// 503 of both listeners and of `/readyz` says this in `Retry-After`.
pub(crate) const RETRY_AFTER_SECONDS: u32 = 5;

/// Whether the client gets JSON or an HTML page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseMode {
    Json,
    Html,
}

impl ResponseMode {
    /// JSON for a JSON body or an Accept header that prefers JSON; otherwise HTML,
    /// because a plain HTML form posted the request.
    pub fn of(request: &HttpRequest) -> Self {
        let json_body =
            request.mime_type().ok().flatten().is_some_and(|mime| {
                mime.subtype() == mime::JSON || mime.suffix() == Some(mime::JSON)
            });
        let prefers_json = Accept::parse(request).is_ok_and(|accept| {
            let preferred = accept.preference();
            preferred.type_() == mime::APPLICATION
                && (preferred.subtype() == mime::JSON || preferred.suffix() == Some(mime::JSON))
        });
        if json_body || prefers_json {
            Self::Json
        } else {
            Self::Html
        }
    }
}

/// What went wrong, independent of how it is shown.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error(transparent)]
    Validation(#[from] ValidationErrors),
    #[error("the submission could not be stored: {0}")]
    Store(#[from] WriteFailure),
    #[error("not found")]
    NotFound,
    #[error("Too many requests. Please wait a moment and try again.")]
    RateLimited { retry_after: std::time::Duration },
    #[error("A form token cannot be issued just now. Please try again in a moment.")]
    TokenUnavailable,
    /// A follow-up link that cannot be shown or acted on.
    #[error(transparent)]
    Link(#[from] LinkFailure),
    /// A visitor's link that cannot be shown or acted on, or a visitor's page's form
    /// sent from elsewhere.
    #[error(transparent)]
    Visitor(#[from] VisitorFailure),
    /// Sealed storage could not encrypt a sign-up (a key or the built-in templates;
    /// never the sign-up's data): nothing was stored.
    #[error("the submission could not be sealed: {0}")]
    Seal(#[from] SealError),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Body(BodyError::TooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Body(BodyError::UnsupportedMediaType(_) | BodyError::FilePart) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            Self::Body(
                BodyError::Malformed(_)
                | BodyError::InvalidUtf8 { .. }
                | BodyError::Misencoded { .. }
                | BodyError::Duplicate(_),
            ) => StatusCode::BAD_REQUEST,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::TokenUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Link(LinkFailure::Unknown) => StatusCode::NOT_FOUND,
            Self::Link(LinkFailure::Expired | LinkFailure::Gone) => StatusCode::GONE,
            Self::Link(LinkFailure::Forbidden) => StatusCode::FORBIDDEN,
            Self::Link(LinkFailure::BadState) => StatusCode::BAD_REQUEST,
            Self::Visitor(VisitorFailure::Unknown) => StatusCode::NOT_FOUND,
            Self::Visitor(
                VisitorFailure::ConfirmExpired | VisitorFailure::Expired | VisitorFailure::Gone,
            ) => StatusCode::GONE,
            Self::Visitor(VisitorFailure::Forbidden) => StatusCode::FORBIDDEN,
            Self::Seal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable snake_case code for clients.
    fn code(&self) -> &'static str {
        match self {
            Self::Body(BodyError::TooLarge { .. }) => "payload_too_large",
            Self::Body(BodyError::UnsupportedMediaType(_)) => "unsupported_media_type",
            Self::Body(BodyError::FilePart) => "file_not_accepted",
            Self::Body(BodyError::Malformed(_)) => "malformed_body",
            Self::Body(BodyError::InvalidUtf8 { .. }) => "invalid_utf8",
            Self::Body(BodyError::Misencoded { .. }) => "invalid_encoding",
            Self::Body(BodyError::Duplicate(_)) => "duplicate_field",
            Self::Validation(_) => "validation_failed",
            Self::Store(_) => "temporarily_unavailable",
            Self::NotFound => "not_found",
            Self::RateLimited { .. } => "rate_limited",
            Self::TokenUnavailable => "temporarily_unavailable",
            Self::Link(LinkFailure::Unknown) => "not_found",
            Self::Link(LinkFailure::Expired) => "link_expired",
            Self::Link(LinkFailure::Gone) => "gone",
            Self::Link(LinkFailure::Forbidden) => "forbidden",
            Self::Link(LinkFailure::BadState) => "invalid_state",
            Self::Visitor(VisitorFailure::Unknown) => "not_found",
            Self::Visitor(VisitorFailure::ConfirmExpired | VisitorFailure::Expired) => {
                "link_expired"
            }
            Self::Visitor(VisitorFailure::Gone) => "gone",
            Self::Visitor(VisitorFailure::Forbidden) => "forbidden",
            Self::Seal(_) => "internal_error",
        }
    }

    /// The key of the translated sentence an error page shows (templates/form/*.toml).
    fn page_key(&self) -> &'static str {
        match self {
            Self::Body(BodyError::TooLarge { .. }) => "error_too_large",
            Self::Body(_) => "error_unreadable",
            Self::Validation(_) => "summary_title",
            Self::Store(_) | Self::TokenUnavailable | Self::Seal(_) => "error_unavailable",
            // A follow-up or visitor's link's page has words of its own (`page`);
            // this is the form's nearest, for completeness.
            Self::NotFound | Self::Link(_) | Self::Visitor(_) => "error_not_found",
            Self::RateLimited { .. } => "error_rate_limited",
        }
    }

    /// The sentence shown to the client; store details stay in the log.
    fn message(&self) -> String {
        match self {
            Self::Store(_) | Self::Seal(_) => {
                "We could not save your submission just now. Please try again in a moment."
                    .to_owned()
            }
            Self::Validation(_) => "Some fields need your attention.".to_owned(),
            other => other.to_string(),
        }
    }
}

/// An [`ApiError`] with the form the client wants it in.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct ErrorResponse {
    pub mode: ResponseMode,
    #[source]
    pub error: ApiError,
    /// A shipped language to word field problems (and a body that is not UTF-8) in;
    /// English when unset.
    pub language: Option<&'static str>,
    /// For an HTML answer: the site's layout and the request's page language.
    page: Option<PageContext>,
}

/// What an error page needs of the request it answers.
#[derive(Debug)]
struct PageContext {
    layout: Arc<Layout>,
    language: &'static str,
}

impl ErrorResponse {
    pub fn new(mode: ResponseMode, error: impl Into<ApiError>) -> Self {
        Self {
            mode,
            error: error.into(),
            language: None,
            page: None,
        }
    }

    /// The answer to `request`, in the format it asks for: for a browser, a page in the
    /// site's layout and in the language negotiated for the request, as every page.
    pub fn of(request: &HttpRequest, error: impl Into<ApiError>) -> Self {
        let mut response = Self::new(ResponseMode::of(request), error);
        response.page = request
            .app_data::<web::Data<AppState>>()
            .map(|state| PageContext {
                layout: Arc::clone(state.page.layout()),
                language: state.page.language_of(request),
            });
        response
    }

    /// Words validation messages, the answer to a body that is not UTF-8 and an error
    /// page in `language` (the page the visitor filled in, or the browser's language).
    /// The same error as JSON, whatever the request asked for: for endpoints that only
    /// ever answer JSON (GET /join/token, GET /join/challenge), which scripts and
    /// widgets call with `fetch()`'s default `Accept: */*`.
    pub fn as_json(mut self) -> Self {
        self.mode = ResponseMode::Json;
        self
    }

    pub fn in_language(mut self, language: &'static str) -> Self {
        self.language = Some(language);
        self
    }
}

#[derive(Serialize)]
struct JsonError<'a> {
    error: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<JsonFieldError<'a>>,
}

#[derive(Serialize)]
struct JsonFieldError<'a> {
    field: &'a str,
    code: &'a str,
    message: String,
}

impl ResponseError for ErrorResponse {
    fn status_code(&self) -> StatusCode {
        self.error.status()
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), error = %self.error, "request failed");
        }
        let mut response = HttpResponse::build(status);
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        if let ApiError::RateLimited { retry_after } = &self.error {
            // Whole seconds, rounded up: a client that waits this long gets through.
            let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            response.insert_header((header::RETRY_AFTER, seconds.max(1)));
        } else if status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECONDS));
        }
        match self.mode {
            ResponseMode::Json => self.json(response),
            ResponseMode::Html => self.page(status, response),
        }
    }
}

impl ErrorResponse {
    /// Whether the body was not UTF-8: the visitor is told in their language, and the
    /// site owner how to fix the form.
    fn is_not_utf8(&self) -> bool {
        matches!(self.error, ApiError::Body(BodyError::InvalidUtf8 { .. }))
    }

    fn json(&self, mut response: HttpResponseBuilder) -> HttpResponse {
        let errors: Vec<JsonFieldError<'_>> = match &self.error {
            ApiError::Validation(errors) => errors
                .iter()
                .map(|e| JsonFieldError {
                    field: e.field.as_str(),
                    code: e.problem.code(),
                    message: match self.language {
                        Some(language) => Texts::new(language).field_problem(e.problem),
                        None => e.problem.message(),
                    },
                })
                .collect(),
            _ => Vec::new(),
        };
        let message = match (&self.error, self.language) {
            _ if self.is_not_utf8() => {
                pages::not_utf8_message(Texts::new(self.language.unwrap_or(REFERENCE_LANGUAGE)))
            }
            (ApiError::Validation(_), Some(language)) => {
                Texts::new(language).get("summary_title").to_owned()
            }
            _ => self.error.message(),
        };
        response.json(JsonError {
            error: self.error.code(),
            message,
            errors,
        })
    }

    fn page(&self, status: StatusCode, mut response: HttpResponseBuilder) -> HttpResponse {
        // A response built without its request (`new`) still gets a whole page: the
        // default layout, in English.
        let fallback;
        let (layout, negotiated) = match &self.page {
            Some(page) => (&*page.layout, page.language),
            None => {
                fallback = Layout::from_settings(&FormSettings::default(), &[]);
                (&fallback, REFERENCE_LANGUAGE)
            }
        };
        let language = self.language.unwrap_or(negotiated);
        let texts = Texts::new(language);
        let page = if self.is_not_utf8() {
            pages::not_utf8_page(layout, texts)
        } else if let ApiError::Visitor(failure) = &self.error {
            // In the sign-up's language when the link named one, else as negotiated.
            visitor_pages::failure_page(layout, language, *failure)
        } else if let ApiError::Link(failure) = &self.error {
            // In the section's language when the link named it, else as negotiated;
            // a language the follow-up pages lack reads English throughout.
            let words = FollowupTexts::new(language);
            let (heading, text) = failure.page_keys();
            let problems: Vec<(String, String)> = match failure {
                LinkFailure::BadState => {
                    vec![("state".to_owned(), words.get("error_bad_state").to_owned())]
                }
                _ => Vec::new(),
            };
            let language = words.language();
            return layout.answer(
                &mut response,
                language,
                pages::message_page(
                    layout,
                    language,
                    words.get(heading),
                    words.get(text),
                    &problems,
                ),
            );
        } else {
            let problems: Vec<(String, String)> = match &self.error {
                ApiError::Validation(errors) => errors
                    .iter()
                    .map(|e| (e.field.as_str().to_owned(), texts.field_problem(e.problem)))
                    .collect(),
                _ => Vec::new(),
            };
            pages::error_page(layout, language, status, self.error.page_key(), &problems)
        };
        layout.answer(&mut response, language, page)
    }
}

#[cfg(test)]
mod tests {
    use actix_web::body::MessageBody;

    use super::*;
    use crate::domain::{DuplicateField, FieldName, FieldProblem};

    fn every_kind() -> Vec<ApiError> {
        let mut invalid = ValidationErrors::default();
        invalid.push(FieldName::standard("email"), FieldProblem::InvalidEmail);
        vec![
            BodyError::TooLarge { limit: 1 }.into(),
            BodyError::UnsupportedMediaType("text/plain").into(),
            BodyError::FilePart.into(),
            BodyError::Malformed("x".into()).into(),
            BodyError::InvalidUtf8 {
                page_language: None,
            }
            .into(),
            BodyError::Misencoded {
                charset: "Shift_JIS",
            }
            .into(),
            BodyError::Duplicate(DuplicateField("name".into())).into(),
            invalid.into(),
            WriteFailure::Busy.into(),
            ApiError::NotFound,
            ApiError::RateLimited {
                retry_after: std::time::Duration::from_secs(1),
            },
            ApiError::TokenUnavailable,
            LinkFailure::Unknown.into(),
            LinkFailure::Expired.into(),
            LinkFailure::Gone.into(),
            LinkFailure::Forbidden.into(),
            LinkFailure::BadState.into(),
            VisitorFailure::Unknown.into(),
            VisitorFailure::ConfirmExpired.into(),
            VisitorFailure::Expired.into(),
            VisitorFailure::Gone.into(),
            VisitorFailure::Forbidden.into(),
        ]
    }

    /// Even a response built without its request is a whole page with the policy.
    #[test]
    fn every_error_page_is_a_translated_page_of_the_layout_with_its_policy() {
        let policy = Layout::from_settings(&FormSettings::default(), &[])
            .policy()
            .to_owned();
        for error in every_kind() {
            let key = error.page_key();
            for tag in crate::i18n::shipped() {
                assert_ne!(Texts::new(tag).get(key), key, "{tag} words {key}");
            }
            let name = format!("{error:?}");
            let response = ErrorResponse::new(ResponseMode::Html, error).error_response();
            let headers = response.headers();
            let header = |name| headers.get(name).and_then(|value| value.to_str().ok());
            assert_eq!(
                header(header::CONTENT_SECURITY_POLICY),
                Some(policy.as_str()),
                "{name}"
            );
            assert_eq!(header(header::CONTENT_LANGUAGE), Some("en"), "{name}");
            let body = response.into_body().try_into_bytes().unwrap();
            let page = std::str::from_utf8(&body).unwrap();
            assert!(
                page.starts_with("<!doctype html>\n<html lang=\"en\" dir=\"ltr\">"),
                "{name}: {page}"
            );
        }
    }
}
