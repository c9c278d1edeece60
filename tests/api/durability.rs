//! A 2xx means committed: every submission acknowledged under concurrency is on disk.

use std::collections::HashSet;

use futures_util::future::join_all;
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn every_acknowledged_submission_of_a_concurrent_burst_is_on_disk() {
    let app = spawn_app().await;
    let requests = (0..300).map(|n| {
        let body = json!({
            "name": format!("Person {n}"),
            "email": format!("person{n}@example.org"),
            "country": "NO",
            "consent": true,
        });
        let client = app.client.clone();
        let url = app.url("/join");
        async move {
            let response = client.post(url).json(&body).send().await.unwrap();
            let answer: serde_json::Value = crate::helpers::json_answer(response, 201, "").await;
            answer["id"].as_str().unwrap().to_owned()
        }
    });
    let ids: HashSet<String> = join_all(requests).await.into_iter().collect();
    assert_eq!(ids.len(), 300, "ids are unique");
    // Read straight from the file while the server still runs: no shutdown flush needed.
    let stored: HashSet<String> = app
        .rows()
        .into_iter()
        .map(|row| row.id.to_string())
        .collect();
    assert_eq!(stored, ids);
    app.stop().await;
}
