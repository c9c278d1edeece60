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
    for line in [
        r#"joinform_submissions_total{outcome="accepted"} 1"#,
        r#"joinform_submissions_total{outcome="duplicate"} 1"#,
        r#"joinform_submissions_total{outcome="spam"} 1"#,
        r#"joinform_spam_verdicts_total{reason="honeypot"} 1"#,
        r#"joinform_rate_limited_requests_total{endpoint="join",scope="client"} 1"#,
        r#"joinform_delivery_attempts_total{result="sent"} 1"#,
        r#"joinform_outbox_notifications{state="sent"} 1"#,
        r#"joinform_outbox_notifications{state="pending"} 0"#,
        r#"joinform_request_duration_seconds_count{route="/join"} 4"#,
        "# TYPE joinform_request_duration_seconds histogram",
        "# EOF",
    ] {
        assert!(text.contains(line), "`{line}` missing from:\n{text}");
    }
    app.stop().await;
}
