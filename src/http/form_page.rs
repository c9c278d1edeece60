//! The join form page (GET `/`, GET `/join`) and the thank-you page (GET
//! `/join/thanks`), in the visitor's language; and the form coming back with the
//! visitor's values and every problem marked when a plain HTML post fails validation.
//!
//! The page works without JavaScript: it is a plain form that posts to `/join`. A small
//! inline script, where it runs, posts the same fields with fetch, shows problems in
//! place, and renews the form token when the page sat open long. Nothing is loaded
//! from anywhere else, so the visit leaks to no third party.
//!
//! Every value that may come from a visitor or the configuration goes through
//! [`escape_html`] on its way into the page; translated text inside elements goes
//! through [`phrase`](super::pages::phrase), which also turns the translations' Unicode isolates into
//! `<bdi>` elements.

use std::collections::HashMap;
use std::fmt::Write;
use std::time::SystemTime;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::config::Settings;
use crate::domain::{
    CountryCode, ExtraFieldSpec, FormSchema, NewSubmission, RawForm, RawValue, ValidationErrors,
};
use crate::i18n::{self, CountryNames, Texts};

use super::pages::{escape_html, phrase};
use super::{AppState, negotiate};

/// The hidden field that names the language of the page the visitor filled in. The
/// server reads its own consent text and error messages for that language; it never
/// takes wording from the client.
pub const LANGUAGE_FIELD: &str = "_lang";

/// Where the page's script fetches a fresh form token.
const TOKEN_PATH: &str = "/join/token";

/// The built-in success page, which speaks the visitor's language when told it.
const THANKS_PATH: &str = "/join/thanks";

/// What the form pages need, built once at start-up.
pub struct FormPage {
    countries: CountryNames,
    default_language: &'static str,
    title: String,
    intro: String,
    logo_url: String,
    privacy_url: String,
    accent_color: String,
    honeypot_field: String,
    consent_required: bool,
    extra_fields: Vec<ExtraFieldSpec>,
    success_url: String,
    /// `spam.token_max_age`, for a page that carries a token it did not issue.
    token_ttl_seconds: u64,
    /// The Content-Security-Policy every page is sent with.
    pub policy: String,
}

/// The query of a form page: `?lang=de&country=AT`.
#[derive(Debug, Default, Deserialize)]
struct PageQuery {
    lang: Option<String>,
    country: Option<String>,
}

impl PageQuery {
    fn of(request: &HttpRequest) -> Self {
        web::Query::<Self>::from_query(request.query_string())
            .map(web::Query::into_inner)
            .unwrap_or_default()
    }
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

impl FormPage {
    /// The settings were checked when loaded.
    pub fn from_settings(settings: &Settings, schema: &FormSchema) -> Self {
        let form = &settings.form;
        Self {
            countries: CountryNames::build(i18n::shipped()),
            default_language: i18n::resolve(&form.default_language)
                .unwrap_or(i18n::REFERENCE_LANGUAGE),
            title: form.title.clone(),
            intro: form.intro.clone(),
            logo_url: form.logo_url.clone(),
            privacy_url: form.privacy_url.clone(),
            accent_color: form.accent_color.clone(),
            honeypot_field: settings.spam.honeypot_field.clone(),
            consent_required: schema.consent_required,
            extra_fields: schema.extra_fields.clone(),
            success_url: form.success_url.clone(),
            token_ttl_seconds: settings.spam.token_max_age.get().as_secs(),
            policy: content_security_policy(form),
        }
    }

    /// A page's language: `?lang=`, else the browser's preferences, else the default.
    pub fn language_of(&self, request: &HttpRequest) -> &'static str {
        requested_language(request).unwrap_or(self.default_language)
    }

    /// The language a post asks to be answered in: that of the page it came from, else
    /// `?lang=` or Accept-Language. `None` when it says nothing: an API client then
    /// keeps the English messages it always had.
    pub fn language_of_post(&self, request: &HttpRequest, raw: &RawForm) -> Option<&'static str> {
        posted_language(raw).or_else(|| requested_language(request))
    }

    pub fn default_language(&self) -> &'static str {
        self.default_language
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
    /// language, so that it speaks the visitor's.
    pub fn success_location(&self, language: Option<&str>) -> String {
        match language {
            Some(language) if self.success_url == THANKS_PATH => {
                format!("{THANKS_PATH}?lang={language}")
            }
            _ => self.success_url.clone(),
        }
    }

    /// The form page: empty, or with the visitor's values and problems.
    pub fn render_form(
        &self,
        language: &'static str,
        values: &FormValues,
        errors: &ValidationErrors,
        token: &PageToken,
    ) -> String {
        let texts = Texts::new(language);
        let problems: HashMap<&str, String> = errors
            .iter()
            .map(|e| (e.field.as_str(), texts.field_problem(e.problem)))
            .collect();
        let mut body = String::with_capacity(24 * 1024);
        self.write_header(&mut body, texts);
        self.write_languages(&mut body, texts, values.get("country"));
        self.write_summary(&mut body, texts, errors);
        let _ = write!(
            body,
            "<form id=join method=post action=\"/join\" novalidate \
             data-token-url=\"{TOKEN_PATH}\" data-ttl={ttl} data-wait={wait} \
             data-thanks=\"{thanks}\" data-sending=\"{sending}\" data-busy=\"{busy}\" \
             data-net=\"{net}\"><p class=h>{note}</p>\
             <input type=hidden name=_token value=\"{token}\">\
             <input type=hidden name={LANGUAGE_FIELD} value={language}>\
             <input type=hidden name=language value={language}>",
            ttl = token.ttl_seconds,
            wait = token.wait_seconds,
            thanks = escape_html(&self.success_location(Some(language))),
            sending = escape_html(texts.get("sending")),
            busy = escape_html(texts.get("error_busy")),
            net = escape_html(texts.get("error_network")),
            note = phrase(texts.get("required_note")),
            token = escape_html(&token.value),
        );
        let field = |name: &str| Field {
            name: name.to_owned(),
            value: values.get(name).to_owned(),
            error: problems.get(name).cloned(),
            ..Field::default()
        };
        let mut fields = vec![
            Field {
                label: texts.get("label_name").to_owned(),
                required: true,
                control: Control::Input {
                    kind: "text",
                    autocomplete: "name",
                    max: 100,
                },
                ..field("name")
            },
            Field {
                label: texts.get("label_email").to_owned(),
                hint: Some(texts.get("hint_email").to_owned()),
                required: true,
                control: Control::Input {
                    kind: "email",
                    autocomplete: "email",
                    max: 254,
                },
                ..field("email")
            },
            Field {
                label: texts.get("label_country").to_owned(),
                required: true,
                control: Control::Country,
                ..field("country")
            },
            Field {
                label: texts.get("label_phone").to_owned(),
                hint: Some(texts.get("hint_phone").to_owned()),
                control: Control::Input {
                    kind: "tel",
                    autocomplete: "tel",
                    max: 40,
                },
                ..field("phone")
            },
            Field {
                label: texts.get("label_city").to_owned(),
                control: Control::Input {
                    kind: "text",
                    autocomplete: "address-level2",
                    max: 100,
                },
                ..field("city")
            },
        ];
        for extra in &self.extra_fields {
            fields.push(Field {
                label: configured(&field_label(extra.name.as_str())),
                required: extra.required,
                control: Control::Input {
                    kind: "text",
                    autocomplete: "off",
                    max: extra.max_chars,
                },
                ..field(extra.name.as_str())
            });
        }
        fields.push(Field {
            label: texts.get("label_message").to_owned(),
            hint: Some(texts.get("hint_message").to_owned()),
            control: Control::TextArea { max: 2000 },
            ..field("message")
        });
        for field in &fields {
            self.write_field(&mut body, texts, field);
        }
        self.write_consent(&mut body, texts, values.consent, problems.get("consent"));
        let _ = write!(
            body,
            "<div class=hp aria-hidden=true><label for=f-hp>{label}</label>\
             <input id=f-hp name=\"{name}\" tabindex=-1 autocomplete=off></div>\
             <button type=submit>{submit}</button></form>",
            label = phrase(texts.get("honeypot_label")),
            name = escape_html(&self.honeypot_field),
            submit = phrase(texts.get("submit")),
        );
        self.layout(texts, &self.heading(texts), &body, true)
    }

    /// The thank-you page.
    pub fn render_thanks(&self, language: &'static str) -> String {
        let texts = Texts::new(language);
        let mut body = String::new();
        self.write_logo(&mut body);
        let _ = write!(
            body,
            "<h1>{}</h1><p>{}</p>",
            phrase(texts.get("thanks_title")),
            phrase(texts.get("thanks_text"))
        );
        self.layout(texts, texts.get("thanks_title"), &body, false)
    }

    fn heading(&self, texts: Texts) -> String {
        if self.title.is_empty() {
            texts.get("title").to_owned()
        } else {
            self.title.clone()
        }
    }

    fn layout(&self, texts: Texts, title: &str, body: &str, script: bool) -> String {
        let language = texts.language();
        let direction = if i18n::is_right_to_left(language) {
            "rtl"
        } else {
            "ltr"
        };
        format!(
            "<!doctype html>\n<html lang={language} dir={direction}><head><meta charset=utf-8>\
             <meta name=viewport content=\"width=device-width,initial-scale=1\">\
             <title>{title}</title><style>{style}</style></head>\
             <body><main>{body}</main>{script}</body></html>\n",
            title = escape_html(title),
            style = inline_style(&self.accent_color),
            script = if script {
                format!("<script>{SCRIPT}</script>")
            } else {
                String::new()
            },
        )
    }

    fn write_logo(&self, out: &mut String) {
        if !self.logo_url.is_empty() {
            let _ = write!(
                out,
                "<img class=logo src=\"{}\" alt=\"\">",
                escape_html(&self.logo_url)
            );
        }
    }

    fn write_header(&self, out: &mut String, texts: Texts) {
        self.write_logo(out);
        let intro = if self.intro.is_empty() {
            phrase(texts.get("intro"))
        } else {
            phrase(&configured(&self.intro))
        };
        let heading = if self.title.is_empty() {
            phrase(texts.get("title"))
        } else {
            phrase(&configured(&self.title))
        };
        let _ = write!(out, "<h1>{heading}</h1><p>{intro}</p>");
    }

    /// Links to the page in every shipped language, each name in its own language.
    fn write_languages(&self, out: &mut String, texts: Texts, country: &str) {
        let country = CountryCode::parse(country)
            .map(|code| format!("&amp;country={code}"))
            .unwrap_or_default();
        let _ = write!(
            out,
            "<nav aria-label=\"{}\"><ul class=langs>",
            escape_html(texts.get("languages"))
        );
        for tag in i18n::shipped() {
            let name = escape_html(Texts::new(tag).get("language_name"));
            let direction = if i18n::is_right_to_left(tag) {
                "rtl"
            } else {
                "ltr"
            };
            if tag == texts.language() {
                let _ = write!(
                    out,
                    "<li><span lang={tag} dir={direction} aria-current=page>{name}</span>"
                );
            } else {
                let _ = write!(
                    out,
                    "<li><a href=\"?lang={tag}{country}\" lang={tag} hreflang={tag} \
                     dir={direction}>{name}</a>"
                );
            }
        }
        out.push_str("</ul></nav>");
    }

    /// The error summary: hidden until there is something to say; the script fills it
    /// too, so it is always there.
    fn write_summary(&self, out: &mut String, texts: Texts, errors: &ValidationErrors) {
        let hidden = if errors.is_empty() {
            " hidden"
        } else {
            " autofocus"
        };
        let _ = write!(
            out,
            "<div id=summary class=summary role=alert tabindex=-1{hidden}><h2>{}</h2><ul>",
            phrase(texts.get("summary_title"))
        );
        for error in errors.iter() {
            let name = error.field.as_str();
            let message = phrase(&texts.field_problem(error.problem));
            match self.label_of(texts, name) {
                Some(label) => {
                    let _ = write!(
                        out,
                        "<li><a href=\"#f-{name}\">{}: {message}</a>",
                        phrase(&label)
                    );
                }
                None => {
                    let _ = write!(out, "<li>{message}");
                }
            }
        }
        out.push_str("</ul></div>");
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

    fn write_field(&self, out: &mut String, texts: Texts, field: &Field) {
        let id = format!("f-{}", field.name);
        let marker = if field.required {
            "<span aria-hidden=true> *</span>".to_owned()
        } else {
            format!(" ({})", phrase(texts.get("optional")))
        };
        let _ = write!(
            out,
            "<div class=f><label for={id}>{}{marker}</label>",
            phrase(&field.label)
        );
        let mut described = Vec::new();
        if let Some(hint) = &field.hint {
            let _ = write!(out, "<p id={id}-h class=h>{}</p>", phrase(hint));
            described.push(format!("{id}-h"));
        }
        write_error(out, &id, field.error.as_deref());
        if field.error.is_some() {
            described.push(format!("{id}-e"));
        }
        let mut attributes = format!(" id={id} name={}", field.name);
        if field.required {
            attributes.push_str(" required");
        }
        if field.error.is_some() {
            attributes.push_str(" aria-invalid=true");
        }
        if !described.is_empty() {
            let _ = write!(attributes, " aria-describedby=\"{}\"", described.join(" "));
        }
        match field.control {
            Control::Input {
                kind,
                autocomplete,
                max,
            } => {
                // Addresses and numbers read left to right even on a right-to-left page;
                // free text takes the direction of what the visitor types (a Latin
                // name on an Arabic page).
                let direction = if matches!(kind, "email" | "tel") {
                    " dir=ltr"
                } else {
                    " dir=auto"
                };
                let _ = write!(
                    out,
                    "<input{attributes} type={kind} autocomplete={autocomplete} \
                     maxlength={max}{direction} value=\"{}\">",
                    escape_html(&field.value)
                );
            }
            Control::TextArea { max } => {
                let _ = write!(
                    out,
                    "<textarea{attributes} rows=4 maxlength={max} dir=auto>{}</textarea>",
                    escape_html(&field.value)
                );
            }
            Control::Country => {
                let selected = CountryCode::parse(&field.value).ok();
                let _ = write!(
                    out,
                    "<select{attributes} autocomplete=country><option value=\"\">{}",
                    escape_html(texts.get("choose_country"))
                );
                // Closing </option> tags are optional in HTML; leaving them out saves
                // about 2 KB on every page.
                for (code, name) in self.countries.list(texts.language()) {
                    let mark = if Some(*code) == selected {
                        " selected"
                    } else {
                        ""
                    };
                    let _ = write!(out, "<option value={code}{mark}>{}", escape_html(name));
                }
                out.push_str("</select>");
            }
        }
        out.push_str("</div>");
    }

    fn write_consent(&self, out: &mut String, texts: Texts, checked: bool, error: Option<&String>) {
        let privacy = phrase(texts.get("privacy_link"));
        let privacy = if self.privacy_url.is_empty() {
            privacy
        } else {
            format!(
                "<a href=\"{}\">{privacy}</a>",
                escape_html(&self.privacy_url)
            )
        };
        let sentence = phrase(texts.get("consent")).replace("{privacy}", &privacy);
        out.push_str("<div class=\"f c\">");
        let mut attributes = String::from(" id=f-consent name=consent type=checkbox value=on");
        if self.consent_required {
            attributes.push_str(" required");
        }
        if checked {
            attributes.push_str(" checked");
        }
        if error.is_some() {
            attributes.push_str(" aria-invalid=true aria-describedby=f-consent-e");
        }
        let _ = write!(
            out,
            "<input{attributes}><label for=f-consent>{sentence}{}</label></div>",
            if self.consent_required {
                "<span aria-hidden=true> *</span>"
            } else {
                ""
            }
        );
        write_error(out, "f-consent", error.map(String::as_str));
    }
}

/// An error slot under a label: filled by the server, or empty and hidden for the
/// script to fill.
fn write_error(out: &mut String, id: &str, error: Option<&str>) {
    match error {
        Some(message) => {
            let _ = write!(out, "<p id={id}-e class=err>{}</p>", phrase(message));
        }
        None => {
            let _ = write!(out, "<p id={id}-e class=err hidden></p>");
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Field {
    name: String,
    label: String,
    hint: Option<String>,
    required: bool,
    value: String,
    error: Option<String>,
    control: Control,
}

#[derive(Debug, Clone, Copy, Default)]
enum Control {
    #[default]
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

/// An operator's text, shown on pages of every language, in a first-strong isolate
/// (FSI … PDI): it keeps its own direction whatever the page's.
fn configured(text: &str) -> String {
    format!("\u{2068}{text}\u{2069}")
}

/// An extra field's label, from its configured name: `member_of` → "Member of".
fn field_label(name: &str) -> String {
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

/// `?lang=`, else the browser's most preferred language that we ship.
fn requested_language(request: &HttpRequest) -> Option<&'static str> {
    PageQuery::of(request)
        .lang
        .as_deref()
        .and_then(i18n::resolve)
        .or_else(|| accepted_language(request))
}

/// The browser's most preferred language that we ship.
fn accepted_language(request: &HttpRequest) -> Option<&'static str> {
    negotiate::accepted_languages(request)
        .iter()
        .find_map(|tag| i18n::resolve(tag.as_str()))
}

/// A page answer: never cached (it holds a single-use token), no referrer sent to the
/// privacy notice or logo host, and a policy that lets the page load or send nothing
/// anywhere but here.
pub fn html_response(
    policy: &str,
    status: StatusCode,
    language: &str,
    page: String,
) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CONTENT_SECURITY_POLICY, policy))
        .content_type(mime::TEXT_HTML_UTF_8)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::CONTENT_LANGUAGE, language))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(page)
}

/// A token for a page, unless the client is over its token quota: the page then comes
/// without one, which a post may still do unless `spam.require_token` is set.
fn page_token(state: &AppState, request: &HttpRequest) -> PageToken {
    if state.token_limiter.check(state.client_of(request)).is_err() {
        return PageToken::default();
    }
    match state.spam.tokens.issue(SystemTime::now()) {
        Ok(issued) => PageToken {
            value: issued.token,
            wait_seconds: issued.usable_after.as_secs(),
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
    if let Some(code) = PageQuery::of(&request)
        .country
        .and_then(|c| CountryCode::parse(&c).ok())
    {
        values.text.insert("country".to_owned(), code.to_string());
    }
    let token = page_token(&state, &request);
    let page = state
        .page
        .render_form(language, &values, &ValidationErrors::default(), &token);
    html_response(&state.page.policy, StatusCode::OK, language, page)
}

/// GET `/join/thanks`.
pub async fn thanks(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let language = state.page.language_of(&request);
    let page = state.page.render_thanks(language);
    html_response(&state.page.policy, StatusCode::OK, language, page)
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
                value: issued.token,
                wait_seconds: issued.usable_after.as_secs(),
                ttl_seconds: issued.expires_in.as_secs(),
            })
            .unwrap_or_default(),
    };
    let values = FormValues::from_raw(raw, &state.schema);
    let page = state.page.render_form(language, &values, errors, &token);
    html_response(
        &state.page.policy,
        StatusCode::UNPROCESSABLE_ENTITY,
        language,
        page,
    )
}

/// What the pages may load and where their form may go: their own inline style and
/// script (by hash, so an injected one would not run), the logo, and nothing else.
/// Frames only from this server: the pages have none, but the browser tests measure
/// the page at phone widths inside one.
fn content_security_policy(form: &crate::config::FormSettings) -> String {
    use base64::Engine;
    use sha2::Digest;

    let hash = |text: &str| {
        let digest = sha2::Sha256::digest(text.as_bytes());
        format!(
            "'sha256-{}'",
            base64::engine::general_purpose::STANDARD.encode(digest)
        )
    };
    let style = inline_style(&form.accent_color);
    let mut images = "'self'".to_owned();
    if let Some(origin) = origin_of(&form.logo_url) {
        images.push(' ');
        images.push_str(origin);
    }
    let mut form_action = "'self'".to_owned();
    if let Some(origin) = origin_of(&form.success_url) {
        // The redirect after a post is checked against form-action too.
        form_action.push(' ');
        form_action.push_str(origin);
    }
    format!(
        "default-src 'none'; script-src {}; style-src {}; img-src {images}; \
         connect-src 'self'; frame-src 'self'; form-action {form_action}; base-uri 'none'",
        hash(SCRIPT),
        hash(&style),
    )
}

/// `https://example.org` of `https://example.org/logo.png`; `None` for a local path.
fn origin_of(url: &str) -> Option<&str> {
    let scheme_end = url.find("://")? + 3;
    let host_end = url[scheme_end..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |at| scheme_end + at);
    Some(&url[..host_end])
}

/// The text of the pages' `<style>` element, exactly, so its hash can be allowed.
fn inline_style(accent_color: &str) -> String {
    format!(":root{{--a:{}}}{STYLE}", escape_html(accent_color))
}

/// The page's style: system fonts, one column, large touch targets, visible focus,
/// logical properties so that right-to-left pages mirror. Colours come from
/// [`crate::colour`], where a test checks their contrast.
const STYLE: &str = concat!(
    "*{box-sizing:border-box}",
    "body{margin:0;font:1rem/1.5 system-ui,sans-serif;color:#1a1a1a;background:#ffffff}",
    "main{max-width:36rem;margin:0 auto;padding:1rem}",
    "h1{font-size:1.6rem;line-height:1.25;margin:.5rem 0}h2{font-size:1.15rem;margin:0}",
    ".logo{display:block;max-height:4rem;max-width:100%}",
    "a{color:var(--a)}",
    ".langs{list-style:none;padding:0;margin:0 0 1rem;display:flex;flex-wrap:wrap;gap:.25rem .9rem;font-size:.9rem}",
    ".f{margin:0 0 1.1rem}label{display:block;font-weight:600}",
    ".h{margin:0;color:#4a4a4a;font-size:.9rem}",
    "input,select,textarea{display:block;width:100%;max-width:100%;font:inherit;padding:.5rem;",
    "border:2px solid #595959;border-radius:4px;background:#ffffff;color:inherit;min-height:2.75rem}",
    ":focus-visible{outline:3px solid var(--a);outline-offset:2px}",
    ".c{display:flex;gap:.6rem;align-items:flex-start;flex-wrap:wrap}",
    ".c input{width:1.6rem;height:1.6rem;min-height:0;flex:none;margin:.1rem 0 0}",
    ".c label{flex:1;font-weight:400}.c .err{flex-basis:100%}",
    ".err{color:#b3261e;font-weight:600;margin:.2rem 0}",
    "[aria-invalid=true]{border-color:#b3261e}",
    ".summary{border:3px solid #b3261e;padding:.75rem 1rem;margin:0 0 1rem}",
    ".summary a{color:#b3261e;font-weight:600}.summary ul{margin:.5rem 0 0;padding-inline-start:1.2rem}",
    "button{font:inherit;font-weight:600;color:#ffffff;background:var(--a);border:0;border-radius:4px;",
    "padding:.75rem 1.5rem;min-height:2.75rem;cursor:pointer}button:disabled{opacity:.75}",
    ".hp{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%);white-space:nowrap}",
);

/// The page's script, written for old phone browsers' engines too. It posts with fetch
/// and shows problems in place; renews the form token before it expires; and never
/// posts sooner than the token allows, so a fast visitor is not taken for a bot.
const SCRIPT: &str = r#"(function(){var f=document.getElementById('join'),d=f.dataset,s=document.getElementById('summary'),u=s.querySelector('ul'),b=f.querySelector('button[type=submit]'),t=f.elements._token,l=b.textContent,born=Date.now(),ttl=d.ttl*1e3,usable=born+d.wait*1e3,busy=0;
function fresh(){return fetch(d.tokenUrl,{headers:{Accept:'application/json'},cache:'no-store'}).then(function(r){if(!r.ok)throw r;return r.json()}).then(function(j){t.value=j.token;born=Date.now();ttl=j.expires_in_seconds*1e3;usable=born+j.usable_after_seconds*1e3})}
function short(x){var w=x.trim().split(/\s+/);return w.slice(0,4).join(' ')+(w.length>4?'…':'')}
function old(){return Date.now()-born>ttl*.9}
setInterval(function(){if(old())fresh().catch(function(){})},Math.max(1e3,Math.min(ttl/10,6e5)));
function item(text,id){var li=document.createElement('li'),a;if(id){a=document.createElement('a');a.href='#'+id;a.textContent=text;li.appendChild(a)}else li.textContent=text;u.appendChild(li)}
function show(errs,general){var i,e,id,el,p,lab;
f.querySelectorAll('.err').forEach(function(p){p.hidden=true;p.textContent=''});
f.querySelectorAll('[aria-invalid]').forEach(function(el){el.removeAttribute('aria-invalid');var k=(el.getAttribute('aria-describedby')||'').split(' ').filter(function(x){return x&&x.slice(-2)!='-e'}).join(' ');if(k)el.setAttribute('aria-describedby',k);else el.removeAttribute('aria-describedby')});
u.textContent='';if(general)item(general);
for(i=0;i<errs.length;i++){e=errs[i];id='f-'+e.field;el=document.getElementById(id);p=document.getElementById(id+'-e');lab=f.querySelector('label[for="'+id+'"]');
if(el&&p){p.textContent=e.message;p.hidden=false;el.setAttribute('aria-invalid','true');el.setAttribute('aria-describedby',((el.getAttribute('aria-describedby')||'')+' '+id+'-e').trim());item((lab?short(lab.firstChild.textContent)+': ':'')+e.message,id)}else item(e.message)}
s.hidden=false;s.focus()}
f.addEventListener('submit',function(ev){ev.preventDefault();if(busy)return;busy=1;b.disabled=true;b.textContent=d.sending;
(old()?fresh():Promise.resolve()).then(function(){return new Promise(function(ok){setTimeout(ok,Math.max(0,usable-Date.now()+250))})}).then(function(){return fetch(f.action,{method:'POST',body:new URLSearchParams(new FormData(f)),headers:{Accept:'application/json'}})}).then(function(r){if(r.status==201){location.assign(d.thanks);return}return r.json().then(function(j){show(r.status==422?j.errors||[]:[],r.status==422?'':d.busy)},function(){show([],d.busy)})}).catch(function(){show([],d.net)}).then(function(){busy=0;b.disabled=false;b.textContent=l})})})();"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::colour;

    #[test]
    fn unicode_isolates_become_bdi_elements() {
        for (text, html) in [
            ("plain <b>", "plain &lt;b&gt;"),
            (
                "مثل \u{2066}+20 2 1234 5678\u{2069}.",
                "مثل <bdi dir=ltr>+20 2 1234 5678</bdi>.",
            ),
            (
                "\u{2066}en\u{2069} أو \u{2066}pt-BR\u{2069}",
                "<bdi dir=ltr>en</bdi> أو <bdi dir=ltr>pt-BR</bdi>",
            ),
            (
                "\u{2067}a\u{2068}b\u{2069}\u{2069}",
                "<bdi dir=rtl>a<bdi>b</bdi></bdi>",
            ),
            ("x\u{2069}y", "xy"),
            ("\u{2066}<open", "<bdi dir=ltr>&lt;open</bdi>"),
            ("\u{2066}", "<bdi dir=ltr></bdi>"),
        ] {
            assert_eq!(phrase(text), html, "{text:?}");
        }
    }

    /// The colours the style uses, for the contrast test.
    fn style_colours() -> [&'static str; 5] {
        [
            colour::TEXT,
            colour::HINT,
            colour::ERROR,
            colour::BORDER,
            colour::BACKGROUND,
        ]
    }

    #[test]
    fn the_style_uses_exactly_the_checked_colours() {
        // Every #rrggbb in the style is one whose contrast crate::colour tests.
        let mut found: Vec<&str> = STYLE
            .match_indices('#')
            .filter_map(|(at, _)| STYLE.get(at..at + 7))
            .collect();
        found.sort_unstable();
        found.dedup();
        let mut expected = style_colours().to_vec();
        expected.sort_unstable();
        assert_eq!(found, expected);
        for colour in style_colours() {
            if colour != colour::BACKGROUND {
                let ratio = colour::contrast(colour, colour::BACKGROUND).unwrap();
                assert!(ratio >= 3.0, "{colour}: {ratio:.2}");
            }
        }
    }

    #[test]
    fn extra_field_labels_read_as_words() {
        assert_eq!(field_label("member_of"), "Member of");
        assert_eq!(field_label("organisation"), "Organisation");
    }
}

#[cfg(test)]
mod policy_tests {
    use super::*;

    #[test]
    fn the_policy_allows_exactly_the_inline_style_script_and_logo_origin() {
        let form = crate::config::FormSettings {
            logo_url: "https://cdn.example.org/logo.png".into(),
            success_url: "https://www.example.org/thanks?x=1".into(),
            ..Default::default()
        };
        let policy = content_security_policy(&form);
        assert!(policy.starts_with("default-src 'none'; script-src 'sha256-"));
        assert!(policy.contains("img-src 'self' https://cdn.example.org;"));
        assert!(policy.contains("form-action 'self' https://www.example.org;"));
        assert!(!policy.contains("unsafe"));
        assert_eq!(origin_of("/logo.png"), None);
        assert_eq!(
            origin_of("http://a.example:8080"),
            Some("http://a.example:8080")
        );
    }
}
