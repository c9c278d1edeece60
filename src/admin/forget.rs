//! POST /admin/forget: erasure on request, for tokens not limited to sections.

use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::erasure::{self, address_hash, address_key};

use super::auth::authenticate;
use super::{AdminError, AdminState};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ForgetRequest {
    email: String,
}

#[tracing::instrument(name = "admin_forget", skip_all, fields(actor = tracing::field::Empty))]
pub(super) async fn forget(
    request: HttpRequest,
    body: Bytes,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, AdminError> {
    let token = authenticate(&request, &state.tokens, &state.limiter)?;
    tracing::Span::current().record("actor", token.name.as_str());
    // A national organiser may not erase another section's members, and erasure
    // spans every section, so only an unscoped token may ask for it.
    if token.sections.is_some() {
        return Err(AdminError::NeedsFullAccess);
    }
    // The body is read as bytes and parsed only now, so an unauthenticated client
    // learns nothing from how its body is judged. Parse errors never echo the value.
    let parsed: ForgetRequest = serde_json::from_slice(&body).map_err(|_| {
        AdminError::BadRequest("the body must be JSON: {\"email\": \"…\"}".to_owned())
    })?;
    let key = address_key(&parsed.email)
        .ok_or_else(|| AdminError::BadRequest("`email` is not a valid address".to_owned()))?;
    let hash = address_hash(&state.secret, &key);
    let key_check = state.secret.audit_key_check().to_owned();
    let actor = token.name.clone();
    let report = state
        .writer
        .erase(move |erasing| erasure::forget(erasing, &key, &hash, &key_check, &actor))
        .await?;
    tracing::info!(
        submissions = report.submissions,
        unsent = report.unsent_notifications,
        "address erased"
    );
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(report))
}
