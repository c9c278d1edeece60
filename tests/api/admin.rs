//! The admin listener's authentication and scopes, and `joinform token new`.

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::helpers::{TestApp, created_id, json_answer, spawn_app_with};
use crate::operator_helpers::{add_token, admin_get, run_cli, stderr, stdout, write_config};

struct Tokens {
    full: String,
    norway: String,
}

async fn spawn_with_tokens(failed_per_minute: u32) -> (TestApp, Tokens) {
    let mut tokens = Tokens {
        full: String::new(),
        norway: String::new(),
    };
    let app = spawn_app_with(|settings| {
        settings.admin.failed_auth_per_minute = failed_per_minute;
        tokens.full = add_token(settings, "head office", &[]);
        tokens.norway = add_token(settings, "Oslo organiser", &["Norway"]);
    })
    .await;
    for (country, local) in [("NO", "kari"), ("SE", "sven"), ("DE", "dieter")] {
        created_id(
            app.post_json(
                &json!({"name": "Test Person", "email": format!("{local}@example.org"),
                                  "country": country, "consent": true}),
            )
            .await,
        )
        .await;
    }
    (app, tokens)
}

#[tokio::test]
async fn requests_without_a_valid_header_token_get_401() {
    let (app, tokens) = spawn_with_tokens(1000).await;
    let url = format!("{}/admin/submissions", app.admin_address);
    let cases: Vec<(reqwest::RequestBuilder, &str)> = vec![
        (app.client.get(&url), "no token"),
        (
            app.client.get(&url).bearer_auth("not-the-token"),
            "wrong token",
        ),
        (app.client.get(&url).bearer_auth("x"), "short token"),
        (
            app.client.get(&url).bearer_auth("y".repeat(4096)),
            "long token",
        ),
        (
            app.client
                .get(&url)
                .bearer_auth(format!("{}x", tokens.full)),
            "right token plus a byte",
        ),
        (
            app.client
                .get(&url)
                .bearer_auth(&tokens.full[..tokens.full.len() - 1]),
            "right token less a byte",
        ),
        (
            app.client
                .get(&url)
                .basic_auth("head office", Some(&tokens.full)),
            "another scheme",
        ),
        (
            app.client.get(format!("{url}?token={}", tokens.full)),
            "token in the query",
        ),
        (
            app.client
                .get(format!("{url}?access_token={}", tokens.full)),
            "access_token in the query",
        ),
        (
            app.client
                .get(format!("{url}?token={}", tokens.full))
                .bearer_auth(&tokens.full),
            "token in the query beside a good header",
        ),
    ];
    for (request, reason) in cases {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{reason}");
        assert!(
            response.headers().contains_key("www-authenticate"),
            "{reason}"
        );
        let body = response.text().await.unwrap();
        assert!(!body.contains("example.org"), "{reason}: {body}");
    }
    let response = app
        .client
        .post(format!("{}/admin/forget", app.admin_address))
        .json(&json!({"email": "kari@example.org"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "forget without a token");
    assert_eq!(app.count(), 3, "nothing was erased");

    let response = admin_get(&app, "/admin/submissions", &tokens.full).await;
    assert_eq!(response.status(), 200, "the right token works");
    app.stop().await;
}

#[tokio::test]
async fn a_section_token_sees_and_asks_for_its_own_sections_only() {
    let (app, tokens) = spawn_with_tokens(1000).await;
    let response = admin_get(&app, "/admin/submissions?format=json", &tokens.norway).await;
    let rows: Vec<serde_json::Value> = json_answer(response, 200, "").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["section"], "Norway");

    let response = admin_get(&app, "/admin/submissions?section=Norway", &tokens.norway).await;
    assert_eq!(response.status(), 200);
    for other in ["Sweden", "International", "Nowhere"] {
        let response = admin_get(
            &app,
            &format!("/admin/submissions?section={other}"),
            &tokens.norway,
        )
        .await;
        assert_eq!(response.status(), 403, "{other}");
    }
    // Another section's country: the filter applies within the scope, so nothing
    // matches (while the unscoped token finds the Swedish sign-up).
    let another_country = "/admin/submissions?status=all&country=SE&format=json";
    let response = admin_get(&app, another_country, &tokens.norway).await;
    let rows: Vec<serde_json::Value> = json_answer(response, 200, "").await;
    assert_eq!(
        rows,
        Vec::<serde_json::Value>::new(),
        "a country filter does not widen the scope"
    );
    let response = admin_get(&app, another_country, &tokens.full).await;
    let rows: Vec<serde_json::Value> = json_answer(response, 200, "").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["country"], "SE");

    let response = app
        .client
        .post(format!("{}/admin/forget", app.admin_address))
        .bearer_auth(&tokens.norway)
        .json(&json!({"email": "kari@example.org"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403, "erasure needs an unscoped token");
    assert_eq!(app.count(), 3);

    let response = admin_get(&app, "/admin/submissions?format=json", &tokens.full).await;
    let rows: Vec<serde_json::Value> = response.json().await.unwrap();
    assert_eq!(rows.len(), 3, "the unscoped token sees every section");
    app.stop().await;
}

#[tokio::test]
async fn the_admin_routes_do_not_exist_on_the_public_listener() {
    let (app, tokens) = spawn_with_tokens(1000).await;
    let response = app
        .client
        .get(app.url("/admin/submissions"))
        .bearer_auth(&tokens.full)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let response = app
        .client
        .post(app.url("/admin/forget"))
        .bearer_auth(&tokens.full)
        .json(&json!({"email": "kari@example.org"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(app.count(), 3);
    // Nor is the form on the admin listener.
    let response = app
        .client
        .post(format!("{}/join", app.admin_address))
        .json(&crate::helpers::valid_json())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn failed_attempts_are_rate_limited_but_a_good_token_still_works() {
    let (app, tokens) = spawn_with_tokens(3).await;
    for attempt in 0..3 {
        let response = admin_get(&app, "/admin/submissions", "guess").await;
        assert_eq!(response.status(), 401, "attempt {attempt}");
    }
    let response = admin_get(&app, "/admin/submissions", "guess").await;
    assert_eq!(response.status(), 429);
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let response = admin_get(&app, "/admin/submissions", &tokens.full).await;
    assert_eq!(response.status(), 200, "organisers are never locked out");
    app.stop().await;
}

#[tokio::test]
async fn the_admin_listener_must_not_share_the_public_port() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::helpers::test_settings(&dir);
    settings.server.listen = "0.0.0.0:8080".parse().unwrap();
    settings.admin.listen = "127.0.0.1:8080".parse().unwrap();
    let error = settings.check().unwrap_err().to_string();
    assert!(error.contains("admin.listen"), "{error}");
}

#[tokio::test]
async fn token_new_prints_a_token_once_and_the_lines_that_configure_it() {
    let app = spawn_app_with(|_| {}).await;
    let config = write_config(&app);
    let output = run_cli(
        &config,
        &["token", "new", "Oslo organiser", "--section", "Norway"],
        None,
    )
    .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let token = text
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with("jfa_"))
        .unwrap()
        .to_owned();
    assert_eq!(token.len(), 4 + 64);
    let snippet = &text[text.find("[[admin.tokens]]").unwrap()..];
    let parsed: toml::Value = toml::from_str(snippet).unwrap();
    let entry = &parsed["admin"]["tokens"][0];
    assert_eq!(entry["name"].as_str(), Some("Oslo organiser"));
    assert_eq!(entry["sections"][0].as_str(), Some("Norway"));
    assert_eq!(
        entry["sha256"].as_str().unwrap(),
        hex::encode(Sha256::digest(token.as_bytes()))
    );
    assert!(!snippet.contains(&token), "only the hash goes in the file");

    // Two runs never give the same token.
    let again = stdout(&run_cli(&config, &["token", "new", "other"], None).await);
    assert!(!again.contains(&token));

    let output = run_cli(
        &config,
        &["token", "new", "x", "--section", "Atlantis"],
        None,
    )
    .await;
    assert!(!output.status.success());
    assert!(stderr(&output).contains("Atlantis"), "{}", stderr(&output));

    // Nothing of the token reached the database.
    app.stop().await;
}
