//! The spam checks and the client address never panic, whatever they are given.

use std::time::Duration;

use joinform::domain::{NewSubmission, RawValue};
use proptest::prelude::*;

use super::{any_text, form_of, schema};

fn spam_settings() -> joinform::config::Settings {
    let mut settings = joinform::config::Settings::default();
    settings.spam.blocked_phrases = vec!["giveaway".into(), "ставки".into()];
    settings.spam.blocked_patterns = vec![r"(?i)\bcasino\b".into(), r"[\p{Han}]{20,}".into()];
    settings
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Every valid submission is judged, whatever its text, without a panic and in
    /// bounded time (the regex crate matches in linear time; this guards against a
    /// rule that would not).
    #[test]
    fn spam_judging_never_panics_and_stays_fast(
        name in any_text(),
        city in any_text(),
        message in prop_oneof![any_text(), "(https?://[a-z.]{1,20} ){0,50}"],
        honeypot in prop_oneof![Just(String::new()), any_text()],
        token in prop_oneof![Just(String::new()), any_text(), "[0-9a-f]{1,20}\\.[0-9a-f]{32}\\.[0-9a-f]{64}"],
    ) {
        let settings = spam_settings();
        let secret = joinform::secret::ServerSecret::from_bytes(&[1; 32]);
        let checks = joinform::spam::SpamChecks::from_settings(&settings, &secret);
        let mut raw = form_of(&[
            ("name", name),
            ("email", "kari@example.org".into()),
            ("country", "NO".into()),
            ("city", city),
            ("message", message),
            ("consent", "on".into()),
        ]);
        raw.insert("_gotcha", RawValue::Text(honeypot)).unwrap();
        raw.insert("_token", RawValue::Text(token)).unwrap();
        if let Ok(submission) = NewSubmission::parse(&raw, &schema(), None) {
            let started = std::time::Instant::now();
            let judgement = checks.judge(&raw, &submission);
            prop_assert!(started.elapsed() < Duration::from_secs(1));
            // No made-up token passes the signature check.
            prop_assert!(judgement.token.is_none());
        }
    }

    /// Forwarding headers from a trusted proxy can hold anything; reading them never
    /// panics and always yields an address.
    #[test]
    fn client_address_parsing_never_panics(
        forwarded in "[ -~]{0,200}",
        x_forwarded_for in "[ -~]{0,200}",
    ) {
        use joinform::config::ForwardingHeader;
        for header in [ForwardingHeader::XForwardedFor, ForwardingHeader::Forwarded] {
            let trusted =
                joinform::spam::TrustedProxies::new(vec!["127.0.0.0/8".parse().unwrap()], header);
            let mut request = actix_web::test::TestRequest::default()
                .peer_addr("127.0.0.1:5000".parse().unwrap());
            if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&forwarded) {
                request = request.insert_header(("forwarded", value));
            }
            if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&x_forwarded_for) {
                request = request.insert_header(("x-forwarded-for", value));
            }
            let request = request.to_http_request();
            prop_assert!(joinform::spam::ClientIp::of(&request, &trusted).is_some());
        }
    }
}
