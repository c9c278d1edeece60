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
    let request_id = RequestId::random();
    let request_id = request_id.as_str();
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
    // Taken, not cloned: nothing reads it after this line.
    let outcome = response
        .response_mut()
        .extensions_mut()
        .remove::<LogOutcome>();
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
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    Ok(response)
}

/// A request id: 16 lower-case hex digits of a random `u64`, as `format!("{:016x}")`
/// writes them, but on the stack (one formatting call and one `String` less per request),
/// by the `hex` crate the form tokens use.
struct RequestId([u8; 16]);

impl RequestId {
    fn random() -> Self {
        Self::from_u64(fastrand::u64(..))
    }

    fn from_u64(value: u64) -> Self {
        let mut text = [b'0'; 16];
        // Eight bytes always fill sixteen digits exactly; the error cannot happen.
        let _ = hex::encode_to_slice(value.to_be_bytes(), &mut text);
        Self(text)
    }

    fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever written, so this never falls back.
        std::str::from_utf8(&self.0).unwrap_or("0000000000000000")
    }
}

#[cfg(test)]
mod tests {
    use super::RequestId;

    #[test]
    fn request_ids_are_written_as_format_writes_them() {
        for value in [0, 1, 0xabc, u64::MAX, 0x0123_4567_89ab_cdef, 1 << 63] {
            assert_eq!(RequestId::from_u64(value).as_str(), format!("{value:016x}"));
        }
    }
}
