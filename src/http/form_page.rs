//! The join form page (GET `/`, GET `/join`) and the thank-you page (GET
//! `/join/thanks`), in the visitor's language; and the form coming back with the
//! visitor's values and every problem marked when a plain HTML post fails validation.
//!
//! The page works without JavaScript: it is a plain form that posts to `/join`. A small
//! inline script (templates/form.js), where it runs, posts the same fields with fetch,
//! shows problems in place, renews the form token when the page sat open long, and
//! solves a proof-of-work challenge from GET `/join/challenge` while the visitor types.
//! Nothing is loaded from anywhere else, so the visit leaks to no third party.
//!
//! This module gathers what the page shows: the fields in order, each with its label,
//! value and problem, from the configuration and the translations. The markup is
//! templates/form.html and templates/thanks.html, inside the layout every page shares
//! ([`super::pages`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::config::Settings;
use crate::domain::{
    CountryCode, ExtraFieldSpec, FormSchema, NewSubmission, RawForm, RawValue, ValidationErrors,
};
use crate::i18n::{self, CountryNames, Texts};

use super::AppState;
use super::pages::{Frame, Layout, SCRIPT, filters, phrase_around};

/// The hidden field that names the language of the page the visitor filled in. The
/// server reads its own consent text and error messages for that language; it never
/// takes wording from the client.
pub const LANGUAGE_FIELD: &str = "_lang";

/// Where the page's script fetches a fresh form token.
const TOKEN_PATH: &str = "/join/token";

/// Where the page's script fetches the proof-of-work challenge it solves while the
/// visitor types (issue 17); the solution goes into the hidden field
/// [`crate::domain::PROOF_OF_WORK_FIELD`], empty without the script.
const CHALLENGE_PATH: &str = "/join/challenge";

/// The built-in success page, which speaks the visitor's language when told it.
const THANKS_PATH: &str = "/join/thanks";

/// What the form pages need, built once at start-up.
pub struct FormPage {
    layout: Arc<Layout>,
    countries: CountryNames,
    title: String,
    intro: String,
    logo_url: String,
    privacy_url: String,
    honeypot_field: String,
    consent_required: bool,
    extra_fields: Vec<ExtraFieldSpec>,
    success_url: String,
    /// `spam.token_max_age`, for a page that carries a token it did not issue.
    token_ttl_seconds: u64,
}

/// The query of the thank-you page after a double opt-in sign-up: `?confirm=1`.
#[derive(Debug, Default, Deserialize)]
struct ConfirmQuery {
    confirm: Option<String>,
}

/// The query of a form page that preselects a country: `?country=AT`.
#[derive(Debug, Default, Deserialize)]
struct CountryQuery {
    country: Option<String>,
}

/// The form token a page carries, and what its script needs to know about it.
#[derive(Debug, Clone, Default)]
pub struct PageToken {
    pub value: String,
    /// A post sooner than this after the page loaded would be refused as spam.
    pub wait_seconds: u64,
    /// After this the token is spam; the script renews it before then.
    pub ttl_seconds: u64,
}

/// What the visitor typed, to put back into the form.
#[derive(Debug, Clone, Default)]
pub struct FormValues {
    text: HashMap<String, String>,
    consent: bool,
}

impl FormValues {
    /// The fields of a post, as sent (JSON `true` for consent counts as ticked).
    pub fn from_raw(raw: &RawForm, schema: &FormSchema) -> Self {
        let mut values = Self::default();
        let names = crate::domain::STANDARD_FIELDS
            .iter()
            .copied()
            .chain(schema.extra_fields.iter().map(|f| f.name.as_str()));
        for name in names {
            if let Some(RawValue::Text(text)) = raw.get(name) {
                values.text.insert(name.to_owned(), text.clone());
            }
        }
        values.consent = match raw.get("consent") {
            Some(RawValue::Bool(given)) => *given,
            Some(RawValue::Text(text)) => matches!(
                text.trim().to_ascii_lowercase().as_str(),
                "on" | "true" | "yes" | "1"
            ),
            _ => false,
        };
        values
    }

    fn get(&self, name: &str) -> &str {
        self.text.get(name).map_or("", String::as_str)
    }
}

/// templates/form.html.
#[derive(Template)]
#[template(path = "form.html")]
struct FormTemplate<'a> {
    frame: Frame<'a>,
    texts: Texts,
    logo_url: &'a str,
    heading: String,
    intro: String,
    languages: Vec<LanguageLink>,
    /// Kept when the visitor follows a language link.
    country: Option<CountryCode>,
    summary: Vec<SummaryItem>,
    token_path: &'static str,
    token: &'a PageToken,
    challenge_path: &'static str,
    proof_field: &'static str,
    thanks: String,
    /// Where the script goes when the answer says the visitor must confirm by mail.
    thanks_confirm: String,
    language_field: &'static str,
    language: &'a str,
    fields: Vec<Field>,
    countries: &'a [(CountryCode, String)],
    selected_country: Option<CountryCode>,
    consent: Consent,
    privacy_url: &'a str,
    honeypot_field: &'a str,
    script: &'static str,
}

impl FormTemplate<'_> {
    fn is_selected(&self, code: &CountryCode) -> bool {
        self.selected_country.as_ref() == Some(code)
    }
}

/// templates/thanks.html.
#[derive(Template)]
#[template(path = "thanks.html")]
struct ThanksTemplate<'a> {
    frame: Frame<'a>,
    texts: Texts,
    logo_url: &'a str,
    /// The visitor must still confirm through the mail (double opt-in).
    confirm: bool,
}

/// A link to the page in one shipped language, named in that language.
struct LanguageLink {
    tag: &'static str,
    name: &'static str,
    direction: &'static str,
    /// The page's own language: named, not linked.
    current: bool,
}

/// A line of the error summary; a field the page shows links to it by its label.
struct SummaryItem {
    field: String,
    label: Option<String>,
    message: String,
}

/// The consent checkbox.
struct Consent {
    required: bool,
    checked: bool,
    error: Option<String>,
    /// The sentence around the place of the privacy link.
    sentence: Vec<String>,
}

impl FormPage {
    /// The settings were checked when loaded.
    pub fn from_settings(settings: &Settings, schema: &FormSchema) -> Self {
        let form = &settings.form;
        Self {
            layout: Arc::new(Layout::from_settings(
                form,
                &settings.server.allowed_origins,
            )),
            countries: CountryNames::build(i18n::shipped()),
            title: form.title.clone(),
            intro: form.intro.clone(),
            logo_url: form.logo_url.clone(),
            privacy_url: form.privacy_url.clone(),
            honeypot_field: settings.spam.honeypot_field.clone(),
            consent_required: schema.consent_required,
            extra_fields: schema.extra_fields.clone(),
            success_url: form.success_url.clone(),
            token_ttl_seconds: settings.spam.token_max_age.get().as_secs(),
        }
    }

    /// What every page shares: style, policy, language negotiation.
    pub fn layout(&self) -> &Arc<Layout> {
        &self.layout
    }

    /// A page's language: `?lang=`, else the browser's preferences, else the default.
    pub fn language_of(&self, request: &HttpRequest) -> &'static str {
        self.layout.language_of(request)
    }

    /// The language a post asks to be answered in: that of the page it came from, else
    /// `?lang=` or Accept-Language. `None` when it says nothing: an API client then
    /// keeps the English messages it always had.
    pub fn language_of_post(&self, request: &HttpRequest, raw: &RawForm) -> Option<&'static str> {
        posted_language(raw).or_else(|| super::negotiate::page_language(request))
    }

    /// `form.default_language`, as a shipped language.
    pub fn default_language(&self) -> &'static str {
        self.layout.default_language()
    }

    /// The consent text the visitor agreed to and its language, when the post came from
    /// a page that showed joinform's own consent text (it names its language in
    /// [`LANGUAGE_FIELD`]) and consent was given.
    pub fn consent_record(
        &self,
        raw: &RawForm,
        submission: &NewSubmission,
    ) -> Option<(String, String)> {
        if !submission.consent.0 {
            return None;
        }
        let language = posted_language(raw)?;
        Some((Texts::new(language).consent_text(), language.to_owned()))
    }

    /// Where a successful plain-form post goes. The built-in thank-you page is told the
    /// language, so that it speaks the visitor's, and with `confirm` (the section's
    /// double opt-in) that the visitor must still confirm through the mail. A
    /// `form.success_url` elsewhere is the operator's page, and is left as it is.
    pub fn success_location(&self, language: Option<&str>, confirm: bool) -> String {
        if self.success_url != THANKS_PATH {
            return self.success_url.clone();
        }
        match (language, confirm) {
            (Some(language), false) => format!("{THANKS_PATH}?lang={language}"),
            (Some(language), true) => format!("{THANKS_PATH}?lang={language}&confirm=1"),
            (None, false) => THANKS_PATH.to_owned(),
            (None, true) => format!("{THANKS_PATH}?confirm=1"),
        }
    }

    /// The name of country `code` in `language` (a shipped tag), else its code.
    pub fn country_name(&self, language: &str, code: CountryCode) -> String {
        self.countries
            .list(language)
            .iter()
            .find(|(listed, _)| *listed == code)
            .map_or_else(|| code.as_str().to_owned(), |(_, name)| name.clone())
    }

    /// The form page: empty, or with the visitor's values and problems.
    ///
    /// # Errors
    /// Only if a filter fails, which ours do not.
    pub fn render_form(
        &self,
        language: &'static str,
        values: &FormValues,
        errors: &ValidationErrors,
        token: &PageToken,
    ) -> askama::Result<String> {
        let texts = Texts::new(language);
        let problems: HashMap<&str, String> = errors
            .iter()
            .map(|e| (e.field.as_str(), texts.field_problem(e.problem)))
            .collect();
        let summary = errors
            .iter()
            .map(|error| SummaryItem {
                field: error.field.as_str().to_owned(),
                label: self.label_of(texts, error.field.as_str()),
                message: texts.field_problem(error.problem),
            })
            .collect();
        let field = |name: &str, label: &str, hint: Option<&str>, control: Control| {
            let error = problems.get(name).cloned();
            let id = format!("f-{name}");
            let described: Vec<String> = [
                hint.map(|_| format!("{id}-h")),
                error.as_ref().map(|_| format!("{id}-e")),
            ]
            .into_iter()
            .flatten()
            .collect();
            Field {
                name: name.to_owned(),
                label: label.to_owned(),
                hint: hint.map(str::to_owned),
                required: false,
                value: values.get(name).to_owned(),
                error,
                described: (!described.is_empty()).then(|| described.join(" ")),
                id,
                control,
            }
        };
        let mut fields = vec![
            Field {
                required: true,
                ..field(
                    "name",
                    texts.get("label_name"),
                    None,
                    Control::Input {
                        kind: "text",
                        autocomplete: "name",
                        max: 100,
                    },
                )
            },
            Field {
                required: true,
                ..field(
                    "email",
                    texts.get("label_email"),
                    Some(texts.get("hint_email")),
                    Control::Input {
                        kind: "email",
                        autocomplete: "email",
                        max: 254,
                    },
                )
            },
            Field {
                required: true,
                ..field(
                    "country",
                    texts.get("label_country"),
                    None,
                    Control::Country,
                )
            },
            field(
                "phone",
                texts.get("label_phone"),
                Some(texts.get("hint_phone")),
                Control::Input {
                    kind: "tel",
                    autocomplete: "tel",
                    max: 40,
                },
            ),
            field(
                "city",
                texts.get("label_city"),
                None,
                Control::Input {
                    kind: "text",
                    autocomplete: "address-level2",
                    max: 100,
                },
            ),
        ];
        for extra in &self.extra_fields {
            fields.push(Field {
                required: extra.required,
                ..field(
                    extra.name.as_str(),
                    &configured(&field_label(extra.name.as_str())),
                    None,
                    Control::Input {
                        kind: "text",
                        autocomplete: "off",
                        max: extra.max_chars,
                    },
                )
            });
        }
        fields.push(field(
            "message",
            texts.get("label_message"),
            Some(texts.get("hint_message")),
            Control::TextArea { max: 2000 },
        ));
        let heading = if self.title.is_empty() {
            texts.get("title").to_owned()
        } else {
            configured(&self.title)
        };
        let intro = if self.intro.is_empty() {
            texts.get("intro").to_owned()
        } else {
            configured(&self.intro)
        };
        let title = self.heading(texts);
        FormTemplate {
            frame: self.layout.frame(language, &title),
            texts,
            logo_url: &self.logo_url,
            heading,
            intro,
            languages: i18n::shipped()
                .map(|tag| LanguageLink {
                    tag,
                    name: Texts::new(tag).get("language_name"),
                    direction: super::pages::direction(tag),
                    current: tag == language,
                })
                .collect(),
            country: CountryCode::parse(values.get("country")).ok(),
            summary,
            token_path: TOKEN_PATH,
            token,
            challenge_path: CHALLENGE_PATH,
            proof_field: crate::domain::PROOF_OF_WORK_FIELD,
            thanks: self.success_location(Some(language), false),
            thanks_confirm: self.success_location(Some(language), true),
            language_field: LANGUAGE_FIELD,
            language,
            fields,
            countries: self.countries.list(language),
            selected_country: CountryCode::parse(values.get("country")).ok(),
            consent: Consent {
                required: self.consent_required,
                checked: values.consent,
                error: problems.get("consent").cloned(),
                sentence: phrase_around(texts.get("consent"), "{privacy}"),
            },
            privacy_url: &self.privacy_url,
            honeypot_field: &self.honeypot_field,
            script: SCRIPT,
        }
        .render()
    }

    /// The thank-you page; with `confirm`, it asks the visitor to confirm through the
    /// mail (double opt-in).
    ///
    /// # Errors
    /// Only if a filter fails, which ours do not.
    pub fn render_thanks(&self, language: &'static str, confirm: bool) -> askama::Result<String> {
        let texts = Texts::new(language);
        let title = if confirm {
            "visitor_thanks_confirm_title"
        } else {
            "thanks_title"
        };
        ThanksTemplate {
            frame: self.layout.frame(language, texts.get(title)),
            texts,
            logo_url: &self.logo_url,
            confirm,
        }
        .render()
    }

    /// The page's title: the configured one, else the translation's.
    fn heading(&self, texts: Texts) -> String {
        if self.title.is_empty() {
            texts.get("title").to_owned()
        } else {
            self.title.clone()
        }
    }

    /// The visible label of a field the page shows.
    fn label_of(&self, texts: Texts, name: &str) -> Option<String> {
        let key = match name {
            "name" => "label_name",
            "email" => "label_email",
            "country" => "label_country",
            "phone" => "label_phone",
            "city" => "label_city",
            "message" => "label_message",
            "consent" => "label_consent",
            _ => {
                return self
                    .extra_fields
                    .iter()
                    .find(|f| f.name.as_str() == name)
                    .map(|f| configured(&field_label(f.name.as_str())));
            }
        };
        if key == "label_consent" {
            // The consent checkbox's label is a sentence; the summary names it by its
            // first words instead.
            return Some(first_words(&texts.consent_text()));
        }
        Some(texts.get(key).to_owned())
    }
}

/// One labelled control of the form.
#[derive(Debug, Clone)]
struct Field {
    name: String,
    /// `f-` and the name: the control's id, and the stem of its hint's and error's.
    id: String,
    label: String,
    hint: Option<String>,
    required: bool,
    value: String,
    error: Option<String>,
    /// The ids of the hint and the error shown, for `aria-describedby`.
    described: Option<String>,
    control: Control,
}

#[derive(Debug, Clone, Copy)]
enum Control {
    Country,
    Input {
        kind: &'static str,
        autocomplete: &'static str,
        max: usize,
    },
    TextArea {
        max: usize,
    },
}

impl Control {
    /// Addresses and numbers read left to right even on a right-to-left page; free
    /// text takes the direction of what the visitor types (a Latin name on an Arabic
    /// page).
    fn direction(&self) -> &'static str {
        match self {
            Self::Input {
                kind: "email" | "tel",
                ..
            } => "ltr",
            _ => "auto",
        }
    }
}

/// An operator's text, shown on pages of every language, in a first-strong isolate
/// (FSI … PDI): it keeps its own direction whatever the page's.
fn configured(text: &str) -> String {
    format!("\u{2068}{text}\u{2069}")
}

/// An extra field's label, from its configured name: `member_of` → "Member of".
pub(super) fn field_label(name: &str) -> String {
    let spaced = name.replace('_', " ");
    let mut chars = spaced.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The first few words of a sentence, for the error summary.
fn first_words(sentence: &str) -> String {
    let words: Vec<&str> = sentence.split_whitespace().collect();
    match words.get(..4) {
        Some(first) if words.len() > 4 => format!("{}…", first.join(" ")),
        _ => words.join(" "),
    }
}

/// The shipped language a post names in [`LANGUAGE_FIELD`], if any.
pub fn posted_language(raw: &RawForm) -> Option<&'static str> {
    match raw.get(LANGUAGE_FIELD) {
        Some(RawValue::Text(tag)) => i18n::resolve(tag),
        _ => None,
    }
}

/// A token for a page, unless the client is over its token quota: the page then comes
/// without one, which a post may still do unless `spam.require_token` is set.
///
/// A HEAD (a mail scanner's, say) never gets the page, so it does not count against
/// the quota: it must not use up a visitor's tokens. It still renders the page with a
/// token, so that its Content-Length is the GET's; a token is a keyed hash and a
/// random nonce, stored nowhere, so that is cheap and changes nothing.
fn page_token(state: &AppState, request: &HttpRequest) -> PageToken {
    if !super::is_head(request) && state.token_limiter.check(state.client_of(request)).is_err() {
        return PageToken::default();
    }
    match state.spam.tokens.issue(SystemTime::now()) {
        Ok(issued) => PageToken {
            wait_seconds: issued.usable_after_seconds(),
            value: issued.token,
            ttl_seconds: issued.expires_in.as_secs(),
        },
        Err(error) => {
            tracing::error!(%error, "cannot issue a form token for the page");
            PageToken::default()
        }
    }
}

/// GET `/` and GET `/join`: the empty form, the country preselected from `?country=`.
pub async fn form(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let language = state.page.language_of(&request);
    let mut values = FormValues::default();
    if let Some(code) = web::Query::<CountryQuery>::from_query(request.query_string())
        .ok()
        .and_then(|query| query.into_inner().country)
        .and_then(|c| CountryCode::parse(&c).ok())
    {
        values.text.insert("country".to_owned(), code.to_string());
    }
    let token = page_token(&state, &request);
    let page = state
        .page
        .render_form(language, &values, &ValidationErrors::default(), &token);
    state.page.layout.respond(StatusCode::OK, language, page)
}

/// GET `/join/thanks`; `?confirm=1` after a double opt-in sign-up.
pub async fn thanks(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let language = state.page.language_of(&request);
    let confirm = web::Query::<ConfirmQuery>::from_query(request.query_string())
        .ok()
        .and_then(|query| query.into_inner().confirm)
        .is_some_and(|value| value == "1");
    let page = state.page.render_thanks(language, confirm);
    state.page.layout.respond(StatusCode::OK, language, page)
}

/// A plain HTML post that failed validation: the form again, in the page's language,
/// with what the visitor typed and each problem next to its field. The post's own
/// token is kept, so its age still counts.
pub fn invalid(
    state: &AppState,
    language: &'static str,
    raw: &RawForm,
    errors: &ValidationErrors,
) -> HttpResponse {
    let posted = match raw.get(crate::spam::TOKEN_FIELD) {
        Some(RawValue::Text(token)) if !token.trim().is_empty() => Some(token.clone()),
        _ => None,
    };
    let token = match posted {
        Some(value) => PageToken {
            value,
            wait_seconds: 0,
            ttl_seconds: state.page.token_ttl_seconds,
        },
        None => state
            .spam
            .tokens
            .issue(SystemTime::now())
            .map(|issued| PageToken {
                wait_seconds: issued.usable_after_seconds(),
                value: issued.token,
                ttl_seconds: issued.expires_in.as_secs(),
            })
            .unwrap_or_default(),
    };
    let values = FormValues::from_raw(raw, &state.schema);
    let page = state.page.render_form(language, &values, errors, &token);
    state
        .page
        .layout
        .respond(StatusCode::UNPROCESSABLE_ENTITY, language, page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_field_labels_read_as_words() {
        assert_eq!(field_label("member_of"), "Member of");
        assert_eq!(field_label("organisation"), "Organisation");
    }

    #[test]
    fn addresses_and_numbers_read_left_to_right() {
        let input = |kind| Control::Input {
            kind,
            autocomplete: "off",
            max: 1,
        };
        assert_eq!(input("email").direction(), "ltr");
        assert_eq!(input("tel").direction(), "ltr");
        assert_eq!(input("text").direction(), "auto");
        assert_eq!(Control::TextArea { max: 1 }.direction(), "auto");
    }
}
