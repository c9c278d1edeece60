//! Every admin error, mapped to its status and JSON body in one place.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::export::FilterError;
use crate::http::error::RETRY_AFTER_SECONDS;
use crate::store::{StoreError, WriteFailure};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("a valid `Authorization: Bearer` token is required")]
    Unauthorized,
    #[error("tokens are accepted only in the Authorization header, never in the URL")]
    TokenInQuery,
    #[error("too many failed attempts")]
    TooManyAttempts(Duration),
    #[error("this token may not see that section")]
    SectionOutOfScope,
    #[error("this action needs a token that is not limited to sections")]
    NeedsFullAccess,
    #[error("{0}")]
    BadFilter(#[from] FilterError),
    #[error("{0}")]
    BadRequest(String),
    /// A field of the body that cannot be taken: its name and why.
    #[error("{0}: {1}")]
    BadField(&'static str, String),
    /// A body in a format the route does not take: what it takes.
    #[error("{0}")]
    UnsupportedMediaType(&'static str),
    #[error("the audit trail cannot be written, so nothing was done")]
    AuditUnavailable(#[source] WriteFailure),
    #[error("the database cannot do this now")]
    Write(#[from] WriteFailure),
    #[error("the database cannot be read")]
    Read(#[from] StoreError),
    #[error("the metrics could not be gathered")]
    MetricsUnavailable,
    #[error("not found")]
    NotFound,
}

impl AdminError {
    fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized | Self::TokenInQuery => "unauthorized",
            Self::TooManyAttempts(_) => "too_many_attempts",
            Self::SectionOutOfScope | Self::NeedsFullAccess => "forbidden",
            Self::BadFilter(_) | Self::BadRequest(_) | Self::BadField(..) => "bad_request",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::AuditUnavailable(_)
            | Self::Write(_)
            | Self::Read(_)
            | Self::MetricsUnavailable => "temporarily_unavailable",
            Self::NotFound => "not_found",
        }
    }
}

impl ResponseError for AdminError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Unauthorized | Self::TokenInQuery => StatusCode::UNAUTHORIZED,
            Self::TooManyAttempts(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::SectionOutOfScope | Self::NeedsFullAccess => StatusCode::FORBIDDEN,
            Self::BadFilter(_) | Self::BadRequest(_) | Self::BadField(..) => {
                StatusCode::BAD_REQUEST
            }
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::AuditUnavailable(_)
            | Self::Write(_)
            | Self::Read(_)
            | Self::MetricsUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::NotFound => StatusCode::NOT_FOUND,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), error = %self,
                cause = ?std::error::Error::source(self), "admin request failed");
        }
        let mut response = HttpResponse::build(status);
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        match self {
            Self::Unauthorized | Self::TokenInQuery => {
                response
                    .insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"joinform admin\""));
            }
            Self::TooManyAttempts(wait) => {
                response.insert_header((header::RETRY_AFTER, wait.as_secs().max(1)));
            }
            _ if status == StatusCode::SERVICE_UNAVAILABLE => {
                response.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECONDS));
            }
            _ => {}
        }
        let mut body = json!({ "error": self.code(), "message": self.to_string() });
        if let Self::BadField(field, _) = self {
            body["field"] = (*field).into();
        }
        response.json(body)
    }
}
