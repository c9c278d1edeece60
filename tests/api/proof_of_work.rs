//! Proof of work (issue 17, first part): GET /join/challenge in ALTCHA's format, and a
//! solution posted in `altcha` verified and used once. For now it changes no answer; it
//! is counted on /metrics.

use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::helpers::{TestApp, spawn_app_with, valid_json};
use crate::metrics::metric_value;

/// Tries every number up to `maxnumber`, as the widget does.
pub(crate) fn solve(challenge: &Value) -> u64 {
    let salt = challenge["salt"].as_str().unwrap();
    let target = challenge["challenge"].as_str().unwrap();
    let maxnumber = challenge["maxnumber"].as_u64().unwrap();
    (0..=maxnumber)
        .find(|number| hex::encode(Sha256::digest(format!("{salt}{number}"))) == target)
        .expect("the challenge has a solution up to maxnumber")
}

pub(crate) async fn pow_verdicts(app: &TestApp, result: &str) -> Option<f64> {
    let text = app
        .client
        .get(format!("{}/metrics", app.admin_address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    metric_value(
        &text,
        &format!(r#"joinform_pow_verdicts_total{{result="{result}"}}"#),
    )
}

#[tokio::test]
async fn a_solved_challenge_is_verified_once_and_a_replay_is_counted_but_still_answered_201() {
    let app = spawn_app_with(|s| s.spam.pow_maxnumber = 1000).await;
    let head = app
        .client
        .head(app.url("/join/challenge"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    let response = app
        .client
        .get(app.url("/join/challenge"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let challenge: Value = response.json().await.unwrap();
    assert_eq!(challenge["algorithm"], "SHA-256");
    assert_eq!(challenge["maxnumber"], 1000);
    assert!(challenge["salt"].as_str().unwrap().contains("?expires="));
    let number = solve(&challenge);
    let payload = serde_json::json!({
        "algorithm": challenge["algorithm"],
        "challenge": challenge["challenge"],
        "number": number,
        "salt": challenge["salt"],
        "signature": challenge["signature"],
        "took": 12,
    });
    let mut post = valid_json();
    post["altcha"] = base64::engine::general_purpose::STANDARD
        .encode(payload.to_string())
        .into();
    assert_eq!(app.post_json(&post).await.status(), 201);
    assert_eq!(pow_verdicts(&app, "verified").await, Some(1.0));
    assert_eq!(pow_verdicts(&app, "replayed").await, Some(0.0));

    post["email"] = "someone.else@example.org".into();
    assert_eq!(
        app.post_json(&post).await.status(),
        201,
        "no answer changes yet"
    );
    assert_eq!(pow_verdicts(&app, "verified").await, Some(1.0));
    assert_eq!(pow_verdicts(&app, "replayed").await, Some(1.0));

    post["email"] = "a.third@example.org".into();
    post["altcha"] = "not a solution".into();
    assert_eq!(app.post_json(&post).await.status(), 201);
    assert_eq!(pow_verdicts(&app, "malformed").await, Some(1.0));
    app.stop().await;
}

/// GET /join/challenge and GET /join/token answer only JSON, so over their quota they
/// say so in JSON too, whatever `Accept` says: a widget's `fetch()` sends `*/*`.
#[tokio::test]
async fn over_quota_the_json_endpoints_answer_json_whatever_the_accept_header() {
    let app = spawn_app_with(|s| {
        s.rate_limit.per_ip_per_minute = 1;
        s.rate_limit.per_ip_burst = 1;
    })
    .await;
    for path in ["/join/challenge", "/join/token"] {
        let fetch = || app.client.get(app.url(path)).header("accept", "*/*").send();
        assert_eq!(fetch().await.unwrap().status(), 200, "{path}");
        let refused = fetch().await.unwrap();
        assert_eq!(refused.status(), 429, "{path}");
        assert!(refused.headers().contains_key("retry-after"), "{path}");
        assert!(
            refused.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{path}"
        );
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["error"], "rate_limited", "{path}");
    }
    app.stop().await;
}
