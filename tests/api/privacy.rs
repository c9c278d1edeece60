//! No client address and no personal data where it does not belong: the real binary
//! runs a mixed session (sign-ups, a duplicate, spam, a rate-limited client, an invalid
//! post, delivery), then its captured log and its database files are searched. The
//! follow-up flows (mails, pages, admin, command line) are searched the same way, for
//! their link tokens and CSRF values too.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{contains, json_answer, valid_json};
use crate::process::Joinform;

/// The client's address: the server listens on 127.0.0.1, so this one can only appear
/// if the client's address was written down.
const CLIENT_IP: &str = "127.0.0.2";

#[tokio::test]
async fn no_client_address_or_personal_data_in_logs_or_database_files() {
    // The most verbose filter there is: nothing personal may appear at any level.
    let dir = tempfile::tempdir().unwrap();
    let server = Joinform::serve(dir.path())
        .envs(&[
            ("RUST_LOG", "trace"),
            ("JOINFORM_LOG__FORMAT", "json"),
            ("JOINFORM_RATE_LIMIT__PER_IP_BURST", "6"),
            ("JOINFORM_RATE_LIMIT__PER_IP_PER_MINUTE", "1"),
            ("JOINFORM_SPAM__MIN_FILL", "0s"),
        ])
        .start();
    let url = |path: &str| format!("http://127.0.0.1:{}{path}", server.port);
    let client = reqwest::Client::builder()
        .local_address(CLIENT_IP.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let people = [
        ("Ingrid Secretname", "ingrid.secret@example.org"),
        ("Bjørn Hiddenname", "bjorn.hidden@example.net"),
    ];
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let token: serde_json::Value = client
            .get(url("/join/token"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        tokens.push(token["token"].as_str().unwrap().to_owned());
    }
    let mut statuses = Vec::new();
    let mut post = async |body: serde_json::Value| {
        let response = client.post(url("/join")).json(&body).send().await.unwrap();
        statuses.push(response.status().as_u16());
    };
    for ((name, email), token) in people.iter().zip(&tokens) {
        post(
            json!({"name": name, "email": email, "country": "NO", "consent": true,
                    "phone": "+47 22 33 44 55", "message": "Private words",
                    "_token": token}),
        )
        .await;
    }
    // A duplicate, spam, and an invalid post that carries an address.
    post(json!({"name": people[0].0, "email": people[0].1, "country": "NO", "consent": true}))
        .await;
    post(
        json!({"name": "Spam Secretbot", "email": "spam.secret@example.com", "country": "SE",
                "consent": true, "_gotcha": "x"}),
    )
    .await;
    post(
        json!({"name": "Invalid Secretperson", "email": "invalid.secret@@example.org",
                "country": "NO"}),
    )
    .await;
    // Over the burst: rate limited.
    for _ in 0..3 {
        post(
            json!({"name": "Flood Secretname", "email": "flood.secret@example.org",
                    "country": "NO", "consent": true}),
        )
        .await;
    }
    assert_eq!(statuses, [201, 201, 201, 201, 422, 201, 429, 429]);

    // Let delivery run (file transport: the two people and the flood's one accepted post),
    // then stop the server hard.
    let mail_dir = dir.path().join("data").join("mail");
    for _ in 0..100 {
        if std::fs::read_dir(&mail_dir).map_or(0, |d| d.count()) >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(std::fs::read_dir(&mail_dir).unwrap().count(), 3);
    // Metrics on the admin listener, and an export from the command line while the
    // server runs: their logs are searched too.
    let metrics = reqwest::get(server.admin_url("/metrics")).await.unwrap();
    assert_eq!(metrics.status(), 200);
    let export = Joinform::new()
        .args(["export", "--format", "json"])
        .current_dir(dir.path())
        .env("RUST_LOG", "trace")
        .output_async()
        .await;
    assert!(export.status.success());
    let exported = String::from_utf8_lossy(&export.stdout);
    assert!(
        exported.contains(people[0].1),
        "the export holds the sign-ups"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let server_log = server.log();
    let log = format!("{server_log}{}", String::from_utf8_lossy(&export.stderr));
    drop(server);
    // One JSON object per line; one line per request, with its verdict.
    let events: Vec<serde_json::Value> = server_log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    let requests: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["message"] == "request")
        .collect();
    assert_eq!(requests.len(), 11, "one line per request:\n{log}");
    for request in &requests {
        for field in ["method", "route", "status", "latency_ms"] {
            assert!(!request[field].is_null(), "{field} in {request}");
        }
        assert_eq!(request["span"]["request_id"].as_str().unwrap().len(), 16);
    }
    let outcomes: Vec<&str> = requests
        .iter()
        .filter_map(|r| r["outcome"].as_str())
        .collect();
    assert_eq!(
        outcomes,
        ["accepted", "accepted", "duplicate", "spam", "accepted"]
    );
    // Spans reach into the store: the writer thread's event about each submission sits
    // in the span of the request that sent it, with that submission's id.
    let submitted: Vec<_> = requests
        .iter()
        .filter(|r| r["submission_id"].is_string())
        .collect();
    assert_eq!(submitted.len(), outcomes.len());
    for request in submitted {
        let admitted = events
            .iter()
            .find(|e| {
                e["message"] == "admitted, to be committed"
                    && e["span"]["id"] == request["submission_id"]
            })
            .unwrap_or_else(|| panic!("no store event in the span of {request}:\n{log}"));
        assert_eq!(admitted["outcome"], request["outcome"]);
        assert_eq!(admitted["span"]["name"], "join");
        assert!(
            admitted["target"]
                .as_str()
                .unwrap()
                .starts_with("joinform::store")
        );
    }
    assert!(
        events.iter().any(|e| e["message"] == "batch committed"
            && e["span"]["name"] == "store_batch"
            && e["span"]["jobs"].as_u64().is_some_and(|jobs| jobs >= 1)),
        "the writer logs its batches in a span of their own:\n{log}"
    );
    let spam = requests.iter().find(|r| r["outcome"] == "spam").unwrap();
    assert_eq!(spam["reasons"], "honeypot");
    let limited = requests.iter().filter(|r| r["status"] == 429).count();
    assert_eq!(limited, 2);

    let mut secrets = vec![
        CLIENT_IP.to_owned(),
        "+47 22 33 44 55".into(),
        "Private words".into(),
    ];
    for (name, email) in people {
        secrets.push(name.into());
        secrets.push(email.into());
    }
    secrets.extend([
        "spam.secret".into(),
        "invalid.secret".into(),
        "flood.secret".into(),
        "Secretname".into(),
        "Secretperson".into(),
    ]);
    for token in &tokens {
        secrets.push(token.clone());
    }
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "`{secret}` is in the log:\n{log}"
        );
    }
    // The database holds the sign-ups, of course, but never the client's address.
    let data = database_files(dir.path());
    assert!(
        contains(&data, people[0].1.as_bytes()),
        "the sign-up is stored"
    );
    assert!(
        !contains(&data, CLIENT_IP.as_bytes()),
        "the client's address is stored"
    );
}

/// The database file, its WAL and shared-memory file.
fn database_files(dir: &std::path::Path) -> Vec<u8> {
    let data = dir.join("data");
    let mut bytes = Vec::new();
    for name in ["joinform.db", "joinform.db-wal", "joinform.db-shm"] {
        bytes.extend(std::fs::read(data.join(name)).unwrap_or_default());
    }
    bytes
}

/// At the default level the one line per request of an accepted sign-up names its
/// country (an ISO 3166-1 alpha-2 code is not personal data), as the README says logs
/// do, and nothing a visitor typed.
#[tokio::test]
async fn the_request_line_of_a_sign_up_carries_its_country_at_the_default_level() {
    let dir = tempfile::tempdir().unwrap();
    // `info` is `log.filter`'s default; stated, so an inherited RUST_LOG cannot change it.
    let server = Joinform::serve(dir.path())
        .envs(&[("RUST_LOG", "info"), ("JOINFORM_LOG__FORMAT", "json")])
        .start();
    let response = reqwest::Client::new()
        .post(server.url("/join"))
        .json(
            &json!({"name": "Greta Hiddenname", "email": "greta.hidden@example.se",
                      "country": "se", "consent": true}),
        )
        .send()
        .await
        .unwrap();
    let answer: serde_json::Value = json_answer(response, 201, "").await;
    let id = answer["id"].as_str().unwrap().to_owned();
    // Lines are written out in batches, every 20 ms.
    let mut line = None;
    for _ in 0..100 {
        line = server
            .log()
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .find(|event| event["message"] == "request" && event["submission_id"] == id);
        if line.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = server.log();
    let line = line.unwrap_or_else(|| panic!("no request line for {id}:\n{log}"));
    assert_eq!(line["outcome"], "accepted");
    assert_eq!(line["country"], "SE", "{line}");
    assert!(
        !log.contains("admitted, to be committed"),
        "the default level, not debug:\n{log}"
    );
    for secret in ["Hiddenname", "greta.hidden"] {
        assert!(!log.contains(secret), "`{secret}` is in the log:\n{log}");
    }
}

/// Every file and folder joinform creates is its owner's alone, under the usual umask
/// (022) that would leave them readable by every account on the machine: the database
/// and SQLite's files beside it, the keys, the mail folder and each message in it. Files
/// an older joinform left readable are made owner-only on the next start, by the server
/// and by a command.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_and_folders_joinform_creates_are_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &std::path::Path| {
        std::fs::metadata(path)
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
            .permissions()
            .mode()
            & 0o777
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mail = data.join("mail");

    let mut server = with_umask_022(|| Joinform::serve(dir.path()).start());
    let response = reqwest::Client::new()
        .post(server.url("/join"))
        .json(&valid_json())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let mut message = None;
    for _ in 0..100 {
        message = std::fs::read_dir(&mail)
            .ok()
            .and_then(|mut entries| entries.next())
            .map(|entry| entry.unwrap().path());
        if message.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let message = message.unwrap_or_else(|| panic!("no message written:\n{}", server.log()));
    // While the server runs, so the WAL and shared-memory files are there too.
    let mut expected = vec![
        (data.clone(), 0o700),
        (mail.clone(), 0o700),
        (message, 0o600),
    ];
    for name in [
        "joinform.db",
        "joinform.db-wal",
        "joinform.db-shm",
        "secret.key",
        "audit.key",
    ] {
        expected.push((data.join(name), 0o600));
    }
    // In octal, with the paths, so a failure says which.
    let octal = |mode: u32| format!("{mode:o}");
    let found: Vec<_> = expected
        .iter()
        .map(|(path, _)| (path.clone(), octal(mode(path))))
        .collect();
    let wanted: Vec<_> = expected
        .iter()
        .map(|(path, mode)| (path.clone(), octal(*mode)))
        .collect();
    assert_eq!(found, wanted);
    let status = server.stop("TERM", Duration::from_secs(15)).await;
    assert!(status.success(), "exit status {status:?}\n{}", server.log());
    drop(server);

    // As an older joinform left them.
    let database = data.join("joinform.db");
    for (path, loose) in [(&database, 0o644), (&mail, 0o755)] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(loose)).unwrap();
    }
    let purge = with_umask_022(|| {
        Joinform::new()
            .arg("purge")
            .current_dir(dir.path())
            .output()
    });
    assert!(purge.status.success(), "{purge:?}");
    assert_eq!(mode(&database), 0o600, "the command tightens the database");
    let server = with_umask_022(|| Joinform::serve(dir.path()).start());
    assert_eq!(mode(&mail), 0o700, "the server tightens the mail folder");
    drop(server);
}

/// Runs `start` (which spawns a child) with the process's umask at the usual 022, so
/// the child inherits that rather than whatever the test runner was given; put back at
/// once, since other tests share this process.
#[cfg(unix)]
fn with_umask_022<T>(start: impl FnOnce() -> T) -> T {
    use rustix::fs::Mode;
    let previous = rustix::process::umask(Mode::WGRP | Mode::WOTH);
    let result = start();
    rustix::process::umask(previous);
    result
}

/// Every follow-up flow through the real binary, with the most verbose filter, and
/// distinctive personal data: sign-ups in two sections, their notifications, reminders,
/// escalation and digests (file transport), the person page and a mark through it with
/// its CSRF value, a section's list and a mark through it, the admin list and an admin
/// mark, `joinform followup list` and `followup mark`. Neither the server's log nor the
/// commands' standard error may hold a name, address, phone number, message, the
/// client's address, nor any link token or CSRF value: tokens are bearer capabilities,
/// and a log line carrying one would let whoever reads the log mark sign-ups.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_up_flows_log_no_personal_data_no_client_address_and_no_link_tokens() {
    const PUBLIC_URL: &str = "https://join.example.org";
    /// The client as the trusted proxy (the test itself, on 127.0.0.1) names it.
    const FORWARDED_CLIENT: &str = "203.0.113.197";
    const PHONE: &str = "+47 913 57 246";
    const MESSAGE: &str = "Qwertyson's private reasons for joining";
    let people = [
        ("Zyxwvut Qwertyson", "zyxwvut.qwertyson@example.org", "NO"),
        ("Vbnmlkj Asdfghson", "vbnmlkj.asdfghson@example.net", "SE"),
    ];

    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::helpers::test_settings(&dir);
    settings.server.public_url = Some(format!("{PUBLIC_URL}/"));
    settings.server.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    settings.followup.enabled = Some(true);
    settings.followup.remind_after = "1s".parse().unwrap();
    settings.followup.escalate_after = "2s".parse().unwrap();
    settings.followup.check_every = "1s".parse().unwrap();
    settings.followup.digest = joinform::config::DigestSchedule::Daily;
    settings.log.format = joinform::config::LogFormat::Json;
    settings.log.filter = "debug".into();
    let admin_token = crate::operator_helpers::add_token(&mut settings, "privacy", &[]);
    let config = dir.path().join("joinform.toml");
    std::fs::write(&config, toml::to_string(&settings).unwrap()).unwrap();
    // `log.filter` says debug; an inherited RUST_LOG would win over it, so it is set too.
    let server = Joinform::serve(dir.path())
        .config(&config)
        .env("RUST_LOG", "debug")
        .start();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |path: &str| {
        client
            .get(server.url(path))
            .header("X-Forwarded-For", FORWARDED_CLIENT)
    };
    let post = |path: &str| {
        client
            .post(server.url(path))
            .header("X-Forwarded-For", FORWARDED_CLIENT)
    };

    // Sign-ups in two sections (Norway, Sweden).
    let mut ids = Vec::new();
    for (name, email, country) in people {
        let response = post("/join")
            .json(&json!({"name": name, "email": email, "country": country,
                          "consent": true, "phone": PHONE, "message": MESSAGE}))
            .send()
            .await
            .unwrap();
        let answer: serde_json::Value = json_answer(response, 201, "").await;
        ids.push(answer["id"].as_str().unwrap().to_owned());
    }

    // Notifications, reminders, the escalation and digests, sent within a few seconds.
    let database = dir.path().join("data").join("joinform.db");
    let sent_kinds = || -> Vec<String> {
        let connection = rusqlite::Connection::open(&database).unwrap();
        let mut statement = connection
            .prepare("SELECT DISTINCT kind FROM outbox WHERE state = 'sent' ORDER BY kind")
            .unwrap();
        statement
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let every_kind = ["digest", "escalation", "notification", "reminder"];
    for _ in 0..150 {
        if sent_kinds() == every_kind {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(sent_kinds(), every_kind, "{}", server.log());

    // Every follow-up link in every mail written.
    let mut person_tokens = Vec::new();
    let mut section_tokens = Vec::new();
    let prefix = format!("{PUBLIC_URL}/followup/");
    for entry in std::fs::read_dir(dir.path().join("data").join("mail")).unwrap() {
        let raw = std::fs::read(entry.unwrap().path()).unwrap();
        let message = mail_parser::MessageParser::default().parse(&raw).unwrap();
        let body = message.body_text(0).unwrap().into_owned();
        for word in body.split_whitespace() {
            let Some(rest) = word.strip_prefix(&prefix) else {
                continue;
            };
            match rest.strip_prefix("section/") {
                Some(token) => section_tokens.push(token.to_owned()),
                None => person_tokens.push(rest.to_owned()),
            }
        }
    }
    person_tokens.sort();
    person_tokens.dedup();
    section_tokens.sort();
    section_tokens.dedup();
    assert!(
        person_tokens.len() >= 2,
        "one per notification, more in reminders"
    );
    assert!(
        !section_tokens.is_empty(),
        "reminders and digests link to lists"
    );
    // A page's CSRF value, in each of its forms; a list with nobody in it has none.
    let csrf_of = |page: &str| {
        let (_, rest) = page.split_once("name=csrf value=\"")?;
        rest.split('"').next().map(str::to_owned)
    };
    let mut csrf_values = Vec::new();

    // The admin list and the command's list, while both are still new.
    let list = client
        .get(server.admin_url("/admin/followup"))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap();
    let list: serde_json::Value = json_answer(list, 200, "").await;
    assert_eq!(list["followup"].as_array().unwrap().len(), 2, "{list}");
    let command = |args: &[&str]| {
        Joinform::new()
            .current_dir(dir.path())
            .config(&config)
            .args(args)
            .env("RUST_LOG", "debug")
            .output_async()
    };
    let cli_list = command(&["followup", "list"]).await;
    assert!(cli_list.status.success(), "{cli_list:?}");
    assert!(
        String::from_utf8_lossy(&cli_list.stdout).contains(&ids[0]),
        "{cli_list:?}"
    );

    // The person page of the first, and a mark through it.
    let mut marked_by_page = false;
    for token in &person_tokens {
        let page = get(&format!("/followup/{token}")).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let page = page.text().await.unwrap();
        let csrf = csrf_of(&page).unwrap_or_else(|| panic!("no CSRF value in {page}"));
        csrf_values.push(csrf.clone());
        if page.contains("Zyxwvut") {
            let response = post(&format!("/followup/{token}"))
                .form(&[("state", "contacted"), ("csrf", csrf.as_str())])
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 303);
            let back = response.headers()["location"].to_str().unwrap().to_owned();
            let again = get(&format!("/followup/{back}")).send().await.unwrap();
            assert_eq!(again.status(), 200);
            marked_by_page = true;
        }
    }
    assert!(marked_by_page, "no person page shows the first");

    // The list of the second's section, and a mark of the second through it.
    let mut marked_in_section = false;
    for token in &section_tokens {
        let page = get(&format!("/followup/section/{token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        let page = page.text().await.unwrap();
        let Some(csrf) = csrf_of(&page) else {
            continue;
        };
        csrf_values.push(csrf.clone());
        if !marked_in_section && page.contains(&ids[1]) {
            let response = post(&format!("/followup/section/{token}"))
                .form(&[
                    ("state", "contacted"),
                    ("id", ids[1].as_str()),
                    ("csrf", csrf.as_str()),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 303);
            let back = response.headers()["location"].to_str().unwrap().to_owned();
            let again = get(&format!("/followup/section/{back}"))
                .send()
                .await
                .unwrap();
            assert_eq!(again.status(), 200);
            marked_in_section = true;
        }
    }
    assert!(marked_in_section, "no section list holds the second");

    // An admin mark and a mark from the command line.
    let marked = client
        .post(server.admin_url(&format!("/admin/followup/{}", ids[0])))
        .bearer_auth(&admin_token)
        .json(&json!({"state": "joined"}))
        .send()
        .await
        .unwrap();
    let marked: serde_json::Value = json_answer(marked, 200, "").await;
    assert_eq!(marked["state"], "joined");
    let cli_mark = command(&["followup", "mark", &ids[1], "declined"]).await;
    assert!(cli_mark.status.success(), "{cli_mark:?}");

    // Lines are written out in batches: wait for the admin mark's request line.
    let admin_route = "/admin/followup/{id}";
    for _ in 0..100 {
        if server.log().contains(admin_route) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let server_log = server.log();
    drop(server);
    let log = format!(
        "{server_log}{}{}",
        String::from_utf8_lossy(&cli_list.stderr),
        String::from_utf8_lossy(&cli_mark.stderr)
    );

    // The request lines name route patterns, never the paths sent.
    let events: Vec<serde_json::Value> = server_log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    let routes: Vec<&str> = events
        .iter()
        .filter(|e| e["message"] == "request")
        .map(|e| e["route"].as_str().unwrap_or_default())
        .collect();
    for route in [
        "/followup/{token}",
        "/followup/section/{token}",
        "/admin/followup",
        admin_route,
    ] {
        assert!(
            routes.contains(&route),
            "no request line for {route}:\n{log}"
        );
    }
    for route in &routes {
        assert!(
            !route.starts_with("/followup") || route.ends_with("{token}"),
            "a path as sent: {route}"
        );
    }
    // The admin mark is logged by the route's pattern, and its own event names the
    // token's name and the submission's id (a random id, not personal data): nothing
    // else about the sign-up.
    let admin_mark = events
        .iter()
        .find(|e| e["message"] == "follow-up marked")
        .unwrap_or_else(|| panic!("no event for the admin mark:\n{log}"));
    assert_eq!(admin_mark["span"]["actor"], "privacy", "{admin_mark}");
    assert_eq!(admin_mark["span"]["id"], ids[0].as_str(), "{admin_mark}");

    let mut secrets = vec![
        FORWARDED_CLIENT.to_owned(),
        PHONE.into(),
        "913 57 246".into(),
        MESSAGE.into(),
        "private reasons".into(),
    ];
    for (name, email, _) in people {
        secrets.extend(name.split(' ').map(str::to_owned));
        secrets.push(email.into());
        secrets.push(email.split('@').next().unwrap().into());
    }
    secrets.extend(person_tokens);
    secrets.extend(section_tokens);
    secrets.extend(csrf_values);
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "`{secret}` is in the log:\n{log}"
        );
    }
}

/// The visitor's flows through the real binary, with the most verbose filter: double
/// opt-in sign-ups, a confirmation through its page, `/my-data` for a stored and an
/// unknown address and a mistyped one, the access page, and a withdrawal. Neither the
/// log nor anything else the server writes down may hold a name, address, phone
/// number, message or the client's address, nor any link token or CSRF value (each
/// would let whoever reads the log confirm, see or erase someone's sign-ups).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visitor_flows_log_no_personal_data_no_client_address_and_no_link_tokens() {
    use joinform::domain::SubmissionId;
    use joinform::visitor::{LinkPurpose, VisitorLinkKey};

    const FORWARDED_CLIENT: &str = "203.0.113.198";
    const PHONE: &str = "+47 913 57 248";
    const MESSAGE: &str = "Poiuytson's own reasons";
    const UNKNOWN: &str = "mnbvcxz.nobody@example.com";
    let people = [
        ("Lkjhgf Poiuytson", "lkjhgf.poiuytson@example.org", "NO"),
        ("Asdqwe Zxcasdson", "asdqwe.zxcasdson@example.net", "SE"),
    ];

    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::helpers::test_settings(&dir);
    crate::visitor_pages::with_visitors(&mut settings);
    settings.server.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    settings.log.format = joinform::config::LogFormat::Json;
    settings.log.filter = "debug".into();
    let config = dir.path().join("joinform.toml");
    std::fs::write(&config, toml::to_string(&settings).unwrap()).unwrap();
    let server = Joinform::serve(dir.path())
        .config(&config)
        .env("RUST_LOG", "debug")
        .start();
    let client = reqwest::Client::new();
    let with_client =
        |request: reqwest::RequestBuilder| request.header("X-Forwarded-For", FORWARDED_CLIENT);
    let get = |path: &str| with_client(client.get(server.url(path)));
    let post = |path: &str| with_client(client.post(server.url(path)));

    let mut ids = Vec::new();
    for (name, email, country) in people {
        let response = post("/join")
            .json(&json!({"name": name, "email": email, "country": country,
                          "consent": true, "phone": PHONE, "message": MESSAGE}))
            .send()
            .await
            .unwrap();
        let answer: serde_json::Value = json_answer(response, 201, "").await;
        ids.push(answer["id"].as_str().unwrap().to_owned());
    }
    // The server's own secret, beside its database, signs the links as its mails do.
    let database = dir.path().join("data").join("joinform.db");
    let secret = joinform::secret::ServerSecret::load(None, &database).unwrap();
    let key = VisitorLinkKey::from_secret(&secret);
    let expires = joinform::domain::Timestamp::now().plus(Duration::from_secs(3600));
    let token = |purpose, id: &str| key.issue(purpose, SubmissionId::parse(id).unwrap(), expires);
    let mut tokens = Vec::new();
    let mut csrf_values = Vec::new();

    // Confirm the Norwegian sign-up through its page.
    let confirm = token(LinkPurpose::Confirm, &ids[0]);
    let page = get(&format!("/confirm/{confirm}")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csrf = key.csrf_value(&confirm);
    let response = post(&format!("/confirm/{confirm}"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    tokens.push(confirm);
    csrf_values.push(csrf);

    // Ask for the data of the Swedish one, of nobody, and of a mistyped address.
    for email in [people[1].1, UNKNOWN, "lkjhgf.poiuytson(at)example.org"] {
        let response = post("/my-data")
            .form(&[("email", email)])
            .send()
            .await
            .unwrap();
        assert!(matches!(response.status().as_u16(), 200 | 422), "{email}");
    }
    // Their page, and its withdraw button.
    let access = token(LinkPurpose::Access, &ids[1]);
    let page = get(&format!("/my-data/{access}")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains(people[1].1), "the page shows them their data");
    let start = page.find("action=\"../withdraw/").unwrap() + "action=\"../withdraw/".len();
    let withdraw = page[start..start + page[start..].find('"').unwrap()].to_owned();
    let csrf = key.csrf_value(&withdraw);
    let response = post(&format!("/withdraw/{withdraw}"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    tokens.extend([access, withdraw]);
    csrf_values.push(csrf);

    // Lines are written out in batches: wait for the withdrawal's request line.
    for _ in 0..100 {
        if server.log().contains("/withdraw/{token}") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = server.log();
    drop(server);
    for route in [
        "/confirm/{token}",
        "/my-data",
        "/my-data/{token}",
        "/withdraw/{token}",
    ] {
        assert!(
            log.contains(&format!("\"route\":\"{route}\"")),
            "no request line for {route}:\n{log}"
        );
    }
    let mut secrets = vec![
        FORWARDED_CLIENT.to_owned(),
        PHONE.into(),
        "913 57 248".into(),
        MESSAGE.into(),
        UNKNOWN.into(),
        "mnbvcxz".into(),
        "(at)example".into(),
    ];
    for (name, email, _) in people {
        secrets.extend(name.split(' ').map(str::to_owned));
        secrets.push(email.into());
        secrets.push(email.split('@').next().unwrap().into());
    }
    secrets.extend(tokens);
    secrets.extend(csrf_values);
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "`{secret}` is in the log:\n{log}"
        );
    }
}
