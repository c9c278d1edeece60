//! Helpers for the operator tests: admin tokens, the `joinform` command against a test
//! server's database, and ageing rows as time passing would.

use std::path::{Path, PathBuf};
use std::process::Output;

use joinform::config::{AdminTokenSettings, Settings};
use sha2::{Digest, Sha256};

use crate::helpers::TestApp;
use crate::process::Joinform;

/// Configures a token `name` (scoped to `sections` if any) and returns the token.
pub fn add_token(settings: &mut Settings, name: &str, sections: &[&str]) -> String {
    let token = format!("test-token-{name}-{}", fastrand::u64(..));
    settings.admin.tokens.push(AdminTokenSettings {
        name: name.to_owned(),
        sha256: hex::encode(Sha256::digest(token.as_bytes())),
        sections: sections.iter().map(|s| (*s).to_owned()).collect(),
    });
    token
}

/// The test server's settings as a configuration file, for the command line.
pub fn write_config(app: &TestApp) -> PathBuf {
    let path = app.db_path.parent().unwrap().join("joinform-test.toml");
    std::fs::write(&path, toml::to_string(&app.settings).unwrap()).unwrap();
    path
}

/// Runs `joinform --config CONFIG ARGS…`, with `stdin` as its standard input.
pub async fn run_cli(config: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    Joinform::new()
        .config(config)
        .args(args)
        .stdin(stdin)
        .output_async()
        .await
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// GET on the admin listener with a bearer token.
pub async fn admin_get(app: &TestApp, path_and_query: &str, token: &str) -> reqwest::Response {
    app.client
        .get(format!("{}{path_and_query}", app.admin_address))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// A connection of the test's own to the app's database. It overwrites what it deletes,
/// as each of joinform's connections does: a test that rewrites rows (ageing them)
/// must not leave copies of their old values in free space that joinform's erasure
/// never wrote and so cannot be asked to clean (its checks then fail by chance, as
/// random ids move the copies into pages that a purge keeps).
pub fn connect(app: &TestApp) -> rusqlite::Connection {
    let connection = rusqlite::Connection::open(&app.db_path).unwrap();
    connection
        .busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    connection
        .pragma_update(None, "secure_delete", "ON")
        .unwrap();
    connection
}

/// Moves a submission `days` (and `minutes`) into the past, id included (ids are
/// time-ordered), as if it had been made then. Returns its new id.
pub fn age_submission(app: &TestApp, id: &str, days: u64, minutes: u64) -> String {
    let shift_ms = (days * 86_400 + minutes * 60) * 1000;
    let old = uuid::Uuid::parse_str(id).unwrap();
    let (seconds, nanos) = old.get_timestamp().unwrap().to_unix();
    let millis = seconds * 1000 + u64::from(nanos) / 1_000_000;
    let random: [u8; 10] = old.as_bytes()[6..].try_into().unwrap();
    let new_id = uuid::Builder::from_unix_timestamp_millis(millis - shift_ms, &random)
        .into_uuid()
        .to_string();
    let connection = connect(app);
    connection
        .pragma_update(None, "foreign_keys", "OFF")
        .unwrap();
    let shift = format!("-{} seconds", shift_ms / 1000);
    let older = |column: &str| format!("strftime('%Y-%m-%dT%H:%M:%f000Z', {column}, '{shift}')");
    connection
        .execute(
            &format!(
                "UPDATE submissions SET id = ?2, created_at = {} WHERE id = ?1",
                older("created_at")
            ),
            [id, &new_id],
        )
        .unwrap();
    connection
        .execute(
            &format!(
                "UPDATE outbox SET id = ?2, created_at = {} WHERE id = ?1",
                older("created_at")
            ),
            [id, &new_id],
        )
        .unwrap();
    // Every mail about the sign-up (its notification, a visitor's mail) follows it.
    connection
        .execute(
            "UPDATE outbox SET submission_id = ?2 WHERE submission_id = ?1",
            [id, &new_id],
        )
        .unwrap();
    new_id
}

/// An audit row: (actor, action, details, row_count, completed_at).
pub type AuditRow = (String, String, String, Option<i64>, Option<String>);

/// The audit rows, oldest first.
pub fn audit_rows(app: &TestApp) -> Vec<AuditRow> {
    let connection = connect(app);
    let mut statement = connection
        .prepare("SELECT actor, action, details, row_count, completed_at FROM audit ORDER BY id")
        .unwrap();
    statement
        .query_map([], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The audit rows of one action.
pub fn audit_of(app: &TestApp, action: &str) -> Vec<AuditRow> {
    audit_rows(app)
        .into_iter()
        .filter(|row| row.1 == action)
        .collect()
}
