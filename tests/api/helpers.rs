use std::path::PathBuf;

use actix_web::dev::ServerHandle;
use joinform::config::{EMBEDDED_CONFIG, Settings, SmtpTls, TransportKind};
use joinform::startup::Application;
use joinform::store::StoreError;
use joinform::store::submissions::{self, Selection, StoredSubmission};
use rusqlite::OptionalExtension;
use tempfile::TempDir;

pub struct TestApp {
    pub settings: Settings,
    pub address: String,
    /// The admin listener, `http://127.0.0.1:PORT`.
    pub admin_address: String,
    pub db_path: PathBuf,
    pub client: reqwest::Client,
    /// The server's counters, as `/metrics` shows them.
    pub metrics: std::sync::Arc<joinform::metrics::Metrics>,
    handle: ServerHandle,
    delivery: std::sync::Arc<tokio::sync::Notify>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    // Dropped last: the server must stop before its folder goes.
    dir: Option<TempDir>,
}

/// Settings for a test: the shipped configuration (its example sections), with a fresh
/// database and mail folder in a temp dir, port 0, one worker.
pub fn test_settings(dir: &TempDir) -> Settings {
    let mut settings = Settings::from_toml(Some(EMBEDDED_CONFIG), false).unwrap();
    settings.server.listen = "127.0.0.1:0".parse().unwrap();
    settings.admin.listen = "127.0.0.1:0".parse().unwrap();
    settings.server.workers = 1;
    settings.storage.database = dir.path().join("data").join("joinform.db");
    settings.mail.file_dir = dir.path().join("data").join("mail");
    // Tests post many times from one address; the tests of the limits lower these.
    settings.rate_limit.per_ip_per_minute = 1_000_000;
    settings.rate_limit.per_ip_burst = 1_000_000;
    settings.rate_limit.global_per_second = 1_000_000;
    settings.rate_limit.per_email_per_day = 1_000_000;
    // Nor are they a flood, nor an overflow of notifications: those tests lower these.
    settings.spam.pow_baseline_per_minute = 1_000_000;
    settings.mail.max_notifications_per_section_per_hour = 100_000;
    settings
}

/// Mail through a test SMTP server on `port`, retrying after a second.
pub fn use_smtp(settings: &mut Settings, port: u16) {
    settings.mail.transport = TransportKind::Smtp;
    settings.mail.smtp.host = "127.0.0.1".into();
    settings.mail.smtp.port = port;
    settings.mail.smtp.tls = SmtpTls::None;
    settings.mail.smtp.timeout = joinform::config::HumanDuration::from_secs(1);
    settings.mail.retry_initial = "1s".parse().unwrap();
    settings.mail.retry_max = "2s".parse().unwrap();
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
    let admin_address = format!("http://127.0.0.1:{}", application.admin_port());
    let db_path = settings.storage.database.clone();
    let handle = application.handle();
    let delivery = application.delivery_waker();
    let metrics = application.metrics();
    let task = tokio::spawn(application.run_until_stopped());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    TestApp {
        settings,
        address,
        admin_address,
        db_path,
        client,
        metrics,
        handle,
        delivery,
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

    /// Posts a multipart/form-data body, asking for a JSON answer.
    pub async fn post_multipart(&self, form: reqwest::multipart::Form) -> reqwest::Response {
        self.client
            .post(self.url("/join"))
            .header("Accept", "application/json")
            .multipart(form)
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

    /// Wakes the delivery worker, as the server does after each submission.
    pub async fn delivery_nudge(&self) {
        self.delivery.notify_one();
    }

    /// Stops the server and starts a new one on the same database and settings.
    pub async fn restart(self) -> TestApp {
        let settings = self.settings.clone();
        let dir = self.stop().await;
        spawn_app_in(dir, settings)
    }

    /// Every stored submission, oldest first, read from the file with the library's
    /// own row type (on a connection of its own, as an operator's tool would).
    pub fn rows(&self) -> Vec<StoredSubmission> {
        let connection = rusqlite::Connection::open(&self.db_path).unwrap();
        let mut rows = Vec::new();
        submissions::for_each_selected(&connection, &Selection::default(), |row| {
            rows.push(row);
            Ok::<_, StoreError>(())
        })
        .unwrap();
        rows.sort_by_key(|row| (row.created_at, row.id));
        rows
    }

    pub fn row(&self, id: &str) -> Option<StoredSubmission> {
        self.rows().into_iter().find(|row| row.id.to_string() == id)
    }

    /// The outbox rows: (state, attempts, last_error), oldest first.
    pub fn outbox(&self) -> Vec<(String, i64, Option<String>)> {
        outbox_rows(&self.db_path)
    }

    /// Waits until every outbox row satisfies `done`, at most `limit`.
    pub async fn wait_for_outbox(
        &self,
        limit: std::time::Duration,
        done: impl Fn(&(String, i64, Option<String>)) -> bool,
    ) -> Vec<(String, i64, Option<String>)> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let rows = self.outbox();
            if (!rows.is_empty() && rows.iter().all(&done))
                || tokio::time::Instant::now() >= deadline
            {
                return rows;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
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
    /// with the database stays until the returned guard drops. Every `.eml` file the
    /// file transport wrote is then checked as a standard MIME message.
    pub async fn stop(mut self) -> TempDir {
        self.handle.stop(true).await;
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
        let sender = joinform::mail::sender(&self.settings.mail).unwrap();
        crate::mail_check::assert_standard_mail_files(
            &self.settings.mail.file_dir,
            sender.email.domain(),
        );
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

/// A minimal valid submission as JSON.
pub fn valid_json() -> serde_json::Value {
    serde_json::json!({
        "name": "Kari Nordmann",
        "email": "kari@example.org",
        "country": "NO",
        "consent": true,
    })
}

/// The JSON body of an answer that must have `status`; `case` (may be empty) and the
/// body are shown if it has another. Not a method of `TestApp`: answers from a server
/// in its own process (`process::ServerProcess`) are read the same way.
pub async fn json_answer<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
    status: u16,
    case: &str,
) -> T {
    let found = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(found, status, "{case}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{case}: not JSON ({error}): {text}"))
}

/// The id from a 201 JSON answer.
pub async fn created_id(response: reqwest::Response) -> String {
    let body: serde_json::Value = json_answer(response, 201, "expected 201 Created").await;
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

/// Whether the outside programs a test needs are here (a path that exists, or a name
/// that answers `--version`). When one is missing the test should return: this says
/// so loudly, with how to install it; but under CI (`CI=true`) it fails instead, since
/// a skipped test there would hide a broken feature.
pub fn outside_programs_present(test: &str, programs: &[&str], install: &str) -> bool {
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|program| {
            if program.starts_with('/') {
                !std::path::Path::new(program).exists()
            } else {
                std::process::Command::new(program)
                    .arg("--version")
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status()
                    .is_err()
            }
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    let message = format!(
        "\n********************************************************************\n\
         TEST SKIPPED: {test}: {} not found.\n\
         Install with: {install}\n\
         ********************************************************************\n",
        missing.join(" and ")
    );
    assert!(
        std::env::var("CI").map_or(true, |ci| ci != "true"),
        "{message}(under CI=true a missing program fails the test)"
    );
    eprintln!("{message}");
    false
}

/// The outbox rows of the database at `path`: (state, attempts, last_error), oldest
/// first.
pub fn outbox_rows(path: &std::path::Path) -> Vec<(String, i64, Option<String>)> {
    let connection = rusqlite::Connection::open(path).unwrap();
    let mut statement = connection
        .prepare("SELECT state, attempts, last_error FROM outbox ORDER BY created_at")
        .unwrap();
    statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}
