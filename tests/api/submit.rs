//! Accepted submissions in every encoding and response mode, and what lands on disk.

use serde_json::json;

use crate::helpers::{
    contains, created_id, database_bytes, json_answer, spawn_app, spawn_app_with, valid_json,
};

#[tokio::test]
async fn a_plain_html_form_is_stored_and_redirected_to_the_thank_you_page() {
    let app = spawn_app().await;
    let response = app
        .post_form(&[
            ("name", "Kari Nordmann"),
            ("email", "Kari@Example.org"),
            ("country", "no"),
            ("phone", "+47 22 33 44 55"),
            ("city", "Tromsø"),
            ("message", "Hei!\r\nJeg vil bli med."),
            ("language", "nb"),
            ("consent", "on"),
        ])
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/join/thanks");

    let rows = app.rows();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.name, "Kari Nordmann");
    assert_eq!(
        row.email, "Kari@example.org",
        "domain lower-cased, local part kept"
    );
    assert_eq!(row.country.as_str(), "NO");
    assert_eq!(row.phone.as_deref(), Some("+47 22 33 44 55"));
    assert_eq!(row.city.as_deref(), Some("Tromsø"));
    assert_eq!(row.message.as_deref(), Some("Hei!\nJeg vil bli med."));
    assert_eq!(row.language.as_deref(), Some("nb"));
    assert!(row.consent);
    assert!(row.extra.is_empty());
    assert_eq!(row.status.as_str(), "accepted");
    // As the file holds it: fixed-width RFC 3339 UTC, so text order is time order.
    let created_at: String = rusqlite::Connection::open(&app.db_path)
        .unwrap()
        .query_row("SELECT created_at FROM submissions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(created_at.len(), "2026-01-01T00:00:00.000000Z".len());
    assert!(created_at.ends_with('Z'));

    let thanks = app
        .client
        .get(app.url("/join/thanks"))
        .send()
        .await
        .unwrap();
    assert_eq!(thanks.status(), 200);
    assert!(thanks.text().await.unwrap().contains("Thank you"));
    app.stop().await;
}

#[tokio::test]
async fn json_gets_201_with_the_id_of_the_stored_row() {
    let app = spawn_app().await;
    let id = created_id(app.post_json(&valid_json()).await).await;
    let row = app.row(&id).expect("the id answered is the id stored");
    assert_eq!(row.name, "Kari Nordmann");
    assert!(row.consent);
    app.stop().await;
}

#[tokio::test]
async fn multipart_text_fields_are_accepted() {
    let app = spawn_app().await;
    let form = reqwest::multipart::Form::new()
        .text("name", "Ola Nordmann")
        .text("email", "ola@example.org")
        .text("country", "SE")
        .text("consent", "yes");
    let id = created_id(app.post_multipart(form).await).await;
    assert_eq!(app.row(&id).unwrap().country.as_str(), "SE");
    app.stop().await;
}

#[tokio::test]
async fn an_accept_header_preferring_json_gets_json_for_a_form_post() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/join"))
        .header("Accept", "application/json")
        .form(&[
            ("name", "Ola"),
            ("email", "ola@example.org"),
            ("country", "DK"),
            ("consent", "1"),
        ])
        .send()
        .await
        .unwrap();
    created_id(response).await;

    // A browser's Accept prefers HTML: the form post is redirected.
    let response = app
        .client
        .post(app.url("/join"))
        .header(
            "Accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        )
        .form(&[
            ("name", "Ola"),
            ("email", "ola@example.org"),
            ("country", "DK"),
            ("consent", "true"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    app.stop().await;
}

#[tokio::test]
async fn unicode_round_trips_byte_for_byte_in_every_encoding() {
    let app = spawn_app().await;
    let people = [
        ("Øyvind Ærø", "Tromsø", "Hei på deg!\nHilsen Øyvind"),
        ("Нурсултан Абишев", "Алматы", "Здравствуйте!"),
        ("李小龙", "香港", "你好，我想加入。"),
        ("محمد الأحمد", "القاهرة", "مرحبا\nأريد الانضمام"),
        ("Nguyễn Thị Minh Khai", "Hà Nội", "Xin chào 👋🏽"),
        (
            "O'Brien-Smith",
            "Dún Laoghaire",
            "Tabs are not allowed, but “quotes” and — dashes are",
        ),
    ];
    let mut expected = Vec::new();
    for (index, (name, city, message)) in people.iter().enumerate() {
        let email = format!("person{index}@example.org");
        let fields = [
            ("name", *name),
            ("email", email.as_str()),
            ("country", "NO"),
            ("city", *city),
            ("message", *message),
            ("consent", "on"),
        ];
        let response = match index % 3 {
            0 => {
                let body: serde_json::Map<String, serde_json::Value> = fields
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), json!(v)))
                    .collect();
                app.post_json(&serde_json::Value::Object(body)).await
            }
            1 => app
                .client
                .post(app.url("/join"))
                .header("Accept", "application/json")
                .form(&fields)
                .send()
                .await
                .unwrap(),
            _ => {
                let mut form = reqwest::multipart::Form::new();
                for (k, v) in fields {
                    form = form.text(k, v.to_owned());
                }
                app.post_multipart(form).await
            }
        };
        let id = created_id(response).await;
        expected.push((id, *name, *city, *message));
    }
    for (id, name, city, message) in expected {
        let row = app.row(&id).unwrap();
        assert_eq!(row.name.as_bytes(), name.as_bytes());
        assert_eq!(
            row.city.as_deref().map(str::as_bytes),
            Some(city.as_bytes())
        );
        assert_eq!(
            row.message.as_deref().map(str::as_bytes),
            Some(message.as_bytes())
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn language_defaults_to_the_browsers_preference() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/join"))
        .header("Accept-Language", "*;q=0.1, pt-BR;q=0.9, en;q=0.5")
        .json(&valid_json())
        .send()
        .await
        .unwrap();
    let from_header = created_id(response).await;

    let mut body = valid_json();
    body["language"] = json!("nb");
    let response = app
        .client
        .post(app.url("/join"))
        .header("Accept-Language", "de")
        .json(&body)
        .send()
        .await
        .unwrap();
    let from_field = created_id(response).await;

    let no_language = created_id(app.post_json(&valid_json()).await).await;

    assert_eq!(
        app.row(&from_header).unwrap().language.as_deref(),
        Some("pt-BR")
    );
    assert_eq!(
        app.row(&from_field).unwrap().language.as_deref(),
        Some("nb")
    );
    assert_eq!(app.row(&no_language).unwrap().language, None);
    app.stop().await;
}

#[tokio::test]
async fn unknown_fields_are_ignored_and_never_stored() {
    let app = spawn_app().await;
    let mut body = valid_json();
    body["favourite_colour"] = json!("UNKNOWN-FIELD-VALUE-4711");
    body["nested"] = json!({"deep": [1, 2, {"x": null}]});
    let id = created_id(app.post_json(&body).await).await;
    assert!(app.row(&id).unwrap().extra.is_empty());
    let dir = app.stop().await;
    let files = database_bytes(dir.path());
    assert!(
        contains(&files, b"kari@example.org"),
        "the search does see stored data"
    );
    assert!(!contains(&files, b"UNKNOWN-FIELD-VALUE-4711"));
}

#[tokio::test]
async fn configured_extra_fields_are_stored_as_json() {
    let app = spawn_app_with(|settings| {
        settings.form.extra_fields = vec![
            joinform::config::ExtraFieldSettings {
                name: "organisation".into(),
                max_length: 20,
                required: true,
            },
            joinform::config::ExtraFieldSettings {
                name: "referrer".into(),
                max_length: 50,
                required: false,
            },
        ];
    })
    .await;
    let mut body = valid_json();
    body["organisation"] = json!("  Fagforbundet  ");
    let id = created_id(app.post_json(&body).await).await;
    let extra = serde_json::Value::Object(app.row(&id).unwrap().extra);
    assert_eq!(extra, json!({"organisation": "Fagforbundet"}));

    let missing = app.post_json(&valid_json()).await;
    let errors: serde_json::Value = json_answer(missing, 422, "").await;
    assert_eq!(errors["errors"][0]["field"], "organisation");
    assert_eq!(errors["errors"][0]["code"], "required");

    body["organisation"] = json!("x".repeat(21));
    let too_long: serde_json::Value = app.post_json(&body).await.json().await.unwrap();
    assert_eq!(too_long["errors"][0]["code"], "too_long");
    app.stop().await;
}

#[tokio::test]
async fn consent_may_be_optional() {
    let app = spawn_app_with(|settings| settings.form.consent_required = false).await;
    let mut body = valid_json();
    body.as_object_mut().unwrap().remove("consent");
    let id = created_id(app.post_json(&body).await).await;
    assert!(!app.row(&id).unwrap().consent);
    app.stop().await;
}

#[tokio::test]
async fn a_custom_success_url_is_where_html_forms_go() {
    let app = spawn_app_with(|settings| {
        settings.form.success_url = "https://example.org/welcome".into();
    })
    .await;
    let response = app
        .post_form(&[
            ("name", "Ola"),
            ("email", "ola@example.org"),
            ("country", "SE"),
            ("consent", "on"),
        ])
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()["location"],
        "https://example.org/welcome"
    );
    app.stop().await;
}

#[tokio::test]
async fn phone_numbers_from_every_keyboard_and_contacts_app_are_stored_in_ascii() {
    let app = spawn_app().await;
    let cases = [
        (
            "fa",
            "+۹۸ ۹۱۲ ۳۴۵ ۶۷۸۹",
            "+98 912 345 6789",
            "a Persian keyboard",
        ),
        (
            "ar",
            "+٩٦٦ ٥٠ ١٢٣ ٤٥٦٧",
            "+966 50 123 4567",
            "an Arabic keyboard",
        ),
        (
            "en",
            "＋８１ ９０－１２３４－５６７８",
            "+81 90-1234-5678",
            "a Japanese IME",
        ),
        (
            "nb",
            "\u{202D}+47 912 34 567\u{202C}",
            "+47 912 34 567",
            "a contacts app",
        ),
    ];
    for (language, phone, _, reason) in cases {
        let response = app
            .post_form(&[
                ("name", "Kari Nordmann"),
                ("email", "kari@example.org"),
                ("country", "NO"),
                ("consent", "on"),
                ("phone", phone),
                ("_lang", language),
            ])
            .await;
        assert_eq!(response.status(), 303, "{reason}");
    }
    let rows = app.rows();
    let phones: Vec<&str> = rows.iter().filter_map(|row| row.phone.as_deref()).collect();
    let expected: Vec<&str> = cases.iter().map(|case| case.2).collect();
    assert_eq!(phones, expected);
    app.stop().await;
}
