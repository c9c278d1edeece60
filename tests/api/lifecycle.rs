//! The real binary under load: stopped with SIGTERM it drains and exits 0; killed with
//! SIGKILL it loses nothing it acknowledged, and after a restart the database is whole
//! and every notification goes out.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use crate::helpers::ServerProcess;

/// Generous limits: the load comes from one address.
const LOAD_ENV: &[(&str, &str)] = &[
    ("JOINFORM_RATE_LIMIT__PER_IP_PER_MINUTE", "1000000"),
    ("JOINFORM_RATE_LIMIT__PER_IP_BURST", "1000000"),
    ("JOINFORM_RATE_LIMIT__GLOBAL_PER_SECOND", "1000000"),
    ("JOINFORM_SERVER__SHUTDOWN_TIMEOUT", "10s"),
];

/// Posts unique sign-ups on `connections` connections until the server stops answering;
/// returns the ids of every 201.
async fn load_until_gone(url: String, connections: usize) -> Vec<String> {
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for connection in 0..connections {
        let url = url.clone();
        let acknowledged = Arc::clone(&acknowledged);
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap();
            for index in 0.. {
                let body = json!({"name": "Load Test", "country": "NO", "consent": true,
                    "email": format!("load{connection}x{index}@example.org")});
                let Ok(response) = client.post(&url).json(&body).send().await else {
                    return;
                };
                if response.status() == 201 {
                    let Ok(body) = response.json::<serde_json::Value>().await else {
                        return;
                    };
                    acknowledged
                        .lock()
                        .unwrap()
                        .push(body["id"].as_str().unwrap().to_owned());
                } else {
                    // A 503 while stopping is allowed; anything else is not.
                    assert_eq!(response.status(), 503, "unexpected answer under load");
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    Arc::try_unwrap(acknowledged).unwrap().into_inner().unwrap()
}

fn stored_ids(dir: &std::path::Path) -> HashSet<String> {
    let connection = rusqlite::Connection::open(dir.join("data").join("joinform.db")).unwrap();
    let mut statement = connection.prepare("SELECT id FROM submissions").unwrap();
    statement
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The load really ran, and every 201 it got is a row.
fn assert_every_acknowledged_is_stored(dir: &std::path::Path, acknowledged: &[String]) {
    assert!(
        acknowledged.len() > 50,
        "the load ran: {}",
        acknowledged.len()
    );
    let stored = stored_ids(dir);
    assert_eq!(missing(acknowledged, &stored), Vec::<String>::new());
}

fn missing(acknowledged: &[String], stored: &HashSet<String>) -> Vec<String> {
    acknowledged
        .iter()
        .filter(|id| !stored.contains(*id))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_drains_commits_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(dir.path(), LOAD_ENV);
    let load = tokio::spawn(load_until_gone(server.url("/join"), 8));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.signal("TERM");
    let status = tokio::task::block_in_place(|| server.wait_exit(Duration::from_secs(20)))
        .expect("the server exits after SIGTERM");
    let acknowledged = load.await.unwrap();
    assert!(status.success(), "exit status {status:?}\n{}", server.log());
    assert_every_acknowledged_is_stored(dir.path(), &acknowledged);
    assert!(
        server.log().contains("delivery worker stopped"),
        "{}",
        server.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_nothing_acknowledged_and_delivery_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(dir.path(), LOAD_ENV);
    let load = tokio::spawn(load_until_gone(server.url("/join"), 8));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.signal("KILL");
    let acknowledged = load.await.unwrap();
    drop(server);
    assert_every_acknowledged_is_stored(dir.path(), &acknowledged);

    // Restart: the database opens, is whole, and every notification goes out.
    let server = ServerProcess::start(dir.path(), &[("JOINFORM_MAIL__MAX_PER_SECOND", "10000")]);
    let health = reqwest::get(server.url("/readyz")).await.unwrap();
    assert_eq!(health.status(), 200);
    let database = dir.path().join("data").join("joinform.db");
    let integrity: String = rusqlite::Connection::open(&database)
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let pending = || -> i64 {
        rusqlite::Connection::open(&database)
            .unwrap()
            .query_row(
                "SELECT count(*) FROM outbox WHERE state <> 'sent'",
                [],
                |row| row.get(0),
            )
            .unwrap()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while pending() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(pending(), 0, "every notification is sent");
    // Each acknowledged sign-up has its message on disk (some may be there twice: a
    // send whose outcome was not recorded before the kill is sent again).
    let mut mailed = HashSet::new();
    for entry in std::fs::read_dir(dir.path().join("data").join("mail")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        if let Some(line) = text.lines().find(|l| l.starts_with("Message-ID: <")) {
            let id = line["Message-ID: <".len()..].split('@').next().unwrap();
            mailed.insert(id.to_owned());
        }
    }
    assert_eq!(missing(&acknowledged, &mailed), Vec::<String>::new());
}
