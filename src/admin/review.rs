//! GET /admin/review: the sign-ups nobody was told of, held during a flood or flagged
//! as spam, within the token's sections. POST /admin/review/release and
//! /admin/review/discard: accept them after all (notified as usual) or erase them,
//! through the single writer, audited by the token's name. An id of a section the token
//! may not see is answered exactly as an unknown id.

use actix_web::http::header;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::domain::{ReviewStatus, SubmissionId, Timestamp};
use crate::store::review::{self, Outcome, Release, Reviewer};

use super::auth::authenticate;
use super::{AdminError, AdminState};

/// Sign-ups listed when the request names no `limit`, and the most it may name.
const DEFAULT_LIMIT: u32 = 200;
const MAX_LIMIT: u32 = 1000;
/// Ids one release or discard takes at most: enough for a flood's worth in a few
/// requests, few enough that one request holds the single writer only briefly.
pub const MAX_IDS: usize = 1000;

/// The list's filters. Anything else is refused, as for exports.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    section: Option<String>,
    limit: Option<String>,
}

/// One sign-up to review: enough to tell a person from a bot, no contact details.
#[derive(Debug, Serialize)]
struct Item {
    id: String,
    created_at: String,
    section: String,
    country: String,
    first_name: String,
    status: &'static str,
    reasons: Vec<String>,
}

#[derive(Debug, Serialize)]
struct ItemList {
    items: Vec<Item>,
    /// Every sign-up the filters select, listed or not, and of each status.
    total: u64,
    held: u64,
    spam: u64,
}

#[tracing::instrument(name = "admin_review_list", skip_all, fields(actor = tracing::field::Empty))]
pub(super) async fn list(
    request: HttpRequest,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, AdminError> {
    let token = authenticate(&request, &state.tokens, &state.limiter)?;
    tracing::Span::current().record("actor", token.name.as_str());
    let query = web::Query::<ListQuery>::from_query(request.query_string())
        .map_err(|error| AdminError::BadRequest(error.to_string()))?
        .into_inner();
    let statuses =
        match query.status.as_deref() {
            None => <ReviewStatus as strum::VariantArray>::VARIANTS.to_vec(),
            Some(text) => vec![text.parse::<ReviewStatus>().map_err(|_| {
                AdminError::BadField("status", "must be `held` or `spam`".to_owned())
            })?],
        };
    let limit = match query.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|limit| (1..=MAX_LIMIT).contains(limit))
            .ok_or_else(|| {
                AdminError::BadField("limit", format!("must be a whole number 1-{MAX_LIMIT}"))
            })?,
    };
    // As for exports: naming a section the token may not see is refused.
    let sections = match query.section {
        Some(section) if !token.may_see(&section) => return Err(AdminError::SectionOutOfScope),
        Some(section) => Some(vec![section]),
        None => token.sections.clone(),
    };
    let database = state.database.clone();
    let listing = web::block(move || {
        let connection = database.connect()?;
        review::flagged(&connection, &statuses, sections.as_deref(), limit)
    })
    .await
    .map_err(|_| AdminError::Write(crate::store::WriteFailure::Stopped))??;
    let total = listing.total();
    let items = listing
        .items
        .into_iter()
        .map(|item| Item {
            id: item.id.to_string(),
            created_at: item.created_at.to_string(),
            country: item.country.as_str().to_owned(),
            status: item.status.as_str(),
            section: item.section,
            first_name: item.first_name,
            reasons: item.reasons,
        })
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(ItemList {
            items,
            total,
            held: listing.held,
            spam: listing.spam,
        }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdsRequest {
    ids: Vec<String>,
}

#[derive(Debug, Serialize)]
struct IdOutcome {
    id: String,
    outcome: &'static str,
}

#[derive(Debug, Serialize)]
struct Results {
    /// Each id given, once, in the order given.
    results: Vec<IdOutcome>,
}

impl From<review::Reviewed> for Results {
    fn from(reviewed: review::Reviewed) -> Self {
        Self {
            results: reviewed
                .0
                .into_iter()
                .map(|(id, outcome)| IdOutcome {
                    id: id.to_string(),
                    outcome: outcome.as_str(),
                })
                .collect(),
        }
    }
}

/// The ids of a `{"ids": ["…"]}` body: JSON only, 1 to [`MAX_IDS`] of them, each an id.
/// Read only after authentication; never echoes the body.
fn requested_ids(request: &HttpRequest, body: &[u8]) -> Result<Vec<SubmissionId>, AdminError> {
    let json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if !json {
        return Err(AdminError::UnsupportedMediaType(
            "the body must be JSON (Content-Type: application/json): {\"ids\": [\"…\"]}",
        ));
    }
    let parsed: IdsRequest = serde_json::from_slice(body).map_err(|_| {
        AdminError::BadField(
            "ids",
            "the body must be {\"ids\": [\"…\"]}, a list of sign-up ids".to_owned(),
        )
    })?;
    if parsed.ids.is_empty() {
        return Err(AdminError::BadField(
            "ids",
            "give at least one sign-up id".to_owned(),
        ));
    }
    if parsed.ids.len() > MAX_IDS {
        return Err(AdminError::BadField(
            "ids",
            format!("at most {MAX_IDS} ids in one request"),
        ));
    }
    parsed
        .ids
        .iter()
        .enumerate()
        .map(|(index, text)| {
            SubmissionId::parse(text).ok_or_else(|| {
                AdminError::BadField("ids", format!("ids[{index}] is not a sign-up id"))
            })
        })
        .collect()
}

#[tracing::instrument(name = "admin_review_release", skip_all, fields(actor = tracing::field::Empty))]
pub(super) async fn release(
    request: HttpRequest,
    body: Bytes,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, AdminError> {
    let token = authenticate(&request, &state.tokens, &state.limiter)?;
    tracing::Span::current().record("actor", token.name.as_str());
    let ids = requested_ids(&request, &body)?;
    let token = token.clone();
    let routing = std::sync::Arc::clone(&state.routing);
    let duplicate_window = state.duplicate_window;
    let message_domain = state.message_domain.clone();
    // A sealed sign-up's confirmation mail can only be built by the request that
    // stored it (the server cannot read the address since): none goes out at a release.
    let addresses = state
        .visitor_addresses
        .clone()
        .filter(|_| !state.routing.is_sealed());
    let reviewed = state
        .writer
        .run(move |connection| {
            let address_hash = addresses
                .as_ref()
                .map(|hasher| move |key: &str| hasher.hash(key));
            review::release(
                connection,
                &ids,
                &Release {
                    now: Timestamp::now(),
                    duplicate_window,
                    message_domain: &message_domain,
                    confirms: &|section| routing.confirms(section),
                    confirming: address_hash
                        .as_ref()
                        .map(|hash| review::Confirming { address_hash: hash }),
                },
                &Reviewer {
                    actor: &token.name,
                    may_see: &|section| token.may_see(section),
                },
            )
        })
        .await?;
    let released = reviewed.with(Outcome::Released).len();
    let asked_to_confirm = reviewed.with(Outcome::ConfirmationSent).len();
    if released > 0 || asked_to_confirm > 0 {
        // The mails are queued: the worker need not wait for its next round.
        state.delivery.notify_one();
    }
    tracing::info!(
        released,
        asked_to_confirm,
        duplicates = reviewed.with(Outcome::Duplicate).len(),
        "sign-ups released"
    );
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(Results::from(reviewed)))
}

#[tracing::instrument(name = "admin_review_discard", skip_all, fields(actor = tracing::field::Empty))]
pub(super) async fn discard(
    request: HttpRequest,
    body: Bytes,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, AdminError> {
    let token = authenticate(&request, &state.tokens, &state.limiter)?;
    tracing::Span::current().record("actor", token.name.as_str());
    let ids = requested_ids(&request, &body)?;
    let token = token.clone();
    let reviewed = state
        .writer
        .erase(move |erasing| {
            review::discard(
                erasing,
                &ids,
                &Reviewer {
                    actor: &token.name,
                    may_see: &|section| token.may_see(section),
                },
            )
        })
        .await?;
    tracing::info!(
        discarded = reviewed.with(Outcome::Discarded).len(),
        "sign-ups discarded"
    );
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(Results::from(reviewed)))
}
