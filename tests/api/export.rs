//! Exports: what goes in through POST /join comes out of CSV and JSON unchanged, from the
//! command line and the admin listener; formula cells are made inert; filters select;
//! incremental exports move their checkpoint only when complete; every export is audited.

use joinform::config::ExtraFieldSettings;
use joinform::store::submissions::StoredSubmission;
use serde_json::{Value, json};

use crate::helpers::{TestApp, created_id, json_answer, spawn_app_with};
use crate::operator_helpers::{
    add_token, admin_get, age_submission, audit_of, connect, run_cli, stderr, stdout, write_config,
};

const COLUMNS: [&str; 19] = [
    "id",
    "created_at",
    "name",
    "email",
    "phone",
    "city",
    "country",
    "section",
    "language",
    "message",
    "status",
    "followup",
    "followup_at",
    "followup_by",
    "contacted_at",
    "consent_text",
    "consent_version",
    "confirmed_at",
    "organisation",
];

/// A server with an extra field and an unscoped token; returns it with the token.
async fn spawn_exporting_app() -> (TestApp, String) {
    let mut token = String::new();
    let app = spawn_app_with(|settings| {
        settings.form.extra_fields.push(ExtraFieldSettings {
            name: "organisation".into(),
            max_length: 100,
            required: false,
        });
        token = add_token(settings, "head office", &[]);
    })
    .await;
    (app, token)
}

/// Sign-ups whose every cell should survive an export byte for byte: several scripts,
/// combining marks, emoji, quotes, commas and line breaks.
fn unicode_submissions() -> Vec<Value> {
    vec![
        json!({"name": "Åse Ødegård", "email": "ase@example.org", "country": "NO", "consent": true,
               "city": "Tromsø", "message": "Hei, \"alle\"!\nLinje to; æøå.", "language": "nb",
               "organisation": "Fagforbundet, avd. 1"}),
        json!({"name": "山田 太郎", "email": "taro@例え.jp", "country": "SE", "consent": true,
               "message": "よろしく 🌹", "phone": "08 123 456 78"}),
        json!({"name": "محمد الأحمد", "email": "m.ahmad@example.org", "country": "DE",
               "consent": true, "city": "Köln", "message": "مرحبا\r\nwith CRLF"}),
        json!({"name": "Zoë Ångström", "email": "zoe@example.org", "country": "GB",
               "consent": true, "language": "en-GB"}),
    ]
}

fn expected_cells(row: &StoredSubmission) -> Vec<String> {
    let extra = &row.extra;
    vec![
        row.id.to_string(),
        row.created_at.to_string(),
        row.name.clone(),
        row.email.clone(),
        row.phone.clone().unwrap_or_default(),
        row.city.clone().unwrap_or_default(),
        row.country.to_string(),
        row.section.clone(),
        row.language.clone().unwrap_or_default(),
        row.message.clone().unwrap_or_default(),
        row.status.as_str().to_owned(),
        row.followup.map(|s| s.to_string()).unwrap_or_default(),
        row.followup_at.map(|t| t.to_string()).unwrap_or_default(),
        row.followup_by.clone().unwrap_or_default(),
        row.contacted_at.map(|t| t.to_string()).unwrap_or_default(),
        row.consent_text.clone().unwrap_or_default(),
        row.consent_version.clone().unwrap_or_default(),
        row.confirmed_at.map(|t| t.to_string()).unwrap_or_default(),
        extra
            .get("organisation")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    ]
}

fn parse_csv(bytes: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_reader(bytes);
    let header = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader
        .records()
        .map(|record| record.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

/// The JSON value each column should have: a string, or `null` where the visitor left
/// the field out (never `""`, which would be a value they typed).
fn expected_values(row: &StoredSubmission) -> Vec<Value> {
    let text = |cell: &str| Value::String(cell.to_owned());
    let optional = |cell: &Option<String>| cell.as_deref().map_or(Value::Null, text);
    vec![
        text(&row.id.to_string()),
        text(&row.created_at.to_string()),
        text(&row.name),
        text(&row.email),
        optional(&row.phone),
        optional(&row.city),
        text(row.country.as_str()),
        text(&row.section),
        optional(&row.language),
        optional(&row.message),
        text(row.status.as_str()),
        row.followup.map_or(Value::Null, |s| text(s.as_str())),
        row.followup_at
            .map_or(Value::Null, |t| text(&t.to_string())),
        optional(&row.followup_by),
        row.contacted_at
            .map_or(Value::Null, |t| text(&t.to_string())),
        optional(&row.consent_text),
        optional(&row.consent_version),
        row.confirmed_at
            .map_or(Value::Null, |t| text(&t.to_string())),
        row.extra
            .get("organisation")
            .cloned()
            .unwrap_or(Value::Null),
    ]
}

/// Every object has every column of the CSV, configured extra fields included, with
/// exactly the stored value.
fn assert_json_matches(objects: &[Value], rows: &[StoredSubmission]) {
    assert_eq!(objects.len(), rows.len());
    for (object, row) in objects.iter().zip(rows) {
        let object = object.as_object().unwrap();
        for (column, value) in COLUMNS.iter().zip(expected_values(row)) {
            assert_eq!(object.get(*column), Some(&value), "{column} of {object:?}");
        }
    }
}

#[tokio::test]
async fn csv_and_json_give_back_exactly_what_was_posted() {
    let (app, token) = spawn_exporting_app().await;
    for submission in unicode_submissions() {
        created_id(app.post_json(&submission).await).await;
    }
    let rows = app.rows();
    assert_eq!(rows.len(), 4);
    let expected: Vec<Vec<String>> = rows.iter().map(expected_cells).collect();
    let config = write_config(&app);

    // Command line, CSV to stdout.
    let output = run_cli(&config, &["export"], None).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("exported 4 row(s)"),
        "{}",
        stderr(&output)
    );
    let (header, cells) = parse_csv(&output.stdout);
    assert_eq!(header, COLUMNS);
    assert_eq!(cells, expected);
    assert!(
        output.stdout.windows(2).any(|w| w == b"\r\n"),
        "RFC 4180 line ends"
    );

    // Command line, JSON and NDJSON.
    let output = run_cli(&config, &["export", "--format", "json"], None).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let objects: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert_json_matches(&objects, &rows);
    let output = run_cli(&config, &["export", "--format", "ndjson"], None).await;
    let objects: Vec<Value> = stdout(&output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_json_matches(&objects, &rows);

    // Admin listener: CSV by default, JSON by format= or Accept.
    let response = admin_get(&app, "/admin/submissions", &token).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let disposition = response.headers()["content-disposition"].to_str().unwrap();
    assert!(disposition.starts_with("attachment;"), "{disposition}");
    let (header, cells) = parse_csv(&response.bytes().await.unwrap());
    assert_eq!(header, COLUMNS);
    assert_eq!(cells, expected);

    let response = admin_get(&app, "/admin/submissions?format=json", &token).await;
    let objects: Vec<Value> = json_answer(response, 200, "").await;
    assert_json_matches(&objects, &rows);
    let response = app
        .client
        .get(format!("{}/admin/submissions", app.admin_address))
        .bearer_auth(&token)
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let objects: Vec<Value> = response.json().await.unwrap();
    assert_json_matches(&objects, &rows);
    app.stop().await;
}

#[tokio::test]
async fn cells_a_spreadsheet_would_run_are_neutralised_in_csv_only() {
    let (app, token) = spawn_exporting_app().await;
    created_id(
        app.post_json(&json!({
            "name": "Kari Nordmann", "email": "kari@example.org", "country": "NO",
            "consent": true, "phone": "+47 22 33 44 55", "city": "@Oslo",
            "message": "=HYPERLINK(\"http://evil.example\",\"click\")",
            "organisation": "-1+2",
        }))
        .await,
    )
    .await;
    let config = write_config(&app);
    let output = run_cli(&config, &["export", "--excel"], None).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        output.stdout.starts_with(b"\xef\xbb\xbf"),
        "--excel: byte-order mark"
    );
    let (_, rows) = parse_csv(&output.stdout[3..]);
    let row = &rows[0];
    assert_eq!(row[4], "'+47 22 33 44 55");
    assert_eq!(row[5], "'@Oslo");
    assert_eq!(row[9], "'=HYPERLINK(\"http://evil.example\",\"click\")");
    assert_eq!(row[18], "'-1+2");
    assert_eq!(row[2], "Kari Nordmann", "ordinary cells are untouched");
    assert_eq!(row[11], "new", "--excel carries the follow-up state too");
    assert_eq!((row[13].as_str(), row[14].as_str()), ("", ""));

    let output = run_cli(&config, &["export"], None).await;
    assert!(
        !output.stdout.starts_with(b"\xef\xbb\xbf"),
        "no BOM unless asked"
    );

    let response = admin_get(&app, "/admin/submissions?format=json", &token).await;
    let objects: Vec<Value> = response.json().await.unwrap();
    assert_eq!(
        objects[0]["phone"], "+47 22 33 44 55",
        "JSON is data, not a sheet"
    );
    assert_eq!(objects[0]["organisation"], "-1+2");
    app.stop().await;
}

fn ids(csv_bytes: &[u8]) -> Vec<String> {
    parse_csv(csv_bytes)
        .1
        .into_iter()
        .map(|row| row[0].clone())
        .collect()
}

#[tokio::test]
async fn filters_select_by_section_country_status_and_time() {
    let (app, token) = spawn_exporting_app().await;
    let post = |country: &'static str, local: &'static str| {
        let app = &app;
        async move {
            created_id(
                app.post_json(
                    &json!({"name": "Per Hansen", "email": format!("{local}@example.org"),
                                      "country": country, "consent": true}),
                )
                .await,
            )
            .await
        }
    };
    let norway = post("NO", "no").await;
    let svalbard = post("SJ", "sj").await;
    let sweden = post("SE", "se").await;
    let germany = post("DE", "de").await;
    let spam = post("NO", "spam").await;
    let old = post("SE", "old").await;
    let connection = connect(&app);
    connection
        .execute(
            "UPDATE submissions SET status = 'spam' WHERE id = ?1",
            [&spam],
        )
        .unwrap();
    let old = age_submission(&app, &old, 40, 0);
    let config = write_config(&app);
    let export = |args: Vec<&'static str>| {
        let config = config.clone();
        async move {
            let mut all = vec!["export"];
            all.extend(args);
            let output = run_cli(&config, &all, None).await;
            assert!(output.status.success(), "{all:?}: {}", stderr(&output));
            let mut got = ids(&output.stdout);
            got.sort();
            got
        }
    };
    let sorted = |mut v: Vec<&String>| {
        v.sort();
        v.into_iter().cloned().collect::<Vec<_>>()
    };
    assert_eq!(
        export(vec![]).await,
        sorted(vec![&norway, &svalbard, &sweden, &germany, &old]),
        "accepted only by default"
    );
    assert_eq!(
        export(vec!["--section", "Norway"]).await,
        sorted(vec![&norway, &svalbard])
    );
    assert_eq!(
        export(vec!["--section", "International"]).await,
        vec![germany.clone()]
    );
    assert_eq!(
        export(vec!["--country", "se"]).await,
        sorted(vec![&sweden, &old])
    );
    assert_eq!(export(vec!["--status", "spam"]).await, vec![spam.clone()]);
    assert_eq!(export(vec!["--status", "all"]).await.len(), 6);
    assert_eq!(
        export(vec!["--status", "duplicate"]).await,
        Vec::<String>::new()
    );
    let today = time::OffsetDateTime::now_utc().date().to_string();
    let month_ago = (time::OffsetDateTime::now_utc() - time::Duration::days(30))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let since_today = export(vec!["--since", Box::leak(today.clone().into_boxed_str())]).await;
    assert!(!since_today.contains(&old) && since_today.contains(&norway));
    assert_eq!(
        export(vec!["--until", Box::leak(month_ago.into_boxed_str())]).await,
        vec![old.clone()]
    );
    let until_today = export(vec!["--until", Box::leak(today.into_boxed_str())]).await;
    assert!(
        until_today.contains(&norway),
        "a date includes that whole day"
    );
    let output = run_cli(&config, &["export", "--since", "yesterday"], None).await;
    assert!(!output.status.success());
    assert!(stderr(&output).contains("yesterday"), "{}", stderr(&output));
    // A range that is empty by its own terms is most likely swapped: refused, not an
    // empty export that looks like "nobody signed up".
    for (since, until) in [("2026-12-01", "2026-11-01"), ("2026-11-01", "2026-10-31")] {
        let args = ["export", "--since", since, "--until", until];
        let output = run_cli(&config, &args, None).await;
        assert!(!output.status.success(), "{since}..{until}");
        assert!(
            stderr(&output).contains("time range is empty"),
            "{}",
            stderr(&output)
        );
    }

    // The same filters over HTTP.
    let response = admin_get(&app, "/admin/submissions?section=Sweden&country=SE", &token).await;
    let mut got = ids(&response.bytes().await.unwrap());
    got.sort();
    assert_eq!(got, sorted(vec![&sweden, &old]));
    let response = admin_get(&app, "/admin/submissions?status=spam", &token).await;
    assert_eq!(ids(&response.bytes().await.unwrap()), vec![spam.clone()]);
    let response = admin_get(&app, "/admin/submissions?colour=red", &token).await;
    assert_eq!(
        response.status(),
        400,
        "an unknown filter is refused, not ignored"
    );
    let response = admin_get(&app, "/admin/submissions?since=soon", &token).await;
    assert_eq!(response.status(), 400);
    let swapped = "/admin/submissions?since=2026-12-01&until=2026-11-01";
    assert_eq!(admin_get(&app, swapped, &token).await.status(), 400);
    // A byte-order mark for spreadsheets with JSON would be silently dropped: refused.
    let output = run_cli(&config, &["export", "--format", "json", "--excel"], None).await;
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("CSV format only"),
        "{}",
        stderr(&output)
    );
    let excel_json = "/admin/submissions?format=json&excel=true";
    assert_eq!(admin_get(&app, excel_json, &token).await.status(), 400);
    app.stop().await;
}

#[tokio::test]
async fn since_last_exports_what_is_new_and_moves_only_on_success() {
    let (app, _) = spawn_exporting_app().await;
    let first = created_id(app.post_json(&crate::helpers::valid_json()).await).await;
    let first = age_submission(&app, &first, 0, 10);
    // Another person: a second sign-up of the same address would be a duplicate.
    let mut other = crate::helpers::valid_json();
    other["email"] = "other@example.org".into();
    let fresh = created_id(app.post_json(&other).await).await;
    let config = write_config(&app);

    let run = |extra: &'static [&'static str]| {
        let config = config.clone();
        async move {
            let mut args = vec!["export", "--since-last", "crm"];
            args.extend(extra);
            run_cli(&config, &args, None).await
        }
    };
    let output = run(&[]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        ids(&output.stdout),
        vec![first.clone()],
        "a sign-up of the last minute waits for the next run"
    );
    let output = run(&[]).await;
    assert_eq!(ids(&output.stdout), Vec::<String>::new(), "nothing new");

    let fresh = age_submission(&app, &fresh, 0, 5);
    // An export that fails does not move the checkpoint.
    let output = run(&["--output", "/nonexistent-folder/out.csv"]).await;
    assert!(!output.status.success());
    let output = run(&[]).await;
    assert_eq!(ids(&output.stdout), vec![fresh.clone()]);
    let output = run(&[]).await;
    assert_eq!(ids(&output.stdout), Vec::<String>::new());

    // Another consumer has its own checkpoint.
    let output = run_cli(&config, &["export", "--since-last", "newsletter"], None).await;
    assert_eq!(ids(&output.stdout), vec![first.clone(), fresh.clone()]);

    let exports = audit_of(&app, "export");
    assert_eq!(exports.len(), 6);
    let failed = &exports[2];
    assert!(
        failed.4.is_none(),
        "the failed export stays marked incomplete"
    );
    app.stop().await;
}

#[tokio::test]
async fn every_export_is_audited_and_none_happens_without_its_audit_row() {
    let (app, token) = spawn_exporting_app().await;
    for submission in unicode_submissions() {
        created_id(app.post_json(&submission).await).await;
    }
    let config = write_config(&app);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("contacts.csv");
    let output = run_cli(
        &config,
        &[
            "export",
            "--section",
            "Norway",
            "--output",
            file.to_str().unwrap(),
        ],
        None,
    )
    .await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(output.stdout.is_empty(), "the data went to the file");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the export file is private");
    }
    let response = admin_get(&app, "/admin/submissions?format=json", &token).await;
    let _ = response.bytes().await.unwrap();

    // The HTTP export's row is completed after the body is sent.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let exports = loop {
        let exports = audit_of(&app, "export");
        if exports.len() == 2 && exports[1].4.is_some() || std::time::Instant::now() > deadline {
            break exports;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let (actor, _, details, count, completed) = &exports[0];
    assert_eq!(actor, "cli");
    assert_eq!(*count, Some(1));
    assert!(completed.is_some());
    let details: Value = serde_json::from_str(details).unwrap();
    assert_eq!(details["sections"], json!(["Norway"]));
    assert_eq!(details["status"], "accepted");
    let (actor, _, details, count, completed) = &exports[1];
    assert_eq!(actor, "head office");
    assert_eq!(*count, Some(4));
    assert!(completed.is_some());
    assert!(!details.contains(&token));

    let listing = run_cli(&config, &["audit"], None).await;
    let listing = stdout(&listing);
    assert!(
        listing.contains("head office") && listing.contains("export"),
        "{listing}"
    );
    assert!(!listing.contains(&token));
    assert!(
        !listing.contains("example.org"),
        "no personal data: {listing}"
    );

    // When the audit trail refuses the row, the export does not happen.
    connect(&app)
        .execute_batch(
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit
             BEGIN SELECT RAISE(ABORT, 'audit refused'); END;",
        )
        .unwrap();
    let output = run_cli(&config, &["export"], None).await;
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "no data without an audit row");
    assert!(stderr(&output).contains("audit"), "{}", stderr(&output));
    let response = admin_get(&app, "/admin/submissions", &token).await;
    assert_eq!(response.status(), 503);
    let body = response.text().await.unwrap();
    assert!(!body.contains("example.org"), "{body}");
    app.stop().await;
}

/// A large export streams: the client has its first bytes while the server is still
/// reading rows (the export's audit row is completed only when reading ends), and a
/// client that stops reading holds the export up instead of letting it pile up in
/// memory. An implementation that buffered the whole export first would have finished
/// reading before the first byte left. Then every row arrives.
#[tokio::test]
async fn a_large_export_streams_every_row() {
    const ROWS: i64 = 5000;
    let (app, token) = spawn_exporting_app().await;
    let long_message = "Ø".repeat(2000);
    created_id(
        app.post_json(
            &json!({"name": "Kari Nordmann", "email": "kari@example.org",
                              "country": "NO", "consent": true, "message": long_message}),
        )
        .await,
    )
    .await;
    // About 20 MB of rows, far more than the socket buffers and the server's chunks in
    // flight hold; copies of the posted row (ids that differ in their last group), made
    // directly in the file for speed.
    connect(&app)
        .execute(
            "INSERT INTO submissions (id, created_at, name, email, country, consent, message,
                                      status, section, email_key, extra)
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
             SELECT substr(s.id, 1, 24) || printf('%012x', i), s.created_at, s.name,
                    printf('kari%d@example.org', i), s.country, s.consent, s.message,
                    s.status, s.section, printf('kari%d@example.org', i), s.extra
             FROM n, submissions s",
            [ROWS - 1],
        )
        .unwrap();
    let export_completed = || {
        audit_of(&app, "export")
            .first()
            .is_some_and(|row| row.4.is_some())
    };

    let mut response = admin_get(&app, "/admin/submissions", &token).await;
    assert_eq!(response.status(), 200);
    let first = response.chunk().await.unwrap().unwrap();
    assert!(!first.is_empty());
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    assert!(
        !export_completed(),
        "the first bytes came, and the client stopped reading, before the export had \
         read every row"
    );

    let mut bytes = first.to_vec();
    let mut chunks = 1;
    while let Some(chunk) = response.chunk().await.unwrap() {
        bytes.extend_from_slice(&chunk);
        chunks += 1;
    }
    assert!(chunks > 1, "more than one chunk");
    let (_, rows) = parse_csv(&bytes);
    assert_eq!(rows.len(), usize::try_from(ROWS).unwrap());
    assert!(rows.iter().all(|row| row[9] == long_message));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !export_completed() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        audit_of(&app, "export")[0].3,
        Some(ROWS),
        "completed, every row"
    );
    app.stop().await;
}

/// Without a `language` field, the stored (and exported) language is the browser's
/// highest-weighted Accept-Language entry, not the first one listed; `*` names no
/// language and is passed over.
#[tokio::test]
async fn the_language_is_the_highest_weighted_accept_language_entry() {
    let (app, token) = spawn_exporting_app().await;
    let post = |accept_language: &'static str| {
        let app = &app;
        async move {
            created_id(
                app.client
                    .post(app.url("/join"))
                    .header("Accept-Language", accept_language)
                    .json(&crate::helpers::valid_json())
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let cases = [
        ("fr;q=0.5, de-CH;q=0.9, en;q=0.1", Some("de-CH")),
        ("*, nb;q=0.8, sv;q=0.7", Some("nb")),
        ("da", Some("da")),
        ("*", None),
        // RFC 9110 §12.4.2: q=0 is "not acceptable", never the visitor's language.
        ("en;q=0", None),
        ("en;q=0, pt-BR;q=0.2", Some("pt-BR")),
    ];
    for (accept_language, expected) in cases {
        let id = post(accept_language).await;
        assert_eq!(
            app.row(&id).unwrap().language.as_deref(),
            expected,
            "stored, for {accept_language}"
        );
        let objects: Vec<Value> =
            admin_get(&app, "/admin/submissions?format=json&status=all", &token)
                .await
                .json()
                .await
                .unwrap();
        let object = objects
            .iter()
            .find(|object| object["id"] == id.as_str())
            .unwrap();
        assert_eq!(
            object["language"],
            expected.map_or(Value::Null, Value::from),
            "exported, for {accept_language}"
        );
    }
    app.stop().await;
}

#[cfg(unix)]
#[tokio::test]
async fn an_export_file_is_private_even_when_it_existed_and_never_a_symbolic_link() {
    use std::os::unix::fs::PermissionsExt;
    let (app, _) = spawn_exporting_app().await;
    created_id(app.post_json(&unicode_submissions()[0]).await).await;
    let config = write_config(&app);
    let dir = tempfile::tempdir().unwrap();
    let export_to = |path: &std::path::Path| {
        let path = path.to_str().unwrap().to_owned();
        let config = config.clone();
        async move { run_cli(&config, &["export", "--output", &path], None).await }
    };
    // A file someone made readable by everyone is narrowed before the data goes in.
    let existing = dir.path().join("contacts.csv");
    std::fs::write(&existing, "old").unwrap();
    std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = export_to(&existing).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let mode = std::fs::metadata(&existing).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "narrowed to its owner");
    assert!(
        std::fs::read_to_string(&existing)
            .unwrap()
            .starts_with("id,")
    );
    // A link is refused, not followed: the file it points to is left as it was.
    let target = dir.path().join("shared.csv");
    std::fs::write(&target, "someone else's").unwrap();
    let link = dir.path().join("link.csv");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let output = export_to(&link).await;
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("symbolic link"),
        "{}",
        stderr(&output)
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "someone else's");
    app.stop().await;
}

/// Sign-ups held in a flood are exported only when asked for (`held`, or `all`), as
/// spam is: most of them are bots.
#[tokio::test]
async fn held_sign_ups_are_exported_only_when_asked_for() {
    let mut token = String::new();
    let app = spawn_app_with(|settings| {
        // Over a baseline of one a minute, every sign-up but the first is held.
        settings.spam.pow_baseline_per_minute = 1;
        token = add_token(settings, "head office", &[]);
    })
    .await;
    let mut ids = Vec::new();
    for local in ["first", "second", "third"] {
        let body = json!({"name": "Per Hansen", "email": format!("{local}@example.org"),
                          "country": "NO", "consent": true});
        ids.push(created_id(app.post_json(&body).await).await);
    }
    let exported = |status: &'static str| {
        let (app, token) = (&app, &token);
        async move {
            let query = format!("/admin/submissions?format=json&status={status}");
            let response = admin_get(app, &query, token).await;
            let rows: Vec<Value> = json_answer(response, 200, status).await;
            let mut ids: Vec<String> = rows
                .iter()
                .map(|row| row["id"].as_str().unwrap().to_owned())
                .collect();
            ids.sort();
            (ids, rows)
        }
    };
    assert_eq!(exported("accepted").await.0, ids[..1]);
    let (held, rows) = exported("held").await;
    assert_eq!(held, ids[1..]);
    assert!(rows.iter().all(|row| row["status"] == "held"), "{rows:?}");
    assert_eq!(exported("all").await.0, ids);
    let response = admin_get(&app, "/admin/submissions?status=held&followup=new", &token).await;
    assert_eq!(response.status(), 400, "nobody follows up a held sign-up");
    app.stop().await;
}
