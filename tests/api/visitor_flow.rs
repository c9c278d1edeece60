//! The visitor's side end to end, and as operators see it.
//!
//! End to end, a test has only what a person has: the form page, the mails that reach
//! the test SMTP server (their decoded bodies, the links in them as written) and the
//! pages those links open, whose buttons it presses as a browser would (the form's
//! hidden fields, the headers a browser sends). The server's `public_url` is its own
//! loopback address, so a link in a mail is followed exactly as it stands. What the
//! database holds is looked at only to check the outcome.
//!
//! For operators: what becomes of sign-ups nobody confirmed (double opt-in), in the
//! purge and in exports.

use std::net::SocketAddr;

use joinform::config::HumanDuration;
use joinform::domain::{ConfirmationMode, Timestamp};
use joinform::i18n::Texts;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use url::Url;

use crate::helpers::{TestApp, created_id, spawn_app_with, use_smtp};
use crate::operator_helpers::{
    age_submission, audit_of, connect, run_cli, stderr, stdout, write_config,
};
use crate::smtp::SmtpServer;
use crate::visitor_mails::{Mail, QUIET, WAIT, distinct, mails_settled, smtp, to};
use crate::visitor_pages::{
    assert_page_headers, files_containing, html, policy, shown, shown_with, shown_with_ltr,
    with_visitors,
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

// ---------------------------------------------------------------------------------
// End to end: the mails in the SMTP server and the pages their links open.
// ---------------------------------------------------------------------------------

/// A server mailing through `smtp`, whose `server.public_url` is its own address (so
/// the links in its mails can be followed as they stand), with the form's confirmation
/// `mode` and the visitor settings of the pages' tests ([`with_visitors`]: Sweden's
/// sign-ups are accepted at once and mail nobody but Sweden; an extra field
/// `member_of`). No follow-up, no pace, and a form may be sent at once.
async fn flow_app(smtp: &SmtpServer, mode: ConfirmationMode) -> TestApp {
    // A free port, closed again for the server to listen on: the tests' way to know an
    // address before the server starts (as `smtp::closed_port` is used elsewhere).
    let address: SocketAddr = crate::smtp::closed_port();
    spawn_app_with(|settings| {
        with_visitors(settings);
        use_smtp(settings, smtp.port());
        settings.server.listen = address;
        settings.server.public_url = Some(format!("http://{address}"));
        settings.form.confirmation = mode;
        settings.followup.enabled = Some(false);
        settings.mail.max_per_second = 1000;
        // A person takes seconds over the form; the test need not.
        settings.spam.min_fill = HumanDuration::from_secs(0);
    })
    .await
}

/// A page as the browser holds it.
#[derive(Debug)]
pub(crate) struct Page {
    pub(crate) url: Url,
    pub(crate) status: u16,
    headers: HeaderMap,
    pub(crate) html: String,
}

impl Page {
    /// The page's one form that posts: where it posts (resolved against the page's
    /// address, as a browser resolves it) and its fields as a browser sends them when
    /// the person filled in `typed`: hidden fields with their values, the ones typed
    /// with theirs, every other text field, text area and list empty, a box only when
    /// ticked. Panics when the person types into a field the form does not have.
    fn form(&self, typed: &[(&str, &str)]) -> (Url, Vec<(String, String)>) {
        let forms: Vec<&str> = self.html.split("<form").skip(1).collect();
        let posting: Vec<&str> = forms
            .iter()
            .copied()
            .filter(|form| {
                attributes(form)
                    .iter()
                    .any(|(n, v)| n == "method" && v == "post")
            })
            .collect();
        assert_eq!(posting.len(), 1, "one form on {}:\n{}", self.url, self.html);
        let form = &posting[0][..posting[0].find("</form>").unwrap()];
        let action = attributes(form)
            .into_iter()
            .find_map(|(name, value)| (name == "action").then_some(value));
        let target = match action {
            Some(action) => self.url.join(&action).unwrap(),
            None => self.url.clone(),
        };
        let mut fields = Vec::new();
        for (tag, rest) in ["<input", "<textarea", "<select"].iter().flat_map(|tag| {
            form.match_indices(tag)
                .map(move |(at, _)| (*tag, &form[at..]))
        }) {
            let attributes = attributes(&rest[tag.len()..]);
            let attribute = |name: &str| {
                attributes
                    .iter()
                    .find_map(|(n, v)| (n == name).then(|| v.clone()))
            };
            let Some(name) = attribute("name") else {
                continue;
            };
            let typed_value = typed
                .iter()
                .find_map(|(n, v)| (*n == name).then(|| (*v).to_owned()));
            let kind = attribute("type").unwrap_or_default();
            let value = match (tag, kind.as_str()) {
                ("<input", "hidden") => attribute("value"),
                ("<input", "checkbox") => typed_value,
                _ => Some(typed_value.unwrap_or_default()),
            };
            if let Some(value) = value {
                fields.push((name, value));
            }
        }
        for (name, _) in typed {
            assert!(
                fields.iter().any(|(n, _)| n == name),
                "the form on {} has no field {name}",
                self.url
            );
        }
        (target, fields)
    }

    fn has_button(&self) -> bool {
        self.html.contains("<button")
    }
}

/// A tag's attributes from just after its name to its `>`: quoted or bare values,
/// entities decoded.
fn attributes(tag: &str) -> Vec<(String, String)> {
    let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
    let mut found = Vec::new();
    let mut rest = tag.trim_start();
    while !rest.is_empty() {
        let end = rest.find(['=', ' ', '\n']).unwrap_or(rest.len());
        let name = rest[..end].to_ascii_lowercase();
        rest = &rest[end..];
        let value = if let Some(after) = rest.strip_prefix('=') {
            let (value, left) = if let Some(quoted) = after.strip_prefix('"') {
                let close = quoted.find('"').unwrap();
                (&quoted[..close], &quoted[close + 1..])
            } else {
                let close = after.find([' ', '\n']).unwrap_or(after.len());
                (&after[..close], &after[close..])
            };
            rest = left;
            value
                .replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&")
        } else {
            String::new()
        };
        if !name.is_empty() {
            found.push((name, value));
        }
        rest = rest.trim_start();
    }
    found
}

/// The visitor's browser: opens addresses, presses a page's button, follows a
/// redirect after a form, and sends what a browser sends with it.
pub(crate) struct Browser {
    client: reqwest::Client,
    /// The browser's `Accept-Language`.
    languages: &'static str,
}

impl Browser {
    pub(crate) fn new(app: &TestApp, languages: &'static str) -> Self {
        Self {
            client: app.client.clone(),
            languages,
        }
    }

    async fn answer(url: Url, response: reqwest::Response) -> Page {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let html = response.text().await.unwrap();
        Page {
            url,
            status,
            headers,
            html,
        }
    }

    /// A link followed, or an address typed.
    pub(crate) async fn open(&self, url: &Url) -> Page {
        let response = self
            .client
            .get(url.clone())
            .header("accept", "text/html")
            .header("accept-language", self.languages)
            .header("sec-fetch-site", "none")
            .send()
            .await
            .unwrap();
        Self::answer(url.clone(), response).await
    }

    /// What a mail scanner's or a link preview's HEAD gets: the status.
    async fn head(&self, url: &Url) -> u16 {
        self.client
            .head(url.clone())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// The page's button pressed after the person filled in `typed`. From a page that
    /// sends no referrer a browser says `Origin: null`; else the page's origin. A 303
    /// is followed as a browser follows it.
    pub(crate) async fn press(&self, page: &Page, typed: &[(&str, &str)]) -> Page {
        let (target, fields) = page.form(typed);
        let origin = if page
            .headers
            .get("referrer-policy")
            .is_some_and(|policy| policy == "no-referrer")
        {
            "null".to_owned()
        } else {
            page.url.origin().ascii_serialization()
        };
        let same = target.origin() == page.url.origin();
        let response = self
            .client
            .post(target.clone())
            .header("accept", "text/html")
            .header("accept-language", self.languages)
            .header("origin", origin)
            .header(
                "sec-fetch-site",
                if same { "same-origin" } else { "cross-site" },
            )
            .form(&fields)
            .send()
            .await
            .unwrap();
        if response.status() == 303 {
            let location = response.headers()["location"].to_str().unwrap();
            let next = target.join(location).unwrap();
            return self.open(&next).await;
        }
        Self::answer(target, response).await
    }
}

/// Waits (at most [`WAIT`]) for the first mail to `address` and returns it.
pub(crate) async fn mail_to(smtp: &SmtpServer, address: &str) -> Mail {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(mail) = to(&distinct(smtp), address).first() {
            return (*mail).clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no mail to {address} within {WAIT:?}; arrived: {:#?}",
            distinct(smtp)
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The links in a mail's decoded body, as written.
pub(crate) fn links(mail: &Mail) -> Vec<Url> {
    mail.body
        .split_whitespace()
        .filter(|word| word.starts_with("http://") || word.starts_with("https://"))
        .map(|word| Url::parse(word).unwrap())
        .collect()
}

/// The one link in `mail` to a page under `/{page}/`; it must be under the server's
/// public address.
fn link(app: &TestApp, mail: &Mail, page: &str) -> Url {
    let public = app.settings.server.public_url().unwrap();
    let all = links(mail);
    for link in &all {
        assert!(
            link.as_str().starts_with(&format!("{public}/")),
            "{link} is not under {public}:\n{}",
            mail.body
        );
    }
    let found: Vec<&Url> = all
        .iter()
        .filter(|link| link.path().starts_with(&format!("/{page}/")))
        .collect();
    assert_eq!(found.len(), 1, "one {page} link in:\n{}", mail.body);
    found[0].clone()
}

/// The address of a page of the app, as a person types it.
fn address_of(app: &TestApp, path: &str) -> Url {
    Url::parse(&app.url(path)).unwrap()
}

/// The kinds of the outbox's rows, in queue order.
fn outbox_kinds(app: &TestApp) -> Vec<String> {
    connect(app)
        .prepare("SELECT kind FROM outbox ORDER BY created_at, id")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// How many sign-ups are stored under `address` (matched as erasure matches it).
fn sign_ups_of(app: &TestApp, address: &str) -> i64 {
    connect(app)
        .query_row(
            "SELECT count(*) FROM submissions WHERE email_key = lower(?1)",
            [address],
            |row| row.get(0),
        )
        .unwrap()
}

/// The headers of the section's notification about the visitor: to the section's
/// contacts alone, answerable to the visitor.
fn assert_notification(mail: &Mail, contact: &str, visitor: &str) {
    assert_eq!(mail.rcpt_to, [format!("<{contact}>")], "{mail:#?}");
    assert!(
        mail.header("To").is_some_and(|to| to.contains(contact)),
        "{mail:#?}"
    );
    assert!(
        mail.header("Reply-To")
            .is_some_and(|reply_to| reply_to.contains(&format!("<{visitor}>"))),
        "Reply-To the visitor: {mail:#?}"
    );
}

/// What a person fills in, beside their name and address: every field, so that a
/// byte search after erasure has something to miss.
const PHONE: &str = "+47 912 34 567";
const CITY: &str = "Vxqkrtown";
const MESSAGE: &str = "I would like to help, greetings from jmqpzvwy";
const MEMBER_OF: &str = "Union of Plorkfiddlers";

/// Double opt-in through real mail: the form, the confirmation mail, its link opened
/// (and opened again, and looked at with HEAD) while the section hears nothing, then
/// the page's button, after which the section's notification arrives and the sign-up
/// is accepted with its proof.
#[tokio::test]
async fn double_opt_in_end_to_end_the_section_hears_nothing_before_the_button() {
    const NAME: &str = "Ada Lovelace";
    const ADDRESS: &str = "ada.lovelace@example.org";
    let smtp = smtp().await;
    let app = flow_app(&smtp, ConfirmationMode::DoubleOptIn).await;
    let policy = policy(&app).await;
    let browser = Browser::new(&app, "en-GB,en;q=0.8");

    // The form, filled in and sent as a person sends it.
    let form = browser.open(&address_of(&app, "/join?lang=en")).await;
    assert_eq!(form.status, 200, "{}", form.html);
    let thanks = browser
        .press(
            &form,
            &[
                ("name", NAME),
                ("email", ADDRESS),
                ("country", "NO"),
                ("phone", PHONE),
                ("city", CITY),
                ("message", MESSAGE),
                ("member_of", MEMBER_OF),
                ("consent", "on"),
            ],
        )
        .await;
    assert_eq!(thanks.status, 200, "{}", thanks.html);
    assert_eq!(thanks.url.path(), "/join/thanks");
    assert!(
        thanks
            .html
            .contains(&shown("en", "visitor_thanks_confirm_title")),
        "the thank-you page asks to confirm by mail: {}",
        thanks.html
    );

    // The confirmation mail, in the page's language.
    let mail = mail_to(&smtp, ADDRESS).await;
    let english = Texts::new("en");
    assert_eq!(mail.subject, english.get("mail_confirmation_subject"));
    assert!(
        mail.body.starts_with(&format!("Hello {NAME},\n")),
        "{}",
        mail.body
    );
    let confirm = link(&app, &mail, "confirm");
    // The day the mail says the details are deleted by, if nobody confirms: the
    // confirm page names the same one.
    let deleted_by = {
        let ignore = english.get("mail_confirmation_ignore");
        let before = &ignore[..ignore.find("{date}").unwrap()];
        let at = mail.body.find(before).unwrap() + before.len();
        mail.body[at..at + "YYYY-MM-DD".len()].to_owned()
    };

    // Opened three times, and looked at with HEAD, as mail scanners and previews do.
    for round in 0..3 {
        let page = browser.open(&confirm).await;
        assert_eq!(page.status, 200, "round {round}: {}", page.html);
        assert_page_headers(&policy, &page.headers, "confirm page");
        assert!(
            page.html.contains(&shown("en", "visitor_confirm_title")),
            "{}",
            page.html
        );
        assert!(
            page.html.contains(&shown_with(
                "en",
                "visitor_confirm_text",
                "{section}",
                "Norway"
            )),
            "{}",
            page.html
        );
        assert!(
            page.html.contains(&shown_with_ltr(
                "en",
                "visitor_confirm_not_you",
                "{date}",
                &deleted_by
            )),
            "the mail says by {deleted_by}: {}",
            page.html
        );
        assert!(page.has_button(), "{}", page.html);
        assert_eq!(browser.head(&confirm).await, 200);
    }
    // Nothing for the section: not in the SMTP server after a quiet while, not even
    // queued.
    tokio::time::sleep(QUIET).await;
    let mails = distinct(&smtp);
    assert!(
        to(&mails, "oslo@example.org").is_empty(),
        "the section heard before the visitor confirmed: {mails:#?}"
    );
    assert_eq!(mails.len(), 1, "the confirmation alone: {mails:#?}");
    assert_eq!(outbox_kinds(&app), ["confirmation"]);
    let status: String = connect(&app)
        .query_row("SELECT status FROM submissions", [], |row| row.get(0))
        .unwrap();
    assert_eq!(status, "unconfirmed", "opening the link confirmed nothing");

    // The button, pressed on the page the link opened.
    let page = browser.open(&confirm).await;
    let pressed = Timestamp::now();
    let confirmed = browser.press(&page, &[]).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.html);
    assert_eq!(
        confirmed.url, confirm,
        "the button posts to the link itself"
    );
    assert_page_headers(&policy, &confirmed.headers, "confirmed");
    assert!(
        confirmed
            .html
            .contains(&shown("en", "visitor_confirmed_title")),
        "{}",
        confirmed.html
    );
    assert!(
        confirmed.html.contains(&shown_with(
            "en",
            "visitor_confirmed_text",
            "{section}",
            "Norway"
        )),
        "{}",
        confirmed.html
    );

    // Now the section hears of the visitor, and can answer them.
    let notification = mail_to(&smtp, "oslo@example.org").await;
    assert_notification(&notification, "oslo@example.org", ADDRESS);
    assert!(notification.body.contains(NAME), "{}", notification.body);
    let mails = mails_settled(&smtp, 2).await;
    assert_eq!(
        mails.len(),
        2,
        "one confirmation, one notification: {mails:#?}"
    );

    // Accepted, with the proof: the library's own row, and the two keyed hashes it
    // does not carry.
    let rows = app.rows();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(
        (
            row.status.as_str(),
            row.followup.map(|state| state.as_str())
        ),
        ("accepted", Some("new"))
    );
    let confirmed_at = row.confirmed_at.expect("the time of confirmation is kept");
    assert!(
        pressed <= confirmed_at && confirmed_at <= Timestamp::now(),
        "{confirmed_at} is when the button was pressed"
    );
    let (client_hash, confirm_hash): (Option<String>, Option<String>) = connect(&app)
        .query_row(
            "SELECT client_hash, confirm_client_hash FROM submissions",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert!(
        confirm_hash
            .as_ref()
            .is_some_and(|hash| !hash.is_empty() && !hash.contains("127.0.0.1")),
        "{confirm_hash:?}"
    );
    assert_eq!(
        confirm_hash, client_hash,
        "the confirming client's keyed hash (same client, same day's key)"
    );
    assert_eq!(
        row.consent_text.as_deref(),
        Some(english.consent_text().as_str()),
        "the consent text the visitor saw"
    );
    assert!(
        row.consent_version
            .as_ref()
            .is_some_and(|version| version.len() == 16),
        "{:?}",
        row.consent_version
    );
    assert_eq!(outbox_kinds(&app), ["confirmation", "notification"]);
    app.stop().await;
}

/// Notice mode through real mail: the section's notification and the visitor's notice
/// arrive; the notice's withdraw link shows a page, its button erases every sign-up of
/// the address, and the database's files hold nothing of them afterwards.
#[tokio::test]
async fn a_notice_end_to_end_and_its_withdraw_link_erases_the_address_from_the_files() {
    const NAME: &str = "Ingrid Qwfpgjluy";
    const ADDRESS: &str = "ingrid.zxkvbmq@example.org";
    let smtp = smtp().await;
    let app = flow_app(&smtp, ConfirmationMode::Notice).await;
    let policy = policy(&app).await;
    let browser = Browser::new(&app, "de-DE,de;q=0.9,en;q=0.5");
    let german = Texts::new("de");

    let form = browser.open(&address_of(&app, "/join?lang=de")).await;
    let thanks = browser
        .press(
            &form,
            &[
                ("name", NAME),
                ("email", ADDRESS),
                ("country", "NO"),
                ("phone", PHONE),
                ("city", CITY),
                ("message", MESSAGE),
                ("member_of", MEMBER_OF),
                ("consent", "on"),
            ],
        )
        .await;
    assert_eq!(thanks.status, 200, "{}", thanks.html);
    assert!(
        thanks.html.contains(&shown("de", "thanks_title")),
        "in notice mode the thanks are the usual ones: {}",
        thanks.html
    );
    // The same person again, for Sweden: a duplicate, stored and mailed to nobody. And
    // somebody else in Sweden, whose sign-up must stay.
    let sweden = json!({"name": NAME, "email": ADDRESS, "country": "SE", "consent": true});
    created_id(app.post_json(&sweden).await).await;
    let other = json!({"name": "Kari Nordmann", "email": "kari@example.org",
                       "country": "SE", "consent": true});
    created_id(app.post_json(&other).await).await;

    let notice = mail_to(&smtp, ADDRESS).await;
    assert_eq!(notice.subject, german.get("mail_notice_subject"));
    assert!(
        notice.body.starts_with(&format!("Hallo {NAME},\n")),
        "{}",
        notice.body
    );
    let notification = mail_to(&smtp, "oslo@example.org").await;
    assert_notification(&notification, "oslo@example.org", ADDRESS);
    mail_to(&smtp, "stockholm@example.org").await;
    // Settled: the notice is the one mail to the visitor.
    let mails = mails_settled(&smtp, 3).await;
    assert_eq!(to(&mails, ADDRESS).len(), 1, "one mail a day: {mails:#?}");
    assert_eq!(mails.len(), 3, "{mails:#?}");

    let needles = [
        ADDRESS,
        "zxkvbmq",
        "Qwfpgjluy",
        CITY,
        "jmqpzvwy",
        "Plorkfiddlers",
    ];
    for needle in needles {
        assert!(
            !files_containing(&app, needle).is_empty(),
            "the search sees `{needle}` while it is stored"
        );
    }

    // The link in the notice: a page, and a button.
    let withdraw = link(&app, &notice, "withdraw");
    let page = browser.open(&withdraw).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert_page_headers(&policy, &page.headers, "withdraw page");
    assert!(
        page.html.contains(&shown("de", "visitor_withdraw_title")),
        "{}",
        page.html
    );
    assert_eq!(browser.head(&withdraw).await, 200);
    assert_eq!(
        sign_ups_of(&app, ADDRESS),
        2,
        "opening the link erases nothing"
    );
    let withdrawn = browser.press(&page, &[]).await;
    assert_eq!(withdrawn.status, 200, "{}", withdrawn.html);
    assert!(
        withdrawn
            .html
            .contains(&shown("de", "visitor_withdrawn_title")),
        "{}",
        withdrawn.html
    );

    assert_eq!(
        sign_ups_of(&app, ADDRESS),
        0,
        "every sign-up of the address"
    );
    assert_eq!(
        sign_ups_of(&app, "kari@example.org"),
        1,
        "somebody else's stays"
    );
    let forgets = audit_of(&app, "forget");
    assert_eq!(forgets.len(), 1, "{forgets:?}");
    assert_eq!(forgets[0].0, "visitor");
    let details: Value = serde_json::from_str(&forgets[0].2).unwrap();
    assert_eq!(details["submissions"], 2, "{details}");
    for needle in needles {
        assert!(
            files_containing(&app, needle).is_empty(),
            "`{needle}` is still in {:?}",
            files_containing(&app, needle)
        );
    }
    let files = std::fs::read_dir(app.db_path.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect::<Vec<_>>();
    assert!(
        files.iter().any(|name| name == "joinform.db-wal"),
        "the WAL was searched too: {files:?}"
    );
    app.stop().await;
}

/// The right of access through real mail: `/my-data` asked for a known address, the
/// access mail's link shows every field, the page's button erases it all; an unknown
/// address gets the same answer, byte for byte, and no mail at all.
#[tokio::test]
async fn my_data_end_to_end_the_mailed_link_shows_everything_and_erases_it() {
    const NAME: &str = "Grace Hopperqz";
    const ADDRESS: &str = "grace.wvbnhop@example.org";
    const UNKNOWN: &str = "nobody.wvbnhop@example.org";
    let smtp = smtp().await;
    let app = flow_app(&smtp, ConfirmationMode::DoubleOptIn).await;
    let policy = policy(&app).await;
    let browser = Browser::new(&app, "en");

    // Signed up in Sweden, whose sign-ups are accepted at once and mail the visitor
    // nothing: their one mail of the day is still to be had.
    let form = browser.open(&address_of(&app, "/join?lang=en")).await;
    let typed = [
        ("name", NAME),
        ("email", ADDRESS),
        ("country", "SE"),
        ("phone", PHONE),
        ("city", CITY),
        ("message", MESSAGE),
        ("member_of", MEMBER_OF),
        ("consent", "on"),
    ];
    let thanks = browser.press(&form, &typed).await;
    assert_eq!(thanks.status, 200, "{}", thanks.html);
    mail_to(&smtp, "stockholm@example.org").await;

    // Asked for, as typed by a person who does not mind the case.
    let my_data = browser.open(&address_of(&app, "/my-data")).await;
    assert_eq!(my_data.status, 200, "{}", my_data.html);
    let answer = browser
        .press(&my_data, &[("email", &ADDRESS.to_uppercase())])
        .await;
    assert_eq!(answer.status, 200, "{}", answer.html);
    assert_page_headers(&policy, &answer.headers, "my-data answer");
    assert!(
        answer
            .html
            .contains(&shown("en", "visitor_my_data_sent_title")),
        "{}",
        answer.html
    );
    let unknown = browser.press(&my_data, &[("email", UNKNOWN)]).await;
    assert_eq!(unknown.status, answer.status);
    assert_eq!(unknown.html, answer.html, "the same answer, byte for byte");

    let access = mail_to(&smtp, ADDRESS).await;
    assert_eq!(
        access.rcpt_to,
        [format!("<{ADDRESS}>")],
        "to the address alone"
    );
    assert_eq!(access.subject, Texts::new("en").get("mail_access_subject"));
    let page = browser.open(&link(&app, &access, "my-data")).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert_page_headers(&policy, &page.headers, "access page");
    for shown_value in [
        html(NAME),
        format!("<bdi dir=ltr>{ADDRESS}</bdi>"),
        format!("<bdi dir=ltr>{PHONE}</bdi>"),
        html(CITY),
        html(MESSAGE),
        html(MEMBER_OF),
        "Sweden (SE)".to_owned(),
        "<bdi>Sweden</bdi>".to_owned(),
        html(&Texts::new("en").consent_text()),
        shown("en", "visitor_status_accepted"),
        shown("en", "visitor_followup_new"),
    ] {
        assert!(
            page.html.contains(&shown_value),
            "`{shown_value}` is not on the page: {}",
            page.html
        );
    }
    assert_eq!(page.html.matches("<section class=record>").count(), 1);

    let withdrawn = browser.press(&page, &[]).await;
    assert_eq!(withdrawn.status, 200, "{}", withdrawn.html);
    assert_eq!(withdrawn.url.path().split('/').nth(1), Some("withdraw"));
    assert!(
        withdrawn
            .html
            .contains(&shown("en", "visitor_withdrawn_title")),
        "{}",
        withdrawn.html
    );
    assert_eq!(sign_ups_of(&app, ADDRESS), 0);
    let forgets = audit_of(&app, "forget");
    assert_eq!(forgets.len(), 1, "{forgets:?}");
    assert_eq!(forgets[0].0, "visitor");
    for needle in [
        ADDRESS,
        "wvbnhop",
        "Hopperqz",
        CITY,
        "jmqpzvwy",
        "Plorkfiddlers",
    ] {
        assert!(
            files_containing(&app, needle).is_empty(),
            "`{needle}` is still in {:?}",
            files_containing(&app, needle)
        );
    }

    // Nothing ever went to the unknown address.
    tokio::time::sleep(QUIET).await;
    let mails = distinct(&smtp);
    assert!(to(&mails, UNKNOWN).is_empty(), "{mails:#?}");
    assert_eq!(to(&mails, ADDRESS).len(), 1, "{mails:#?}");
    app.stop().await;
}

/// A notice's withdraw link opened again after the visitor withdrew (a second click,
/// the browser's back button and the form sent again): a page saying nothing is
/// stored, in the browser's language, never an error, and nothing done twice.
#[tokio::test]
async fn a_notices_withdraw_link_after_withdrawing_says_nothing_is_stored() {
    const ADDRESS: &str = "second.click@example.org";
    let smtp = smtp().await;
    let app = flow_app(&smtp, ConfirmationMode::Notice).await;
    let policy = policy(&app).await;
    let browser = Browser::new(&app, "de-DE,de;q=0.9");
    created_id(
        app.post_json(
            &json!({"name": "Klaus Zweimal", "email": ADDRESS, "country": "NO",
                              "consent": true, "_lang": "de"}),
        )
        .await,
    )
    .await;
    let notice = mail_to(&smtp, ADDRESS).await;
    mail_to(&smtp, "oslo@example.org").await;
    let withdraw = link(&app, &notice, "withdraw");
    let page = browser.open(&withdraw).await;
    let withdrawn = browser.press(&page, &[]).await;
    assert!(
        withdrawn
            .html
            .contains(&shown("de", "visitor_withdrawn_title")),
        "{}",
        withdrawn.html
    );
    assert_eq!(sign_ups_of(&app, ADDRESS), 0);

    // The link again, and the old page's button again.
    let again = browser.open(&withdraw).await;
    let resent = browser.press(&page, &[]).await;
    for (what, page) in [("opened again", &again), ("sent again", &resent)] {
        assert_eq!(page.status, 200, "{what}: {}", page.html);
        assert_page_headers(&policy, &page.headers, what);
        assert!(
            page.html.starts_with("<!doctype html>\n<html lang=\"de\""),
            "{what}: in the browser's language: {}",
            page.html
        );
        assert!(
            page.html.contains(&shown("de", "visitor_nothing_title")),
            "{what}: {}",
            page.html
        );
        assert!(
            !page.has_button(),
            "{what}: nothing to press: {}",
            page.html
        );
    }
    assert_eq!(browser.head(&withdraw).await, 200);
    // Its way on: the page that asks for a link to whatever else is stored.
    let main = &again.html[again.html.find("<main").unwrap()..];
    let onwards = again
        .url
        .join(
            &attributes(&main[main.find("<a ").unwrap() + 2..])
                .into_iter()
                .find_map(|(name, value)| (name == "href").then_some(value))
                .unwrap(),
        )
        .unwrap();
    assert_eq!(onwards.path(), "/my-data");
    let my_data = browser.open(&onwards).await;
    assert_eq!(my_data.status, 200, "{}", my_data.html);
    assert!(my_data.html.contains(&shown("de", "visitor_my_data_title")));
    assert_eq!(audit_of(&app, "forget").len(), 1, "erased once");
    assert!(
        outbox_kinds(&app).is_empty(),
        "the notice's row went with the sign-up"
    );
    app.stop().await;
}

/// A double opt-in sign-up confirmed days after it was made waits from its
/// confirmation: its section could not act on it before. So it is not overdue at once,
/// and its wait and time to first contact count from then.
#[tokio::test]
async fn a_sign_up_confirmed_late_waits_from_its_confirmation() {
    let app = double_opt_in_app().await;
    let late = sign_up(&app, "late@example.org", "SE").await;
    let late = age_submission(&app, &late, 4, 0);
    let old = sign_up(&app, "old@example.org", "NO").await;
    let old = age_submission(&app, &old, 4, 0);
    let confirm = crate::visitor_pages::token(&app, joinform::visitor::LinkPurpose::Confirm, &late);
    let csrf = crate::visitor_pages::visitor_key(&app).csrf_value(&confirm);
    let response = app
        .client
        .post(app.url(&format!("/confirm/{confirm}")))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);

    let config = write_config(&app);
    let output = run_cli(&config, &["followup", "list"], None).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let listing = stdout(&output);
    let line_of = |id: &str| {
        listing
            .lines()
            .find(|line| line.starts_with(id))
            .unwrap_or_else(|| panic!("{id} listed: {listing}"))
            .to_owned()
    };
    assert!(line_of(&old).ends_with("(overdue)"), "{listing}");
    assert!(
        !line_of(&late).contains("overdue"),
        "confirmed a moment ago: not overdue although made 4 days ago\n{listing}"
    );
    let output = run_cli(&config, &["followup", "list", "--overdue"], None).await;
    assert!(!stdout(&output).contains(&late), "{}", stdout(&output));

    // Contacted an hour after confirming: the time to first contact is that hour.
    let connection = connect(&app);
    connection
        .execute(
            "UPDATE submissions SET followup = 'contacted',
                    contacted_at = strftime('%Y-%m-%dT%H:%M:%f000Z', confirmed_at, '+3600 seconds')
             WHERE id = ?1",
            [&late],
        )
        .unwrap();
    let contact = joinform::store::followup::first_contacts(&connection).unwrap();
    let wait = contact
        .iter()
        .find_map(|row| Some(row.contacted_at?.since(row.waiting_since)))
        .unwrap();
    // SQLite's strftime keeps milliseconds, so the hour may be a fraction short.
    assert!((3599..=3600).contains(&wait.as_secs()), "{wait:?}");
    app.stop().await;
}
