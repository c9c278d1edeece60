//! The visitor's side seen by operators: what becomes of sign-ups nobody confirmed
//! (double opt-in), in the purge and in exports.

use serde_json::{Value, json};

use joinform::domain::ConfirmationMode;

use crate::helpers::{TestApp, created_id, spawn_app_with};
use crate::operator_helpers::{
    age_submission, audit_of, connect, run_cli, stderr, stdout, write_config,
};

async fn double_opt_in_app() -> TestApp {
    spawn_app_with(|settings| {
        settings.server.public_url = Some("https://join.example.org".into());
        settings.followup.enabled = Some(false);
        settings.form.confirmation = ConfirmationMode::DoubleOptIn;
        // One section of the shipped example stays without confirmation, so that
        // accepted sign-ups sit beside the unconfirmed ones.
        let norway = settings
            .sections
            .iter_mut()
            .find(|section| section.name == "Norway")
            .unwrap();
        norway.confirmation = Some(ConfirmationMode::Off);
    })
    .await
}

async fn sign_up(app: &TestApp, email: &str, country: &str) -> String {
    created_id(
        app.post_json(
            &json!({"name": "Ada Lovelace", "email": email, "country": country,
                               "consent": true}),
        )
        .await,
    )
    .await
}

fn status_of(app: &TestApp, id: &str) -> Option<String> {
    connect(app)
        .query_row(
            "SELECT status FROM submissions WHERE id = ?1",
            [id],
            |row| row.get(0),
        )
        .ok()
}

/// Mails about a sign-up still in the outbox, of any kind.
fn mails_about(app: &TestApp, id: &str) -> i64 {
    connect(app)
        .query_row(
            "SELECT count(*) FROM outbox WHERE submission_id = ?1",
            [id],
            |row| row.get(0),
        )
        .unwrap()
}

#[tokio::test]
async fn unconfirmed_sign_ups_are_purged_after_the_window_with_their_mails() {
    let app = double_opt_in_app().await;
    let stale = sign_up(&app, "stale@example.org", "SE").await;
    let stale = age_submission(&app, &stale, 8, 0);
    let fresh = sign_up(&app, "fresh@example.org", "SE").await;
    let fresh = age_submission(&app, &fresh, 6, 0);
    let accepted = sign_up(&app, "kari@example.org", "NO").await;
    let accepted = age_submission(&app, &accepted, 8, 0);
    assert_eq!(status_of(&app, &stale).as_deref(), Some("unconfirmed"));
    assert_eq!(status_of(&app, &accepted).as_deref(), Some("accepted"));
    assert_eq!(mails_about(&app, &stale), 1, "its confirmation mail");

    let config = write_config(&app);
    let output = run_cli(&config, &["purge"], None).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("1 unconfirmed sign-up(s) older than 7d"),
        "{}",
        stdout(&output)
    );
    assert_eq!(
        status_of(&app, &stale),
        None,
        "past form.confirm_within: gone"
    );
    assert_eq!(mails_about(&app, &stale), 0, "and its confirmation with it");
    assert_eq!(status_of(&app, &fresh).as_deref(), Some("unconfirmed"));
    assert_eq!(
        status_of(&app, &accepted).as_deref(),
        Some("accepted"),
        "accepted sign-ups keep retention.accepted"
    );
    let purge = audit_of(&app, "purge").pop().unwrap();
    let details: Value = serde_json::from_str(&purge.2).unwrap();
    assert_eq!(details["unconfirmed"], 1, "{details}");
    assert_eq!(details["unconfirmed_after"], "7d", "{details}");
    app.stop().await;
}

#[tokio::test]
async fn unconfirmed_sign_ups_are_exported_only_when_asked_for_by_name() {
    let app = double_opt_in_app().await;
    let unconfirmed = sign_up(&app, "someone@example.org", "SE").await;
    let accepted = sign_up(&app, "kari@example.org", "NO").await;
    let config = write_config(&app);
    let export = |status: &'static str| {
        let config = config.clone();
        async move {
            let output = run_cli(
                &config,
                &["export", "--format", "json", "--status", status],
                None,
            )
            .await;
            assert!(output.status.success(), "{}", stderr(&output));
            stdout(&output)
        }
    };
    for status in ["accepted", "all"] {
        let text = export(status).await;
        assert!(text.contains(&accepted), "{status}: {text}");
        assert!(
            !text.contains(&unconfirmed) && !text.contains("someone@example.org"),
            "{status} leaves unconfirmed sign-ups out: {text}"
        );
    }
    let text = export("unconfirmed").await;
    assert!(text.contains(&unconfirmed), "{text}");
    assert!(!text.contains(&accepted), "{text}");
    let output = run_cli(
        &config,
        &["export", "--status", "unconfirmed", "--followup", "new"],
        None,
    )
    .await;
    assert!(
        !output.status.success(),
        "nobody follows up an unconfirmed sign-up"
    );
    app.stop().await;
}
