//! POST /join: where a submission enters.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use crate::domain::{ConfirmationMode, HoldReason, LanguageTag, NewSubmission, SpamReason};
use crate::metrics::LimitedEndpoint;
use crate::store::submissions::StoredSubmission;
use crate::store::{Admission, SubmissionRecord};

use super::AppState;
use super::body::{BodyError, discard_body, read_form};
use super::error::{ApiError, ErrorResponse, ResponseMode};
use super::form_page;
use super::negotiate;
use super::request_log::LogOutcome;

#[derive(Serialize)]
struct Received<'a> {
    id: &'a str,
    status: &'static str,
    /// `true` when the section asks its visitors to confirm through a mail (double
    /// opt-in); left out otherwise.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    confirm_by_mail: bool,
}

/// Limit → decode → parse → judge → route → admit (with its notification) → answer.
/// The answer is sent only once the decision is committed to disk; mail is the
/// worker's business. Spam, duplicates, held and over-limit posts get the very answer
/// a sign-up gets, so probing teaches nothing.
///
/// In a flood (issue 17) the door stays open: only a single address over its own
/// limit gets 429. Past `rate_limit.global_per_second`, or while sign-ups come in at
/// or over `spam.pow_baseline_per_minute`, a sign-up without a verified proof of work
/// is stored `held` for review instead of notified.
#[tracing::instrument(name = "join", skip_all, fields(id = tracing::field::Empty, country = tracing::field::Empty, section = tracing::field::Empty))]
pub async fn join(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ErrorResponse> {
    let mode = ResponseMode::of(&request);
    let fail = |error: ApiError| ErrorResponse::of(&request, error);
    let client = state.client_of(&request);
    if let Err(limited) = state.join_limiter.check_client(client) {
        state
            .metrics
            .rate_limited(LimitedEndpoint::Join, limited.scope);
        // Reading the (small) body keeps the connection usable for the next request.
        discard_body(payload, state.max_body_bytes).await;
        return Err(fail(ApiError::RateLimited {
            retry_after: limited.retry_after,
        }));
    }
    let raw = read_form(&request, payload, &state.schema, state.max_body_bytes)
        .await
        .map_err(|error| match error {
            // Most likely a form on a page in a legacy encoding: the visitor reads why
            // in the page's language, else the browser's.
            BodyError::InvalidUtf8 { page_language } => {
                let language = page_language.or_else(|| match mode {
                    ResponseMode::Html => Some(state.page.language_of(&request)),
                    ResponseMode::Json => preferred_language(&request)
                        .and_then(|tag| crate::i18n::resolve(tag.as_str())),
                });
                let error = fail(BodyError::InvalidUtf8 { page_language }.into());
                match language {
                    Some(language) => error.in_language(language),
                    None => error,
                }
            }
            other => fail(other.into()),
        })?;
    let language = state.page.language_of_post(&request, &raw);
    let submission = match NewSubmission::parse(&raw, &state.schema, preferred_language(&request)) {
        Ok(submission) => submission,
        // A plain HTML form gets itself back, filled in and marked; a script gets the
        // problems in the page's language.
        Err(errors) if mode == ResponseMode::Html => {
            let language = language.unwrap_or(state.page.default_language());
            return Ok(form_page::invalid(&state, language, &raw, &errors));
        }
        Err(errors) => {
            let error = fail(errors.into());
            return Err(match language {
                Some(language) => error.in_language(language),
                None => error,
            });
        }
    };
    let judgement = state.spam.judge(&raw, &submission);
    // The ceiling guards the organisers' inboxes, not the door: past it the sign-up is
    // taken, and held unless it proves itself. Counted only for posts that parsed, so
    // that a flood of invalid ones cannot spend it.
    let over_global_limit = state.join_limiter.check_global().is_err();
    // Counted as it is decided, not once written: however many posts are in flight,
    // no more than the baseline a minute get through unproved.
    let over_baseline = state.flood.take_in(std::time::Instant::now());
    let section = state.routing.route(submission.country);
    let span = tracing::Span::current();
    let record_country = submission.country;
    span.record("country", submission.country.as_str());
    span.record("section", section.name.as_str());
    let mut record = SubmissionRecord::new(submission, &section.name, &state.message_domain);
    record.spam_reasons = judgement.reasons;
    record.token = judgement.token;
    record.proof = judgement.proof;
    record.hold = if over_global_limit {
        Some(HoldReason::OverGlobalLimit)
    } else if over_baseline {
        Some(HoldReason::OverBaseline)
    } else {
        None
    };
    record.client_hash = state.client_hasher.hash(client);
    record.rules = state.admission_rules;
    record.consent_record = state.page.consent_record(&raw, &record.submission);
    record.confirmation = section.confirmation;
    // Said for every outcome (spam, duplicates and over-limit posts too): it depends
    // on the country alone, so it tells a prober nothing about the verdict.
    let confirm_by_mail = section.confirmation == ConfirmationMode::DoubleOptIn;
    if section.confirmation != ConfirmationMode::Off {
        record.visitor_address_hash = state
            .visitor_addresses
            .as_ref()
            .map(|hasher| hasher.hash(&record.submission.email.key()));
        // The page's language, else the one the submission names, else the section's:
        // always a shipped one, so the mail and the pages its links open agree.
        record.visitor_language = form_page::posted_language(&raw)
            .or_else(|| {
                let given = record.submission.language.as_ref()?;
                crate::i18n::resolve(given.as_str())
            })
            .or_else(|| crate::i18n::resolve(section.language.as_str()))
            .or(Some(state.page.default_language()))
            .map(str::to_owned);
    }
    // Sealed storage: the personal fields and the notification are encrypted here, on
    // the request's thread, never on the single writer's; the writer stores only
    // ciphertext and the address's keyed hash. A failure stores nothing.
    // The clear view is kept for the visitor's mail, built below once the writer says
    // it was queued, and never written down.
    let mut clear_view = None;
    if let Some(sealer) = &state.sealer {
        let clear = StoredSubmission::from_record(&record);
        let sealed = sealer
            .seal(&clear, &record.message_id)
            .map_err(|error| fail(error.into()))?;
        record.sealed = Some(sealed);
        clear_view = Some(clear);
    }
    let visitor_mail_id = record.visitor_mail_id;
    let id = record.id;
    let form_token = record.token.is_some();
    span.record("id", tracing::field::display(id));
    let admitted = state
        .writer
        .admit(record)
        .await
        .map_err(|e| fail(e.into()))?;
    let admission = admitted.admission;
    state.metrics.admitted(&admission);
    if let Some(verdict) = admitted.proof {
        state.metrics.proof_of_work(verdict);
    }
    if let (Some(mails), Some(clear)) = (&state.sealed_visitor_mails, clear_view) {
        hold_sealed_visitor_mail(mails, &admission, clear, visitor_mail_id);
    }
    // A held sign-up may be due an overflow mail to its section.
    if matches!(
        admission,
        Admission::Accepted { .. } | Admission::Unconfirmed { .. } | Admission::Held { .. }
    ) {
        state.delivery.notify_one();
    }
    // Why, as stored: spam's reasons, or the hold's.
    let reasons = match &admission {
        Admission::Spam { reasons, .. } => reason_codes(reasons),
        Admission::Held { reason } => reason.codes(admitted.proof, form_token).join(","),
        _ => String::new(),
    };
    // Written once: the answer and the log line carry the same text.
    let submission_id = id.to_string();
    let mut response = match mode {
        ResponseMode::Json => HttpResponse::Created().json(Received {
            id: &submission_id,
            status: "received",
            confirm_by_mail,
        }),
        ResponseMode::Html => {
            let posted = form_page::posted_language(&raw);
            HttpResponse::SeeOther()
                .insert_header((
                    header::LOCATION,
                    state.page.success_location(posted, confirm_by_mail),
                ))
                .finish()
        }
    };
    // The verdict goes in the request's one log line, not in a line of its own.
    response.extensions_mut().insert(LogOutcome {
        outcome: admission.code(),
        reasons,
        submission_id,
        country: Some(record_country),
    });
    Ok(response)
}

/// Sealed storage: builds the mail to the visitor that `admission` queued (a notice,
/// or double opt-in's confirmation) from `clear`, the sign-up as the request has it,
/// and holds it in memory under its outbox row `row` until the worker sends it. The
/// server cannot read the name or address again once the sign-up is committed.
fn hold_sealed_visitor_mail(
    mails: &crate::visitor::SealedVisitorMails,
    admission: &Admission,
    mut clear: StoredSubmission,
    row: crate::domain::SubmissionId,
) {
    use crate::domain::{MailKind, SubmissionStatus};
    let (kind, status) = match *admission {
        Admission::Accepted {
            visitor_mail: true,
            returning,
        } => {
            clear.is_returning = returning;
            (MailKind::Notice, SubmissionStatus::Accepted)
        }
        Admission::Unconfirmed { visitor_mail: true } => {
            (MailKind::Confirmation, SubmissionStatus::Unconfirmed)
        }
        _ => return,
    };
    clear.status = status;
    let now = crate::domain::Timestamp::now();
    // The row is queued already: a mail that cannot be built or held fails there, as
    // one lost ("kept only in memory"), and the visitor can sign up again.
    match mails.build(row, kind, clear, now) {
        Ok(Some(message)) => {
            if let Err(full) = mails.hold(row, message) {
                tracing::warn!(%row, error = %full, "the visitor's mail is not held: it will fail");
            }
        }
        Ok(None) => {}
        Err(error) => {
            tracing::error!(%row, %error, "the visitor's mail cannot be built: it will fail");
        }
    }
}

#[derive(Serialize)]
struct TokenIssued {
    token: String,
    /// The form field to send it in.
    field: &'static str,
    /// A post sooner than this after issue is refused as spam.
    usable_after_seconds: u64,
    expires_in_seconds: u64,
}

/// GET /join/token: a fresh form token. Rate limited like posts, since each one is a
/// ticket to post.
pub async fn token(
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ErrorResponse> {
    // A HEAD gets no token (the body is never sent), so it does not use up the quota.
    if !super::is_head(&request) {
        super::within_limit(
            &request,
            &state,
            &state.token_limiter,
            LimitedEndpoint::Token,
        )
        .map_err(ErrorResponse::as_json)?;
    }
    let issued = state
        .spam
        .tokens
        .issue(std::time::SystemTime::now())
        .map_err(|error| {
            tracing::error!(%error, "cannot issue a form token");
            ErrorResponse::of(&request, ApiError::TokenUnavailable).as_json()
        })?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(TokenIssued {
            usable_after_seconds: issued.usable_after_seconds(),
            token: issued.token,
            field: crate::spam::TOKEN_FIELD,
            expires_in_seconds: issued.expires_in.as_secs(),
        }))
}

/// GET /join/challenge: a proof-of-work challenge in ALTCHA's format, for the form
/// page's script or an ALTCHA widget's `challengeurl`, as hard as the flood gauge
/// says now. Rate limited per client like GET /join/token, with a quota of its own
/// and no global ceiling; a HEAD uses none of it.
pub async fn challenge(
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ErrorResponse> {
    if !super::is_head(&request) {
        super::within_limit(
            &request,
            &state,
            &state.challenge_limiter,
            LimitedEndpoint::Challenge,
        )
        .map_err(ErrorResponse::as_json)?;
    }
    let difficulty = state.flood.difficulty(std::time::Instant::now());
    let challenge = state
        .spam
        .proofs
        .issue_at(std::time::SystemTime::now(), difficulty)
        .map_err(|error| {
            tracing::error!(%error, "cannot issue a proof-of-work challenge");
            ErrorResponse::of(&request, ApiError::TokenUnavailable).as_json()
        })?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(challenge))
}

fn reason_codes(reasons: &[SpamReason]) -> String {
    let codes: Vec<&str> = reasons.iter().map(|reason| reason.code()).collect();
    codes.join(",")
}

/// The browser's most preferred specific language, if it is a tag we accept.
pub fn preferred_language(request: &HttpRequest) -> Option<LanguageTag> {
    negotiate::accepted_languages(request)
        .into_iter()
        .find_map(|tag| LanguageTag::parse(tag.as_str()).ok().flatten())
}
