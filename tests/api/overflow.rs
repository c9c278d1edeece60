//! Notification overflow (issue 17): past `mail.max_notifications_per_section_per_hour`
//! a section's notifications wait and go out listed in one overflow mail, at most one an
//! hour; the same mail counts the sign-ups a flood left held, and names none of them.
//! Through the real server and the test SMTP server.

use std::time::Duration;

use futures_util::future::join_all;
use joinform::config::{DigestSchedule, Settings};
use joinform::domain::Timestamp;
use serde_json::{Value, json};

use crate::helpers::{TestApp, created_id, spawn_app_with, use_smtp};
use crate::operator_helpers::{connect, run_cli, stderr, write_config};
use crate::smtp::SmtpServer;
use crate::visitor_mails::{Mail, distinct, mails_settled, smtp};

const PUBLIC_URL: &str = "https://join.example.org";
const LONDON: &str = "london@example.org";
const STOCKHOLM: &str = "stockholm@example.org";
/// An overflow mail's subject starts so in English.
const SUMMARY: &str = "Sign-up summary for United Kingdom";

/// A server mailing through `smtp` at one mail a second (so that a burst of sign-ups is
/// all stored before the worker, three sends on, builds the overflow mail), with a
/// section cap of `cap` and `adjust` applied last.
async fn overflow_app(smtp: &SmtpServer, cap: u32, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with(|settings| {
        use_smtp(settings, smtp.port());
        settings.mail.max_notifications_per_section_per_hour = cap;
        settings.mail.max_per_second = 1;
        settings.followup.enabled = Some(false);
        adjust(settings);
    })
    .await
}

/// Sign-up `n` from the United Kingdom (or `country`): a name and address found
/// nowhere else, every field a notification shows.
fn person(n: usize, country: &str) -> Value {
    json!({
        "name": format!("Person{n:02} Overflow"),
        "email": format!("person{n:02}@example.org"),
        "country": country,
        "phone": "+44 20 7946 0000",
        "city": "Leeds",
        "message": format!("Line one of {n:02}.\nLine two."),
        "consent": true,
    })
}

fn name(n: usize) -> String {
    format!("Person{n:02} Overflow")
}

fn email(n: usize) -> String {
    format!("person{n:02}@example.org")
}

/// Posts the sign-ups all at once; their ids, in the order given.
async fn sign_up_all(app: &TestApp, people: &[Value]) -> Vec<String> {
    join_all(
        people
            .iter()
            .map(|body| async move { created_id(app.post_json(body).await).await }),
    )
    .await
}

fn overflow_mails(mails: &[Mail]) -> Vec<&Mail> {
    mails
        .iter()
        .filter(|mail| mail.subject.starts_with(SUMMARY))
        .collect()
}

/// (kind, state, next_attempt_at, sent_at) of each outbox row of `section`.
fn outbox_of(app: &TestApp, section: &str) -> Vec<(String, String, Timestamp, Option<Timestamp>)> {
    connect(app)
        .prepare(
            "SELECT kind, state, next_attempt_at, sent_at FROM outbox WHERE section = ?1
             ORDER BY created_at, id",
        )
        .unwrap()
        .query_map([section], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The state of sign-up `id`'s notification.
fn notification_state(app: &TestApp, id: &str) -> String {
    connect(app)
        .query_row(
            "SELECT state FROM outbox WHERE id = ?1 AND kind = 'notification'",
            [id],
            |row| row.get(0),
        )
        .unwrap()
}

/// Waits (at most 30 s) until `done` holds of the section's outbox.
async fn wait_until(
    app: &TestApp,
    section: &str,
    done: impl Fn(&[(String, String, Timestamp, Option<Timestamp>)]) -> bool,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !done(&outbox_of(app, section)) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Cap 3, ten sign-ups to one section: three notifications one by one, then one mail
/// listing the other seven, each as its notification would have told of it; another
/// section is notified meanwhile as usual. Later sign-ups wait for the next overflow
/// mail, an hour after the first; every sign-up is in exactly one mail or waiting.
#[tokio::test]
async fn past_the_cap_a_sections_notifications_go_out_listed_in_one_mail_an_hour() {
    let smtp = smtp().await;
    let app = overflow_app(&smtp, 3, |settings| {
        // With follow-up on, each listed sign-up carries its own link.
        settings.server.public_url = Some(format!("{PUBLIC_URL}/"));
        settings.followup.enabled = Some(true);
        settings.followup.digest = DigestSchedule::Off;
    })
    .await;
    let mut people: Vec<Value> = (1..=10).map(|n| person(n, "GB")).collect();
    // Sweden's sign-up among them.
    people.insert(5, person(99, "SE"));
    let mut ids = sign_up_all(&app, &people).await;
    let sweden_id = ids.remove(5);

    let mails = mails_settled(&smtp, 5).await;
    assert_eq!(mails.len(), 5, "{:#?}", subjects(&mails));
    let sweden: Vec<&Mail> = mails.iter().filter(|mail| mail.is_to(STOCKHOLM)).collect();
    assert_eq!(sweden.len(), 1, "Sweden is notified one by one");
    assert!(sweden[0].body.contains(&name(99)));
    assert_eq!(notification_state(&app, &sweden_id), "sent");
    let singles: Vec<&Mail> = mails
        .iter()
        .filter(|mail| mail.is_to(LONDON) && mail.subject.starts_with("New member sign-up"))
        .collect();
    assert_eq!(singles.len(), 3, "{:#?}", subjects(&mails));
    let overflows = overflow_mails(&mails);
    assert_eq!(overflows.len(), 1, "{:#?}", subjects(&mails));
    let overflow = overflows[0];
    assert_eq!(
        overflow.subject, "Sign-up summary for United Kingdom: 7 listed",
        "nobody is held"
    );
    assert!(overflow.is_to(LONDON));
    assert_eq!(overflow.header("Reply-To"), None, "it is about many people");
    assert_eq!(
        overflow.header("Auto-Submitted").as_deref(),
        Some("auto-generated")
    );
    assert!(
        overflow.body.contains("(3 an hour)"),
        "says why:\n{}",
        overflow.body
    );
    // Each of the seven with what its notification would have said.
    let listed: Vec<usize> = (1..=10)
        .filter(|&n| overflow.body.contains(&name(n)))
        .collect();
    assert_eq!(listed.len(), 7, "{}", overflow.body);
    for &n in &listed {
        assert!(overflow.body.contains(&email(n)), "{}", overflow.body);
        assert!(overflow.body.contains(&format!("Line one of {n:02}.")));
        assert!(!singles.iter().any(|mail| mail.body.contains(&name(n))));
    }
    for line in [
        "Phone:",
        "City:",
        "Country:",
        "Received (UTC):",
        "Submission id:",
    ] {
        assert_eq!(overflow.body.matches(line).count(), 7, "{line}");
    }
    assert_eq!(
        overflow
            .body
            .matches(&format!("{PUBLIC_URL}/followup/"))
            .count(),
        7,
        "each with its follow-up link:\n{}",
        overflow.body
    );
    assert!(!overflow.body.contains("held"), "{}", overflow.body);
    // Listed means sent, at the overflow mail's own time.
    let rows = outbox_of(&app, "United Kingdom");
    let first_overflow = rows
        .iter()
        .find(|row| row.0 == "overflow")
        .expect("an overflow row");
    assert_eq!(first_overflow.1, "sent");
    let overflow_sent = first_overflow.3.expect("sent at");
    assert_eq!(
        rows.iter()
            .filter(|row| row.0 == "notification" && row.3 == Some(overflow_sent))
            .count(),
        7
    );
    assert!(rows.iter().all(|row| row.1 == "sent"), "{rows:?}");

    // Within the hour, more sign-ups wait for the next overflow mail, an hour after.
    let later = sign_up_all(&app, &[person(11, "GB"), person(12, "GB")]).await;
    wait_until(&app, "United Kingdom", |rows| {
        rows.iter().filter(|row| row.1 == "waiting").count() == 2
    })
    .await;
    for id in &later {
        assert_eq!(notification_state(&app, id), "waiting");
    }
    let next: Vec<_> = outbox_of(&app, "United Kingdom")
        .into_iter()
        .filter(|row| row.0 == "overflow" && row.1 == "pending")
        .collect();
    assert_eq!(next.len(), 1, "{next:?}");
    assert_eq!(next[0].2, overflow_sent.plus(Duration::from_secs(3600)));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mails = distinct(&smtp);
    assert_eq!(mails.len(), 5, "nothing more now: {:#?}", subjects(&mails));

    // Nothing lost: each sign-up in exactly one mail, or waiting.
    ids.extend(later);
    for (index, id) in ids.iter().enumerate() {
        let n = index + 1;
        let carrying = mails
            .iter()
            .filter(|mail| mail.body.contains(&email(n)))
            .count();
        match notification_state(&app, id).as_str() {
            "sent" => assert_eq!(carrying, 1, "{}", name(n)),
            "waiting" => assert_eq!(carrying, 0, "{}", name(n)),
            other => panic!("{}: {other}", name(n)),
        }
    }
    // The metrics: the overflow mail is an attempt of its own kind; waiting is a state.
    let text = app
        .client
        .get(format!("{}/metrics", app.admin_address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (series, expected) in [
        (
            r#"joinform_delivery_attempts_total{kind="overflow",result="sent"}"#,
            1.0,
        ),
        (r#"joinform_outbox_notifications{state="waiting"}"#, 2.0),
    ] {
        assert_eq!(
            crate::metrics::metric_value(&text, series),
            Some(expected),
            "{series}:\n{text}"
        );
    }
    let notified = crate::metrics::metric_value(
        &text,
        r#"joinform_delivery_attempts_total{kind="notification",result="sent"}"#,
    );
    assert!(
        notified.is_some_and(|sent| sent >= 4.0),
        "three and Sweden's, one by one: {notified:?}"
    );
    app.stop().await;
}

/// In a flood, unproved sign-ups are held: the section hears of them in one overflow
/// mail, as a count with where to review them, never a name or an address.
#[tokio::test]
async fn held_sign_ups_are_counted_in_one_overflow_mail_that_names_none() {
    let smtp = smtp().await;
    let app = overflow_app(&smtp, 100_000, |settings| {
        settings.spam.pow_baseline_per_minute = 1;
    })
    .await;
    // The first is the flood's baseline and is notified; its send starts the pace, so
    // the overflow mail is built a second later, when the rest are all stored.
    let mut ids = sign_up_all(&app, &[person(1, "GB")]).await;
    let people: Vec<Value> = (2..=5).map(|n| person(n, "GB")).collect();
    ids.extend(sign_up_all(&app, &people).await);
    let statuses: Vec<String> = ids
        .iter()
        .map(|id| app.row(id).expect("stored").status.as_str().to_owned())
        .collect();
    let held: Vec<usize> = (1..=5).filter(|n| statuses[n - 1] == "held").collect();
    assert!(held.len() >= 3, "{statuses:?}");
    let notified = 5 - held.len();

    let mails = mails_settled(&smtp, notified + 1).await;
    assert_eq!(mails.len(), notified + 1, "{:#?}", subjects(&mails));
    let overflows = overflow_mails(&mails);
    assert_eq!(overflows.len(), 1, "{:#?}", subjects(&mails));
    let overflow = overflows[0];
    let count = held.len();
    assert_eq!(
        overflow.subject,
        format!("{SUMMARY}: {count} held for review")
    );
    for said in [
        format!(
            "Held for review: {count} in all, {count} of them since the last summary (if any)."
        ),
        "joinform review list --status held --section \"United Kingdom\"".to_owned(),
        "GET /admin/review?status=held&section=United%20Kingdom".to_owned(),
        "This message holds no personal data.".to_owned(),
    ] {
        assert!(
            overflow.body.contains(&said),
            "{said} in:\n{}",
            overflow.body
        );
    }
    for &n in &held {
        for personal in [name(n), email(n), format!("Line one of {n:02}")] {
            assert!(
                !overflow.raw.contains(&personal),
                "{personal}:\n{}",
                overflow.raw
            );
        }
    }
    for n in &["Leeds", "+44 20"] {
        assert!(!overflow.raw.contains(n), "{n}:\n{}", overflow.raw);
    }
    let rows = outbox_of(&app, "United Kingdom");
    assert_eq!(
        rows.iter().filter(|row| row.0 == "overflow").count(),
        1,
        "one overflow row for them all: {rows:?}"
    );
    app.stop().await;
}

/// A sign-up erased while it waits is in no overflow mail.
#[tokio::test]
async fn an_erased_waiting_sign_up_is_left_out_of_the_overflow_mail() {
    let smtp = smtp().await;
    let app = overflow_app(&smtp, 1, |_| {}).await;
    // One notification, then one overflow mail at once: the next is an hour away.
    sign_up_all(&app, &[person(1, "GB")]).await;
    sign_up_all(&app, &[person(2, "GB")]).await;
    let mails = mails_settled(&smtp, 2).await;
    assert_eq!(overflow_mails(&mails).len(), 1, "{:#?}", subjects(&mails));
    let later = sign_up_all(&app, &[person(3, "GB"), person(4, "GB")]).await;
    wait_until(&app, "United Kingdom", |rows| {
        rows.iter().filter(|row| row.1 == "waiting").count() == 2
    })
    .await;

    let config = write_config(&app);
    let output = run_cli(&config, &["forget", &email(3)], None).await;
    assert!(output.status.success(), "{}", stderr(&output));
    // Its hour is not up: the test brings the overflow mail forward.
    connect(&app)
        .execute(
            "UPDATE outbox SET next_attempt_at = ?1 WHERE kind = 'overflow' AND state = 'pending'",
            [Timestamp::now()],
        )
        .unwrap();
    app.delivery_nudge().await;
    let mails = mails_settled(&smtp, 3).await;
    let overflows = overflow_mails(&mails);
    assert_eq!(overflows.len(), 2, "{:#?}", subjects(&mails));
    let second = overflows
        .iter()
        .find(|mail| mail.body.contains(&name(4)))
        .expect("the second lists the one left");
    assert_eq!(second.subject, format!("{SUMMARY}: 1 listed"));
    for mail in &mails {
        assert!(
            !mail.raw.contains(&email(3)),
            "erased, yet in:\n{}",
            mail.raw
        );
        assert!(!mail.raw.contains(&name(3)));
    }
    assert_eq!(notification_state(&app, &later[1]), "sent");
    app.stop().await;
}

fn subjects(mails: &[Mail]) -> Vec<&str> {
    mails.iter().map(|mail| mail.subject.as_str()).collect()
}

/// A sealed sign-up's notification holds what only its encrypted payload says, so the
/// overflow mail could not list it: past the cap it is not folded into one, but stays
/// pending until the section's hour has a free place (an hour after the first of the
/// hour's sends), and then goes out itself. Nothing about it is lost or half-told.
#[tokio::test]
async fn past_the_cap_a_sealed_sign_ups_notification_waits_for_a_free_place_in_the_hour() {
    let smtp = smtp().await;
    let app = overflow_app(&smtp, 2, crate::sealed::seal).await;
    let people: Vec<Value> = (1..=5).map(|n| person(n, "GB")).collect();
    let ids = sign_up_all(&app, &people).await;
    let started = Timestamp::now();
    let deferred = |rows: &[(String, String, Timestamp, Option<Timestamp>)]| {
        let later = started.plus(Duration::from_secs(55 * 60));
        rows.iter().filter(|row| row.1 == "sent").count() == 2
            && rows
                .iter()
                .filter(|row| row.1 == "pending" && row.2 > later)
                .count()
                == 3
    };
    wait_until(&app, "United Kingdom", deferred).await;
    let rows = outbox_of(&app, "United Kingdom");
    assert!(
        deferred(&rows),
        "two sent, three deferred by an hour: {rows:#?}"
    );
    assert_eq!(
        rows.len(),
        5,
        "no overflow mail, nothing waiting: {rows:#?}"
    );
    assert!(rows.iter().all(|row| row.0 == "notification"), "{rows:#?}");
    let first_sent = rows.iter().filter_map(|row| row.3).min().unwrap();
    for row in rows.iter().filter(|row| row.1 == "pending") {
        // Due when the first send of the hour leaves the window, a second after.
        assert!(
            row.2 > first_sent.plus(Duration::from_secs(3600)),
            "{row:?}"
        );
        assert!(
            row.2 <= first_sent.plus(Duration::from_secs(3602)),
            "{row:?}"
        );
    }
    let states: Vec<String> = ids.iter().map(|id| notification_state(&app, id)).collect();
    assert_eq!(states.iter().filter(|state| *state == "sent").count(), 2);
    // Exactly two mails, both the sign-ups' own encrypted notifications.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let messages = smtp.messages();
    let mut message_ids: Vec<String> = messages
        .iter()
        .map(|captured| {
            let raw = String::from_utf8_lossy(&captured.data).into_owned();
            assert!(raw.contains("Subject: New sign-up "), "{raw}");
            assert!(raw.contains("multipart/encrypted"), "{raw}");
            let head = raw.split("\r\n\r\n").next().unwrap_or_default().to_owned();
            head.lines()
                .find_map(|line| line.strip_prefix("Message-ID: ").map(str::to_owned))
                .unwrap()
        })
        .collect();
    message_ids.sort();
    message_ids.dedup();
    assert_eq!(message_ids.len(), 2, "{message_ids:?}");

    // Restarted with a cap raised to 10: the deferred three are weighed again against
    // it at once, and go out, not an hour later.
    let mut settings = app.settings.clone();
    settings.mail.max_notifications_per_section_per_hour = 10;
    let dir = app.stop().await;
    let app = crate::helpers::spawn_app_in(dir, settings);
    wait_until(&app, "United Kingdom", |rows| {
        rows.iter().filter(|row| row.1 == "sent").count() == 5
    })
    .await;
    let states: Vec<String> = ids.iter().map(|id| notification_state(&app, id)).collect();
    assert!(states.iter().all(|state| state == "sent"), "{states:?}");
    app.stop().await;
}
