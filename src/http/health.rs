//! Probes for orchestrators and load balancers.

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::AppState;

/// GET /healthz: the process is alive and serving.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// GET /readyz: the database takes writes now.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    match state.writer.probe().await {
        Ok(()) => HttpResponse::Ok().json(json!({ "status": "ready" })),
        Err(failure) => HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "5"))
            .json(json!({ "status": "unavailable", "reason": failure.to_string() })),
    }
}
