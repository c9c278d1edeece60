//! The follow-up pages (issue 15): what an organiser's browser gets from a link in a
//! follow-up mail. Tokens are made here as the mails make them, with the server's own
//! secret (kept beside the test database) and `joinform::followup::links`.

use std::time::Duration;

use joinform::domain::{SubmissionId, Timestamp};
use joinform::followup::links::{LinkKey, PersonToken, SectionToken, csrf_value};
use joinform::secret::ServerSecret;
use serde_json::json;

use crate::helpers::{TestApp, created_id, spawn_app_with};
use crate::operator_helpers::add_token;

/// Follow-up is on exactly when the server has a public address.
pub(crate) fn with_followup(settings: &mut joinform::config::Settings) {
    settings.server.public_url = Some("http://127.0.0.1".into());
}

async fn app_with_followup() -> TestApp {
    spawn_app_with(with_followup).await
}

/// The key the running server signs links with.
pub(crate) fn link_key(app: &TestApp) -> LinkKey {
    let secret = ServerSecret::load(app.settings.spam.expose_secret(), &app.db_path).unwrap();
    LinkKey::from_secret(&secret)
}

pub(crate) fn in_a_day() -> Timestamp {
    Timestamp::now().plus(Duration::from_secs(86_400))
}

pub(crate) fn a_minute_ago() -> Timestamp {
    Timestamp::now().minus(Duration::from_secs(60))
}

pub(crate) fn person_token(app: &TestApp, id: &str, section: &str, expires: Timestamp) -> String {
    PersonToken::issue(
        &link_key(app),
        SubmissionId::parse(id).unwrap(),
        section,
        expires,
    )
}

/// A sign-up with everything a page must never show.
async fn sign_up(app: &TestApp, name: &str, email: &str, country: &str) -> String {
    created_id(
        app.post_json(&json!({
            "name": name, "email": email, "country": country, "consent": true,
            "phone": "+47 912 34 567", "city": "Tromsø",
            "message": "Hemmelig melding",
        }))
        .await,
    )
    .await
}

/// Words of the sign-up that no follow-up page may contain.
const PRIVATE: [&str; 5] = [
    "Nordmann",
    "kari@example.org",
    "912 34 567",
    "Hemmelig",
    "Tromsø",
];

/// (followup, followup_by, contacted_at) of a sign-up.
pub(crate) fn followup_of(
    app: &TestApp,
    id: &str,
) -> (Option<String>, Option<String>, Option<String>) {
    let connection = rusqlite::Connection::open(&app.db_path).unwrap();
    connection
        .query_row(
            "SELECT followup, followup_by, contacted_at FROM submissions WHERE id = ?1",
            [id],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .unwrap()
}

/// (actor, details) of every follow-up audit row, oldest first.
fn followup_audit(app: &TestApp) -> Vec<(String, serde_json::Value)> {
    let connection = rusqlite::Connection::open(&app.db_path).unwrap();
    let mut statement = connection
        .prepare("SELECT actor, details FROM audit WHERE action = 'followup' ORDER BY id")
        .unwrap();
    statement
        .query_map([], |row| {
            let details: String = row.get(1)?;
            Ok((row.get(0)?, serde_json::from_str(&details).unwrap()))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Form fields or headers, name and value.
type Pairs<'a> = &'a [(&'a str, &'a str)];

async fn get(app: &TestApp, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
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
) -> (u16, Option<String>, String) {
    let mut request = app.client.post(app.url(path)).form(fields);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .map(|value| value.to_str().unwrap().to_owned());
    (status, location, response.text().await.unwrap())
}

fn assert_private(body: &str, case: &str) {
    for word in PRIVATE {
        assert!(!body.contains(word), "{case}: `{word}` is on the page");
    }
}

#[tokio::test]
async fn a_person_link_shows_the_sign_up_in_the_sections_language_and_a_get_changes_nothing() {
    let app = app_with_followup().await;
    let id = sign_up(&app, "Kari Nordmann", "kari@example.org", "NO").await;
    let token = person_token(&app, &id, "Norway", in_a_day());
    let (_, form_headers, _) = get(&app, "/join").await;
    for _ in 0..3 {
        let (status, headers, page) = get(&app, &format!("/followup/{token}")).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(headers["cache-control"], "no-store");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert!(
            headers["x-robots-tag"]
                .to_str()
                .unwrap()
                .contains("noindex")
        );
        assert_eq!(
            headers["content-security-policy"], form_headers["content-security-policy"],
            "the same policy as every page"
        );
        assert!(
            page.starts_with("<!doctype html>\n<html lang=\"nb\""),
            "{page}"
        );
        assert!(page.contains("<h1><bdi>Kari</bdi></h1>"), "{page}");
        assert!(
            page.contains("<dd>Norge</dd>"),
            "the country in Norwegian: {page}"
        );
        assert!(page.contains("<strong id=state>Ny</strong>"), "{page}");
        assert!(page.contains("(i dag)"), "{page}");
        assert!(page.contains(&format!(
            "name=csrf value=\"{}\"",
            csrf_value(&link_key(&app), &token)
        )));
        for state in ["contacted", "joined", "declined", "unreachable"] {
            assert!(
                page.contains(&format!("name=state value=\"{state}\"")),
                "{state}"
            );
        }
        assert!(!page.contains("<script"), "works without a script");
        assert_private(&page, "the person page");
    }
    assert_eq!(followup_of(&app, &id), (Some("new".into()), None, None));
    assert!(followup_audit(&app).is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_post_marks_the_sign_up_once_and_goes_back_to_its_page() {
    let app = app_with_followup().await;
    let id = sign_up(&app, "Kari Nordmann", "kari@example.org", "NO").await;
    let token = person_token(&app, &id, "Norway", in_a_day());
    let csrf = csrf_value(&link_key(&app), &token);
    let path = format!("/followup/{token}");

    let (status, location, _) =
        post(&app, &path, &[("state", "contacted"), ("csrf", &csrf)], &[]).await;
    assert_eq!(status, 303);
    assert_eq!(
        location.as_deref(),
        Some(format!("{token}?saved=contacted").as_str())
    );
    let (state, by, contacted_at) = followup_of(&app, &id);
    assert_eq!(
        (state.as_deref(), by.as_deref()),
        (Some("contacted"), Some("link"))
    );
    assert!(contacted_at.is_some());
    let audit = followup_audit(&app);
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].0, "link");
    assert_eq!(
        audit[0].1,
        json!({"id": id, "from": "new", "to": "contacted"})
    );

    // Idempotent: the same press again changes and records nothing.
    let (status, _, _) = post(&app, &path, &[("state", "contacted"), ("csrf", &csrf)], &[]).await;
    assert_eq!(status, 303);
    assert_eq!(followup_of(&app, &id), (state, by, contacted_at.clone()));
    assert_eq!(followup_audit(&app).len(), 1);

    // The page the redirect leads to says what was saved.
    let (status, _, page) = get(&app, &format!("{path}?saved=contacted")).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("<p class=saved role=status>Lagret: Kontaktet.</p>"),
        "{page}"
    );
    assert!(
        page.contains("<strong id=state>Kontaktet</strong> siden "),
        "{page}"
    );
    assert!(
        page.contains("value=\"contacted\" class=on aria-current=true"),
        "{page}"
    );

    // A later outcome keeps the first contact time; a stale `saved` is not shown.
    let (status, _, _) = post(&app, &path, &[("state", "joined"), ("csrf", &csrf)], &[]).await;
    assert_eq!(status, 303);
    let (state, _, later) = followup_of(&app, &id);
    assert_eq!((state.as_deref(), later), (Some("joined"), contacted_at));
    assert_eq!(followup_audit(&app).len(), 2);
    let (_, _, page) = get(&app, &format!("{path}?saved=contacted")).await;
    assert!(!page.contains("class=saved"), "{page}");
    app.stop().await;
}

#[tokio::test]
async fn refused_links_get_their_4xx_and_show_nobody() {
    let app = app_with_followup().await;
    let id = sign_up(&app, "Kari Nordmann", "kari@example.org", "NO").await;
    let good = person_token(&app, &id, "Norway", in_a_day());
    let mut tampered = good.clone().into_bytes();
    tampered[30] = if tampered[30] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let expired = person_token(&app, &id, "Norway", a_minute_ago());
    let other_section = person_token(&app, &id, "Sweden", in_a_day());
    let other_key = PersonToken::issue(
        &LinkKey::from_secret(&ServerSecret::from_bytes(&[9; 32])),
        SubmissionId::parse(&id).unwrap(),
        "Norway",
        in_a_day(),
    );
    let unknown_id = person_token(
        &app,
        &SubmissionId::generate().to_string(),
        "Norway",
        in_a_day(),
    );
    let section_token = SectionToken::issue(&link_key(&app), "Norway", in_a_day());
    let cases: [(&str, &str, u16, &str); 8] = [
        ("abc", "malformed", 404, ""),
        (&tampered, "one character changed", 404, ""),
        (&other_section, "signed for another section", 404, ""),
        (&other_key, "signed under another secret", 404, ""),
        // Signed by this server, so as good as erased: only it makes such links.
        (
            &unknown_id,
            "a sign-up not there",
            410,
            "finnes ikke lenger",
        ),
        (&section_token, "a section token", 404, ""),
        (&"A".repeat(600), "overlong", 404, ""),
        (&expired, "expired", 410, "Denne lenken er utløpt"),
    ];
    for (token, case, status, words) in cases {
        let path = format!("/followup/{token}");
        let (got, headers, page) = get(&app, &path).await;
        assert_eq!(got, status, "GET {case}: {page}");
        assert!(page.contains(words), "{case}: {page}");
        assert!(page.starts_with("<!doctype html>"), "{case}: an error page");
        assert!(
            headers["x-robots-tag"]
                .to_str()
                .unwrap()
                .contains("noindex")
        );
        assert_private(&page, case);
        assert!(!page.contains("Kari"), "{case}");
        let csrf = csrf_value(&link_key(&app), token);
        let (got, _, page) = post(&app, &path, &[("state", "joined"), ("csrf", &csrf)], &[]).await;
        assert_eq!(got, status, "POST {case}: {page}");
        assert!(!page.contains("Kari"), "{case}");
    }
    assert_eq!(followup_of(&app, &id), (Some("new".into()), None, None));
    assert!(followup_audit(&app).is_empty());
    app.stop().await;
}

#[tokio::test]
async fn an_erased_sign_up_is_gone() {
    let mut admin = String::new();
    let app = spawn_app_with(|settings| {
        with_followup(settings);
        admin = add_token(settings, "dpo", &[]);
    })
    .await;
    let id = sign_up(&app, "Kari Nordmann", "kari@example.org", "NO").await;
    let token = person_token(&app, &id, "Norway", in_a_day());
    let csrf = csrf_value(&link_key(&app), &token);
    let expired = person_token(&app, &id, "Norway", a_minute_ago());
    let forgotten = app
        .client
        .post(format!("{}/admin/forget", app.admin_address))
        .bearer_auth(&admin)
        .json(&json!({"email": "kari@example.org"}))
        .send()
        .await
        .unwrap();
    assert_eq!(forgotten.status(), 200);

    let path = format!("/followup/{token}");
    let (status, _, page) = get(&app, &path).await;
    assert_eq!(status, 410, "{page}");
    assert!(
        page.contains("Denne innmeldingen finnes ikke lenger"),
        "{page}"
    );
    assert!(!page.contains("Kari"));
    let (status, _, page) = post(&app, &path, &[("state", "joined"), ("csrf", &csrf)], &[]).await;
    assert_eq!(status, 410, "{page}");
    assert!(!page.contains("Kari"));
    let (status, _, _) = get(&app, &format!("/followup/{expired}")).await;
    assert_eq!(status, 410, "an old link to an erased sign-up is just old");
    assert_eq!(app.count(), 0);
    assert!(followup_audit(&app).is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_post_needs_the_pages_csrf_value_a_known_state_and_this_site() {
    let app = app_with_followup().await;
    let id = sign_up(&app, "Kari Nordmann", "kari@example.org", "NO").await;
    let token = person_token(&app, &id, "Norway", in_a_day());
    let key = link_key(&app);
    let csrf = csrf_value(&key, &token);
    let other = person_token(
        &app,
        &id,
        "Norway",
        Timestamp::now().plus(Duration::from_secs(7200)),
    );
    let path = format!("/followup/{token}");
    let own_origin = app.address.clone();
    let cases: [(Pairs, Pairs, u16, &str); 9] = [
        (&[("state", "joined")], &[], 403, "no CSRF value"),
        (
            &[("state", "joined"), ("csrf", "x")],
            &[],
            403,
            "a wrong CSRF value",
        ),
        (
            &[("state", "joined"), ("csrf", &csrf_value(&key, &other))],
            &[],
            403,
            "another link's CSRF value",
        ),
        (
            &[("state", "new"), ("csrf", &csrf)],
            &[],
            400,
            "back to new",
        ),
        (
            &[("state", "spam"), ("csrf", &csrf)],
            &[],
            400,
            "not a state",
        ),
        (&[("csrf", &csrf)], &[], 400, "no state"),
        (
            &[("state", "joined"), ("csrf", &csrf)],
            &[("Origin", "https://evil.example")],
            403,
            "another site's Origin",
        ),
        (
            &[("state", "joined"), ("csrf", &csrf)],
            &[("Sec-Fetch-Site", "cross-site")],
            403,
            "the browser says another site",
        ),
        (
            &[("state", "joined"), ("csrf", &csrf)],
            &[("Origin", "http://127.0.0.1.evil.example")],
            403,
            "an Origin that only starts like ours",
        ),
    ];
    for (fields, headers, status, case) in cases {
        let (got, _, page) = post(&app, &path, fields, headers).await;
        assert_eq!(got, status, "{case}: {page}");
        assert!(!page.contains("Kari"), "{case}");
        if status == 400 {
            assert!(
                page.contains("<strong>state</strong>: Velg en av knappene"),
                "{case}: {page}"
            );
        }
        // Every refusal of a genuine link is in its section's language, a cross-site
        // post's included.
        if status == 403 {
            assert!(page.contains("Ingenting ble lagret"), "{case}: {page}");
        }
        assert_eq!(followup_of(&app, &id).0.as_deref(), Some("new"), "{case}");
    }
    // This server's own Origin, the public address's, and `null` (which browsers send
    // from a no-referrer page) are all fine.
    for (origin, state) in [
        (own_origin.as_str(), "contacted"),
        ("http://127.0.0.1", "declined"),
        ("null", "unreachable"),
    ] {
        let (status, _, _) = post(
            &app,
            &path,
            &[("state", state), ("csrf", &csrf)],
            &[("Origin", origin), ("Sec-Fetch-Site", "same-origin")],
        )
        .await;
        assert_eq!(status, 303, "{origin}");
        assert_eq!(followup_of(&app, &id).0.as_deref(), Some(state), "{origin}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_section_link_lists_its_waiting_sign_ups_and_marks_only_its_own() {
    let app = app_with_followup().await;
    let kari = sign_up(&app, "Kari Nordmann", "kari@example.org", "NO").await;
    let ola = sign_up(&app, "Ola Nordmann", "ola@example.org", "SJ").await;
    let alice = sign_up(&app, "Alice Smith", "alice@example.org", "GB").await;
    let key = link_key(&app);
    let token = SectionToken::issue(&key, "Norway", in_a_day());
    let csrf = csrf_value(&key, &token);
    let path = format!("/followup/section/{token}");

    let (status, headers, page) = get(&app, &path).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(
        headers["x-robots-tag"]
            .to_str()
            .unwrap()
            .contains("noindex")
    );
    assert!(page.contains("<html lang=\"nb\""));
    let (at_kari, at_ola) = (
        page.find("<bdi>Kari</bdi>").unwrap(),
        page.find("<bdi>Ola</bdi>").unwrap(),
    );
    assert!(at_kari < at_ola, "oldest first");
    assert!(page.contains("Svalbard og Jan Mayen"), "{page}");
    assert!(!page.contains("Alice"), "another section's sign-up");
    assert_private(&page, "the section page");

    // Another section's sign-up, an id that is none, a made-up id: as if not there.
    for (id, case) in [
        (alice.as_str(), "another section's"),
        ("not an id", "not an id"),
        (&SubmissionId::generate().to_string(), "no such sign-up"),
    ] {
        let (status, _, page) = post(
            &app,
            &path,
            &[("id", id), ("state", "joined"), ("csrf", &csrf)],
            &[],
        )
        .await;
        assert_eq!(status, 404, "{case}: {page}");
        assert!(!page.contains("Alice") && !page.contains("Kari"), "{case}");
    }
    assert_eq!(followup_of(&app, &alice), (Some("new".into()), None, None));
    let (status, _, _) = post(
        &app,
        &path,
        &[("id", &kari), ("state", "joined"), ("csrf", "x")],
        &[],
    )
    .await;
    assert_eq!(status, 403);

    let (status, location, _) = post(
        &app,
        &path,
        &[("id", &kari), ("state", "contacted"), ("csrf", &csrf)],
        &[],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(
        location.as_deref(),
        Some(format!("{token}?saved=contacted").as_str())
    );
    assert_eq!(followup_of(&app, &kari).1.as_deref(), Some("link"));
    let (_, _, page) = get(&app, &format!("{path}?saved=contacted")).await;
    assert!(
        !page.contains("<bdi>Kari</bdi>"),
        "marked, so no longer waiting"
    );
    assert!(page.contains("<bdi>Ola</bdi>"));
    assert!(page.contains("Lagret: Kontaktet."), "{page}");

    let (status, _, _) = post(
        &app,
        &path,
        &[("id", &ola), ("state", "unreachable"), ("csrf", &csrf)],
        &[],
    )
    .await;
    assert_eq!(status, 303);
    let (_, _, page) = get(&app, &path).await;
    assert!(page.contains("Ingen venter."), "{page}");

    // A section link that is old, altered or a person link.
    let expired = SectionToken::issue(&key, "Norway", a_minute_ago());
    let other_key = SectionToken::issue(
        &LinkKey::from_secret(&ServerSecret::from_bytes(&[9; 32])),
        "Norway",
        in_a_day(),
    );
    let person = person_token(&app, &kari, "Norway", in_a_day());
    for (token, status, case) in [
        (expired.as_str(), 410, "expired"),
        (other_key.as_str(), 404, "another secret"),
        (person.as_str(), 404, "a person token"),
    ] {
        let (got, _, page) = get(&app, &format!("/followup/section/{token}")).await;
        assert_eq!(got, status, "{case}: {page}");
        assert!(!page.contains("Ola"), "{case}");
    }
    app.stop().await;
}

#[tokio::test]
async fn without_follow_up_the_pages_do_not_exist() {
    let app = spawn_app_with(|settings| settings.server.public_url = None).await;
    let id = sign_up(&app, "Kari Nordmann", "kari@example.org", "NO").await;
    let token = person_token(&app, &id, "Norway", in_a_day());
    let section = SectionToken::issue(&link_key(&app), "Norway", in_a_day());
    let csrf = csrf_value(&link_key(&app), &token);
    let (_, _, unknown) = get(&app, "/no/such/page").await;
    for path in [
        format!("/followup/{token}"),
        format!("/followup/section/{section}"),
    ] {
        let (status, _, page) = get(&app, &path).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(page, unknown, "the page of any unknown path");
        let (status, _, _) = post(&app, &path, &[("state", "joined"), ("csrf", &csrf)], &[]).await;
        assert_eq!(status, 404, "{path}");
    }
    assert_eq!(followup_of(&app, &id).0.as_deref(), Some("new"));
    app.stop().await;
}

/// Guessing at tokens is bounded per client: past the follow-up pages' burst a client
/// gets 429 with Retry-After, while another client still gets in.
#[tokio::test]
async fn a_client_guessing_at_links_is_rate_limited() {
    let app = spawn_app_with(|settings| {
        with_followup(settings);
        // Clients told apart by the proxy's header, as behind a reverse proxy.
        settings.server.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        settings.rate_limit.followup_burst = 20;
    })
    .await;
    let id = sign_up(&app, "Kari Nordmann", "kari@example.org", "NO").await;
    let client = reqwest::Client::new();
    let get_as = |address: &'static str, path: String| {
        client
            .get(app.url(&path))
            .header("x-forwarded-for", address)
            .send()
    };
    for n in 0..20 {
        let status = get_as("203.0.113.5", format!("/followup/guess{n}"))
            .await
            .unwrap()
            .status();
        assert_eq!(status, 404, "guess {n} is within the burst");
    }
    let refused = get_as("203.0.113.5", "/followup/one-more-guess".into())
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    // The quota is the client's own: a genuine link from another client still works.
    let token = person_token(&app, &id, "Norway", in_a_day());
    let other = get_as("198.51.100.7", format!("/followup/{token}"))
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
    app.stop().await;
}

/// Waiting sign-ups stored directly, `count` of them in Norway, a day old.
pub(crate) fn store_waiting(app: &TestApp, count: usize) {
    let connection = crate::operator_helpers::connect(app);
    let day_ago = Timestamp::now().minus(Duration::from_secs(86_400));
    for n in 0..count {
        let created = day_ago.plus(Duration::from_secs(u64::try_from(n).unwrap()));
        connection
            .execute(
                "INSERT INTO submissions (id, created_at, name, email, country, consent,
                                          status, section, email_key, followup, followup_at)
                 VALUES (?1, ?2, ?3, ?4, 'NO', 1, 'accepted', 'Norway', ?4, 'new', ?2)",
                rusqlite::params![
                    SubmissionId::first_at(created),
                    created,
                    format!("Person{n} Nordmann"),
                    format!("person{n}@example.org"),
                ],
            )
            .unwrap();
    }
}

/// A section with more waiting than a page shows lists the longest-waiting and says
/// how many more there are.
#[tokio::test]
async fn a_long_section_list_shows_the_first_and_counts_the_rest() {
    use joinform::http::followup_page::SECTION_LIST_LIMIT;

    let app = app_with_followup().await;
    store_waiting(&app, SECTION_LIST_LIMIT + 5);
    let token = SectionToken::issue(&link_key(&app), "Norway", in_a_day());
    let (status, _, page) = get(&app, &format!("/followup/section/{token}")).await;
    assert_eq!(status, 200);
    assert_eq!(page.matches("<li id=\"p-").count(), SECTION_LIST_LIMIT);
    assert!(page.contains(">Person0<"), "the longest-waiting first");
    assert!(!page.contains(&format!(">Person{SECTION_LIST_LIMIT}<")));
    assert!(page.contains("5 til venter"), "{page}");
    app.stop().await;
}
