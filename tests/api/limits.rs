//! 413 and 415: size limits (also after decompression) and media types.

use std::io::Write;

use serde_json::Value;

use crate::helpers::{created_id, spawn_app, valid_json};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

async fn error_code(response: reqwest::Response) -> String {
    let body: Value = response.json().await.unwrap();
    body["error"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let app = spawn_app().await;
    let mut body = valid_json();
    body["message"] = Value::String("x".repeat(17 * 1024));
    let response = app.post_json(&body).await;
    assert_eq!(response.status(), 413);
    assert_eq!(error_code(response).await, "payload_too_large");
    app.stop().await;
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_413() {
    let app = spawn_app().await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..40).map(|_| Ok(vec![b'a'; 1024])).collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let response = app
        .post_raw("application/x-www-form-urlencoded", body)
        .await;
    assert_eq!(response.status(), 413);
    app.stop().await;
}

#[tokio::test]
async fn a_compressed_body_is_limited_after_decompression() {
    let app = spawn_app().await;
    // 1 MiB of spaces compresses to about a kilobyte.
    let mut body = serde_json::to_vec(&valid_json()).unwrap();
    body.truncate(body.len() - 1);
    body.extend_from_slice(b", \"message\": \"");
    body.extend(std::iter::repeat_n(b' ', 1024 * 1024));
    body.extend_from_slice(b"\"}");
    let compressed = gzip(&body);
    assert!(compressed.len() < 16 * 1024);
    let response = app
        .client
        .post(app.url("/join"))
        .header("Content-Type", "application/json")
        .header("Content-Encoding", "gzip")
        .body(compressed)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(app.count(), 0);
    app.stop().await;
}

fn deflate(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// The last bytes of a compressed body come out only when the decoder finishes: a body
/// just over the limit must still be 413, not a "broken body" 400.
#[tokio::test]
async fn a_compressed_body_is_accepted_at_the_limit_and_413_just_past_it() {
    let app = spawn_app().await;
    let limit = 16 * 1024;
    let mut accepted = 0;
    for size in [limit, limit + 1, limit + 7, 20_000, 40_000] {
        // Whitespace after the JSON value is still valid JSON.
        let mut body = serde_json::to_vec(&valid_json()).unwrap();
        body.resize(size, b' ');
        for (coding, compress) in [("gzip", gzip as fn(&[u8]) -> Vec<u8>), ("deflate", deflate)] {
            let response = app
                .client
                .post(app.url("/join"))
                .header("Content-Type", "application/json")
                .header("Content-Encoding", coding)
                .body(compress(&body))
                .send()
                .await
                .unwrap();
            if size <= limit {
                created_id(response).await;
                accepted += 1;
            } else {
                assert_eq!(response.status(), 413, "{coding}, {size} bytes");
                assert_eq!(error_code(response).await, "payload_too_large");
            }
        }
    }
    assert_eq!(app.count(), accepted);
    app.stop().await;
}

#[tokio::test]
async fn a_compressed_body_within_the_limit_is_accepted() {
    let app = spawn_app().await;
    let body = serde_json::to_vec(&valid_json()).unwrap();
    for (coding, bytes) in [("gzip", gzip(&body)), ("deflate", deflate(&body))] {
        let response = app
            .client
            .post(app.url("/join"))
            .header("Content-Type", "application/json")
            .header("Content-Encoding", coding)
            .body(bytes)
            .send()
            .await
            .unwrap();
        created_id(response).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn unsupported_media_types_are_415() {
    let app = spawn_app().await;
    let cases = [
        (Some("text/plain"), "name=Kari", "plain text"),
        (None, "name=Kari", "no Content-Type"),
        (Some("application/xml"), "<name>Kari</name>", "XML"),
        (
            Some("application/x-www-form-urlencoded; charset=iso-8859-1"),
            "name=Kari",
            "Latin-1",
        ),
        (
            Some("not a media type"),
            "name=Kari",
            "malformed Content-Type",
        ),
    ];
    for (content_type, body, reason) in cases {
        let mut request = app
            .client
            .post(app.url("/join"))
            .header("Accept", "application/json")
            .body(body);
        if let Some(content_type) = content_type {
            request = request.header("Content-Type", content_type);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 415, "{reason}");
        assert_eq!(
            error_code(response).await,
            "unsupported_media_type",
            "{reason}"
        );
    }
    let response = app
        .client
        .post(app.url("/join"))
        .header("Content-Type", "application/json")
        .header("Content-Encoding", "br")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415, "an unsupported content coding");
    app.stop().await;
}

#[tokio::test]
async fn a_file_part_is_415() {
    let app = spawn_app().await;
    let form = reqwest::multipart::Form::new().text("name", "Kari").part(
        "message",
        reqwest::multipart::Part::bytes(b"GIF89a".to_vec())
            .file_name("cat.gif")
            .mime_str("image/gif")
            .unwrap(),
    );
    let response = app.post_multipart(form).await;
    assert_eq!(response.status(), 415);
    assert_eq!(error_code(response).await, "file_not_accepted");
    app.stop().await;
}
