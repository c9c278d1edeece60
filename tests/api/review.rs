//! Review of the sign-ups nobody was told of, held during a flood or flagged as spam:
//! `joinform review list|release|discard`, as the real binary does it against a running
//! server's database, and the same on the admin listener (`/admin/review`).

use std::time::Duration;

use serde_json::{Value, json};

use base64::Engine;
use joinform::config::Settings;

use crate::helpers::{TestApp, contains, created_id, spawn_app, spawn_app_with, valid_json};
use crate::operator_helpers::{
    add_token, admin_get, audit_of, connect, run_cli, stderr, stdout, write_config,
};

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

/// The mails the file transport wrote with Message-ID `<id@…>`.
fn mails_about(app: &TestApp, id: &str) -> Vec<String> {
    let expected = format!("Message-ID: <{id}@");
    std::fs::read_dir(&app.settings.mail.file_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
        .filter(|text| text.contains(&expected))
        .collect()
}

/// Whether the file transport wrote a mail with Message-ID `<id@…>` within a while.
async fn mail_written(app: &TestApp, id: &str) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let found = !mails_about(app, id).is_empty();
        if found || tokio::time::Instant::now() >= deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The notifications queued about sign-up `id`, whatever became of them.
fn notifications_about(app: &TestApp, id: &str) -> i64 {
    connect(app)
        .query_row(
            "SELECT count(*) FROM outbox WHERE submission_id = ?1 AND kind = 'notification'",
            [id],
            |row| row.get(0),
        )
        .unwrap()
}

/// A server in a flood from its first sign-up on (`spam.pow_baseline_per_minute` = 1),
/// with easy challenges, after `adjust`; one sign-up (accepted) has come.
async fn flooded(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let app = spawn_app_with(|settings| {
        settings.spam.pow_baseline_per_minute = 1;
        settings.spam.pow_maxnumber = 1_000;
        settings.spam.pow_peak_maxnumber = 1_000;
        adjust(settings);
    })
    .await;
    let first = json!({"name": "First Comer", "email": "first@example.org",
                       "country": "DK", "consent": true});
    let id = created_id(app.post_json(&first).await).await;
    assert_eq!(state_of(&app, &id).unwrap().0, "accepted");
    app
}

/// A sign-up without a proof of work, held in the flood.
async fn held(app: &TestApp, name: &str, local: &str, country: &str) -> String {
    let body = json!({"name": name, "email": format!("{local}@example.org"),
                      "country": country, "consent": true, "message": "Hello"});
    let id = created_id(app.post_json(&body).await).await;
    let (status, followup, _) = state_of(app, &id).unwrap();
    assert_eq!((status.as_str(), followup), ("held", None), "{local}");
    id
}

/// A solved challenge of `app`, as the form's widget posts it in `altcha`.
async fn proof_of_work(app: &TestApp) -> String {
    let challenge: Value = app
        .client
        .get(app.url("/join/challenge"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let payload = json!({
        "algorithm": challenge["algorithm"],
        "challenge": challenge["challenge"],
        "number": crate::proof_of_work::solve(&challenge),
        "salt": challenge["salt"],
        "signature": challenge["signature"],
        "took": 12,
    });
    base64::engine::general_purpose::STANDARD.encode(payload.to_string())
}

/// POST `body` (JSON) to the admin listener's `path` with `token`.
async fn admin_post(app: &TestApp, path: &str, token: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(format!("{}{path}", app.admin_address))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
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
    assert_eq!(
        details,
        json!({"ids": [id], "count": 1, "duplicates": [], "asked_to_confirm": []})
    );
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

/// A sign-up of a double opt-in section is not accepted by a release: its section may
/// hear of a person only once they confirmed, which an operator cannot do for them. It
/// is mailed its confirmation link instead, as on arrival, unless its address had a mail
/// in the last day. Another section's sign-up in the same command is released.
#[tokio::test]
async fn a_double_opt_in_sign_up_is_mailed_a_confirmation_link_on_release() {
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
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains(&format!(
            "of a double opt-in section, mailed a confirmation link: {swede}"
        )),
        "{}",
        stdout(&output)
    );
    assert_eq!(state_of(&app, &swede).unwrap().0, "unconfirmed");
    assert_eq!(state_of(&app, &norwegian).unwrap().0, "accepted");
    assert_eq!(notifications_about(&app, &swede), 0);
    let confirmations: i64 = connect(&app)
        .query_row(
            "SELECT count(*) FROM outbox WHERE submission_id = ?1 AND kind = 'confirmation'",
            [&swede],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(confirmations, 1);
    let audit = audit_of(&app, "release");
    assert_eq!(audit.len(), 1);
    let details: Value = serde_json::from_str(&audit[0].2).unwrap();
    assert_eq!(details["asked_to_confirm"], json!([swede]));

    // The address was mailed today: a second sign-up of it is left for another day.
    let again = spam(&app, "Sven Svensson", "sven", "SE", "Hej igen").await;
    let output = run_cli(&config, &["review", "release", &again], None).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stdout(&output).contains(&format!(
            "of a double opt-in section, left as it is: {again}"
        )),
        "{}",
        stdout(&output)
    );
    assert_eq!(state_of(&app, &again).unwrap().0, "spam");
    assert_eq!(audit_of(&app, "release").len(), 1);

    // The link mailed works as a sign-up's: confirmed, the section hears of them once.
    let confirm =
        crate::visitor_pages::token(&app, joinform::visitor::LinkPurpose::Confirm, &swede);
    let csrf = crate::visitor_pages::visitor_key(&app).csrf_value(&confirm);
    let response = app
        .client
        .post(app.url(&format!("/confirm/{confirm}")))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(state_of(&app, &swede).unwrap().0, "accepted");
    assert_eq!(notifications_about(&app, &swede), 1);
    app.stop().await;
}

#[tokio::test]
async fn held_and_spam_are_listed_together_each_labelled_or_by_status() {
    let app = flooded(|_| {}).await;
    let kari = held(&app, "Kari Nordmann", "kari", "NO").await;
    let bot = spam(&app, "Bot", "bot", "SE", "Buy").await;
    let config = write_config(&app);

    let output = run_cli(&config, &["review", "list"], None).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let line_of = |id: &str| text.lines().find(|line| line.contains(id)).unwrap_or("");
    assert!(line_of(&kari).contains(" held "), "{text}");
    assert!(line_of(&kari).contains("over_baseline,no_proof"), "{text}");
    assert!(line_of(&bot).contains(" spam "), "{text}");
    assert!(
        text.contains("1 held sign-up(s), 1 spam sign-up(s)"),
        "{text}"
    );
    assert!(
        !text.contains("Nordmann") && !text.contains("kari@"),
        "{text}"
    );

    let output = run_cli(&config, &["review", "list", "--status", "held"], None).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains(&kari) && !text.contains(&bot), "{text}");
    assert!(text.contains("1 held sign-up(s);"), "{text}");
    app.stop().await;
}

/// After a flood, the ids alone, as many as asked for, newest first: what a pipe into
/// `review discard` (or `release`) needs, and nothing else on the line.
#[tokio::test]
async fn review_list_gives_the_ids_alone_for_a_pipe_and_as_many_as_asked() {
    let app = flooded(|_| {}).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(held(&app, "Bot", &format!("bot{n}"), "NO").await);
    }
    let config = write_config(&app);
    let output = run_cli(
        &config,
        &[
            "review",
            "list",
            "--status",
            "held",
            "--ids-only",
            "--limit",
            "2",
        ],
        None,
    )
    .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let listed: Vec<String> = stdout(&output).lines().map(str::to_owned).collect();
    assert_eq!(listed, [ids[2].clone(), ids[1].clone()], "newest first");
    let mut discard = vec!["review", "discard"];
    discard.extend(listed.iter().map(String::as_str));
    let output = run_cli(&config, &discard, None).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let output = run_cli(&config, &["review", "list", "--ids-only"], None).await;
    assert_eq!(stdout(&output).trim(), ids[0], "only the oldest is left");
    let output = run_cli(&config, &["review", "list", "--limit", "0"], None).await;
    assert!(!output.status.success(), "a limit of 0 is refused");
    app.stop().await;
}

/// The point of a review: a released sign-up reaches its section, exactly once.
#[tokio::test]
async fn a_released_held_sign_up_notifies_its_section_once() {
    let app = flooded(|_| {}).await;
    let kari = held(&app, "Kari Nordmann", "kari", "NO").await;
    assert_eq!(notifications_about(&app, &kari), 0);
    let config = write_config(&app);

    let output = run_cli(&config, &["review", "release", &kari], None).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("1 sign-up(s) released"));
    let (status, followup, reasons) = state_of(&app, &kari).unwrap();
    assert_eq!(
        (status.as_str(), followup.as_deref()),
        ("accepted", Some("new"))
    );
    assert_eq!(reasons.as_deref(), Some(r#"["over_baseline","no_proof"]"#));
    app.delivery_nudge().await;
    assert!(
        mail_written(&app, &kari).await,
        "no notification for {kari}"
    );
    let mails = mails_about(&app, &kari);
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("oslo@example.org"), "{}", mails[0]);

    // A second release finds nothing to release: nothing queued, nothing audited.
    let output = run_cli(&config, &["review", "release", &kari], None).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).contains(&format!("left as it is: {kari}")));
    app.delivery_nudge().await;
    assert_eq!(notifications_about(&app, &kari), 1);
    assert_eq!(mails_about(&app, &kari).len(), 1);
    let audit = audit_of(&app, "release");
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].0, "cli");
    let details: Value = serde_json::from_str(&audit[0].2).unwrap();
    assert_eq!(
        details,
        json!({"ids": [kari], "count": 1, "duplicates": [], "asked_to_confirm": []})
    );
    app.stop().await;
}

/// Held, then signed up again with a proof of work and accepted: the section heard of
/// the person already, so the held sign-up is released as a duplicate, not notified.
#[tokio::test]
async fn a_held_sign_up_whose_address_was_accepted_meanwhile_becomes_a_duplicate() {
    let app = flooded(|_| {}).await;
    let kari = held(&app, "Kari Nordmann", "kari", "NO").await;
    let mut again = valid_json();
    again["altcha"] = proof_of_work(&app).await.into();
    let accepted = created_id(app.post_json(&again).await).await;
    assert_eq!(state_of(&app, &accepted).unwrap().0, "accepted");
    let config = write_config(&app);

    let output = run_cli(&config, &["review", "release", &kari], None).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("0 sign-up(s) released"), "{text}");
    assert!(
        text.contains(&format!("made a duplicate, not notified: {kari}")),
        "{text}"
    );
    assert_eq!(state_of(&app, &kari).unwrap().0, "duplicate");
    assert_eq!(notifications_about(&app, &kari), 0);
    assert_eq!(notifications_about(&app, &accepted), 1);
    let audit = audit_of(&app, "release");
    assert_eq!(audit.len(), 1, "{audit:?}");
    let details: Value = serde_json::from_str(&audit[0].2).unwrap();
    assert_eq!(
        details,
        json!({"ids": [kari], "count": 1, "duplicates": [kari], "asked_to_confirm": []})
    );
    app.stop().await;
}

#[tokio::test]
async fn a_discarded_held_sign_up_is_erased_and_audited() {
    let app = flooded(|_| {}).await;
    let kari = held(&app, "Kari Nordmann", "kari", "NO").await;
    let sven = held(&app, "Sven Svensson", "sven", "SE").await;
    let config = write_config(&app);
    let output = run_cli(&config, &["review", "discard", &kari], None).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("1 sign-up(s) erased"));
    assert!(state_of(&app, &kari).is_none());
    assert_eq!(state_of(&app, &sven).unwrap().0, "held");
    assert!(!database_files_contain(&app, "Nordmann"));
    let audit = audit_of(&app, "discard");
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].0, "cli");
    let details: Value = serde_json::from_str(&audit[0].2).unwrap();
    assert_eq!(details, json!({"ids": [kari], "count": 1}));
    app.stop().await;
}

/// `GET /admin/review`, as an unscoped and a section-scoped token see it.
#[tokio::test]
async fn the_admin_review_lists_within_the_tokens_sections() {
    let mut tokens = (String::new(), String::new());
    let app = flooded(|settings| {
        tokens = (
            add_token(settings, "ops", &[]),
            add_token(settings, "oslo", &["Norway"]),
        );
    })
    .await;
    let (ops, oslo) = tokens;
    let kari = held(&app, "Kari Nordmann", "kari", "NO").await;
    let sven = held(&app, "Sven Svensson", "sven", "SE").await;
    let bot = spam(&app, "Bot", "bot", "NO", "Buy").await;

    let response = admin_get(&app, "/admin/review", &ops).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (&body["total"], &body["held"], &body["spam"]),
        (&json!(3), &json!(2), &json!(1))
    );
    let ids: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [bot.as_str(), sven.as_str(), kari.as_str()],
        "newest first"
    );
    let item = &body["items"][2];
    assert_eq!(item["first_name"], "Kari");
    assert_eq!(item["section"], "Norway");
    assert_eq!(item["country"], "NO");
    assert_eq!(item["status"], "held");
    assert_eq!(item["reasons"], json!(["over_baseline", "no_proof"]));
    assert!(!body.to_string().contains("kari@") && !body.to_string().contains("Nordmann"));

    let body: Value = admin_get(&app, "/admin/review?status=held", &oslo)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["total"], 1);
    assert_eq!(body["items"][0]["id"], kari.as_str());
    let body: Value = admin_get(&app, "/admin/review?limit=1", &ops)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (body["items"].as_array().unwrap().len(), &body["total"]),
        (1, &json!(3))
    );
    // Naming another section is refused, as for exports.
    let response = admin_get(&app, "/admin/review?section=Sweden", &oslo).await;
    assert_eq!(response.status(), 403);
    app.stop().await;
}

/// Release and discard on the admin listener: the outcome per id, audited by the
/// token's name; another section's id is answered exactly as an unknown one, and left
/// as it is.
#[tokio::test]
async fn the_admin_review_releases_and_discards_within_the_tokens_sections() {
    let mut tokens = (String::new(), String::new());
    let app = flooded(|settings| {
        tokens = (
            add_token(settings, "ops", &[]),
            add_token(settings, "oslo", &["Norway"]),
        );
    })
    .await;
    let (ops, oslo) = tokens;
    let kari = held(&app, "Kari Nordmann", "kari", "NO").await;
    let sven = held(&app, "Sven Svensson", "sven", "SE").await;
    let bot = spam(&app, "Bot", "bot", "NO", "Buy").await;
    let unknown = uuid::Uuid::now_v7().to_string();

    let response = admin_post(
        &app,
        "/admin/review/release",
        &oslo,
        &json!({"ids": [kari, sven, unknown]}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"results": [
            {"id": kari, "outcome": "released"},
            {"id": sven, "outcome": "not_found"},
            {"id": unknown, "outcome": "not_found"},
        ]})
    );
    assert_eq!(state_of(&app, &kari).unwrap().0, "accepted");
    assert_eq!(state_of(&app, &sven).unwrap().0, "held");
    assert_eq!(notifications_about(&app, &kari), 1);
    assert_eq!(notifications_about(&app, &sven), 0);
    let audit = audit_of(&app, "release");
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].0, "oslo");
    assert!(!audit[0].2.contains(&sven), "{}", audit[0].2);

    // Released once: the second time it is no held sign-up any more.
    let body: Value = admin_post(
        &app,
        "/admin/review/release",
        &oslo,
        &json!({"ids": [kari]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(body["results"][0]["outcome"], "not_found");
    assert_eq!(notifications_about(&app, &kari), 1);

    let body: Value = admin_post(
        &app,
        "/admin/review/discard",
        &oslo,
        &json!({"ids": [sven, bot]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        body,
        json!({"results": [
            {"id": sven, "outcome": "not_found"},
            {"id": bot, "outcome": "discarded"},
        ]})
    );
    assert_eq!(state_of(&app, &sven).unwrap().0, "held");
    assert!(state_of(&app, &bot).is_none());
    let body: Value = admin_post(&app, "/admin/review/discard", &ops, &json!({"ids": [sven]}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["results"][0]["outcome"], "discarded");
    assert!(state_of(&app, &sven).is_none());
    let actors: Vec<(String, Value)> = audit_of(&app, "discard")
        .into_iter()
        .map(|row| (row.0, serde_json::from_str(&row.2).unwrap()))
        .collect();
    assert_eq!(
        actors,
        [
            ("oslo".to_owned(), json!({"ids": [bot], "count": 1})),
            ("ops".to_owned(), json!({"ids": [sven], "count": 1})),
        ]
    );
    app.stop().await;
}

/// What the admin review refuses: each a 4xx naming what is wrong, nothing changed.
#[tokio::test]
async fn the_admin_review_refuses_bad_requests_without_changing_anything() {
    let mut token = String::new();
    let app = flooded(|settings| token = add_token(settings, "ops", &[])).await;
    let kari = held(&app, "Kari Nordmann", "kari", "NO").await;
    let too_many: Vec<String> = (0..1001)
        .map(|_| uuid::Uuid::now_v7().to_string())
        .collect();
    let post = |path: &str| {
        app.client
            .post(format!("{}{path}", app.admin_address))
            .bearer_auth(&token)
    };
    for path in ["/admin/review/release", "/admin/review/discard"] {
        let cases = [
            (
                "no ids",
                post(path).json(&json!({"ids": []})),
                400,
                Some("ids"),
            ),
            (
                "too many ids",
                post(path).json(&json!({"ids": too_many})),
                400,
                Some("ids"),
            ),
            (
                "not an id",
                post(path).json(&json!({"ids": [kari, "x"]})),
                400,
                Some("ids"),
            ),
            (
                "ids not a list",
                post(path).json(&json!({"ids": kari})),
                400,
                Some("ids"),
            ),
            (
                "an unknown field",
                post(path).json(&json!({"ids": [kari], "all": true})),
                400,
                Some("ids"),
            ),
            (
                "not JSON",
                post(path)
                    .header("content-type", "application/json")
                    .body("{"),
                400,
                Some("ids"),
            ),
            (
                "a form",
                post(path).form(&[("ids", kari.as_str())]),
                415,
                None,
            ),
            (
                "no token",
                app.client
                    .post(format!("{}{path}", app.admin_address))
                    .json(&json!({"ids": [kari]})),
                401,
                None,
            ),
        ];
        for (case, request, status, field) in cases {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), status, "{path}: {case}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["field"].as_str(), field, "{path}: {case}: {body}");
            assert!(
                !body["message"].as_str().unwrap().contains(&kari),
                "{case}: {body}"
            );
        }
    }
    for (query, field) in [
        ("status=accepted", "status"),
        ("limit=0", "limit"),
        ("limit=x", "limit"),
    ] {
        let response = admin_get(&app, &format!("/admin/review?{query}"), &token).await;
        assert_eq!(response.status(), 400, "{query}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["field"], field, "{query}: {body}");
    }
    assert_eq!(
        admin_get(&app, "/admin/review?colour=red", &token)
            .await
            .status(),
        400
    );
    assert_eq!(state_of(&app, &kari).unwrap().0, "held");
    assert!(audit_of(&app, "release").is_empty() && audit_of(&app, "discard").is_empty());
    app.stop().await;
}
