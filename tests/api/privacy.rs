//! No client address and no personal data where it does not belong: the real binary
//! runs a mixed session (sign-ups, a duplicate, spam, a rate-limited client, an invalid
//! post, delivery), then its captured log and its database files are searched.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use crate::helpers::contains;

/// The client's address: the server listens on 127.0.0.1, so this one can only appear
/// if the client's address was written down.
const CLIENT_IP: &str = "127.0.0.2";

struct Server {
    child: Child,
    log: Arc<Mutex<String>>,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(dir: &std::path::Path, log_filter: &str) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_joinform"));
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("JOINFORM_")) {
        command.env_remove(key);
    }
    let mut child = command
        .arg("serve")
        .current_dir(dir)
        .env("RUST_LOG", log_filter)
        .env("JOINFORM_SERVER__LISTEN", "127.0.0.1:0")
        .env("JOINFORM_SERVER__WORKERS", "1")
        .env("JOINFORM_RATE_LIMIT__PER_IP_BURST", "6")
        .env("JOINFORM_RATE_LIMIT__PER_IP_PER_MINUTE", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    let sink = Arc::clone(&log);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(port) = line
                .split_whitespace()
                .find_map(|word| word.strip_prefix("port="))
                .and_then(|port| port.parse::<u16>().ok())
            {
                let _ = port_tx.send(port);
            }
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    let port = port_rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("the server did not start: {}", log.lock().unwrap()));
    Server { child, log, port }
}

#[tokio::test]
async fn no_client_address_or_personal_data_in_logs_or_database_files() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), "debug");
    let url = |path: &str| format!("http://127.0.0.1:{}{path}", server.port);
    let client = reqwest::Client::builder()
        .local_address(CLIENT_IP.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let people = [
        ("Ingrid Secretname", "ingrid.secret@example.org"),
        ("Bjørn Hiddenname", "bjorn.hidden@example.net"),
    ];
    let token: serde_json::Value = client
        .get(url("/join/token"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut statuses = Vec::new();
    let mut post = async |body: serde_json::Value| {
        let response = client.post(url("/join")).json(&body).send().await.unwrap();
        statuses.push(response.status().as_u16());
    };
    for (name, email) in people {
        post(
            json!({"name": name, "email": email, "country": "NO", "consent": true,
                    "phone": "+47 22 33 44 55", "message": "Private words",
                    "_token": token["token"]}),
        )
        .await;
    }
    // A duplicate, spam, and an invalid post that carries an address.
    post(json!({"name": people[0].0, "email": people[0].1, "country": "NO", "consent": true}))
        .await;
    post(
        json!({"name": "Spam Secretbot", "email": "spam.secret@example.com", "country": "SE",
                "consent": true, "_gotcha": "x"}),
    )
    .await;
    post(
        json!({"name": "Invalid Secretperson", "email": "invalid.secret@@example.org",
                "country": "NO"}),
    )
    .await;
    // Over the burst: rate limited.
    for _ in 0..3 {
        post(
            json!({"name": "Flood Secretname", "email": "flood.secret@example.org",
                    "country": "NO", "consent": true}),
        )
        .await;
    }
    assert_eq!(statuses, [201, 201, 201, 201, 422, 201, 429, 429]);

    // Let delivery run (file transport), then stop the server hard.
    let mail_dir = dir.path().join("data").join("mail");
    for _ in 0..100 {
        if std::fs::read_dir(&mail_dir).map_or(0, |d| d.count()) >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(std::fs::read_dir(&mail_dir).unwrap().count(), 2);
    let log = server.log.lock().unwrap().clone();
    drop(server);
    assert!(log.contains("submission received"), "{log}");
    assert!(log.contains("rate limited"), "{log}");

    let mut secrets = vec![
        CLIENT_IP.to_owned(),
        "+47 22 33 44 55".into(),
        "Private words".into(),
    ];
    for (name, email) in people {
        secrets.push(name.into());
        secrets.push(email.into());
    }
    secrets.extend([
        "spam.secret".into(),
        "invalid.secret".into(),
        "flood.secret".into(),
        "Secretname".into(),
        "Secretperson".into(),
    ]);
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "`{secret}` is in the log:\n{log}"
        );
    }
    // The database holds the sign-ups, of course, but never the client's address.
    let data = database_files(dir.path());
    assert!(
        contains(&data, people[0].1.as_bytes()),
        "the sign-up is stored"
    );
    assert!(
        !contains(&data, CLIENT_IP.as_bytes()),
        "the client's address is stored"
    );
}

/// The database file, its WAL and shared-memory file.
fn database_files(dir: &std::path::Path) -> Vec<u8> {
    let data = dir.join("data");
    let mut bytes = Vec::new();
    for name in ["joinform.db", "joinform.db-wal", "joinform.db-shm"] {
        bytes.extend(std::fs::read(data.join(name)).unwrap_or_default());
    }
    bytes
}
