//! GET /metrics: the Prometheus exposition. Counts only, never personal data: on a
//! loopback listener it needs no token; on any other address a bearer token (an admin
//! token or the metrics-only one), unless `admin.public_metrics` says otherwise.

use actix_web::{HttpRequest, HttpResponse, web};

use super::{AdminError, AdminState};
use crate::domain::Timestamp;
use crate::metrics::FollowupFigures;
use crate::store::{followup, outbox};

/// The content type of the OpenMetrics text format that `prometheus-client` writes.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub async fn metrics(
    request: HttpRequest,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, AdminError> {
    super::auth::authorize_metrics(
        &request,
        &state.metrics_access,
        &state.tokens,
        &state.limiter,
    )?;
    // The outbox depth and the follow-up figures are read now, so a scrape sees the
    // current backlog and every mark, whichever process made it (see `crate::metrics`).
    let database = state.database.clone();
    let sections = state.sections.clone();
    let overdue_before = state
        .followup_enabled
        .then(|| state.overdue_before(Timestamp::now()));
    let (counts, figures) = web::block(move || {
        let connection = database.connect()?;
        let counts = outbox::counts(&connection)?;
        let overdue = match overdue_before {
            Some(before) => Some(
                followup::waiting_counts(&connection, before)?
                    .into_iter()
                    .map(|waiting| (waiting.section, waiting.count))
                    .collect(),
            ),
            None => None,
        };
        let first_contacts = followup::first_contacts(&connection)?
            .into_iter()
            .filter_map(|row| {
                let wait = row.contacted_at?.since(row.waiting_since);
                Some((row.section, wait))
            })
            .collect();
        let figures = FollowupFigures {
            sections,
            open: followup::open_counts(&connection)?,
            overdue,
            first_contacts,
        };
        Ok::<_, crate::store::StoreError>((counts, figures))
    })
    .await
    .map_err(|_| AdminError::MetricsUnavailable)??;
    state.metrics.set_outbox_depth(&counts);
    state.metrics.set_followup(&figures);
    let text = state
        .metrics
        .render()
        .map_err(|_| AdminError::MetricsUnavailable)?;
    Ok(HttpResponse::Ok()
        .content_type(OPENMETRICS)
        .insert_header(("cache-control", "no-store"))
        .body(text))
}
