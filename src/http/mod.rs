//! The public HTTP interface: routes, body decoding, and the one error type.

pub mod body;
pub mod error;
pub mod followup_page;
mod followup_texts;
pub mod form_page;
mod health;
pub mod join;
pub mod negotiate;
pub mod pages;
pub mod request_log;
pub mod visitor_pages;

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, guard, web};
use tokio::sync::Notify;

use crate::domain::FormSchema;
use crate::metrics::Metrics;
use crate::routing::Routing;
use crate::spam::{ClientHasher, ClientIp, FloodGauge, RateLimiter, SpamChecks, TrustedProxies};
use crate::store::{AdmissionRules, Writer};

use error::{ApiError, ErrorResponse};

/// What every handler may use; built once at start-up.
pub struct AppState {
    pub writer: Writer,
    pub schema: FormSchema,
    pub max_body_bytes: usize,
    pub success_url: String,
    pub routing: Arc<Routing>,
    /// The domain of `mail.from`, for Message-IDs.
    pub message_domain: String,
    /// Wakes the delivery worker when a notification is queued.
    pub delivery: Arc<Notify>,
    pub trusted_proxies: TrustedProxies,
    /// POST /join and GET /join/token are limited separately: a visitor needs one of
    /// each per sign-up. Tokens have no ceiling for everyone (see
    /// [`RateLimiter::per_client_only`]).
    pub join_limiter: Arc<RateLimiter>,
    pub token_limiter: Arc<RateLimiter>,
    /// GET /join/challenge's own quota per client, as large as the token's, and no
    /// ceiling for everyone: real visitors must reach it in a flood.
    pub challenge_limiter: Arc<RateLimiter>,
    /// The intake rate: how hard challenges are, and whether unproved sign-ups are
    /// held (issue 17).
    pub flood: Arc<FloodGauge>,
    /// The follow-up pages' own limits (`rate_limit.followup_*`).
    pub followup_limiter: Arc<RateLimiter>,
    pub spam: SpamChecks,
    pub client_hasher: Arc<ClientHasher>,
    pub admission_rules: AdmissionRules,
    pub metrics: Arc<Metrics>,
    /// The built-in form and thank-you pages.
    pub page: form_page::FormPage,
    /// The follow-up pages; `None` when follow-up is off, and their paths are 404.
    pub followup: Option<followup_page::FollowupPages>,
    /// The keyed hash of a visitor's address for its one mail a day; `None` when every
    /// section's confirmation is off.
    pub visitor_addresses: Option<crate::visitor::AddressHasher>,
    /// The visitor's pages (confirm, withdraw, my data); `None` when every section's
    /// confirmation is off, and their paths are 404.
    pub visitor: Option<visitor_pages::VisitorPages>,
    /// The visitor's pages' own limiter ([`visitor_pages::limiter`]).
    pub visitor_limiter: Arc<RateLimiter>,
    /// Seals each sign-up before it is stored; `None` unless `storage.seal_keys` is set.
    pub sealer: Option<crate::sealing::Sealer>,
    /// Sealed storage with visitors mailed: builds a sign-up's mail to its visitor
    /// while the request holds the clear data, and holds it in memory until sent.
    pub sealed_visitor_mails: Option<crate::visitor::SealedVisitorMails>,
}

impl AppState {
    /// The client, as far as the trusted proxies let us tell; a request without a
    /// peer address (not over TCP) counts as one shared client.
    pub fn client_of(&self, request: &HttpRequest) -> ClientIp {
        ClientIp::of(request, &self.trusted_proxies)
            .unwrap_or_else(|| ClientIp::from_addr(std::net::Ipv4Addr::UNSPECIFIED.into()))
    }
}

/// CORS for scripts on `server.allowed_origins` only. Requests from any other origin
/// are still served (a plain HTML form on any site may post, and browsers send an
/// Origin header with those too); they just get no CORS headers, so a script elsewhere
/// cannot read the answer.
pub fn cors(allowed_origins: &[String]) -> actix_cors::Cors {
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST"])
        .allowed_headers([
            actix_web::http::header::CONTENT_TYPE,
            actix_web::http::header::ACCEPT,
            actix_web::http::header::ACCEPT_LANGUAGE,
        ])
        .expose_headers([actix_web::http::header::RETRY_AFTER])
        .max_age(3600)
        .block_on_origin_mismatch(false);
    for origin in allowed_origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}

/// GET, and HEAD answered the same way: mail scanners and link previewers often send
/// HEAD to a link in a mail first. actix-web sends a HEAD the headers the GET would get,
/// Content-Length included, without the body. A handler never acts on either; one that
/// would do work only for the body it sends asks [`is_head`].
fn get() -> actix_web::Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// Runs `query` on a read connection of its own, on a blocking thread, in the caller's
/// span: no connection is held across an `.await`. A failure is logged once as
/// `{reader} cannot read the database` (`reader`: "a follow-up page") and answered as
/// the store's failure.
///
/// # Errors
/// [`ApiError::Store`]: the database could not be opened or read, or the blocking pool
/// is gone.
pub(crate) async fn read_apart<T: Send + 'static>(
    database: &crate::store::Database,
    reader: &'static str,
    query: impl FnOnce(&rusqlite::Connection) -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    let database = database.clone();
    let span = tracing::Span::current();
    web::block(move || {
        let _entered = span.enter();
        query(&database.connect()?)
    })
    .await
    .map_err(|_| ApiError::Store(crate::store::WriteFailure::Stopped))?
    .map_err(|error| {
        tracing::warn!(%error, "{reader} cannot read the database");
        ApiError::Store(crate::store::WriteFailure::from(&error))
    })
}

/// Whether `request`'s client is within `limiter`; over it, the refusal is counted
/// under `endpoint` and answered 429 with `Retry-After`.
pub(crate) fn within_limit(
    request: &HttpRequest,
    state: &AppState,
    limiter: &RateLimiter,
    endpoint: crate::metrics::LimitedEndpoint,
) -> Result<(), ErrorResponse> {
    limiter.check(state.client_of(request)).map_err(|limited| {
        state.metrics.rate_limited(endpoint, limited.scope);
        ErrorResponse::of(
            request,
            ApiError::RateLimited {
                retry_after: limited.retry_after,
            },
        )
    })
}

/// Whether `request` is a HEAD, whose body is never sent.
pub(crate) fn is_head(request: &HttpRequest) -> bool {
    request.method() == actix_web::http::Method::HEAD
}

/// Whether a POST comes from another site: the browser says so
/// (`Sec-Fetch-Site: cross-site`), or its `Origin` is neither this server (its `Host`)
/// nor `public_origin` (that of `server.public_url`). `Origin: null`, which browsers
/// send from a page with `Referrer-Policy: no-referrer` (as every page of ours has), is
/// let through to the page's CSRF check; so is a request with neither header (not a
/// browser).
pub(crate) fn is_cross_site(request: &HttpRequest, public_origin: Option<&str>) -> bool {
    let headers = request.headers();
    let fetch_site = headers
        .get("sec-fetch-site")
        .and_then(|value| value.to_str().ok());
    if fetch_site.is_some_and(|site| site.trim().eq_ignore_ascii_case("cross-site")) {
        return true;
    }
    let Some(origin) = headers.get(actix_web::http::header::ORIGIN) else {
        return false;
    };
    let Ok(origin) = origin.to_str() else {
        return true;
    };
    let origin = origin.trim();
    if origin == "null" {
        return false;
    }
    let own_host = request.connection_info().host().to_ascii_lowercase();
    let same_host = origin
        .split_once("://")
        .is_some_and(|(_, host)| host.eq_ignore_ascii_case(&own_host));
    let public = public_origin.is_some_and(|public| public.eq_ignore_ascii_case(origin));
    !(same_host || public)
}

/// Pages reached through links in mails are never indexed, and neither are their
/// error pages.
fn noindex() -> actix_web::middleware::DefaultHeaders {
    actix_web::middleware::DefaultHeaders::new().add(("X-Robots-Tag", "noindex, nofollow"))
}

/// The public routes.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/", get().to(form_page::form))
        .route("/join", get().to(form_page::form))
        .route("/join", web::post().to(join::join))
        .route("/join/token", get().to(join::token))
        .route("/join/challenge", get().to(join::challenge))
        .route("/join/thanks", get().to(form_page::thanks))
        .route("/healthz", get().to(health::healthz))
        .route("/readyz", get().to(health::readyz))
        .service(
            // Pages for organisers, reached through links in mails: never indexed.
            web::scope("/followup")
                .wrap(noindex())
                .route("/section/{token}", get().to(followup_page::section))
                .route(
                    "/section/{token}",
                    web::post().to(followup_page::mark_in_section),
                )
                .route("/{token}", get().to(followup_page::person))
                .route("/{token}", web::post().to(followup_page::mark_person))
                .default_service(web::to(not_found)),
        )
        // The visitor's pages (issue 16): links in mails to visitors, and the form
        // that asks for one.
        .service(
            web::scope("/confirm")
                .wrap(noindex())
                .route("/{token}", get().to(visitor_pages::confirm_page))
                .route("/{token}", web::post().to(visitor_pages::confirm))
                .route("/{token}/", get().to(visitor_pages::without_trailing_slash))
                .default_service(web::to(not_found)),
        )
        .service(
            web::scope("/withdraw")
                .wrap(noindex())
                .route("/{token}", get().to(visitor_pages::withdraw_page))
                .route("/{token}", web::post().to(visitor_pages::withdraw))
                .route("/{token}/", get().to(visitor_pages::without_trailing_slash))
                .default_service(web::to(not_found)),
        )
        .service(
            web::scope("/my-data")
                .wrap(noindex())
                .route("", get().to(visitor_pages::my_data_form))
                .route("", web::post().to(visitor_pages::request_my_data))
                .route("/{token}", get().to(visitor_pages::my_data))
                .route("/{token}/", get().to(visitor_pages::without_trailing_slash))
                .default_service(web::to(not_found)),
        )
        .default_service(web::to(not_found));
}

async fn not_found(request: HttpRequest) -> Result<HttpResponse, ErrorResponse> {
    Err(ErrorResponse::of(&request, ApiError::NotFound))
}
