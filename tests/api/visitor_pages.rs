//! The visitor's pages (issue 16): what the browser of a person who signed up gets from
//! the links in mails joinform sends them (confirm, withdraw, their data) and from
//! `/my-data`. Tokens are made here as the mails make them, with the server's own secret
//! (kept beside the test database) and `joinform::visitor`.

use std::time::{Duration, Instant};

use joinform::config::Settings;
use joinform::domain::{ConfirmationMode, FollowupState, SubmissionId, Timestamp};
use joinform::i18n::Texts;
use joinform::secret::ServerSecret;
use joinform::visitor::{LinkPurpose, VisitorLinkKey};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::helpers::{TestApp, contains, created_id, json_answer, spawn_app_with};
use crate::operator_helpers::{audit_of, connect};

/// Visitors are mailed (double opt-in) everywhere but in Sweden, whose sign-ups are
/// accepted at once and claim no mail: an address signed up there can still be sent
/// its access link today.
pub(crate) fn with_visitors(settings: &mut Settings) {
    settings.server.public_url = Some("http://127.0.0.1".into());
    settings.form.confirmation = ConfirmationMode::DoubleOptIn;
    for section in &mut settings.sections {
        if section.name == "Sweden" {
            section.confirmation = Some(ConfirmationMode::Off);
        }
    }
    settings
        .form
        .extra_fields
        .push(joinform::config::ExtraFieldSettings {
            name: "member_of".into(),
            max_length: 100,
            required: false,
        });
}

async fn app_with_visitors() -> TestApp {
    spawn_app_with(with_visitors).await
}

/// The key the running server signs visitors' links with.
pub(crate) fn visitor_key(app: &TestApp) -> VisitorLinkKey {
    let secret = ServerSecret::load(app.settings.spam.expose_secret(), &app.db_path).unwrap();
    VisitorLinkKey::from_secret(&secret)
}

fn in_a_day() -> Timestamp {
    Timestamp::now().plus(Duration::from_secs(86_400))
}

/// A token for `purpose` on sign-up `id`, working for a day.
pub(crate) fn token(app: &TestApp, purpose: LinkPurpose, id: &str) -> String {
    visitor_key(app).issue(purpose, SubmissionId::parse(id).unwrap(), in_a_day())
}

const ADDRESS: &str = "Leila.Qwertyuiop@Example.org";
const NAME: &str = "Leila Zxcvbnmasd";
const MESSAGE: &str = "Jeg vil bli med, hilsen plmoknijb";

/// A sign-up with every field, in `country`, whose page said `language`.
async fn sign_up(app: &TestApp, email: &str, country: &str, language: &str) -> String {
    created_id(
        app.post_json(&json!({
            "name": NAME, "email": email, "country": country, "consent": true,
            "phone": "+47 912 34 567", "city": "Tromsø <b>",
            "message": format!("{MESSAGE}\nline two {}", "Ø".repeat(900)),
            "member_of": "Unison & <Co>", "language": language, "_lang": language,
        }))
        .await,
    )
    .await
}

/// `text` as the pages' escaper writes it.
pub(crate) fn html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A translation as a page shows it: escaped, its isolates (around `{section}`)
/// made `<bdi>` elements.
pub(crate) fn shown(language: &'static str, key: &'static str) -> String {
    html(Texts::new(language).get(key))
}

/// A translation with a value in its placeholder, as a page shows it.
pub(crate) fn shown_with(
    language: &'static str,
    key: &'static str,
    placeholder: &str,
    value: &str,
) -> String {
    html(Texts::new(language).get(key)).replace(placeholder, &format!("<bdi>{value}</bdi>"))
}

/// A translation with a value that reads left to right (a date) in its placeholder,
/// as a page shows it.
pub(crate) fn shown_with_ltr(
    language: &'static str,
    key: &'static str,
    placeholder: &str,
    value: &str,
) -> String {
    html(Texts::new(language).get(key)).replace(placeholder, &format!("<bdi dir=ltr>{value}</bdi>"))
}

/// A translation whose placeholder is a link to `href` in the words of `label`, as a
/// page shows it.
pub(crate) fn shown_linked(
    language: &'static str,
    key: &'static str,
    placeholder: &str,
    href: &str,
    label: &'static str,
) -> String {
    html(Texts::new(language).get(key)).replace(
        placeholder,
        &format!("<a href=\"{}\">{}</a>", html(href), shown(language, label)),
    )
}

/// Form fields or headers, name and value.
type Pairs<'a> = &'a [(&'a str, &'a str)];

async fn get(app: &TestApp, path: &str) -> (u16, HeaderMap, String) {
    let response = app.client.get(app.url(path)).send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

async fn post(
    app: &TestApp,
    path: &str,
    fields: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> (u16, HeaderMap, String) {
    let mut request = app.client.post(app.url(path)).form(fields);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

/// The headers every visitor's page has: never indexed, cached or referred from, and
/// the policy every page has.
pub(crate) fn assert_page_headers(app_policy: &str, headers: &HeaderMap, case: &str) {
    assert!(
        headers["x-robots-tag"]
            .to_str()
            .unwrap()
            .contains("noindex"),
        "{case}"
    );
    assert_eq!(headers["cache-control"], "no-store", "{case}");
    assert_eq!(headers["referrer-policy"], "no-referrer", "{case}");
    assert_eq!(headers["content-security-policy"], app_policy, "{case}");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{case}"
    );
}

/// The policy of the form page, which every page shares.
pub(crate) async fn policy(app: &TestApp) -> String {
    let (_, headers, _) = get(app, "/join").await;
    headers["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// (status, followup, confirmed_at, confirm_client_hash) of a sign-up.
fn proof_of(app: &TestApp, id: &str) -> (String, Option<String>, Option<String>, Option<String>) {
    connect(app)
        .query_row(
            "SELECT status, followup, confirmed_at, confirm_client_hash FROM submissions
             WHERE id = ?1",
            [id],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )
        .unwrap()
}

/// The outbox rows about sign-up `id` (its notification, visitors' mails), by kind.
fn mails_about(app: &TestApp, id: &str) -> Vec<String> {
    let connection = connect(app);
    let mut statement = connection
        .prepare("SELECT kind FROM outbox WHERE submission_id = ?1 ORDER BY created_at")
        .unwrap();
    statement
        .query_map([id], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn access_mails(app: &TestApp) -> i64 {
    connect(app)
        .query_row(
            "SELECT count(*) FROM outbox WHERE kind = 'access'",
            [],
            |row| row.get(0),
        )
        .unwrap()
}

#[tokio::test]
async fn a_get_confirms_nothing_and_the_button_confirms_once() {
    let app = app_with_visitors().await;
    let policy = policy(&app).await;
    let id = sign_up(&app, ADDRESS, "NO", "en").await;
    assert_eq!(
        proof_of(&app, &id),
        ("unconfirmed".to_owned(), None, None, None)
    );
    assert_eq!(
        mails_about(&app, &id),
        ["confirmation"],
        "no notification yet"
    );

    let token = token(&app, LinkPurpose::Confirm, &id);
    let path = format!("/confirm/{token}");
    let csrf = visitor_key(&app).csrf_value(&token);
    // Deleted unconfirmed by the first daily purge after form.confirm_within: the day
    // after the link's last day, as the mail says.
    let created_at: Timestamp = connect(&app)
        .query_row(
            "SELECT created_at FROM submissions WHERE id = ?1",
            [&id],
            |row| row.get(0),
        )
        .unwrap();
    let deleted_by = created_at
        .plus(app.settings.form.confirm_within.get())
        .plus(Duration::from_secs(86_400))
        .date_text();
    for _ in 0..3 {
        let (status, headers, page) = get(&app, &path).await;
        assert_eq!(status, 200, "{page}");
        assert_page_headers(&policy, &headers, "confirm page");
        assert!(page.starts_with("<!doctype html>\n<html lang=\"en\" dir=\"ltr\">"));
        assert!(
            page.contains(&shown("en", "visitor_confirm_title")),
            "{page}"
        );
        assert!(
            page.contains(&shown_with(
                "en",
                "visitor_confirm_text",
                "{section}",
                "Norway"
            )),
            "{page}"
        );
        assert!(
            page.contains(&shown_with_ltr(
                "en",
                "visitor_confirm_not_you",
                "{date}",
                &deleted_by
            )),
            "deleted by {deleted_by}: {page}"
        );
        assert!(
            page.contains(&format!("name=csrf value=\"{csrf}\"")),
            "{page}"
        );
        assert!(!page.contains("<script"), "works without a script");
        let head = app.client.head(app.url(&path)).send().await.unwrap();
        assert_eq!(head.status(), 200);
    }
    assert_eq!(
        proof_of(&app, &id),
        ("unconfirmed".to_owned(), None, None, None),
        "a GET or HEAD confirms nothing"
    );
    assert_eq!(mails_about(&app, &id), ["confirmation"]);

    let cases: [(Pairs, Pairs, &str); 5] = [
        (&[], &[], "no CSRF value"),
        (&[("csrf", "wrong")], &[], "a wrong CSRF value"),
        (
            &[("csrf", &csrf)],
            &[("sec-fetch-site", "cross-site")],
            "the browser says another site",
        ),
        (
            &[("csrf", &csrf)],
            &[("origin", "https://evil.example")],
            "another origin",
        ),
        (
            &[("csrf", &visitor_key(&app).csrf_value("other"))],
            &[],
            "another link's CSRF value",
        ),
    ];
    for (fields, headers, case) in cases {
        let (status, response_headers, page) = post(&app, &path, fields, headers).await;
        assert_eq!(status, 403, "{case}: {page}");
        assert_page_headers(&policy, &response_headers, case);
        assert!(
            page.contains(&shown("en", "visitor_error_forbidden_title")),
            "{case}: {page}"
        );
    }
    assert_eq!(
        proof_of(&app, &id).0,
        "unconfirmed",
        "refused posts change nothing"
    );

    // From this server's own page (a browser sends `Origin: null` from a page with
    // `Referrer-Policy: no-referrer`).
    let (status, headers, page) = post(
        &app,
        &path,
        &[("csrf", &csrf)],
        &[("origin", "null"), ("sec-fetch-site", "same-origin")],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_page_headers(&policy, &headers, "confirmed");
    assert!(
        page.contains(&shown("en", "visitor_confirmed_title")),
        "{page}"
    );
    assert!(
        page.contains(&shown_with(
            "en",
            "visitor_confirmed_text",
            "{section}",
            "Norway"
        )),
        "{page}"
    );
    let (status, followup, confirmed_at, client_hash) = proof_of(&app, &id);
    assert_eq!(
        (status.as_str(), followup.as_deref()),
        ("accepted", Some("new"))
    );
    assert!(confirmed_at.is_some(), "the time of confirmation is kept");
    let signed_up_from: Option<String> = connect(&app)
        .query_row(
            "SELECT client_hash FROM submissions WHERE id = ?1",
            [&id],
            |row| row.get(0),
        )
        .unwrap();
    assert!(
        client_hash
            .as_ref()
            .is_some_and(|hash| !hash.contains("127.0.0.1"))
    );
    assert_eq!(
        client_hash, signed_up_from,
        "the keyed hash of the confirming client (the same day's key as the sign-up's)"
    );
    assert_eq!(
        mails_about(&app, &id),
        ["confirmation", "notification"],
        "the section's notification is queued"
    );

    // Again: already confirmed, nothing changes; the GET says so too.
    let before = proof_of(&app, &id);
    let (status, _, page) = post(&app, &path, &[("csrf", &csrf)], &[]).await;
    assert_eq!(status, 200);
    assert!(
        page.contains(&shown("en", "visitor_already_title")),
        "{page}"
    );
    assert_eq!(proof_of(&app, &id), before);
    assert_eq!(mails_about(&app, &id).len(), 2);
    let (status, _, page) = get(&app, &path).await;
    assert_eq!(status, 200);
    assert!(
        page.contains(&shown("en", "visitor_already_title")),
        "{page}"
    );
    assert!(!page.contains("name=csrf"), "no button once confirmed");
    app.stop().await;
}

/// Flips one character of a token, keeping it base64url.
fn tampered(token: &str) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    chars[30] = if chars[30] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

/// A link with a slash after its token (mail programs add one at a line's end) is
/// redirected to the link itself, relative so that a proxy's prefix holds.
#[tokio::test]
async fn a_link_with_a_trailing_slash_leads_to_the_link() {
    let app = app_with_visitors().await;
    let id = sign_up(&app, ADDRESS, "NO", "nb").await;
    for (path, purpose) in [
        ("confirm", LinkPurpose::Confirm),
        ("withdraw", LinkPurpose::Withdraw),
        ("my-data", LinkPurpose::Access),
    ] {
        let link = token(&app, purpose, &id);
        let response = app
            .client
            .get(app.url(&format!("/{path}/{link}/")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 308, "{path}");
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        assert_eq!(location, format!("../{link}"), "{path}");
        // Resolved against the slashed address, it is the link itself.
        let target = reqwest::Url::parse(&app.url(&format!("/{path}/{link}/")))
            .unwrap()
            .join(&location)
            .unwrap();
        assert_eq!(target.path(), format!("/{path}/{link}"), "{path}");
        let (status, _, page) = get(&app, target.path()).await;
        assert_eq!(status, 200, "{path}: {page}");
    }
    let (status, _, _) = get(&app, "/confirm/not%20a%20token/").await;
    assert_eq!(status, 404);
    assert_eq!(mails_about(&app, &id), ["confirmation"], "nothing was done");
    app.stop().await;
}

/// `/my-data` refuses an address given twice, as `/join` refuses any field given twice:
/// which one was meant is not guessed (the other would silently get nothing).
#[tokio::test]
async fn my_data_refuses_an_address_given_twice() {
    let app = app_with_visitors().await;
    let (status, _, page) = post(
        &app,
        "/my-data",
        &[
            ("email", "nobody@example.org"),
            ("email", "kari@example.org"),
        ],
        &[],
    )
    .await;
    assert_eq!(status, 400, "{page}");
    assert_eq!(access_mails(&app), 0);
    app.stop().await;
}

/// An expired link whose sign-up is still stored speaks the sign-up's language; an
/// expired confirm link of a sign-up confirmed meanwhile says it is confirmed, not
/// that it was deleted.
#[tokio::test]
async fn an_expired_link_of_a_stored_sign_up_speaks_its_language_and_knows_it_was_confirmed() {
    let app = app_with_visitors().await;
    let id = sign_up(&app, ADDRESS, "NO", "nb").await;
    let key = visitor_key(&app);
    let parsed = SubmissionId::parse(&id).unwrap();
    let past = Timestamp::now().minus(Duration::from_secs(60));
    let english = [("Accept-Language", "en")];
    let get_in_english = |path: String| {
        let request = app
            .client
            .get(app.url(&path))
            .header(english[0].0, english[0].1);
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };

    let expired_confirm = format!("/confirm/{}", key.issue(LinkPurpose::Confirm, parsed, past));
    let (status, page) = get_in_english(expired_confirm.clone()).await;
    assert_eq!(status, 410, "{page}");
    assert!(
        page.contains(&shown("nb", "visitor_error_confirm_expired_title")),
        "{page}"
    );
    let (status, page) = get_in_english(format!(
        "/withdraw/{}",
        key.issue(LinkPurpose::Withdraw, parsed, past)
    ))
    .await;
    assert_eq!(status, 410, "{page}");
    assert!(
        page.contains(&shown("nb", "visitor_error_expired_title")),
        "{page}"
    );

    let confirm = token(&app, LinkPurpose::Confirm, &id);
    let csrf = key.csrf_value(&confirm);
    let (status, _, page) = post(
        &app,
        &format!("/confirm/{confirm}"),
        &[("csrf", &csrf)],
        &[],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let (status, page) = get_in_english(expired_confirm).await;
    assert_eq!(status, 200, "confirmed meanwhile: {page}");
    assert!(
        page.contains(&shown("nb", "visitor_already_title")),
        "{page}"
    );
    app.stop().await;
}

#[tokio::test]
async fn refused_links_get_a_clear_page_with_their_status_never_a_500() {
    let app = app_with_visitors().await;
    let policy = policy(&app).await;
    let id = sign_up(&app, ADDRESS, "NO", "en").await;
    let key = visitor_key(&app);
    let parsed = SubmissionId::parse(&id).unwrap();
    let past = Timestamp::now().minus(Duration::from_secs(60));
    let confirm = token(&app, LinkPurpose::Confirm, &id);
    let withdraw = token(&app, LinkPurpose::Withdraw, &id);
    let nobody = key.issue(LinkPurpose::Confirm, SubmissionId::generate(), in_a_day());
    let cases = [
        (
            format!("/confirm/{}", tampered(&confirm)),
            404,
            "visitor_error_unknown_title",
        ),
        (
            "/confirm/not-a-token".to_owned(),
            404,
            "visitor_error_unknown_title",
        ),
        (
            format!("/confirm/{withdraw}"),
            404,
            "visitor_error_unknown_title",
        ),
        (
            format!("/confirm/{}", key.issue(LinkPurpose::Confirm, parsed, past)),
            410,
            "visitor_error_confirm_expired_title",
        ),
        (
            format!("/confirm/{nobody}"),
            410,
            "visitor_error_gone_title",
        ),
        (
            format!("/withdraw/{confirm}"),
            404,
            "visitor_error_unknown_title",
        ),
        (
            format!("/withdraw/{}", tampered(&withdraw)),
            404,
            "visitor_error_unknown_title",
        ),
        (
            format!(
                "/withdraw/{}",
                key.issue(LinkPurpose::Withdraw, parsed, past)
            ),
            410,
            "visitor_error_expired_title",
        ),
        (
            format!("/my-data/{withdraw}"),
            404,
            "visitor_error_unknown_title",
        ),
        (
            format!("/my-data/{}", key.issue(LinkPurpose::Access, parsed, past)),
            410,
            "visitor_error_expired_title",
        ),
    ];
    for (path, status, heading) in &cases {
        let (found, headers, page) = get(&app, path).await;
        assert_eq!(found, *status, "GET {path}: {page}");
        assert_page_headers(&policy, &headers, path);
        assert!(page.contains(&shown("en", heading)), "GET {path}: {page}");
        assert!(
            !page.contains(NAME) && !page.contains("Qwertyuiop"),
            "{path}"
        );
        if !path.starts_with("/my-data/") {
            let csrf = key.csrf_value(path.rsplit('/').next().unwrap());
            let (found, _, page) = post(&app, path, &[("csrf", &csrf)], &[]).await;
            assert_eq!(found, *status, "POST {path}: {page}");
            assert!(page.contains(&shown("en", heading)), "POST {path}: {page}");
        }
        // A script asking for JSON gets the codes every error has.
        let response = app
            .client
            .get(app.url(path))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        let body: Value = json_answer(response, *status, path).await;
        let code = match status {
            404 => "not_found",
            _ if heading.contains("expired") => "link_expired",
            _ => "gone",
        };
        assert_eq!(body["error"], code, "{path}");
    }
    // The expired pages lead on: a confirm link to the form, a data link to /my-data.
    let (_, _, page) = get(&app, &cases[3].0).await;
    assert!(page.contains("<a href=\"../join\">"), "{page}");
    let (_, _, page) = get(&app, &cases[7].0).await;
    assert!(page.contains("<a href=\"../my-data\">"), "{page}");
    assert_eq!(proof_of(&app, &id).0, "unconfirmed", "nothing changed");
    app.stop().await;
}

/// The database's own files (main file, WAL, shared memory) holding `needle`.
pub(crate) fn files_containing(app: &TestApp, needle: &str) -> Vec<String> {
    let folder = app.db_path.parent().unwrap();
    std::fs::read_dir(folder)
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| {
            name.starts_with("joinform.db")
                && contains(
                    &std::fs::read(folder.join(name)).unwrap_or_default(),
                    needle.as_bytes(),
                )
        })
        .collect()
}

#[tokio::test]
async fn withdrawing_erases_every_sign_up_of_the_address_from_the_files() {
    let app = app_with_visitors().await;
    let policy = policy(&app).await;
    // Two sections, two spellings of the address, and somebody else.
    let norway = sign_up(&app, ADDRESS, "NO", "en").await;
    let sweden = sign_up(&app, &ADDRESS.to_lowercase(), "SE", "en").await;
    let other = created_id(app.post_json(&crate::helpers::valid_json()).await).await;
    assert_eq!(proof_of(&app, &sweden).0, "accepted");
    for needle in ["Qwertyuiop", "plmoknijb"] {
        assert!(
            !files_containing(&app, needle).is_empty(),
            "the probe sees {needle}"
        );
    }

    // The link in the Norway sign-up's mail.
    let token = token(&app, LinkPurpose::Withdraw, &norway);
    let path = format!("/withdraw/{token}");
    let (status, headers, page) = get(&app, &path).await;
    assert_eq!(status, 200, "{page}");
    assert_page_headers(&policy, &headers, "withdraw page");
    assert!(
        page.contains(&shown("en", "visitor_withdraw_text")),
        "{page}"
    );
    let csrf = visitor_key(&app).csrf_value(&token);
    assert!(
        page.contains(&format!("name=csrf value=\"{csrf}\"")),
        "{page}"
    );
    assert_eq!(app.count(), 3, "a GET erases nothing");
    let (status, _, _) = post(&app, &path, &[("csrf", "wrong")], &[]).await;
    assert_eq!(status, 403);
    assert_eq!(app.count(), 3);

    let (status, headers, page) = post(&app, &path, &[("csrf", &csrf)], &[]).await;
    assert_eq!(status, 200, "{page}");
    assert_page_headers(&policy, &headers, "withdrawn");
    assert!(
        page.contains(&shown("en", "visitor_withdrawn_title")),
        "{page}"
    );
    // Mails organisers already have are out of reach, and without form.privacy_url
    // there is nowhere to point to: no instruction that leads nowhere.
    assert!(
        page.contains(&shown("en", "visitor_withdrawn_note")),
        "{page}"
    );
    assert!(!page.contains("<a "), "{page}");
    assert_eq!(app.count(), 1, "somebody else's sign-up stays");
    assert_eq!(proof_of(&app, &other).0, "unconfirmed");
    assert!(mails_about(&app, &norway).is_empty() && mails_about(&app, &sweden).is_empty());

    let forgets = audit_of(&app, "forget");
    assert_eq!(forgets.len(), 1);
    assert_eq!(forgets[0].0, "visitor");
    let details: Value = serde_json::from_str(&forgets[0].2).unwrap();
    assert_eq!(details["submissions"], 2);
    assert_eq!(details["address_hash"].as_str().unwrap().len(), 64);
    assert!(
        !format!("{forgets:?}").to_lowercase().contains("qwertyuiop"),
        "{forgets:?}"
    );
    let free: i64 = connect(&app)
        .query_row("PRAGMA freelist_count", [], |row| row.get(0))
        .unwrap();
    assert_eq!(free, 0, "free pages were returned to the file system");
    for needle in [
        ADDRESS,
        &ADDRESS.to_lowercase(),
        "Qwertyuiop@",
        "Zxcvbnmasd",
        "plmoknijb",
        "Unison & <Co>",
    ] {
        assert!(
            files_containing(&app, needle).is_empty(),
            "`{needle}` is still in {:?}",
            files_containing(&app, needle)
        );
    }

    // The same link again, and the page: nothing is stored any more, which is not an
    // error. Worded to hold in every mode: no word of confirming, which a notice's
    // sign-up never needed.
    for (status, _, page) in [
        post(&app, &path, &[("csrf", &csrf)], &[]).await,
        get(&app, &path).await,
    ] {
        assert_eq!(status, 200, "{page}");
        assert!(
            page.contains(&shown("en", "visitor_nothing_title")),
            "{page}"
        );
        assert!(
            page.contains(&shown("en", "visitor_nothing_text")),
            "{page}"
        );
        assert!(!page.to_lowercase().contains("confirm"), "{page}");
        assert!(!page.contains("name=csrf"), "{page}");
    }
    assert_eq!(audit_of(&app, "forget").len(), 1);
    app.stop().await;
}

/// With `form.privacy_url`, the page after withdrawing says where to ask for the mails
/// organisers already have to be deleted: the privacy notice, linked as the form
/// links it, in the visitor's language.
#[tokio::test]
async fn the_withdrawn_page_points_to_the_privacy_notice_when_there_is_one() {
    const PRIVACY: &str = "https://example.org/privacy?from=join&lang=any";
    let app = spawn_app_with(|s| {
        with_visitors(s);
        s.form.privacy_url = PRIVACY.into();
    })
    .await;
    for (language, email) in [("en", ADDRESS), ("ar", "layla@example.org")] {
        let id = sign_up(&app, email, "NO", language).await;
        let token = token(&app, LinkPurpose::Withdraw, &id);
        let csrf = visitor_key(&app).csrf_value(&token);
        let (status, headers, page) =
            post(&app, &format!("/withdraw/{token}"), &[("csrf", &csrf)], &[]).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(
            headers["referrer-policy"], "no-referrer",
            "the link's token stays"
        );
        assert!(
            page.contains(&shown(language, "visitor_withdrawn_note")),
            "{language}: {page}"
        );
        let sentence = shown_linked(
            language,
            "visitor_withdrawn_privacy",
            "{privacy}",
            PRIVACY,
            "visitor_privacy_link",
        );
        assert!(
            page.contains(&format!("<p>{sentence}</p>")),
            "{language}: `{sentence}` is not on the page: {page}"
        );
    }
    assert_eq!(app.count(), 0);
    app.stop().await;
}

async fn ask_for_data(app: &TestApp, email: &str) -> (u16, Vec<u8>, Duration) {
    let started = Instant::now();
    let response = app
        .client
        .post(app.url("/my-data"))
        .form(&[("email", email)])
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.bytes().await.unwrap().to_vec();
    (status, body, started.elapsed())
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// The median absolute deviation from the median.
fn mad(times: &[Duration]) -> Duration {
    let middle = median(times.to_vec());
    median(times.iter().map(|time| time.abs_diff(middle)).collect())
}

#[tokio::test]
async fn my_data_answers_alike_for_known_and_unknown_addresses_and_mails_only_the_known() {
    let app = app_with_visitors().await;
    let policy = policy(&app).await;
    // Signed up in Sweden: accepted, no mail claimed, so its access link can go today.
    let known = sign_up(&app, ADDRESS, "SE", "en").await;
    assert!(
        mails_about(&app, &known)
            .iter()
            .all(|kind| kind == "notification")
    );

    let (status, headers, page) = get(&app, "/my-data").await;
    assert_eq!(status, 200);
    assert_page_headers(&policy, &headers, "my-data form");
    assert!(page.contains("name=email type=email"), "{page}");

    let (known_status, known_body, _) = ask_for_data(&app, "leila.qwertyuiop@EXAMPLE.org").await;
    let (unknown_status, unknown_body, _) = ask_for_data(&app, "nobody.here@example.org").await;
    assert_eq!(known_status, 200);
    assert_eq!(known_status, unknown_status);
    assert_eq!(
        known_body,
        unknown_body,
        "byte for byte the same: {}",
        String::from_utf8_lossy(&known_body)
    );
    let page = String::from_utf8(known_body.clone()).unwrap();
    // What to do when nothing arrives: the spam folder, the one mail a day, and the
    // withdraw link every earlier mail carries.
    for key in ["visitor_my_data_sent_text", "visitor_my_data_sent_later"] {
        assert!(page.contains(&shown("en", key)), "{key}: {page}");
    }
    assert!(
        !page.contains("name=csrf") && !page.contains("Qwertyuiop"),
        "{page}"
    );
    assert_eq!(access_mails(&app), 1, "the known address gets its link");
    assert_eq!(mails_about(&app, &known).last().unwrap(), "access");

    // Timing: alternate the two, so that load changes on the machine hit both alike.
    let (mut known_times, mut unknown_times) = (Vec::new(), Vec::new());
    for round in 0..15 {
        let order = if round % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for is_known in order {
            let email = if is_known {
                ADDRESS
            } else {
                "nobody.here@example.org"
            };
            let (status, body, took) = ask_for_data(&app, email).await;
            assert_eq!((status, &body), (200, &unknown_body), "round {round}");
            if is_known {
                known_times.push(took);
            } else {
                unknown_times.push(took);
            }
        }
    }
    let difference = median(known_times.clone()).abs_diff(median(unknown_times.clone()));
    let noise = mad(&known_times).max(mad(&unknown_times));
    let bound = Duration::from_millis(25).max(noise * 3);
    eprintln!(
        "my-data medians: known {:?}, unknown {:?}; difference {difference:?}, bound {bound:?}",
        median(known_times.clone()),
        median(unknown_times.clone())
    );
    assert!(
        difference < bound,
        "medians differ by {difference:?} (bound {bound:?}): known {known_times:?}, unknown {unknown_times:?}"
    );
    assert_eq!(access_mails(&app), 1, "one mail a day, however often asked");
    let held: i64 = connect(&app)
        .query_row("SELECT count(*) FROM visitor_mails", [], |row| row.get(0))
        .unwrap();
    assert_eq!(held, 1, "only the known address's day is held");

    // An entry that is not an address gets the form back with its problem.
    for (typed, key) in [
        ("no at sign", "error_invalid_email"),
        ("  ", "error_required"),
    ] {
        let (status, _, page) = post(&app, "/my-data", &[("email", typed)], &[]).await;
        assert_eq!(status, 422, "{typed:?}");
        assert!(page.contains(&shown("en", key)), "{typed:?}: {page}");
        assert!(page.contains("aria-invalid=true"), "{page}");
    }
    // From another site, or not a form, or too long: refused before anything is done.
    let (status, _, _) = post(
        &app,
        "/my-data",
        &[("email", ADDRESS)],
        &[("sec-fetch-site", "cross-site")],
    )
    .await;
    assert_eq!(status, 403);
    let response = app
        .client
        .post(app.url("/my-data"))
        .json(&json!({"email": ADDRESS}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    let long = "x".repeat(5000);
    let (status, _, _) = post(&app, "/my-data", &[("email", &long)], &[]).await;
    assert_eq!(status, 413);
    assert_eq!(access_mails(&app), 1);
    app.stop().await;
}

#[tokio::test]
async fn the_access_page_shows_every_field_and_is_audited() {
    let app = app_with_visitors().await;
    let policy = policy(&app).await;
    let first = sign_up(&app, ADDRESS, "SE", "en").await;
    let second = sign_up(&app, &ADDRESS.to_uppercase(), "NO", "en").await;
    created_id(app.post_json(&crate::helpers::valid_json()).await).await;
    let token = token(&app, LinkPurpose::Access, &second);
    let path = format!("/my-data/{token}");

    let head = app.client.head(app.url(&path)).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert!(audit_of(&app, "access").is_empty(), "a HEAD shows nothing");

    let (status, headers, page) = get(&app, &path).await;
    assert_eq!(status, 200, "{page}");
    if std::env::var_os("SHOW_ACCESS_PAGE").is_some() {
        eprintln!("{page}");
    }
    assert_page_headers(&policy, &headers, "access page");
    let rows = [app.row(&first).unwrap(), app.row(&second).unwrap()];
    let consent = Texts::new("en").consent_text();
    for expected in [
        html(NAME),
        // As typed, the domain in lower case.
        "<bdi dir=ltr>Leila.Qwertyuiop@example.org</bdi>".to_owned(),
        "<bdi dir=ltr>LEILA.QWERTYUIOP@example.org</bdi>".to_owned(),
        "Sweden (SE)".to_owned(),
        "Norway (NO)".to_owned(),
        "<bdi dir=ltr>+47 912 34 567</bdi>".to_owned(),
        html("Tromsø <b>"),
        html(MESSAGE),
        "<dt>Member of</dt><dd><bdi>Unison &amp; &lt;Co&gt;</bdi></dd>".to_owned(),
        html(&consent),
        rows[0].consent_version.clone().unwrap(),
        shown("en", "visitor_status_accepted"),
        shown("en", "visitor_status_duplicate"),
        shown("en", "visitor_followup_new"),
        "<bdi>Sweden</bdi>".to_owned(),
        "<bdi>Norway</bdi>".to_owned(),
        format!(
            "<bdi dir=ltr>{} UTC</bdi>",
            rows[0].created_at.minute_text()
        ),
    ] {
        assert!(
            page.contains(&expected),
            "`{expected}` is not on the page: {page}"
        );
    }
    assert_eq!(
        page.matches("<section class=record>").count(),
        2,
        "both sign-ups, not somebody else's"
    );
    assert!(!page.contains("Kari"), "{page}");
    assert!(!page.contains("<b>"), "stored text is escaped");
    // Its withdraw button posts to a fresh withdraw link with that link's CSRF value.
    let (action, csrf) = {
        let start = page.find("action=\"../withdraw/").unwrap() + "action=\"../".len();
        let action = &page[start..start + page[start..].find('"').unwrap()];
        let rest = &page[start..];
        let at = rest.find("name=csrf value=\"").unwrap() + "name=csrf value=\"".len();
        (
            format!("/{action}"),
            rest[at..at + rest[at..].find('"').unwrap()].to_owned(),
        )
    };
    let withdraw_token = action.trim_start_matches("/withdraw/");
    assert_eq!(csrf, visitor_key(&app).csrf_value(withdraw_token));

    let accesses = audit_of(&app, "access");
    assert_eq!(accesses.len(), 1);
    assert_eq!(accesses[0].0, "visitor");
    assert_eq!(
        serde_json::from_str::<Value>(&accesses[0].2).unwrap(),
        json!({"submissions": 2})
    );
    assert_eq!(accesses[0].3, Some(2));
    assert!(accesses[0].4.is_some(), "completed");

    // The button erases them both.
    let (status, _, page) = post(&app, &action, &[("csrf", &csrf)], &[]).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains(&shown("en", "visitor_withdrawn_title")),
        "{page}"
    );
    assert_eq!(app.count(), 1);
    let (status, _, page) = get(&app, &path).await;
    assert_eq!(status, 200);
    assert!(
        page.contains(&shown("en", "visitor_nothing_title")),
        "{page}"
    );
    assert_eq!(
        audit_of(&app, "access").len(),
        1,
        "nothing shown, nothing recorded"
    );
    app.stop().await;
}

/// The access page's sign-ups, each as its rows: label and value as the page has them.
fn records(page: &str) -> Vec<Vec<(String, String)>> {
    page.split("<section class=record>")
        .skip(1)
        .map(|record| {
            let record = &record[..record.find("</section>").unwrap()];
            record
                .split("<dt>")
                .skip(1)
                .map(|row| {
                    let (label, rest) = row.split_once("</dt>").unwrap();
                    let value = &rest[rest.find('>').unwrap() + 1..rest.find("</dd>").unwrap()];
                    (label.to_owned(), value.to_owned())
                })
                .collect()
        })
        .collect()
}

/// The value of the row labelled by `key` in the one sign-up the access page for
/// `id` shows, if it has that row.
async fn access_row(app: &TestApp, id: &str, key: &'static str) -> Option<String> {
    let (status, _, page) = get(
        app,
        &format!("/my-data/{}", token(app, LinkPurpose::Access, id)),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let records = records(&page);
    assert_eq!(records.len(), 1, "{page}");
    let label = shown("en", key);
    records[0]
        .iter()
        .find(|(shown, _)| *shown == label)
        .map(|(_, value)| value.clone())
}

/// `at` as the access page shows a time.
fn time_shown(at: Timestamp) -> String {
    format!("<bdi dir=ltr>{} UTC</bdi>", at.minute_text())
}

/// A follow-up state set as an organiser's link sets it.
fn mark(app: &TestApp, id: &str, to: FollowupState, at: Timestamp) {
    let mut connection = connect(app);
    let transaction = connection
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    let marked = joinform::store::followup::mark(
        &transaction,
        SubmissionId::parse(id).unwrap(),
        to,
        "test",
        at,
    )
    .unwrap();
    assert!(marked.is_some(), "{id} has a follow-up");
    transaction.commit().unwrap();
}

/// Rows that do not apply to a sign-up are left out rather than shown empty or
/// misleading, and every stored value is still there.
#[tokio::test]
async fn the_access_page_leaves_out_rows_that_do_not_apply() {
    use FollowupState::{Contacted, New};

    let app = app_with_visitors().await;
    let (mail_language, confirmed, changed, followup) = (
        "visitor_label_mail_language",
        "visitor_label_confirmed",
        "visitor_label_followup_at",
        "visitor_label_followup",
    );

    // Sweden mails nobody: no mail language, nothing to confirm, and a follow-up
    // still `new` since the sign-up, whose time is all "last changed" would say.
    let sweden = sign_up(&app, ADDRESS, "SE", "en").await;
    assert_eq!(access_row(&app, &sweden, mail_language).await, None);
    assert_eq!(access_row(&app, &sweden, confirmed).await, None);
    assert_eq!(access_row(&app, &sweden, changed).await, None);
    assert_eq!(
        access_row(&app, &sweden, followup).await,
        Some(shown("en", "visitor_followup_new"))
    );
    assert!(
        access_row(&app, &sweden, "visitor_label_signed_up")
            .await
            .is_some()
    );

    // Norway asks to confirm: while it waits, the page says so.
    let norway = sign_up(&app, "ola.nordmann@example.org", "NO", "en").await;
    assert_eq!(
        access_row(&app, &norway, confirmed).await,
        Some(shown("en", "visitor_not_confirmed"))
    );
    assert_eq!(
        access_row(&app, &norway, mail_language).await.as_deref(),
        Some("<bdi dir=ltr>en</bdi>")
    );
    // Nobody follows it up yet: "Follow-up" says so, no time of a change.
    assert_eq!(
        access_row(&app, &norway, followup).await.as_deref(),
        Some("<bdi>—</bdi>")
    );
    assert_eq!(access_row(&app, &norway, changed).await, None);
    // Confirmed: when; the follow-up starts then, so its time says nothing new.
    let confirm = token(&app, LinkPurpose::Confirm, &norway);
    let csrf = visitor_key(&app).csrf_value(&confirm);
    let (status, _, page) = post(
        &app,
        &format!("/confirm/{confirm}"),
        &[("csrf", &csrf)],
        &[],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let confirmed_at: Timestamp = connect(&app)
        .query_row(
            "SELECT confirmed_at FROM submissions WHERE id = ?1",
            [&norway],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(
        access_row(&app, &norway, confirmed).await,
        Some(time_shown(confirmed_at))
    );
    assert_eq!(access_row(&app, &norway, changed).await, None);

    // An organiser's change is shown, and stays shown when the state goes back to
    // `new`: that time is no longer the sign-up's.
    let contacted = Timestamp::now().plus(Duration::from_secs(3600));
    mark(&app, &norway, Contacted, contacted);
    assert_eq!(
        access_row(&app, &norway, changed).await,
        Some(time_shown(contacted))
    );
    let back = contacted.plus(Duration::from_secs(3600));
    mark(&app, &norway, New, back);
    assert_eq!(
        access_row(&app, &norway, changed).await,
        Some(time_shown(back))
    );
    assert_eq!(
        access_row(&app, &norway, "visitor_label_contacted").await,
        Some(time_shown(contacted))
    );
    app.stop().await;
}

#[tokio::test]
async fn the_join_answer_asks_to_confirm_by_mail_whatever_the_verdict() {
    let app = app_with_visitors().await;
    let body = |country: &str, extra: Value| {
        let mut body = json!({"name": "Kari Nordmann", "email": "kari@example.org",
                              "country": country, "consent": true});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    for (case, post, confirm) in [
        ("double opt-in", body("NO", json!({})), true),
        ("a duplicate", body("NO", json!({})), true),
        ("spam", body("NO", json!({"_gotcha": "x"})), true),
        (
            "a section without",
            body("SE", json!({"email": "ola@example.org"})),
            false,
        ),
    ] {
        let answer: Value = json_answer(app.post_json(&post).await, 201, case).await;
        assert_eq!(answer["status"], "received", "{case}");
        assert_eq!(
            answer.get("confirm_by_mail"),
            confirm.then_some(&json!(true)),
            "{case}: {answer}"
        );
    }
    for (country, location) in [
        ("NO", "/join/thanks?lang=de&confirm=1"),
        ("SE", "/join/thanks?lang=de"),
    ] {
        let response = app
            .post_form(&[
                ("name", "Kari Nordmann"),
                ("email", "kari.form@example.org"),
                ("country", country),
                ("consent", "on"),
                ("_lang", "de"),
            ])
            .await;
        assert_eq!(response.status(), 303);
        assert_eq!(response.headers()["location"], location);
    }
    let (status, _, page) = get(&app, "/join/thanks?lang=de&confirm=1").await;
    assert_eq!(status, 200);
    assert!(
        page.contains(&shown("de", "visitor_thanks_confirm_title")),
        "{page}"
    );
    let (_, _, page) = get(&app, "/join/thanks?lang=de").await;
    assert!(page.contains(&shown("de", "thanks_title")), "{page}");
    // The form's script goes to the confirm page when the answer says so.
    let (_, _, form) = get(&app, "/join?lang=de").await;
    assert!(
        form.contains("data-thanks-confirm=\"/join/thanks?lang=de&amp;confirm=1\""),
        "{form}"
    );
    app.stop().await;
}

/// Every page a visitor can meet, in `language`, as (what, status, page).
async fn visitor_pages_in(app: &TestApp, language: &'static str) -> Vec<(String, u16, String)> {
    let email = format!("person.{language}@example.org");
    let id = sign_up(app, &email, "NO", language).await;
    let mut pages = Vec::new();
    let mut fetch = |what: &str, (status, _, page): (u16, HeaderMap, String)| {
        pages.push((format!("{language} {what}"), status, page));
    };
    fetch(
        "confirm",
        get(
            app,
            &format!("/confirm/{}", token(app, LinkPurpose::Confirm, &id)),
        )
        .await,
    );
    fetch(
        "withdraw",
        get(
            app,
            &format!("/withdraw/{}", token(app, LinkPurpose::Withdraw, &id)),
        )
        .await,
    );
    fetch(
        "access",
        get(
            app,
            &format!("/my-data/{}", token(app, LinkPurpose::Access, &id)),
        )
        .await,
    );
    let query = format!("?lang={language}");
    fetch("my-data", get(app, &format!("/my-data{query}")).await);
    fetch(
        "my-data answer",
        post(app, &format!("/my-data{query}"), &[("email", &email)], &[]).await,
    );
    fetch(
        "my-data problem",
        post(app, &format!("/my-data{query}"), &[("email", "x")], &[]).await,
    );
    fetch(
        "thanks",
        get(app, &format!("/join/thanks{query}&confirm=1")).await,
    );
    fetch(
        "unknown link",
        get(app, &format!("/confirm/not-a-token{query}")).await,
    );
    let confirm = token(app, LinkPurpose::Confirm, &id);
    let csrf = visitor_key(app).csrf_value(&confirm);
    let path = format!("/confirm/{confirm}");
    fetch("forbidden", post(app, &path, &[], &[]).await);
    fetch("confirmed", post(app, &path, &[("csrf", &csrf)], &[]).await);
    let withdraw = token(app, LinkPurpose::Withdraw, &id);
    let csrf = visitor_key(app).csrf_value(&withdraw);
    let path = format!("/withdraw/{withdraw}");
    fetch("withdrawn", post(app, &path, &[("csrf", &csrf)], &[]).await);
    // Gone, the sign-up no longer names a language: the browser's is taken.
    fetch("nothing stored", get(app, &format!("{path}{query}")).await);
    pages
}

#[tokio::test]
async fn every_visitor_page_speaks_every_shipped_language_right_to_left_where_it_should() {
    let app = spawn_app_with(|s| {
        with_visitors(s);
        s.form.privacy_url = "/privacy".into();
    })
    .await;
    let english = visitor_pages_in(&app, "en").await;
    for language in joinform::i18n::shipped() {
        let direction = if ["ar", "fa", "ur"].contains(&language) {
            "rtl"
        } else {
            "ltr"
        };
        let pages = if language == "en" {
            english.clone()
        } else {
            visitor_pages_in(&app, language).await
        };
        for ((what, status, page), (_, english_status, english_page)) in pages.iter().zip(&english)
        {
            assert_eq!(status, english_status, "{what}");
            assert!(
                page.starts_with(&format!(
                    "<!doctype html>\n<html lang=\"{language}\" dir=\"{direction}\">"
                )),
                "{what}: {page}"
            );
            assert!(
                !page.contains("visitor_"),
                "{what}: a key is not translated: {page}"
            );
            for placeholder in ["{section}", "{time}", "{date}", "{privacy}"] {
                assert!(
                    !page.contains(placeholder),
                    "{what}: {placeholder} is not filled in: {page}"
                );
            }
            if what.ends_with(" withdrawn") {
                assert!(
                    page.contains(&format!(
                        "<a href=\"/privacy\">{}</a>",
                        shown(language, "visitor_privacy_link")
                    )),
                    "{what}: {page}"
                );
            }
            if language != "en" {
                let title = |page: &str| {
                    page[page.find("<title>").unwrap()..page.find("</title>").unwrap()].to_owned()
                };
                assert_ne!(title(page), title(english_page), "{what} has its own words");
            }
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn the_pages_are_not_there_when_no_section_mails_its_visitors() {
    // A public address, but every section's confirmation off.
    let app = spawn_app_with(|s| s.server.public_url = Some("http://127.0.0.1".into())).await;
    let id = created_id(app.post_json(&crate::helpers::valid_json()).await).await;
    for (method, path) in [
        (
            "GET",
            format!("/confirm/{}", token(&app, LinkPurpose::Confirm, &id)),
        ),
        (
            "POST",
            format!("/confirm/{}", token(&app, LinkPurpose::Confirm, &id)),
        ),
        (
            "GET",
            format!("/withdraw/{}", token(&app, LinkPurpose::Withdraw, &id)),
        ),
        (
            "POST",
            format!("/withdraw/{}", token(&app, LinkPurpose::Withdraw, &id)),
        ),
        ("GET", "/my-data".to_owned()),
        ("POST", "/my-data".to_owned()),
        (
            "GET",
            format!("/my-data/{}", token(&app, LinkPurpose::Access, &id)),
        ),
    ] {
        let request = match method {
            "GET" => app.client.get(app.url(&path)),
            _ => app
                .client
                .post(app.url(&path))
                .form(&[("email", "kari@example.org")]),
        };
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 404, "{method} {path}");
    }
    assert_eq!(app.count(), 1);
    let answer: Value = json_answer(
        app.post_json(&crate::helpers::valid_json()).await,
        201,
        "every section off",
    )
    .await;
    assert!(answer.get("confirm_by_mail").is_none(), "{answer}");
    app.stop().await;
}

#[tokio::test]
async fn the_pages_have_a_limit_of_their_own() {
    let app = spawn_app_with(|s| {
        with_visitors(s);
        s.rate_limit.per_ip_per_minute = 1;
        s.rate_limit.per_ip_burst = 2;
    })
    .await;
    for _ in 0..2 {
        assert_eq!(get(&app, "/my-data").await.0, 200);
    }
    let (status, headers, page) = get(&app, "/my-data").await;
    assert_eq!(status, 429, "{page}");
    assert!(headers.contains_key("retry-after"));
    assert!(
        headers["x-robots-tag"]
            .to_str()
            .unwrap()
            .contains("noindex")
    );
    // The form's own limits are apart.
    assert_eq!(get(&app, "/join").await.0, 200);
    let metrics = app.metrics.render().unwrap();
    assert!(
        metrics.contains(
            r#"joinform_rate_limited_requests_total{endpoint="visitor",scope="client"} 1"#
        ),
        "{metrics}"
    );
    app.stop().await;
}

/// Waits until the page's heading reads `expected` (after a button's POST, the answer
/// comes to the same address, so the URL cannot tell; while the next page loads there
/// may be no heading at all).
async fn wait_for_heading(browser: &crate::browser::Browser, expected: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let heading = match browser.client.find(fantoccini::Locator::Css("h1")).await {
            Ok(element) => element.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if heading == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the heading still reads {heading:?}, waiting for {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The visitor's pages as a person's browser meets them, in headless Chromium: a
/// German confirm page and its button, the access page and its withdraw button, the
/// my-data form and its answer in French, and the Arabic and Persian pages right to
/// left. Screenshots go to target/screenshots/visitor-*.png, beside the form's.
#[tokio::test]
async fn in_a_browser_the_visitor_confirms_sees_their_data_withdraws_and_asks() {
    use crate::browser::{Browser, DESKTOP, MOBILE};

    let Some(browser) = Browser::start(true).await else {
        return;
    };
    let app = spawn_app_with(|s| {
        with_visitors(s);
        s.form.privacy_url = "/privacy".into();
    })
    .await;
    let goto = |path: String| {
        let client = browser.client.clone();
        let url = app.url(&path);
        async move { client.goto(&url).await.unwrap() }
    };
    let heading = |language: &'static str, key: &'static str| Texts::new(language).get(key);

    // Confirm, in German.
    let id = created_id(
        app.post_json(&json!({
            "name": NAME, "email": "ada.lovelace@example.org", "country": "NO",
            "consent": true, "phone": "+47 912 34 567", "city": "Tromsø <b>",
            "message": "Ich möchte mitmachen.\nAm liebsten bei der Jugendgruppe.",
            "member_of": "Unison & <Co>", "language": "de", "_lang": "de",
        }))
        .await,
    )
    .await;
    goto(format!(
        "/confirm/{}",
        token(&app, LinkPurpose::Confirm, &id)
    ))
    .await;
    assert_eq!(
        browser.text("h1").await,
        heading("de", "visitor_confirm_title")
    );
    browser
        .screenshot("visitor-confirm-de-desktop.png", DESKTOP)
        .await;
    browser
        .screenshot("visitor-confirm-de-mobile.png", MOBILE)
        .await;
    browser.click("form button").await;
    wait_for_heading(&browser, heading("de", "visitor_confirmed_title")).await;
    assert!(browser.text("main").await.contains("Norway"));
    assert_eq!(proof_of(&app, &id).0, "accepted", "the button confirmed it");
    browser
        .screenshot("visitor-confirmed-de-mobile.png", MOBILE)
        .await;

    // What is stored, and its withdraw button, in German.
    goto(format!(
        "/my-data/{}",
        token(&app, LinkPurpose::Access, &id)
    ))
    .await;
    assert_eq!(
        browser.text("h1").await,
        heading("de", "visitor_access_title")
    );
    let shown = browser.text("main").await;
    for value in [
        NAME,
        "ada.lovelace@example.org",
        "Tromsø <b>",
        "Unison & <Co>",
    ] {
        assert!(shown.contains(value), "{value} is not shown: {shown}");
    }
    browser
        .screenshot("visitor-access-de-desktop.png", DESKTOP)
        .await;
    browser
        .screenshot("visitor-access-de-mobile.png", MOBILE)
        .await;
    browser.click("form button").await;
    wait_for_heading(&browser, heading("de", "visitor_withdrawn_title")).await;
    assert!(
        browser
            .client
            .current_url()
            .await
            .unwrap()
            .path()
            .starts_with("/withdraw/"),
        "the button posted to the withdraw link"
    );
    assert_eq!(app.count(), 0, "withdrawn: nothing of them is stored");
    assert_eq!(
        browser.attr("main p a", "href").await.as_deref(),
        Some("/privacy"),
        "the privacy notice says how to reach the organisation"
    );
    browser
        .screenshot("visitor-withdrawn-de-mobile.png", MOBILE)
        .await;

    // The my-data form and its answer, in French.
    goto("/my-data?lang=fr".to_owned()).await;
    assert_eq!(
        browser.text("h1").await,
        heading("fr", "visitor_my_data_title")
    );
    browser
        .screenshot("visitor-my-data-fr-mobile.png", MOBILE)
        .await;
    browser.type_into("#f-email", "nobody@example.org").await;
    browser.click("form button").await;
    wait_for_heading(&browser, heading("fr", "visitor_my_data_sent_title")).await;
    browser
        .screenshot("visitor-my-data-sent-fr-mobile.png", MOBILE)
        .await;

    // Right to left: an Arabic confirm page, and a Persian access page holding Latin
    // and Persian text, a phone number and an address.
    let arabic = sign_up(&app, "layla@example.org", "NO", "ar").await;
    goto(format!(
        "/confirm/{}",
        token(&app, LinkPurpose::Confirm, &arabic)
    ))
    .await;
    assert_eq!(
        browser.text("h1").await,
        heading("ar", "visitor_confirm_title")
    );
    let direction = browser
        .script("return getComputedStyle(document.querySelector('main p')).direction")
        .await;
    assert_eq!(direction, "rtl");
    browser
        .screenshot("visitor-confirm-ar-mobile.png", MOBILE)
        .await;
    let persian = created_id(
        app.post_json(&json!({
            "name": "Shirin Ebadi", "email": "shirin@example.org", "country": "SE",
            "consent": true, "phone": "+46 70 123 45 67", "city": "تهران",
            "message": "سلام، می‌خواهم عضو شوم.", "language": "fa", "_lang": "fa",
        }))
        .await,
    )
    .await;
    goto(format!(
        "/my-data/{}?lang=fa",
        token(&app, LinkPurpose::Access, &persian)
    ))
    .await;
    assert_eq!(
        browser.text("h1").await,
        heading("fa", "visitor_access_title")
    );
    assert_eq!(browser.attr("html", "dir").await.as_deref(), Some("rtl"));
    browser
        .screenshot("visitor-access-fa-desktop.png", DESKTOP)
        .await;
    browser
        .screenshot("visitor-access-fa-mobile.png", MOBILE)
        .await;
    browser.stop().await;
    app.stop().await;
}
