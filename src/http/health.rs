//! Probes for orchestrators and load balancers.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde_json::json;

use super::AppState;
use super::error::RETRY_AFTER_SECONDS;

/// GET /healthz: the process is alive and serving.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// GET /readyz: the database takes writes now.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    match state.writer.probe().await {
        Ok(()) => HttpResponse::Ok().json(json!({ "status": "ready" })),
        Err(failure) => HttpResponse::ServiceUnavailable()
            .insert_header((header::RETRY_AFTER, RETRY_AFTER_SECONDS))
            .json(json!({ "status": "unavailable", "reason": failure.to_string() })),
    }
}
