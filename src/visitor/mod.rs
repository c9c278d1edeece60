//! The visitor's side (issue 16): the mails joinform sends to the person who signed up
//! (`form.confirmation`: a notice, or double opt-in's confirmation), and the links in
//! them that let a visitor confirm, withdraw (GDPR article 7(3) and 17) or see what is
//! stored about them (article 15) without asking anybody.
//!
//! - [`links`]: the signed tokens those links carry, and the keyed hash that stands in
//!   for an address in `visitor_mails`.
//! - [`mails`]: the mails themselves, built by the delivery worker when it sends them.
//! - [`held`]: a sealed installation's mails, built by the request that has the clear
//!   sign-up and kept in memory until sent.
//!
//! A link never acts on GET, since mail scanners open every link: GET shows a page,
//! whose form POSTs with the token's CSRF value.

pub mod held;
pub mod links;
pub mod mails;

use std::time::Duration;

use crate::config::Settings;
use crate::domain::{SubmissionId, Timestamp};

pub use held::{HeldFull, HeldInMemory, SealedVisitorMails};
pub use links::{AddressHasher, LinkPurpose, VisitorLinkKey};
pub use mails::VisitorMails;

/// How long an access link (`/my-data/{token}`) works after its mail is written: it
/// shows personal data, so briefly.
pub const ACCESS_LINK_TTL: Duration = Duration::from_secs(24 * 3600);

/// How often the retention purge runs (`retention::run_daily`): an unconfirmed sign-up
/// is deleted at the first purge after its confirm link expires, so within this time of
/// it.
const PURGE_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// The addresses of a visitor's pages, signed; what mails to visitors carry and what the
/// pages check. Expiries:
/// - confirm: the sign-up's time plus `form.confirm_within`, when the purge deletes an
///   unconfirmed sign-up anyway;
/// - withdraw: the mail's time plus `retention.accepted`, after which nothing of the
///   sign-up is kept to withdraw;
/// - access: the mail's time plus [`ACCESS_LINK_TTL`].
#[derive(Debug, Clone)]
pub struct VisitorLinks {
    key: VisitorLinkKey,
    /// `server.public_url` without its trailing slash.
    base: String,
    confirm_within: Duration,
    withdraw_for: Duration,
}

impl VisitorLinks {
    /// The links of `settings`, signed with `key`; `None` without `server.public_url`
    /// (the configuration then refuses every mode but `off`).
    pub fn new(settings: &Settings, key: VisitorLinkKey) -> Option<Self> {
        Some(Self {
            key,
            base: settings
                .server
                .public_url()?
                .trim_end_matches('/')
                .to_owned(),
            confirm_within: settings.form.confirm_within.get(),
            withdraw_for: settings.retention.accepted.get(),
        })
    }

    /// The key the tokens are signed with, for the pages that check them.
    pub fn key(&self) -> &VisitorLinkKey {
        &self.key
    }

    /// When a confirm link for a sign-up made at `created_at` stops working.
    pub fn confirm_expiry(&self, created_at: Timestamp) -> Timestamp {
        created_at.plus(self.confirm_within)
    }

    /// By when an unconfirmed sign-up made at `created_at` is deleted: the first daily
    /// purge after its confirm link expires (the purge's own rule, `form.confirm_within`
    /// after the sign-up). What the confirmation mail and the confirm page both say, as
    /// its [`Timestamp::date_text`].
    pub fn unconfirmed_deleted_by(&self, created_at: Timestamp) -> Timestamp {
        self.confirm_expiry(created_at).plus(PURGE_INTERVAL)
    }

    /// `{public_url}/confirm/{token}` for sign-up `id`, made at `created_at`.
    pub fn confirm(&self, id: SubmissionId, created_at: Timestamp) -> String {
        let token = self
            .key
            .issue(LinkPurpose::Confirm, id, self.confirm_expiry(created_at));
        format!("{}/confirm/{token}", self.base)
    }

    /// `{public_url}/withdraw/{token}` for sign-up `id`, written at `now`.
    pub fn withdraw(&self, id: SubmissionId, now: Timestamp) -> String {
        format!("{}/withdraw/{}", self.base, self.withdraw_token(id, now))
    }

    /// The token of [`VisitorLinks::withdraw`] alone, for a page's own form.
    pub fn withdraw_token(&self, id: SubmissionId, now: Timestamp) -> String {
        self.key
            .issue(LinkPurpose::Withdraw, id, now.plus(self.withdraw_for))
    }

    /// `{public_url}/my-data/{token}` for the address of sign-up `id`, written at `now`.
    pub fn access(&self, id: SubmissionId, now: Timestamp) -> String {
        let token = self
            .key
            .issue(LinkPurpose::Access, id, now.plus(ACCESS_LINK_TTL));
        format!("{}/my-data/{token}", self.base)
    }
}
