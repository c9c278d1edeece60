//! One log line per request: method, route pattern, status, latency and a request id,
//! plus what the handler decided (a submission's outcome, spam reasons and country).
//! Never the path as sent, a query string, a header value or the client's address.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, web};
use tracing::Instrument;

use super::AppState;
use crate::domain::CountryCode;

/// The response header that carries the request id, so a visitor's report can be
/// matched to a log line.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// What a handler adds to its request's log line.
#[derive(Debug, Clone, Default)]
pub struct LogOutcome {
    pub outcome: &'static str,
    pub reasons: String,
    pub submission_id: String,
    /// The submission's country: an ISO 3166-1 alpha-2 code says where a sign-up came
    /// from in aggregate, never who made it.
    pub country: Option<CountryCode>,
}

pub async fn log_request(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let request_id = format!("{:016x}", fastrand::u64(..));
    let method = request.method().clone();
    let metrics = request
        .app_data::<web::Data<AppState>>()
        .map(|state| std::sync::Arc::clone(&state.metrics));
    let span = tracing::info_span!("request", request_id = %request_id);
    let mut response = next.call(request).instrument(span.clone()).await?;
    let latency = started.elapsed();
    // The pattern (`/join`), not the path as sent: a path can carry anything.
    let route = response
        .request()
        .match_pattern()
        .unwrap_or_else(|| "(unmatched)".to_owned());
    let status = response.status().as_u16();
    let outcome = response
        .response()
        .extensions()
        .get::<LogOutcome>()
        .cloned();
    let latency_ms = latency.as_secs_f64() * 1000.0;
    match outcome {
        Some(outcome) => tracing::info!(
            parent: &span, %method, route, status, latency_ms,
            outcome = outcome.outcome, reasons = outcome.reasons,
            submission_id = outcome.submission_id,
            country = outcome.country.as_ref().map(CountryCode::as_str), "request"
        ),
        None => tracing::info!(parent: &span, %method, route, status, latency_ms, "request"),
    }
    if let Some(metrics) = &metrics {
        metrics.observe_request(route, latency);
    }
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    Ok(response)
}
