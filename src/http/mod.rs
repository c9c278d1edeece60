//! The public HTTP interface: routes, body decoding, and the one error type.

pub mod body;
pub mod error;
mod health;
pub mod join;
pub mod pages;

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use tokio::sync::Notify;

use crate::domain::FormSchema;
use crate::routing::Routing;
use crate::store::Writer;

use error::{ApiError, ErrorResponse, ResponseMode};

/// What every handler may use; built once at start-up.
pub struct AppState {
    pub writer: Writer,
    pub schema: FormSchema,
    pub max_body_bytes: usize,
    pub success_url: String,
    pub routing: Arc<Routing>,
    /// The domain of `mail.from`, for Message-IDs.
    pub message_domain: String,
    /// Wakes the delivery worker when a notification is queued.
    pub delivery: Arc<Notify>,
}

/// The public routes.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/join", web::post().to(join::join))
        .route("/join/thanks", web::get().to(thanks))
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .default_service(web::to(not_found));
}

async fn thanks() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(mime::TEXT_HTML_UTF_8)
        .body(pages::thanks_page())
}

async fn not_found(request: HttpRequest) -> Result<HttpResponse, ErrorResponse> {
    Err(ErrorResponse::new(
        ResponseMode::of(&request),
        ApiError::NotFound,
    ))
}
