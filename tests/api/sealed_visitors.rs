//! Mails to visitors in a sealed installation (issue 18, `storage.seal_keys` with
//! `confirmation` on): the server cannot read a sign-up's name or address after the
//! commit, so the notice, the confirmation and the access mail are built by the
//! request that still holds them, and kept in memory until sent. End to end through
//! the real server, a real SMTP server, the links as the mails write them and the pages
//! they open; the files are searched byte for byte for what must not be there.

use std::time::Duration;

use joinform::config::{HumanDuration, Settings};
use joinform::domain::ConfirmationMode;
use serde_json::{Value, json};
use url::Url;

use crate::helpers::{TestApp, contains, created_id, spawn_app_in, spawn_app_with, use_smtp};
use crate::operator_helpers::connect;
use crate::sealed::{bytes_read_elsewhere, seal};
use crate::smtp::SmtpServer;
use crate::visitor_flow::{Browser, links};
use crate::visitor_mails::{Mail, QUIET, WAIT, smtp};

/// Norway's sign-ups get a notice, Sweden's are confirmed by mail (double opt-in),
/// everyone else's (the fallback) gets nothing; storage sealed, every section with
/// keys. The server's `public_url` is its own address, so links are followed as
/// written; `adjust` applied last.
fn sealed_visitors(settings: &mut Settings, smtp: &SmtpServer) {
    let address = crate::smtp::closed_port();
    seal(settings);
    use_smtp(settings, smtp.port());
    settings.server.listen = address;
    settings.server.public_url = Some(format!("http://{address}"));
    settings.form.confirmation = ConfirmationMode::Off;
    for section in &mut settings.sections {
        section.confirmation = match section.name.as_str() {
            "Norway" => Some(ConfirmationMode::Notice),
            "Sweden" => Some(ConfirmationMode::DoubleOptIn),
            _ => None,
        };
    }
    settings.followup.enabled = Some(false);
    settings.mail.max_per_second = 1000;
    settings.spam.min_fill = HumanDuration::from_secs(0);
}

/// One person: what they type, and what must never be on disk in clear.
struct Person {
    name: &'static str,
    email: &'static str,
    phone: &'static str,
    country: &'static str,
}

impl Person {
    fn body(&self) -> Value {
        json!({
            "name": self.name, "email": self.email, "phone": self.phone,
            "country": self.country, "consent": true,
            "message": format!("Hemmelig beskjed fra {}", self.name),
        })
    }

    /// The address as mails are sent to it: the local part as typed, the domain in
    /// lower case.
    fn address(&self) -> String {
        let (local, domain) = self.email.split_once('@').unwrap();
        format!("{local}@{}", domain.to_lowercase())
    }

    fn needles(&self) -> Vec<String> {
        vec![
            self.name.to_owned(),
            self.name.split_whitespace().last().unwrap().to_owned(),
            self.email.to_owned(),
            self.email.to_lowercase(),
            self.email.split('@').next().unwrap().to_lowercase(),
            self.phone.to_owned(),
            self.phone.replace(' ', ""),
        ]
    }
}

const KARI: Person = Person {
    name: "Kari Hemmelignordmann",
    email: "Kari.Hemmelig@Example.org",
    phone: "+47 912 34 001",
    country: "NO",
};
const SVEN: Person = Person {
    name: "Sven Hemmeligsvensson",
    email: "sven.hemmelig@example.org",
    phone: "+46 70 123 45 02",
    country: "SE",
};
const OLA: Person = Person {
    name: "Ola Hemmeligutland",
    email: "ola.hemmelig@example.org",
    phone: "+49 30 123 45 03",
    country: "DE",
};

async fn sign_up(app: &TestApp, person: &Person) -> String {
    created_id(app.post_json(&person.body()).await).await
}

/// Every mail received, read; an encrypted one's body is empty (it has no text part).
fn received(smtp: &SmtpServer) -> Vec<Mail> {
    smtp.messages()
        .iter()
        .map(|captured| {
            let message = mail_parser::MessageParser::default()
                .parse(&captured.data)
                .unwrap();
            Mail {
                rcpt_to: captured.rcpt_to.clone(),
                subject: message.subject().unwrap_or_default().to_owned(),
                body: message
                    .body_text(0)
                    .unwrap_or_default()
                    .replace("\r\n", "\n"),
                raw: String::from_utf8_lossy(&captured.data).into_owned(),
            }
        })
        .collect()
}

/// The mails received for `address`.
fn to(smtp: &SmtpServer, address: &str) -> Vec<Mail> {
    received(smtp)
        .into_iter()
        .filter(|mail| mail.is_to(address))
        .collect()
}

/// Waits (at most [`WAIT`]) for the first mail to `address`.
async fn mail_to(smtp: &SmtpServer, address: &str) -> Mail {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(mail) = to(smtp, address).into_iter().next() {
            return mail;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no mail to {address} within {WAIT:?}; arrived to: {:?}",
            received(smtp)
                .iter()
                .map(|mail| mail.rcpt_to.clone())
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The one link of `mail` under `/{path}/`.
fn link(mail: &Mail, path: &str) -> Url {
    let found: Vec<Url> = links(mail)
        .into_iter()
        .filter(|url| url.path().starts_with(&format!("/{path}/")))
        .collect();
    assert_eq!(found.len(), 1, "one {path} link in:\n{}", mail.body);
    found[0].clone()
}

/// Asserts that no needle of `people` is in the database files (read by `cat`, in
/// another process: see `bytes_read_elsewhere`).
fn assert_nothing_in_clear(app: &TestApp, people: &[&Person], case: &str) {
    let dir = app.db_path.parent().unwrap();
    let bytes = bytes_read_elsewhere(dir);
    assert!(!bytes.is_empty());
    for person in people {
        for needle in person.needles() {
            assert!(
                !contains(&bytes, needle.as_bytes()),
                "{case}: {needle:?} is in the database files in clear"
            );
        }
    }
}

fn rows_of(app: &TestApp, id: &str) -> i64 {
    connect(app)
        .query_row(
            "SELECT count(*) FROM submissions WHERE id = ?1",
            [id],
            |row| row.get(0),
        )
        .unwrap()
}

#[tokio::test]
async fn a_sealed_installation_mails_its_visitors_without_keeping_their_address() {
    let smtp = smtp().await;
    let app = spawn_app_with(|settings| sealed_visitors(settings, &smtp)).await;
    let browser = Browser::new(&app, "en");

    // Notice: it arrives, with a withdraw link; the section is notified, encrypted.
    let kari = sign_up(&app, &KARI).await;
    let notice = mail_to(&smtp, &KARI.address()).await;
    assert!(notice.body.contains(KARI.name), "{}", notice.body);
    let withdraw = link(&notice, "withdraw");
    let notification = mail_to(&smtp, "oslo@example.org").await;
    assert!(
        notification.raw.contains("multipart/encrypted"),
        "{}",
        notification.raw
    );

    // Double opt-in: the confirmation mail, and nothing to the section before the button.
    let sven = sign_up(&app, &SVEN).await;
    let confirmation = mail_to(&smtp, &SVEN.address()).await;
    let confirm = link(&confirmation, "confirm");
    tokio::time::sleep(QUIET).await;
    assert!(
        to(&smtp, "stockholm@example.org").is_empty(),
        "Sweden heard of an unconfirmed sign-up"
    );
    let page = browser.open(&confirm).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(!page.html.contains(SVEN.name), "{}", page.html);
    let confirmed = browser.press(&page, &[]).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.html);
    let notification = mail_to(&smtp, "stockholm@example.org").await;
    assert!(
        notification.raw.contains("multipart/encrypted"),
        "{}",
        notification.raw
    );
    assert!(notification.subject.contains(&sven), "{}", notification.raw);
    assert_eq!(
        app.row(&sven).unwrap().status,
        joinform::domain::SubmissionStatus::Accepted,
        "confirmed"
    );

    // /my-data: a known sealed address (whose section mails nobody, so it had no mail
    // today) gets its link; the page shows what the server can read, not the name.
    let ola = sign_up(&app, &OLA).await;
    let form = browser
        .open(&Url::parse(&app.url("/my-data")).unwrap())
        .await;
    let sent = browser
        .press(&form, &[("email", "Ola.Hemmelig@Example.org")])
        .await;
    assert_eq!(sent.status, 200, "{}", sent.html);
    let unknown = browser
        .press(&form, &[("email", "nobody@example.org")])
        .await;
    assert_eq!(
        (unknown.status, &unknown.html),
        (sent.status, &sent.html),
        "a known and an unknown address get the same answer"
    );
    let access = mail_to(&smtp, &OLA.address()).await;
    assert!(!access.body.contains(OLA.name), "{}", access.body);
    let data = browser.open(&link(&access, "my-data")).await;
    assert_eq!(data.status, 200, "{}", data.html);
    assert!(data.html.contains(&ola), "its reference: {}", data.html);
    for needle in OLA.needles() {
        assert!(!data.html.contains(&needle), "{needle}: {}", data.html);
    }
    assert!(
        data.html.contains("stored encrypted"),
        "says where the rest is: {}",
        data.html
    );
    tokio::time::sleep(QUIET).await;
    assert!(
        to(&smtp, "nobody@example.org").is_empty(),
        "an unknown address is mailed nothing"
    );

    // Nothing of anybody in the database or its WAL.
    assert_nothing_in_clear(&app, &[&KARI, &SVEN, &OLA], "while running");

    // The withdraw link of the notice erases the sign-up.
    let page = browser.open(&withdraw).await;
    assert_eq!(page.status, 200, "{}", page.html);
    let withdrawn = browser.press(&page, &[]).await;
    assert_eq!(withdrawn.status, 200, "{}", withdrawn.html);
    assert_eq!(rows_of(&app, &kari), 0, "withdrawn: erased");
    assert_eq!(rows_of(&app, &sven), 1, "the others stay");
    assert_eq!(rows_of(&app, &ola), 1);
    app.stop().await;
}

/// The state and last error of the notice about sign-up `id`.
fn notice_row(app: &TestApp, id: &str) -> (String, Option<String>) {
    connect(app)
        .query_row(
            "SELECT state, last_error FROM outbox WHERE kind = 'notice' AND submission_id = ?1",
            [id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap()
}

#[tokio::test]
async fn a_sealed_visitors_mail_pending_at_a_restart_fails_saying_why() {
    let smtp = smtp().await;
    let app = spawn_app_with(|settings| {
        sealed_visitors(settings, &smtp);
        // The first mail to a visitor uses up the hour: the second waits, in memory.
        settings.rate_limit.visitor_mails_per_hour = 1;
    })
    .await;
    sign_up(&app, &KARI).await;
    mail_to(&smtp, &KARI.address()).await;
    let other = Person {
        email: "other.hemmelig@example.org",
        ..KARI
    };
    let waiting = sign_up(&app, &other).await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(notice_row(&app, &waiting).0, "pending");
    assert!(to(&smtp, &other.address()).is_empty());

    // Restarted, the hour still full: the mail is no longer in memory, and is failed
    // as the worker starts, not when the cap would next let it be tried.
    let settings = app.settings.clone();
    let dir = app.stop().await;
    let app = spawn_app_in(dir, settings);
    let deadline = tokio::time::Instant::now() + WAIT;
    let (state, error) = loop {
        let row = notice_row(&app, &waiting);
        if row.0 != "pending" || tokio::time::Instant::now() >= deadline {
            break row;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(state, "failed");
    assert_eq!(
        error.as_deref(),
        Some(
            "a sealed sign-up's mail to its visitor is kept only in memory and was lost at a \
             restart"
        )
    );
    assert!(to(&smtp, &other.address()).is_empty());
    assert_nothing_in_clear(&app, &[&KARI, &other], "after the restart");
    app.stop().await;
}
