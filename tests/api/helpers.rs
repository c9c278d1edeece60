use std::path::PathBuf;

use actix_web::dev::ServerHandle;
use joinform::config::Settings;
use joinform::startup::Application;
use rusqlite::OptionalExtension;
use tempfile::TempDir;

pub struct TestApp {
    pub settings: Settings,
    pub address: String,
    pub db_path: PathBuf,
    pub client: reqwest::Client,
    handle: ServerHandle,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    // Dropped last: the server must stop before its folder goes.
    dir: Option<TempDir>,
}

/// Settings for a test: a fresh database in a temp dir, port 0, one worker.
pub fn test_settings(dir: &TempDir) -> Settings {
    let mut settings = Settings::default();
    settings.server.listen = "127.0.0.1:0".parse().unwrap();
    settings.server.workers = 1;
    settings.storage.database = dir.path().join("data").join("joinform.db");
    settings
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(&dir);
    adjust(&mut settings);
    spawn_app_in(dir, settings)
}

/// Starts a server on `settings`, owning `dir` (where its database lives).
pub fn spawn_app_in(dir: TempDir, settings: Settings) -> TestApp {
    let application = Application::build(&settings).expect("the application builds");
    let address = format!("http://127.0.0.1:{}", application.port());
    let db_path = settings.storage.database.clone();
    let handle = application.handle();
    let task = tokio::spawn(application.run_until_stopped());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    TestApp {
        settings,
        address,
        db_path,
        client,
        handle,
        task: Some(task),
        dir: Some(dir),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn post_json(&self, body: &serde_json::Value) -> reqwest::Response {
        self.client
            .post(self.url("/join"))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_form(&self, pairs: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(self.url("/join"))
            .form(pairs)
            .send()
            .await
            .unwrap()
    }

    /// Posts raw bytes with the given content type.
    pub async fn post_raw(
        &self,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        self.client
            .post(self.url("/join"))
            .header("Content-Type", content_type)
            .header("Accept", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// Stops the server and starts a new one on the same database and settings.
    pub async fn restart(self) -> TestApp {
        let settings = self.settings.clone();
        let dir = self.stop().await;
        spawn_app_in(dir, settings)
    }

    /// Reads the database file directly, as an operator would.
    pub fn rows(&self) -> Vec<StoredRow> {
        let connection = rusqlite::Connection::open(&self.db_path).unwrap();
        let mut statement = connection
            .prepare(
                "SELECT id, created_at, name, email, country, phone, city, message, language,
                        consent, extra, status FROM submissions ORDER BY created_at, id",
            )
            .unwrap();
        statement
            .query_map([], |row| {
                Ok(StoredRow {
                    id: row.get(0)?,
                    created_at: row.get(1)?,
                    name: row.get(2)?,
                    email: row.get(3)?,
                    country: row.get(4)?,
                    phone: row.get(5)?,
                    city: row.get(6)?,
                    message: row.get(7)?,
                    language: row.get(8)?,
                    consent: row.get(9)?,
                    extra: row.get(10)?,
                    status: row.get(11)?,
                })
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    pub fn row(&self, id: &str) -> Option<StoredRow> {
        self.rows().into_iter().find(|row| row.id == id)
    }

    pub fn count(&self) -> i64 {
        let connection = rusqlite::Connection::open(&self.db_path).unwrap();
        connection
            .query_row("SELECT count(*) FROM submissions", [], |row| row.get(0))
            .optional()
            .unwrap()
            .unwrap_or(0)
    }

    /// Stops the server gracefully and waits for the writer to finish. The folder
    /// with the database stays until the returned guard drops.
    pub async fn stop(mut self) -> TempDir {
        self.handle.stop(true).await;
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
        self.dir.take().unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // A test that did not call stop(): do not leave the server running.
        if self.task.is_some() {
            drop(self.handle.stop(false));
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRow {
    pub id: String,
    pub created_at: String,
    pub name: String,
    pub email: String,
    pub country: String,
    pub phone: Option<String>,
    pub city: Option<String>,
    pub message: Option<String>,
    pub language: Option<String>,
    pub consent: i64,
    pub extra: String,
    pub status: String,
}

/// A minimal valid submission as JSON.
pub fn valid_json() -> serde_json::Value {
    serde_json::json!({
        "name": "Kari Nordmann",
        "email": "kari@example.org",
        "country": "NO",
        "consent": true,
    })
}

/// The id from a 201 JSON answer.
pub async fn created_id(response: reqwest::Response) -> String {
    assert_eq!(response.status(), 201, "expected 201 Created");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "received");
    body["id"].as_str().unwrap().to_owned()
}

/// Every byte of the database's files (main file, WAL, shared memory) under `dir`.
pub fn database_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in walk(dir) {
        bytes.extend(std::fs::read(entry).unwrap_or_default());
    }
    bytes
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}
