//! What every HTML page joinform serves has in common, and the error pages.
//!
//! Pages are askama templates under templates/ (`layout.html`, which every page
//! extends, `form.html`, `thanks.html`, `error.html`), compiled into the binary and
//! checked when it is built: a template error can never reach a request. Every value
//! is escaped by [`Html`] on its way into a page; translated text inside elements goes
//! through the `phrase` filter ([`phrase`]), which also turns the translations' Unicode
//! isolates into `<bdi>` elements.
//!
//! The [`Layout`] is built once at start-up from `[form]`: the style (templates/form.css
//! with the accent colour) and the form's script (templates/form.js) are inline, so
//! every page is sent with one Content-Security-Policy that allows exactly those two by
//! hash. Every page, error pages included, is worded in the language
//! [`Layout::language_of`] negotiates for the request.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use askama::Template;

use crate::config::FormSettings;
use crate::i18n::{self, Texts};

use super::negotiate;

/// The pages' style: system fonts, one column, large touch targets, visible focus,
/// logical properties so that right-to-left pages mirror. Colours come from
/// [`crate::colour`], where a test checks their contrast.
const STYLE: &str = include_str!("../../templates/form.css").trim_ascii_end();

/// The form page's script, written for old phone browsers' engines too. It posts with
/// fetch and shows problems in place; renews the form token before it expires; and
/// never posts sooner than the token allows, so a fast visitor is not taken for a bot.
pub(super) const SCRIPT: &str = include_str!("../../templates/form.js").trim_ascii_end();

/// The escaper of every `.html` template (askama.toml): the named entities the pages
/// have always used, for element content and quoted attributes alike.
#[derive(Debug, Clone, Copy, Default)]
pub struct Html;

impl askama::filters::Escaper for Html {
    fn write_escaped_str<W: fmt::Write>(&self, mut dest: W, text: &str) -> fmt::Result {
        let mut rest = text;
        while let Some(at) = rest.find(['&', '<', '>', '"', '\'']) {
            dest.write_str(&rest[..at])?;
            dest.write_str(match rest.as_bytes()[at] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[at + 1..];
        }
        dest.write_str(rest)
    }
}

/// `text` escaped by [`Html`].
fn escape(text: &str) -> String {
    use askama::filters::Escaper;
    let mut escaped = String::with_capacity(text.len());
    // Writing into a String cannot fail.
    let _ = Html.write_escaped_str(&mut escaped, text);
    escaped
}

/// The templates' own filters (askama looks them up in a module named `filters`).
pub mod filters {
    use std::fmt::Display;

    use askama::filters::Safe;

    /// `{{ text|phrase }}`: [`super::phrase`], for translated text inside elements.
    #[askama::filter_fn]
    pub fn phrase(text: impl Display, _: &dyn askama::Values) -> askama::Result<Safe<String>> {
        Ok(Safe(super::phrase(&text.to_string())))
    }
}

/// Translated text for element content: escaped, with each Unicode isolate of the
/// translation (LRI U+2066, RLI U+2067 or FSI U+2068 … PDI U+2069) made a `<bdi>`.
///
/// Translations into right-to-left languages wrap every left-to-right fragment
/// (`+20 2 1234 5678`, `name@example.org`, `pt-BR`) in LRI … PDI, as Unicode Standard
/// Annex #9 (the bidirectional algorithm, §2.7) recommends; otherwise the algorithm
/// moves the `+` of a phone number to its end and reverses the digit groups. The
/// characters themselves isolate in plain text (JSON messages the script shows with
/// `textContent`); as elements they also carry a computed direction that CSS and tests
/// can see. An unmatched PDI is dropped and an unclosed isolate closed at the end, as
/// the algorithm would at the end of the paragraph.
pub fn phrase(text: &str) -> String {
    let mut html = String::with_capacity(text.len() + 16);
    let mut open = 0_usize;
    for piece in text.split_inclusive(['\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}']) {
        let mut chars = piece.chars();
        let mark = chars.next_back();
        let (body, mark) = match mark {
            Some(c @ '\u{2066}'..='\u{2069}') => (chars.as_str(), Some(c)),
            _ => (piece, None),
        };
        html.push_str(&escape(body));
        match mark {
            Some('\u{2066}') => html.push_str("<bdi dir=ltr>"),
            Some('\u{2067}') => html.push_str("<bdi dir=rtl>"),
            Some('\u{2068}') => html.push_str("<bdi>"),
            Some(_) if open > 0 => {
                html.push_str("</bdi>");
                open -= 1;
                continue;
            }
            _ => continue,
        }
        open += 1;
    }
    for _ in 0..open {
        html.push_str("</bdi>");
    }
    html
}

/// A translated sentence with a `{placeholder}`, for a template that puts markup in
/// the placeholder's place: the [`phrase`]s between the placeholders, in order.
pub(super) fn phrase_around(text: &str, placeholder: &str) -> Vec<String> {
    // Made a phrase whole first, so that an isolate around the placeholder encloses
    // what replaces it.
    phrase(text).split(placeholder).map(str::to_owned).collect()
}

/// What every page shares, built once at start-up from `[form]`.
#[derive(Debug)]
pub struct Layout {
    default_language: &'static str,
    /// The text of the pages' `<style>` element, exactly, so its hash can be allowed.
    style: String,
    /// The Content-Security-Policy every page is sent with.
    policy: String,
}

/// What `layout.html` needs of a page: its language and title.
pub(super) struct Frame<'a> {
    pub language: &'a str,
    pub direction: &'static str,
    pub title: &'a str,
    pub style: &'a str,
}

impl Layout {
    /// The settings were checked when loaded. `frame_origins` (`server.allowed_origins`)
    /// may show the pages in a frame, besides this server.
    pub fn from_settings(form: &FormSettings, frame_origins: &[String]) -> Self {
        let style = format!(":root{{--a:{}}}{STYLE}", escape(&form.accent_color));
        Self {
            default_language: i18n::resolve(&form.default_language)
                .unwrap_or(i18n::REFERENCE_LANGUAGE),
            policy: content_security_policy(form, frame_origins, &style),
            style,
        }
    }

    /// A page's language: `?lang=`, else the browser's preferences, else
    /// `form.default_language`.
    pub fn language_of(&self, request: &HttpRequest) -> &'static str {
        negotiate::page_language(request).unwrap_or(self.default_language)
    }

    /// `form.default_language`, as a shipped language.
    pub fn default_language(&self) -> &'static str {
        self.default_language
    }

    /// The Content-Security-Policy every page is sent with.
    pub fn policy(&self) -> &str {
        &self.policy
    }

    pub(super) fn frame<'a>(&'a self, language: &'a str, title: &'a str) -> Frame<'a> {
        Frame {
            language,
            direction: direction(language),
            title,
            style: &self.style,
        }
    }

    /// A page answer with `status`. See [`Self::answer`].
    pub fn respond(
        &self,
        status: StatusCode,
        language: &str,
        page: askama::Result<String>,
    ) -> HttpResponse {
        let mut response = HttpResponse::build(status);
        self.answer(&mut response, language, page)
    }

    /// `page` as the body of `response`: never cached (a form page holds a single-use
    /// token), no referrer sent to the privacy notice or logo host, and a policy that
    /// lets the page load or send nothing anywhere but here.
    pub fn answer(
        &self,
        response: &mut HttpResponseBuilder,
        language: &str,
        page: askama::Result<String>,
    ) -> HttpResponse {
        match page {
            Ok(page) => response
                .insert_header((header::CONTENT_SECURITY_POLICY, self.policy.as_str()))
                .content_type(mime::TEXT_HTML_UTF_8)
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .insert_header((header::CONTENT_LANGUAGE, language))
                .insert_header((header::REFERRER_POLICY, "no-referrer"))
                .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                .body(page),
            // Templates are checked when the binary is built and writing into a String
            // cannot fail, so this is a filter's error: a bug, not the visitor's doing.
            Err(error) => {
                tracing::error!(%error, "a page could not be rendered");
                HttpResponse::InternalServerError()
                    .insert_header((header::CACHE_CONTROL, "no-store"))
                    .finish()
            }
        }
    }
}

/// `rtl` for a language written right to left, else `ltr`.
pub(super) fn direction(language: &str) -> &'static str {
    if i18n::is_right_to_left(language) {
        "rtl"
    } else {
        "ltr"
    }
}

/// What the pages may load and where their form may go: their own inline style and
/// script (by hash, so an injected one would not run), the logo, and nothing else.
/// Frames only from this server: the pages have none, but the browser tests measure
/// the page at phone widths inside one. Only this server and the organisation's own
/// sites (`server.allowed_origins`) may frame the pages (`frame-ancestors`): a page
/// elsewhere cannot lay the form under its own and trick a visitor into signing up
/// (clickjacking), which here would reveal a political opinion.
fn content_security_policy(form: &FormSettings, frame_origins: &[String], style: &str) -> String {
    use base64::Engine;
    use sha2::Digest;

    let hash = |text: &str| {
        let digest = sha2::Sha256::digest(text.as_bytes());
        format!(
            "'sha256-{}'",
            base64::engine::general_purpose::STANDARD.encode(digest)
        )
    };
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
    let mut ancestors = "'self'".to_owned();
    for origin in frame_origins {
        ancestors.push(' ');
        ancestors.push_str(origin);
    }
    format!(
        "default-src 'none'; script-src {}; style-src {}; img-src {images}; \
         connect-src 'self'; frame-src 'self'; frame-ancestors {ancestors}; \
         form-action {form_action}; base-uri 'none'",
        hash(SCRIPT),
        hash(style),
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

/// An error page (templates/error.html).
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    frame: Frame<'a>,
    texts: Texts,
    heading: &'a str,
    text: Option<&'a str>,
    fix: Option<&'a str>,
    problems: &'a [(String, String)],
    /// The way back to the form, around the place of the Back button's name.
    back: Option<Vec<String>>,
}

/// An error page in `language`: the translation of `key` as its heading, each field's
/// problem, and, after a client error other than 404, the way back to the form.
pub fn error_page(
    layout: &Layout,
    language: &'static str,
    status: StatusCode,
    key: &'static str,
    problems: &[(String, String)],
) -> askama::Result<String> {
    let texts = Texts::new(language);
    let heading = texts.get(key);
    ErrorPage {
        frame: layout.frame(language, heading),
        texts,
        heading,
        text: None,
        fix: None,
        problems,
        back: (status.is_client_error() && status != StatusCode::NOT_FOUND)
            .then(|| phrase_around(texts.get("error_back"), "{back}")),
    }
    .render()
}

/// An error page with its own words: `heading`, then `text` (the follow-up pages'
/// errors, worded in their own translations), each field's problem, and no way back
/// to the form, which the person who followed a link never saw.
pub fn message_page(
    layout: &Layout,
    language: &'static str,
    heading: &str,
    text: &str,
    problems: &[(String, String)],
) -> askama::Result<String> {
    ErrorPage {
        frame: layout.frame(language, heading),
        texts: Texts::new(language),
        heading,
        text: Some(text),
        fix: None,
        problems,
        back: None,
    }
    .render()
}

/// The answer to a form that was not sent in UTF-8 (a form on a page in a legacy
/// encoding, without `accept-charset="UTF-8"` or a `_charset_` field), as one line of
/// text: what happened, for the visitor, and the fix, for the site owner.
pub fn not_utf8_message(texts: Texts) -> String {
    format!(
        "{} {}",
        texts.get("error_not_utf8"),
        texts.get("error_not_utf8_fix")
    )
}

/// [`not_utf8_message`] as a page in the visitor's language.
pub fn not_utf8_page(layout: &Layout, texts: Texts) -> askama::Result<String> {
    let heading = texts.get("error_not_utf8_title");
    ErrorPage {
        frame: layout.frame(texts.language(), heading),
        texts,
        heading,
        text: Some(texts.get("error_not_utf8")),
        fix: Some(texts.get("error_not_utf8_fix")),
        problems: &[],
        back: None,
    }
    .render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::colour;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"<script>"a" & 'b'</script>"#),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
        assert_eq!(escape("Tromsø ✓"), "Tromsø ✓");
    }

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

    #[test]
    fn the_not_utf8_answer_is_translated_and_always_names_the_fix() {
        let layout = Layout::from_settings(&FormSettings::default(), &[]);
        let english = not_utf8_message(Texts::new("en"));
        for tag in i18n::shipped() {
            let texts = Texts::new(tag);
            let message = not_utf8_message(texts);
            assert!(
                message.contains("accept-charset=\"UTF-8\""),
                "{tag}: {message}"
            );
            if tag != "en" {
                assert_ne!(message, english, "{tag} has its own words");
            }
            let page = not_utf8_page(&layout, texts).unwrap();
            assert!(page.contains(&format!("<html lang=\"{tag}\"")), "{tag}");
            assert!(page.contains("accept-charset=&quot;UTF-8&quot;"), "{tag}");
        }
        let persian = not_utf8_page(&layout, Texts::new("fa")).unwrap();
        assert!(persian.contains("dir=\"rtl\""));
    }

    #[test]
    fn error_pages_are_translated_and_show_the_way_back_after_a_client_error() {
        let layout = Layout::from_settings(&FormSettings::default(), &[]);
        let problems = [("email".to_owned(), "<bad>".to_owned())];
        let page = |language, status| {
            error_page(&layout, language, status, "error_unreadable", &problems).unwrap()
        };
        let english = page("en", StatusCode::BAD_REQUEST);
        assert!(english.contains("<strong>email</strong>: &lt;bad&gt;"));
        assert!(english.contains("<strong>Back</strong>"), "{english}");
        let german = page("de", StatusCode::BAD_REQUEST);
        assert!(german.contains("<html lang=\"de\" dir=\"ltr\">"));
        assert!(german.contains("<strong>Zurück</strong>"), "{german}");
        assert!(!page("en", StatusCode::SERVICE_UNAVAILABLE).contains("<strong>Back"));
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
    fn the_policy_allows_exactly_the_inline_style_script_and_logo_origin() {
        let form = FormSettings {
            logo_url: "https://cdn.example.org/logo.png".into(),
            success_url: "https://www.example.org/thanks?x=1".into(),
            ..Default::default()
        };
        let policy = Layout::from_settings(&form, &["https://www.example.org".to_owned()]).policy;
        assert!(policy.starts_with("default-src 'none'; script-src 'sha256-"));
        assert!(policy.contains("img-src 'self' https://cdn.example.org;"));
        assert!(policy.contains("form-action 'self' https://www.example.org;"));
        assert!(policy.contains("frame-ancestors 'self' https://www.example.org;"));
        assert!(!policy.contains("unsafe"));
        assert_eq!(origin_of("/logo.png"), None);
        assert_eq!(
            origin_of("http://a.example:8080"),
            Some("http://a.example:8080")
        );
    }
}
