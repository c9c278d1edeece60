//! Every error a client can see, mapped to its status and body in one place, in JSON or
//! HTML as the client asked.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, Accept, Header};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;

use crate::domain::ValidationErrors;
use crate::i18n::{REFERENCE_LANGUAGE, Texts};
use crate::store::WriteFailure;

use super::body::BodyError;
use super::pages;

/// Seconds a client should wait before retrying when the store cannot commit.
const RETRY_AFTER_SECONDS: u32 = 5;

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
        }
    }

    /// The sentence shown to the client; store details stay in the log.
    fn message(&self) -> String {
        match self {
            Self::Store(_) => {
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
}

impl ErrorResponse {
    pub fn new(mode: ResponseMode, error: impl Into<ApiError>) -> Self {
        Self {
            mode,
            error: error.into(),
            language: None,
        }
    }

    /// Words validation messages, and the answer to a body that is not UTF-8, in
    /// `language` (the page the visitor filled in, or the browser's language).
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
        let field_errors: Vec<JsonFieldError<'_>> = match &self.error {
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
        // A form on a page that is not UTF-8: the visitor is told in their language,
        // and the site owner how to fix the form.
        let not_utf8 = matches!(self.error, ApiError::Body(BodyError::InvalidUtf8 { .. }))
            .then(|| Texts::new(self.language.unwrap_or(REFERENCE_LANGUAGE)));
        match (self.mode, not_utf8) {
            (ResponseMode::Json, _) => response.json(JsonError {
                error: self.error.code(),
                message: match (&self.error, self.language, not_utf8) {
                    (_, _, Some(texts)) => pages::not_utf8_message(texts),
                    (ApiError::Validation(_), Some(language), _) => {
                        Texts::new(language).get("summary_title").to_owned()
                    }
                    _ => self.error.message(),
                },
                errors: field_errors,
            }),
            (ResponseMode::Html, Some(texts)) => response
                .content_type(mime::TEXT_HTML_UTF_8)
                .body(pages::not_utf8_page(texts)),
            (ResponseMode::Html, None) => {
                let problems: Vec<(String, String)> = field_errors
                    .into_iter()
                    .map(|e| (e.field.to_owned(), e.message))
                    .collect();
                response
                    .content_type(mime::TEXT_HTML_UTF_8)
                    .body(pages::error_page(status, &self.error.message(), &problems))
            }
        }
    }
}
