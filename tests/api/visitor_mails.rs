//! Mails to visitors through the real server and the test SMTP server: nothing with
//! `form.confirmation = "off"`, a notice, double opt-in's confirmation, a section's own
//! mode, one mail per address a day and the hourly cap.

use std::collections::VecDeque;
use std::time::Duration;

use joinform::config::{HumanDuration, Settings};
use joinform::domain::{ConfirmationMode, SubmissionId, Timestamp};
use joinform::secret::ServerSecret;
use joinform::visitor::{LinkPurpose, VisitorLinkKey};
use mail_parser::MessageParser;
use serde_json::{Value, json};

use crate::helpers::{TestApp, created_id, spawn_app_with, use_smtp};
use crate::operator_helpers::connect;
use crate::smtp::{Behaviour, Captured, SmtpServer};

const PUBLIC_URL: &str = "https://join.example.org";
/// Generous: 50 sign-ups and their mails on a loaded 2-core machine.
pub(crate) const WAIT: Duration = Duration::from_secs(30);
/// How long a test waits for a mail that must not come: the worker is woken by each
/// sign-up and sends within milliseconds, so a mail queued would be here by then.
pub(crate) const QUIET: Duration = Duration::from_secs(2);

pub(crate) async fn smtp() -> SmtpServer {
    SmtpServer::start(Behaviour::Scripted(VecDeque::new())).await
}

/// A server mailing through `smtp`, with a public address (every mode but `off`
/// needs one), the form's confirmation `mode`, no follow-up, and `adjust` applied
/// last.
async fn visitor_app(
    smtp: &SmtpServer,
    mode: ConfirmationMode,
    adjust: impl FnOnce(&mut Settings),
) -> TestApp {
    spawn_app_with(|settings| {
        use_smtp(settings, smtp.port());
        settings.server.public_url = Some(format!("{PUBLIC_URL}/"));
        settings.form.confirmation = mode;
        // Follow-up would be on with the public address: its digests are not the
        // visitors' business here.
        settings.followup.enabled = Some(false);
        // The tests of many sign-ups should not wait on the pace.
        settings.mail.max_per_second = 1000;
        adjust(settings);
    })
    .await
}

/// A sign-up with every field a visitor can fill in: the ones a mail to the visitor
/// must not repeat included.
fn person(name: &str, email: &str, country: &str) -> Value {
    json!({
        "name": name,
        "email": email,
        "country": country,
        "phone": "+47 22 33 44 55",
        "city": "Tromsø",
        "message": "Please call me, see http://message.example/about",
        "consent": true,
    })
}

async fn sign_up(app: &TestApp, body: &Value) -> String {
    created_id(app.post_json(body).await).await
}

/// A captured mail, read.
#[derive(Debug, Clone)]
pub(crate) struct Mail {
    /// Envelope recipients, `<address>`.
    pub(crate) rcpt_to: Vec<String>,
    pub(crate) subject: String,
    /// With `\n` line ends.
    pub(crate) body: String,
    pub(crate) raw: String,
}

impl Mail {
    pub(crate) fn is_to(&self, address: &str) -> bool {
        self.rcpt_to.iter().any(|to| *to == format!("<{address}>"))
    }

    /// A header's value as written (`None` when absent).
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        let head = self.raw.split("\r\n\r\n").next().unwrap_or_default();
        head.split("\r\n").find_map(|line| {
            let (field, value) = line.split_once(':')?;
            field
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    }

    /// The token of the one link under `{PUBLIC_URL}/{path}/`.
    fn token(&self, path: &str) -> String {
        let prefix = format!("{PUBLIC_URL}/{path}/");
        let found: Vec<&str> = self
            .body
            .lines()
            .filter_map(|line| line.strip_prefix(prefix.as_str()))
            .collect();
        assert_eq!(found.len(), 1, "one {path} link in:\n{}", self.body);
        found[0].to_owned()
    }
}

fn read(captured: &Captured) -> Mail {
    let message = MessageParser::default().parse(&captured.data).unwrap();
    Mail {
        rcpt_to: captured.rcpt_to.clone(),
        subject: message.subject().unwrap_or_default().to_owned(),
        body: message.body_text(0).unwrap().replace("\r\n", "\n"),
        raw: String::from_utf8_lossy(&captured.data).into_owned(),
    }
}

/// Waits until `count` mails arrived, at most [`WAIT`]; then, so that a mail too
/// many would show, for [`QUIET`] more. Returns them all.
pub(crate) async fn mails_settled(smtp: &SmtpServer, count: usize) -> Vec<Mail> {
    let deadline = tokio::time::Instant::now() + WAIT;
    while distinct(smtp).len() < count && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(QUIET).await;
    distinct(smtp)
}

/// The mails received, each once: delivery is at least once, so a mail whose server
/// answer was lost (the tests' SMTP timeout is 1 s, and a loaded machine can pass it)
/// is sent again under the same Message-ID, and that counts as one mail.
pub(crate) fn distinct(smtp: &SmtpServer) -> Vec<Mail> {
    let mut seen = std::collections::HashSet::new();
    smtp.messages()
        .iter()
        .map(read)
        .filter(|mail| seen.insert(mail.header("Message-ID")))
        .collect()
}

pub(crate) fn to<'a>(mails: &'a [Mail], address: &str) -> Vec<&'a Mail> {
    mails.iter().filter(|mail| mail.is_to(address)).collect()
}

fn link_key(app: &TestApp) -> VisitorLinkKey {
    let secret = ServerSecret::load(app.settings.spam.expose_secret(), &app.db_path).unwrap();
    VisitorLinkKey::from_secret(&secret)
}

/// The outbox: (kind, state, attempts, next_attempt_at), in queue order.
fn outbox(app: &TestApp) -> Vec<(String, String, i64, Timestamp)> {
    connect(app)
        .prepare(
            "SELECT kind, state, attempts, next_attempt_at FROM outbox
             ORDER BY created_at, id",
        )
        .unwrap()
        .query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// How many outbox rows of `kind` there are.
fn outbox_count(app: &TestApp, kind: &str) -> usize {
    outbox(app).iter().filter(|row| row.0 == kind).count()
}

/// The status of every stored sign-up, unconfirmed ones included (which the library's
/// default selection leaves out).
fn statuses(app: &TestApp) -> Vec<String> {
    connect(app)
        .prepare("SELECT status FROM submissions ORDER BY id")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Whatever the visitor typed but their name must stay out of a mail to them.
fn assert_only_the_name_of_theirs(mail: &Mail) {
    for typed in ["message.example", "Please call", "22 33 44 55", "Tromsø"] {
        assert!(!mail.raw.contains(typed), "{typed} in:\n{}", mail.raw);
        assert!(!mail.body.contains(typed), "{typed} in:\n{}", mail.body);
    }
}

/// The headers every mail to a visitor has: from the organisation, to the bare
/// address, marked automatic, nobody to reply to but the sender.
fn assert_visitor_headers(app: &TestApp, mail: &Mail, address: &str) {
    assert_eq!(mail.rcpt_to, [format!("<{address}>")], "the visitor alone");
    assert_eq!(mail.header("To").as_deref(), Some(address));
    assert_eq!(
        mail.header("From").as_deref(),
        Some(app.settings.mail.from.as_str())
    );
    assert_eq!(
        mail.header("Auto-Submitted").as_deref(),
        Some("auto-generated")
    );
    assert_eq!(mail.header("Reply-To"), None);
}

#[tokio::test]
async fn with_confirmation_off_nothing_goes_to_the_visitors_address() {
    let smtp = smtp().await;
    let app = visitor_app(&smtp, ConfirmationMode::Off, |_| {}).await;
    sign_up(&app, &person("Kari Nordmann", "kari@example.org", "NO")).await;
    let mails = mails_settled(&smtp, 1).await;
    assert_eq!(mails.len(), 1, "{mails:#?}");
    assert!(mails[0].is_to("oslo@example.org"), "{mails:#?}");
    assert!(to(&mails, "kari@example.org").is_empty());
    assert_eq!(outbox_count(&app, "notification"), 1);
    assert_eq!(
        outbox(&app).len(),
        1,
        "no mail to a visitor was even queued"
    );
    app.stop().await;
}

/// The notice goes out beside the section's notification, in the page's language
/// (`_lang`), or else in the section's.
#[tokio::test]
async fn a_notice_says_what_was_received_in_the_visitors_language_with_a_withdraw_link() {
    let smtp = smtp().await;
    let app = visitor_app(&smtp, ConfirmationMode::Notice, |_| {}).await;
    let mut german = person("Kari Nordmann", "kari@example.org", "NO");
    german["_lang"] = json!("de");
    let german_id = sign_up(&app, &german).await;
    // No page language and no `language`: the section's (Sweden's, Swedish).
    let swedish_id = sign_up(&app, &person("Sven Svensson", "sven@example.org", "SE")).await;
    let mails = mails_settled(&smtp, 4).await;
    assert_eq!(mails.len(), 4, "two notifications, two notices: {mails:#?}");
    assert_eq!(to(&mails, "oslo@example.org").len(), 1);
    assert_eq!(to(&mails, "stockholm@example.org").len(), 1);

    for (address, id, subject, lines) in [
        (
            "kari@example.org",
            &german_id,
            "Wir haben deine Anmeldung erhalten",
            [
                "Hallo Kari Nordmann,",
                "Land:    Norwegen",
                "Sektion: Norway",
                "Jemand von Norway meldet sich bei dir.",
            ],
        ),
        (
            "sven@example.org",
            &swedish_id,
            "Vi har tagit emot din anmälan",
            [
                "Hej Sven Svensson!",
                "Land:      Sverige",
                "Avdelning: Sweden",
                "Någon från Sweden kommer att kontakta dig.",
            ],
        ),
    ] {
        let notices = to(&mails, address);
        assert_eq!(notices.len(), 1, "{address}: {mails:#?}");
        let notice = notices[0];
        assert_visitor_headers(&app, notice, address);
        // The Subject is fixed: nothing the visitor typed.
        assert_eq!(notice.subject, subject);
        // Greeted by name; the name, the country in their language, the section.
        for line in lines {
            assert!(
                notice.body.lines().any(|l| l == line),
                "{line} not in:\n{}",
                notice.body
            );
        }
        assert_only_the_name_of_theirs(notice);
        let token = notice.token("withdraw");
        let (signed, _) = link_key(&app)
            .verify(LinkPurpose::Withdraw, &token, Timestamp::now())
            .unwrap();
        assert_eq!(signed, SubmissionId::parse(id).unwrap());
    }
    assert_eq!(outbox_count(&app, "notice"), 2);
    app.stop().await;
}

/// Spam looks like success to its sender, and a duplicate is stored: neither mails
/// the address it names.
#[tokio::test]
async fn spam_and_duplicates_get_no_notice() {
    let smtp = smtp().await;
    let app = visitor_app(&smtp, ConfirmationMode::Notice, |_| {}).await;
    let mut spam = person("Bot", "victim@example.org", "NO");
    spam["_gotcha"] = json!("filled in by a bot");
    sign_up(&app, &spam).await;
    sign_up(&app, &person("Kari Nordmann", "kari@example.org", "NO")).await;
    sign_up(&app, &person("Kari Nordmann", "kari@example.org", "NO")).await;
    let mails = mails_settled(&smtp, 2).await;
    assert!(to(&mails, "victim@example.org").is_empty(), "{mails:#?}");
    assert_eq!(to(&mails, "kari@example.org").len(), 1, "{mails:#?}");
    assert_eq!(mails.len(), 2, "one notification, one notice: {mails:#?}");
    assert_eq!(statuses(&app), ["spam", "accepted", "duplicate"]);
    assert_eq!(outbox_count(&app, "notice"), 1);
    app.stop().await;
}

/// Double opt-in: the visitor gets the confirm link, and the section hears nothing,
/// not even a queued notification, until the visitor confirms.
#[tokio::test]
async fn double_opt_in_mails_a_confirm_link_and_tells_the_section_nothing() {
    let smtp = smtp().await;
    let app = visitor_app(&smtp, ConfirmationMode::DoubleOptIn, |_| {}).await;
    let id = sign_up(&app, &person("Kari Nordmann", "kari@example.org", "NO")).await;
    let mails = mails_settled(&smtp, 1).await;
    assert_eq!(mails.len(), 1, "only the visitor's: {mails:#?}");
    let mail = &mails[0];
    assert_visitor_headers(&app, mail, "kari@example.org");
    // Nobody named a language: the section's (Norway's, Bokmål).
    assert_eq!(mail.subject, "Bekreft påmeldingen din");
    assert_only_the_name_of_theirs(mail);

    let id = SubmissionId::parse(&id).unwrap();
    let key = link_key(&app);
    let (confirmed, expires) = key
        .verify(
            LinkPurpose::Confirm,
            &mail.token("confirm"),
            Timestamp::now(),
        )
        .unwrap();
    assert_eq!(confirmed, id);
    // Until form.confirm_within (7 days by default) after the sign-up, as the mail says.
    let left = expires.since(Timestamp::now());
    assert!(
        left > Duration::from_secs(7 * 86_400 - 60) && left <= Duration::from_secs(7 * 86_400),
        "{left:?}"
    );
    assert!(
        mail.body
            .contains(&format!("Lenken virker til {} (UTC).", expires.date_text())),
        "{}",
        mail.body
    );
    let (withdrawn, _) = key
        .verify(
            LinkPurpose::Withdraw,
            &mail.token("withdraw"),
            Timestamp::now(),
        )
        .unwrap();
    assert_eq!(withdrawn, id);

    assert_eq!(statuses(&app), ["unconfirmed"]);
    assert_eq!(outbox_count(&app, "notification"), 0, "{:?}", outbox(&app));
    assert_eq!(outbox_count(&app, "confirmation"), 1);
    assert!(to(&mails, "oslo@example.org").is_empty());
    app.stop().await;
}

/// The form is off, one section asks for double opt-in: only its visitors are mailed,
/// and only its organisers wait.
#[tokio::test]
async fn a_section_may_ask_for_double_opt_in_while_the_form_does_not() {
    let smtp = smtp().await;
    let app = visitor_app(&smtp, ConfirmationMode::Off, |settings| {
        let sweden = settings
            .sections
            .iter_mut()
            .find(|section| section.name == "Sweden")
            .unwrap();
        sweden.confirmation = Some(ConfirmationMode::DoubleOptIn);
    })
    .await;
    sign_up(&app, &person("Kari Nordmann", "kari@example.org", "NO")).await;
    sign_up(&app, &person("Sven Svensson", "sven@example.org", "SE")).await;
    let mails = mails_settled(&smtp, 2).await;
    assert_eq!(mails.len(), 2, "{mails:#?}");
    assert_eq!(
        to(&mails, "oslo@example.org").len(),
        1,
        "Norway is told at once"
    );
    assert!(
        to(&mails, "kari@example.org").is_empty(),
        "Norway's visitors hear nothing"
    );
    let confirmation = to(&mails, "sven@example.org");
    assert_eq!(confirmation.len(), 1, "{mails:#?}");
    assert_eq!(confirmation[0].subject, "Bekräfta din anmälan");
    assert!(
        to(&mails, "stockholm@example.org").is_empty(),
        "Sweden waits"
    );
    assert_eq!(statuses(&app), ["accepted", "unconfirmed"]);
    app.stop().await;
}

/// Posts `count` sign-ups of one address at once (so that many share the writer's
/// batches); each must be answered 201.
async fn sign_up_many_times(app: &TestApp, count: usize) {
    let tasks: Vec<_> = (0..count)
        .map(|_| {
            let (client, url) = (app.client.clone(), app.url("/join"));
            let body = person("Kari Nordmann", "kari@example.org", "NO");
            tokio::spawn(async move { client.post(url).json(&body).send().await.unwrap() })
        })
        .collect();
    for task in tasks {
        created_id(task.await.unwrap()).await;
    }
}

/// 50 sign-ups of one address in notice mode, none a duplicate (window 0): the section
/// hears of each, the address gets one notice.
#[tokio::test]
async fn fifty_notice_sign_ups_of_one_address_give_one_mail_to_it() {
    let smtp = smtp().await;
    let app = visitor_app(&smtp, ConfirmationMode::Notice, |settings| {
        settings.spam.duplicate_window = HumanDuration::from_secs(0);
    })
    .await;
    sign_up_many_times(&app, 50).await;
    let mails = mails_settled(&smtp, 51).await;
    assert_eq!(to(&mails, "oslo@example.org").len(), 50);
    assert_eq!(
        to(&mails, "kari@example.org").len(),
        1,
        "{} mails",
        mails.len()
    );
    assert_eq!(mails.len(), 51);
    assert_eq!(outbox_count(&app, "notice"), 1);
    assert!(statuses(&app).iter().all(|status| status == "accepted"));
    app.stop().await;
}

/// 50 double opt-in sign-ups of one address: all stored unconfirmed, one confirmation
/// mailed, nothing to the section.
#[tokio::test]
async fn fifty_double_opt_in_sign_ups_of_one_address_give_one_mail_to_it() {
    let smtp = smtp().await;
    let app = visitor_app(&smtp, ConfirmationMode::DoubleOptIn, |_| {}).await;
    sign_up_many_times(&app, 50).await;
    let mails = mails_settled(&smtp, 1).await;
    assert_eq!(mails.len(), 1, "{mails:#?}");
    assert!(mails[0].is_to("kari@example.org"));
    assert_eq!(outbox_count(&app, "confirmation"), 1);
    assert_eq!(outbox(&app).len(), 1, "{:?}", outbox(&app));
    let statuses = statuses(&app);
    assert_eq!(statuses.len(), 50);
    assert!(statuses.iter().all(|status| status == "unconfirmed"));
    app.stop().await;
}

/// Past `rate_limit.visitor_mails_per_hour`, sign-ups are still stored and answered,
/// and their mails wait in the outbox for the hour to free a place, without an
/// attempt counted.
#[tokio::test]
async fn a_burst_of_addresses_past_the_hourly_cap_queues_rather_than_sends() {
    let smtp = smtp().await;
    let app = visitor_app(&smtp, ConfirmationMode::DoubleOptIn, |settings| {
        settings.rate_limit.visitor_mails_per_hour = 3;
    })
    .await;
    for n in 0..6 {
        sign_up(
            &app,
            &person("Kari Nordmann", &format!("kari{n}@example.org"), "NO"),
        )
        .await;
    }
    let mails = mails_settled(&smtp, 3).await;
    assert_eq!(mails.len(), 3, "{mails:#?}");
    assert_eq!(statuses(&app), ["unconfirmed"; 6]);
    let rows = outbox(&app);
    assert_eq!(rows.len(), 6, "{rows:?}");
    assert!(rows.iter().all(|row| row.0 == "confirmation"), "{rows:?}");
    let sent = rows.iter().filter(|row| row.1 == "sent").count();
    assert_eq!(sent, 3, "{rows:?}");
    let now = Timestamp::now();
    for (_, state, attempts, next) in rows.iter().filter(|row| row.1 != "sent") {
        assert_eq!(state, "pending");
        assert_eq!(*attempts, 0, "waiting is not an attempt");
        // When the hour's first send leaves the window: about an hour from now.
        let wait = next.since(now);
        assert!(
            wait > Duration::from_secs(3600 - 60) && wait <= Duration::from_secs(3601),
            "{wait:?}"
        );
    }
    app.stop().await;
}
