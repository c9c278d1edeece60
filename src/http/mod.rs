//! The public HTTP interface: routes, body decoding, and the one error type.

pub mod body;
pub mod error;
mod health;
pub mod join;
pub mod pages;
pub mod request_log;

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use tokio::sync::Notify;

use crate::domain::FormSchema;
use crate::metrics::Metrics;
use crate::routing::Routing;
use crate::spam::{ClientHasher, ClientIp, RateLimiter, SpamChecks, TrustedProxies};
use crate::store::{AdmissionRules, Writer};

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
    pub trusted_proxies: TrustedProxies,
    /// POST /join and GET /join/token are limited separately: a visitor needs one of
    /// each per sign-up.
    pub join_limiter: Arc<RateLimiter>,
    pub token_limiter: Arc<RateLimiter>,
    pub spam: SpamChecks,
    pub client_hasher: ClientHasher,
    pub admission_rules: AdmissionRules,
    pub metrics: Arc<Metrics>,
}

impl AppState {
    /// The client, as far as the trusted proxies let us tell; a request without a
    /// peer address (not over TCP) counts as one shared client.
    pub fn client_of(&self, request: &HttpRequest) -> ClientIp {
        ClientIp::of(request, &self.trusted_proxies)
            .unwrap_or_else(|| ClientIp::from_addr(std::net::Ipv4Addr::UNSPECIFIED.into()))
    }
}

/// The public routes.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/join", web::post().to(join::join))
        .route("/join/token", web::get().to(join::token))
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
