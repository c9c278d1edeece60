//! Erasure on request and retention: every trace goes, from the tables and from the
//! file; each purge window holds.

use serde_json::{Value, json};

use crate::helpers::{TestApp, contains, created_id, spawn_app_with};
use crate::operator_helpers::{
    add_token, age_submission, audit_of, connect, run_cli, stderr, stdout, write_config,
};

const ADDRESS: &str = "Ingrid.Marthinsen@Example.org";
const NAME: &str = "Ingrid Qwertzuiop Marthinsen";
const MESSAGE: &str = "Jeg vil gjerne bli medlem zyxwvut";

async fn post_ingrid_and_others(app: &TestApp) -> Vec<String> {
    let mut ids = Vec::new();
    for email in [ADDRESS, "ingrid.marthinsen@example.ORG"] {
        ids.push(
            created_id(
                // Long enough that erasing it frees whole pages, which must leave the
                // file rather than wait in its free list.
                app.post_json(&json!({"name": NAME, "email": email, "country": "NO",
                                      "consent": true,
                                      "message": format!("{MESSAGE} {}", "Ø".repeat(1900))}))
                    .await,
            )
            .await,
        );
    }
    created_id(app.post_json(&crate::helpers::valid_json()).await).await;
    ids
}

/// The database's own files: the main file, its WAL and shared memory (the mail
/// folder's .eml files are the file transport's, not the database's).
fn database_files_contain(app: &TestApp, needle: &str) -> bool {
    !files_containing(app, needle).is_empty()
}

/// The names of the database's files (main file, WAL, shared memory) holding `needle`.
fn files_containing(app: &TestApp, needle: &str) -> Vec<String> {
    let folder = app.db_path.parent().unwrap();
    std::fs::read_dir(folder)
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| {
            name.starts_with("joinform.db")
                && contains(
                    &std::fs::read(folder.join(name)).unwrap_or_default(),
                    needle.as_bytes(),
                )
        })
        .collect()
}

fn leaves_no_trace(app: &TestApp, ids: &[String]) {
    let connection = connect(app);
    for table in ["submissions", "outbox"] {
        for id in ids {
            let count: i64 = connection
                .query_row(
                    &format!("SELECT count(*) FROM {table} WHERE id = ?1"),
                    [id],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(count, 0, "{table} still holds {id}");
        }
    }
    let remaining: i64 = connection
        .query_row(
            "SELECT count(*) FROM submissions WHERE email_key LIKE '%marthinsen%' OR name = ?1",
            [NAME],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(remaining, 0);
    let forgets = audit_of(app, "forget");
    assert_eq!(forgets.len(), 1);
    let details: Value = serde_json::from_str(&forgets[0].2).unwrap();
    assert_eq!(details["submissions"], 2);
    assert_eq!(details["address_hash"].as_str().unwrap().len(), 64);
    let audit_text = format!("{forgets:?}").to_lowercase();
    assert!(!audit_text.contains("marthinsen"), "{audit_text}");
    let free: i64 = connection
        .query_row("PRAGMA freelist_count", [], |r| r.get(0))
        .unwrap();
    assert_eq!(free, 0, "free pages were returned to the file system");
    // The files as joinform left them: no checkpoint or vacuum of the test's own.
    drop(connection);
    for needle in [
        ADDRESS,
        "ingrid.marthinsen@example.org",
        "Marthinsen@",
        "Qwertzuiop",
        "zyxwvut",
    ] {
        assert!(
            !database_files_contain(app, needle),
            "`{needle}` is still in {:?}",
            files_containing(app, needle)
        );
    }
}

#[tokio::test]
async fn forget_over_http_erases_every_trace() {
    let mut token = String::new();
    let app = spawn_app_with(|settings| token = add_token(settings, "dpo", &[])).await;
    let ids = post_ingrid_and_others(&app).await;
    assert!(
        database_files_contain(&app, "Qwertzuiop"),
        "the probe can see data"
    );
    let response = app
        .client
        .post(format!("{}/admin/forget", app.admin_address))
        .bearer_auth(&token)
        .json(&json!({"email": "INGRID.MARTHINSEN@example.org"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["submissions"], 2);
    assert_eq!(app.count(), 1, "someone else's sign-up stays");
    assert_eq!(audit_of(&app, "forget")[0].0, "dpo");
    leaves_no_trace(&app, &ids);

    let response = app
        .client
        .post(format!("{}/admin/forget", app.admin_address))
        .bearer_auth(&token)
        .json(&json!({"email": "no at sign"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(
        !response.text().await.unwrap().contains("no at sign"),
        "never echoed"
    );
    app.stop().await;
}

#[tokio::test]
async fn forget_from_the_command_line_erases_every_trace() {
    let app = spawn_app_with(keep_notifications_pending).await;
    let ids = post_ingrid_and_others(&app).await;
    let config = write_config(&app);
    // Two addresses on standard input are refused whole: none is erased, rather than
    // the second dropped unnoticed.
    let two = format!("{ADDRESS}\nsomeone@example.org\n");
    let output = run_cli(&config, &["forget", "-"], Some(&two)).await;
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("one address per run"),
        "{}",
        stderr(&output)
    );
    assert_eq!(app.count(), 3, "nothing was erased");
    // `-`: the address comes from standard input, not the command line.
    let output = run_cli(&config, &["forget", "-"], Some(&format!("{ADDRESS}\n"))).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("erased 2 submission(s)"), "{text}");
    assert!(!text.to_lowercase().contains("marthinsen"), "{text}");
    leaves_no_trace(&app, &ids);
    assert_eq!(app.count(), 1);

    let output = run_cli(&config, &["forget", "not an address"], None).await;
    assert!(!output.status.success());
    app.stop().await;
}

/// Days old, status, outbox state: what each row is made into before a purge.
const AGES: [(&str, u64, &str, Option<&str>); 11] = [
    ("accepted past its window", 731, "accepted", Some("sent")),
    ("accepted within its window", 729, "accepted", Some("sent")),
    ("duplicate past the accepted window", 731, "duplicate", None),
    ("spam past its window", 31, "spam", None),
    ("spam within its window", 29, "spam", None),
    (
        "sent notification past its window",
        31,
        "accepted",
        Some("sent"),
    ),
    (
        "failed notification past its window",
        31,
        "accepted",
        Some("failed"),
    ),
    (
        "pending notification, however old",
        31,
        "accepted",
        Some("pending"),
    ),
    (
        "sent notification within its window",
        29,
        "accepted",
        Some("sent"),
    ),
    ("held past the spam window", 31, "held", None),
    ("held within the spam window", 29, "held", None),
];

async fn aged_rows(app: &TestApp) -> Vec<String> {
    let mut ids = Vec::new();
    for (n, (_, days, status, outbox)) in AGES.iter().enumerate() {
        let id = created_id(
            app.post_json(
                // A page's worth each: a purge frees whole pages.
                &json!({"name": "Per Hansen", "email": format!("p{n}@example.org"),
                        "country": "NO", "consent": true, "message": "Ø".repeat(1900)}),
            )
            .await,
        )
        .await;
        // The worker's first attempt (to a closed port: retried an hour later) comes
        // before the ageing: on a row already aged it would find the notification queued
        // weeks ago and give it up, making a pending row a failed one.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while first_attempt_pending(app, &id) && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let id = age_submission(app, &id, *days, 0);
        let connection = connect(app);
        connection
            .execute(
                "UPDATE submissions SET status = ?2 WHERE id = ?1",
                [&id, *status],
            )
            .unwrap();
        match outbox {
            Some(state) => connection
                .execute(
                    // Not due for years: the delivery worker leaves it alone.
                    "UPDATE outbox SET state = ?2, next_attempt_at = '2999-01-01T00:00:00.000000Z'
                     WHERE id = ?1",
                    [&id, *state],
                )
                .unwrap(),
            None => connection
                .execute("DELETE FROM outbox WHERE id = ?1", [&id])
                .unwrap(),
        };
        ids.push(id);
    }
    ids
}

/// Whether the delivery worker has yet to make its first attempt at `id`'s notification.
fn first_attempt_pending(app: &TestApp, id: &str) -> bool {
    connect(app)
        .query_row("SELECT attempts = 0 FROM outbox WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .unwrap_or(false)
}

fn exists(app: &TestApp, table: &str, column: &str, id: &str) -> bool {
    connect(app)
        .query_row(
            &format!("SELECT count(*) FROM {table} WHERE {column} = ?1"),
            [id],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
        == 1
}

fn assert_windows_held(app: &TestApp, ids: &[String]) {
    let submission_kept = [
        false, true, false, false, true, true, true, true, true, false, true,
    ];
    // A deleted submission's notification goes with it; the others by their own window.
    let outbox_kept = [
        false, false, false, false, false, false, false, true, true, false, false,
    ];
    for (n, (what, ..)) in AGES.iter().enumerate() {
        assert_eq!(
            exists(app, "submissions", "id", &ids[n]),
            submission_kept[n],
            "{what}"
        );
        assert_eq!(
            exists(app, "outbox", "id", &ids[n]),
            outbox_kept[n],
            "{what}: its notification"
        );
    }
}

#[tokio::test]
async fn purge_respects_each_window_and_is_audited() {
    let app = spawn_app_with(keep_notifications_pending).await;
    let ids = aged_rows(&app).await;
    let config = write_config(&app);
    let output = run_cli(&config, &["purge"], None).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_windows_held(&app, &ids);
    let purges: Vec<_> = audit_of(&app, "purge")
        .into_iter()
        .filter(|row| row.0 == "cli")
        .collect();
    assert_eq!(purges.len(), 1);
    let details: Value = serde_json::from_str(&purges[0].2).unwrap();
    assert_eq!(details["accepted"], 2, "{details}");
    assert_eq!(details["spam"], 1, "{details}");
    assert_eq!(details["held"], 1, "{details}");
    assert_eq!(details["outbox"], 3, "{details}");
    assert!(purges[0].4.is_some());
    assert_purged_rows_leave_no_trace(&app, &stderr(&output));
    app.stop().await;
}

/// The addresses of the rows a purge deletes ([`AGES`] 0, 2, 3 and 9) are in neither the
/// database file nor its WAL, as joinform left them; a kept row's address is; the pages
/// they freed went back to the file system.
fn assert_purged_rows_leave_no_trace(app: &TestApp, log: &str) {
    let free: i64 = connect(app)
        .query_row("PRAGMA freelist_count", [], |r| r.get(0))
        .unwrap();
    assert_eq!(free, 0, "free pages were returned to the file system");
    assert!(
        database_files_contain(app, "p1@example.org"),
        "the probe can see a kept row"
    );
    for n in [0, 2, 3, 9] {
        let needle = format!("p{n}@example.org");
        assert!(
            !database_files_contain(app, &needle),
            "`{needle}` ({}) is still in the files ({:?}); the purge said:\n{log}",
            AGES[n].0,
            files_containing(app, &needle)
        );
    }
}

#[tokio::test]
async fn the_server_purges_on_its_own() {
    let app = spawn_app_with(keep_notifications_pending).await;
    let ids = aged_rows(&app).await;
    let settings = app.settings.clone();
    let db_path = app.db_path.clone();
    let dir = app.stop().await;
    // As a busy server leaves it: the rows to be purged are in many WAL frames (a
    // connection kept open, so closing it does not checkpoint them away).
    let keeper = rusqlite::Connection::open(&db_path).unwrap();
    keeper.pragma_update(None, "synchronous", "OFF").unwrap();
    for round in 0..200_usize {
        keeper
            .execute(
                "UPDATE submissions SET is_returning = ?2 WHERE id = ?1",
                rusqlite::params![&ids[round % ids.len()], (round % 2) as i64],
            )
            .unwrap();
    }
    let mut wal = db_path.as_os_str().to_owned();
    wal.push("-wal");
    assert!(
        contains(&std::fs::read(&wal).unwrap(), b"p0@example.org"),
        "the WAL holds a row to be purged"
    );
    // The daily purge runs at start, then every day.
    let app = crate::helpers::spawn_app_in(dir, settings);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while exists(&app, "submissions", "id", &ids[0]) && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_windows_held(&app, &ids);
    assert!(audit_of(&app, "purge").iter().any(|row| row.0 == "server"));
    // The purge's audit row commits with the deletion; the clean-up of the files ends
    // the same job, so it is done within moments.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while database_files_contain(&app, "p0@example.org") && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_purged_rows_leave_no_trace(&app, "(the server's own purge: see its log)");
    drop(keeper);
    app.stop().await;
}

/// Mail to a port nobody listens on, retried only after an hour: notifications stay
/// pending, so erasure and purge must take the unsent ones too.
fn keep_notifications_pending(settings: &mut joinform::config::Settings) {
    settings.mail.retry_initial = "1h".parse().unwrap();
    settings.mail.transport = joinform::config::TransportKind::Smtp;
    settings.mail.smtp.host = "127.0.0.1".into();
    settings.mail.smtp.port = 9;
    settings.mail.smtp.tls = joinform::config::SmtpTls::None;
}

/// The audit hash of the latest erasure.
fn last_erasure_hash(app: &TestApp) -> String {
    let forgets = audit_of(app, "forget");
    let details: Value = serde_json::from_str(&forgets.last().unwrap().2).unwrap();
    details["address_hash"].as_str().unwrap().to_owned()
}

async fn sign_up_and_forget_ingrid(app: &TestApp) -> String {
    created_id(
        app.post_json(&json!({"name": NAME, "email": ADDRESS, "country": "NO", "consent": true}))
            .await,
    )
    .await;
    let output = run_cli(&write_config(app), &["forget", ADDRESS], None).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("erased 1 submission(s)"));
    last_erasure_hash(app)
}

/// Changing the secret invalidates form tokens, and only them: a later erasure of the
/// same address still gets the same audit hash, whether the secret is configured or
/// generated. An install from before `audit.key` keeps the hashes it recorded then
/// (HMAC-SHA256 under a key derived from the secret).
#[tokio::test]
async fn changing_the_secret_keeps_earlier_erasures_matchable() {
    use hmac::{Hmac, Mac};

    const OLD: &str = "the secret this install started with, long enough";
    const NEW: &str = "a secret the operator rotated to, also long enough";
    let app = spawn_app_with(|settings| settings.spam.secret = Some(OLD.into())).await;
    let first = sign_up_and_forget_ingrid(&app).await;
    let derived = {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(OLD.as_bytes()).unwrap();
        mac.update(b"joinform audit address v1");
        mac.finalize().into_bytes()
    };
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&derived).unwrap();
    mac.update(b"ingrid.marthinsen@example.org");
    assert_eq!(
        first,
        hex::encode(mac.finalize().into_bytes()),
        "as joinform hashed erasures before audit.key"
    );

    let mut app = app;
    app.settings.spam.secret = Some(NEW.into());
    let app = app.restart().await;
    assert_eq!(
        sign_up_and_forget_ingrid(&app).await,
        first,
        "after a new secret"
    );

    let mut app = app;
    app.settings.spam.secret = None;
    let app = app.restart().await;
    assert_eq!(
        sign_up_and_forget_ingrid(&app).await,
        first,
        "after a generated secret"
    );
    app.stop().await;
}
