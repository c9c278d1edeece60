//! 400 for bodies that cannot be read as fields: malformed, not UTF-8, a field twice.

use serde_json::Value;

use crate::helpers::spawn_app;

const FORM: &str = "application/x-www-form-urlencoded";
const JSON: &str = "application/json";

#[tokio::test]
async fn bodies_that_cannot_be_decoded_are_400() {
    let app = spawn_app().await;
    let boundary = "multipart/form-data; boundary=XyZ";
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (JSON, b"{\"name\": \"Kari\"".to_vec(), "malformed_body", "unterminated JSON"),
        (JSON, b"[1, 2]".to_vec(), "malformed_body", "a JSON array"),
        (JSON, b"\"Kari\"".to_vec(), "malformed_body", "a JSON string"),
        (JSON, b"{} {}".to_vec(), "malformed_body", "two JSON values"),
        (JSON, b"".to_vec(), "malformed_body", "an empty JSON body"),
        (JSON, b"{\"name\": \"K\xffri\"}".to_vec(), "invalid_utf8", "raw invalid UTF-8 in JSON"),
        (JSON, b"{\"name\": \"Kari\", \"name\": \"Ola\"}".to_vec(), "duplicate_field", "a JSON key twice"),
        (FORM, b"name=K%FFri&email=a@example.org".to_vec(), "invalid_utf8", "percent-encoded invalid UTF-8"),
        (FORM, b"name=K\xe9ri".to_vec(), "invalid_utf8", "raw Latin-1 byte"),
        (FORM, b"name=Kari&name=Ola".to_vec(), "duplicate_field", "a form field twice"),
        (FORM, b"email=a@example.org&email=b@example.org".to_vec(), "duplicate_field", "email twice"),
        (boundary, b"--XyZ\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nKari\r\n--XyZ\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nOla\r\n--XyZ--\r\n".to_vec(), "duplicate_field", "a multipart field twice"),
        (boundary, b"--XyZ\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nK\xffri\r\n--XyZ--\r\n".to_vec(), "invalid_utf8", "invalid UTF-8 in a part"),
        (boundary, b"this is not multipart at all".to_vec(), "malformed_body", "no boundary line"),
        ("multipart/form-data", b"--XyZ\r\n".to_vec(), "malformed_body", "no boundary parameter"),
    ];
    for (content_type, body, code, reason) in cases {
        let response = app.post_raw(content_type, body).await;
        assert_eq!(response.status(), 400, "{reason}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["error"], code, "{reason}: {answer}");
        assert!(!answer["message"].as_str().unwrap().is_empty());
    }
    assert_eq!(app.count(), 0);
    app.stop().await;
}

#[tokio::test]
async fn a_duplicate_unknown_field_is_ignored_like_any_unknown_field() {
    let app = spawn_app().await;
    let response = app
        .post_raw(
            FORM,
            "name=Kari&email=kari@example.org&country=NO&consent=on&interest=a&interest=b",
        )
        .await;
    assert_eq!(response.status(), 201);
    app.stop().await;
}

#[tokio::test]
async fn json_null_is_an_absent_field() {
    let app = spawn_app().await;
    let response = app
        .post_raw(
            JSON,
            r#"{"name":"Kari","email":"kari@example.org","country":"NO","consent":true,"phone":null}"#,
        )
        .await;
    assert_eq!(response.status(), 201);
    app.stop().await;
}

#[tokio::test]
async fn unknown_routes_are_404_in_the_clients_format() {
    let app = spawn_app().await;
    let json = app
        .client
        .get(app.url("/nope"))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), 404);
    let answer: Value = json.json().await.unwrap();
    assert_eq!(answer["error"], "not_found");
    let html = app.client.get(app.url("/nope")).send().await.unwrap();
    assert_eq!(html.status(), 404);
    assert!(html.text().await.unwrap().contains("<html"));
    app.stop().await;
}
