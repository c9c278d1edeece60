//! The visitor's pages (issue 16) on the public listener: where the person who signed up
//! lands from a link in a mail joinform sent them, or comes to ask what is stored about
//! them (GDPR articles 7(3), 15 and 17).
//!
//! - GET `/confirm/{token}`: a double opt-in sign-up and a Confirm button. POST (the
//!   button): [`submissions::confirm`] through the writer (the proof: time and a keyed
//!   hash of the client's address), then the delivery worker is woken for the section's
//!   notification, and the page says who will get in touch.
//! - GET `/withdraw/{token}`: what withdrawing does, and a button. POST: every sign-up
//!   of that sign-up's address is erased exactly as `joinform forget` erases it
//!   ([`erasure::forget`] inside [`crate::store::erase`]: audit row by `visitor` with a
//!   keyed hash, free pages returned, WAL emptied), then the page says so.
//! - GET `/my-data`: a form for an email address. POST: the same writer work
//!   ([`visitor_mails::request_access`], which writes at commit either way, so its
//!   time tells nothing) and **the same page, byte for byte,** whether the address is
//!   stored or not, so nobody learns who signed up. Only the address's owner gets a
//!   mail with the link below, at most one mail a day.
//! - GET `/my-data/{token}`: every field of every sign-up of the address, and a button
//!   that withdraws them all. An `access` audit row (actor `visitor`, the count only) is
//!   committed with the read, before anything is shown; a HEAD reads without one.
//!
//! **When they exist.** Like the follow-up pages without follow-up, every path here is
//! 404 unless some section's `confirmation` is `notice` or `double_opt_in` (which needs
//! `server.public_url`, so links can be made). That holds for `/my-data` too, although
//! the right of access exists whatever the mode: its only answer is a mail, and with
//! every section `off` the configuration promises that nothing ever goes to a visitor's
//! address, and the delivery worker builds no mail to a visitor (it would cancel the
//! access mail). A form that says "we have sent you a link" when nothing will come
//! would mislead the very people it is for; without mails, requests go to the
//! organisation (`joinform forget`, the admin export).
//!
//! **Answers.** A GET never changes anything (mail scanners open every link); a link's
//! own buttons are plain forms that POST to the page's own address with the token's
//! CSRF value ([`VisitorLinkKey::csrf_value`]), so the pages work without JavaScript.
//! A POST from another site (`Sec-Fetch-Site: cross-site`, or an `Origin` that is
//! neither this server nor `server.public_url`) is refused (403) before its body is
//! read ([`super::is_cross_site`]). That check alone guards `/my-data`, whose form has
//! no link to tie a CSRF value to: a value anyone can fetch from the page would guard
//! nothing. What gets past it (a browser too old to send `Sec-Fetch-Site`, posting
//! with `Origin: null`) can only make joinform mail an address's owner their own link,
//! at most once a day, and learns nothing from the answer.
//! A body must be `application/x-www-form-urlencoded` (else 415) of at most
//! [`MAX_BODY_BYTES`] (else 413). Statuses, with every other error's, are in `error.rs`
//! ([`VisitorFailure`]):
//! - a token this server did not make (cut short, altered, another purpose): 404;
//! - a genuine token past its expiry: 410, saying so (a confirm link: sign up again; a
//!   withdraw or access link: ask for a new one at `/my-data`);
//! - confirming a sign-up that is no longer stored (withdrawn, or purged unconfirmed):
//!   410, since what the link was for can no longer happen;
//! - withdrawing, or looking at the data of, a sign-up that is no longer stored: 200
//!   with a page saying that this sign-up is not stored any more; what the visitor
//!   wanted already holds, so it is not an error;
//! - a POST without the page's CSRF value, or from another site: 403.
//!
//! **Limits.** One limiter for all of these pages, with the form's per-client limits
//! (`rate_limit.per_ip_per_minute`, `per_ip_burst`, and the global ceiling), in an
//! instance of its own: a person confirming, withdrawing or asking for their data makes
//! about as many requests as one filling in the form. Over it: 429 with `Retry-After`.
//!
//! **Language.** A page about a sign-up is in the sign-up's `visitor_language` (the one
//! its mails were written in); a page without one (the `/my-data` form and its answer,
//! a link that does not verify or whose sign-up is gone) is in the language negotiated
//! for the request (`?lang=`, `Accept-Language`, `form.default_language`), as
//! every page ([`super::negotiate::page_language`]). Words come from
//! templates/visitor/<tag>.toml (keys `visitor_…`) and the form's own translations,
//! inside the layout and policy every page shares; every response also carries
//! `X-Robots-Tag: noindex` (set on these paths in `super::routes`).

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde_json::{Value, json};

use crate::config::{RateLimitSettings, Settings};
use crate::domain::{
    DuplicateField, FieldProblem, FollowupState, SubmissionId, SubmissionStatus, Timestamp,
};
use crate::erasure;
use crate::i18n::{self, Texts};
use crate::metrics::LimitedEndpoint;
use crate::secret::ServerSecret;
use crate::spam::RateLimiter;
use crate::store::audit::{self, Action};
use crate::store::submissions::{self, Confirmed, StoredSubmission};
use crate::store::{Database, StoreError, visitor_mails};
use crate::visitor::links::LinkError;
use crate::visitor::{AddressHasher, LinkPurpose, VisitorLinkKey, VisitorLinks};

use super::AppState;
use super::body::{BodyError, BodyFormat, read_limited};
use super::error::{ApiError, ErrorResponse};
use super::pages::{Frame, Layout, filters, phrase_around};

/// The most a visitor page's form sends: an address (at most 254 characters, three
/// bytes each once percent-encoded) or a CSRF value, with room to spare.
pub const MAX_BODY_BYTES: usize = 2048;

/// Why a visitor's page is not shown or its button did nothing. The statuses are in
/// `error.rs`, with every other error's; the words in templates/visitor/.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VisitorFailure {
    /// Not a link this server made (cut short, altered, signed with another secret, or
    /// for another page): 404.
    #[error("this link is not valid; open it from the mail again")]
    Unknown,
    /// A genuine confirm link past its expiry (the sign-up is purged then): 410.
    #[error("this confirmation link has expired; sign up again")]
    ConfirmExpired,
    /// A genuine withdraw or access link past its expiry: 410.
    #[error("this link has expired; ask for a new one at /my-data")]
    Expired,
    /// Confirming a sign-up that is no longer stored (withdrawn, or purged because
    /// nobody confirmed it in time): 410.
    #[error("this sign-up is no longer stored")]
    Gone,
    /// A POST without the page's CSRF value, or from another site: 403.
    #[error("the form was not sent from its page")]
    Forbidden,
}

impl VisitorFailure {
    /// The keys of the page's heading and sentence (templates/visitor/).
    fn page_keys(self) -> (&'static str, &'static str) {
        match self {
            Self::Unknown => ("visitor_error_unknown_title", "visitor_error_unknown_text"),
            Self::ConfirmExpired => (
                "visitor_error_confirm_expired_title",
                "visitor_error_confirm_expired_text",
            ),
            Self::Expired => ("visitor_error_expired_title", "visitor_error_expired_text"),
            Self::Gone => ("visitor_error_gone_title", "visitor_error_gone_text"),
            Self::Forbidden => (
                "visitor_error_forbidden_title",
                "visitor_error_forbidden_text",
            ),
        }
    }

    /// Where the page leads on: a reference relative to the link's own path
    /// (`/confirm/{token}` and the like), so it also works under a proxy's prefix,
    /// and the key of its words.
    fn way_on(self) -> Option<(&'static str, &'static str)> {
        match self {
            Self::ConfirmExpired | Self::Gone => Some(("../join", "visitor_to_form")),
            Self::Expired => Some(("../my-data", "visitor_ask_for_link")),
            Self::Unknown | Self::Forbidden => None,
        }
    }

    fn of_link(purpose: LinkPurpose, error: LinkError) -> Self {
        match (error, purpose) {
            (LinkError::Malformed | LinkError::Tampered, _) => Self::Unknown,
            (LinkError::Expired, LinkPurpose::Confirm) => Self::ConfirmExpired,
            (LinkError::Expired, LinkPurpose::Withdraw | LinkPurpose::Access) => Self::Expired,
        }
    }
}

/// The page of a refusal, in `language` (a shipped tag): for `error.rs`, which maps
/// every error to its answer.
///
/// # Errors
/// Only if a filter fails, which ours do not.
pub(super) fn failure_page(
    layout: &Layout,
    language: &'static str,
    failure: VisitorFailure,
) -> askama::Result<String> {
    let texts = Texts::new(language);
    let (heading, text) = failure.page_keys();
    MessagePage {
        frame: layout.frame(language, texts.get(heading)),
        logo_url: "",
        heading: texts.get(heading),
        paragraphs: vec![texts.get(text).to_owned()],
        linked: None,
        button: None,
        link: failure
            .way_on()
            .map(|(href, key)| (href.to_owned(), texts.get(key))),
    }
    .render()
}

/// A verified link's sign-up as stored now (`None`: no longer stored), and the language
/// its page speaks.
struct Linked {
    id: SubmissionId,
    stored: Option<StoredSubmission>,
    language: &'static str,
}

/// What the visitor's pages need, built at start-up when some section mails its
/// visitors.
pub struct VisitorPages {
    links: VisitorLinks,
    /// Pages read on connections of their own; every change goes through the writer.
    database: Database,
    layout: Arc<Layout>,
    /// For the keyed hash of an erased address in the audit trail (`audit.key`).
    secret: ServerSecret,
    /// The keyed hash that holds an address's one mail a day.
    addresses: AddressHasher,
    /// The origin of `server.public_url`, which a POST's `Origin` may name.
    public_origin: Option<String>,
    /// `form.logo_url`, shown on top of every page as on the thank-you page.
    logo_url: String,
    /// `form.privacy_url`, the privacy notice the form links to; empty: none.
    privacy_url: String,
}

impl std::fmt::Debug for VisitorPages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VisitorPages")
            .field("public_origin", &self.public_origin)
            .finish_non_exhaustive()
    }
}

impl VisitorPages {
    /// The pages of `settings`, their links signed with the visitor link key of
    /// `secret`, reading `database`, inside `layout`. `None` without
    /// `server.public_url`, which every mode but `off` requires.
    pub fn new(
        settings: &Settings,
        secret: &ServerSecret,
        database: Database,
        layout: Arc<Layout>,
    ) -> Option<Self> {
        let links = VisitorLinks::new(settings, VisitorLinkKey::from_secret(secret))?;
        let public_origin = settings
            .server
            .public_url()
            .and_then(|url| url::Url::parse(url).ok())
            .map(|url| url.origin().ascii_serialization());
        Some(Self {
            links,
            database,
            layout,
            secret: secret.clone(),
            addresses: AddressHasher::from_secret(secret),
            public_origin,
            logo_url: settings.form.logo_url.clone(),
            privacy_url: settings.form.privacy_url.clone(),
        })
    }

    fn key(&self) -> &VisitorLinkKey {
        self.links.key()
    }

    /// The sign-up `token` names, once its signature holds for `purpose` and it has not
    /// expired.
    fn verify(&self, purpose: LinkPurpose, token: &str) -> Result<SubmissionId, VisitorFailure> {
        let (id, _) = self
            .key()
            .verify(purpose, token, Timestamp::now())
            .map_err(|error| VisitorFailure::of_link(purpose, error))?;
        tracing::Span::current().record("id", tracing::field::display(id));
        Ok(id)
    }

    /// Verifies `token` for `purpose` and reads the sign-up it names: how a link's page
    /// starts. `Err` holds the whole answer to a refused link ([`Self::refuse_link`]),
    /// or the refusal of a failed read in the negotiated language.
    async fn open(
        &self,
        request: &HttpRequest,
        purpose: LinkPurpose,
        token: &str,
    ) -> Result<Linked, Result<HttpResponse, ErrorResponse>> {
        let id = match self.verify(purpose, token) {
            Ok(id) => id,
            Err(failure) => return Err(self.refuse_link(request, purpose, token, failure).await),
        };
        // Read first for its language, so that every refusal is in the visitor's.
        let stored = self
            .stored(id)
            .await
            .map_err(|error| Err(refuse_negotiated(request, error)))?;
        let language = self.language(
            request,
            stored.as_ref().and_then(|s| s.visitor_language.as_deref()),
        );
        Ok(Linked {
            id,
            stored,
            language,
        })
    }

    /// The answer to a link `verify` refused. A genuine link past its expiry is
    /// refused in its sign-up's language when the sign-up is still stored; and an
    /// expired confirm link of a sign-up confirmed meanwhile gets "already confirmed",
    /// not "sign up again" (its sign-up is there and its section has heard of it).
    async fn refuse_link(
        &self,
        request: &HttpRequest,
        purpose: LinkPurpose,
        token: &str,
        failure: VisitorFailure,
    ) -> Result<HttpResponse, ErrorResponse> {
        if !matches!(
            failure,
            VisitorFailure::Expired | VisitorFailure::ConfirmExpired
        ) {
            return Err(refuse_negotiated(request, failure));
        }
        let stored = match self.key().verify_signature(purpose, token) {
            Ok((id, _)) => self.stored(id).await.ok().flatten(),
            Err(_) => None,
        };
        let stored = stored.filter(|s| s.status != SubmissionStatus::Spam);
        let language = self.language(
            request,
            stored.as_ref().and_then(|s| s.visitor_language.as_deref()),
        );
        match stored {
            Some(stored)
                if purpose == LinkPurpose::Confirm
                    && matches!(
                        stored.status,
                        SubmissionStatus::Accepted | SubmissionStatus::Duplicate
                    ) =>
            {
                let texts = Texts::new(language);
                let section = isolated(&stored.section);
                Ok(self.message(language, StatusCode::OK, already(texts, &section)))
            }
            _ => Err(refuse(request, language, failure)),
        }
    }

    /// A page's language: the sign-up's when it names a shipped one, else the one
    /// negotiated for the request.
    fn language(&self, request: &HttpRequest, stored: Option<&str>) -> &'static str {
        stored
            .and_then(i18n::resolve)
            .unwrap_or_else(|| self.layout.language_of(request))
    }

    /// Runs `query` on a read connection of its own, on a blocking thread: no
    /// connection is held across an `.await`.
    async fn read<T: Send + 'static>(
        &self,
        query: impl FnOnce(&rusqlite::Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, ApiError> {
        super::read_apart(&self.database, "a visitor's page", query).await
    }

    /// The sign-up `id` as stored now, if it is.
    async fn stored(&self, id: SubmissionId) -> Result<Option<StoredSubmission>, ApiError> {
        self.read(move |connection| submissions::by_id(connection, id))
            .await
    }

    /// A POST's fields, once it came from this site, as a form of the right size, and
    /// (for a link's page, `token`) with the page's CSRF value. Nothing of the body is
    /// read before the origin is checked.
    async fn posted(
        &self,
        request: &HttpRequest,
        payload: web::Payload,
        token: Option<&str>,
    ) -> Result<Posted, ApiError> {
        if super::is_cross_site(request, self.public_origin.as_deref()) {
            return Err(VisitorFailure::Forbidden.into());
        }
        if BodyFormat::of(request)? != BodyFormat::UrlEncoded {
            return Err(BodyError::UnsupportedMediaType(
                "send application/x-www-form-urlencoded, as the page's form does",
            )
            .into());
        }
        let body = read_limited(request, payload, MAX_BODY_BYTES).await?;
        let posted = Posted::parse(&body).map_err(BodyError::from)?;
        if let Some(token) = token
            && !self
                .key()
                .csrf_ok(token, posted.csrf.as_deref().unwrap_or_default())
        {
            return Err(VisitorFailure::Forbidden.into());
        }
        Ok(posted)
    }

    /// A page of a heading, sentences and at most a button or a link, with `status`.
    fn message(
        &self,
        language: &'static str,
        status: StatusCode,
        content: Message,
    ) -> HttpResponse {
        let texts = Texts::new(language);
        let heading = texts.get(content.heading);
        let page = MessagePage {
            frame: self.layout.frame(language, heading),
            logo_url: &self.logo_url,
            heading,
            paragraphs: content.paragraphs,
            linked: content.linked,
            button: content.button,
            link: content
                .link
                .map(|(href, key)| (href.to_owned(), texts.get(key))),
        }
        .render();
        self.layout.respond(status, language, page)
    }

    /// "To have those mails deleted too, contact us: our privacy notice says how to
    /// reach us", the notice linked where the form links it (`form.privacy_url`).
    /// `None` without one: the page then gives no instruction that leads nowhere.
    fn privacy_sentence(&self, texts: Texts) -> Option<LinkedSentence> {
        (!self.privacy_url.is_empty()).then(|| LinkedSentence {
            parts: phrase_around(texts.get("visitor_withdrawn_privacy"), "{privacy}"),
            href: self.privacy_url.clone(),
            label: texts.get("visitor_privacy_link"),
        })
    }

    /// "This sign-up is no longer stored": the answer to a withdraw or access link
    /// whose sign-up has gone, which is what the visitor wanted anyway.
    fn nothing_stored(&self, language: &'static str) -> HttpResponse {
        let texts = Texts::new(language);
        self.message(
            language,
            StatusCode::OK,
            Message {
                paragraphs: vec![texts.get("visitor_nothing_text").to_owned()],
                link: Some(("../my-data", "visitor_ask_for_link")),
                ..Message::new("visitor_nothing_title")
            },
        )
    }
}

/// What [`VisitorPages::message`] shows.
struct Message {
    /// The key of the heading (and the page's title).
    heading: &'static str,
    /// Translated sentences, values already in their places.
    paragraphs: Vec<String>,
    /// A last sentence with a link in it.
    linked: Option<LinkedSentence>,
    button: Option<Button>,
    /// A reference and the key of its words.
    link: Option<(&'static str, &'static str)>,
}

impl Message {
    fn new(heading: &'static str) -> Self {
        Self {
            heading,
            paragraphs: Vec::new(),
            linked: None,
            button: None,
            link: None,
        }
    }
}

/// A translated sentence with a link in the place of its placeholder.
struct LinkedSentence {
    /// The sentence's phrases before and after the link ([`phrase_around`]): HTML.
    parts: Vec<String>,
    href: String,
    /// The link's words, translated.
    label: &'static str,
}

/// A plain form with one button.
struct Button {
    /// Where it posts: `None` for the page's own address.
    action: Option<String>,
    csrf: String,
    label: &'static str,
}

/// templates/visitor/page.html.
#[derive(Template)]
#[template(path = "visitor/page.html")]
struct MessagePage<'a> {
    frame: Frame<'a>,
    logo_url: &'a str,
    heading: &'a str,
    paragraphs: Vec<String>,
    linked: Option<LinkedSentence>,
    button: Option<Button>,
    link: Option<(String, &'static str)>,
}

/// templates/visitor/my_data.html.
#[derive(Template)]
#[template(path = "visitor/my_data.html")]
struct MyDataForm<'a> {
    frame: Frame<'a>,
    texts: Texts,
    logo_url: &'a str,
    /// What the visitor typed, when it was not an address.
    value: &'a str,
    error: Option<String>,
}

/// templates/visitor/access.html.
#[derive(Template)]
#[template(path = "visitor/access.html")]
struct AccessPage<'a> {
    frame: Frame<'a>,
    texts: Texts,
    logo_url: &'a str,
    sign_ups: Vec<SignUpView>,
    /// The withdraw form: a fresh withdraw token's page and its CSRF value.
    withdraw: Button,
}

/// One sign-up on the access page.
struct SignUpView {
    heading: String,
    facts: Vec<Fact>,
}

/// One stored value on the access page, under its label.
struct Fact {
    /// Translated, or a configured field's name.
    label: String,
    value: String,
    /// Whether `value` is our own translated text (through `phrase`), not stored text.
    translated: bool,
    /// Addresses, numbers, codes and times read left to right on any page; what the
    /// visitor typed takes its own direction.
    ltr: bool,
    /// Keeps the visitor's line breaks (the message).
    lines: bool,
}

impl Fact {
    fn stored(label: impl Into<String>, value: Option<&str>) -> Self {
        Self {
            label: label.into(),
            value: value.unwrap_or(NOTHING).to_owned(),
            translated: false,
            ltr: false,
            lines: false,
        }
    }

    fn code(label: impl Into<String>, value: Option<&str>) -> Self {
        Self {
            ltr: true,
            ..Self::stored(label, value)
        }
    }

    fn time(label: impl Into<String>, value: Option<Timestamp>) -> Self {
        Self::code(label, value.map(minute_of).as_deref())
    }

    fn words(label: impl Into<String>, value: &str) -> Self {
        Self {
            translated: true,
            ..Self::stored(label, Some(value))
        }
    }
}

/// What the access page shows where a value is not stored.
const NOTHING: &str = "—";

/// A value that reads left to right on any page (a date) inside a translated
/// sentence: a left-to-right isolate (LRI … PDI), which the `phrase` filter makes a
/// `<bdi dir=ltr>`, so that `2026-12-08` does not turn into `08-12-2026` in Arabic.
fn fixed(text: &str) -> String {
    format!("\u{2066}{text}\u{2069}")
}

/// `YYYY-MM-DD HH:MM UTC` of an instant.
fn minute_of(at: Timestamp) -> String {
    format!("{} UTC", at.minute_text())
}

/// Text from a visitor or the configuration inside a translated sentence: a
/// first-strong isolate (FSI … PDI), which the `phrase` filter makes a `<bdi>`.
fn isolated(text: &str) -> String {
    format!("\u{2068}{text}\u{2069}")
}

/// The key of a status's words.
fn status_key(status: SubmissionStatus) -> &'static str {
    match status {
        SubmissionStatus::Accepted => "visitor_status_accepted",
        SubmissionStatus::Duplicate => "visitor_status_duplicate",
        SubmissionStatus::Spam => "visitor_status_spam",
        SubmissionStatus::Unconfirmed => "visitor_status_unconfirmed",
        SubmissionStatus::Held => "visitor_status_held",
    }
}

/// The key of a follow-up state's words.
fn followup_key(state: FollowupState) -> &'static str {
    match state {
        FollowupState::New => "visitor_followup_new",
        FollowupState::Contacted => "visitor_followup_contacted",
        FollowupState::Joined => "visitor_followup_joined",
        FollowupState::Declined => "visitor_followup_declined",
        FollowupState::Unreachable => "visitor_followup_unreachable",
    }
}

/// An extra field's value as the visitor sent it: text as it is, anything else as JSON.
fn extra_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Whether "follow-up last changed" tells the visitor anything. Not without a time
/// (a sign-up nobody follows up: "Follow-up" already says so), nor while the state is
/// still the `new` the sign-up (or its confirmation) set: the time is then only the
/// sign-up's or the confirmation's again, both shown under their own labels. Once an
/// organiser has changed the state, even back to `new`, its time is shown.
fn followup_changed(s: &StoredSubmission) -> bool {
    match (s.followup, s.followup_at) {
        (_, None) => false,
        (Some(FollowupState::New), Some(at)) => at != s.created_at && Some(at) != s.confirmed_at,
        (_, Some(_)) => true,
    }
}

/// "Confirmed by you": when, if the visitor confirmed; "not confirmed yet" while the
/// sign-up waits for it; `None` for a sign-up that never needed confirming (its
/// section sends a notice, or nothing), where the row would only read as a step
/// missed.
fn confirmed_fact(s: &StoredSubmission, texts: Texts) -> Option<Fact> {
    let label = texts.get("visitor_label_confirmed");
    match (s.confirmed_at, s.status) {
        (Some(at), _) => Some(Fact::time(label, Some(at))),
        (None, SubmissionStatus::Unconfirmed) => {
            Some(Fact::words(label, texts.get("visitor_not_confirmed")))
        }
        (None, _) => None,
    }
}

impl SignUpView {
    /// Every stored field of `s` that says something about the visitor; the keyed
    /// hashes of client addresses (under a daily key that is never written down) say
    /// nothing anyone can read, and are left out. So are rows that do not apply and
    /// would only read wrong: the language of mails never sent, a confirmation never
    /// asked for, a follow-up time that is only the sign-up's or the confirmation's
    /// again. Every stored value is shown, when in doubt under a row of its own.
    ///
    /// A sealed sign-up (`storage.seal_keys`) shows what the server can read of it (its
    /// reference, times, country, section, status, follow-up, consent version), and
    /// that the rest (name, address, phone, city, message, answers, consent text) is
    /// stored encrypted for the organisation: its empty personal columns are not shown
    /// as if nothing had been given.
    fn of(s: &StoredSubmission, texts: Texts, state: &AppState) -> Self {
        let label = |key: &'static str| texts.get(key).to_owned();
        let yes_no = |yes: bool| texts.get(if yes { "visitor_yes" } else { "visitor_no" });
        let country = format!(
            "{} ({})",
            state.page.country_name(texts.language(), s.country),
            s.country
        );
        let sealed = s.sealed.is_some();
        let reference = s.id.to_string();
        let mut facts = Vec::new();
        if sealed {
            facts.push(Fact::code(
                label("visitor_label_reference"),
                Some(&reference),
            ));
        }
        facts.extend([
            Fact::time(label("visitor_label_signed_up"), Some(s.created_at)),
            Fact::words(
                label("visitor_label_status"),
                texts.get(status_key(s.status)),
            ),
            Fact::stored(label("visitor_label_section"), Some(&s.section)),
        ]);
        if sealed {
            facts.extend([
                Fact::stored(label("label_country"), Some(&country)),
                Fact::words(
                    label("visitor_label_sealed"),
                    texts.get("visitor_sealed_note"),
                ),
            ]);
        } else {
            facts.extend([
                Fact::stored(label("label_name"), Some(&s.name)),
                Fact::code(label("label_email"), Some(&s.email)),
                Fact::stored(label("label_country"), Some(&country)),
                Fact::code(label("label_phone"), s.phone.as_deref()),
                Fact::stored(label("label_city"), s.city.as_deref()),
                Fact {
                    lines: true,
                    ..Fact::stored(label("label_message"), s.message.as_deref())
                },
                Fact::code(label("visitor_label_language"), s.language.as_deref()),
            ]);
            for (name, value) in &s.extra {
                facts.push(Fact::stored(
                    super::form_page::field_label(name),
                    Some(&extra_text(value)),
                ));
            }
            facts.extend([
                Fact::words(label("visitor_label_consent"), yes_no(s.consent)),
                Fact {
                    lines: true,
                    ..Fact::stored(
                        label("visitor_label_consent_text"),
                        s.consent_text.as_deref(),
                    )
                },
            ]);
        }
        facts.extend([
            Fact::code(
                label("visitor_label_consent_version"),
                s.consent_version.as_deref(),
            ),
            Fact::code(
                label("visitor_label_consent_language"),
                s.consent_language.as_deref(),
            ),
            Fact::words(label("visitor_label_returning"), yes_no(s.is_returning)),
            match s.followup {
                Some(followup) => Fact::words(
                    label("visitor_label_followup"),
                    texts.get(followup_key(followup)),
                ),
                None => Fact::stored(label("visitor_label_followup"), None),
            },
        ]);
        if followup_changed(s) {
            facts.push(Fact::time(
                label("visitor_label_followup_at"),
                s.followup_at,
            ));
        }
        facts.push(Fact::time(label("visitor_label_contacted"), s.contacted_at));
        facts.extend(confirmed_fact(s, texts));
        if let Some(language) = s.visitor_language.as_deref() {
            facts.push(Fact::code(
                label("visitor_label_mail_language"),
                Some(language),
            ));
        }
        Self {
            heading: texts
                .get("visitor_access_sign_up")
                .replace("{time}", &isolated(&minute_of(s.created_at))),
            facts,
        }
    }
}

/// The fields a page's form posts; the first of each counts.
#[derive(Debug, Default)]
struct Posted {
    csrf: Option<String>,
    email: Option<String>,
}

impl Posted {
    /// The known fields of a urlencoded body; others are ignored.
    ///
    /// # Errors
    /// A known field given twice, as `/join` refuses it: which one was meant is a guess
    /// joinform does not make (a second address would be mailed nothing, silently).
    fn parse(body: &[u8]) -> Result<Self, DuplicateField> {
        let mut posted = Self::default();
        for (name, value) in url::form_urlencoded::parse(body) {
            let slot = match name.as_ref() {
                "csrf" => &mut posted.csrf,
                "email" => &mut posted.email,
                _ => continue,
            };
            if slot.is_some() {
                return Err(DuplicateField(name.into_owned()));
            }
            *slot = Some(value.into_owned());
        }
        Ok(posted)
    }
}

/// GET of a link with a slash after its token, as some mail programs write a link at
/// the end of a line: a permanent redirect to the link itself. The target is relative
/// (`../{token}`), so it holds behind a proxy's path prefix too; anything not shaped
/// like a token is 404 as any unknown path.
pub async fn without_trailing_slash(
    request: HttpRequest,
    token: web::Path<String>,
) -> Result<HttpResponse, ErrorResponse> {
    let token = token.into_inner();
    let shaped = !token.is_empty()
        && token.len() <= crate::followup::links::MAX_TOKEN_CHARS
        && token
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
    if !shaped {
        return Err(ErrorResponse::of(&request, ApiError::NotFound));
    }
    Ok(HttpResponse::PermanentRedirect()
        .insert_header((actix_web::http::header::LOCATION, format!("../{token}")))
        .finish())
}

/// The visitor's pages' limiter: the form's per-client limits
/// (`rate_limit.per_ip_per_minute` with `rate_limit.per_ip_burst`) and
/// `rate_limit.global_per_second` for everyone together, in an instance of its own. A
/// person confirming, withdrawing or asking for their data makes about as many
/// requests as one filling in the form; the limit bounds what guessing at links or
/// flooding `/my-data` costs.
pub fn limiter(settings: &RateLimitSettings) -> RateLimiter {
    RateLimiter::from_settings(settings)
}

/// The pages, when some section mails its visitors and the client is within its
/// limits: else 404 as for any unknown path, or 429.
fn pages<'a>(
    request: &HttpRequest,
    state: &'a AppState,
) -> Result<&'a VisitorPages, ErrorResponse> {
    let pages = state
        .visitor
        .as_ref()
        .ok_or_else(|| ErrorResponse::of(request, ApiError::NotFound))?;
    super::within_limit(
        request,
        state,
        &state.visitor_limiter,
        LimitedEndpoint::Visitor,
    )?;
    Ok(pages)
}

/// `error` as the answer to `request`, worded in `language`.
fn refuse(
    request: &HttpRequest,
    language: &'static str,
    error: impl Into<ApiError>,
) -> ErrorResponse {
    ErrorResponse::of(request, error).in_language(language)
}

/// A refusal before the sign-up is known: in the language negotiated for the request.
fn refuse_negotiated(request: &HttpRequest, error: impl Into<ApiError>) -> ErrorResponse {
    ErrorResponse::of(request, error)
}

/// GET `/confirm/{token}`: the sign-up waiting for its visitor and a Confirm button;
/// "already confirmed" once it is. Changes nothing.
#[tracing::instrument(name = "visitor_confirm_page", skip_all, fields(id = tracing::field::Empty))]
pub async fn confirm_page(
    request: HttpRequest,
    token: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ErrorResponse> {
    let pages = pages(&request, &state)?;
    let token = token.into_inner();
    let Linked {
        id: _,
        stored,
        language,
    } = match pages.open(&request, LinkPurpose::Confirm, &token).await {
        Ok(linked) => linked,
        Err(answer) => return answer,
    };
    let Some(stored) = stored.filter(|s| s.status != SubmissionStatus::Spam) else {
        return Err(refuse(&request, language, VisitorFailure::Gone));
    };
    let texts = Texts::new(language);
    let section = isolated(&stored.section);
    if stored.status != SubmissionStatus::Unconfirmed {
        return Ok(pages.message(language, StatusCode::OK, already(texts, &section)));
    }
    let content = Message {
        paragraphs: vec![
            texts
                .get("visitor_confirm_text")
                .replace("{section}", &section),
            // The day the mail names too: one rule for both.
            texts.get("visitor_confirm_not_you").replace(
                "{date}",
                &fixed(
                    &pages
                        .links
                        .unconfirmed_deleted_by(stored.released_at.unwrap_or(stored.created_at))
                        .date_text(),
                ),
            ),
        ],
        button: Some(Button {
            action: None,
            csrf: pages.key().csrf_value(&token),
            label: texts.get("visitor_confirm_button"),
        }),
        ..Message::new("visitor_confirm_title")
    };
    Ok(pages.message(language, StatusCode::OK, content))
}

/// "Already confirmed; {section} will contact you."
fn already(texts: Texts, section: &str) -> Message {
    Message {
        paragraphs: vec![
            texts
                .get("visitor_already_text")
                .replace("{section}", section),
        ],
        ..Message::new("visitor_already_title")
    }
}

/// POST `/confirm/{token}`, the Confirm button: confirms the sign-up through the
/// writer, wakes the delivery worker for the section's notification, and says who will
/// get in touch.
#[tracing::instrument(name = "visitor_confirm", skip_all, fields(id = tracing::field::Empty))]
pub async fn confirm(
    request: HttpRequest,
    token: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ErrorResponse> {
    let pages = pages(&request, &state)?;
    let token = token.into_inner();
    let Linked {
        id,
        stored,
        language,
    } = match pages.open(&request, LinkPurpose::Confirm, &token).await {
        Ok(linked) => linked,
        Err(answer) => return answer,
    };
    let fail = |error: ApiError| refuse(&request, language, error);
    pages
        .posted(&request, payload, Some(&token))
        .await
        .map_err(fail)?;
    if stored.is_none() {
        return Err(fail(VisitorFailure::Gone.into()));
    }
    let client_hash = state.client_hasher.hash(state.client_of(&request));
    let window = state.admission_rules.duplicate_window;
    let message_domain = state.message_domain.clone();
    let confirmed = state
        .writer
        .run(move |connection| {
            submissions::confirm(
                connection,
                id,
                Timestamp::now(),
                client_hash.as_deref(),
                window,
                &message_domain,
            )
        })
        .await
        .map_err(|error| fail(error.into()))?;
    let texts = Texts::new(language);
    if matches!(confirmed, Confirmed::Now { .. }) {
        // The section's notification was queued with the confirmation. (Confirmed as
        // a duplicate, the section has heard of the person already: nothing queued.)
        state.delivery.notify_one();
    }
    let content = match confirmed {
        Confirmed::Now { section } | Confirmed::AsDuplicate { section } => {
            tracing::info!("sign-up confirmed by its visitor");
            Message {
                paragraphs: vec![
                    texts
                        .get("visitor_confirmed_text")
                        .replace("{section}", &isolated(&section)),
                ],
                ..Message::new("visitor_confirmed_title")
            }
        }
        Confirmed::Already { section } => already(texts, &isolated(&section)),
        Confirmed::Gone => return Err(fail(VisitorFailure::Gone.into())),
    };
    Ok(pages.message(language, StatusCode::OK, content))
}

/// GET `/withdraw/{token}`: what withdrawing does, and its button. Changes nothing.
#[tracing::instrument(name = "visitor_withdraw_page", skip_all, fields(id = tracing::field::Empty))]
pub async fn withdraw_page(
    request: HttpRequest,
    token: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ErrorResponse> {
    let pages = pages(&request, &state)?;
    let token = token.into_inner();
    let Linked {
        id: _,
        stored,
        language,
    } = match pages.open(&request, LinkPurpose::Withdraw, &token).await {
        Ok(linked) => linked,
        Err(answer) => return answer,
    };
    if stored.is_none() {
        return Ok(pages.nothing_stored(language));
    }
    let texts = Texts::new(language);
    let content = Message {
        paragraphs: vec![
            texts.get("visitor_withdraw_text").to_owned(),
            texts.get("visitor_withdraw_note").to_owned(),
        ],
        button: Some(Button {
            action: None,
            csrf: pages.key().csrf_value(&token),
            label: texts.get("visitor_withdraw_button"),
        }),
        ..Message::new("visitor_withdraw_title")
    };
    Ok(pages.message(language, StatusCode::OK, content))
}

/// POST `/withdraw/{token}`, the withdraw button (of the withdraw page or the access
/// page): erases every sign-up of the sign-up's address as `joinform forget` does, by
/// `visitor` in the audit trail, and answers once the files are clean.
#[tracing::instrument(name = "visitor_withdraw", skip_all, fields(id = tracing::field::Empty))]
pub async fn withdraw(
    request: HttpRequest,
    token: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ErrorResponse> {
    let pages = pages(&request, &state)?;
    let token = token.into_inner();
    let Linked {
        id,
        stored,
        language,
    } = match pages.open(&request, LinkPurpose::Withdraw, &token).await {
        Ok(linked) => linked,
        Err(answer) => return answer,
    };
    let fail = |error: ApiError| refuse(&request, language, error);
    pages
        .posted(&request, payload, Some(&token))
        .await
        .map_err(fail)?;
    if stored.is_none() {
        return Ok(pages.nothing_stored(language));
    }
    let secret = pages.secret.clone();
    let report = state
        .writer
        .erase(move |connection| {
            let Some(key) = submissions::address_key_of(connection, id)? else {
                return Ok(None);
            };
            // A sealed row's key is the hash itself.
            let hash = erasure::stored_key_hash(&secret, &key);
            erasure::forget(
                connection,
                &key,
                &hash,
                secret.audit_key_check(),
                audit::VISITOR_ACTOR,
            )
            .map(Some)
        })
        .await
        .map_err(|error| fail(error.into()))?;
    let Some(report) = report else {
        return Ok(pages.nothing_stored(language));
    };
    tracing::info!(
        submissions = report.submissions,
        unsent_notifications = report.unsent_notifications,
        "sign-ups withdrawn by their visitor"
    );
    let texts = Texts::new(language);
    // Mails that already told organisers are beyond joinform's reach: the page says
    // so, and where the privacy notice is, which says how to reach the organisation.
    let content = Message {
        paragraphs: vec![
            texts.get("visitor_withdrawn_text").to_owned(),
            texts.get("visitor_withdrawn_note").to_owned(),
        ],
        linked: pages.privacy_sentence(texts),
        ..Message::new("visitor_withdrawn_title")
    };
    Ok(pages.message(language, StatusCode::OK, content))
}

/// GET `/my-data`: the form that asks for an address.
pub async fn my_data_form(
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ErrorResponse> {
    let pages = pages(&request, &state)?;
    let language = pages.layout.language_of(&request);
    Ok(my_data_form_page(pages, language, StatusCode::OK, "", None))
}

fn my_data_form_page(
    pages: &VisitorPages,
    language: &'static str,
    status: StatusCode,
    value: &str,
    error: Option<String>,
) -> HttpResponse {
    let texts = Texts::new(language);
    let page = MyDataForm {
        frame: pages
            .layout
            .frame(language, texts.get("visitor_my_data_title")),
        texts,
        logo_url: &pages.logo_url,
        value,
        error,
    }
    .render();
    pages.layout.respond(status, language, page)
}

/// POST `/my-data`: queues the access link for the address when it is stored and had
/// no mail today, and answers the same page either way (see the module's notes). An
/// entry that is not an address gets the form back with its problem (422).
#[tracing::instrument(name = "visitor_my_data", skip_all)]
pub async fn request_my_data(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ErrorResponse> {
    let pages = pages(&request, &state)?;
    let language = pages.layout.language_of(&request);
    let posted = pages
        .posted(&request, payload, None)
        .await
        .map_err(|error| refuse(&request, language, error))?;
    let typed = posted.email.unwrap_or_default();
    let Some(key) = erasure::address_key(&typed) else {
        let problem = if typed.trim().is_empty() {
            FieldProblem::Required
        } else {
            FieldProblem::InvalidEmail
        };
        let error = Texts::new(language).field_problem(problem);
        return Ok(my_data_form_page(
            pages,
            language,
            StatusCode::UNPROCESSABLE_ENTITY,
            &typed,
            Some(error),
        ));
    };
    let address_hash = pages.addresses.hash(&key);
    let message_domain = state.message_domain.clone();
    // A sealed row's `email_key` is the address's keyed hash, not the address.
    let stored_key = if state.sealer.is_some() {
        erasure::address_hash(&pages.secret, &key)
    } else {
        key.clone()
    };
    let row = SubmissionId::generate();
    // Whether a mail was queued goes nowhere but into memory (a sealed installation's
    // mail): nothing after this point may depend on it, not the answer, not a log line.
    let queued = state
        .writer
        .run(move |connection| {
            visitor_mails::request_access_as(
                connection,
                row,
                &stored_key,
                &address_hash,
                &message_domain,
                Timestamp::now(),
            )
        })
        .await
        .map_err(|error| refuse(&request, language, error))?;
    if let Some(mails) = &state.sealed_visitor_mails {
        hold_sealed_access_mail(mails, row, queued, &key, language);
    }
    // Woken either way: the worker finding nothing costs as much as a lookup.
    state.delivery.notify_one();
    let texts = Texts::new(language);
    let content = Message {
        // What to do when nothing comes, in fixed words: the same for every address.
        paragraphs: vec![
            texts.get("visitor_my_data_sent_text").to_owned(),
            texts.get("visitor_my_data_sent_later").to_owned(),
        ],
        ..Message::new("visitor_my_data_sent_title")
    };
    Ok(pages.message(language, StatusCode::OK, content))
}

/// Sealed storage: builds the access mail `request_access_as` queued under outbox row
/// `row`, to `address` as typed, and holds it in memory until the worker sends it;
/// the server cannot read the address from the row. When nothing was queued, a mail
/// is built all the same and dropped, so that the answer takes as long either way.
fn hold_sealed_access_mail(
    mails: &crate::visitor::SealedVisitorMails,
    row: SubmissionId,
    queued: Option<visitor_mails::AccessQueued>,
    address: &str,
    language: &'static str,
) {
    let now = Timestamp::now();
    let Some(queued) = queued else {
        // A stand-in for an address stored nowhere: its id and section are made up.
        if let Some(country) = crate::domain::CountryCode::all().next() {
            let stand_in = visitor_mails::AccessQueued {
                about: SubmissionId::generate(),
                section: String::new(),
                country,
                visitor_language: None,
            };
            drop(mails.build_access(row, &stand_in, address, language, now));
        }
        return;
    };
    match mails.build_access(row, &queued, address, language, now) {
        Ok(Some(message)) => {
            if let Err(full) = mails.hold(row, message) {
                tracing::warn!(%row, error = %full, "the access mail is not held: it will fail");
            }
        }
        Ok(None) => {}
        Err(error) => {
            tracing::error!(%row, %error, "the access mail cannot be built: it will fail");
        }
    }
}

/// GET `/my-data/{token}`: every field of every sign-up of the address, and the button
/// that withdraws them all. The audit row is committed with the read, before anything
/// is shown; a HEAD reads without one, since it shows nothing.
#[tracing::instrument(name = "visitor_access", skip_all, fields(id = tracing::field::Empty))]
pub async fn my_data(
    request: HttpRequest,
    token: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ErrorResponse> {
    let pages = pages(&request, &state)?;
    let token = token.into_inner();
    let id = match pages.verify(LinkPurpose::Access, &token) {
        Ok(id) => id,
        Err(failure) => {
            return pages
                .refuse_link(&request, LinkPurpose::Access, &token, failure)
                .await;
        }
    };
    let sign_ups = if super::is_head(&request) {
        pages
            .read(move |connection| submissions::of_same_address(connection, id))
            .await
    } else {
        state
            .writer
            .run(move |connection| {
                let sign_ups = submissions::of_same_address(connection, id)?;
                if !sign_ups.is_empty() {
                    let count = u64::try_from(sign_ups.len()).unwrap_or(u64::MAX);
                    audit::record(
                        connection,
                        audit::VISITOR_ACTOR,
                        Action::Access,
                        &json!({ "submissions": count }),
                        count,
                    )?;
                }
                Ok(sign_ups)
            })
            .await
            .map_err(ApiError::Store)
    }
    .map_err(|error| refuse_negotiated(&request, error))?;
    let named = sign_ups
        .iter()
        .find(|s| s.id == id)
        .or_else(|| sign_ups.last())
        .and_then(|s| s.visitor_language.as_deref());
    let language = pages.language(&request, named);
    if sign_ups.is_empty() {
        return Ok(pages.nothing_stored(language));
    }
    tracing::info!(
        submissions = sign_ups.len(),
        "a visitor was shown their data"
    );
    let texts = Texts::new(language);
    let withdraw_token = pages.links.withdraw_token(id, Timestamp::now());
    let page = AccessPage {
        frame: pages
            .layout
            .frame(language, texts.get("visitor_access_title")),
        texts,
        logo_url: &pages.logo_url,
        sign_ups: sign_ups
            .iter()
            .map(|s| SignUpView::of(s, texts, &state))
            .collect(),
        withdraw: Button {
            csrf: pages.key().csrf_value(&withdraw_token),
            // Relative to /my-data/{token}: the withdraw page's own address.
            action: Some(format!("../withdraw/{withdraw_token}")),
            label: texts.get("visitor_withdraw_button"),
        },
    }
    .render();
    Ok(pages.layout.respond(StatusCode::OK, language, page))
}
