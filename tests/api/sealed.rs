//! Sealed storage (issue 18, `storage.seal_keys`): a running server that stores a
//! sign-up's personal fields only as OpenPGP ciphertext. The real server over loopback,
//! its real SQLite file, the file transport's `.eml` folder, the real `joinform`
//! binary for `forget`, `review list` and start-up; decrypted with the test keys in
//! tests/data/openpgp (rPGP through `joinform::openpgp`, and GnuPG when it is here).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use joinform::config::Settings;
use joinform::domain::MemberEmail;
use joinform::openpgp::SecretKey;
use joinform::sealing::SealedFields;
use mail_parser::MessageParser;
use serde_json::json;

use crate::followup_pages::{in_a_day, person_token, with_followup};
use crate::helpers::{
    TestApp, created_id, database_bytes, outside_programs_present, spawn_app_with,
};
use crate::operator_helpers::{run_cli, stderr, stdout, write_config};
use crate::process::Joinform;

const OPERATOR_PASSPHRASE: &str = "correct horse battery staple";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/openpgp")
        .join(name)
}

/// Sealed storage to operator.asc, every section and the fallback encrypting to
/// norway.asc (a sealed installation refuses a section without keys).
pub(crate) fn seal(settings: &mut Settings) {
    settings.storage.seal_keys = vec![fixture("operator.asc")];
    for section in &mut settings.sections {
        section.pgp_keys = vec![fixture("norway.asc")];
    }
    if let Some(fallback) = &mut settings.fallback {
        fallback.pgp_keys = vec![fixture("norway.asc")];
    }
}

/// One person who signs up, with what must never be found in clear.
#[derive(Debug, Clone)]
struct Person {
    name: String,
    /// As typed: upper-case letters and a domain with a non-ASCII letter.
    email: String,
    phone: String,
    country: &'static str,
}

impl Person {
    fn new(n: usize) -> Self {
        const GIVEN: [&str; 6] = ["Åsmund", "Zoë", "Łukasz", "Иван", "美玲", "Nguyễn"];
        const COUNTRIES: [&str; 5] = ["NO", "SE", "GB", "DE", "FR"];
        Self {
            name: format!("{} Hemmeligsen{n:03}", GIVEN[n % GIVEN.len()]),
            email: format!("Person{n:03}.Hemmelig@Bølgedal.example"),
            phone: format!("+47 912 34 {n:03}"),
            country: COUNTRIES[n % COUNTRIES.len()],
        }
    }

    fn body(&self) -> serde_json::Value {
        json!({
            "name": self.name, "email": self.email, "phone": self.phone,
            "country": self.country, "consent": true,
            "city": format!("Hemmelstad{}", &self.name[self.name.len() - 3..]),
            "message": format!("Hemmelig beskjed fra {}", self.name),
        })
    }

    /// Every form the person's data could be stored or mailed in.
    fn needles(&self) -> Vec<Vec<u8>> {
        let parsed = MemberEmail::parse(&self.email).unwrap();
        let mut texts = vec![
            self.name.clone(),
            self.name.to_lowercase(),
            self.email.clone(),
            self.email.to_lowercase(),
            parsed.key(),
            parsed.to_string(),
            parsed.to_ascii(),
            parsed.to_ascii().to_lowercase(),
            self.phone.clone(),
            self.phone.replace(' ', ""),
            // The surname alone: unique, and long enough not to occur by chance.
            self.name.split_whitespace().last().unwrap().to_owned(),
            format!("Hemmelig beskjed fra {}", self.name),
        ];
        let engine = base64::engine::general_purpose::STANDARD;
        texts.push(engine.encode(&self.name).trim_end_matches('=').to_owned());
        texts.push(engine.encode(&self.email).trim_end_matches('=').to_owned());
        texts.push(quoted_printable(&self.name));
        texts.sort();
        texts.dedup();
        texts.into_iter().map(String::into_bytes).collect()
    }
}

/// RFC 2045 §6.7 quoted-printable of `text`, as a mail writer would encode it.
fn quoted_printable(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'!'..=b'<' | b'>'..=b'~' | b' ' => char::from(byte).to_string(),
            _ => format!("={byte:02X}"),
        })
        .collect()
}

/// The armoured OpenPGP message in a `.eml` file.
fn armored_part(raw: &str) -> &str {
    let start = raw.find("-----BEGIN PGP MESSAGE-----").unwrap();
    let end = raw.find("-----END PGP MESSAGE-----").unwrap() + "-----END PGP MESSAGE-----".len();
    &raw[start..end]
}

fn eml_files(dir: &Path) -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| std::fs::read_to_string(path).unwrap())
        .collect()
}

/// Every byte of the files under `dir`, read by another process (`cat`): closing a
/// file of the database in this process would drop the POSIX locks the server in this
/// process holds on it (fcntl locks belong to the process, and any close releases
/// them), and other connections could then checkpoint or recover under its feet.
pub(crate) fn bytes_read_elsewhere(dir: &Path) -> Vec<u8> {
    let mut files = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else {
                files.push(path);
            }
        }
    }
    let output = std::process::Command::new("cat")
        .args(&files)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    output.stdout
}

/// (status, email_key) of every stored row, by id.
fn statuses(app: &TestApp) -> HashMap<String, (String, String)> {
    let connection = rusqlite::Connection::open(&app.db_path).unwrap();
    let mut statement = connection
        .prepare("SELECT id, status, email_key FROM submissions")
        .unwrap();
    statement
        .query_map([], |row| Ok((row.get(0)?, (row.get(1)?, row.get(2)?))))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Looks for every needle of some people at once: one pass over the bytes (an
/// Aho-Corasick automaton inside `regex`), where a window-by-window search of
/// megabytes for thousands of needles would take minutes in a debug build.
struct Search(regex::bytes::Regex);

impl Search {
    fn new(people: &[Person]) -> Self {
        let needles: Vec<String> = people
            .iter()
            .flat_map(Person::needles)
            .map(|needle| regex::escape(&String::from_utf8(needle).unwrap()))
            .collect();
        Self(
            regex::bytes::RegexBuilder::new(&needles.join("|"))
                .unicode(false)
                .size_limit(1 << 28)
                .build()
                .unwrap(),
        )
    }

    /// The first needle found in `bytes`, if any.
    fn first_found(&self, bytes: &[u8]) -> Option<String> {
        self.0
            .find(bytes)
            .map(|found| String::from_utf8_lossy(found.as_bytes()).into_owned())
    }
}

/// 100 posts to a sealed server: 96 people, one of them (number 95) caught by the
/// honeypot, and four more posts of person 0's address, differently cased, with a
/// daily limit of 3: two duplicates, then two over the limit. Nothing any of them gave
/// is on disk or in a mail in any form; everything decrypts with the right key; the
/// limits, erasure, the follow-up page and the review list still work.
#[tokio::test]
async fn a_hundred_sealed_sign_ups_leave_no_personal_data_in_the_database_or_the_mails() {
    let app = spawn_app_with(|settings| {
        seal(settings);
        with_followup(settings);
        settings.rate_limit.per_email_per_day = 3;
    })
    .await;
    let people: Vec<Person> = (0..96).map(Person::new).collect();
    let mut ids = Vec::new();
    for (n, person) in people.iter().enumerate() {
        let mut body = person.body();
        if n == 95 {
            body["_gotcha"] = json!("x");
        }
        ids.push(created_id(app.post_json(&body).await).await);
    }
    let mut everyone = people.clone();
    let mut again = Vec::new();
    for n in 0..4 {
        let mut repeat = Person::new(200 + n);
        repeat.email = if n % 2 == 0 {
            people[0].email.to_uppercase()
        } else {
            people[0].email.to_lowercase()
        };
        again.push(created_id(app.post_json(&repeat.body()).await).await);
        everyone.push(repeat);
    }

    // Every accepted sign-up is notified: 95 mails. (The rows are read once the
    // server is quiet.)
    app.delivery_nudge().await;
    let outbox = app
        .wait_for_outbox(Duration::from_secs(60), |row| row.0 == "sent")
        .await;
    assert!(outbox.iter().all(|row| row.0 == "sent"), "{outbox:?}");
    let notifications: i64 = rusqlite::Connection::open(&app.db_path)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM outbox WHERE kind = 'notification' AND state = 'sent'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(notifications, 95);

    // Duplicates and the daily limit work on the address's keyed hash.
    let stored = statuses(&app);
    assert_eq!(
        stored.len(),
        98,
        "two posts over the daily limit are not stored"
    );
    let first = &stored[&ids[0]];
    assert_eq!(first.0, "accepted");
    assert_eq!(first.1.len(), 64, "email_key is a keyed hash: {}", first.1);
    assert!(first.1.bytes().all(|b| b.is_ascii_hexdigit()));
    for id in &again[..2] {
        assert_eq!(
            stored[id],
            ("duplicate".to_owned(), first.1.clone()),
            "{id}"
        );
    }
    for id in &again[2..] {
        assert!(!stored.contains_key(id), "over the daily limit, not stored");
    }
    assert_eq!(stored[&ids[95]].0, "spam");
    for id in &ids[1..95] {
        assert_eq!(stored[id].0, "accepted", "{id}");
        assert_ne!(stored[id].1, first.1);
    }

    // The search finds what it looks for, in every form…
    let search = Search::new(&everyone);
    for person in [&everyone[3], &everyone[97]] {
        for needle in person.needles() {
            let mut haystack = b"\x00ciphertext".to_vec();
            haystack.extend(&needle);
            assert!(search.first_found(&haystack).is_some(), "{needle:?}");
        }
    }
    // …and nothing in clear in the database, its WAL or the mail folder, while running…
    let folder = app.db_path.parent().unwrap().to_path_buf();
    let bytes = bytes_read_elsewhere(&folder);
    assert!(
        std::fs::read_dir(&folder)
            .unwrap()
            .flatten()
            .any(|entry| entry.file_name().to_string_lossy().ends_with("-wal")),
        "the WAL was searched too"
    );
    let started = std::time::Instant::now();
    assert_eq!(search.first_found(&bytes), None, "found in {folder:?}");
    eprintln!("{} bytes searched in {:?}", bytes.len(), started.elapsed());

    // …and each notification decrypts with the section's key to the person's data.
    let norway = SecretKey::parse(&std::fs::read(fixture("norway.secret.asc")).unwrap()).unwrap();
    // (The follow-up's digests, which list sign-ups by id, are the other mails.)
    let mails: Vec<String> = eml_files(&app.settings.mail.file_dir)
        .into_iter()
        .filter(|raw| raw.contains("\r\nSubject: New sign-up "))
        .collect();
    assert_eq!(mails.len(), 95);
    let mut notified = Vec::new();
    for raw in &mails {
        let (outer, _) = raw.split_once("\r\n\r\n").unwrap();
        assert!(outer.contains("multipart/encrypted"), "PGP/MIME: {outer}");
        assert!(
            !outer.to_ascii_lowercase().contains("reply-to:"),
            "the server cannot know the address: no Reply-To outside: {outer}"
        );
        assert!(outer.contains("Subject: New sign-up "), "{outer}");
        let plain = norway.decrypt("", armored_part(raw).as_bytes()).unwrap();
        let inner = MessageParser::default().parse(&plain).unwrap();
        let text = inner.body_text(0).unwrap().into_owned();
        let person = people
            .iter()
            .find(|person| text.contains(&person.name))
            .unwrap_or_else(|| panic!("nobody's name in {text}"));
        let key = MemberEmail::parse(&person.email).unwrap();
        assert!(text.contains(&key.to_string()), "{text}");
        assert!(text.contains(&person.phone), "{text}");
        // No Reply-To reaches the visitor, so the text (Norway's in Norwegian, the
        // others' in English) says to write to the address, not to reply.
        let write_to = [
            "Skriv til e-postadressen nedenfor",
            "write to the email address below",
        ];
        let reply = ["Svar på denne e-posten for å svare", "Reply to this email"];
        assert!(write_to.iter().any(|words| text.contains(words)), "{text}");
        assert!(!reply.iter().any(|words| text.contains(words)), "{text}");
        let reply_to = inner.reply_to().and_then(|a| a.first()).unwrap();
        assert_eq!(
            reply_to.address().unwrap().to_lowercase(),
            key.to_ascii().to_lowercase(),
            "inside, Reply-To is the visitor"
        );
        notified.push(person.name.clone());
    }
    notified.sort();
    let mut expected: Vec<String> = people[..95].iter().map(|p| p.name.clone()).collect();
    expected.sort();
    assert_eq!(notified, expected, "each accepted person once");

    // GnuPG, an independent reader, opens the same mail.
    if outside_programs_present(
        "sealed notification decrypted by GnuPG",
        &["gpg"],
        "apt-get install gpg gpg-agent",
    ) {
        let home = tempfile::Builder::new()
            .prefix("jfg")
            .tempdir_in("/tmp")
            .unwrap();
        let gpg = |args: &[&str], input: Option<&str>| {
            let mut command = std::process::Command::new("gpg");
            command
                .env("GNUPGHOME", home.path())
                .args(["--batch", "--quiet"])
                .args(args)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            let mut child = command.spawn().unwrap();
            let mut stdin = child.stdin.take().unwrap();
            if let Some(input) = input {
                std::io::Write::write_all(&mut stdin, input.as_bytes()).unwrap();
            }
            drop(stdin);
            child.wait_with_output().unwrap()
        };
        let secret = fixture("norway.secret.asc");
        let imported = gpg(&["--import", secret.to_str().unwrap()], None);
        assert!(imported.status.success(), "{imported:?}");
        let armored = armored_part(&mails[0]);
        let decrypted = gpg(&["--decrypt"], Some(armored));
        assert!(
            decrypted.status.success(),
            "{}",
            String::from_utf8_lossy(&decrypted.stderr)
        );
        assert_eq!(
            decrypted.stdout,
            norway.decrypt("", armored.as_bytes()).unwrap(),
            "GnuPG reads what rPGP reads"
        );
        let _ = std::process::Command::new("gpgconf")
            .env("GNUPGHOME", home.path())
            .args(["--kill", "gpg-agent"])
            .status();
    }

    // The sealed fields decrypt with the section's key (the organisers may read an
    // export) and with the operator's, and only with the right passphrase. The
    // operator's key is unlocked for a few rows only: its passphrase's S2K takes
    // seconds in a debug build.
    let operator =
        SecretKey::parse(&std::fs::read(fixture("operator.secret.asc")).unwrap()).unwrap();
    let started = std::time::Instant::now();
    for (n, row) in app.rows().into_iter().enumerate() {
        assert_eq!((row.name.as_str(), row.email.as_str()), ("", ""));
        assert_eq!((&row.phone, &row.city, &row.message), (&None, &None, &None));
        let blob = row.sealed.as_deref().unwrap();
        let fields = SealedFields::from_json(&norway.decrypt("", blob).unwrap()).unwrap();
        let person = everyone
            .iter()
            .find(|person| person.name == fields.name)
            .unwrap();
        assert_eq!(
            fields.email,
            MemberEmail::parse(&person.email).unwrap().to_string()
        );
        assert_eq!(fields.phone.as_deref(), Some(person.phone.as_str()));
        if n == 0 {
            let by_operator = operator.decrypt(OPERATOR_PASSPHRASE, blob).unwrap();
            assert_eq!(SealedFields::from_json(&by_operator).unwrap(), fields);
            assert!(operator.decrypt("wrong", blob).is_err());
        }
    }
    eprintln!("sealed rows decrypted in {:?}", started.elapsed());

    // The follow-up page shows a sealed sign-up by its id, country and date.
    let token = person_token(&app, &ids[1], "Sweden", in_a_day());
    // A client of its own: the app's idle connection may have been closed meanwhile.
    let page = reqwest::Client::new()
        .get(app.url(&format!("/followup/{token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains(&ids[1]), "{page}");
    assert!(
        page.contains("Sverige") || page.contains("Sweden"),
        "{page}"
    );
    assert_eq!(search.first_found(page.as_bytes()), None, "{page}");

    // The review list, the real binary's: the spam sign-up by its id, no name.
    let config = write_config(&app);
    let output = run_cli(&config, &["review", "list"], None).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains(&ids[95]), "{text}");
    assert_eq!(search.first_found(text.as_bytes()), None, "{text}");

    // Released, the spam sign-up is notified with the mail sealed when it was stored.
    let output = run_cli(&config, &["review", "release", &ids[95]], None).await;
    assert!(output.status.success(), "{}", stderr(&output));
    app.delivery_nudge().await;
    let released = format!("Message-ID: <{}@", ids[95]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let raw = loop {
        let found = eml_files(&app.settings.mail.file_dir)
            .into_iter()
            .find(|raw| raw.contains(&released));
        if let Some(raw) = found {
            break raw;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no mail about the release"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let plain = norway.decrypt("", armored_part(&raw).as_bytes()).unwrap();
    let inner = MessageParser::default().parse(&plain).unwrap();
    assert!(
        inner.body_text(0).unwrap().contains(&people[95].name),
        "the released person's own notification"
    );
    assert_eq!(search.first_found(raw.as_bytes()), None, "{raw}");

    // `joinform forget ADDRESS`, in another case than typed, erases the hashed rows.
    let output = run_cli(&config, &["forget", &people[0].email.to_lowercase()], None).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("erased 3 submission(s)"),
        "{}",
        stdout(&output)
    );
    let output = run_cli(&config, &["forget", &people[7].email], None).await;
    assert!(
        stdout(&output).contains("erased 1 submission(s)"),
        "{}",
        stdout(&output)
    );
    let left = statuses(&app);
    assert_eq!(left.len(), 94);
    for id in [&ids[0], &again[0], &again[1], &ids[7]] {
        assert!(!left.contains_key(id), "{id} erased");
    }

    // And after a clean stop (the WAL checkpointed into the file), still nothing.
    let dir = app.stop().await;
    let bytes = database_bytes(dir.path());
    assert_eq!(search.first_found(&bytes), None);
}

/// The real binary refuses to serve a sealed configuration over sign-ups stored in
/// clear, and a clear one over a sealed database, each saying what to do.
#[tokio::test]
async fn start_up_refuses_a_configuration_that_does_not_match_the_database() {
    for sealed_database in [false, true] {
        let app = spawn_app_with(|settings| {
            if sealed_database {
                seal(settings);
            }
        })
        .await;
        created_id(app.post_json(&Person::new(1).body()).await).await;
        let mut settings = app.settings.clone();
        let dir = app.stop().await;
        if sealed_database {
            settings.storage.seal_keys = Vec::new();
            for section in &mut settings.sections {
                section.pgp_keys = Vec::new();
            }
            if let Some(fallback) = &mut settings.fallback {
                fallback.pgp_keys = Vec::new();
            }
        } else {
            seal(&mut settings);
        }
        let config = dir.path().join("joinform.toml");
        std::fs::write(&config, toml::to_string(&settings).unwrap()).unwrap();
        let output = Joinform::new()
            .config(&config)
            .arg("serve")
            .env("JOINFORM_SERVER__LISTEN", "127.0.0.1:0")
            .env("JOINFORM_ADMIN__LISTEN", "127.0.0.1:0")
            .output();
        let text = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(1), "{text}");
        let expected = if sealed_database {
            "this database is sealed (1 sign-ups are stored encrypted): set storage.seal_keys"
        } else {
            "1 sign-ups are stored in clear: run `joinform seal` first"
        };
        assert!(text.contains(expected), "{text}");
    }
}
