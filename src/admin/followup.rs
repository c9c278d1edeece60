//! GET /admin/followup: the sign-ups waiting for a first contact. POST
//! /admin/followup/{id}: marks one (contacted, joined, declined, unreachable) through
//! the single writer, by the token's name, with its audit row.

use actix_web::http::header;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::domain::{FollowupState, SubmissionId, Timestamp};
use crate::store::followup::{self, Marked};

use super::auth::{AdminToken, authenticate, url_pairs};
use super::{AdminError, AdminState};

/// The list's filters. Anything else is refused, as for exports.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    section: Option<String>,
    overdue: Option<String>,
}

/// One waiting sign-up: enough to recognise the person in the organisers' own records,
/// no contact details.
#[derive(Debug, Serialize)]
struct Waiting {
    id: String,
    section: String,
    country: String,
    first_name: String,
    signed_up_at: String,
    age_seconds: u64,
    state: &'static str,
    /// Waiting longer than `followup.remind_after`.
    overdue: bool,
}

#[derive(Debug, Serialize)]
struct WaitingList {
    followup: Vec<Waiting>,
}

#[tracing::instrument(name = "admin_followup_list", skip_all, fields(actor = tracing::field::Empty))]
pub(super) async fn list(
    request: HttpRequest,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, AdminError> {
    let token = authenticate(&request, &state.tokens, &state.limiter)?;
    tracing::Span::current().record("actor", token.name.as_str());
    let query = web::Query::<ListQuery>::from_query(request.query_string())
        .map_err(|error| AdminError::BadRequest(error.to_string()))?
        .into_inner();
    let sections = scope(token, query.section.as_deref())?;
    let now = Timestamp::now();
    let overdue_before = state.overdue_before(now);
    let only_overdue = super::flag("overdue", query.overdue.as_deref())?.then_some(overdue_before);
    let database = state.database.clone();
    let entries = web::block(move || {
        let connection = database.connect()?;
        followup::waiting(&connection, sections.as_deref(), only_overdue, None)
    })
    .await
    .map_err(|_| AdminError::Write(crate::store::WriteFailure::Stopped))??;
    let followup = entries
        .into_iter()
        .map(|entry| Waiting {
            id: entry.id.to_string(),
            first_name: entry.first_name(),
            country: entry.country.as_str().to_owned(),
            signed_up_at: entry.created_at.to_string(),
            age_seconds: now.since(entry.waiting_since).as_secs(),
            state: entry.state.as_str(),
            overdue: entry.waiting_since < overdue_before,
            section: entry.section,
        })
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(WaitingList { followup }))
}

/// The sections a request may see: the one it names, if the token may see it (else
/// 403, as for exports); else the token's own (`None`: every section).
fn scope(token: &AdminToken, section: Option<&str>) -> Result<Option<Vec<String>>, AdminError> {
    match section {
        Some(section) if !token.may_see(section) => Err(AdminError::SectionOutOfScope),
        Some(section) => Ok(Some(vec![section.to_owned()])),
        None => Ok(token.sections.clone()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MarkRequest {
    state: String,
}

#[derive(Debug, Serialize)]
struct MarkAnswer {
    id: String,
    state: &'static str,
    /// Whether this request changed the state (`false`: it already had it).
    changed: bool,
    /// The first time it left `new`; kept whatever comes after.
    contacted_at: Option<String>,
}

#[tracing::instrument(name = "admin_followup_mark", skip_all, fields(actor = tracing::field::Empty, id = tracing::field::Empty))]
pub(super) async fn mark(
    request: HttpRequest,
    path: web::Path<String>,
    body: Bytes,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, AdminError> {
    let token = authenticate(&request, &state.tokens, &state.limiter)?;
    let span = tracing::Span::current();
    span.record("actor", token.name.as_str());
    // Text that is no id names no sign-up: the same 404 as an unknown id.
    let id = SubmissionId::parse(&path.into_inner()).ok_or(AdminError::NotFound)?;
    span.record("id", tracing::field::display(id));
    let to = FollowupState::parse_mark(&requested_state(&request, &body)?)
        .map_err(|bad| AdminError::BadField("state", bad.to_string()))?;
    let token = token.clone();
    let marked = state
        .writer
        .run(move |connection| {
            // Outside the token's sections is answered as if it did not exist.
            let visible =
                followup::entry(connection, id)?.is_some_and(|entry| token.may_see(&entry.section));
            if !visible {
                return Ok(None);
            }
            let Some(marked) = followup::mark(connection, id, to, &token.name, Timestamp::now())?
            else {
                return Ok(None);
            };
            Ok(followup::entry(connection, id)?.map(|entry| (marked, entry)))
        })
        .await?;
    let (marked, entry) = marked.ok_or(AdminError::NotFound)?;
    let changed = matches!(marked, Marked::Changed { .. });
    tracing::info!(state = %entry.state, changed, "follow-up marked");
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(MarkAnswer {
            id: id.to_string(),
            state: entry.state.as_str(),
            changed,
            contacted_at: entry.contacted_at.map(|at| at.to_string()),
        }))
}

/// The `state` of a JSON body (`{"state": "contacted"}`) or of a form
/// (`state=contacted`). Read only after authentication; never echoes the body.
fn requested_state(request: &HttpRequest, body: &[u8]) -> Result<String, AdminError> {
    let form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    let expected = || {
        AdminError::BadField(
            "state",
            "the body must be {\"state\": \"contacted\"} (JSON) or state=contacted (a form)"
                .to_owned(),
        )
    };
    if form {
        let text = std::str::from_utf8(body).map_err(|_| expected())?;
        let mut pairs = url_pairs(text);
        match (pairs.next(), pairs.next()) {
            (Some((key, value)), None) if key == "state" => Ok(value),
            _ => Err(expected()),
        }
    } else {
        serde_json::from_slice::<MarkRequest>(body)
            .map(|parsed| parsed.state)
            .map_err(|_| expected())
    }
}
