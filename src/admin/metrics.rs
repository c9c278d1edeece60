//! GET /metrics: the Prometheus exposition. Counts only, never personal data, so it
//! needs no token; it lives on the admin listener, which stays private.

use actix_web::{HttpResponse, web};

use super::{AdminError, AdminState};
use crate::store::outbox;

/// The content type of the OpenMetrics text format that `prometheus-client` writes.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub async fn metrics(state: web::Data<AdminState>) -> Result<HttpResponse, AdminError> {
    // The outbox depth is read now, so a scrape sees the current backlog.
    let database = state.database.clone();
    let counts = web::block(move || {
        let connection = database.connect()?;
        outbox::counts(&connection)
    })
    .await
    .map_err(|_| AdminError::MetricsUnavailable)??;
    state.metrics.set_outbox_depth(&counts);
    let text = state
        .metrics
        .render()
        .map_err(|_| AdminError::MetricsUnavailable)?;
    Ok(HttpResponse::Ok()
        .content_type(OPENMETRICS)
        .insert_header(("cache-control", "no-store"))
        .body(text))
}
