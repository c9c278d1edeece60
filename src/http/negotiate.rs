//! Reading the client's preferences from `Accept-Language` and `Accept`.
//!
//! actix-web's `ranked()` orders entries by weight but keeps those weighted `q=0`, which
//! RFC 9110 §12.4.2 defines as "not acceptable": `Accept-Language: en;q=0` must never
//! choose English. Every listener reads preferences through here, and every page (the
//! form, the thank-you page, every error page) gets its language from
//! [`page_language`].

use actix_web::http::header::{Accept, AcceptLanguage, Header, LanguageTag, Preference, Quality};
use actix_web::{HttpRequest, web};
use serde::Deserialize;

use crate::i18n;

/// The part of a page's query that names its language: `?lang=de`.
#[derive(Debug, Default, Deserialize)]
struct LanguageQuery {
    lang: Option<String>,
}

/// The shipped language a page should be in: `?lang=`, else the browser's most
/// preferred language that we ship. `None` when neither names one; the caller then
/// uses `form.default_language`.
pub fn page_language(request: &HttpRequest) -> Option<&'static str> {
    web::Query::<LanguageQuery>::from_query(request.query_string())
        .ok()
        .and_then(|query| query.into_inner().lang)
        .as_deref()
        .and_then(i18n::resolve)
        .or_else(|| {
            accepted_languages(request)
                .iter()
                .find_map(|tag| i18n::resolve(tag.as_str()))
        })
}

/// The language tags the client accepts, most preferred first; entries of equal weight
/// keep the client's order. `*` and entries weighted `q=0` are left out; a missing or
/// unreadable header gives an empty list.
pub fn accepted_languages(request: &HttpRequest) -> Vec<LanguageTag> {
    let Ok(AcceptLanguage(mut entries)) = AcceptLanguage::parse(request) else {
        return Vec::new();
    };
    entries.retain(|entry| entry.quality > Quality::ZERO);
    // A stable sort: equal weights keep the order the client wrote them in.
    entries.sort_by_key(|entry| std::cmp::Reverse(entry.quality));
    entries
        .into_iter()
        .filter_map(|entry| match entry.item {
            Preference::Specific(tag) => Some(tag),
            Preference::Any => None,
        })
        .collect()
}

/// The media types the client accepts, most preferred first (actix-web's order: weight,
/// then specificity), without those weighted `q=0`. A missing or unreadable header gives
/// an empty list.
pub fn accepted_media_types(request: &HttpRequest) -> Vec<mime::Mime> {
    let Ok(mut accept) = Accept::parse(request) else {
        return Vec::new();
    };
    accept.0.retain(|entry| entry.quality > Quality::ZERO);
    accept.ranked()
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn languages(header: &str) -> Vec<String> {
        let request = TestRequest::default()
            .insert_header(("accept-language", header))
            .to_http_request();
        accepted_languages(&request)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn languages_rank_by_weight_and_drop_what_is_not_acceptable() {
        let cases: [(&str, &[&str], &str); 6] = [
            ("nb;q=0.5, sv, da;q=0.9", &["sv", "da", "nb"], "by weight"),
            ("fr, de", &["fr", "de"], "equal weights keep their order"),
            ("en;q=0", &[], "q=0 is not acceptable"),
            ("en;q=0, fr;q=0.1", &["fr"], "only what is acceptable"),
            ("*, de;q=0.5", &["de"], "the wildcard names no language"),
            ("", &[], "empty header"),
        ];
        for (header, expected, reason) in cases {
            assert_eq!(languages(header), expected, "{reason}: {header:?}");
        }
    }

    #[test]
    fn a_page_is_in_the_language_of_its_query_else_the_browsers() {
        let cases = [
            ("/?lang=de", "fr", Some("de"), "the query first"),
            (
                "/?lang=zz",
                "fr-CH, en;q=0.5",
                Some("fr"),
                "a query we cannot serve",
            ),
            (
                "/?country=AT",
                "xx, sv;q=0.2",
                Some("sv"),
                "the first shipped one",
            ),
            ("/", "xx", None, "nothing shipped"),
        ];
        for (uri, header, expected, reason) in cases {
            let request = TestRequest::with_uri(uri)
                .insert_header(("accept-language", header))
                .to_http_request();
            assert_eq!(page_language(&request), expected, "{reason}");
        }
    }

    #[test]
    fn media_types_drop_what_is_not_acceptable() {
        let request = TestRequest::default()
            .insert_header(("accept", "application/json;q=0, text/csv;q=0.5"))
            .to_http_request();
        assert_eq!(accepted_media_types(&request), vec![mime::TEXT_CSV]);
    }
}
