//! Spam and abuse defence, layer by layer, over real HTTP: what the sender sees, what
//! is stored, and what an organiser is mailed.

use std::net::IpAddr;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_with, valid_json};

/// An HTTP client whose connections come from `local` (any 127.x address reaches the
/// server on 127.0.0.1, so tests can play several clients and a proxy).
pub(crate) fn client_from(local: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(local.parse::<IpAddr>().unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn post_from(app: &TestApp, client: &reqwest::Client, body: &Value) -> reqwest::Response {
    client
        .post(app.url("/join"))
        .json(body)
        .send()
        .await
        .unwrap()
}

fn with(fields: &[(&str, &str)]) -> Value {
    let mut body = valid_json();
    for (name, value) in fields {
        body[*name] = json!(value);
    }
    body
}

/// (status, spam reasons) of a stored submission.
fn verdict(app: &TestApp, id: &str) -> Option<(String, Option<String>)> {
    let connection = rusqlite::Connection::open(&app.db_path).unwrap();
    connection
        .query_row(
            "SELECT status, spam_reasons FROM submissions WHERE id = ?1",
            [id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .ok()
}

fn spam_reasons(app: &TestApp, id: &str) -> String {
    let (status, reasons) = verdict(app, id).expect("the row is stored");
    assert_eq!(status, "spam");
    reasons.expect("spam has reasons")
}

/// The .eml files the file transport wrote, once the worker had time to write them.
async fn mail_files(app: &TestApp, expected: usize) -> Vec<String> {
    let dir = app.settings.mail.file_dir.clone();
    let read = || -> Vec<String> {
        std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while read().len() < expected && tokio::time::Instant::now() < deadline {
        app.delivery_nudge().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Give a wrongly queued extra message the chance to show up too.
    tokio::time::sleep(Duration::from_millis(300)).await;
    read()
}

async fn token(app: &TestApp) -> String {
    let response = app.client.get(app.url("/join/token")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["field"], "_token");
    body["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_honeypot_hit_looks_exactly_like_success_and_sends_no_mail() {
    let app = spawn_app_with(|_| {}).await;
    let real = app.post_json(&valid_json()).await;
    let bot = app
        .post_json(&with(&[
            ("email", "bot@example.net"),
            ("_gotcha", "http://x"),
        ]))
        .await;
    assert_eq!(real.status(), bot.status());
    let header_names = |response: &reqwest::Response| {
        let mut names: Vec<String> = response
            .headers()
            .keys()
            .map(|k| k.as_str().to_owned())
            .filter(|name| name != "date")
            .collect();
        names.sort();
        names
    };
    assert_eq!(header_names(&real), header_names(&bot));
    let real: Value = real.json().await.unwrap();
    let bot: Value = bot.json().await.unwrap();
    let shape = |body: &Value| {
        let mut keys: Vec<String> = body.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        (
            keys,
            body["status"].clone(),
            body["id"].as_str().unwrap().len(),
        )
    };
    assert_eq!(shape(&real), shape(&bot));
    assert_ne!(real["id"], bot["id"]);

    // The same for a plain HTML form: the same redirect.
    let html_real = app
        .post_form(&[
            ("name", "Ola"),
            ("email", "ola@example.org"),
            ("country", "NO"),
            ("consent", "on"),
        ])
        .await;
    let html_bot = app
        .post_form(&[
            ("name", "Ola"),
            ("email", "ola2@example.org"),
            ("country", "NO"),
            ("consent", "on"),
            ("_gotcha", "filled"),
        ])
        .await;
    assert_eq!(html_real.status(), 303);
    assert_eq!(html_bot.status(), 303);
    assert_eq!(
        html_real.headers()["location"],
        html_bot.headers()["location"]
    );

    let bot_id = bot["id"].as_str().unwrap();
    assert_eq!(spam_reasons(&app, bot_id), r#"["honeypot"]"#);
    let outbox = app.outbox();
    assert_eq!(outbox.len(), 2, "only the two real sign-ups are queued");
    let bot_queued: i64 = rusqlite::Connection::open(&app.db_path)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM outbox WHERE id = ?1",
            [bot_id],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(bot_queued, 0, "the bot's post is not queued");
    let mails = mail_files(&app, 2).await;
    assert_eq!(mails.len(), 2);
    assert!(
        mails
            .iter()
            .all(|m| !m.contains("bot@example.net") && !m.contains("ola2@"))
    );
    app.stop().await;
}

#[tokio::test]
async fn spam_is_dropped_when_not_kept() {
    let app = spawn_app_with(|s| s.spam.keep = false).await;
    let id = crate::helpers::created_id(app.post_json(&with(&[("_gotcha", "x")])).await).await;
    assert_eq!(verdict(&app, &id), None);
    assert_eq!(app.count(), 0);
    app.stop().await;
}

#[tokio::test]
async fn form_tokens_too_fast_expired_tampered_and_replayed_are_spam() {
    let app = spawn_app_with(|s| {
        s.spam.min_fill = joinform::config::HumanDuration::from_secs(1);
        s.spam.token_max_age = "3s".parse().unwrap();
    })
    .await;
    let post_with = |email: &str, token: &str| with(&[("email", email), ("_token", token)]);

    let fast = token(&app).await;
    let id =
        crate::helpers::created_id(app.post_json(&post_with("a@example.org", &fast)).await).await;
    assert_eq!(spam_reasons(&app, &id), r#"["token_too_fast"]"#);

    let good = token(&app).await;
    let expiring = token(&app).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let id =
        crate::helpers::created_id(app.post_json(&post_with("b@example.org", &good)).await).await;
    assert_eq!(verdict(&app, &id), Some(("accepted".into(), None)));

    let id =
        crate::helpers::created_id(app.post_json(&post_with("c@example.org", &good)).await).await;
    assert_eq!(spam_reasons(&app, &id), r#"["token_replayed"]"#);

    let mut tampered = token(&app).await.into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'0' { b'1' } else { b'0' };
    let tampered = String::from_utf8(tampered).unwrap();
    let id =
        crate::helpers::created_id(app.post_json(&post_with("d@example.org", &tampered)).await)
            .await;
    assert_eq!(spam_reasons(&app, &id), r#"["token_tampered"]"#);

    let id = crate::helpers::created_id(
        app.post_json(&post_with("e@example.org", "not-a-token"))
            .await,
    )
    .await;
    assert_eq!(spam_reasons(&app, &id), r#"["token_malformed"]"#);

    tokio::time::sleep(Duration::from_millis(2000)).await;
    let id =
        crate::helpers::created_id(app.post_json(&post_with("f@example.org", &expiring)).await)
            .await;
    assert_eq!(spam_reasons(&app, &id), r#"["token_expired"]"#);

    // Only the one good sign-up is mailed.
    assert_eq!(app.outbox().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_used_token_is_remembered_across_a_restart() {
    // A long lifetime, so that only the memory of its use can refuse the token.
    let app = spawn_app_with(|s| {
        s.spam.min_fill = joinform::config::HumanDuration::from_secs(1);
        s.spam.token_max_age = "1h".parse().unwrap();
    })
    .await;
    let post_with = |email: &str, token: &str| with(&[("email", email), ("_token", token)]);
    let used = token(&app).await;
    let unused = token(&app).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let id =
        crate::helpers::created_id(app.post_json(&post_with("a@example.org", &used)).await).await;
    assert_eq!(verdict(&app, &id), Some(("accepted".into(), None)));

    let app = app.restart().await;
    let id =
        crate::helpers::created_id(app.post_json(&post_with("b@example.org", &used)).await).await;
    assert_eq!(spam_reasons(&app, &id), r#"["token_replayed"]"#);
    // The same server secret still signs: a token from before the restart is good.
    let id =
        crate::helpers::created_id(app.post_json(&post_with("c@example.org", &unused)).await).await;
    assert_eq!(verdict(&app, &id), Some(("accepted".into(), None)));
    app.stop().await;
}

#[tokio::test]
async fn a_missing_token_is_spam_only_when_tokens_are_required() {
    let app = spawn_app_with(|s| s.spam.require_token = true).await;
    let id = crate::helpers::created_id(app.post_json(&valid_json()).await).await;
    assert_eq!(spam_reasons(&app, &id), r#"["token_missing"]"#);
    app.stop().await;

    let app = spawn_app_with(|_| {}).await;
    let id = crate::helpers::created_id(app.post_json(&valid_json()).await).await;
    assert_eq!(verdict(&app, &id), Some(("accepted".into(), None)));
    app.stop().await;
}

/// Form fields as (name, value) pairs.
type Fields<'a> = &'a [(&'a str, &'a str)];

#[tokio::test]
async fn content_rules_add_up_to_a_verdict() {
    let app = spawn_app_with(|s| {
        s.spam.blocked_phrases = vec!["Crypto Giveaway".into()];
        s.spam.blocked_patterns = vec![r"(?i)\bcasino\b".into()];
    })
    .await;
    let cases: [(Fields, Option<&str>); 8] = [
        (
            &[("name", "Visit https://spam.example")],
            Some(r#"["link_in_name","symbols_in_name"]"#),
        ),
        (
            &[("name", "Cheap pills www.pills.example")],
            Some(r#"["link_in_name"]"#),
        ),
        (&[("city", "buy.shop")], Some(r#"["link_in_city"]"#)),
        (
            &[("message", "see http://a.example and http://b.example")],
            Some(r#"["too_many_links"]"#),
        ),
        (
            &[("message", "Join our CRYPTO giveaway now")],
            Some(r#"["blocked_phrase"]"#),
        ),
        (
            &[("message", "best Casino in town")],
            Some(r#"["blocked_pattern"]"#),
        ),
        (
            &[("name", "Kari 2000 $$$")],
            Some(r#"["symbols_in_name","digits_in_name"]"#),
        ),
        // One link in a message, digits alone, or dots in a real name are fine.
        (
            &[
                ("message", "I read https://example.org/article"),
                ("name", "J.R.R. Tolkien 3"),
            ],
            None,
        ),
    ];
    for (index, (fields, expected)) in cases.iter().enumerate() {
        let email = format!("person{index}@example.org");
        let mut fields = fields.to_vec();
        fields.push(("email", &email));
        let id = crate::helpers::created_id(app.post_json(&with(&fields)).await).await;
        match expected {
            Some(reasons) => assert_eq!(spam_reasons(&app, &id), *reasons, "{fields:?}"),
            None => assert_eq!(
                verdict(&app, &id),
                Some(("accepted".into(), None)),
                "{fields:?}"
            ),
        }
    }
    assert_eq!(app.outbox().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn fifty_sign_ups_of_one_address_in_any_spelling_make_one_notification() {
    let app = spawn_app_with(|s| s.rate_limit.per_email_per_day = 5).await;
    let spellings = [
        "kari@bücher.example",
        "Kari@Bücher.Example",
        "KARI@BÜCHER.EXAMPLE",
        "kari@xn--bcher-kva.example",
        "kArI@XN--BCHER-KVA.EXAMPLE",
    ];
    for index in 0..50 {
        let email = spellings[index % spellings.len()];
        crate::helpers::created_id(app.post_json(&with(&[("email", email)])).await).await;
    }
    let rows = app.rows();
    let statuses: Vec<&str> = rows.iter().map(|r| r.status.as_str()).collect();
    assert_eq!(
        statuses,
        [
            "accepted",
            "duplicate",
            "duplicate",
            "duplicate",
            "duplicate"
        ],
        "one accepted, duplicates up to the daily limit, the rest dropped"
    );
    assert_eq!(app.outbox().len(), 1);
    assert_eq!(mail_files(&app, 1).await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_sign_up_after_the_duplicate_window_notifies_as_returning() {
    let app = spawn_app_with(|s| s.spam.duplicate_window = "1s".parse().unwrap()).await;
    crate::helpers::created_id(app.post_json(&with(&[("country", "GB")])).await).await;
    crate::helpers::created_id(app.post_json(&with(&[("country", "GB")])).await).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    crate::helpers::created_id(app.post_json(&with(&[("country", "GB")])).await).await;
    let statuses: Vec<&str> = app.rows().iter().map(|r| r.status.as_str()).collect();
    assert_eq!(statuses, ["accepted", "duplicate", "accepted"]);
    let mails = mail_files(&app, 2).await;
    assert_eq!(mails.len(), 2);
    let returning: Vec<&String> = mails
        .iter()
        .filter(|m| {
            let message = mail_parser::MessageParser::default()
                .parse(m.as_bytes())
                .unwrap();
            message
                .body_text(0)
                .unwrap()
                .contains("has signed up before")
        })
        .collect();
    assert_eq!(
        returning.len(),
        1,
        "only the second notification says returning: {mails:#?}"
    );
    app.stop().await;
}

fn limited_settings(s: &mut joinform::config::Settings) {
    s.rate_limit.per_ip_per_minute = 1;
    s.rate_limit.per_ip_burst = 3;
}

async fn assert_limited(response: reqwest::Response) {
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited");
}

#[tokio::test]
async fn a_client_over_its_burst_gets_429_while_another_is_served() {
    let app = spawn_app_with(limited_settings).await;
    let attacker = client_from("127.0.0.3");
    let visitor = client_from("127.0.0.4");
    for index in 0..3 {
        let body = with(&[("email", &format!("a{index}@example.org"))]);
        assert_eq!(post_from(&app, &attacker, &body).await.status(), 201);
    }
    assert_limited(post_from(&app, &attacker, &with(&[("email", "a9@example.org")])).await).await;
    let html = attacker
        .post(app.url("/join"))
        .form(&[
            ("name", "Ola"),
            ("email", "o@example.org"),
            ("country", "NO"),
            ("consent", "on"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(html.status(), 429);
    assert!(html.headers().contains_key("retry-after"));
    assert!(html.text().await.unwrap().contains("Too many requests"));
    assert_eq!(post_from(&app, &visitor, &valid_json()).await.status(), 201);
    // The token endpoint has its own quota, so a limited post does not block it.
    let token = attacker.get(app.url("/join/token")).send().await.unwrap();
    assert_eq!(token.status(), 200);
    assert_eq!(app.count(), 4);
    let metrics = app.metrics.render().unwrap();
    assert_eq!(
        crate::metrics::metric_value(
            &metrics,
            r#"joinform_rate_limited_requests_total{endpoint="join",scope="client"}"#
        ),
        Some(2.0),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test]
async fn forwarding_headers_are_believed_only_from_trusted_proxies() {
    let app = spawn_app_with(|s| {
        limited_settings(s);
        s.server.trusted_proxies = vec!["127.0.0.2/32".parse().unwrap()];
    })
    .await;
    // An attacker rotating X-Forwarded-For is still one client.
    let attacker = client_from("127.0.0.3");
    let mut statuses = Vec::new();
    for index in 0..6 {
        let response = attacker
            .post(app.url("/join"))
            .header("X-Forwarded-For", format!("198.51.100.{index}"))
            .header("Forwarded", format!("for=198.51.100.{index}"))
            .json(&with(&[("email", &format!("x{index}@example.org"))]))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [201, 201, 201, 429, 429, 429]);

    // Through the trusted proxy, each forwarded client has its own quota. The proxy
    // writes X-Forwarded-For and, like nginx, passes on the Forwarded header the
    // client made up; that one is not read.
    let proxy = client_from("127.0.0.2");
    let through_proxy = |client_ip: String, index: usize| {
        proxy
            .post(app.url("/join"))
            .header("X-Forwarded-For", format!("{client_ip}, 127.0.0.2"))
            .header("Forwarded", format!("for=192.0.2.{index}"))
            .json(&with(&[("email", &format!("p{index}@example.org"))]))
            .send()
    };
    for index in 0..6 {
        let response = through_proxy(format!("203.0.113.{index}"), index)
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "client {index}");
    }
    // ...and one forwarded client over its burst is limited, not the proxy.
    for index in 6..9 {
        let response = through_proxy("203.0.113.77".into(), index).await.unwrap();
        assert_eq!(response.status(), 201);
    }
    assert_limited(through_proxy("203.0.113.77".into(), 9).await.unwrap()).await;
    app.stop().await;
}

/// The global ceiling counts posts that parsed: a flood of invalid ones (refused with
/// 422, stored nowhere) cannot spend it and get real visitors held.
#[tokio::test]
async fn invalid_posts_do_not_spend_the_global_ceiling() {
    let app = spawn_app_with(|s| s.rate_limit.global_per_second = 2).await;
    for index in 0..20 {
        let client = client_from(&format!("127.0.2.{}", index + 1));
        let body = with(&[("email", "not an address")]);
        assert_eq!(post_from(&app, &client, &body).await.status(), 422);
    }
    let client = client_from("127.0.2.100");
    let body = with(&[("email", "real@example.org")]);
    let response = post_from(&app, &client, &body).await;
    assert_eq!(response.status(), 201);
    let id = crate::helpers::created_id(response).await;
    assert_eq!(app.row(&id).expect("stored").status.as_str(), "accepted");
    app.stop().await;
}

#[tokio::test]
async fn past_the_global_ceiling_sign_ups_are_held_not_refused() {
    let app = spawn_app_with(|s| s.rate_limit.global_per_second = 2).await;
    let mut ids = Vec::new();
    for index in 0..4 {
        let client = client_from(&format!("127.0.1.{}", index + 1));
        let body = with(&[("email", &format!("g{index}@example.org"))]);
        let response = post_from(&app, &client, &body).await;
        assert_eq!(response.status(), 201, "sign-up {index} is taken in");
        ids.push(crate::helpers::created_id(response).await);
    }
    let statuses: Vec<String> = ids
        .iter()
        .map(|id| app.row(id).expect("stored").status.as_str().to_owned())
        .collect();
    assert_eq!(statuses[..2], ["accepted", "accepted"]);
    let held = statuses.iter().filter(|status| *status == "held").count();
    assert!(
        held >= 1,
        "past the ceiling, unproved sign-ups are held: {statuses:?}"
    );
    let metrics = app.metrics.render().unwrap();
    let counted = |series: &str| crate::metrics::metric_value(&metrics, series);
    assert_eq!(
        counted(r#"joinform_holds_total{reason="over_global_limit"}"#),
        Some(held as f64),
        "{metrics}"
    );
    assert_eq!(
        counted(r#"joinform_rate_limited_requests_total{endpoint="join",scope="global"}"#),
        Some(0.0),
        "nobody was refused"
    );
    app.stop().await;
}
