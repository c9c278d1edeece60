//! GET /metrics on the admin listener: Prometheus text with every series the issue
//! names, counting what really happened.

use std::time::Duration;

use crate::helpers::{spawn_app_with, valid_json};

#[tokio::test]
async fn metrics_count_submissions_spam_limits_outbox_deliveries_and_latency() {
    let app = spawn_app_with(|s| {
        s.rate_limit.per_ip_burst = 3;
        s.rate_limit.per_ip_per_minute = 1;
    })
    .await;
    let mut spam = valid_json();
    spam["email"] = "bot@example.net".into();
    spam["_gotcha"] = "x".into();
    assert_eq!(app.post_json(&valid_json()).await.status(), 201);
    assert_eq!(app.post_json(&valid_json()).await.status(), 201);
    assert_eq!(app.post_json(&spam).await.status(), 201);
    assert_eq!(app.post_json(&valid_json()).await.status(), 429);
    let rows = app
        .wait_for_outbox(Duration::from_secs(10), |(state, _, _)| state == "sent")
        .await;
    assert_eq!(rows.len(), 1);

    let public = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(
        public.status(),
        404,
        "metrics are not on the public listener"
    );
    let response = app
        .client
        .get(format!("{}/metrics", app.admin_address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = response.text().await.unwrap();
    for (series, expected) in [
        (r#"joinform_submissions_total{outcome="accepted"}"#, 1.0),
        (r#"joinform_submissions_total{outcome="duplicate"}"#, 1.0),
        (r#"joinform_submissions_total{outcome="spam"}"#, 1.0),
        (r#"joinform_spam_verdicts_total{reason="honeypot"}"#, 1.0),
        (
            r#"joinform_rate_limited_requests_total{endpoint="join",scope="client"}"#,
            1.0,
        ),
        (
            r#"joinform_delivery_attempts_total{kind="notification",result="sent"}"#,
            1.0,
        ),
        (
            r#"joinform_delivery_attempts_total{kind="reminder",result="sent"}"#,
            0.0,
        ),
        (r#"joinform_outbox_notifications{state="sent"}"#, 1.0),
        (r#"joinform_outbox_notifications{state="pending"}"#, 0.0),
        (
            r#"joinform_request_duration_seconds_count{route="/join"}"#,
            4.0,
        ),
        // The flood gauge: the three valid posts (the 429 was never taken in), under
        // the baseline, so challenges cost the quiet difficulty and nobody is held.
        ("joinform_signups_last_minute", 3.0),
        ("joinform_signups_baseline_per_minute", 1_000_000.0),
        ("joinform_pow_maxnumber", 2_000.0),
        (r#"joinform_holds_total{reason="over_baseline"}"#, 0.0),
        (r#"joinform_submissions_total{outcome="held"}"#, 0.0),
    ] {
        assert_eq!(
            metric_value(&text, series),
            Some(expected),
            "{series} in:\n{text}"
        );
    }
    for line in [
        "# TYPE joinform_request_duration_seconds histogram",
        "# EOF",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "`{line}` missing from:\n{text}"
        );
    }
    app.stop().await;
}

/// The value of one series (`name{label="value",...}`, written exactly as exposed) in
/// Prometheus/OpenMetrics text, compared as a whole token: `} 1` is not `} 10`.
/// `None` if the series is absent; panics if it appears twice.
pub fn metric_value(text: &str, series: &str) -> Option<f64> {
    let values: Vec<f64> = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            // The series ends at the closing brace, or at the first space without labels.
            let end = line
                .find('}')
                .map_or_else(|| line.find(' '), |brace| Some(brace + 1))?;
            let (name, rest) = line.split_at(end);
            let value = rest.split_whitespace().next()?;
            (name == series).then(|| {
                value
                    .parse::<f64>()
                    .unwrap_or_else(|_| panic!("`{line}`: `{value}` is not a number"))
            })
        })
        .collect();
    assert!(values.len() <= 1, "{series} appears {} times", values.len());
    values.first().copied()
}

#[test]
fn metric_values_are_read_whole() {
    let text = "# TYPE a counter\na_total{x=\"1\"} 10\nb 2.5 1700000000\nc{y=\"z\"} 0\n# EOF\n";
    assert_eq!(metric_value(text, r#"a_total{x="1"}"#), Some(10.0));
    assert_eq!(metric_value(text, "b"), Some(2.5));
    assert_eq!(metric_value(text, r#"c{y="z"}"#), Some(0.0));
    assert_eq!(metric_value(text, r#"a_total{x="2"}"#), None);
    assert_eq!(metric_value(text, "a_total"), None);
}
