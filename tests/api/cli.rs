//! The `joinform` command run as an operator would: configuration checks, the outbox
//! report and its retry, and serving when started without arguments.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::Duration;

use joinform::config::Settings;
use joinform::domain::Timestamp;

use serde_json::json;
use tempfile::TempDir;

use crate::helpers::{created_id, spawn_app_in, spawn_app_with, use_smtp, valid_json};
use crate::process::Joinform;
use crate::smtp::{Behaviour, SmtpServer};

/// Routing is required; tests of other keys add this to their file. Its contact is at
/// a domain of the organisation's own: routing that reaches nobody (every contact at a
/// domain reserved for examples) is warned of.
const FALLBACK: &str = "\n[fallback]\nname = \"International\"\ncontacts = [\"desk@members.organisation.no\"]\nlanguage = \"en\"\n";

fn check_config(file_text: &str, env: &[(&str, &str)]) -> (bool, String) {
    check_config_file(&format!("{file_text}{FALLBACK}"), env)
}

fn check_config_file(file_text: &str, env: &[(&str, &str)]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("joinform.toml");
    std::fs::write(&path, file_text).unwrap();
    let output = Joinform::new()
        .args(["check-config", "--config"])
        .arg(&path)
        .envs(env)
        .output();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// Whether check-config's summary has the line `label value`, whole: `listen:
/// 127.0.0.1:8080` is not `listen: 127.0.0.1:80801`.
fn summary_says(text: &str, label: &str, value: &str) -> bool {
    text.lines().any(|line| {
        line.strip_prefix(label)
            .is_some_and(|rest| rest.trim() == value)
    })
}

#[test]
fn the_shipped_file_documents_exactly_the_defaults() {
    let shipped = include_str!("../../config/joinform.toml");
    let mut settings = Settings::from_toml(Some(shipped), false).unwrap();
    // The only values without a fixed default, so the only ones exempt: sections and
    // the fallback are examples to replace, and spam.secret (like the SMTP
    // credentials) is deliberately never in the file.
    assert!(!settings.sections.is_empty());
    assert!(settings.fallback.is_some());
    assert_eq!(
        settings.spam.secret, None,
        "the secret is generated, not shipped"
    );
    assert_eq!(settings.mail.smtp.username, None);
    assert_eq!(settings.mail.smtp.password, None);
    settings.sections = Vec::new();
    settings.fallback = None;
    // Every table at once, so a table added later is covered too.
    assert_eq!(settings, Settings::default());

    // ...and every key with a default is written out, not left to the default.
    let file: toml::Table = toml::from_str(shipped).unwrap();
    let defaults = toml::Table::try_from(Settings::default()).unwrap();
    let mut missing = Vec::new();
    for key in leaf_keys(&defaults, "") {
        // No `tokens = []` line: it would clash with the [[admin.tokens]] tables an
        // operator adds (the file says so).
        if key == "admin.tokens" {
            continue;
        }
        let mut value = Some(&file);
        let (tables, last) = key.rsplit_once('.').unwrap_or(("", &key));
        for table in tables.split('.').filter(|t| !t.is_empty()) {
            value = value
                .and_then(|v| v.get(table))
                .and_then(toml::Value::as_table);
        }
        if value.and_then(|table| table.get(last)).is_none() {
            missing.push(key);
        }
    }
    assert!(
        missing.is_empty(),
        "keys not in config/joinform.toml: {missing:?}"
    );
}

#[test]
fn check_config_says_whether_follow_up_is_on() {
    let (ok, text) = check_config("", &[]);
    assert!(ok, "{text}");
    assert!(
        summary_says(&text, "follow-up:", "off (server.public_url is not set)"),
        "{text}"
    );

    let (ok, text) = check_config(
        "[server]\npublic_url = \"https://join.example.org/\"\n",
        &[
            ("JOINFORM_FOLLOWUP__REMIND_AFTER", "2s"),
            ("JOINFORM_FOLLOWUP__DIGEST", "daily"),
        ],
    );
    assert!(ok, "{text}");
    assert!(
        summary_says(&text, "follow-up:", "on, links to https://join.example.org"),
        "{text}"
    );
    assert!(
        summary_says(
            &text,
            "follow-up times:",
            "remind after 2s, escalate after 7d, links last 60d, checked every 15m"
        ),
        "{text}"
    );
    assert!(summary_says(&text, "digest:", "daily"), "{text}");

    let (ok, text) = check_config(
        "[server]\npublic_url = \"https://join.example.org\"\n",
        &[("JOINFORM_FOLLOWUP__ENABLED", "false")],
    );
    assert!(ok, "{text}");
    assert!(
        summary_says(&text, "follow-up:", "off (followup.enabled = false)"),
        "{text}"
    );

    let (ok, text) = check_config("", &[("JOINFORM_FOLLOWUP__ENABLED", "true")]);
    assert!(!ok, "enabled without a public URL: {text}");
    assert!(
        text.contains("followup.enabled") && text.contains("server.public_url"),
        "{text}"
    );
}

/// `table.key` for every value in `table` that is not itself a table.
fn leaf_keys(table: &toml::Table, prefix: &str) -> Vec<String> {
    table
        .iter()
        .flat_map(|(key, value)| {
            let path = format!("{prefix}{key}");
            match value {
                toml::Value::Table(inner) => leaf_keys(inner, &format!("{path}.")),
                _ => vec![path],
            }
        })
        .collect()
}

#[test]
fn check_config_accepts_the_shipped_file_and_prints_a_summary() {
    let (ok, text) = check_config_file(include_str!("../../config/joinform.toml"), &[]);
    assert!(ok, "{text}");
    assert!(text.contains("configuration OK"), "{text}");
    assert!(summary_says(&text, "listen:", "127.0.0.1:8080"), "{text}");
}

#[test]
fn check_config_names_the_key_and_the_problem() {
    let cases = [
        (
            "[server]\nlisten = \"127.0.0.1:8080\"\nlisen = 1\n",
            "lisen",
            "unknown key",
        ),
        ("[sever]\n", "sever", "unknown table"),
        (
            "[server]\nmax_body_bytes = \"big\"\n",
            "max_body_bytes",
            "wrong type",
        ),
        (
            "[server]\nmax_body_bytes = 10\n",
            "server.max_body_bytes",
            "out of range",
        ),
        (
            "[server]\nlisten = \"nowhere\"\n",
            "listen",
            "not an address",
        ),
        (
            "[form]\nsuccess_url = \"javascript:alert(1)\"\n",
            "form.success_url",
            "not a path or URL",
        ),
        (
            "[form]\nextra_fields = [{ name = \"email\", max_length = 10 }]\n",
            "form.extra_fields[0].name",
            "reuses a standard name",
        ),
        (
            "[form]\nextra_fields = [{ name = \"org\", max_length = 0 }]\n",
            "form.extra_fields[0].max_length",
            "zero length",
        ),
        (
            "[form]\nextra_fields = [{ name = \"org\", max_length = 5, colour = 1 }]\n",
            "colour",
            "unknown key in an extra field",
        ),
        ("not toml at all = = =\n", "TOML", "unparsable"),
    ];
    for (file, expected, reason) in cases {
        let (ok, text) = check_config(file, &[]);
        assert!(!ok, "{reason}: accepted");
        assert!(text.contains(expected), "{reason}: {text}");
    }
}

#[test]
fn environment_variables_override_the_file() {
    let (ok, text) = check_config(
        "[server]\nlisten = \"127.0.0.1:8080\"\n",
        &[
            ("JOINFORM_SERVER__LISTEN", "0.0.0.0:9090"),
            ("JOINFORM_STORAGE__DATABASE", "/data/joinform.db"),
            ("JOINFORM_FORM__CONSENT_REQUIRED", "false"),
        ],
    );
    assert!(ok, "{text}");
    assert!(summary_says(&text, "listen:", "0.0.0.0:9090"), "{text}");
    assert!(
        summary_says(&text, "database:", "/data/joinform.db (size limit: none)"),
        "{text}"
    );
    assert!(summary_says(&text, "consent required:", "false"), "{text}");

    let (ok, text) = check_config("", &[("JOINFORM_SERVER__MAX_BODY_BYTES", "lots")]);
    assert!(!ok);
    assert!(text.contains("MAX_BODY_BYTES"), "{text}");
    assert!(text.contains("environment variable"), "{text}");
    assert!(
        !text.contains("joinform.toml"),
        "a bad variable is not blamed on the file: {text}"
    );
}

#[test]
fn deprecated_keys_still_load_and_check_config_says_what_to_write() {
    let (ok, text) = check_config(
        "[retention]\nspam_days = 14\n[mail.smtp]\ntimeout_seconds = 20\n",
        &[("JOINFORM_RETENTION__ACCEPTED_DAYS", "365")],
    );
    assert!(ok, "{text}");
    assert!(
        summary_says(&text, "retention:", "accepted 365d, spam 14d, outbox 30d"),
        "{text}"
    );
    let warnings: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("warning:"))
        .collect();
    assert_eq!(
        warnings,
        [
            "warning: retention.accepted_days is deprecated: write retention.accepted = \"365d\" instead",
            "warning: retention.spam_days is deprecated: write retention.spam = \"14d\" instead",
            "warning: mail.smtp.timeout_seconds is deprecated: write mail.smtp.timeout = \"20s\" instead",
        ],
        "{text}"
    );

    let (ok, text) = check_config("[retention]\naccepted = \"365d\"\n", &[]);
    assert!(ok, "{text}");
    assert!(!text.contains("warning:"), "{text}");

    // An old key in the environment beside its new one in the file.
    let (ok, text) = check_config(
        "[storage]\nbusy_timeout = \"1s\"\n",
        &[("JOINFORM_STORAGE__BUSY_TIMEOUT_MS", "2000")],
    );
    assert!(!ok, "both set: {text}");
    assert!(
        text.contains("storage.busy_timeout_ms") && text.contains("storage.busy_timeout,"),
        "{text}"
    );
}

#[test]
fn a_bad_value_in_the_file_names_the_file() {
    let (ok, text) = check_config("[server]\nmax_body_bytes = \"lots\"\n", &[]);
    assert!(!ok);
    assert!(
        text.contains("joinform.toml") && text.contains("max_body_bytes"),
        "{text}"
    );
    assert!(!text.contains("environment variable"), "{text}");
}

#[test]
fn a_fractional_duration_is_explained() {
    let (ok, text) = check_config("[mail]\nretry_initial = \"1.5h\"\n", &[]);
    assert!(!ok);
    assert!(text.contains("whole numbers only"), "{text}");
    assert!(!text.contains("unknown unit"), "{text}");
}

#[test]
fn every_configuration_error_is_said_once() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = include_str!("../../config/joinform.toml");
    let without_fallback = &shipped[..shipped.find("[fallback]").unwrap()];
    let blocked = dir.path().join("blocked");
    std::fs::write(&blocked, "a file where a folder should be").unwrap();
    let cases = [
        ("no fallback", without_fallback.to_owned()),
        (
            "bad mail.from",
            format!("[mail]\nfrom = \"not a mailbox\"\n{FALLBACK}"),
        ),
        (
            "bad proxy",
            format!("[server]\ntrusted_proxies = [\"nowhere\"]\n{FALLBACK}"),
        ),
        ("not TOML", "= = =\n".to_owned()),
        (
            "database folder is a file",
            format!(
                "[storage]\ndatabase = \"{}/joinform.db\"\n{FALLBACK}",
                blocked.display()
            ),
        ),
        (
            "mail folder is a file",
            format!(
                "[mail]\nfile_dir = \"{}/mail\"\n{FALLBACK}",
                blocked.display()
            ),
        ),
    ];
    let path = dir.path().join("joinform.toml");
    let mut runs = Vec::new();
    for (reason, text) in &cases {
        std::fs::write(&path, text).unwrap();
        for command in ["check-config", "serve"] {
            let output = Joinform::new()
                .args([command, "--config"])
                .arg(&path)
                .env("JOINFORM_SERVER__LISTEN", "127.0.0.1:0")
                .env("JOINFORM_ADMIN__LISTEN", "127.0.0.1:0")
                .current_dir(dir.path())
                .output();
            let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
            runs.push((format!("{reason}, {command}"), output.status, stderr));
        }
    }
    let missing = dir.path().join("missing.toml");
    for command in ["check-config", "serve"] {
        let output = Joinform::new()
            .args([command, "--config"])
            .arg(&missing)
            .output();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        runs.push((format!("missing file, {command}"), output.status, stderr));
    }
    let mut failed_to_start = 0;
    for (case, status, stderr) in runs {
        if case.ends_with("check-config") && status.success() {
            // check-config does not open the database or the mail folder.
            continue;
        }
        assert_eq!(status.code(), Some(1), "{case}: {stderr}");
        failed_to_start += 1;
        let line = stderr
            .lines()
            .rfind(|line| line.starts_with("joinform: "))
            .unwrap_or_else(|| panic!("{case}: no error line in {stderr}"));
        // "outer: inner: cause": a segment twice means a cause printed twice.
        let segments: Vec<&str> = line.split(": ").map(str::trim).collect();
        for (index, segment) in segments.iter().enumerate() {
            assert!(
                !segments[index + 1..].contains(segment),
                "{case}: `{segment}` is said twice in: {line}"
            );
        }
    }
    assert!(
        failed_to_start >= 12,
        "{failed_to_start} failed runs checked"
    );
}

#[test]
fn an_unreadable_file_is_an_error_naming_it() {
    let output = Joinform::new()
        .args(["check-config", "--config", "/nonexistent/joinform.toml"])
        .output();
    assert!(!output.status.success());
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(text.contains("/nonexistent/joinform.toml"), "{text}");
}

#[test]
fn joinform_config_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.toml");
    std::fs::write(
        &path,
        format!("[server]\nlisten = \"127.0.0.1:7777\"\n{FALLBACK}"),
    )
    .unwrap();
    let output = Joinform::new()
        .arg("check-config")
        .env("JOINFORM_CONFIG", &path)
        .output();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(summary_says(&text, "listen:", "127.0.0.1:7777"), "{text}");
}

#[tokio::test]
async fn healthcheck_succeeds_against_a_running_server_and_fails_without_one() {
    let app = crate::helpers::spawn_app().await;
    let listen = format!("127.0.0.1:{}", app.address.rsplit(':').next().unwrap());
    let probe = |listen: &str| {
        Joinform::new()
            .arg("healthcheck")
            .env("JOINFORM_SERVER__LISTEN", listen)
            .current_dir(&std::env::temp_dir())
            .output_async()
    };
    let output = probe(&listen).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    app.stop().await;
    let output = probe(&listen).await;
    assert!(!output.status.success());
}

// ---- `joinform outbox` and `joinform outbox retry` ----

const WAIT: Duration = Duration::from_secs(8);

/// One visitor per outbox state; every field is personal data the report must not show.
struct Visitor {
    name: &'static str,
    email: &'static str,
    country: &'static str,
    section: &'static str,
    phone: &'static str,
    city: &'static str,
    message: &'static str,
}

/// In the order they sign up, which is the order of the SMTP server's answers below:
/// 550, 550, 451 (retried only after an hour), 250.
const VISITORS: [Visitor; 4] = [
    Visitor {
        name: "Ingrid Falkenberg",
        email: "ingrid.falkenberg@example.net",
        country: "NO",
        section: "Norway",
        phone: "+47 915 00 001",
        city: "Hammerfest",
        message: "Jeg vil gjerne hjelpe til i valgkampen.",
    },
    Visitor {
        name: "Sven Lindqvist",
        email: "sven.lindqvist@example.net",
        country: "SE",
        section: "Sweden",
        phone: "+46 70 000 0002",
        city: "Kiruna",
        message: "Jag vill bli medlem.",
    },
    Visitor {
        name: "Moira Tennant",
        email: "moira.tennant@example.net",
        country: "GB",
        section: "United Kingdom",
        phone: "+44 7700 900003",
        city: "Aberdeen",
        message: "Happy to leaflet on Saturdays.",
    },
    Visitor {
        name: "Jürgen Brandauer",
        email: "juergen.brandauer@example.net",
        country: "DE",
        section: "International",
        phone: "+49 151 0000004",
        city: "Rostock",
        message: "Ich möchte mitmachen.",
    },
];

/// A stopped server's database with two failed rows, one pending (a 4xx, next try in
/// an hour) and one sent, and a configuration file naming that database.
struct OutboxFixture {
    settings: Settings,
    db: PathBuf,
    config: PathBuf,
    /// Submission ids in `VISITORS` order: failed, failed, pending, sent.
    ids: Vec<String>,
    dir: TempDir,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct OutboxRow {
    state: String,
    attempts: i64,
    created_at: String,
    next_attempt_at: String,
    last_error: Option<String>,
    message_id: String,
}

/// The outbox table read straight from the file, by submission id.
fn outbox_table(db: &Path) -> BTreeMap<String, OutboxRow> {
    let connection = rusqlite::Connection::open(db).unwrap();
    let mut statement = connection
        .prepare(
            "SELECT id, state, attempts, created_at, next_attempt_at, last_error,
                    message_id FROM outbox",
        )
        .unwrap();
    statement
        .query_map([], |row| {
            Ok((
                row.get(0)?,
                OutboxRow {
                    state: row.get(1)?,
                    attempts: row.get(2)?,
                    created_at: row.get(3)?,
                    next_attempt_at: row.get(4)?,
                    last_error: row.get(5)?,
                    message_id: row.get(6)?,
                },
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Waits until the row of `id` exists and satisfies `done`, at most [`WAIT`].
async fn wait_for_row(db: &Path, id: &str, done: impl Fn(&OutboxRow) -> bool) -> OutboxRow {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let row = outbox_table(db).remove(id);
        match row {
            Some(row) if done(&row) => return row,
            _ if tokio::time::Instant::now() >= deadline => {
                panic!("outbox row {id} did not get there: {row:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

async fn outbox_fixture() -> OutboxFixture {
    let smtp = SmtpServer::start(Behaviour::Scripted(VecDeque::from([
        "550 5.1.1 mailbox unavailable".to_owned(),
        "550 5.7.1 relaying denied".to_owned(),
        "451 4.3.0 try again later".to_owned(),
    ])))
    .await;
    let app = spawn_app_with(|settings| {
        use_smtp(settings, smtp.port());
        // The 4xx row stays pending for the whole test.
        settings.mail.retry_initial = "1h".parse().unwrap();
        settings.mail.retry_max = "2h".parse().unwrap();
    })
    .await;
    let mut ids = Vec::new();
    // One at a time, so each gets the next scripted answer.
    for (visitor, expected) in VISITORS.iter().zip(["failed", "failed", "pending", "sent"]) {
        let body = json!({
            "name": visitor.name, "email": visitor.email, "country": visitor.country,
            "phone": visitor.phone, "city": visitor.city, "message": visitor.message,
            "consent": true,
        });
        let id = created_id(app.post_json(&body).await).await;
        let row = wait_for_row(&app.db_path, &id, |row| row.attempts == 1).await;
        assert_eq!(row.state, expected, "{}: {row:?}", visitor.name);
        ids.push(id);
    }
    assert_eq!(app.row(&ids[0]).unwrap().section, "Norway");
    let settings = app.settings.clone();
    let db = app.db_path.clone();
    let dir = app.stop().await;
    smtp.stop();
    let config = dir.path().join("operator.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\ndatabase = {}\n{FALLBACK}",
            toml::Value::String(db.display().to_string())
        ),
    )
    .unwrap();
    OutboxFixture {
        settings,
        db,
        config,
        ids,
        dir,
    }
}

struct Run {
    success: bool,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl OutboxFixture {
    /// `joinform outbox ARGS… --config FILE`, from the temp dir.
    fn outbox(&self, args: &[&str]) -> Run {
        let output = Joinform::new()
            .arg("outbox")
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .current_dir(self.dir.path())
            .output();
        let run = Run {
            success: output.status.success(),
            code: output.status.code(),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        };
        assert_no_personal_data(&format!("{}{}", run.stdout, run.stderr));
        run
    }
}

fn assert_no_personal_data(text: &str) {
    for visitor in &VISITORS {
        for value in [
            visitor.name,
            visitor.email,
            visitor.phone,
            visitor.city,
            visitor.message,
        ] {
            assert!(!text.contains(value), "{value:?} printed:\n{text}");
        }
        // Not even part of an address.
        let local_part = visitor.email.split('@').next().unwrap();
        assert!(
            !text.contains(local_part),
            "{local_part:?} printed:\n{text}"
        );
    }
}

fn counts_block(pending: u32, sent: u32, failed: u32) -> String {
    format!(
        "outbox:\n  pending   {pending}\n  sent      {sent}\n  failed    {failed}\n  cancelled 0\n  waiting   0\n"
    )
}

const FAILED_HEADER: &str = "failed rows (id, kind, section, attempts, queued at, last error):\n";

/// The listed failed rows, split at the tabs.
fn failed_rows(stdout: &str) -> Vec<Vec<String>> {
    let Some((_, rows)) = stdout.split_once(FAILED_HEADER) else {
        return Vec::new();
    };
    rows.lines()
        .map(|line| {
            line.strip_prefix("  ")
                .unwrap_or_else(|| panic!("indented row: {line:?}"))
                .split('\t')
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

/// The listing of a row as `joinform outbox` prints it, from the database.
fn listed(id: &str, section: &str, row: &OutboxRow) -> Vec<String> {
    vec![
        id.to_owned(),
        "notification".to_owned(),
        section.to_owned(),
        row.attempts.to_string(),
        row.created_at.clone(),
        row.last_error.clone().unwrap_or_default(),
    ]
}

#[tokio::test]
async fn outbox_prints_counts_and_failed_rows_without_personal_data() {
    let fixture = outbox_fixture().await;
    let before = outbox_table(&fixture.db);

    let run = fixture.outbox(&[]);
    assert!(run.success, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stderr, "");
    assert!(
        run.stdout.starts_with(&counts_block(1, 1, 2)),
        "{}",
        run.stdout
    );
    let rows = failed_rows(&run.stdout);
    let expected: Vec<Vec<String>> = [(0, "mailbox unavailable"), (1, "relaying denied")]
        .into_iter()
        .map(|(index, reply)| {
            let id = &fixture.ids[index];
            let row = &before[id];
            assert_eq!((row.state.as_str(), row.attempts), ("failed", 1));
            let error = row.last_error.as_deref().unwrap();
            assert!(error.contains("550"), "{error}");
            assert_eq!(error.matches(reply).count(), 1, "said once: {error}");
            listed(id, VISITORS[index].section, row)
        })
        .collect();
    // Oldest first; each with id, section, attempts, queue time and the SMTP answer.
    assert_eq!(rows, expected, "{}", run.stdout);
    // The pending row (it has a last error too) and the sent one are only counted.
    for id in &fixture.ids[2..] {
        assert!(!run.stdout.contains(id.as_str()), "{}", run.stdout);
    }
    // Looking changes nothing.
    assert_eq!(outbox_table(&fixture.db), before);
}

#[tokio::test]
async fn outbox_retry_with_an_id_puts_that_failed_row_back_to_pending_and_due() {
    let fixture = outbox_fixture().await;
    let before = outbox_table(&fixture.db);
    let retried = &fixture.ids[0];

    let start = Timestamp::now().to_string();
    let run = fixture.outbox(&["retry", retried]);
    let end = Timestamp::now().to_string();
    assert!(run.success, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stderr, "");
    let expected_head = format!(
        "1 failed row(s) put back to pending\na running server sends them within a minute\n{}",
        counts_block(2, 1, 1)
    );
    assert!(run.stdout.starts_with(&expected_head), "{}", run.stdout);
    let other = &fixture.ids[1];
    assert_eq!(
        failed_rows(&run.stdout),
        [listed(other, VISITORS[1].section, &before[other])]
    );

    let after = outbox_table(&fixture.db);
    let row = &after[retried];
    assert_eq!(
        (row.state.as_str(), row.attempts),
        ("pending", 0),
        "{row:?}"
    );
    // Due now, and the give-up clock restarts now.
    assert!(
        start <= row.next_attempt_at && row.next_attempt_at <= end,
        "{start} <= {} <= {end}",
        row.next_attempt_at
    );
    assert_eq!(row.created_at, row.next_attempt_at);
    assert_eq!(row.message_id, before[retried].message_id);
    for id in &fixture.ids[1..] {
        assert_eq!(after[id], before[id], "only the named row changes");
    }

    // It really is due: a server started on the database sends it at once, with the
    // Message-ID it always had; the other rows stay as they are.
    let smtp = SmtpServer::start(Behaviour::Scripted(VecDeque::new())).await;
    let mut settings = fixture.settings.clone();
    settings.mail.smtp.port = smtp.port();
    let app = spawn_app_in(fixture.dir, settings);
    let sent = wait_for_row(&fixture.db, retried, |row| row.state == "sent").await;
    assert_eq!(sent.attempts, 1);
    let messages = smtp.wait_for(1, WAIT).await;
    assert_eq!(messages.len(), 1);
    let text = String::from_utf8_lossy(&messages[0].data);
    assert!(
        text.contains(&format!("Message-ID: {}", before[retried].message_id)),
        "{text}"
    );
    let now = outbox_table(&fixture.db);
    for id in &fixture.ids[1..] {
        assert_eq!(now[id], before[id]);
    }
    app.stop().await;
    smtp.stop();
}

#[tokio::test]
async fn outbox_retry_of_an_id_that_is_not_a_failed_row_changes_nothing_names_it_and_fails() {
    let fixture = outbox_fixture().await;
    let before = outbox_table(&fixture.db);
    let unknown = "01a220ea-7919-7262-a02f-51ea55f76b5f";
    assert!(!before.contains_key(unknown));
    // Unknown, malformed, pending and sent: none is a failed row.
    for id in [
        unknown,
        "not-an-id",
        fixture.ids[2].as_str(),
        fixture.ids[3].as_str(),
    ] {
        let run = fixture.outbox(&["retry", id]);
        // The id is named and the exit status says not everything asked for was done.
        assert!(!run.success, "{id}: {}{}", run.stdout, run.stderr);
        assert_eq!(run.code, Some(1));
        assert_eq!(run.stderr, "", "{id}");
        let expected_head = format!(
            "0 failed row(s) put back to pending\nnot a failed row, left as it is: {id}\n{}",
            counts_block(1, 1, 2)
        );
        assert!(
            run.stdout.starts_with(&expected_head),
            "{id}: {}",
            run.stdout
        );
        assert!(!run.stdout.contains("a running server"), "{}", run.stdout);
        assert_eq!(outbox_table(&fixture.db), before, "{id} changed something");
    }

    // Beside a failed id, an unknown one is named; the failed one is still retried.
    let run = fixture.outbox(&["retry", unknown, &fixture.ids[1]]);
    assert_eq!(run.code, Some(1), "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.starts_with(&format!(
            "1 failed row(s) put back to pending\nnot a failed row, left as it is: {unknown}\n"
        )),
        "{}",
        run.stdout
    );
    assert_eq!(outbox_table(&fixture.db)[&fixture.ids[1]].state, "pending");
}

#[test]
fn data_commands_refuse_a_database_that_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("typo").join("joinfrom.db");
    let config = dir.path().join("joinform.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\ndatabase = {:?}\n",
            missing.display().to_string()
        ),
    )
    .unwrap();
    for args in [
        &["outbox"][..],
        &["outbox", "retry"],
        &["audit"],
        &["purge"],
        &["forget", "kari@example.org"],
        &["export"],
    ] {
        let output = Joinform::new()
            .args(args)
            .arg("--config")
            .arg(&config)
            .current_dir(dir.path())
            .output();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("there is no database at") && stderr.contains("joinfrom.db"),
            "{args:?}: {stderr}"
        );
        assert!(output.stdout.is_empty(), "{args:?}");
    }
    assert!(!missing.exists(), "nothing was created");
    assert!(!missing.parent().unwrap().exists());
}

#[tokio::test]
async fn outbox_retry_without_ids_requeues_every_failed_row_and_nothing_else() {
    let fixture = outbox_fixture().await;
    let before = outbox_table(&fixture.db);

    let start = Timestamp::now().to_string();
    let run = fixture.outbox(&["retry"]);
    let end = Timestamp::now().to_string();
    assert!(run.success, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stderr, "");
    assert_eq!(
        run.stdout,
        format!(
            "2 failed row(s) put back to pending\na running server sends them within a minute\n{}",
            counts_block(3, 1, 0)
        )
    );
    let after = outbox_table(&fixture.db);
    for id in &fixture.ids[..2] {
        let row = &after[id];
        assert_eq!(
            (row.state.as_str(), row.attempts),
            ("pending", 0),
            "{row:?}"
        );
        assert!(start <= row.next_attempt_at && row.next_attempt_at <= end);
    }
    // The pending row keeps its hour's wait and its attempt; the sent one stays sent.
    for id in &fixture.ids[2..] {
        assert_eq!(after[id], before[id]);
    }

    // Nothing failed is left: a second run changes nothing.
    let run = fixture.outbox(&["retry"]);
    assert!(run.success);
    assert_eq!(
        run.stdout,
        format!(
            "0 failed row(s) put back to pending\n{}",
            counts_block(3, 1, 0)
        )
    );
    assert_eq!(outbox_table(&fixture.db), after);
}

// ---- No arguments: `joinform` serves ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_arguments_joinform_serves_the_built_in_configuration() {
    let dir = tempfile::tempdir().unwrap();
    assert!(!dir.path().join("config").exists());
    let mut server = Joinform::new().current_dir(dir.path()).start();

    let health = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200, "{}", server.log());
    let database = dir.path().join("data").join("joinform.db");
    assert!(database.is_file(), "{}", server.log());

    let id = created_id(
        reqwest::Client::new()
            .post(server.url("/join"))
            .json(&valid_json())
            .send()
            .await
            .unwrap(),
    )
    .await;
    // The built-in mail transport writes the notification under data/mail.
    let mail = dir.path().join("data").join("mail");
    let expected = format!("Message-ID: <{id}@");
    let deadline = tokio::time::Instant::now() + WAIT;
    let written = loop {
        let found = std::fs::read_dir(&mail)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "eml"))
            .any(|entry| {
                std::fs::read_to_string(entry.path()).is_ok_and(|text| text.contains(&expected))
            });
        if found || tokio::time::Instant::now() >= deadline {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        written,
        "no .eml for {id} in {}\n{}",
        mail.display(),
        server.log()
    );

    let status = server.stop("TERM", WAIT).await;
    assert_eq!(status.code(), Some(0), "{}", server.log());
    // The built-in sender is joinform@example.org.
    crate::mail_check::assert_standard_mail_files(&mail, "example.org");
    let stored: String = rusqlite::Connection::open(&database)
        .unwrap()
        .query_row("SELECT id FROM submissions", [], |row| row.get(0))
        .unwrap();
    assert_eq!(stored, id);
}

#[test]
fn check_config_says_which_sections_mail_their_visitors_and_needs_a_public_url() {
    let (ok, text) = check_config("", &[]);
    assert!(ok, "{text}");
    assert!(
        summary_says(&text, "visitor mails:", "off (form.confirmation = \"off\")"),
        "{text}"
    );

    // Every mode but off mails links to this server: without a public URL the key that
    // asked for it is named.
    let (ok, text) = check_config("[form]\nconfirmation = \"notice\"\n", &[]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("form.confirmation") && text.contains("server.public_url"),
        "{text}"
    );
    let (ok, text) = check_config(
        "[[sections]]\nname = \"Norway\"\ncountries = [\"NO\"]\ncontacts = [\"o@example.org\"]\n\
         language = \"nb\"\nconfirmation = \"double_opt_in\"\n",
        &[],
    );
    assert!(!ok, "{text}");
    assert!(text.contains("sections[0].confirmation"), "{text}");

    let (ok, text) = check_config(
        "[server]\npublic_url = \"https://join.example.org\"\n\
         [form]\nconfirmation = \"notice\"\nconfirm_within = \"2d\"\n\
         [rate_limit]\nvisitor_mails_per_hour = 40\n\
         [[sections]]\nname = \"Norway\"\ncountries = [\"NO\"]\ncontacts = [\"o@example.org\"]\n\
         language = \"nb\"\nconfirmation = \"double_opt_in\"\n",
        &[],
    );
    assert!(ok, "{text}");
    assert!(
        text.lines().any(|line| line.starts_with("visitor mails:")
            && line.contains("double_opt_in for Norway")
            && line.contains("notice for ")),
        "{text}"
    );
    assert!(
        summary_says(
            &text,
            "visitor limits:",
            "one mail per address a day, 40 an hour in all; unconfirmed sign-ups kept 2d"
        ),
        "{text}"
    );

    let (ok, text) = check_config(
        "[server]\npublic_url = \"https://join.example.org\"\n[form]\nconfirm_within = \"10m\"\n",
        &[],
    );
    assert!(!ok, "{text}");
    assert!(text.contains("form.confirm_within"), "{text}");
    let (ok, text) = check_config("[form]\nconfirmation = \"maybe\"\n", &[]);
    assert!(!ok, "{text}");
    assert!(text.contains("double_opt_in"), "{text}");
}

#[test]
fn no_configured_field_may_take_the_proof_of_work_field() {
    for (file, key) in [
        (
            "[spam]\nhoneypot_field = \"altcha\"\n",
            "spam.honeypot_field",
        ),
        (
            "[form]\nextra_fields = [{ name = \"altcha\", max_length = 10 }]\n",
            "form.extra_fields[0].name",
        ),
    ] {
        let (ok, text) = check_config(file, &[]);
        assert!(!ok, "{text}");
        assert!(text.contains(key), "{text}");
    }
}
