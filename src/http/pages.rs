//! The small HTML pages joinform serves itself.

use std::fmt::Write;

use actix_web::http::StatusCode;

use crate::i18n::{self, Texts};

/// Escapes text for an HTML element or a quoted attribute.
pub fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

fn layout(language: &str, title: &str, body: &str) -> String {
    let direction = if i18n::is_right_to_left(language) {
        "rtl"
    } else {
        "ltr"
    };
    format!(
        "<!doctype html>\n<html lang=\"{language}\" dir=\"{direction}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;\
         padding:0 1rem;line-height:1.5;color:#1a1a1a}}h1{{font-size:1.5rem}}\
         .problems li{{margin:.25rem 0}}</style></head>\
         <body><main>{body}</main></body></html>\n",
        language = escape_html(language),
        title = escape_html(title),
    )
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
        html.push_str(&escape_html(body));
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

/// An error page: the message, each field's problem, and the way back to the form.
pub fn error_page(status: StatusCode, message: &str, problems: &[(String, String)]) -> String {
    let mut body = format!("<h1>{}</h1>", escape_html(message));
    if !problems.is_empty() {
        body.push_str("<ul class=\"problems\">");
        for (field, problem) in problems {
            let _ = write!(
                body,
                "<li><strong>{}</strong>: {}</li>",
                escape_html(field),
                escape_html(problem)
            );
        }
        body.push_str("</ul>");
    }
    if status.is_client_error() && status != StatusCode::NOT_FOUND {
        body.push_str(
            "<p>Please use your browser's <strong>Back</strong> button to return to the \
             form; what you typed is still there.</p>",
        );
    }
    let title = status.canonical_reason().unwrap_or("Error");
    layout("en", title, &body)
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
pub fn not_utf8_page(texts: Texts) -> String {
    let body = format!(
        "<h1>{}</h1><p>{}</p><p><small>{}</small></p>",
        phrase(texts.get("error_not_utf8_title")),
        phrase(texts.get("error_not_utf8")),
        phrase(texts.get("error_not_utf8_fix")),
    );
    layout(texts.language(), texts.get("error_not_utf8_title"), &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            escape_html(r#"<script>"a" & 'b'</script>"#),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
    }

    #[test]
    fn the_not_utf8_answer_is_translated_and_always_names_the_fix() {
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
            let page = not_utf8_page(texts);
            assert!(page.contains(&format!("<html lang=\"{tag}\"")), "{tag}");
            assert!(page.contains("accept-charset=&quot;UTF-8&quot;"), "{tag}");
        }
        assert!(not_utf8_page(Texts::new("fa")).contains("dir=\"rtl\""));
    }
}
