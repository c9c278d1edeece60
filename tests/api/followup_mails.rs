//! The follow-up's mails through the real server and the test SMTP server: the link in
//! each notification, the reminder, the escalation and the digest, with durations of
//! seconds (`remind_after = 2s`, `escalate_after = 4s`, `check_every = 1s`).

use std::collections::VecDeque;
use std::time::Duration;

use joinform::config::DigestSchedule;
use joinform::domain::{FollowupState, MailKind, SubmissionId, Timestamp};
use joinform::followup::links::{LinkKey, PersonToken, SectionToken};
use joinform::secret::ServerSecret;
use joinform::store::{followup, outbox};
use mail_parser::MessageParser;
use serde_json::json;

use crate::helpers::{TestApp, created_id, spawn_app_with, use_smtp};
use crate::operator_helpers::connect;
use crate::smtp::{Behaviour, Captured, SmtpServer};

const PUBLIC_URL: &str = "https://join.example.org";
const WAIT: Duration = Duration::from_secs(10);

async fn followup_app(smtp: &SmtpServer) -> TestApp {
    spawn_app_with(|settings| {
        use_smtp(settings, smtp.port());
        settings.server.public_url = Some(format!("{PUBLIC_URL}/"));
        settings.followup.enabled = Some(true);
        settings.followup.remind_after = "2s".parse().unwrap();
        settings.followup.escalate_after = "4s".parse().unwrap();
        settings.followup.check_every = "1s".parse().unwrap();
        settings.followup.digest = DigestSchedule::Daily;
    })
    .await
}

async fn smtp() -> SmtpServer {
    SmtpServer::start(Behaviour::Scripted(VecDeque::new())).await
}

async fn sign_up(app: &TestApp, name: &str, email: &str, country: &str) -> String {
    created_id(
        app.post_json(&json!({"name": name, "email": email, "country": country, "consent": true}))
            .await,
    )
    .await
}

/// A captured mail, read: (recipients, subject, body with `\n` line ends).
#[derive(Debug, Clone)]
struct Mail {
    to: Vec<String>,
    subject: String,
    body: String,
}

fn read(captured: &Captured) -> Mail {
    let message = MessageParser::default().parse(&captured.data).unwrap();
    Mail {
        to: captured.rcpt_to.clone(),
        subject: message.subject().unwrap_or_default().to_owned(),
        body: message.body_text(0).unwrap().replace("\r\n", "\n"),
    }
}

/// The mails whose subject contains `subject`.
fn with_subject(mails: &[Mail], subject: &str) -> Vec<Mail> {
    mails
        .iter()
        .filter(|mail| mail.subject.contains(subject))
        .cloned()
        .collect()
}

/// Waits until `count` mails with `subject` in their subject arrived, at most [`WAIT`];
/// returns every mail so far.
async fn wait_for_subject(smtp: &SmtpServer, subject: &str, count: usize) -> Vec<Mail> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mails: Vec<Mail> = smtp.messages().iter().map(read).collect();
        if with_subject(&mails, subject).len() >= count || tokio::time::Instant::now() >= deadline {
            return mails;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The outbox's follow-up rows: (kind, section, period, state), in queue order.
fn followup_rows(app: &TestApp) -> Vec<(String, String, String, String)> {
    let connection = connect(app);
    let mut statement = connection
        .prepare(
            "SELECT kind, section, period, state FROM outbox WHERE kind <> 'notification'
             ORDER BY created_at",
        )
        .unwrap();
    statement
        .query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Waits until no outbox row is pending, at most [`WAIT`].
async fn wait_until_settled(app: &TestApp) {
    app.wait_for_outbox(WAIT, |(state, _, _)| state != "pending")
        .await;
}

fn link_key(app: &TestApp) -> LinkKey {
    let secret = ServerSecret::load(app.settings.spam.expose_secret(), &app.db_path).unwrap();
    LinkKey::from_secret(&secret)
}

/// Every follow-up address in `text`: (kind, token) with kind `person` or `section`.
fn links(text: &str) -> Vec<(&'static str, String)> {
    text.split_whitespace()
        .filter_map(|word| word.strip_prefix(&format!("{PUBLIC_URL}/followup/")))
        .map(|rest| match rest.strip_prefix("section/") {
            Some(token) => ("section", token.to_owned()),
            None => ("person", rest.to_owned()),
        })
        .collect()
}

fn today() -> String {
    Timestamp::now().to_string()[..10].to_owned()
}

#[tokio::test]
async fn a_notification_carries_a_signed_link_to_the_sign_ups_follow_up_page() {
    let smtp = smtp().await;
    let app = followup_app(&smtp).await;
    let id = sign_up(&app, "Kari Nordmann", "kari@example.org", "NO").await;
    let mails = wait_for_subject(&smtp, "Ny innmelding", 1).await;
    let notification = &with_subject(&mails, "Ny innmelding")[0];
    // In the section's language, on its own line between the trailer and the signature.
    let line = notification
        .body
        .lines()
        .find(|line| line.starts_with("Oppfølging: merk når du har kontaktet vedkommende: "))
        .unwrap_or_else(|| panic!("no follow-up line in:\n{}", notification.body));
    assert!(
        notification.body.contains(&format!("{line}\n\n-- \n")),
        "{}",
        notification.body
    );
    let found = links(line);
    assert_eq!(found.len(), 1, "{line}");
    let (kind, token) = &found[0];
    assert_eq!(*kind, "person");
    let (linked, expires) =
        PersonToken::verify_for_section(&link_key(&app), token, "Norway", Timestamp::now())
            .unwrap();
    assert_eq!(linked, SubmissionId::parse(&id).unwrap());
    // Good for followup.link_ttl (60 days by default) from when the mail was written.
    let ttl = expires.since(Timestamp::now());
    assert!(
        ttl > Duration::from_secs(59 * 86_400) && ttl <= Duration::from_secs(60 * 86_400),
        "{ttl:?}"
    );
    // Signed for the sign-up's section only.
    assert!(
        PersonToken::verify_for_section(&link_key(&app), token, "Sweden", Timestamp::now())
            .is_err()
    );
    // And it works: the page shows the person, and its button marks them.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = client
        .get(app.url(&format!("/followup/{token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Kari"));
    let marked = client
        .post(app.url(&format!("/followup/{token}")))
        .form(&[
            ("state", "contacted"),
            (
                "csrf",
                &joinform::followup::links::csrf_value(&link_key(&app), token),
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(marked.status(), 303);
    let row = app.row(&id).unwrap();
    assert_eq!(row.followup, Some(FollowupState::Contacted));
    assert_eq!(row.followup_by.as_deref(), Some("link"));
    app.stop().await;
}

#[tokio::test]
async fn the_digest_goes_to_every_section_and_the_fallback_even_when_nothing_happened() {
    let smtp = smtp().await;
    let app = followup_app(&smtp).await;
    let mails = wait_for_subject(&smtp, "digest", 4).await;
    // A digest reports the day that just ended, and its subject names that day.
    let period = Timestamp::now()
        .minus(Duration::from_secs(86_400))
        .to_string()[..10]
        .to_owned();
    for (section, recipient, subject, nothing) in [
        (
            "Norway",
            "<oslo@example.org>",
            format!("Oppfølgingssammendrag for Norway: {period}"),
            "Ingenting har skjedd",
        ),
        (
            "Sweden",
            "<stockholm@example.org>",
            format!("Follow-up digest for Sweden: {period}"),
            "Nothing happened",
        ),
        (
            "United Kingdom",
            "<london@example.org>",
            format!("Follow-up digest for United Kingdom: {period}"),
            "Nothing happened",
        ),
        (
            "International",
            "<international@example.org>",
            format!("Follow-up digest for International: {period}"),
            "Nothing happened",
        ),
    ] {
        let digest = with_subject(&mails, &subject);
        assert_eq!(digest.len(), 1, "{subject}: {mails:#?}");
        assert!(digest[0].to.iter().any(|to| to == recipient), "{digest:?}");
        assert!(digest[0].body.contains(nothing), "{}", digest[0].body);
        // The section's list, signed for that section.
        let found = links(&digest[0].body);
        assert_eq!(found.len(), 1, "{}", digest[0].body);
        let signed = SectionToken::verify(&link_key(&app), &found[0].1, Timestamp::now());
        assert_eq!(signed.as_deref(), Ok(section));
    }
    app.stop().await;
}

#[tokio::test]
async fn an_unmarked_sign_up_gets_one_reminder_then_one_escalation_without_personal_data_across_a_restart()
 {
    let smtp = smtp().await;
    let app = followup_app(&smtp).await;
    let id = sign_up(&app, "Kari Nordmann", "kari@example.org", "NO").await;

    let mails = wait_for_subject(&smtp, "venter på svar", 1).await;
    let reminder = &with_subject(&mails, "venter på svar")[0];
    assert_eq!(reminder.subject, "1 innmelding venter på svar (Norway)");
    assert_eq!(reminder.to, ["<oslo@example.org>"]);
    // First name, country, date and how long: never the surname, address or id.
    assert!(
        reminder
            .body
            .contains(&format!("- Kari, Norge (NO), meldt inn {}", today())),
        "{}",
        reminder.body
    );
    for private in ["Nordmann", "kari@example.org", id.as_str()] {
        assert!(
            !reminder.body.contains(private),
            "{private}: {}",
            reminder.body
        );
    }
    let found = links(&reminder.body);
    assert_eq!(
        found.iter().map(|(kind, _)| *kind).collect::<Vec<_>>(),
        ["person", "section"],
        "{}",
        reminder.body
    );
    let key = link_key(&app);
    let (linked, _) =
        PersonToken::verify_for_section(&key, &found[0].1, "Norway", Timestamp::now()).unwrap();
    assert_eq!(linked.to_string(), id);

    // A restart the same day queues nothing again.
    let app = app.restart().await;
    let mails = wait_for_subject(&smtp, "Sign-ups nobody has contacted", 1).await;
    let escalation = &with_subject(&mails, "Sign-ups nobody has contacted")[0];
    assert_eq!(escalation.to, ["<international@example.org>"]);
    assert!(
        escalation
            .body
            .contains("- Norway: 1 waiting, the oldest for "),
        "{}",
        escalation.body
    );
    for private in [
        "Kari",
        "Nordmann",
        "kari@example.org",
        id.as_str(),
        "/followup/",
    ] {
        assert!(
            !escalation.body.contains(private) && !escalation.subject.contains(private),
            "{private}: {}",
            escalation.body
        );
    }
    // A round or two after the escalation, still one of each.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    wait_until_settled(&app).await;
    let mails: Vec<Mail> = smtp.messages().iter().map(read).collect();
    assert_eq!(with_subject(&mails, "Ny innmelding").len(), 1);
    assert_eq!(with_subject(&mails, "venter på svar").len(), 1);
    assert_eq!(
        with_subject(&mails, "Sign-ups nobody has contacted").len(),
        1
    );
    assert_eq!(
        with_subject(&mails, "digest").len() + with_subject(&mails, "sammendrag").len(),
        4
    );
    let rows = followup_rows(&app);
    assert_eq!(rows.len(), 6, "{rows:?}");
    assert!(rows.iter().all(|row| row.3 == "sent"), "{rows:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_sign_up_marked_before_remind_after_gets_no_reminder() {
    let smtp = smtp().await;
    let app = followup_app(&smtp).await;
    let marked = sign_up(&app, "Kari Nordmann", "kari@example.org", "NO").await;
    {
        let mut connection = connect(&app);
        let transaction = connection
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .unwrap();
        let outcome = followup::mark(
            &transaction,
            SubmissionId::parse(&marked).unwrap(),
            FollowupState::Contacted,
            "test",
            Timestamp::now(),
        )
        .unwrap();
        assert!(outcome.is_some());
        transaction.commit().unwrap();
    }
    // Signed up after the marked one: the round that reminds of it would have reminded
    // of the marked one too.
    sign_up(&app, "John Smith", "john@example.org", "GB").await;
    let mails = wait_for_subject(&smtp, "waiting for a reply (United Kingdom)", 1).await;
    let reminder = with_subject(&mails, "waiting for a reply (United Kingdom)");
    assert_eq!(
        reminder[0].subject,
        "1 sign-up is waiting for a reply (United Kingdom)"
    );
    assert!(
        reminder[0]
            .body
            .contains("- John, United Kingdom (GB), signed up")
    );
    assert!(
        with_subject(&mails, "venter på svar").is_empty(),
        "{mails:#?}"
    );
    let rows = followup_rows(&app);
    assert!(
        !rows
            .iter()
            .any(|(kind, section, _, _)| kind == "reminder" && section == "Norway"),
        "{rows:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_erased_person_is_left_out_and_a_reminder_with_nobody_left_is_cancelled() {
    let smtp = smtp().await;
    let app = followup_app(&smtp).await;
    sign_up(&app, "Kari Nordmann", "kari@example.org", "NO").await;
    sign_up(&app, "Ola Nordmann", "ola@example.org", "NO").await;
    // Kari is erased before anything reminds of her.
    {
        let secret = ServerSecret::load(app.settings.spam.expose_secret(), &app.db_path).unwrap();
        let key = joinform::erasure::address_key("kari@example.org").unwrap();
        let hash = joinform::erasure::address_hash(&secret, &key);
        let mut connection = connect(&app);
        let report = joinform::store::erase(&mut connection, |erasing| {
            joinform::erasure::forget(erasing, &key, &hash, secret.audit_key_check(), "test")
        })
        .unwrap();
        assert_eq!(report.submissions, 1);
    }
    let mails = wait_for_subject(&smtp, "venter på svar", 1).await;
    let reminder = &with_subject(&mails, "venter på svar")[0];
    assert_eq!(reminder.subject, "1 innmelding venter på svar (Norway)");
    assert!(reminder.body.contains("- Ola, "), "{}", reminder.body);
    assert!(!reminder.body.contains("Kari"), "{}", reminder.body);

    // A reminder whose sign-ups are all gone when its turn comes (here: Sweden, which
    // never had any) is cancelled, not sent.
    {
        let connection = connect(&app);
        assert!(
            outbox::schedule(
                &connection,
                MailKind::Reminder,
                "Sweden",
                "test",
                "example.org",
                Timestamp::now(),
            )
            .unwrap()
        );
    }
    app.delivery_nudge().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let state = loop {
        let rows = followup_rows(&app);
        let state = rows
            .iter()
            .find(|(kind, section, period, _)| {
                kind == "reminder" && section == "Sweden" && period == "test"
            })
            .map(|row| row.3.clone())
            .unwrap();
        if state != "pending" || tokio::time::Instant::now() >= deadline {
            break state;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(state, "cancelled");
    let mails: Vec<Mail> = smtp.messages().iter().map(read).collect();
    assert!(with_subject(&mails, "(Sweden)").is_empty(), "{mails:#?}");
    app.stop().await;
}

/// A section that let many wait gets a reminder of bounded size: the longest-waiting
/// listed, the rest counted, with the link to the section's list.
#[tokio::test]
async fn a_reminder_lists_the_longest_waiting_and_counts_the_rest() {
    use joinform::followup::mails::MAIL_LIST_LIMIT;

    let smtp = smtp().await;
    let app = followup_app(&smtp).await;
    crate::followup_pages::store_waiting(&app, MAIL_LIST_LIMIT + 5);
    let total = MAIL_LIST_LIMIT + 5;
    let subject = format!("{total} innmeldinger venter");
    let mails = wait_for_subject(&smtp, &subject, 1).await;
    let reminder = with_subject(&mails, &subject)
        .pop()
        .unwrap_or_else(|| panic!("no reminder: {mails:?}"));
    let listed: Vec<_> = links(&reminder.body)
        .into_iter()
        .filter(|(kind, _)| *kind == "person")
        .collect();
    assert_eq!(listed.len(), MAIL_LIST_LIMIT);
    assert!(
        reminder.body.contains("- Person0,"),
        "the longest-waiting first:\n{}",
        reminder.body
    );
    assert!(
        !reminder
            .body
            .contains(&format!("- Person{MAIL_LIST_LIMIT},"))
    );
    assert!(reminder.body.contains("…og 5 til"), "{}", reminder.body);
    assert!(
        links(&reminder.body)
            .iter()
            .any(|(kind, _)| *kind == "section")
    );
    app.stop().await;
}
