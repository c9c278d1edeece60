//! Review of what the spam checks flagged, as the real binary does it against a running
//! server's database: `joinform review list|release|discard`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, contains, created_id, spawn_app};
use crate::operator_helpers::{audit_of, connect, run_cli, stderr, stdout, write_config};

/// A sign-up caught by the honeypot, from `country`, with `message`.
async fn spam(app: &TestApp, name: &str, local: &str, country: &str, message: &str) -> String {
    let body = json!({"name": name, "email": format!("{local}@example.org"),
                      "country": country, "consent": true, "message": message,
                      "_gotcha": "x"});
    created_id(app.post_json(&body).await).await
}

/// (status, followup, spam_reasons) of a stored sign-up.
fn state_of(app: &TestApp, id: &str) -> Option<(String, Option<String>, Option<String>)> {
    rusqlite::OptionalExtension::optional(connect(app).query_row(
        "SELECT status, followup, spam_reasons FROM submissions WHERE id = ?1",
        [id],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
    ))
    .unwrap()
}

/// The database's own files (main file, WAL, shared memory) hold `needle`.
fn database_files_contain(app: &TestApp, needle: &str) -> bool {
    let folder = app.db_path.parent().unwrap();
    std::fs::read_dir(folder).unwrap().flatten().any(|entry| {
        entry
            .file_name()
            .to_string_lossy()
            .starts_with("joinform.db")
            && contains(
                &std::fs::read(entry.path()).unwrap_or_default(),
                needle.as_bytes(),
            )
    })
}

/// Whether the file transport wrote a mail with Message-ID `<id@…>` within a while.
async fn mail_written(app: &TestApp, id: &str) -> bool {
    let expected = format!("Message-ID: <{id}@");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let found = std::fs::read_dir(&app.settings.mail.file_dir)
            .into_iter()
            .flatten()
            .flatten()
            .any(|entry| {
                std::fs::read_to_string(entry.path()).is_ok_and(|text| text.contains(&expected))
            });
        if found || tokio::time::Instant::now() >= deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn spam_is_listed_by_section_without_contact_details() {
    let app = spawn_app().await;
    let kari = spam(&app, "Kari Nordmann", "kari", "NO", "Hello from Bergen").await;
    let sven = spam(&app, "Sven Svensson", "sven", "SE", "Hej").await;
    let accepted = created_id(app.post_json(&crate::helpers::valid_json()).await).await;
    let config = write_config(&app);

    let output = run_cli(&config, &["review", "list"], None).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains(&kari) && text.contains(&sven), "{text}");
    assert!(!text.contains(&accepted), "{text}");
    assert!(text.contains("Kari") && text.contains("honeypot"), "{text}");
    for personal in ["Nordmann", "kari@example.org", "Bergen"] {
        assert!(!text.contains(personal), "{personal} shown: {text}");
    }
    // Newest first.
    assert!(text.find(&sven) < text.find(&kari), "{text}");
    assert!(text.contains("2 spam sign-up(s)"), "{text}");

    let output = run_cli(&config, &["review", "list", "--section", "Sweden"], None).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains(&sven) && !text.contains(&kari), "{text}");

    let output = run_cli(&config, &["review", "list", "--status", "maybe"], None).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("`held` or `spam`"),
        "{}",
        stderr(&output)
    );
    app.stop().await;
}

#[tokio::test]
async fn a_released_sign_up_is_accepted_notified_and_audited() {
    let app = spawn_app().await;
    let id = spam(&app, "Kari Nordmann", "kari", "NO", "Hello").await;
    assert!(app.outbox().is_empty());
    let config = write_config(&app);

    let output = run_cli(&config, &["review", "release", &id], None).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("1 sign-up(s) released"));
    let (status, followup, reasons) = state_of(&app, &id).unwrap();
    assert_eq!(
        (status.as_str(), followup.as_deref()),
        ("accepted", Some("new"))
    );
    // Kept: the record of why it was flagged.
    assert_eq!(reasons.as_deref(), Some(r#"["honeypot"]"#));

    app.delivery_nudge().await;
    let rows = app
        .wait_for_outbox(Duration::from_secs(10), |row| row.0 == "sent")
        .await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0, "sent", "{rows:?}");
    assert!(mail_written(&app, &id).await, "no notification for {id}");

    let audit = audit_of(&app, "release");
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].0, "cli");
    let details: Value = serde_json::from_str(&audit[0].2).unwrap();
    assert_eq!(details, json!({"ids": [id], "count": 1, "duplicates": []}));
    assert_eq!(audit[0].3, Some(1));

    // Released once: a second release names it and changes nothing.
    let output = run_cli(&config, &["review", "release", &id], None).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).contains(&format!("left as it is: {id}")));
    assert_eq!(audit_of(&app, "release").len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_discarded_sign_up_leaves_no_trace_and_is_audited() {
    let app = spawn_app().await;
    let marker = "Discard-me-7f3a9c";
    let id = spam(
        &app,
        "Bot",
        "bot",
        "NO",
        &format!("{marker} {}", "Ø".repeat(1900)),
    )
    .await;
    let kept = spam(&app, "Kari Nordmann", "kari", "NO", "Hello").await;
    let config = write_config(&app);

    let output = run_cli(&config, &["review", "discard", &id], None).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("1 sign-up(s) erased"));
    assert!(state_of(&app, &id).is_none());
    assert!(state_of(&app, &kept).is_some());
    assert!(
        !database_files_contain(&app, marker),
        "the discarded message is still in the database's files"
    );

    let audit = audit_of(&app, "discard");
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].0, "cli");
    let details: Value = serde_json::from_str(&audit[0].2).unwrap();
    assert_eq!(details, json!({"ids": [id], "count": 1}));
    app.stop().await;
}

#[tokio::test]
async fn ids_that_are_no_spam_are_named_and_left_alone() {
    let app = spawn_app().await;
    let accepted = created_id(app.post_json(&crate::helpers::valid_json()).await).await;
    let flagged = spam(&app, "Sven Svensson", "sven", "SE", "Hej").await;
    let unknown = "01900000-0000-7000-8000-000000000000";
    let config = write_config(&app);

    for action in ["release", "discard"] {
        let output = run_cli(
            &config,
            &["review", action, &accepted, unknown, "not-an-id"],
            None,
        )
        .await;
        assert_eq!(
            output.status.code(),
            Some(1),
            "{action}: {}",
            stderr(&output)
        );
        let text = stdout(&output);
        for named in [accepted.as_str(), unknown, "not-an-id"] {
            assert!(
                text.contains(&format!("left as it is: {named}")),
                "{action}: {text}"
            );
        }
        assert!(audit_of(&app, action).is_empty(), "{action}");
    }
    let (status, _, _) = state_of(&app, &accepted).unwrap();
    assert_eq!(status, "accepted");
    assert_eq!(state_of(&app, &flagged).unwrap().0, "spam");

    // A spam id among others is still handled; the others make it exit 1.
    let output = run_cli(&config, &["review", "release", &flagged, unknown], None).await;
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(state_of(&app, &flagged).unwrap().0, "accepted");
    app.stop().await;
}

/// Spam of a double opt-in section is not released: its section may hear of a person
/// only once they confirmed, which an operator cannot do for them. Another section's
/// spam in the same command is released.
#[tokio::test]
async fn spam_of_a_double_opt_in_section_is_not_released() {
    let app = crate::helpers::spawn_app_with(|settings| {
        settings.server.public_url = Some("https://join.example.org".into());
        settings.followup.enabled = Some(false);
        let sweden = settings
            .sections
            .iter_mut()
            .find(|section| section.name == "Sweden")
            .unwrap();
        sweden.confirmation = Some(joinform::domain::ConfirmationMode::DoubleOptIn);
    })
    .await;
    let swede = spam(&app, "Sven Svensson", "sven", "SE", "Hej").await;
    let norwegian = spam(&app, "Kari Nordmann", "kari", "NO", "Hei").await;
    let config = write_config(&app);
    let output = run_cli(&config, &["review", "release", &swede, &norwegian], None).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stdout(&output).contains(&format!(
            "of a double opt-in section, left as it is: {swede}"
        )),
        "{}",
        stdout(&output)
    );
    assert_eq!(state_of(&app, &swede).unwrap().0, "spam");
    assert_eq!(state_of(&app, &norwegian).unwrap().0, "accepted");
    let audit = audit_of(&app, "release");
    assert_eq!(audit.len(), 1);
    assert!(!audit[0].2.contains(&swede), "{}", audit[0].2);
    app.stop().await;
}
