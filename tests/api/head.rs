//! HEAD: mail scanners and link previewers often send HEAD to a link in a mail before
//! anyone opens it. Every GET route of the public listener answers HEAD as it answers
//! GET, headers and all, without the body, and a HEAD changes nothing.

use reqwest::header::HeaderMap;

use crate::followup_pages::{followup_of, in_a_day, person_token, with_followup};
use crate::helpers::{created_id, spawn_app_with, valid_json};

/// The headers, without those that differ from one answer to the next.
fn comparable(headers: &HeaderMap) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = headers
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "date" | "x-request-id"))
        .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
        .collect();
    pairs.sort();
    pairs
}

#[tokio::test]
async fn head_answers_like_get_with_the_same_headers_and_no_body() {
    let app = spawn_app_with(with_followup).await;
    let id = created_id(app.post_json(&valid_json()).await).await;
    let link = format!(
        "/followup/{}",
        person_token(&app, &id, "Norway", in_a_day())
    );
    let before = (app.row(&id), followup_of(&app, &id));
    for path in [
        "/",
        "/join?country=NO",
        "/join/thanks",
        "/healthz",
        "/readyz",
        &link,
    ] {
        let get = app.client.get(app.url(path)).send().await.unwrap();
        let head = app.client.head(app.url(path)).send().await.unwrap();
        assert_eq!(head.status(), get.status(), "HEAD {path}");
        assert_eq!(get.status(), 200, "GET {path}");
        let (get_headers, head_headers) = (comparable(get.headers()), comparable(head.headers()));
        assert!(
            head_headers
                .iter()
                .any(|(name, _)| name == "content-length"),
            "HEAD {path} says how long the body would be: {head_headers:?}"
        );
        assert_eq!(head_headers, get_headers, "HEAD {path}");
        let get_body = get.bytes().await.unwrap();
        assert!(!get_body.is_empty(), "GET {path}");
        assert!(
            head.bytes().await.unwrap().is_empty(),
            "HEAD {path} has no body"
        );
    }
    assert_eq!(
        (app.row(&id), followup_of(&app, &id)),
        before,
        "a HEAD of a follow-up link changes nothing"
    );
    app.stop().await;
}

#[tokio::test]
async fn head_of_an_unknown_path_is_404_without_a_body() {
    let app = spawn_app_with(with_followup).await;
    for path in ["/nope", "/followup/not-a-token", "/followup/a/b/c"] {
        let response = app.client.head(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "HEAD {path}");
        assert!(response.bytes().await.unwrap().is_empty(), "HEAD {path}");
    }
    app.stop().await;
}

/// The visitor's pages: their links come in mails, which scanners open with HEAD too.
/// A HEAD of the access page writes no audit row, and a HEAD of a confirm page confirms
/// nothing.
#[tokio::test]
async fn head_of_a_visitors_page_answers_like_get_and_changes_nothing() {
    use joinform::visitor::LinkPurpose;

    use crate::visitor_pages::{token, with_visitors};

    let app = spawn_app_with(with_visitors).await;
    let id = created_id(app.post_json(&valid_json()).await).await;
    let audit = || crate::operator_helpers::audit_of(&app, "access").len();
    let status = || {
        crate::operator_helpers::connect(&app)
            .query_row("SELECT status FROM submissions", [], |row| {
                row.get::<_, String>(0)
            })
            .unwrap()
    };
    let paths = [
        (
            format!("/confirm/{}", token(&app, LinkPurpose::Confirm, &id)),
            200,
        ),
        (
            format!("/withdraw/{}", token(&app, LinkPurpose::Withdraw, &id)),
            200,
        ),
        ("/my-data?lang=ur".to_owned(), 200),
        (
            format!("/my-data/{}", token(&app, LinkPurpose::Access, &id)),
            200,
        ),
        ("/confirm/not-a-token".to_owned(), 404),
    ];
    for (path, expected) in &paths {
        let shown = audit();
        let head = app.client.head(app.url(path)).send().await.unwrap();
        assert_eq!(head.status(), *expected, "HEAD {path}");
        let head_headers = comparable(head.headers());
        assert!(
            head.bytes().await.unwrap().is_empty(),
            "HEAD {path} has no body"
        );
        assert_eq!(
            audit(),
            shown,
            "HEAD {path} shows nothing, and records nothing"
        );
        let get = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(get.status(), *expected, "GET {path}");
        assert_eq!(head_headers, comparable(get.headers()), "HEAD {path}");
    }
    assert_eq!(audit(), 1, "the GET of the access page is recorded");
    assert_eq!(status(), "unconfirmed", "no GET or HEAD confirms");
    app.stop().await;
}
