//! The admin listener: exports, erasure, follow-up and the review of held and spam
//! sign-ups for operators and national organisers. It is a separate HTTP server on `admin.listen`, so none of these routes
//! exists on the public listener, and a firewall can keep it private.

pub mod auth;
pub mod error;
mod export;
mod followup;
mod forget;
mod metrics;
mod review;

use actix_web::web;

use std::sync::Arc;
use std::time::Duration;

use crate::config::{ConfigError, Settings};
use crate::domain::Timestamp;
use crate::metrics::Metrics;
use crate::routing::Routing;
use crate::secret::ServerSecret;
use crate::store::{Database, Writer};
use crate::visitor::AddressHasher;

pub use auth::{AdminToken, FailedAuthLimiter, MetricsAccess, Tokens};
pub use error::AdminError;

/// What the admin handlers use; built once at start-up.
pub struct AdminState {
    /// Audit rows and erasures go through the server's single writer.
    pub writer: Writer,
    /// Exports read on connections of their own.
    pub database: Database,
    pub tokens: Tokens,
    /// Who may read `/metrics`: anyone on a loopback listener, else a token.
    pub metrics_access: MetricsAccess,
    pub limiter: FailedAuthLimiter,
    /// For the keyed hash of an erased address.
    pub secret: ServerSecret,
    /// The configured extra fields: the CSV columns after the standard ones.
    pub extra_columns: Vec<String>,
    /// The counters the public listener keeps, shown by `/metrics`.
    pub metrics: Arc<Metrics>,
    /// `followup.remind_after`: a sign-up still `new` this long after it came is
    /// overdue.
    pub remind_after: Duration,
    /// Whether follow-up runs (`followup.enabled`, or `server.public_url` set): only
    /// then does `/metrics` show the overdue gauge.
    pub followup_enabled: bool,
    /// The configured sections and the fallback: each has every follow-up series.
    pub sections: Vec<String>,
    /// Which sections ask their visitors to confirm: a review does not release theirs.
    pub routing: Arc<Routing>,
    /// `spam.duplicate_window`: a released sign-up whose address its section heard of
    /// this recently becomes a duplicate.
    pub duplicate_window: Duration,
    /// The sender's domain, for the Message-ID of a released sign-up's notification.
    pub message_domain: String,
    /// Wakes the delivery worker once a release queued notifications.
    pub delivery: Arc<tokio::sync::Notify>,
    /// For a release in a double opt-in section: the keyed hash of a visitor's address
    /// that holds its one mail a day (`None` when no section asks to confirm).
    pub visitor_addresses: Option<AddressHasher>,
}

impl AdminState {
    pub fn from_settings(
        settings: &Settings,
        writer: Writer,
        database: Database,
        secret: ServerSecret,
        metrics: Arc<Metrics>,
        delivery: Arc<tokio::sync::Notify>,
    ) -> Result<Self, ConfigError> {
        let routing = Routing::from_settings(settings)?;
        Ok(Self {
            visitor_addresses: routing
                .any_confirms()
                .then(|| AddressHasher::from_secret(&secret)),
            routing: Arc::new(routing),
            duplicate_window: settings.spam.duplicate_window.get(),
            message_domain: crate::mail::sender(&settings.mail)?
                .email
                .domain()
                .to_owned(),
            delivery,
            writer,
            database,
            tokens: Tokens::from_settings(&settings.admin.tokens)?,
            metrics_access: MetricsAccess::from_settings(&settings.admin)?,
            limiter: FailedAuthLimiter::per_minute(settings.admin.failed_auth_per_minute),
            secret,
            extra_columns: settings.form.extra_field_names(),
            metrics,
            remind_after: settings.followup.remind_after.get(),
            followup_enabled: settings.followup_enabled(),
            sections: settings
                .sections
                .iter()
                .map(|section| section.name.clone())
                .chain(
                    settings
                        .fallback
                        .iter()
                        .map(|fallback| fallback.name.clone()),
                )
                .collect(),
        })
    }

    /// Sign-ups still `new` that came before this, at `now`, are overdue.
    pub fn overdue_before(&self, now: Timestamp) -> Timestamp {
        now.minus(self.remind_after)
    }
}

/// The admin routes.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/admin/submissions", web::get().to(export::submissions))
        .route("/admin/forget", web::post().to(forget::forget))
        .route("/admin/followup", web::get().to(followup::list))
        .route("/admin/followup/{id}", web::post().to(followup::mark))
        .route("/admin/review", web::get().to(review::list))
        .route("/admin/review/release", web::post().to(review::release))
        .route("/admin/review/discard", web::post().to(review::discard))
        .route("/metrics", web::get().to(metrics::metrics))
        .default_service(web::to(not_found));
}

/// A `true`/`false` query parameter (`overdue=true`), absent meaning `false`; anything
/// else is a 400 that names the parameter.
fn flag(name: &str, value: Option<&str>) -> Result<bool, AdminError> {
    match value {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(AdminError::BadRequest(format!(
            "{name}: `{}` is not true or false",
            other.chars().take(32).collect::<String>()
        ))),
    }
}

async fn not_found() -> Result<actix_web::HttpResponse, AdminError> {
    Err(AdminError::NotFound)
}
