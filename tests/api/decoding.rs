//! 400 for bodies that cannot be read as fields: malformed, not UTF-8, a field twice.

use serde_json::Value;

use crate::helpers::{created_id, json_answer, spawn_app};

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
        let answer: Value = json_answer(response, 400, reason).await;
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
    let answer: Value = json_answer(json, 404, "").await;
    assert_eq!(answer["error"], "not_found");
    let html = app.client.get(app.url("/nope")).send().await.unwrap();
    assert_eq!(html.status(), 404);
    assert!(html.text().await.unwrap().contains("<html"));
    app.stop().await;
}

const BOM: &[u8] = b"\xEF\xBB\xBF";
const URLENCODED_KARI: &[u8] = b"name=Kari+Nordmann&email=kari%40example.org&country=NO&consent=on";
const JSON_KARI: &[u8] =
    br#"{"name":"Kari Nordmann","email":"kari@example.org","country":"NO","consent":true}"#;

fn with_bom(body: &[u8]) -> Vec<u8> {
    [BOM, body].concat()
}

/// A multipart body of text parts, `before_first` placed ahead of the first part's
/// value.
fn multipart(parts: &[(&str, &[u8])], before_first: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for (at, (name, value)) in parts.iter().enumerate() {
        body.extend_from_slice(
            format!("--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
        );
        if at == 0 {
            body.extend_from_slice(before_first);
        }
        body.extend_from_slice(value);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"--XyZ--\r\n");
    body
}

fn kari_parts() -> Vec<(&'static str, &'static [u8])> {
    vec![
        ("name", b"Kari Nordmann"),
        ("email", b"kari@example.org"),
        ("country", b"NO"),
        ("consent", b"on"),
    ]
}

fn compressed(coding: &str, body: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let level = flate2::Compression::default();
    match coding {
        "gzip" => {
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), level);
            encoder.write_all(body).unwrap();
            encoder.finish().unwrap()
        }
        _ => {
            let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), level);
            encoder.write_all(body).unwrap();
            encoder.finish().unwrap()
        }
    }
}

#[tokio::test]
async fn a_leading_byte_order_mark_is_ignored_in_every_encoding() {
    let app = spawn_app().await;
    let boundary = "multipart/form-data; boundary=XyZ";
    let cases: Vec<(&str, Option<&str>, Vec<u8>, &str)> = vec![
        (
            JSON,
            None,
            with_bom(JSON_KARI),
            "JSON (RFC 8259 section 8.1)",
        ),
        (FORM, None, with_bom(URLENCODED_KARI), "urlencoded"),
        (
            boundary,
            None,
            with_bom(&multipart(&kari_parts(), b"")),
            "before the first boundary",
        ),
        (
            boundary,
            None,
            multipart(&kari_parts(), BOM),
            "at the start of the first part",
        ),
        (
            FORM,
            Some("gzip"),
            compressed("gzip", &with_bom(URLENCODED_KARI)),
            "urlencoded, gzip",
        ),
        (
            JSON,
            Some("deflate"),
            compressed("deflate", &with_bom(JSON_KARI)),
            "JSON, deflate",
        ),
        (
            boundary,
            Some("gzip"),
            compressed("gzip", &multipart(&kari_parts(), BOM)),
            "multipart, gzip",
        ),
    ];
    for (content_type, coding, body, reason) in cases {
        let mut request = app
            .client
            .post(app.url("/join"))
            .header("Content-Type", content_type)
            .header("Accept", "application/json");
        if let Some(coding) = coding {
            request = request.header("Content-Encoding", coding);
        }
        let response = request.body(body).send().await.unwrap();
        let id = created_id(response).await;
        let row = app.row(&id).unwrap();
        assert_eq!(row.name, "Kari Nordmann", "{reason}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_file_input_left_empty_is_absent_and_a_real_upload_is_refused() {
    let app = spawn_app().await;
    let boundary = "multipart/form-data; boundary=XyZ";
    let file_part = |disposition: &str, content: &[u8]| {
        let mut body = multipart(&kari_parts(), b"");
        body.truncate(body.len() - b"--XyZ--\r\n".len());
        body.extend_from_slice(
            format!(
                "--XyZ\r\nContent-Disposition: form-data; name=\"cv\"; {disposition}\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n--XyZ--\r\n");
        body
    };
    let empty = app
        .post_raw(boundary, file_part("filename=\"\"", b""))
        .await;
    let answer: Value = json_answer(empty, 201, "what browsers send for an empty file input").await;
    let id = answer["id"].as_str().unwrap().to_owned();
    assert_eq!(app.row(&id).unwrap().name, "Kari Nordmann");
    let cases = [
        (file_part("filename=\"cv.pdf\"", b"%PDF-1.7"), "a file"),
        (
            file_part("filename=\"cv.pdf\"", b""),
            "an empty file that was chosen",
        ),
        (
            file_part("filename=\"\"", b"content"),
            "content without a file name",
        ),
        (
            file_part("filename*=UTF-8''cv.pdf", b"%PDF"),
            "an RFC 5987 file name",
        ),
    ];
    for (body, reason) in cases {
        let response = app.post_raw(boundary, body).await;
        let answer: Value = json_answer(response, 415, reason).await;
        assert_eq!(answer["error"], "file_not_accepted", "{reason}");
    }
    assert_eq!(app.count(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_form_in_a_legacy_encoding_is_read_in_the_encoding_it_names() {
    let app = spawn_app().await;
    let boundary = "multipart/form-data; boundary=XyZ";
    let latin1 = b"name=Ren%E9+M%FCller&email=rene%40example.org&country=FR&consent=on";
    let shift_jis = "name=%8ER%93c+%89%D4%8Eq&email=hanako%40example.jp&country=JP&consent=on";
    let cases: Vec<(String, Vec<u8>, &str, &str)> = vec![
        (
            FORM.into(),
            [b"_charset_=windows-1252&".as_slice(), latin1].concat(),
            "René Müller",
            "_charset_ first, as a hidden input at the top of the form",
        ),
        (
            FORM.into(),
            [latin1.as_slice(), b"&_charset_=ISO-8859-1"].concat(),
            "René Müller",
            "_charset_ last, with a label for windows-1252",
        ),
        (
            FORM.into(),
            format!("{shift_jis}&_charset_=Shift_JIS").into_bytes(),
            "山田 花子",
            "Shift_JIS",
        ),
        (
            format!("{FORM}; charset=UTF-8"),
            b"_charset_=utf8&name=Ren%C3%A9+M%C3%BCller&email=rene%40example.org&country=FR&consent=on"
                .to_vec(),
            "René Müller",
            "a Content-Type charset and _charset_ that agree",
        ),
        (
            FORM.into(),
            b"_charset_=UTF-8&name=Ren%C3%A9+M%C3%BCller&email=rene%40example.org&country=FR&consent=on"
                .to_vec(),
            "René Müller",
            "a UTF-8 page that has the field too",
        ),
        (
            boundary.into(),
            multipart(
                &[
                    ("_charset_", b"windows-1252"),
                    ("name", b"Ren\xe9 M\xfcller"),
                    ("email", b"rene@example.org"),
                    ("country", b"FR"),
                    ("consent", b"on"),
                ],
                b"",
            ),
            "René Müller",
            "multipart with a _charset_ part (RFC 7578 section 4.6)",
        ),
    ];
    for (content_type, body, name, reason) in cases {
        let response = app.post_raw(&content_type, body).await;
        let id = created_id(response).await;
        let row = app.row(&id).unwrap();
        assert_eq!(row.name, name, "{reason}");
        assert!(row.extra.is_empty(), "{reason}: _charset_ is not data");
    }
    let refused: Vec<(String, Vec<u8>, u16, &str, &str)> = vec![
        (
            FORM.into(),
            [b"_charset_=klingon&".as_slice(), latin1].concat(),
            415,
            "unsupported_media_type",
            "an encoding no one knows",
        ),
        (
            format!("{FORM}; charset=ISO-8859-1"),
            latin1.to_vec(),
            415,
            "unsupported_media_type",
            "a client that sets its own Content-Type can send UTF-8",
        ),
        (
            format!("{FORM}; charset=utf-8"),
            [b"_charset_=windows-1252&".as_slice(), latin1].concat(),
            400,
            "malformed_body",
            "the Content-Type and _charset_ disagree",
        ),
        (
            FORM.into(),
            b"_charset_=Shift_JIS&name=%82%20&country=JP".to_vec(),
            400,
            "invalid_encoding",
            "bytes that are not Shift_JIS",
        ),
        (
            FORM.into(),
            b"_charset_=UTF-8&name=Ren%E9".to_vec(),
            400,
            "invalid_utf8",
            "Latin-1 bytes that claim to be UTF-8",
        ),
        (
            FORM.into(),
            [
                b"_charset_=windows-1252&_charset_=windows-1252&".as_slice(),
                latin1,
            ]
            .concat(),
            400,
            "duplicate_field",
            "_charset_ twice",
        ),
        (
            format!("{JSON}; charset=iso-8859-1"),
            b"{}".to_vec(),
            415,
            "unsupported_media_type",
            "JSON is UTF-8 (RFC 8259 section 8.1)",
        ),
    ];
    for (content_type, body, status, code, reason) in refused {
        let response = app.post_raw(&content_type, body).await;
        let answer: Value = json_answer(response, status, reason).await;
        assert_eq!(answer["error"], code, "{reason}: {answer}");
    }
    assert_eq!(app.count(), 6);
    let dir = app.stop().await;
    let files = crate::helpers::database_bytes(dir.path());
    for label in [b"windows-1252".as_slice(), b"Shift_JIS"] {
        assert!(
            !crate::helpers::contains(&files, label),
            "_charset_ is never stored"
        );
    }
}

#[tokio::test]
async fn a_form_that_is_not_utf8_is_explained_in_the_visitors_language_with_the_fix() {
    let app = spawn_app().await;
    let latin1 = "name=Ren%E9&email=rene%40example.org&country=FR&consent=on";
    let html = |body: String, accept_language: &str| {
        app.client
            .post(app.url("/join"))
            .header("Content-Type", FORM)
            .header("Accept", "text/html")
            .header("Accept-Language", accept_language)
            .body(body)
            .send()
    };
    let cases = [
        (
            format!("{latin1}&_lang=de"),
            "fr",
            "de",
            "Wir konnten dieses Formular nicht lesen",
            "the page's _lang",
        ),
        (
            format!("_lang=fa&{latin1}"),
            "en",
            "fa",
            "نتوانستیم این فرم را بخوانیم",
            "_lang first",
        ),
        (
            latin1.to_owned(),
            "fr-CH, en;q=0.5",
            "fr",
            "Nous n’avons pas pu lire ce formulaire",
            "no _lang: Accept-Language",
        ),
        (
            format!("{latin1}&_lang=xx"),
            "es",
            "es",
            "No hemos podido leer este formulario",
            "a _lang not shipped",
        ),
    ];
    for (body, accept_language, language, title, reason) in cases {
        let response = html(body, accept_language).await.unwrap();
        assert_eq!(response.status(), 400, "{reason}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{reason}"
        );
        let page = response.text().await.unwrap();
        assert!(
            page.contains(&format!("<html lang=\"{language}\"")),
            "{reason}: {page}"
        );
        assert!(page.contains(title), "{reason}: {page}");
        assert!(
            page.contains("accept-charset=&quot;UTF-8&quot;"),
            "{reason}: the fix"
        );
        assert!(!page.contains("Ren"), "{reason}: nothing typed is echoed");
    }
    let json = app
        .client
        .post(app.url("/join"))
        .header("Content-Type", FORM)
        .header("Accept", "application/json")
        .header("Accept-Language", "ru")
        .body(latin1)
        .send()
        .await
        .unwrap();
    let answer: Value = json_answer(json, 400, "").await;
    assert_eq!(answer["error"], "invalid_utf8");
    let message = answer["message"].as_str().unwrap();
    assert!(
        message.contains("Нам не удалось") || message.contains("устаревшей"),
        "{message}"
    );
    assert!(message.contains("accept-charset=\"UTF-8\""), "{message}");
    assert_eq!(app.count(), 0);
    app.stop().await;
}

/// Posts `body` and returns the stored row's name and status.
async fn stored_name_and_status(
    app: &crate::helpers::TestApp,
    content_type: &str,
    body: Vec<u8>,
) -> (String, String) {
    let response = app.post_raw(content_type, body).await;
    let id = created_id(response).await;
    let row = app.row(&id).unwrap();
    (row.name, row.status.as_str().to_owned())
}

#[tokio::test]
async fn characters_a_legacy_encoding_cannot_hold_arrive_as_themselves() {
    let app = spawn_app().await;
    // What Chromium sends for "Renée Дмитриева" from a windows-1252 page: é as its
    // windows-1252 byte, each Cyrillic letter as a decimal reference, the reference's
    // `&`, `#` and `;` percent-encoded.
    let latin1 = [
        b"_charset_=windows-1252&name=Ren%E9e+".as_slice(),
        b"%26%231044%3B%26%231084%3B%26%231080%3B%26%231090%3B%26%231088%3B",
        b"%26%231080%3B%26%231077%3B%26%231074%3B%26%231072%3B",
        b"&email=renee%40example.org&country=FR&consent=on",
    ]
    .concat();
    let (name, status) = stored_name_and_status(&app, FORM, latin1).await;
    assert_eq!(name, "Renée Дмитриева");
    assert_eq!(
        status, "accepted",
        "the references are not symbols and digits"
    );

    // The Shift_JIS encoder in the HTML error mode, as the browser runs it: 山田 花子
    // in Shift_JIS bytes, the cherry blossom (not in Shift_JIS) as a reference.
    let (shift_jis, _, unmappable) = encoding_rs::SHIFT_JIS.encode("山田 花子 🌸");
    assert!(unmappable && shift_jis.ends_with(b" &#127800;"));
    let body = multipart(
        &[
            ("_charset_", b"Shift_JIS"),
            ("name", &shift_jis),
            ("email", b"hanako@example.jp"),
            ("country", b"JP"),
            ("consent", b"on"),
        ],
        b"",
    );
    let (name, status) =
        stored_name_and_status(&app, "multipart/form-data; boundary=XyZ", body).await;
    assert_eq!(name, "山田 花子 🌸");
    assert_eq!(status, "accepted");

    // From a UTF-8 form every character travels as itself: a reference is typed text.
    let utf8 = b"name=Kari+%26%231044%3B&email=kari%40example.org&country=NO&consent=on";
    let (name, _) = stored_name_and_status(&app, FORM, utf8.to_vec()).await;
    assert_eq!(name, "Kari &#1044;");
    app.stop().await;
}
