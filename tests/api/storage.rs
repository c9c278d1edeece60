//! The database file: schema and PRAGMAs, versions, and what happens when it cannot
//! take a write.

use std::time::Duration;

use joinform::config::Settings;
use joinform::startup::Application;
use joinform::store::Database;
use joinform::store::schema::SCHEMA_VERSION;
use serde_json::json;

use crate::helpers::{created_id, spawn_app, spawn_app_with, test_settings, valid_json};

#[tokio::test]
async fn a_new_database_is_created_with_the_whole_schema() {
    let app = spawn_app().await;
    assert!(
        app.db_path.exists(),
        "the folder and file are created on first start"
    );
    let connection = rusqlite::Connection::open(&app.db_path).unwrap();
    let pragma = |name: &str| -> String {
        connection
            .query_row(&format!("PRAGMA {name}"), [], |row| {
                row.get::<_, rusqlite::types::Value>(0)
            })
            .map(|value| format!("{value:?}"))
            .unwrap()
    };
    assert_eq!(pragma("user_version"), format!("Integer({SCHEMA_VERSION})"));
    assert_eq!(pragma("journal_mode"), "Text(\"wal\")");
    assert_eq!(pragma("auto_vacuum"), "Integer(2)", "incremental");
    let strict: i64 = connection
        .query_row(
            "SELECT strict FROM pragma_table_list WHERE name = 'submissions'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(strict, 1, "STRICT table");
    let indexes: Vec<String> = connection
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'submissions' AND sql IS NOT NULL ORDER BY name")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        indexes,
        [
            "submissions_by_email_key",
            "submissions_held",
            "submissions_open"
        ]
    );
    app.stop().await;
}

fn build_error(settings: &Settings) -> String {
    match Application::build(settings) {
        Ok(_) => panic!("start-up should have been refused"),
        Err(error) => {
            let mut text = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                text.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            text
        }
    }
}

/// A file joinform must refuse, made in a fresh folder: (what it is, how to make it,
/// what the refusal says).
type RefusedFile = (&'static str, fn(&std::path::Path), &'static str);

const REFUSED_FILES: [RefusedFile; 5] = [
    (
        "newer, rollback journal",
        |path| {
            let connection = rusqlite::Connection::open(path).unwrap();
            connection
                .execute_batch("CREATE TABLE future (x); INSERT INTO future VALUES (1);")
                .unwrap();
            connection
                .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
                .unwrap();
        },
        "newer than",
    ),
    (
        "newer, WAL mode as a newer joinform leaves it",
        |path| {
            let connection = rusqlite::Connection::open(path).unwrap();
            connection
                .pragma_update(None, "journal_mode", "WAL")
                .unwrap();
            connection
                .execute_batch("CREATE TABLE future (x); INSERT INTO future VALUES (1);")
                .unwrap();
            connection
                .pragma_update(None, "user_version", SCHEMA_VERSION + 7)
                .unwrap();
        },
        "newer than",
    ),
    (
        "tables at version 0",
        |path| {
            let connection = rusqlite::Connection::open(path).unwrap();
            connection.execute_batch("CREATE TABLE other (x)").unwrap();
        },
        "not a joinform database",
    ),
    (
        "not a SQLite file",
        |path| std::fs::write(path, "name,email\nKari,kari@example.org\n".repeat(50)).unwrap(),
        "not a SQLite database",
    ),
    (
        "a short file",
        |path| std::fs::write(path, b"SQLite").unwrap(),
        "not a SQLite database",
    ),
];

/// Every file in the database's folder, with its bytes (the mail folder, made by
/// start-up before the database is opened, is not the database's business).
fn folder_snapshot(folder: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(folder)
        .unwrap()
        .flatten()
        .filter(|entry| entry.path().is_file())
        .map(|entry| {
            (
                entry.file_name().to_string_lossy().into_owned(),
                std::fs::read(entry.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

/// Refused, whether by `serve` or by any operator command, and never altered: the
/// folder holds the same file, byte for byte (journal mode in its header included),
/// and nothing beside it (no `-wal`, `-shm` or secret key).
#[tokio::test]
async fn a_database_joinform_must_not_use_is_refused_and_left_untouched() {
    let commands: [&[&str]; 6] = [
        &["outbox"],
        &["outbox", "retry"],
        &["export"],
        &["forget", "kari@example.org"],
        &["purge"],
        &["audit"],
    ];
    for (what, make, message) in REFUSED_FILES {
        let dir = tempfile::tempdir().unwrap();
        let settings = test_settings(&dir);
        let folder = settings.storage.database.parent().unwrap().to_owned();
        std::fs::create_dir_all(&folder).unwrap();
        make(&settings.storage.database);
        let before = folder_snapshot(&folder);
        assert_eq!(before.len(), 1, "{what}: only the file itself");

        let error = build_error(&settings);
        assert!(error.contains(message), "{what}: serve says {error}");
        assert_eq!(folder_snapshot(&folder), before, "{what}: serve altered it");

        let config = dir.path().join("joinform.toml");
        std::fs::write(&config, toml::to_string(&settings).unwrap()).unwrap();
        for args in commands {
            let output = crate::operator_helpers::run_cli(&config, args, None).await;
            let said = crate::operator_helpers::stderr(&output);
            assert!(!output.status.success(), "{what}: {args:?} ran");
            assert!(said.contains(message), "{what}: {args:?} says {said}");
            assert_eq!(
                folder_snapshot(&folder),
                before,
                "{what}: {args:?} altered it"
            );
        }
    }
}

#[tokio::test]
async fn submissions_survive_a_restart() {
    let app = spawn_app().await;
    let id = created_id(app.post_json(&valid_json()).await).await;
    let app = app.restart().await;
    assert!(app.row(&id).is_some());
    created_id(app.post_json(&valid_json()).await).await;
    assert_eq!(app.count(), 2);
    app.stop().await;
}

#[tokio::test]
async fn a_lock_held_past_the_busy_timeout_is_503_and_service_resumes() {
    let app = spawn_app_with(|settings| {
        settings.storage.busy_timeout = joinform::config::HumanDuration::from_millis(100)
    })
    .await;
    let blocker = rusqlite::Connection::open(&app.db_path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();

    let response = app.post_json(&valid_json()).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "5");
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(answer["error"], "temporarily_unavailable");
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);

    blocker.execute_batch("ROLLBACK").unwrap();
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    created_id(app.post_json(&valid_json()).await).await;
    assert_eq!(app.count(), 1, "the refused submission left nothing behind");
    app.stop().await;
}

/// The bytes the database takes on disk: the main file and its WAL and shared memory.
fn disk_use(app: &crate::helpers::TestApp) -> u64 {
    ["", "-wal", "-shm"]
        .iter()
        .map(|suffix| {
            let mut name = app.db_path.as_os_str().to_owned();
            name.push(suffix);
            std::fs::metadata(name).map_or(0, |meta| meta.len())
        })
        .sum()
}

#[tokio::test]
async fn a_full_database_is_503_with_no_partial_rows_and_recovers_with_room() {
    let app = spawn_app_with(|settings| settings.storage.max_size_mib = 1).await;
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "room to start with");
    let mut body = valid_json();
    body["message"] = json!("Ж".repeat(2000));
    let mut accepted = 0;
    let mut refused = false;
    let mut most_used = 0;
    for _ in 0..1000 {
        let response = app.post_json(&body).await;
        most_used = most_used.max(disk_use(&app));
        match response.status().as_u16() {
            201 => accepted += 1,
            503 => {
                assert!(response.headers().contains_key("retry-after"));
                refused = true;
                break;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(refused, "the quota was reached");
    assert!(accepted > 0);
    assert!(
        most_used <= 1 << 20,
        "the database, WAL included, stayed within 1 MiB: {most_used} bytes"
    );
    assert_eq!(
        app.count(),
        accepted,
        "every 201 is stored, the 503 left nothing"
    );
    // Full is "cannot take writes": the probe says so as long as posts are refused.
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503, "/readyz while sign-ups get 503");
    assert!(ready.headers().contains_key("retry-after"));
    assert_eq!(app.post_json(&body).await.status(), 503);

    let mut app = app;
    app.settings.storage.max_size_mib = 0;
    let app = app.restart().await;
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "ready again with room");
    created_id(app.post_json(&body).await).await;
    assert_eq!(app.count(), accepted + 1);
    app.stop().await;
}

#[tokio::test]
async fn health_and_readiness_probes() {
    let app = spawn_app().await;
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    app.stop().await;
}

/// Column names and index definitions, as SQLite reports them.
fn shape(connection: &rusqlite::Connection) -> Vec<String> {
    let mut shape = Vec::new();
    let tables: Vec<String> = connection
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for table in tables {
        let mut statement = connection
            .prepare(&format!(
                "SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info('{table}')"
            ))
            .unwrap();
        let columns = statement
            .query_map([], |row| {
                Ok(format!(
                    "{table}.{}:{}:{}:{:?}:{}",
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, Option<String>>(3)?,
                    row.get::<_, i64>(4)?
                ))
            })
            .unwrap();
        shape.extend(columns.map(Result::unwrap));
    }
    let mut statement = connection
        .prepare("SELECT name, tbl_name FROM sqlite_schema WHERE type = 'index' ORDER BY name")
        .unwrap();
    shape.extend(
        statement
            .query_map([], |row| {
                Ok(format!(
                    "index {}:{}",
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?
                ))
            })
            .unwrap()
            .map(Result::unwrap),
    );
    shape
}

#[tokio::test]
async fn a_version_1_database_is_upgraded_in_place_and_keeps_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let settings = test_settings(&dir);
    std::fs::create_dir_all(settings.storage.database.parent().unwrap()).unwrap();
    let old = rusqlite::Connection::open(&settings.storage.database).unwrap();
    old.execute_batch(include_str!("../data/schema_v1.sql"))
        .unwrap();
    old.pragma_update(None, "user_version", 1).unwrap();
    old.execute(
        "INSERT INTO submissions (id, created_at, name, email, country, consent)
         VALUES ('019b7a00-0000-7000-8000-000000000001', '2026-01-01T00:00:00.000000Z', 'Kari', 'kari@example.org', 'NO', 1)",
        [],
    )
    .unwrap();
    drop(old);

    let app = crate::helpers::spawn_app_in(dir, settings);
    let upgraded = rusqlite::Connection::open(&app.db_path).unwrap();
    let version: i64 = upgraded
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    assert_eq!(app.rows().len(), 1, "the old row is kept");
    created_id(app.post_json(&valid_json()).await).await;

    let fresh_dir = tempfile::tempdir().unwrap();
    let fresh = Database::new(fresh_dir.path().join("fresh.db"), Duration::from_secs(1));
    fresh.prepare().unwrap();
    let fresh = fresh.connect().unwrap();
    assert_eq!(
        shape(&upgraded),
        shape(&fresh),
        "upgrading gives the schema a new file gets"
    );
    assert_eq!(normalised_schema(&upgraded), normalised_schema(&fresh));
    app.stop().await;
}

/// Every object in `sqlite_schema` as (type, name, table, SQL), with the SQL's comments,
/// quotes and runs of white space taken out: upgrade steps write the same statements
/// with other comments and indentation, and SQLite quotes a renamed table's name.
fn normalised_schema(connection: &rusqlite::Connection) -> Vec<(String, String, String, String)> {
    let normalise = |sql: &str| {
        sql.lines()
            .map(|line| line.split("--").next().unwrap_or_default())
            .collect::<Vec<_>>()
            .join(" ")
            .replace('"', "")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .replace("( ", "(")
            .replace(" )", ")")
            .replace(" ,", ",")
    };
    connection
        .prepare("SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name")
        .unwrap()
        .query_map([], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                normalise(&row.get::<_, Option<String>>(3)?.unwrap_or_default()),
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Every row of every table, ordered by its key, each value with its storage class.
/// The columns of version 4's `submissions`, which later versions keep as they were.
const V4_SUBMISSION_COLUMNS: &str = "id, created_at, name, email, country, phone, city, \
    message, language, consent, extra, status, section, email_key, spam_reasons, \
    is_returning, client_hash, consent_text, consent_language";

/// Every row of the tables versions 3 and 4 have, with the columns they had:
/// `outbox_key` is the outbox's key column (`submission_id` before version 5, `id`
/// from it on).
fn all_rows(
    connection: &rusqlite::Connection,
    outbox_key: &str,
) -> Vec<(String, Vec<rusqlite::types::Value>)> {
    let mut rows = Vec::new();
    let outbox_columns = format!(
        "{outbox_key}, section, message_id, state, attempts, created_at, next_attempt_at, \
         sent_at, last_error"
    );
    for (table, columns, key) in [
        ("submissions", V4_SUBMISSION_COLUMNS, "id"),
        ("outbox", outbox_columns.as_str(), outbox_key),
        ("used_tokens", "*", "nonce"),
        ("audit", "*", "id"),
        ("export_cursors", "*", "consumer"),
    ] {
        let mut statement = connection
            .prepare(&format!("SELECT {columns} FROM {table} ORDER BY {key}"))
            .unwrap();
        let columns = statement.column_count();
        let table_rows = statement
            .query_map([], |row| {
                (0..columns)
                    .map(|i| row.get(i))
                    .collect::<Result<Vec<_>, _>>()
            })
            .unwrap()
            .map(Result::unwrap);
        rows.extend(table_rows.map(|values| (table.to_owned(), values)));
    }
    rows
}

/// A version-3 file (the last with a rowid `submissions` table and its four indexes)
/// with rows in every table and every state is upgraded in place: every row and value
/// is kept exactly, the outbox included (rebuilding `submissions` must not cascade),
/// and the file ends with the schema a new file gets.
#[tokio::test]
async fn a_version_3_database_is_upgraded_in_place_and_keeps_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("joinform.db");
    let old = rusqlite::Connection::open(&path).unwrap();
    old.execute_batch(include_str!("../data/schema_v3.sql"))
        .unwrap();
    old.pragma_update(None, "user_version", 3).unwrap();
    old.pragma_update(None, "journal_mode", "WAL").unwrap();
    old.pragma_update(None, "foreign_keys", "ON").unwrap();
    old.execute_batch(
        r#"
        INSERT INTO submissions (id, created_at, name, email, country, phone, city, message,
                                 language, consent, extra, status, section, email_key,
                                 spam_reasons, is_returning, client_hash, consent_text,
                                 consent_language)
        VALUES
          ('01900000-0000-7000-8000-000000000001', '2026-01-01T00:00:00.000001Z',
           'Kari Nordmann', 'Kari@example.org', 'NO', '+4791234567', 'Oslo', 'Hei',
           'nb', 1, '{"organisation":"Lag"}', 'accepted', 'Norway', 'kari@example.org',
           NULL, 0, 'ab12', 'Jeg samtykker.', 'nb'),
          ('01900000-0000-7000-8000-000000000002', '2026-01-01T00:00:01.000000Z',
           'Kari Nordmann', 'kari@example.org', 'NO', NULL, NULL, NULL,
           NULL, 1, '{}', 'duplicate', 'Norway', 'kari@example.org',
           NULL, 0, NULL, NULL, NULL),
          ('01900000-0000-7000-8000-000000000003', '2026-01-02T00:00:00.000000Z',
           'Spam Bot', 'bot@example.com', 'FR', NULL, NULL, 'buy now', 'fr', 1, '{}',
           'spam', 'France', 'bot@example.com', '["honeypot","token_replayed"]', 0,
           'cd34', NULL, NULL),
          ('01900000-0000-7000-8000-000000000004', '2026-01-03T00:00:00.000000Z',
           'Jane Example', 'jane@example.org', 'FR', NULL, 'Lyon', 'Ø✓ 😀', 'fr', 0,
           '{}', 'accepted', 'France', 'jane@example.org', NULL, 1, NULL,
           'J''accepte.', 'fr'),
          ('01900000-0000-7000-8000-000000000005', '2026-01-04T00:00:00.000000Z',
           'Old Row', 'old@example.org', 'SE', NULL, NULL, NULL, NULL, 1, '{}',
           'accepted', '', 'old@example.org', NULL, 0, NULL, NULL, NULL);
        INSERT INTO outbox (submission_id, section, message_id, state, attempts, created_at,
                            next_attempt_at, sent_at, last_error)
        VALUES
          ('01900000-0000-7000-8000-000000000001', 'Norway', '<a@example.org>', 'sent', 1,
           '2026-01-01T00:00:00.000001Z', '2026-01-01T00:00:00.000001Z',
           '2026-01-01T00:00:02.000000Z', NULL),
          ('01900000-0000-7000-8000-000000000004', 'France', '<b@example.org>', 'pending', 2,
           '2026-01-03T00:00:00.000000Z', '2026-01-03T00:05:00.000000Z', NULL,
           '421 try later'),
          ('01900000-0000-7000-8000-000000000005', '', '<c@example.org>', 'failed', 7,
           '2026-01-04T00:00:00.000000Z', '2026-01-04T01:00:00.000000Z', NULL,
           '550 no such user');
        INSERT INTO used_tokens (nonce, expires_at)
        VALUES ('nonce-1', '2026-01-02T00:00:00.000000Z'),
               ('nonce-2', '2026-01-05T00:00:00.000000Z');
        INSERT INTO audit (id, at, actor, action, details, row_count, completed_at)
        VALUES (1, '2026-01-05T00:00:00.000000Z', 'cli', 'export', '{"status":"all"}', 5,
                '2026-01-05T00:00:01.000000Z'),
               (2, '2026-01-05T00:01:00.000000Z', 'ops', 'export', '{}', NULL, NULL),
               (3, '2026-01-06T00:00:00.000000Z', 'server', 'purge', '{"accepted":0}', 0,
                '2026-01-06T00:00:00.000000Z');
        INSERT INTO export_cursors (consumer, last_id, updated_at)
        VALUES ('crm', '01900000-0000-7000-8000-000000000004', '2026-01-05T00:00:01.000000Z');
        "#,
    )
    .unwrap();
    let before = all_rows(&old, "submission_id");
    assert_eq!(before.len(), 5 + 3 + 2 + 3 + 1);
    drop(old);

    let database = Database::new(&path, Duration::from_secs(1));
    database.prepare().unwrap();
    let upgraded = database.connect().unwrap();
    let version: i64 = upgraded
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    assert_eq!(
        all_rows(&upgraded, "id"),
        before,
        "every row and value is kept"
    );
    // Version 5: accepted sign-ups start as `new` at their sign-up time, the others
    // have no follow-up; every outbox row is a notification.
    let followups: Vec<(String, Option<String>, bool)> = upgraded
        .prepare(
            "SELECT status, followup, followup_at IS created_at AND followup_by IS NULL
                    AND contacted_at IS NULL
             FROM submissions ORDER BY id",
        )
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let new = |status: &str| (status.to_owned(), Some("new".to_owned()), true);
    let none = |status: &str| (status.to_owned(), None, false);
    assert_eq!(
        followups,
        [
            new("accepted"),
            none("duplicate"),
            none("spam"),
            new("accepted"),
            new("accepted")
        ]
    );
    let kinds: i64 = upgraded
        .query_row(
            "SELECT count(*) FROM outbox WHERE kind = 'notification' AND period IS NULL",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(kinds, 3);
    let foreign_keys: i64 = upgraded
        .pragma_query_value(None, "foreign_keys", |row| row.get(0))
        .unwrap();
    assert_eq!(foreign_keys, 1, "connections still enforce foreign keys");
    let violations: i64 = upgraded
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(violations, 0);
    let integrity: String = upgraded
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");

    let fresh_dir = tempfile::tempdir().unwrap();
    let fresh = Database::new(fresh_dir.path().join("fresh.db"), Duration::from_secs(1));
    fresh.prepare().unwrap();
    let fresh = fresh.connect().unwrap();
    assert_eq!(
        normalised_schema(&upgraded),
        normalised_schema(&fresh),
        "upgrading gives the schema a new file gets"
    );
    assert_eq!(shape(&upgraded), shape(&fresh));

    // Each notification is keyed by its submission's id, as erasure expects.
    let orphans: i64 = upgraded
        .query_row(
            "SELECT count(*) FROM outbox o
             WHERE NOT EXISTS (SELECT 1 FROM submissions s WHERE s.id = o.id)",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(orphans, 0);
    // Deleting a submission, by any statement, takes its notification with it.
    upgraded
        .execute(
            "DELETE FROM submissions WHERE id = '01900000-0000-7000-8000-000000000004'",
            [],
        )
        .unwrap();
    let outbox: i64 = upgraded
        .query_row("SELECT count(*) FROM outbox", [], |row| row.get(0))
        .unwrap();
    assert_eq!(outbox, 2);
}

/// The same fault from another process, as an operator's `sqlite3` shell or a backup
/// tool would cause it: Python's sqlite3 module holds the write lock.
#[tokio::test]
async fn a_lock_held_by_another_process_is_503_and_service_resumes() {
    use std::io::{BufRead, Write};

    if !crate::helpers::outside_programs_present(
        "a_lock_held_by_another_process_is_503_and_service_resumes",
        &["python3"],
        "apt-get install python3",
    ) {
        return;
    }
    let app = spawn_app_with(|settings| {
        settings.storage.busy_timeout = joinform::config::HumanDuration::from_millis(100)
    })
    .await;
    let mut blocker = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys\n\
             c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
             c.execute('BEGIN IMMEDIATE')\n\
             print('locked', flush=True)\n\
             sys.stdin.read()\n\
             c.execute('ROLLBACK')\n",
        ])
        .arg(&app.db_path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(blocker.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");

    let response = app.post_json(&valid_json()).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "5");
    assert_eq!(app.count(), 0);

    let mut stdin = blocker.stdin.take().unwrap();
    stdin.write_all(b"done").unwrap();
    drop(stdin);
    assert!(blocker.wait().unwrap().success());
    created_id(app.post_json(&valid_json()).await).await;
    assert_eq!(app.count(), 1, "service resumes once the lock is released");
    app.stop().await;
}
