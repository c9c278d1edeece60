//! The built-in form page over plain HTTP: language, country list, weight, no external
//! resources, accessibility markup, the form coming back with its problems, the stored
//! consent text, CORS and the page settings' checks; and every HTML answer, error pages
//! included, in the one layout with its policy and the visitor's language. The browser tests
//! (`browser.rs`) drive the same page in Chromium.

use joinform::config::{EMBEDDED_CONFIG, Settings};
use regex::Regex;

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

/// The shipped languages the issue names; `fa` ships too.
pub const LANGUAGES: [&str; 14] = [
    "en", "nb", "sv", "da", "de", "fr", "es", "pt", "it", "ru", "tr", "ar", "ur", "fa",
];

/// Page weight budget: HTML with its inline style and script.
pub const MAX_PAGE_BYTES: usize = 30 * 1024;

pub async fn get_page(app: &TestApp, path: &str, accept_language: Option<&str>) -> (u16, String) {
    let mut request = app.client.get(app.url(path));
    if let Some(languages) = accept_language {
        request = request.header("Accept-Language", languages);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

fn html_attributes(page: &str) -> (String, String) {
    let open = Regex::new(r#"<html lang="?([a-z-]+)"? dir="?(ltr|rtl)"?>"#).unwrap();
    let captures = open
        .captures(page)
        .expect("the html element has lang and dir");
    (captures[1].to_owned(), captures[2].to_owned())
}

/// Every URL the page refers to: src, href, action, and CSS url()/@import.
fn referenced_urls(page: &str) -> Vec<String> {
    let attribute = Regex::new(r#"\b(?:src|href|action)=(?:"([^"]*)"|([^\s>]+))"#).unwrap();
    let mut urls: Vec<String> = attribute
        .captures_iter(page)
        .map(|c| {
            c.get(1)
                .or_else(|| c.get(2))
                .unwrap()
                .as_str()
                .replace("&amp;", "&")
        })
        .collect();
    let css = Regex::new(r#"url\(|@import"#).unwrap();
    urls.extend(css.find_iter(page).map(|m| m.as_str().to_owned()));
    urls
}

/// The page without its inline script, whose code mentions attributes and links.
pub fn markup(page: &str) -> String {
    let script = Regex::new(r"(?s)<script>.*?</script>").unwrap();
    script.replace_all(page, "").into_owned()
}

/// The inline script.
fn script(page: &str) -> String {
    let script = Regex::new(r"(?s)<script>(.*?)</script>").unwrap();
    script
        .captures(page)
        .map(|c| c[1].to_owned())
        .unwrap_or_default()
}

fn is_local(url: &str) -> bool {
    (url.starts_with('/') && !url.starts_with("//")) || url.starts_with('?') || url.starts_with('#')
}

#[tokio::test]
async fn the_page_speaks_the_language_asked_for_with_lang_and_dir() {
    let app = spawn_app().await;
    for (path, accept, expected) in [
        ("/", None, ("en", "ltr")),
        ("/join", None, ("en", "ltr")),
        ("/join?lang=de", None, ("de", "ltr")),
        ("/join?lang=ar", Some("de"), ("ar", "rtl")),
        ("/join?lang=ur", None, ("ur", "rtl")),
        ("/join?lang=fa", None, ("fa", "rtl")),
        ("/join", Some("fr-CA,fr;q=0.9,en;q=0.5"), ("fr", "ltr")),
        ("/join", Some("zz, pt-BR;q=0.8"), ("pt", "ltr")),
        ("/join", Some("no"), ("nb", "ltr")),
        ("/join?lang=xx", Some("sv"), ("sv", "ltr")),
        ("/join/thanks?lang=ar", None, ("ar", "rtl")),
        ("/join/thanks", Some("it"), ("it", "ltr")),
    ] {
        let (status, page) = get_page(&app, path, accept).await;
        assert_eq!(status, 200, "{path}");
        let (lang, dir) = html_attributes(&page);
        assert_eq!((lang.as_str(), dir.as_str()), expected, "{path} {accept:?}");
    }
    let response = app.client.get(app.url("/join")).send().await.unwrap();
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["content-language"], "en");
    assert_eq!(response.headers()["referrer-policy"], "no-referrer");
    let (_, thanks) = get_page(&app, "/join/thanks?lang=de", None).await;
    assert!(thanks.contains("Danke!"), "{thanks}");
    app.stop().await;

    let app = spawn_app_with(|s| s.form.default_language = "nb".into()).await;
    let (_, page) = get_page(&app, "/join", None).await;
    assert_eq!(html_attributes(&page).0, "nb");
    assert!(page.contains("Bli med"));
    app.stop().await;
}

#[tokio::test]
async fn countries_are_named_in_the_page_language_and_preselected() {
    let app = spawn_app().await;
    let (_, english) = get_page(&app, "/join", None).await;
    assert!(english.contains("<option value=DE>Germany"));
    let (_, german) = get_page(&app, "/join?lang=de&country=at", None).await;
    assert!(german.contains("<option value=DE>Deutschland"));
    assert!(german.contains("<option value=AT selected>Österreich"));
    // The language links keep the preselected country.
    assert!(german.contains("href=\"?lang=sv&amp;country=AT\""));
    let (_, arabic) = get_page(&app, "/join?lang=ar&country=EG", None).await;
    assert!(arabic.contains("<option value=EG selected>مصر"));
    let options = Regex::new("<option value=[A-Z]{2}").unwrap();
    assert_eq!(
        options.find_iter(&arabic).count(),
        250,
        "every accepted code"
    );
    // An unknown code preselects nothing.
    let (_, page) = get_page(&app, "/join?country=ZZ", None).await;
    assert!(!page.contains(" selected"));
    app.stop().await;
}

#[tokio::test]
async fn every_page_is_light_and_loads_nothing_from_elsewhere() {
    let app = spawn_app_with(|s| {
        s.form.logo_url = "https://static.example.org/logo.svg".into();
        s.form.privacy_url = "https://www.example.org/privacy".into();
    })
    .await;
    for language in LANGUAGES {
        let (_, page) = get_page(&app, &format!("/join?lang={language}"), None).await;
        assert!(
            page.len() <= MAX_PAGE_BYTES,
            "{language}: {} bytes is over the budget",
            page.len()
        );
        // The script talks only to this server, at addresses the page gives it.
        assert!(!script(&page).contains("//"), "{language}");
        for url in referenced_urls(&markup(&page)) {
            assert!(
                is_local(&url)
                    || url == "https://static.example.org/logo.svg"
                    || url == "https://www.example.org/privacy",
                "{language}: the page refers to {url}"
            );
        }
        // Scripts, styles and fonts are inline or the system's.
        assert!(!page.contains("<link"), "{language}");
        assert!(!page.contains("<script src"), "{language}");
        assert!(!page.contains("@font-face"), "{language}");
        let (_, thanks) = get_page(&app, &format!("/join/thanks?lang={language}"), None).await;
        assert!(thanks.len() <= MAX_PAGE_BYTES);
        assert!(
            referenced_urls(&thanks)
                .iter()
                .all(|url| is_local(url) || url == "https://static.example.org/logo.svg")
        );
    }
    app.stop().await;
}

/// Each visible control's id has a `<label for=…>`.
fn assert_every_control_is_labelled(page: &str) {
    let control = Regex::new(r"<(input|select|textarea)\b([^>]*)>").unwrap();
    let id = Regex::new(r"\bid=([\w-]+)").unwrap();
    let mut checked = 0;
    for captures in control.captures_iter(page) {
        let attributes = &captures[2];
        if attributes.contains("type=hidden") {
            continue;
        }
        let id = &id.captures(attributes).expect("every control has an id")[1];
        assert!(
            page.contains(&format!("<label for={id}>")),
            "no label for {id}"
        );
        checked += 1;
    }
    assert!(
        checked >= 8,
        "name, email, country, phone, city, message, consent, honeypot"
    );
}

#[tokio::test]
async fn the_form_carries_labels_the_honeypot_and_a_usable_token() {
    let app = spawn_app_with(|s| {
        s.spam.min_fill = joinform::config::HumanDuration::from_secs(0);
        s.form.extra_fields = vec![joinform::config::ExtraFieldSettings {
            name: "organisation".into(),
            max_length: 80,
            required: true,
        }];
    })
    .await;
    let (_, page) = get_page(&app, "/join", None).await;
    assert_every_control_is_labelled(&page);
    // An operator's label, isolated: it keeps its own direction on any page.
    assert!(page.contains("<label for=f-organisation><bdi>Organisation</bdi>"));
    // The honeypot is hidden from screen readers and keyboard users.
    assert!(page.contains("<div class=hp aria-hidden=true>"));
    assert!(page.contains("name=\"_gotcha\" tabindex=-1"));
    // Nothing asks for attention yet.
    assert!(page.contains("<div id=summary class=summary role=alert tabindex=-1 hidden>"));
    assert!(!markup(&page).contains(" aria-invalid=true"));

    let token = Regex::new(r#"name=_token value="([^"]+)""#)
        .unwrap()
        .captures(&page)
        .unwrap()[1]
        .to_owned();
    let response = app
        .post_form(&[
            ("name", "Kari Nordmann"),
            ("email", "kari@example.org"),
            ("country", "NO"),
            ("organisation", "Union"),
            ("consent", "on"),
            ("_gotcha", ""),
            ("_token", &token),
            ("_lang", "en"),
        ])
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/join/thanks?lang=en");
    assert_eq!(
        app.rows()[0].status.as_str(),
        "accepted",
        "the page's token is good"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_invalid_plain_post_gets_the_form_back_in_its_language_with_values_kept() {
    let app = spawn_app().await;
    let response = app
        .post_form(&[
            ("name", "\"><script>alert(1)</script>"),
            ("email", "not an address"),
            ("country", "AT"),
            ("city", "Wien & <Umgebung>"),
            ("message", "Hallo\r\nZeile 2"),
            ("_lang", "de"),
            ("language", "de"),
        ])
        .await;
    assert_eq!(response.status(), 422);
    assert_eq!(response.headers()["content-language"], "de");
    let page = response.text().await.unwrap();
    assert_eq!(html_attributes(&page).0, "de");
    // The summary at the top links to each field, in German.
    assert!(page.contains("<div id=summary class=summary role=alert tabindex=-1 autofocus>"));
    assert!(page.contains("Bitte korrigiere Folgendes:"));
    assert!(page.contains(
        "<li><a href=\"#f-email\">E-Mail: Gib eine E-Mail-Adresse ein, zum Beispiel name@example.org.</a>"
    ));
    // Each message sits by its field, which points to it.
    assert!(page.contains(
        "<p id=f-email-e class=err>Gib eine E-Mail-Adresse ein, zum Beispiel name@example.org.</p>"
    ));
    assert!(page.contains(
        "id=f-email name=email required aria-invalid=true aria-describedby=\"f-email-h f-email-e\""
    ));
    assert!(page.contains("id=f-consent name=consent type=checkbox value=on required aria-invalid=true aria-describedby=f-consent-e"));
    assert!(page.contains("Bitte setze das Häkchen"));
    // The name is fine: not marked.
    assert!(!page.contains("id=f-name name=name required aria-invalid"));
    // What the visitor typed is back, escaped.
    assert!(page.contains("value=\"&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;\""));
    assert!(!page.contains("<script>alert(1)"));
    assert!(page.contains("value=\"Wien &amp; &lt;Umgebung&gt;\""));
    assert!(page.contains(">Hallo\r\nZeile 2</textarea>"));
    assert!(page.contains("<option value=AT selected>Österreich"));
    assert_every_control_is_labelled(&page);
    assert_eq!(app.count(), 0);
    app.stop().await;
}

#[tokio::test]
async fn a_script_gets_problems_in_the_page_language_and_api_clients_keep_english() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/join"))
        .header("Accept", "application/json")
        .form(&[
            ("name", "Ali"),
            ("email", "x"),
            ("country", "EG"),
            ("_lang", "ar"),
        ])
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = crate::helpers::json_answer(response, 422, "").await;
    assert_eq!(body["error"], "validation_failed");
    assert_eq!(body["message"], "يُرجى تصحيح ما يلي:");
    assert_eq!(body["errors"][0]["field"], "email");
    assert_eq!(body["errors"][0]["code"], "invalid_email");
    // The address example between Unicode isolates (LRI … PDI), so a script's
    // textContent shows it left to right.
    assert_eq!(
        body["errors"][0]["message"],
        "أدخل عنوان بريد إلكتروني مثل \u{2066}name@example.org\u{2069}."
    );

    let response = app
        .post_json(
            &serde_json::json!({"name": "Ali", "email": "x", "country": "EG", "consent": true}),
        )
        .await;
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["message"], "Some fields need your attention.");
    assert_eq!(
        body["errors"][0]["message"],
        "This is not an email address we can write to, such as name@example.org."
    );
    app.stop().await;
}

fn consent_record(app: &TestApp) -> Vec<(Option<String>, Option<String>)> {
    let connection = rusqlite::Connection::open(&app.db_path).unwrap();
    let mut statement = connection
        .prepare("SELECT consent_text, consent_language FROM submissions ORDER BY created_at")
        .unwrap();
    statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test]
async fn the_consent_text_shown_is_stored_in_its_language() {
    let app = spawn_app().await;
    let person = |email: &'static str, lang: &'static str| {
        vec![
            ("name", "Kari Nordmann"),
            ("email", email),
            ("country", "NO"),
            ("consent", "on"),
            ("_lang", lang),
        ]
    };
    for (email, lang) in [
        ("a@example.org", "de"),
        ("b@example.org", "ar"),
        ("c@example.org", "xx"),
        ("d@example.org", "nb-NO"),
        // Wrapped in a direction mark and a byte-order mark, as copy-paste leaves them.
        ("e@example.org", "\u{200F}fa\u{FEFF}"),
    ] {
        assert_eq!(app.post_form(&person(email, lang)).await.status(), 303);
    }
    // An API client that shows its own wording sends no page language.
    crate::helpers::created_id(app.post_json(&crate::helpers::valid_json()).await).await;
    let records = consent_record(&app);
    assert_eq!(
        records[0],
        (
            Some(
                "Ich bin einverstanden, dass meine Angaben gespeichert und genutzt werden, um \
                 mich wegen der Mitgliedschaft zu kontaktieren, wie in der Datenschutzerklärung \
                 beschrieben."
                    .to_owned()
            ),
            Some("de".to_owned())
        )
    );
    assert_eq!(records[1].1.as_deref(), Some("ar"));
    assert!(records[1].0.as_deref().unwrap().contains("إشعار الخصوصية"));
    assert_eq!(records[2], (None, None), "a language we never showed");
    assert_eq!(records[3].1.as_deref(), Some("nb"));
    assert_eq!(records[4].1.as_deref(), Some("fa"));
    assert!(records[4].0.is_some(), "the Persian consent text");
    assert_eq!(records[5], (None, None));
    app.stop().await;
}

#[tokio::test]
async fn the_privacy_notice_is_linked_from_the_consent_box() {
    let app = spawn_app_with(|s| s.form.privacy_url = "/privacy?a=1&b=2".into()).await;
    let (_, page) = get_page(&app, "/join?lang=fr", None).await;
    assert!(page.contains(
        "<label for=f-consent>J’accepte que mes données soient conservées et utilisées pour me \
         contacter au sujet de l’adhésion, comme décrit dans la \
         <a href=\"/privacy?a=1&amp;b=2\">politique de confidentialité</a>."
    ));
    app.stop().await;
}

#[tokio::test]
async fn branding_comes_from_the_settings_escaped() {
    let app = spawn_app_with(|s| {
        s.form.title = "Join <Friends>".into();
        s.form.intro = "Sign up & help".into();
        s.form.logo_url = "/static/logo.png".into();
        s.form.accent_color = "#7a1f5c".into();
    })
    .await;
    let (_, page) = get_page(&app, "/join?lang=de", None).await;
    assert!(page.contains("<title>Join &lt;Friends&gt;</title>"));
    assert!(
        page.contains(
            "<h1><bdi>Join &lt;Friends&gt;</bdi></h1><p><bdi>Sign up &amp; help</bdi></p>"
        )
    );
    assert!(page.contains("<img class=logo src=\"/static/logo.png\" alt=\"\">"));
    assert!(page.contains(":root{--a:#7a1f5c}"));
    app.stop().await;
}

#[tokio::test]
async fn scripts_on_allowed_origins_only_may_read_answers() {
    let app = spawn_app_with(|s| {
        s.server.allowed_origins = vec!["https://www.example.org".into()];
    })
    .await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/join"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "content-type")
            .send()
    };
    let allowed = preflight("https://www.example.org").await.unwrap();
    assert!(allowed.status().is_success());
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://www.example.org"
    );
    let other = preflight("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());

    // A post from another site's plain form is still taken; its scripts cannot read
    // the answer.
    let response = app
        .client
        .post(app.url("/join"))
        .header("Origin", "https://evil.example")
        .header("Accept", "application/json")
        .json(&crate::helpers::valid_json())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    let response = app
        .client
        .post(app.url("/join"))
        .header("Origin", "https://www.example.org")
        .json(&serde_json::json!({"name": "Ola", "email": "ola@example.org", "country": "SE", "consent": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://www.example.org"
    );
    app.stop().await;
}

#[test]
fn page_settings_are_checked() {
    let with = |key: &str, value: &str| {
        let text = EMBEDDED_CONFIG.replace(
            "accent_color = \"#1d4ed8\"",
            &format!("accent_color = \"#1d4ed8\"\n{key} = {value}"),
        );
        // The key replaces the default by being given again: remove the original.
        let original = Regex::new(&format!(r"(?m)^{key} = .*\n")).unwrap();
        let text = original.replacen(&text, 1, "").into_owned();
        Settings::from_toml(Some(&text), false)
    };
    for (key, value, reason) in [
        ("accent_color", "\"#ffff00\"", "too light on white"),
        ("accent_color", "\"blue\"", "not #rrggbb"),
        ("default_language", "\"xx\"", "not shipped"),
        (
            "privacy_url",
            "\"javascript:alert(1)\"",
            "not a path or http(s) URL",
        ),
        ("logo_url", "\"//cdn.example/x.png\"", "protocol-relative"),
        ("title", "\"a\\nb\"", "two lines"),
    ] {
        let error = with(key, value).expect_err(reason).to_string();
        assert!(error.contains(&format!("form.{key}")), "{reason}: {error}");
    }
    for (key, value) in [
        ("accent_color", "\"#7a1f5c\""),
        ("default_language", "\"ar\""),
        ("privacy_url", "\"https://www.example.org/privacy\""),
        ("logo_url", "\"/logo.svg\""),
    ] {
        with(key, value).unwrap_or_else(|e| panic!("{key} = {value}: {e}"));
    }
    for (origins, ok) in [
        ("[\"https://www.example.org\"]", true),
        ("[\"http://localhost:3000\"]", true),
        ("[\"https://www.example.org/\"]", false),
        ("[\"*\"]", false),
        ("[\"www.example.org\"]", false),
    ] {
        let text = EMBEDDED_CONFIG.replace(
            "allowed_origins = []",
            &format!("allowed_origins = {origins}"),
        );
        let result = Settings::from_toml(Some(&text), false);
        assert_eq!(result.is_ok(), ok, "{origins}: {result:?}");
        if !ok {
            assert!(
                result
                    .unwrap_err()
                    .to_string()
                    .contains("server.allowed_origins[0]")
            );
        }
    }
    // The shipped file documents every page setting with its default.
    for key in [
        "allowed_origins = []",
        "default_language = \"en\"",
        "privacy_url = \"\"",
        "title = \"\"",
        "intro = \"\"",
        "logo_url = \"\"",
        "accent_color = \"#1d4ed8\"",
    ] {
        assert!(
            EMBEDDED_CONFIG.contains(key),
            "config/joinform.toml documents {key}"
        );
    }
}

#[tokio::test]
async fn pages_carry_a_content_security_policy_that_allows_only_their_own_code() {
    let app = crate::helpers::spawn_app().await;
    for path in ["/", "/join?lang=ar", "/join/thanks"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        let policy = response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            policy.starts_with("default-src 'none'; script-src 'sha256-"),
            "{policy}"
        );
        assert!(!policy.contains("unsafe-inline"), "{policy}");
        // No other site may frame the form (clickjacking): none is allowed here.
        assert!(policy.contains("frame-ancestors 'self';"), "{policy}");
    }
    app.stop().await;
}

/// Every HTML answer, the pages' and every error's, is a page of the one layout: the
/// same Content-Security-Policy, and `<html lang dir>` in the visitor's language.
#[tokio::test]
async fn every_html_answer_has_the_layout_the_policy_and_the_visitors_language() {
    const FORM: &str = "application/x-www-form-urlencoded";
    let app = spawn_app().await;
    let limited = spawn_app_with(|settings| {
        settings.rate_limit.per_ip_per_minute = 1;
        settings.rate_limit.per_ip_burst = 1;
    })
    .await;
    let policy =
        app.client.get(app.url("/")).send().await.unwrap().headers()["content-security-policy"]
            .clone();
    let post = |app: &TestApp, content_type: &str, body: Vec<u8>| {
        app.client
            .post(app.url("/join"))
            .header("Content-Type", content_type)
            .header("Accept", "text/html")
            .header("Accept-Language", "de")
            .body(body)
    };
    let valid = "name=Kari&email=kari%40example.org&country=NO&consent=on";
    let mut cases = vec![
        (
            "the form",
            app.client.get(app.url("/join?lang=ar")),
            200,
            ("ar", "rtl"),
        ),
        (
            "the thank-you page",
            app.client.get(app.url("/join/thanks?lang=fa")),
            200,
            ("fa", "rtl"),
        ),
        (
            "404",
            app.client
                .get(app.url("/nope"))
                .header("Accept-Language", "ur, en;q=0.5"),
            404,
            ("ur", "rtl"),
        ),
        (
            "413",
            post(
                &app,
                FORM,
                format!("{valid}&message={}", "x".repeat(20_000)).into(),
            ),
            413,
            ("de", "ltr"),
        ),
        (
            "415",
            post(&app, "text/plain", valid.into()),
            415,
            ("de", "ltr"),
        ),
        (
            "400, a field twice",
            post(&app, FORM, format!("{valid}&name=Ola").into()),
            400,
            ("de", "ltr"),
        ),
        (
            "400, not UTF-8",
            post(
                &app,
                FORM,
                b"name=Ren\xe9&email=r%40example.org&_lang=fr".to_vec(),
            ),
            400,
            ("fr", "ltr"),
        ),
        (
            "422",
            post(&app, FORM, b"name=&_lang=sv".to_vec()),
            422,
            ("sv", "ltr"),
        ),
    ];
    cases.push((
        "201 first",
        post(&limited, FORM, valid.into()),
        303,
        ("", ""),
    ));
    cases.push((
        "429",
        post(&limited, FORM, valid.into()),
        429,
        ("de", "ltr"),
    ));
    for (case, request, status, (language, direction)) in cases {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status, "{case}");
        if status == 303 {
            continue;
        }
        let headers = response.headers().clone();
        assert_eq!(headers["content-security-policy"], policy, "{case}");
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{case}"
        );
        assert_eq!(headers["content-language"], language, "{case}");
        let page = response.text().await.unwrap();
        assert!(page.starts_with("<!doctype html>\n"), "{case}");
        assert_eq!(
            html_attributes(&page),
            (language.to_owned(), direction.to_owned()),
            "{case}"
        );
    }
    app.stop().await;
    limited.stop().await;
}

/// Left-to-right fragments that the Unicode bidirectional algorithm scrambles inside
/// right-to-left text unless isolated: Latin words and codes, addresses, URLs, a `+`
/// before a number, and number groups (a phone number's `20 2 1234`).
fn left_to_right_fragments(text: &str) -> Vec<String> {
    // Compiled once: the page check calls this for every country name.
    static PATTERNS: std::sync::LazyLock<(Regex, Regex)> = std::sync::LazyLock::new(|| {
        (
            Regex::new(r"\{[a-z_]+\}").unwrap(),
            Regex::new(r"[A-Za-z][\w.@:/+-]*|@|://|\+\s?\d|\d[\s\-./]+\d").unwrap(),
        )
    });
    let (placeholders, fragment) = &*PATTERNS;
    let text = placeholders.replace_all(text, "");
    fragment
        .find_iter(&text)
        .map(|m| m.as_str().to_owned())
        .collect()
}

/// Every right-to-left language joinform ships (at least Arabic, Persian and Urdu).
pub fn right_to_left_languages() -> Vec<&'static str> {
    let languages: Vec<&str> = joinform::i18n::shipped()
        .filter(|tag| joinform::i18n::is_right_to_left(tag))
        .collect();
    for tag in ["ar", "fa", "ur"] {
        assert!(
            languages.contains(&tag),
            "{tag} is shipped and right to left"
        );
    }
    languages
}

#[test]
fn every_left_to_right_fragment_of_a_right_to_left_translation_is_isolated() {
    let isolated = Regex::new("\u{2066}[^\u{2069}]*\u{2069}").unwrap();
    let mut unisolated = Vec::new();
    for tag in right_to_left_languages() {
        let path = format!("{}/templates/form/{tag}.toml", env!("CARGO_MANIFEST_DIR"));
        let table: std::collections::BTreeMap<String, String> =
            toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        for (key, text) in table {
            let outside = isolated.replace_all(&text, "");
            for fragment in left_to_right_fragments(&outside) {
                unisolated.push(format!("{tag}.{key}: {fragment:?}"));
            }
        }
    }
    assert_eq!(
        unisolated,
        Vec::<String>::new(),
        "wrap these in \\u2066 … \\u2069"
    );
}

/// The text a page shows outside elements that isolate left-to-right content (`<bdi>`,
/// or any element with `dir=ltr`).
///
/// Country names are left out: an option can hold no element, and CLDR's names hold
/// at most a single Latin word (Urdu "مکاؤ SAR چین"), which the bidirectional
/// algorithm keeps whole; that is checked here instead.
fn text_outside_isolation(page: &str) -> String {
    let mut text = markup(page);
    let option = Regex::new(r"<option[^>]*>([^<]*)").unwrap();
    let word = Regex::new(r"^[A-Za-z]+$").unwrap();
    for name in option.captures_iter(&text) {
        for fragment in left_to_right_fragments(&name[1]) {
            assert!(word.is_match(&fragment), "country name {:?}", &name[1]);
        }
    }
    for pattern in [
        r"(?s)<head>.*?</head>",
        r"<option[^>]*>[^<]*",
        r"(?s)<bdi\b[^>]*>.*?</bdi>",
        r"(?s)<(?:a|span|p|div|label)\b[^>]*\bdir=ltr\b[^>]*>.*?</(?:a|span|p|div|label)>",
        r"<[^>]*>",
        r"&#?\w+;",
    ] {
        text = Regex::new(pattern)
            .unwrap()
            .replace_all(&text, " ")
            .into_owned();
    }
    text
}

#[tokio::test]
async fn right_to_left_pages_isolate_every_left_to_right_fragment_and_input() {
    let app = spawn_app().await;
    let input = |page: &str, kind: &str| {
        Regex::new(&format!(r"<input[^>]*\btype={kind}\b[^>]*>"))
            .unwrap()
            .find(page)
            .unwrap_or_else(|| panic!("a {kind} input"))
            .as_str()
            .to_owned()
    };
    let phone_hint = Regex::new(r"<p id=f-phone-h class=h>(.*?)</p>").unwrap();
    let isolated_phone = Regex::new(r"<bdi dir=ltr>\+\d[\d ]+\d</bdi>").unwrap();
    for tag in right_to_left_languages() {
        let (_, form) = get_page(&app, &format!("/join?lang={tag}"), None).await;
        let (_, thanks) = get_page(&app, &format!("/join/thanks?lang={tag}"), None).await;
        let invalid = app
            .post_form(&[
                ("name", "Kari"),
                ("email", "not an address"),
                ("phone", "12"),
                ("country", "EG"),
                ("_lang", tag),
            ])
            .await;
        assert_eq!(invalid.status(), 422);
        let invalid = invalid.text().await.unwrap();
        assert!(
            invalid.contains("<p id=f-email-e class=err>") && invalid.contains("id=f-phone-e"),
            "{tag}: the problems are shown"
        );
        // A form from a page in a legacy encoding: Latin-1 bytes and no `_charset_`.
        let not_utf8 = app
            .client
            .post(app.url("/join"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Accept", "text/html")
            .body(format!(
                "name=Ren%E9&email=a%40example.org&country=EG&_lang={tag}"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(not_utf8.status(), 400);
        let not_utf8 = not_utf8.text().await.unwrap();
        assert!(not_utf8.contains("accept-charset"), "{tag}: names the fix");
        for (name, page) in [
            ("form", &form),
            ("thanks", &thanks),
            ("422", &invalid),
            ("not UTF-8", &not_utf8),
        ] {
            assert_eq!(html_attributes(page), (tag.to_owned(), "rtl".to_owned()));
            assert_eq!(
                left_to_right_fragments(&text_outside_isolation(page)),
                Vec::<String>::new(),
                "{tag} {name} page: left-to-right text outside an isolating element"
            );
        }
        for page in [&form, &invalid] {
            for kind in ["email", "tel"] {
                assert!(
                    input(page, kind).contains(" dir=ltr"),
                    "{tag}: {kind} input"
                );
            }
        }
        let hint = &phone_hint.captures(&form).expect("a phone hint")[1];
        assert!(
            isolated_phone.is_match(hint),
            "{tag}: the phone example is isolated: {hint}"
        );
    }
    app.stop().await;
}
