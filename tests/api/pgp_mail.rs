//! OpenPGP-encrypted mail to a section with `pgp_keys` (issue 18): what leaves the
//! server is PGP/MIME (RFC 3156 §4) that GnuPG, an independent reader, decrypts to the
//! clear mail; the outside shows nothing of the sign-up but the bare Reply-To address.
//! Through the real server and the test SMTP server; `check-config` through the real
//! binary. Without GnuPG the GnuPG side is skipped loudly (and fails under `CI=true`);
//! the structure and rPGP's decryption are still checked.

use std::collections::VecDeque;
use std::time::Duration;

use base64::Engine as _;
use joinform::config::{DigestSchedule, ExtraFieldSettings, Settings};
use joinform::domain::Timestamp;
use joinform::mail::Templates;
use joinform::routing::Routing;
use joinform::store::outbox::DueNotification;
use mail_parser::{Message, MessageParser, MimeHeaders};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::gnupg::{GnuPg, key_file};
use crate::helpers::{TestApp, created_id, spawn_app_with, use_smtp};
use crate::process::Joinform;
use crate::smtp::{Behaviour, Captured, SmtpServer};

const WAIT: Duration = Duration::from_secs(15);
const OSLO: &str = "<oslo@example.org>";
/// `gpg --show-keys` of the test keys in tests/data/openpgp.
const NORWAY_FPR: &str = "14E6B35B2E26669A693B3526E5516617CE918B09";
const SWEDEN_RSA_FPR: &str = "A16E789B5C288F70B5821138BE5165671169E82D";

async fn smtp() -> SmtpServer {
    SmtpServer::start(Behaviour::Scripted(VecDeque::new())).await
}

/// The sign-up whose values must not show outside: non-ASCII in its name, every
/// field a notification shows, an extra answer.
fn person(country: &str) -> Value {
    json!({
        "name": "Åse Fjellstad-Øren",
        "email": "ase.fjellstad@example.org",
        "country": country,
        "phone": "+47 912 34 567",
        "city": "Hammerfest",
        "message": "Hei!\nJeg vil gjerne bli med i lokallaget.",
        "language": "nb",
        "organisation": "Fagforbundet Finnmark",
        "consent": true,
    })
}

/// Every value of [`person`] but the address, and pieces of them.
const PRIVATE: [&str; 10] = [
    "Åse",
    "Fjellstad-Øren",
    "Øren",
    "912 34 567",
    "91234567",
    "Hammerfest",
    "Hei!",
    "lokallaget",
    "Fagforbundet",
    "Finnmark",
];

/// Mail from the shipped sections through `smtp`, one extra field, follow-up off;
/// `adjust` last.
async fn app_with(smtp: &SmtpServer, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with(|settings| {
        use_smtp(settings, smtp.port());
        settings.followup.enabled = Some(false);
        settings.form.extra_fields.push(ExtraFieldSettings {
            name: "organisation".into(),
            max_length: 100,
            required: false,
        });
        adjust(settings);
    })
    .await
}

fn set_keys(settings: &mut Settings, section: &str, keys: &[&str]) {
    let section = settings
        .sections
        .iter_mut()
        .find(|s| s.name == section)
        .unwrap();
    section.pgp_keys = keys.iter().map(|name| key_file(name)).collect();
}

fn parse(raw: &[u8]) -> Message<'_> {
    MessageParser::default().parse(raw).unwrap()
}

/// The header block of a raw message (up to the first empty line).
fn header_block(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    text.split_once("\r\n\r\n")
        .map_or(text.to_string(), |(headers, _)| headers.to_owned())
}

/// Waits until `count` captured mails satisfy `wanted`, at most [`WAIT`]; every mail
/// so far.
async fn wait_for(smtp: &SmtpServer, count: usize, wanted: impl Fn(&Captured) -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while smtp.messages().iter().filter(|m| wanted(m)).count() < count
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn subject_of(captured: &Captured) -> String {
    parse(&captured.data)
        .subject()
        .unwrap_or_default()
        .to_owned()
}

/// The one captured mail to `to` whose outer subject starts with `subject`.
fn the_mail(smtp: &SmtpServer, to: &str, subject: &str) -> Captured {
    let found: Vec<Captured> = smtp
        .messages()
        .into_iter()
        .filter(|m| m.rcpt_to.iter().any(|r| r == to) && subject_of(m).starts_with(subject))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one mail to {to} with subject {subject}; subjects: {:?}",
        smtp.messages().iter().map(subject_of).collect::<Vec<_>>()
    );
    found.into_iter().next().unwrap()
}

/// Checks the RFC 3156 §4 structure of `raw` and returns its armoured message:
/// `multipart/encrypted` with the quoted `protocol="application/pgp-encrypted"`,
/// exactly two parts, the first `application/pgp-encrypted` saying `Version: 1`,
/// the second `application/octet-stream` holding the armour.
fn pgp_mime(raw: &[u8]) -> String {
    let headers = header_block(raw);
    assert!(
        headers.contains("protocol=\"application/pgp-encrypted\""),
        "{headers}"
    );
    let message = parse(raw);
    let content_type = message.content_type().unwrap();
    assert_eq!(content_type.ctype(), "multipart");
    assert_eq!(content_type.subtype(), Some("encrypted"));
    assert_eq!(
        content_type.attribute("protocol"),
        Some("application/pgp-encrypted")
    );
    let parts = message.root_part().sub_parts().unwrap();
    assert_eq!(parts.len(), 2, "exactly two parts");
    let control = message.part(parts[0]).unwrap();
    let control_type = control.content_type().unwrap();
    assert_eq!(
        (control_type.ctype(), control_type.subtype()),
        ("application", Some("pgp-encrypted"))
    );
    assert_eq!(
        String::from_utf8_lossy(control.contents()).trim(),
        "Version: 1"
    );
    let data = message.part(parts[1]).unwrap();
    let data_type = data.content_type().unwrap();
    assert_eq!(
        (data_type.ctype(), data_type.subtype()),
        ("application", Some("octet-stream"))
    );
    let armored = String::from_utf8(data.contents().to_vec()).unwrap();
    assert!(
        armored
            .trim_start()
            .starts_with("-----BEGIN PGP MESSAGE-----")
            && armored.trim_end().ends_with("-----END PGP MESSAGE-----"),
        "{armored}"
    );
    armored
}

/// The decrypted entity, by rPGP with `secret` (no passphrase) and, when `gnupg` is
/// given (with `secret` imported), by GnuPG too: both must read the same.
fn decrypt(armored: &str, secret: &str, gnupg: Option<&GnuPg>) -> Vec<u8> {
    let key =
        joinform::openpgp::SecretKey::parse(&std::fs::read(key_file(secret)).unwrap()).unwrap();
    let by_rpgp = key.decrypt("", armored.as_bytes()).unwrap();
    if let Some(gnupg) = gnupg {
        assert_eq!(gnupg.decrypt(armored), by_rpgp, "GnuPG reads the same");
    }
    by_rpgp
}

/// None of `private`, nor any of it in an encoded word (read by mail-parser's
/// decoding of every header), is among the outer headers of `raw`.
fn assert_outer_holds_none(raw: &[u8], private: &[&str]) {
    let headers = header_block(raw);
    let message = parse(raw);
    let decoded: Vec<String> = message
        .headers()
        .iter()
        .map(|header| format!("{}: {:?}", header.name(), header.value()))
        .collect();
    for value in private {
        assert!(!headers.contains(value), "{value} outside: {headers}");
        let encoded = base64::engine::general_purpose::STANDARD.encode(value);
        assert!(!headers.contains(&encoded), "{value} as base64: {headers}");
        assert!(
            !decoded.iter().any(|header| header.contains(value)),
            "{value} outside, decoded: {decoded:#?}"
        );
    }
}

/// GnuPG decrypts the notification to a section with a key to the very notification a
/// section without keys would get; outside there is nothing of the sign-up but the
/// bare address in Reply-To; and in the same run a section without keys gets clear
/// text as before.
#[tokio::test]
async fn gnupg_decrypts_a_notification_to_the_clear_one_and_the_outside_names_nobody() {
    let gnupg = GnuPg::new("gnupg_decrypts_a_notification_to_the_clear_one");
    if let Some(gnupg) = &gnupg {
        gnupg.import(&key_file("norway.secret.asc"));
    }
    let smtp = smtp().await;
    let app = app_with(&smtp, |settings| {
        set_keys(settings, "Norway", &["norway.asc"])
    })
    .await;
    let id = created_id(app.post_json(&person("NO")).await).await;
    // Another address: the same one again would be a duplicate, not notified.
    let mut swede = person("SE");
    swede["email"] = json!("ase.s@example.org");
    let sweden_id = created_id(app.post_json(&swede).await).await;
    wait_for(&smtp, 2, |_| true).await;

    let captured = the_mail(&smtp, OSLO, "New sign-up");
    let raw = &captured.data;
    let outer = parse(raw);
    assert_eq!(outer.subject(), Some(format!("New sign-up {id}").as_str()));
    // Reply-To is exactly the bare address: a reply must reach the visitor.
    assert_eq!(
        outer.header_raw("Reply-To").map(str::trim),
        Some("ase.fjellstad@example.org")
    );
    assert_eq!(
        header_block(raw).matches("ase.fjellstad").count(),
        1,
        "the address is in Reply-To only: {}",
        header_block(raw)
    );
    assert_outer_holds_none(raw, &PRIVATE);
    let armored = pgp_mime(raw);
    let body_text = String::from_utf8_lossy(raw);
    for value in PRIVATE {
        assert!(!body_text.contains(value), "{value} in the clear");
    }

    let inner_bytes = decrypt(&armored, "norway.secret.asc", gnupg.as_ref());
    let inner = parse(&inner_bytes);
    assert_eq!(
        inner
            .content_type()
            .and_then(|c| c.attribute("protected-headers")),
        Some("v1"),
        "{}",
        String::from_utf8_lossy(&inner_bytes)
    );
    assert_eq!(inner.message_id(), outer.message_id());

    // The clear notification of the same stored sign-up, as a section without keys gets it.
    let routing = Routing::from_settings(&app.settings).unwrap();
    let mut clear_section = routing.by_name("Norway").unwrap().clone();
    clear_section.pgp_keys.clear();
    let due = DueNotification {
        message_id: "<clear@example.org>".into(),
        section: "Norway".into(),
        attempts: 0,
        queued_at: Timestamp::now(),
        submission: app.row(&id).unwrap(),
    };
    let sender = joinform::mail::sender(&app.settings.mail).unwrap();
    let clear = joinform::mail::message::notification(
        &due,
        &clear_section,
        &sender,
        &Templates::load().unwrap(),
        None,
    )
    .unwrap()
    .formatted();
    let clear = parse(&clear);
    assert_eq!(inner.subject(), clear.subject());
    assert_eq!(
        inner.subject(),
        Some("Ny innmelding: Åse Fjellstad-Øren (Norway)")
    );
    // The same text. Line breaks at the very end differ by MIME framing only: in a
    // multipart the CRLF before a boundary belongs to the boundary (RFC 2046 §5.1.1),
    // while lettre ends a single-part message with one more.
    let (inner_text, clear_text) = (inner.body_text(0).unwrap(), clear.body_text(0).unwrap());
    assert_eq!(inner_text.trim_end(), clear_text.trim_end());
    assert!(inner_text.ends_with("organisasjonen.\r\n"), "{inner_text}");
    assert_eq!(inner.text_body_count(), 1);
    let body = inner.body_text(0).unwrap();
    for value in [
        "Åse Fjellstad-Øren",
        "+47 912 34 567",
        "Hammerfest",
        "Hei!",
        "Fagforbundet Finnmark",
    ] {
        assert!(body.contains(value), "{value}: {body}");
    }
    // Inside, Reply-To names the visitor as in a clear notification.
    assert_eq!(
        inner
            .reply_to()
            .and_then(|a| a.first())
            .and_then(|a| a.name()),
        Some("Åse Fjellstad-Øren")
    );

    // Sweden has no keys: clear text, as before.
    let sweden = the_mail(&smtp, "<stockholm@example.org>", "New member sign-up");
    let sweden = parse(&sweden.data);
    let sweden_type = sweden.content_type().unwrap();
    assert_eq!(
        (sweden_type.ctype(), sweden_type.subtype()),
        ("text", Some("plain"))
    );
    let sweden_body = sweden.body_text(0).unwrap();
    assert!(sweden_body.contains("Åse Fjellstad-Øren"), "{sweden_body}");
    assert!(sweden_body.contains(&sweden_id), "{sweden_body}");
    app.stop().await;
}

/// A section with two keys: each secret key alone opens the notification.
#[tokio::test]
async fn a_notification_to_a_section_with_two_keys_opens_with_either_alone() {
    let test = "a_notification_to_a_section_with_two_keys_opens_with_either_alone";
    let smtp = smtp().await;
    let app = app_with(&smtp, |settings| {
        set_keys(settings, "Norway", &["norway.asc", "sweden-rsa.asc"]);
    })
    .await;
    created_id(app.post_json(&person("NO")).await).await;
    wait_for(&smtp, 1, |_| true).await;
    let captured = the_mail(&smtp, OSLO, "New sign-up");
    let armored = pgp_mime(&captured.data);
    let mut opened = Vec::new();
    for secret in ["norway.secret.asc", "sweden-rsa.secret.asc"] {
        // A home holding this one secret key only.
        let gnupg = GnuPg::new(test);
        if let Some(gnupg) = &gnupg {
            gnupg.import(&key_file(secret));
        }
        let inner = decrypt(&armored, secret, gnupg.as_ref());
        assert!(
            String::from_utf8_lossy(&inner).contains("Hammerfest"),
            "{secret}"
        );
        opened.push(inner);
    }
    assert_eq!(opened[0], opened[1]);
    app.stop().await;
}

/// The follow-up's reminder and digest to a section with a key are encrypted under a
/// fixed Subject and open to their real subject and content; the escalation goes to
/// the fallback, which has no key, in clear.
#[tokio::test]
async fn reminders_and_digests_to_a_section_with_a_key_are_encrypted() {
    let gnupg = GnuPg::new("reminders_and_digests_to_a_section_with_a_key_are_encrypted");
    if let Some(gnupg) = &gnupg {
        gnupg.import(&key_file("norway.secret.asc"));
    }
    let smtp = smtp().await;
    let app = app_with(&smtp, |settings| {
        set_keys(settings, "Norway", &["norway.asc"]);
        settings.server.public_url = Some("https://join.example.org/".into());
        settings.followup.enabled = Some(true);
        settings.followup.remind_after = "2s".parse().unwrap();
        settings.followup.escalate_after = "4s".parse().unwrap();
        settings.followup.check_every = "1s".parse().unwrap();
        settings.followup.digest = DigestSchedule::Daily;
    })
    .await;
    created_id(
        app.post_json(&json!({
            "name": "Kari Nordmann", "email": "kari@example.org", "country": "NO", "consent": true
        }))
        .await,
    )
    .await;
    for subject in ["Follow-up reminder", "Sign-up digest"] {
        wait_for(&smtp, 1, |m| subject_of(m) == subject).await;
    }
    wait_for(&smtp, 1, |m| {
        subject_of(m).starts_with("Sign-ups nobody has contacted")
    })
    .await;

    let today = Timestamp::now().date_text();
    for (outer_subject, inner_subject, content) in [
        (
            "Follow-up reminder",
            "1 innmelding venter på svar (Norway)".to_owned(),
            format!("- Kari, Norge (NO), meldt inn {today}"),
        ),
        (
            "Sign-up digest",
            format!(
                "Oppfølgingssammendrag for Norway: {}",
                Timestamp::now()
                    .minus(Duration::from_secs(86_400))
                    .date_text()
            ),
            "https://join.example.org/followup/section/".to_owned(),
        ),
    ] {
        let captured = the_mail(&smtp, OSLO, outer_subject);
        let outer = parse(&captured.data);
        assert_eq!(outer.subject(), Some(outer_subject));
        assert_eq!(outer.header_raw("Reply-To"), None);
        assert_outer_holds_none(
            &captured.data,
            &[
                "Kari",
                "Nordmann",
                "Norway",
                "Norge",
                "innmelding",
                "/followup/",
            ],
        );
        let armored = pgp_mime(&captured.data);
        let inner_bytes = decrypt(&armored, "norway.secret.asc", gnupg.as_ref());
        let inner = parse(&inner_bytes);
        assert_eq!(inner.subject(), Some(inner_subject.as_str()));
        assert_eq!(
            inner
                .content_type()
                .and_then(|c| c.attribute("protected-headers")),
            Some("v1")
        );
        assert_eq!(inner.message_id(), outer.message_id());
        let body = inner.body_text(0).unwrap();
        assert!(body.contains(&content), "{outer_subject}: {body}");
    }

    // The fallback has no key: its escalation (counts only) is clear text.
    let escalation = the_mail(
        &smtp,
        "<international@example.org>",
        "Sign-ups nobody has contacted",
    );
    let escalation = parse(&escalation.data);
    assert_eq!(escalation.content_type().unwrap().ctype(), "text");
    assert!(
        escalation
            .body_text(0)
            .unwrap()
            .contains("- Norway: 1 waiting")
    );
    app.stop().await;
}

/// Past the section's hourly cap, the overflow mail listing the waiting sign-ups is
/// encrypted too, under "Notification overflow".
#[tokio::test]
async fn the_overflow_mail_to_a_section_with_a_key_is_encrypted() {
    let smtp = smtp().await;
    let app = app_with(&smtp, |settings| {
        set_keys(settings, "Norway", &["norway.asc"]);
        settings.mail.max_notifications_per_section_per_hour = 1;
        // One send a second: the burst is stored before the overflow mail is built.
        settings.mail.max_per_second = 1;
    })
    .await;
    for n in 1..=3 {
        let mut body = person("NO");
        body["name"] = json!(format!("Person{n} Overflow"));
        body["email"] = json!(format!("person{n}@example.org"));
        created_id(app.post_json(&body).await).await;
    }
    wait_for(&smtp, 1, |m| subject_of(m) == "Notification overflow").await;
    let captured = the_mail(&smtp, OSLO, "Notification overflow");
    assert_eq!(parse(&captured.data).header_raw("Reply-To"), None);
    let mut private = PRIVATE.to_vec();
    private.extend(["Overflow", "person", "Norway"]);
    assert_outer_holds_none(&captured.data, &private);
    let armored = pgp_mime(&captured.data);
    let inner_bytes = decrypt(&armored, "norway.secret.asc", None);
    let inner = parse(&inner_bytes);
    assert_eq!(
        inner.subject(),
        Some("Innmeldinger i Norway: 2 i denne e-posten")
    );
    let body = inner.body_text(0).unwrap();
    let listed = (1..=3)
        .filter(|n| body.contains(&format!("Person{n} Overflow")))
        .count();
    assert_eq!(listed, 2, "{body}");
    assert!(body.contains("Hammerfest"), "{body}");
    app.stop().await;
}

/// A configuration folder with `keys/` holding copies of the test keys `keys` and
/// `joinform.toml` whose Norway has `pgp_keys = [...]` (paths relative to the file).
fn key_config(keys: &[&str], extra_keys: &[(&str, &[u8])]) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("keys")).unwrap();
    for name in keys {
        std::fs::copy(key_file(name), dir.path().join("keys").join(name)).unwrap();
    }
    for (name, bytes) in extra_keys {
        std::fs::write(dir.path().join("keys").join(name), bytes).unwrap();
    }
    let listed: Vec<String> = keys
        .iter()
        .copied()
        .chain(extra_keys.iter().map(|(name, _)| *name))
        .map(|name| format!("\"keys/{name}\""))
        .collect();
    std::fs::write(
        dir.path().join("joinform.toml"),
        format!(
            "[[sections]]\nname = \"Norway\"\ncountries = [\"NO\"]\ncontacts = [\"oslo@example.org\"]\n\
             language = \"nb\"\npgp_keys = [{}]\n\n\
             [[sections]]\nname = \"Sweden\"\ncountries = [\"SE\"]\ncontacts = [\"stockholm@example.org\"]\n\
             language = \"en\"\n\n\
             [fallback]\nname = \"International\"\ncontacts = [\"desk@members.organisation.no\"]\nlanguage = \"en\"\n",
            listed.join(", ")
        ),
    )
    .unwrap();
    dir
}

/// `check-config` on `dir/joinform.toml`: (success, stdout and stderr).
fn check_config(dir: &TempDir) -> (bool, String) {
    let output = Joinform::new()
        .args(["check-config", "--config"])
        .arg(dir.path().join("joinform.toml"))
        .output();
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// `check-config` prints each section's key fingerprints, which sections get clear
/// text, and that storage is clear; no warning for keys that do not expire soon.
#[test]
fn check_config_prints_each_keys_fingerprint_and_the_clear_text_sections() {
    let dir = key_config(&["norway.asc", "sweden-rsa.asc"], &[]);
    let (ok, text) = check_config(&dir);
    assert!(ok, "{text}");
    assert!(
        text.lines().any(|line| line
            == format!("  Norway: OpenPGP-encrypted (PGP/MIME) to {NORWAY_FPR}, {SWEDEN_RSA_FPR}")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|line| line == "  Sweden: clear text (no pgp_keys)"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|line| line == "  International: clear text (no pgp_keys)"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|line| line == "storage: clear (no storage.seal_keys)"),
        "{text}"
    );
    assert!(!text.contains("warning:"), "{text}");
}

/// An expired, a revoked and a sign-only key are each refused, the message naming the
/// setting, the file, the key and what is wrong with it.
#[test]
fn check_config_refuses_an_expired_revoked_or_sign_only_key_naming_it() {
    for (file, fingerprint, problem) in [
        (
            "expired.asc",
            "6050D9AE13E814037AF3866B4D3D3168B8F9DFE7",
            "expired on 2020-01-02",
        ),
        (
            "revoked.asc",
            "0A366E56BE580FCABCCB84D1CB95BE5ADA51BBAB",
            "is revoked",
        ),
        (
            "sign-only.asc",
            "81452F4D7BD15A46A54B53089646F2C8580A1B72",
            "has no usable encryption key",
        ),
    ] {
        let dir = key_config(&["norway.asc", file], &[]);
        let (ok, text) = check_config(&dir);
        assert!(!ok, "{file}: {text}");
        for part in [
            "sections[0].pgp_keys[1]",
            &format!("keys/{file}"),
            fingerprint,
            problem,
        ] {
            assert!(text.contains(part), "{file}: `{part}` not in: {text}");
        }
    }
}

/// A key expiring in 10 days (made by GnuPG now) is accepted with a `warning:` line
/// naming the section, the key and the day.
#[test]
fn check_config_warns_of_a_key_expiring_within_30_days() {
    let Some(gnupg) = GnuPg::new("check_config_warns_of_a_key_expiring_within_30_days") else {
        return;
    };
    gnupg.run(&[
        "--passphrase",
        "",
        "--quick-gen-key",
        "Soon <soon@example.org>",
        "future-default",
        "default",
        "10d",
    ]);
    let public = gnupg.run(&["--armor", "--export", "soon@example.org"]);
    let colons =
        String::from_utf8(gnupg.run(&["--with-colons", "--list-keys", "soon@example.org"]))
            .unwrap();
    let fingerprint = colons
        .lines()
        .find_map(|line| line.strip_prefix("fpr:"))
        .map(|rest| rest.trim_matches(':').to_owned())
        .unwrap();
    // Field 7 of the pub line: when it expires, in seconds since 1970.
    let expires: u64 = colons
        .lines()
        .find(|line| line.starts_with("pub:"))
        .and_then(|line| line.split(':').nth(6))
        .unwrap()
        .parse()
        .unwrap();
    let day = Timestamp::from_system_time(std::time::UNIX_EPOCH + Duration::from_secs(expires))
        .date_text();
    let dir = key_config(&["norway.asc"], &[("soon.asc", &public)]);
    let (ok, text) = check_config(&dir);
    assert!(ok, "{text}");
    assert!(
        text.lines().any(|line| line
            == format!(
                "warning: section Norway: key {fingerprint} expires on {day}: extend it and \
                 export it again before then, since the server will not start with an \
                 expired key, and what a running server encrypts to it meanwhile may not \
                 open in new software"
            )),
        "{text}"
    );
    assert!(
        text.contains(&format!("{NORWAY_FPR}, {fingerprint}")),
        "{text}"
    );
}

/// With `storage.seal_keys`, `check-config` says storage is sealed and to which keys,
/// beside each section's own.
#[test]
fn check_config_says_when_storage_is_sealed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("keys")).unwrap();
    for name in ["norway.asc", "operator.asc", "primary-encrypts.asc"] {
        std::fs::copy(key_file(name), dir.path().join("keys").join(name)).unwrap();
    }
    std::fs::write(
        dir.path().join("joinform.toml"),
        "[storage]\nseal_keys = [\"keys/operator.asc\"]\n\n\
         [[sections]]\nname = \"Norway\"\ncountries = [\"NO\"]\ncontacts = [\"oslo@example.org\"]\n\
         language = \"nb\"\npgp_keys = [\"keys/norway.asc\"]\n\n\
         [fallback]\nname = \"International\"\ncontacts = [\"desk@example.org\"]\nlanguage = \"en\"\n\
         pgp_keys = [\"keys/primary-encrypts.asc\"]\n",
    )
    .unwrap();
    let (ok, text) = check_config(&dir);
    assert!(ok, "{text}");
    for line in [
        format!("  Norway: OpenPGP-encrypted (PGP/MIME) to {NORWAY_FPR}"),
        "  International: OpenPGP-encrypted (PGP/MIME) to 0D3D7DD8E80D27664E81E4BF3B1B13A0CED84189"
            .to_owned(),
        "storage: sealed, personal fields encrypted to E420995879C896C6F28CDDB9893165786908C774 \
         and each section's keys"
            .to_owned(),
    ] {
        assert!(
            text.lines().any(|found| found == line),
            "{line}\nnot in:\n{text}"
        );
    }
    assert!(!text.contains("clear text"), "{text}");
}
