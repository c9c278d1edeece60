//! Invalid fields: 422 with every problem, field by field, and nothing stored.

use serde_json::{Value, json};

use crate::helpers::{json_answer, spawn_app, spawn_app_with, valid_json};

/// Each case: the field changed, its value, the code expected, and why it is wrong.
fn invalid_cases() -> Vec<(&'static str, Value, &'static str, &'static str)> {
    vec![
        ("name", json!(""), "required", "empty name"),
        ("name", json!("   \u{00A0} "), "required", "only whitespace"),
        ("name", json!("a".repeat(101)), "too_long", "101 characters"),
        (
            "name",
            json!("Kari\nNordmann"),
            "control_characters",
            "line feed in a name",
        ),
        (
            "name",
            json!("Kari\r\nBcc: x@example.org"),
            "control_characters",
            "header injection",
        ),
        ("name", json!("Kari\u{0000}"), "control_characters", "NUL"),
        (
            "name",
            json!("evil\u{202E}gnp.exe"),
            "control_characters",
            "bidi override",
        ),
        (
            "name",
            json!("=?utf-8?q?Kari=0D=0ABcc:_evil@example.com?="),
            "encoded_word",
            "an RFC 2047 encoded word that decodes to a header line",
        ),
        ("name", json!(42), "invalid_type", "a number"),
        ("name", json!(["Kari"]), "invalid_type", "an array"),
        ("email", json!(""), "required", "empty email"),
        ("email", json!("kari"), "invalid_email", "no @"),
        (
            "email",
            json!(".x@example.org"),
            "invalid_email",
            "leading dot, which the validator crate accepts",
        ),
        (
            "email",
            json!("\"kari\"@example.org"),
            "invalid_email",
            "quoted local part",
        ),
        (
            "email",
            json!("kari@[192.0.2.1]"),
            "invalid_email",
            "IP literal",
        ),
        (
            "email",
            json!("kari@localhost"),
            "invalid_email",
            "single label",
        ),
        (
            "email",
            json!("kari@example.123"),
            "invalid_email",
            "numeric TLD",
        ),
        (
            "email",
            json!(format!("{}@example.org", "k".repeat(65))),
            "invalid_email",
            "local part over 64",
        ),
        (
            "email",
            json!("kari@example.org\nBcc: x@example.org"),
            "invalid_email",
            "header injection",
        ),
        ("email", json!(true), "invalid_type", "a boolean"),
        ("country", json!(""), "required", "empty country"),
        ("country", json!("XX"), "invalid_country", "unassigned code"),
        ("country", json!("NOR"), "invalid_country", "alpha-3"),
        ("country", json!("Norway"), "invalid_country", "a name"),
        ("phone", json!("12345"), "invalid_phone", "five digits"),
        (
            "phone",
            json!("1234567890123456"),
            "invalid_phone",
            "sixteen digits",
        ),
        ("phone", json!("call me"), "invalid_phone", "letters"),
        (
            "phone",
            json!("+47 22 33\n44 55"),
            "control_characters",
            "a line break inside a number",
        ),
        (
            "phone",
            json!("+47 22 33 44 55\u{0000}"),
            "control_characters",
            "NUL after a number",
        ),
        (
            "country",
            json!("NO\r\n"),
            "control_characters",
            "a line break after the code",
        ),
        (
            "language",
            json!("\tnb"),
            "control_characters",
            "a tab before the tag",
        ),
        (
            "consent",
            json!("yes\u{0000}"),
            "control_characters",
            "NUL after yes",
        ),
        ("city", json!("c".repeat(101)), "too_long", "101 characters"),
        (
            "city",
            json!("Oslo\nBergen"),
            "control_characters",
            "two lines",
        ),
        (
            "message",
            json!("m".repeat(2001)),
            "too_long",
            "2001 characters",
        ),
        ("message", json!("tab\there"), "control_characters", "a tab"),
        (
            "message",
            json!("bell\u{0007}"),
            "control_characters",
            "BEL",
        ),
        (
            "language",
            json!("english!"),
            "invalid_language",
            "not a tag",
        ),
        (
            "language",
            json!(format!("en-{}", "a".repeat(33))),
            "invalid_language",
            "over 35",
        ),
        ("consent", json!(false), "consent_required", "refused"),
        ("consent", json!("off"), "consent_required", "unchecked"),
        (
            "consent",
            json!("maybe"),
            "invalid_consent",
            "not a yes or no",
        ),
        ("consent", json!(1), "invalid_consent", "a number"),
    ]
}

#[tokio::test]
async fn each_invalid_field_is_reported_with_its_code_and_nothing_is_stored() {
    let app = spawn_app().await;
    for (field, value, code, reason) in invalid_cases() {
        let mut body = valid_json();
        body[field] = value;
        let response = app.post_json(&body).await;
        let answer: Value = json_answer(response, 422, reason).await;
        assert_eq!(answer["error"], "validation_failed", "{reason}");
        let errors = answer["errors"].as_array().unwrap();
        assert_eq!(
            errors.len(),
            1,
            "{reason}: only {field} is wrong: {errors:?}"
        );
        assert_eq!(errors[0]["field"], field, "{reason}");
        assert_eq!(errors[0]["code"], code, "{reason}");
        assert!(
            !errors[0]["message"].as_str().unwrap().is_empty(),
            "{reason}"
        );
    }
    assert_eq!(app.count(), 0);
    app.stop().await;
}

#[tokio::test]
async fn a_missing_consent_is_required_by_default() {
    let app = spawn_app().await;
    let mut body = valid_json();
    body.as_object_mut().unwrap().remove("consent");
    let answer: Value = app.post_json(&body).await.json().await.unwrap();
    assert_eq!(answer["errors"][0]["field"], "consent");
    assert_eq!(answer["errors"][0]["code"], "consent_required");
    app.stop().await;
}

#[tokio::test]
async fn all_problems_are_reported_at_once() {
    let app = spawn_app().await;
    let response = app
        .post_json(&json!({"email": "nope", "country": "ZZ", "phone": "1"}))
        .await;
    let answer: Value = json_answer(response, 422, "").await;
    let fields: Vec<(&str, &str)> = answer["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["field"].as_str().unwrap(), e["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        fields,
        [
            ("name", "required"),
            ("email", "invalid_email"),
            ("country", "invalid_country"),
            ("phone", "invalid_phone"),
            ("consent", "consent_required"),
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn an_html_form_gets_the_form_back_with_the_problems() {
    let app = spawn_app().await;
    let response = app
        .post_form(&[("name", "<script>alert(1)</script>"), ("email", "x")])
        .await;
    assert_eq!(response.status(), 422);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = response.text().await.unwrap();
    assert!(page.contains("<li><a href=\"#f-email\">"), "{page}");
    assert!(page.contains("<li><a href=\"#f-country\">"), "{page}");
    assert!(page.contains("<form id=join"), "the form itself comes back");
    assert!(
        !page.contains("<script>alert"),
        "nothing the visitor typed is echoed raw"
    );
    app.stop().await;
}

#[tokio::test]
async fn invisible_characters_at_the_ends_of_single_line_fields_are_trimmed() {
    let app = spawn_app_with(|settings| {
        settings.form.extra_fields = vec![joinform::config::ExtraFieldSettings {
            name: "organisation".into(),
            max_length: 20,
            required: false,
        }];
    })
    .await;
    // Each field, a valid value, and the stored column it lands in.
    let fields = [
        ("name", "Kari Nordmann"),
        ("email", "kari@example.org"),
        ("country", "NO"),
        ("phone", "+47 912 34 567"),
        ("city", "Tromsø"),
        ("language", "nb"),
        ("consent", "on"),
        ("organisation", "Fagforbundet"),
    ];
    let invisible = [
        '\u{200B}', '\u{FEFF}', '\u{200F}', '\u{202C}', '\u{2066}', '\u{FE0F}',
    ];
    for (field, valid) in fields {
        for c in invisible {
            for value in [
                format!("{c}{valid}"),
                format!("{valid}{c}"),
                format!("{c} {valid}{c}{c}"),
            ] {
                let mut body = valid_json();
                body[field] = json!(value);
                let response = app.post_json(&body).await;
                let reason = format!("{field} {value:?}");
                let answer: Value = json_answer(response, 201, &reason).await;
                let row = app.row(answer["id"].as_str().unwrap()).unwrap();
                let stored = match field {
                    "name" => row.name,
                    "email" => row.email,
                    "country" => row.country.as_str().to_owned(),
                    "phone" => row.phone.unwrap_or_default(),
                    "city" => row.city.unwrap_or_default(),
                    "language" => row.language.unwrap_or_default(),
                    "consent" => (if row.consent { "on" } else { "off" }).to_owned(),
                    _ => row.extra[field].as_str().unwrap_or_default().to_owned(),
                };
                assert_eq!(stored, valid, "{reason}");
            }
        }
    }
    // Inside a value, a bidi control still disguises text: refused as before.
    for (field, value, code) in [
        ("name", "Kari\u{202E}Nordmann", "control_characters"),
        ("city", "Trom\u{2066}sø", "control_characters"),
        ("email", "kari\u{202E}@example.org", "invalid_email"),
        ("organisation", "Fag\u{202D}forbundet", "control_characters"),
    ] {
        let mut body = valid_json();
        body[field] = json!(value);
        let answer: Value = app.post_json(&body).await.json().await.unwrap();
        assert_eq!(answer["errors"][0]["field"], field, "{answer}");
        assert_eq!(answer["errors"][0]["code"], code, "{field}");
    }
    app.stop().await;
}
