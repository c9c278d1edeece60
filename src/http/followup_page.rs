//! The follow-up pages on the public listener (issue 15), where an organiser lands from
//! a link in a follow-up mail:
//!
//! - GET `/followup/{token}` (a person token): one sign-up, its first name, country,
//!   sign-up date and state, and a button per state it can be marked with.
//! - GET `/followup/section/{token}` (a section token): the section's sign-ups nobody
//!   has contacted yet, oldest first, each with the same buttons.
//! - POST to either, from those buttons: marks the sign-up through the writer (by
//!   `link`), then 303 See Other back to the page, which says what was saved.
//!
//! A GET never changes anything (mail scanners open every link). The buttons are plain
//! forms, so the pages work without JavaScript; each carries the token's
//! [`links::csrf_value`], and a POST from another site (`Sec-Fetch-Site: cross-site`,
//! or an `Origin` that is neither this server nor `server.public_url`) is refused
//! before anything is read.
//!
//! The pages show no address, phone number or message, and are in the section's
//! language (templates/followup/<tag>.toml, [`super::followup_texts`]) inside the
//! layout every page shares. Forms and redirects use relative references (the token
//! alone), so the pages work behind a proxy that serves them under a path prefix.
//! Every refusal is an [`ApiError::Link`], mapped to its status in `error.rs`.
//! Without follow-up (`Settings::followup_enabled`) these paths are 404 like any other
//! unknown path.

use std::sync::Arc;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::config::{RateLimitSettings, Settings};
use crate::domain::{FollowupState, SubmissionId, Timestamp};
use crate::followup::links::{self, LinkError, LinkKey, PersonToken, SectionToken};
use crate::i18n::CountryNames;
use crate::metrics::LimitedEndpoint;
use crate::routing::Routing;
use crate::spam::RateLimiter;
use crate::store::followup::{self as followup_store, FollowupEntry};
use crate::store::{Database, StoreError};

use super::AppState;
use super::body::read_limited;
use super::error::{ApiError, ErrorResponse};
use super::followup_texts::{self, FollowupTexts};
use super::pages::{Frame, Layout, filters, phrase_around};

/// Who a mark made through a link is recorded as (`followup_by`, the audit trail).
const MARKED_BY: &str = "link";

/// The most a page's form sends: a state, an id and a CSRF value, with room to spare.
const MAX_BODY_BYTES: usize = 1024;

/// Why a follow-up page is not shown or a mark not saved. The statuses are in
/// `error.rs`, with every other error's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkFailure {
    /// Not a link this server made (malformed, altered, another secret), or a sign-up
    /// that is not in the link's section: 404.
    #[error("not found")]
    Unknown,
    /// A genuine link past its expiry: 410.
    #[error("the link has expired; use the link in a newer mail")]
    Expired,
    /// A genuine link to a sign-up that has been erased: 410.
    #[error("the sign-up is no longer here")]
    Gone,
    /// A POST without the page's CSRF value, or from another site: 403.
    #[error("the form was not sent from its page")]
    Forbidden,
    /// A POST whose `state` is not one a sign-up can be marked with: 400.
    #[error("`state` must be contacted, joined, declined or unreachable")]
    BadState,
}

impl LinkFailure {
    /// The keys of the error page's heading and sentence (templates/followup/).
    pub(super) fn page_keys(self) -> (&'static str, &'static str) {
        match self {
            Self::Unknown => ("error_unknown_title", "error_unknown_text"),
            Self::Expired => ("error_expired_title", "error_expired_text"),
            Self::Gone => ("error_gone_title", "error_gone_text"),
            Self::Forbidden => ("error_forbidden_title", "error_forbidden_text"),
            Self::BadState => ("error_bad_state_title", "error_forbidden_text"),
        }
    }
}

impl From<LinkError> for LinkFailure {
    fn from(error: LinkError) -> Self {
        match error {
            LinkError::Malformed | LinkError::Tampered => Self::Unknown,
            LinkError::Expired => Self::Expired,
        }
    }
}

/// A refusal and, when the link named a section, that section's language to word it in.
type Refusal = (ApiError, Option<&'static str>);

/// What the follow-up pages need, built at start-up when follow-up is on.
pub struct FollowupPages {
    key: LinkKey,
    /// Pages read on connections of their own; marks go through the writer.
    database: Database,
    layout: Arc<Layout>,
    countries: CountryNames,
    /// The origin of `server.public_url`, which a POST's `Origin` may name.
    public_origin: Option<String>,
}

impl std::fmt::Debug for FollowupPages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FollowupPages")
            .field("public_origin", &self.public_origin)
            .finish_non_exhaustive()
    }
}

impl FollowupPages {
    /// `key` signs the links (`LinkKey::from_secret`), `layout` is every page's.
    pub fn new(settings: &Settings, key: LinkKey, database: Database, layout: Arc<Layout>) -> Self {
        let public_origin = settings
            .server
            .public_url()
            .and_then(|url| url::Url::parse(url).ok())
            .map(|url| url.origin().ascii_serialization());
        Self {
            key,
            database,
            layout,
            countries: CountryNames::build(followup_texts::shipped()),
            public_origin,
        }
    }

    /// The language a section's pages are in: its `language` where the follow-up pages
    /// have it, else English (also for a section no longer configured).
    fn language_of_section(routing: &Routing, section: &str) -> &'static str {
        routing.by_name(section).map_or_else(
            || followup_texts::resolve(""),
            |section| followup_texts::resolve(section.language.as_str()),
        )
    }

    /// Runs `query` on a read connection of its own, on a blocking thread: no
    /// connection is held across an `.await`.
    async fn read<T: Send + 'static>(
        &self,
        query: impl FnOnce(&rusqlite::Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, ApiError> {
        super::read_apart(&self.database, "a follow-up page", query).await
    }

    /// The sign-up a person token names, once its signature holds for the sign-up's
    /// section and it has not expired, with the section's language.
    ///
    /// A genuine link to a sign-up that is gone (erased) is told apart from a made-up
    /// one by checking it against each configured section: 410 for the first, 404 for
    /// the second. The row is read before the signature is checked, because the
    /// signature covers the row's section; what a made-up token is answered (404) and
    /// shown (nothing of the row) does not depend on the row, only the answer's timing
    /// may differ by whether its id exists, and ids are random UUIDs nobody can guess.
    async fn open_person(
        &self,
        routing: &Routing,
        token: &str,
    ) -> Result<(FollowupEntry, &'static str), Refusal> {
        let decoded =
            PersonToken::decode(token).map_err(|error| (LinkFailure::from(error).into(), None))?;
        let id = decoded.id;
        let entry = self
            .read(move |connection| followup_store::entry(connection, id))
            .await
            .map_err(|error| (error, None))?;
        let now = Timestamp::now();
        let Some(entry) = entry else {
            for section in routing.sections_and_fallback() {
                let failure = match decoded.check(&self.key, &section.name, now) {
                    Ok(()) => LinkFailure::Gone,
                    Err(LinkError::Expired) => LinkFailure::Expired,
                    Err(_) => continue,
                };
                let language = followup_texts::resolve(section.language.as_str());
                return Err((failure.into(), Some(language)));
            }
            return Err((LinkFailure::Unknown.into(), None));
        };
        match decoded.check(&self.key, &entry.section, now) {
            Ok(()) => {
                tracing::Span::current().record("id", tracing::field::display(entry.id));
                let language = Self::language_of_section(routing, &entry.section);
                Ok((entry, language))
            }
            Err(LinkError::Expired) => Err((
                LinkFailure::Expired.into(),
                Some(Self::language_of_section(routing, &entry.section)),
            )),
            Err(_) => Err((LinkFailure::Unknown.into(), None)),
        }
    }

    /// The section a section token names, with its language.
    fn open_section(
        &self,
        routing: &Routing,
        token: &str,
    ) -> Result<(String, &'static str), Refusal> {
        let section = SectionToken::verify(&self.key, token, Timestamp::now())
            .map_err(|error| (LinkFailure::from(error).into(), None))?;
        let language = Self::language_of_section(routing, &section);
        Ok((section, language))
    }

    /// Whether a POST comes from another site ([`super::is_cross_site`]).
    fn is_cross_site(&self, request: &HttpRequest) -> bool {
        super::is_cross_site(request, self.public_origin.as_deref())
    }

    /// What a sign-up's row of a page shows.
    fn person(&self, words: FollowupTexts, entry: &FollowupEntry, now: Timestamp) -> Person {
        let country = self
            .countries
            .list(words.language())
            .iter()
            .find(|(code, _)| *code == entry.country)
            .map_or_else(
                || entry.country.as_str().to_owned(),
                |(_, name)| name.clone(),
            );
        Person {
            id: entry.id.to_string(),
            first_name: isolated(&entry.first_name()),
            country,
            signed_up: date_of(entry.created_at),
            age: age(words, entry.waiting_since, now),
        }
    }

    /// The buttons, the current state's marked.
    fn marks(words: FollowupTexts, current: Option<FollowupState>) -> Vec<Mark> {
        FollowupState::MARKS
            .iter()
            .map(|&state| Mark {
                value: state.as_str(),
                label: state_label(words, state),
                current: current == Some(state),
            })
            .collect()
    }

    fn respond(&self, language: &'static str, page: askama::Result<String>) -> HttpResponse {
        self.layout.respond(StatusCode::OK, language, page)
    }
}

/// One sign-up, as the pages show it: nothing that reaches the person.
struct Person {
    id: String,
    /// In a first-strong isolate, so a name in another script keeps its direction.
    first_name: String,
    country: String,
    /// `YYYY-MM-DD`, in UTC.
    signed_up: String,
    /// "3 days".
    age: String,
}

/// A button that marks a sign-up.
struct Mark {
    value: &'static str,
    label: &'static str,
    /// The sign-up has this state now.
    current: bool,
}

/// templates/followup/person.html.
#[derive(Template)]
#[template(path = "followup/person.html")]
struct PersonPage<'a> {
    frame: Frame<'a>,
    words: FollowupTexts,
    intro: String,
    person: Person,
    state: &'static str,
    /// When the state was set, and the sentence around its place (`since {time}`).
    since: Option<(String, Vec<String>)>,
    saved: Option<String>,
    action: &'a str,
    csrf: String,
    marks: Vec<Mark>,
}

/// templates/followup/section.html.
#[derive(Template)]
#[template(path = "followup/section.html")]
struct SectionPage<'a> {
    frame: Frame<'a>,
    words: FollowupTexts,
    intro: String,
    saved: Option<String>,
    action: &'a str,
    csrf: String,
    people: Vec<Person>,
    /// "N more are waiting", when the list holds only the first [`SECTION_LIST_LIMIT`].
    more: Option<String>,
    marks: Vec<Mark>,
}

/// The most sign-ups a section's list shows, the longest-waiting first: a section with
/// thousands waiting must not make every load of its page read and render them all.
pub const SECTION_LIST_LIMIT: usize = 200;

/// `?saved=contacted`, as the redirect after a mark sets it.
#[derive(Debug, Default, Deserialize)]
struct SavedQuery {
    saved: Option<String>,
}

fn saved_of(request: &HttpRequest) -> Option<FollowupState> {
    web::Query::<SavedQuery>::from_query(request.query_string())
        .ok()?
        .into_inner()
        .saved
        .and_then(|text| FollowupState::parse_mark(&text).ok())
}

/// The fields a page's form posts; the first of each counts.
#[derive(Debug, Default)]
struct Posted {
    state: Option<String>,
    csrf: Option<String>,
    id: Option<String>,
}

impl Posted {
    fn parse(body: &[u8]) -> Self {
        let mut posted = Self::default();
        for (name, value) in url::form_urlencoded::parse(body) {
            let slot = match name.as_ref() {
                "state" => &mut posted.state,
                "csrf" => &mut posted.csrf,
                "id" => &mut posted.id,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(value.into_owned());
            }
        }
        posted
    }

    /// The CSRF value checked against `token`, then the state parsed.
    fn check(&self, key: &LinkKey, token: &str) -> Result<FollowupState, LinkFailure> {
        let csrf = self.csrf.as_deref().unwrap_or_default();
        if !links::csrf_ok(key, token, csrf) {
            return Err(LinkFailure::Forbidden);
        }
        FollowupState::parse_mark(self.state.as_deref().unwrap_or_default())
            .map_err(|_| LinkFailure::BadState)
    }
}

fn state_label(words: FollowupTexts, state: FollowupState) -> &'static str {
    words.get(match state {
        FollowupState::New => "state_new",
        FollowupState::Contacted => "state_contacted",
        FollowupState::Joined => "state_joined",
        FollowupState::Declined => "state_declined",
        FollowupState::Unreachable => "state_unreachable",
    })
}

/// Text from a visitor or the configuration inside a translated sentence: a
/// first-strong isolate (FSI … PDI), which the `phrase` filter makes a `<bdi>`.
fn isolated(text: &str) -> String {
    format!("\u{2068}{text}\u{2069}")
}

/// `YYYY-MM-DD` of an instant, in UTC.
fn date_of(at: Timestamp) -> String {
    at.date_text()
}

/// `YYYY-MM-DD HH:MM UTC` of an instant.
fn minute_of(at: Timestamp) -> String {
    format!("{} UTC", at.minute_text())
}

/// How long ago `since` was, in whole days: "today", "1 day", "3 days".
fn age(words: FollowupTexts, since: Timestamp, now: Timestamp) -> String {
    match now.since(since).as_secs() / 86_400 {
        0 => words.get("age_today").to_owned(),
        1 => words.get("age_one_day").to_owned(),
        days => words.fill("age_days", "n", &days.to_string()),
    }
}

/// The follow-up pages' limiter: `rate_limit.followup_per_minute` with
/// `rate_limit.followup_burst` per client, and `rate_limit.global_per_second` for
/// everyone together. A well-formed link is looked up in the database, so this bounds
/// what a client guessing at links costs.
pub fn limiter(settings: &RateLimitSettings) -> RateLimiter {
    RateLimiter::new(
        settings.followup_per_minute,
        settings.followup_burst,
        settings.global_per_second,
    )
}

/// The pages, when follow-up is on and the client is within its limits: else 404 as
/// for any unknown path, or 429.
fn pages<'a>(
    request: &HttpRequest,
    state: &'a AppState,
) -> Result<&'a FollowupPages, ErrorResponse> {
    let pages = state
        .followup
        .as_ref()
        .ok_or_else(|| ErrorResponse::of(request, ApiError::NotFound))?;
    super::within_limit(
        request,
        state,
        &state.followup_limiter,
        LimitedEndpoint::Followup,
    )?;
    Ok(pages)
}

/// A refusal as the answer to `request`: in the section's language when the link
/// named one, else in the language negotiated for the request.
fn refuse(request: &HttpRequest, (error, language): Refusal) -> ErrorResponse {
    let response = ErrorResponse::of(request, error);
    match language {
        Some(language) => response.in_language(language),
        None => response,
    }
}

/// 303 See Other back to the page the button was on (a relative reference: the token,
/// whose path the request came to), saying what was saved.
fn back_to(token: &str, saved: FollowupState) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("{token}?saved={saved}")))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .finish()
}

/// Marks sign-up `id` with `to` through the writer, if it is (still) in `section`:
/// `false` when it is not (erased meanwhile, or another section's).
async fn mark(
    state: &AppState,
    id: SubmissionId,
    section: String,
    to: FollowupState,
) -> Result<bool, ApiError> {
    state
        .writer
        .run(
            move |connection| match followup_store::entry(connection, id)? {
                Some(entry) if entry.section == section => {
                    let marked =
                        followup_store::mark(connection, id, to, MARKED_BY, Timestamp::now())?;
                    Ok(marked.is_some())
                }
                _ => Ok(false),
            },
        )
        .await
        .map_err(ApiError::Store)
}

/// GET `/followup/{token}`: one sign-up. Changes nothing.
#[tracing::instrument(name = "followup_person", skip_all, fields(id = tracing::field::Empty))]
pub async fn person(
    request: HttpRequest,
    token: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ErrorResponse> {
    let pages = pages(&request, &state)?;
    let token = token.into_inner();
    let (entry, language) = pages
        .open_person(&state.routing, &token)
        .await
        .map_err(|refusal| refuse(&request, refusal))?;
    let words = FollowupTexts::new(language);
    let now = Timestamp::now();
    let title = words.get("title");
    let saved = saved_of(&request)
        .filter(|saved| *saved == entry.state)
        .map(|saved| words.fill("saved", "state", state_label(words, saved)));
    let page = PersonPage {
        frame: pages.layout.frame(language, title),
        words,
        intro: words.fill("person_intro", "section", &isolated(&entry.section)),
        person: pages.person(words, &entry, now),
        state: state_label(words, entry.state),
        since: (entry.state != FollowupState::New).then(|| {
            (
                minute_of(entry.state_at),
                phrase_around(words.get("state_since"), "{time}"),
            )
        }),
        saved,
        action: &token,
        csrf: links::csrf_value(&pages.key, &token),
        marks: FollowupPages::marks(words, Some(entry.state)),
    }
    .render();
    Ok(pages.respond(language, page))
}

/// POST `/followup/{token}`: marks the sign-up, then back to its page.
#[tracing::instrument(name = "followup_mark", skip_all, fields(id = tracing::field::Empty, state = tracing::field::Empty))]
pub async fn mark_person(
    request: HttpRequest,
    token: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ErrorResponse> {
    let pages = pages(&request, &state)?;
    let token = token.into_inner();
    let (entry, language) = pages
        .open_person(&state.routing, &token)
        .await
        .map_err(|refusal| refuse(&request, refusal))?;
    let fail = |error: ApiError| refuse(&request, (error, Some(language)));
    // After the token, so the refusal is in the section's language; nothing is read
    // from the body or written before it.
    if pages.is_cross_site(&request) {
        return Err(fail(LinkFailure::Forbidden.into()));
    }
    let body = read_limited(&request, payload, MAX_BODY_BYTES)
        .await
        .map_err(|error| fail(error.into()))?;
    let to = Posted::parse(&body)
        .check(&pages.key, &token)
        .map_err(|failure| fail(failure.into()))?;
    tracing::Span::current().record("state", to.as_str());
    if !mark(&state, entry.id, entry.section, to)
        .await
        .map_err(fail)?
    {
        return Err(fail(LinkFailure::Gone.into()));
    }
    Ok(back_to(&token, to))
}

/// GET `/followup/section/{token}`: the section's sign-ups still `new`, oldest first.
/// Changes nothing.
#[tracing::instrument(name = "followup_section", skip_all, fields(section = tracing::field::Empty))]
pub async fn section(
    request: HttpRequest,
    token: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ErrorResponse> {
    let pages = pages(&request, &state)?;
    let token = token.into_inner();
    let (section, language) = pages
        .open_section(&state.routing, &token)
        .map_err(|refusal| refuse(&request, refusal))?;
    tracing::Span::current().record("section", section.as_str());
    let (waiting, total) = {
        let section = section.clone();
        pages
            .read(move |connection| {
                let listed = followup_store::waiting(
                    connection,
                    Some(std::slice::from_ref(&section)),
                    None,
                    Some(SECTION_LIST_LIMIT),
                )?;
                let total = followup_store::open_counts(connection)?
                    .into_iter()
                    .find(|(name, state, _)| *name == section && *state == FollowupState::New)
                    .map_or(0, |(_, _, count)| count);
                Ok((listed, total))
            })
            .await
            .map_err(|error| refuse(&request, (error, Some(language))))?
    };
    let listed = u64::try_from(waiting.len()).unwrap_or(u64::MAX);
    let words = FollowupTexts::new(language);
    let now = Timestamp::now();
    let page = SectionPage {
        frame: pages.layout.frame(language, words.get("title")),
        words,
        intro: words.fill("section_intro", "section", &isolated(&section)),
        saved: saved_of(&request)
            .map(|saved| words.fill("saved", "state", state_label(words, saved))),
        action: &token,
        csrf: links::csrf_value(&pages.key, &token),
        people: waiting
            .iter()
            .map(|entry| pages.person(words, entry, now))
            .collect(),
        more: (total > listed)
            .then(|| words.fill("more_waiting", "count", &(total - listed).to_string())),
        marks: FollowupPages::marks(words, None),
    }
    .render();
    Ok(pages.respond(language, page))
}

/// POST `/followup/section/{token}`: marks one of the section's sign-ups (`id`), then
/// back to the list. An id that is not the section's is 404, as if it did not exist.
#[tracing::instrument(name = "followup_section_mark", skip_all, fields(section = tracing::field::Empty, id = tracing::field::Empty, state = tracing::field::Empty))]
pub async fn mark_in_section(
    request: HttpRequest,
    token: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ErrorResponse> {
    let pages = pages(&request, &state)?;
    let token = token.into_inner();
    let (section, language) = pages
        .open_section(&state.routing, &token)
        .map_err(|refusal| refuse(&request, refusal))?;
    tracing::Span::current().record("section", section.as_str());
    let fail = |error: ApiError| refuse(&request, (error, Some(language)));
    // As for a person's page: after the token, in the section's language.
    if pages.is_cross_site(&request) {
        return Err(fail(LinkFailure::Forbidden.into()));
    }
    let body = read_limited(&request, payload, MAX_BODY_BYTES)
        .await
        .map_err(|error| fail(error.into()))?;
    let posted = Posted::parse(&body);
    let to = posted
        .check(&pages.key, &token)
        .map_err(|failure| fail(failure.into()))?;
    let id = posted
        .id
        .as_deref()
        .and_then(SubmissionId::parse)
        .ok_or_else(|| fail(LinkFailure::Unknown.into()))?;
    let span = tracing::Span::current();
    span.record("id", tracing::field::display(id));
    span.record("state", to.as_str());
    if !mark(&state, id, section, to).await.map_err(fail)? {
        return Err(fail(LinkFailure::Unknown.into()));
    }
    Ok(back_to(&token, to))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64) -> Timestamp {
        Timestamp::from_unix_seconds(seconds).unwrap()
    }

    #[test]
    fn ages_read_in_whole_days() {
        let words = FollowupTexts::new("en");
        let day = 86_400;
        let start = 1_750_000_000;
        for (after, expected) in [
            (0, "today"),
            (day - 1, "today"),
            (day, "1 day"),
            (3 * day + 5, "3 days"),
        ] {
            assert_eq!(age(words, at(start), at(start + after)), expected);
        }
        assert_eq!(age(FollowupTexts::new("de"), at(0), at(2 * day)), "2 Tage");
    }

    #[test]
    fn instants_show_as_dates_and_minutes_in_utc() {
        let instant = at(1_750_000_000);
        assert_eq!(date_of(instant), "2025-06-15");
        assert_eq!(minute_of(instant), "2025-06-15 15:06 UTC");
    }

    #[test]
    fn a_post_is_read_field_by_field_first_value_first() {
        let posted = Posted::parse(b"state=joined&csrf=a%2Bb&state=declined&id=x&other=1");
        assert_eq!(posted.state.as_deref(), Some("joined"));
        assert_eq!(posted.csrf.as_deref(), Some("a+b"));
        assert_eq!(posted.id.as_deref(), Some("x"));
        let empty = Posted::parse(b"");
        assert!(empty.state.is_none() && empty.csrf.is_none() && empty.id.is_none());
    }
}
