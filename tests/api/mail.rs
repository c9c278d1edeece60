//! Notifications: routing, the message an organiser gets, and delivery through a real
//! SMTP server that fails in the ways real ones do.

use std::collections::VecDeque;
use std::time::Duration;

use joinform::config::ExtraFieldSettings;
use mail_parser::MessageParser;
use serde_json::json;

use crate::helpers::{TestApp, created_id, spawn_app_in, spawn_app_with, test_settings, use_smtp};
use crate::smtp::{Behaviour, Captured, SmtpServer, closed_port};

const WAIT: Duration = Duration::from_secs(10);

fn normal() -> Behaviour {
    Behaviour::Scripted(VecDeque::new())
}

async fn app_with_smtp(port: u16) -> TestApp {
    spawn_app_with(|settings| use_smtp(settings, port)).await
}

fn submission(name: &str, email: &str, country: &str) -> serde_json::Value {
    json!({"name": name, "email": email, "country": country, "consent": true})
}

fn parse(captured: &Captured) -> mail_parser::Message<'_> {
    MessageParser::default()
        .parse(&captured.data)
        .expect("a parsable message")
}

fn addresses(address: Option<&mail_parser::Address<'_>>) -> Vec<(String, String)> {
    address
        .map(|a| {
            a.iter()
                .map(|addr| {
                    (
                        addr.name().unwrap_or_default().to_owned(),
                        addr.address().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The value on the body line labelled `label`, without the padding.
fn labelled<'a>(text: &'a str, label: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{label}:")))
        .map(str::trim)
}

#[tokio::test]
async fn a_sign_up_is_mailed_to_its_sections_contacts_with_reply_to_the_visitor() {
    let smtp = SmtpServer::start(normal()).await;
    let app = spawn_app_with(|settings| {
        use_smtp(settings, smtp.port());
        settings.form.extra_fields.push(ExtraFieldSettings {
            name: "organisation".into(),
            max_length: 100,
            required: false,
        });
    })
    .await;
    let mut body = submission("Øyvind Ærø", "oyvind@bücher.de", "no");
    body["phone"] = json!("+47 22 33 44 55");
    body["city"] = json!("Tromsø");
    body["message"] = json!("Hei!\nJeg vil gjerne bli med.");
    body["language"] = json!("nb");
    body["organisation"] = json!("Fagforbundet Tromsø");
    let id = created_id(app.post_json(&body).await).await;
    let stored = app.row(&id).unwrap();
    assert_eq!(stored.section, "Norway");

    let messages = smtp.wait_for(1, WAIT).await;
    assert_eq!(messages.len(), 1);
    let captured = &messages[0];
    assert_eq!(
        captured.rcpt_to,
        ["<oslo@example.org>"],
        "only the section's contacts"
    );
    assert_eq!(captured.mail_from.trim(), "<joinform@example.org>");
    let message = parse(captured);
    assert_eq!(
        addresses(message.to()),
        [("Oslo office".into(), "oslo@example.org".into())]
    );
    assert_eq!(
        addresses(message.from()),
        [("joinform".into(), "joinform@example.org".into())]
    );
    assert_eq!(
        addresses(message.reply_to()),
        [("Øyvind Ærø".into(), "oyvind@xn--bcher-kva.de".into())]
    );
    assert_eq!(
        message.subject(),
        Some("Ny innmelding: Øyvind Ærø (Norway)")
    );
    let text = message.body_text(0).unwrap().replace("\r\n", "\n");
    // Every field, labelled in the section's language, then where and when.
    let received = stored.created_at.to_string();
    assert!(received.ends_with('Z'), "stored in UTC: {received}");
    for (label, value) in [
        ("Navn", "Øyvind Ærø"),
        ("E-post", "oyvind@bücher.de"),
        ("Telefon", "+47 22 33 44 55"),
        ("Sted", "Tromsø"),
        // Organisers read the country's name, in the mail's language, with its code.
        ("Land", "Norge (NO)"),
        ("Språk", "nb"),
        ("Samtykke til å bli kontaktet", "ja"),
        ("Innmeldings-id", id.as_str()),
        ("Mottatt (UTC)", &received),
        ("Lag", "Norway"),
    ] {
        assert_eq!(labelled(&text, label), Some(value), "{label} in:\n{text}");
    }
    assert!(
        text.contains("\nMelding:\nHei!\nJeg vil gjerne bli med.\n"),
        "{text}"
    );
    assert!(
        text.contains("\nAndre svar:\n  organisation: Fagforbundet Tromsø\n"),
        "{text}"
    );
    let message_id = message.message_id().unwrap().to_owned();
    assert!(message_id.ends_with("@example.org"), "{message_id}");
    let header_names: Vec<String> = message
        .headers()
        .iter()
        .map(|h| h.name.as_str().to_ascii_lowercase())
        .collect();
    assert!(header_names.contains(&"auto-submitted".to_owned()));
    assert!(header_names.contains(&"date".to_owned()));
    assert_eq!(
        message.header_raw("MIME-Version").map(str::trim),
        Some("1.0"),
        "RFC 2045 §4"
    );

    let outbox = app.wait_for_outbox(WAIT, |row| row.0 == "sent").await;
    assert_eq!(outbox, [("sent".into(), 1, None)]);
    app.stop().await;
}

#[tokio::test]
async fn uncovered_countries_go_to_the_fallback_and_names_in_every_script_arrive_intact() {
    let smtp = SmtpServer::start(normal()).await;
    let app = app_with_smtp(smtp.port()).await;
    let people = [
        ("Нурсултан Абишев", "KZ"),
        ("李小龙", "CN"),
        ("محمد الأحمد", "EG"),
        ("Kari Nordmann", "SE"),
    ];
    for (index, (name, country)) in people.iter().enumerate() {
        let email = format!("person{index}@example.com");
        created_id(app.post_json(&submission(name, &email, country)).await).await;
    }
    let messages = smtp.wait_for(people.len(), WAIT).await;
    assert_eq!(messages.len(), people.len());
    for (name, country) in people {
        let captured = messages
            .iter()
            .find(|m| addresses(parse(m).reply_to())[0].0 == name)
            .unwrap_or_else(|| panic!("no message for {name}"));
        let message = parse(captured);
        let subject = message.subject().unwrap();
        if country == "SE" {
            // Sweden's language (sv) has no template: English.
            assert_eq!(subject, format!("New member sign-up: {name} (Sweden)"));
            assert_eq!(
                captured.rcpt_to,
                ["<stockholm@example.org>", "<members.se@example.org>"]
            );
        } else {
            assert_eq!(
                subject,
                format!("New member sign-up: {name} (International)")
            );
            assert_eq!(captured.rcpt_to, ["<international@example.org>"]);
        }
        let text = message.body_text(0).unwrap().replace("\r\n", "\n");
        assert!(text.contains(name));
        // English mails name the country in English: the Swedish section has no
        // template, so its mail and its country names are English.
        let country_name = match country {
            "KZ" => "Kazakhstan",
            "CN" => "China",
            "EG" => "Egypt",
            _ => "Sweden",
        };
        assert_eq!(
            labelled(&text, "Country"),
            Some(format!("{country_name} ({country})").as_str()),
            "{text}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn no_field_can_add_change_or_remove_a_header() {
    let smtp = SmtpServer::start(normal()).await;
    // These values would be spam; here they must reach the message builder.
    let app = spawn_app_with(|settings| {
        use_smtp(settings, smtp.port());
        settings.spam.threshold = 1_000_000;
        settings.form.extra_fields.push(ExtraFieldSettings {
            name: "organisation".into(),
            max_length: 100,
            required: false,
        });
    })
    .await;
    let attempts = [
        json!({"name": "Kari", "city": "=?utf-8?q?x=0D=0ABcc:_evil@example.com?=",
               "organisation": "=?utf-8?b?DQpCY2M6IGV2aWxAZXhhbXBsZS5jb20=?="}),
        json!({"name": "Kari\" <evil@example.com>, \"Ola", "city": "Bcc: evil@example.com"}),
        json!({"name": "Kari", "message": "Hello\r\nBcc: evil@example.com\r\n\r\nTo: evil@example.com"}),
        json!({"name": "Kari", "message": ".\r\nMAIL FROM:<evil@example.com>\r\n"}),
        json!({"name": "Kari, evil@example.com", "phone": "+47 22 33 44 55",
               "organisation": "Bcc: evil@example.com"}),
        json!({"name": "Ola <evil@example.com>", "language": "nb\r\nBcc: evil@example.com"}),
    ];
    let mut sent = Vec::new();
    for (index, fields) in attempts.iter().enumerate() {
        let email = format!("visitor{index}@example.net");
        let mut body = submission("", &email, "NO");
        for (key, value) in fields.as_object().unwrap() {
            body[key] = value.clone();
        }
        let response = app.post_json(&body).await;
        if fields.get("language").is_some() {
            // A line break in the language is refused before anything is stored.
            assert_eq!(response.status(), 422);
            continue;
        }
        created_id(response).await;
        sent.push((fields["name"].as_str().unwrap().to_owned(), email));
    }
    let messages = smtp.wait_for(sent.len(), WAIT).await;
    assert_eq!(messages.len(), sent.len());
    for captured in &messages {
        assert_eq!(captured.rcpt_to, ["<oslo@example.org>"]);
        let message = parse(captured);
        let names: Vec<String> = message
            .headers()
            .iter()
            .map(|h| h.name.as_str().to_ascii_lowercase())
            .collect();
        let count = |name: &str| names.iter().filter(|n| *n == name).count();
        assert_eq!(count("to"), 1, "{names:?}");
        assert_eq!(count("from"), 1);
        assert_eq!(count("reply-to"), 1);
        assert_eq!(count("subject"), 1);
        assert_eq!(count("cc") + count("bcc"), 0, "{names:?}");
        let expected = [
            "from",
            "reply-to",
            "subject",
            "message-id",
            "content-type",
            "auto-submitted",
            "date",
            "to",
            "mime-version",
            "content-transfer-encoding",
        ];
        for name in &names {
            assert!(
                expected.contains(&name.as_str()),
                "unexpected header {name}"
            );
        }
        assert_eq!(
            addresses(message.to()),
            [("Oslo office".into(), "oslo@example.org".into())]
        );
        // Decoded, the visitor's name reads exactly as typed and stays one mailbox.
        let reply_to = addresses(message.reply_to());
        let (name, email) = sent
            .iter()
            .find(|(_, email)| reply_to.first().is_some_and(|r| &r.1 == email))
            .unwrap_or_else(|| panic!("no attempt for Reply-To {reply_to:?}"));
        assert_eq!(reply_to, [(name.clone(), email.clone())]);
        assert_eq!(
            message.subject(),
            Some(format!("Ny innmelding: {name} (Norway)").as_str())
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn a_mail_server_that_is_down_does_not_stop_sign_ups_and_gets_the_mail_later() {
    let address = closed_port();
    let app = app_with_smtp(address.port()).await;
    let started = std::time::Instant::now();
    created_id(
        app.post_json(&submission("Kari", "kari@example.org", "NO"))
            .await,
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the response never waits for SMTP"
    );
    let rows = app.wait_for_outbox(WAIT, |row| row.1 >= 1).await;
    assert_eq!(rows[0].0, "pending");
    assert!(
        rows[0].2.as_deref().unwrap().contains("connection"),
        "{rows:?}"
    );

    let smtp = SmtpServer::start_on(address, normal()).await;
    let messages = smtp.wait_for(1, WAIT).await;
    assert_eq!(messages.len(), 1);
    let rows = app.wait_for_outbox(WAIT, |row| row.0 == "sent").await;
    assert_eq!(rows[0].0, "sent");
    app.stop().await;
}

#[tokio::test]
async fn a_4xx_answer_is_retried_and_the_retry_keeps_the_message_id() {
    let smtp = SmtpServer::start(Behaviour::Scripted(VecDeque::from([
        "451 4.3.0 try again later".to_owned(),
    ])))
    .await;
    let app = app_with_smtp(smtp.port()).await;
    created_id(
        app.post_json(&submission("Kari", "kari@example.org", "NO"))
            .await,
    )
    .await;
    let messages = smtp.wait_for(1, WAIT).await;
    assert_eq!(messages.len(), 1, "delivered on retry");
    let rows = app.wait_for_outbox(WAIT, |row| row.0 == "sent").await;
    assert_eq!(rows, [("sent".into(), 2, None)]);
    let connection = rusqlite::Connection::open(&app.db_path).unwrap();
    let stored_id: String = connection
        .query_row("SELECT message_id FROM outbox", [], |row| row.get(0))
        .unwrap();
    assert_eq!(
        format!("<{}>", parse(&messages[0]).message_id().unwrap()),
        stored_id
    );
    app.stop().await;
}

#[tokio::test]
async fn a_5xx_answer_fails_the_row_at_once() {
    let smtp = SmtpServer::start(Behaviour::Scripted(VecDeque::from([
        "550 5.1.1 mailbox unavailable".to_owned(),
    ])))
    .await;
    let app = app_with_smtp(smtp.port()).await;
    created_id(
        app.post_json(&submission("Kari", "kari@example.org", "NO"))
            .await,
    )
    .await;
    let rows = app.wait_for_outbox(WAIT, |row| row.0 == "failed").await;
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].0.as_str(), rows[0].1), ("failed", 1));
    assert!(rows[0].2.as_deref().unwrap().contains("550"), "{rows:?}");
    // The server would accept a retry now; none comes.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(smtp.messages().is_empty());
    assert_eq!(app.outbox()[0].1, 1);

    // The operator puts it back; it is delivered.
    let report = joinform::cli::outbox(&app.settings, Some(&[]))
        .unwrap()
        .text;
    assert!(report.contains("1 failed row(s) put back"), "{report}");
    assert!(
        !report.contains("kari@example.org"),
        "no personal data: {report}"
    );
    app.delivery_nudge().await;
    assert_eq!(smtp.wait_for(1, WAIT).await.len(), 1);
    let rows = app.wait_for_outbox(WAIT, |row| row.0 == "sent").await;
    assert_eq!(rows, [("sent".into(), 1, None)], "retry counts afresh");
    app.stop().await;
}

#[tokio::test]
async fn a_stalling_server_times_out_and_sign_ups_are_unaffected() {
    let smtp = SmtpServer::start(Behaviour::Silent).await;
    let app = app_with_smtp(smtp.port()).await;
    created_id(
        app.post_json(&submission("Kari", "kari@example.org", "NO"))
            .await,
    )
    .await;
    // While the worker waits on the silent server, the HTTP path answers at once.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for n in 0..5 {
        let started = std::time::Instant::now();
        created_id(
            app.post_json(&submission("Ola", &format!("ola{n}@example.org"), "NO"))
                .await,
        )
        .await;
        assert!(started.elapsed() < Duration::from_millis(500));
    }
    let rows = app.wait_for_outbox(WAIT, |row| row.1 >= 1).await;
    let first = &rows[0];
    assert_eq!(first.0, "pending");
    let error = first.2.as_deref().unwrap();
    assert!(
        error.contains("timeout") || error.contains("longer than"),
        "{error}"
    );
    app.stop().await;
    smtp.stop();
}

#[tokio::test]
async fn pending_rows_are_delivered_after_a_restart() {
    let address = closed_port();
    let app = app_with_smtp(address.port()).await;
    created_id(
        app.post_json(&submission("Kari", "kari@example.org", "NO"))
            .await,
    )
    .await;
    app.wait_for_outbox(WAIT, |row| row.1 >= 1).await;
    let settings = app.settings.clone();
    let dir = app.stop().await;
    // What the stopped server left: one pending row that has failed at least once.
    let before = crate::helpers::outbox_rows(&settings.storage.database);
    assert_eq!(before.len(), 1, "{before:?}");
    let (state, attempts, error) = &before[0];
    assert_eq!(state, "pending", "{before:?}");
    assert!(*attempts >= 1, "{before:?}");
    assert!(
        error.as_deref().unwrap().contains("connection"),
        "{before:?}"
    );

    let smtp = SmtpServer::start_on(address, normal()).await;
    let app = spawn_app_in(dir, settings);
    assert_eq!(smtp.wait_for(1, WAIT).await.len(), 1);
    let after = app.wait_for_outbox(WAIT, |row| row.0 == "sent").await;
    // Sent by the new server's first attempt, and the old error is gone.
    assert_eq!(after, [("sent".into(), attempts + 1, None)]);
    app.stop().await;
}

#[tokio::test]
async fn the_file_transport_writes_eml_files_from_the_configured_sender() {
    let app = spawn_app_with(|settings| {
        settings.mail.from = "Membership <join@members.example.net>".into();
    })
    .await;
    let mail_dir = app.settings.mail.file_dir.clone();
    let id = created_id(
        app.post_json(&submission("Kari", "kari@example.org", "GB"))
            .await,
    )
    .await;
    let rows = app.wait_for_outbox(WAIT, |row| row.0 == "sent").await;
    assert_eq!(rows[0].0, "sent");
    let files: Vec<_> = std::fs::read_dir(&mail_dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
        .collect();
    assert_eq!(files.len(), 1);
    let bytes = std::fs::read(&files[0]).unwrap();
    let message = MessageParser::default().parse(&bytes).unwrap();
    assert_eq!(addresses(message.to())[0].1, "london@example.org");
    assert_eq!(addresses(message.reply_to())[0].1, "kari@example.org");
    assert_eq!(
        addresses(message.from()),
        [("Membership".into(), "join@members.example.net".into())]
    );
    // The Message-ID names the configured sender's domain, not the host's.
    assert_eq!(
        message.message_id(),
        Some(format!("{id}@members.example.net").as_str())
    );
    let text = message.body_text(0).unwrap().replace("\r\n", "\n");
    assert_eq!(
        labelled(&text, "Country"),
        Some("United Kingdom (GB)"),
        "{text}"
    );
    // stop() checks the file as a standard MIME message (MIME-Version, Date, ...).
    app.stop().await;
}

#[test]
fn check_config_refuses_bad_routing_and_prints_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let settings = test_settings(&dir);
    let report = joinform::cli::check_config(
        &settings,
        &joinform::config::ConfigSource::DefaultPath,
        &joinform::config::Provenance::default(),
    )
    .unwrap();
    assert!(
        report.contains("Norway [nb]: NO SJ -> Oslo office <oslo@example.org>"),
        "{report}"
    );
    assert!(report.contains("(fallback)"), "{report}");

    let mut bad = settings.clone();
    bad.fallback = None;
    let error = joinform::cli::check_config(
        &bad,
        &joinform::config::ConfigSource::DefaultPath,
        &joinform::config::Provenance::default(),
    )
    .unwrap_err();
    assert!(error.to_string().contains("fallback"), "{error}");
    let mut bad = settings;
    bad.mail.from = "not a mailbox".into();
    let error = joinform::cli::check_config(
        &bad,
        &joinform::config::ConfigSource::DefaultPath,
        &joinform::config::Provenance::default(),
    )
    .unwrap_err();
    assert!(error.to_string().contains("mail.from"), "{error}");
}

#[tokio::test]
async fn a_notification_undeliverable_past_give_up_after_is_failed() {
    let address = closed_port();
    let app = spawn_app_with(|settings| {
        use_smtp(settings, address.port());
        settings.mail.give_up_after = "2s".parse().unwrap();
    })
    .await;
    created_id(
        app.post_json(&submission("Kari", "kari@example.org", "NO"))
            .await,
    )
    .await;
    let rows = app.wait_for_outbox(WAIT, |row| row.0 == "failed").await;
    assert_eq!(rows[0].0, "failed", "{rows:?}");
    assert!(rows[0].1 >= 2, "retried before giving up: {rows:?}");
    assert!(
        rows[0].2.as_deref().unwrap().starts_with("gave up after"),
        "{rows:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_notification_erased_while_it_waits_its_turn_is_not_sent() {
    let smtp = SmtpServer::start(normal()).await;
    // One send a second: a notification read with its batch waits about a second for
    // its turn, time enough to erase its submission meanwhile.
    let app = spawn_app_with(|settings| {
        use_smtp(settings, smtp.port());
        settings.mail.max_per_second = 1;
    })
    .await;
    created_id(
        app.post_json(&submission("Anna", "anna@example.org", "NO"))
            .await,
    )
    .await;
    assert_eq!(
        smtp.wait_for(1, WAIT).await.len(),
        1,
        "the first goes at once"
    );
    let erased = created_id(
        app.post_json(&submission("Berit", "berit@example.org", "NO"))
            .await,
    )
    .await;
    created_id(
        app.post_json(&submission("Cato", "cato@example.org", "NO"))
            .await,
    )
    .await;
    // Erased as `forget` would, well before its turn comes (a second after the first).
    let connection = rusqlite::Connection::open(&app.db_path).unwrap();
    connection
        .pragma_update(None, "foreign_keys", "ON")
        .unwrap();
    connection
        .execute("DELETE FROM submissions WHERE id = ?1", [&erased])
        .unwrap();
    smtp.wait_for(2, WAIT).await;
    // Time for a third send, had there been one.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let messages: Vec<String> = smtp
        .messages()
        .iter()
        .map(|m| String::from_utf8_lossy(&m.data).into_owned())
        .collect();
    assert_eq!(messages.len(), 2, "the erased one is not sent");
    assert!(messages.iter().all(|m| !m.contains("berit@example.org")));
    assert!(
        messages[1].contains("cato@example.org"),
        "the rest still goes"
    );
    app.stop().await;
}
