//! Through the real server over loopback, every body gets the status the library
//! predicts, never a 5xx.

use proptest::prelude::*;

use super::EXTRA_FIELDS;
use super::compression::{Coding, JSON, any_coding, any_content_type, any_typed_body, bomb};
use super::reader::{LIMIT, join_status, read_body, runtime};

/// What a client labels its body with.
#[derive(Debug, Clone)]
enum SentBody {
    Plain(Vec<u8>),
    Compressed(Coding, Vec<u8>),
    /// Random bytes under a coding's label.
    Junk(Coding, Vec<u8>),
    Bomb(Coding),
    /// A coding the server does not speak.
    Unsupported(&'static str, Vec<u8>),
}

impl SentBody {
    /// The Content-Encoding header and the bytes on the wire.
    fn wire(&self) -> (Option<&'static [u8]>, Vec<u8>) {
        match self {
            Self::Plain(body) => (None, body.clone()),
            Self::Compressed(coding, body) => (Some(coding.label()), coding.compress(6, body)),
            Self::Junk(coding, bytes) => (Some(coding.label()), bytes.clone()),
            Self::Bomb(coding) => (Some(coding.label()), bomb(*coding).to_vec()),
            Self::Unsupported(label, body) => (Some(label.as_bytes()), body.clone()),
        }
    }
}

fn any_sent_body() -> BoxedStrategy<(&'static [u8], SentBody)> {
    let sent: BoxedStrategy<(&'static [u8], SentBody)> = prop_oneof![
        2 => any_typed_body().prop_map(|(content_type, body)| (content_type, SentBody::Plain(body))),
        3 => (any_coding(), any_typed_body())
            .prop_map(|(c, (content_type, body))| (content_type, SentBody::Compressed(c, body))),
        2 => (
            any_content_type(),
            any_coding(),
            proptest::collection::vec(any::<u8>(), 0..256),
        )
            .prop_map(|(content_type, c, bytes)| (content_type, SentBody::Junk(c, bytes))),
        1 => any_coding().prop_map(|c| (JSON, SentBody::Bomb(c))),
        1 => (
            prop::sample::select(vec!["br", "compress", "gzip, gzip", "zstd", "gzip;q=1"]),
            any_typed_body(),
        )
            .prop_map(|(label, (content_type, body))| {
                (content_type, SentBody::Unsupported(label, body))
            }),
    ]
    .boxed();
    prop_oneof![
        8 => sent.clone(),
        1 => sent.prop_map(|(_, body)| (&b"text/plain"[..], body)),
    ]
    .boxed()
}

/// Through the real server over loopback: whatever the body and its coding, POST /join
/// answers exactly as the library's body reader and validation predict (201, or 303
/// for an HTML form; 400, 413, 415 or 422), never a 5xx, and the server stays up.
#[test]
fn post_join_answers_every_body_with_a_client_status() {
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let app = server_runtime.block_on(crate::helpers::spawn_app_with(|settings| {
        settings.form.extra_fields = EXTRA_FIELDS
            .iter()
            .map(|(name, max_length)| joinform::config::ExtraFieldSettings {
                name: (*name).into(),
                max_length: *max_length,
                required: false,
            })
            .collect();
    }));
    assert_eq!(app.settings.server.max_body_bytes, LIMIT);
    // The server's own schema, built as start-up builds it.
    let secret = joinform::secret::ServerSecret::from_bytes(&[1; 32]);
    let spam = joinform::spam::SpamChecks::from_settings(&app.settings, &secret);
    let schema = app.settings.form.schema().with_control_fields(
        spam.fields()
            .into_iter()
            .chain([joinform::http::form_page::LANGUAGE_FIELD]),
    );
    // A connection per request: one the server closed after a 413 is never reused.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let reader = runtime();

    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 64,
        ..ProptestConfig::default()
    });
    let strategy = (any_sent_body(), any::<bool>());
    runner
        .run(&strategy, |((content_type, body), accept_json)| {
            let (coding, bytes) = body.wire();
            let mut headers = vec![("content-type", content_type)];
            headers.extend(coding.map(|label| ("content-encoding", label)));
            let predicted = join_status(
                read_body(&reader, &headers, &bytes, &[], &schema).unwrap(),
                &schema,
            );
            let html = !accept_json && content_type != JSON;
            let expected = if html && predicted == 201 {
                303
            } else {
                predicted
            };
            let status = server_runtime.block_on(async {
                let mut request = client
                    .post(app.url("/join"))
                    .header("content-type", content_type)
                    .body(bytes.clone());
                if let Some(label) = coding {
                    request = request.header("content-encoding", label);
                }
                if accept_json {
                    request = request.header("accept", "application/json");
                }
                request.send().await.unwrap().status().as_u16()
            });
            prop_assert!(!(500..600).contains(&status), "a server error: {status}");
            prop_assert_eq!(status, expected);
            Ok(())
        })
        .unwrap();
    let healthy = server_runtime.block_on(async {
        client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(healthy, 200);
    server_runtime.block_on(app.stop());
}
