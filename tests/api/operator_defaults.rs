//! What an operator trips over when deploying: the shipped example routing in force,
//! mail over SMTP to domains reserved for examples, `/metrics` on a listener that is
//! not on loopback, and the environment overriding the configuration file, each run
//! through the real `joinform` binary or a real server.

use crate::helpers::{spawn_app_with, valid_json};
use crate::operator_helpers::add_token;
use crate::process::Joinform;

/// The warning's words, as both `serve` and `check-config` say them.
const SHIPPED_EXAMPLE: &str = "routing is the shipped example";

/// Routing of an organisation's own, as the environment gives it.
const OWN_ROUTING: [(&str, &str); 2] = [
    (
        "JOINFORM_SECTIONS",
        r#"[{name="Norway", countries=["NO"], contacts=["Oslo <oslo@members.organisation.no>"], language="nb"}]"#,
    ),
    (
        "JOINFORM_FALLBACK",
        r#"{name="International", contacts=["desk@members.organisation.no"], language="en"}"#,
    ),
];

/// `check-config` with `file_text` as the configuration file and `env`: whether it
/// succeeded, its standard output, its standard error.
fn check_config(file_text: Option<&str>, env: &[(&str, &str)]) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Joinform::new().current_dir(dir.path()).envs(env);
    if let Some(text) = file_text {
        let path = dir.path().join("joinform.toml");
        std::fs::write(&path, text).unwrap();
        command = command.config(&path);
    }
    let output = command.arg("check-config").output();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn serve_on_the_built_in_defaults_warns_once_that_no_sign_up_reaches_a_person() {
    let dir = tempfile::tempdir().unwrap();
    let server = Joinform::serve(dir.path()).start();
    let log = server.log();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|line| line.contains(SHIPPED_EXAMPLE))
        .collect();
    assert_eq!(warnings.len(), 1, "{log}");
    let warning = warnings[0];
    assert!(warning.contains("WARN"), "{warning}");
    assert!(
        warning.contains("no sign-up reaches a person")
            && warning.contains("[[sections]]")
            && warning.contains("JOINFORM_SECTIONS"),
        "says why and how to configure it: {warning}"
    );
    assert!(!warning.contains('@'), "no address in the log: {warning}");
    drop(server);

    // Routing of the operator's own, from the environment: no warning.
    let dir = tempfile::tempdir().unwrap();
    let server = Joinform::serve(dir.path()).envs(&OWN_ROUTING).start();
    let log = server.log();
    assert!(!log.contains(SHIPPED_EXAMPLE), "{log}");
    assert!(!log.contains("reserved for examples"), "{log}");
}

#[test]
fn check_config_says_when_the_routing_is_the_example() {
    // No file at all: the built-in copy.
    let (ok, text, _) = check_config(None, &[]);
    assert!(ok, "{text}");
    assert!(
        text.lines()
            .any(|line| line.starts_with("warning: ") && line.contains(SHIPPED_EXAMPLE)),
        "{text}"
    );
    // A copy of the shipped file, mounted: the same routing, the same warning.
    let (ok, text, _) = check_config(Some(include_str!("../../config/joinform.toml")), &[]);
    assert!(ok && text.contains(SHIPPED_EXAMPLE), "{text}");
    // Sections of one's own, still all at example domains: still nobody.
    let (ok, text, _) = check_config(
        Some(
            "[[sections]]\nname = \"Peru\"\ncountries = [\"PE\"]\ncontacts = [\"lima@mail.test\"]\n\
             language = \"es\"\n[fallback]\nname = \"World\"\ncontacts = [\"desk@example.net\"]\n\
             language = \"en\"\n",
        ),
        &[],
    );
    assert!(ok, "{text}");
    assert!(
        text.contains(
            "warning: every contact of every section and the fallback is at a domain reserved"
        ),
        "{text}"
    );
    // One real contact is enough to reach a person.
    let (ok, text, _) = check_config(None, &OWN_ROUTING);
    assert!(ok, "{text}");
    assert!(!text.contains(SHIPPED_EXAMPLE), "{text}");
    assert!(!text.contains("reserved"), "{text}");
}

/// A file with one section and the fallback, mailing over SMTP.
fn smtp_file(section_contact: &str, fallback_contact: &str, from: &str) -> String {
    format!(
        "[mail]\ntransport = \"smtp\"\nfrom = \"{from}\"\n\
         [[sections]]\nname = \"Norway\"\ncountries = [\"NO\"]\ncontacts = [\"{section_contact}\"]\n\
         language = \"nb\"\n[fallback]\nname = \"International\"\n\
         contacts = [\"{fallback_contact}\"]\nlanguage = \"en\"\n"
    )
}

#[test]
fn check_config_refuses_smtp_mail_to_reserved_example_domains() {
    let own = "desk@members.organisation.no";
    let sender = "joinform <join@organisation.no>";
    let refused = [
        (
            "Oslo <oslo@example.org>",
            "example.org",
            "the example domain",
        ),
        ("Oslo <oslo@EXAMPLE.ORG>", "example.org", "in capitals"),
        ("oslo@oslo.example.com", "example.com", "a subdomain"),
        ("oslo@mail.test", ".test", "under .test"),
        ("oslo@nowhere.invalid", ".invalid", "under .invalid"),
        ("oslo@box.localhost", ".localhost", "under .localhost"),
        ("oslo@site.example", ".example", "under .example"),
        (
            "oslo@ｅｘａｍｐｌｅ.org",
            "example.org",
            "full-width letters IDNA maps",
        ),
    ];
    for (contact, reserved, reason) in refused {
        let (ok, stdout, stderr) = check_config(Some(&smtp_file(contact, own, sender)), &[]);
        assert!(!ok, "{reason}: accepted: {stdout}");
        assert!(
            stderr.contains("sections[0].contacts[0]")
                && stderr.contains("section `Norway`")
                && stderr.contains(&format!("`{reserved}` is reserved for examples"))
                && stderr.contains("RFC 2606"),
            "{reason}: {stderr}"
        );
        assert!(
            !stderr.contains("oslo@"),
            "{reason}: names the domain, not the address: {stderr}"
        );
    }
    // The fallback's contacts, and the sender, are checked too.
    let (ok, _, stderr) = check_config(
        Some(&smtp_file(own, "International <intl@example.net>", sender)),
        &[],
    );
    assert!(!ok);
    assert!(
        stderr.contains("fallback.contacts[0]") && stderr.contains("section `International`"),
        "{stderr}"
    );
    let (ok, _, stderr) = check_config(
        Some(&smtp_file(own, own, "joinform <join@example.org>")),
        &[],
    );
    assert!(!ok);
    assert!(
        stderr.contains("mail.from") && stderr.contains("`example.org` is reserved"),
        "{stderr}"
    );
    // Domains somebody can hold, a look-alike in punycode among them, load.
    for contact in [own, "oslo@xn--exmple-cua.org", "oslo@example.org.no"] {
        let (ok, stdout, stderr) = check_config(Some(&smtp_file(contact, own, sender)), &[]);
        assert!(ok, "{contact}: {stderr}");
        assert!(!stdout.contains("reserved"), "{contact}: {stdout}");
    }
    // The file transport writes .eml files: the local demo, warned of but not refused.
    let (ok, stdout, _) = check_config(
        Some(&smtp_file(own, own, sender).replace("\"smtp\"", "\"file\"")),
        &[
            ("JOINFORM_SECTIONS", "[]"),
            (
                "JOINFORM_FALLBACK",
                r#"{name="I", contacts=["a@example.org"], language="en"}"#,
            ),
        ],
    );
    assert!(ok, "{stdout}");
    assert!(stdout.contains("warning: every contact"), "{stdout}");
}

#[test]
fn serve_over_smtp_warns_of_each_section_at_a_reserved_domain_but_starts() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("joinform.toml");
    let mut text = smtp_file(
        "Oslo <oslo@example.org>",
        "desk@members.organisation.no",
        "joinform <join@organisation.no>",
    );
    text.push_str(
        "[[sections]]\nname = \"Sweden\"\ncountries = [\"SE\"]\n\
         contacts = [\"a@stockholm.example.com\", \"b@example.org\", \"c@example.org\"]\n\
         language = \"sv\"\n",
    );
    std::fs::write(&file, text).unwrap();
    let server = Joinform::serve(dir.path()).config(&file).start();
    let log = server.log();
    let lines: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("reserved for examples"))
        .collect();
    assert_eq!(lines.len(), 2, "one line per section: {log}");
    assert!(
        lines[0].contains("section `Norway`") && lines[0].contains("`example.org`"),
        "{log}"
    );
    assert!(
        lines[1].contains("section `Sweden`")
            && lines[1].contains("`stockholm.example.com`, `example.org`"),
        "{log}"
    );
    assert!(!log.contains('@'), "no address in the log: {log}");
}

/// SHA-256 digests of two tokens, as `joinform token new` prints them.
const METRICS_DIGEST: &str = "4c3f2b7c0a1d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f";
const ADMIN_DIGEST: &str = "50d858e0985ecc7f60418aaf0cc5ab587f42c2570a884095a9e8ccacd0f6545c";

#[test]
fn check_config_shows_where_each_value_came_from_and_never_a_secret() {
    let secret = "a-spam-secret-that-is-long-enough-0123456789";
    let password = "smtp-password-never-printed";
    let (ok, text, stderr) = check_config(
        Some(
            format!(
                "[server]\nlisten = \"127.0.0.1:8080\"\n[storage]\ndatabase = \"data/file.db\"\n\
                 [mail.smtp]\nusername = \"joinform\"\n\
                 [admin]\nmetrics_token_sha256 = \"{METRICS_DIGEST}\"\n\
                 [[admin.tokens]]\nname = \"Operator\"\nsha256 = \"{ADMIN_DIGEST}\"\n\
                 [fallback]\nname = \"International\"\ncontacts = [\"desk@members.organisation.no\"]\n\
                 language = \"en\"\n"
            )
            .as_str(),
        ),
        &[
            ("JOINFORM_SERVER__LISTEN", "0.0.0.0:9090"),
            ("JOINFORM_MAIL__FILE_DIR", "/data/mail"),
            ("JOINFORM_SPAM__SECRET", secret),
            ("JOINFORM_MAIL__SMTP__PASSWORD", password),
        ],
    );
    assert!(ok, "{stderr}");
    let line = |key: &str| {
        text.lines()
            .find(|line| line.trim_start().starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("no line for {key}: {text}"))
            .trim()
            .to_owned()
    };
    assert!(text.contains("where values came from"), "{text}");
    assert_eq!(
        line("server.listen"),
        "server.listen = \"0.0.0.0:9090\"  (environment: JOINFORM_SERVER__LISTEN, overriding the file's value)"
    );
    assert_eq!(
        line("mail.file_dir"),
        "mail.file_dir = \"/data/mail\"  (environment: JOINFORM_MAIL__FILE_DIR)"
    );
    assert_eq!(
        line("storage.database"),
        "storage.database = \"data/file.db\"  (file)"
    );
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("(file) is ") && l.ends_with("joinform.toml")),
        "{text}"
    );
    assert_eq!(
        line("spam.secret"),
        "spam.secret = (secret, not shown)  (environment: JOINFORM_SPAM__SECRET)"
    );
    assert_eq!(
        line("mail.smtp.password"),
        "mail.smtp.password = (secret, not shown)  (environment: JOINFORM_MAIL__SMTP__PASSWORD)"
    );
    assert!(line("fallback.name").ends_with("(file)"), "{text}");
    assert!(
        text.contains("everything else: built-in defaults"),
        "{text}"
    );
    assert!(!text.contains(secret) && !text.contains(password), "{text}");
    // Token digests let anyone test guesses offline: their source only.
    assert!(
        !text.contains(METRICS_DIGEST) && !text.contains(ADMIN_DIGEST),
        "{text}"
    );
    assert!(
        line("admin.metrics_token_sha256").contains("not shown"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("admin.tokens") && l.contains("not shown")),
        "{text}"
    );
    // What the built-in defaults set is not listed one by one.
    assert!(
        !text
            .lines()
            .any(|l| l.trim_start().starts_with("rate_limit.")),
        "{text}"
    );
}

#[test]
fn serve_names_what_the_environment_set_and_never_a_value() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("joinform.toml");
    std::fs::write(
        &file,
        "[storage]\ndatabase = \"data/file.db\"\n[fallback]\nname = \"I\"\n\
         contacts = [\"d@members.organisation.no\"]\nlanguage = \"en\"\n",
    )
    .unwrap();
    let secret = "a-spam-secret-that-is-long-enough-0123456789";
    let server = Joinform::serve(dir.path())
        .config(&file)
        .env("JOINFORM_SPAM__SECRET", secret)
        .env("JOINFORM_STORAGE__DATABASE", dir.path().join("env.db"))
        .start();
    let log = server.log();
    let lines: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("the environment sets"))
        .collect();
    assert_eq!(lines.len(), 1, "{log}");
    let line = lines[0];
    assert!(line.contains("WARN"), "a file's value replaced: {line}");
    for named in [
        "storage.database (JOINFORM_STORAGE__DATABASE, over the file's value)",
        "spam.secret (JOINFORM_SPAM__SECRET)",
        "server.listen (JOINFORM_SERVER__LISTEN)",
    ] {
        assert!(line.contains(named), "{named}: {line}");
    }
    assert!(!log.contains(secret), "{log}");
    assert!(!line.contains("env.db"), "names only: {line}");
    drop(server);

    // As in the container image: the shipped file, its listen addresses replaced by
    // the image's variables on every start. Said, but not as a warning.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("joinform.toml");
    std::fs::write(&file, include_str!("../../config/joinform.toml")).unwrap();
    let server = Joinform::serve(dir.path()).config(&file).start();
    let log = server.log();
    let line = log
        .lines()
        .find(|line| line.contains("the environment sets"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        line.contains("server.listen (JOINFORM_SERVER__LISTEN, over the file's value)"),
        "{line}"
    );
    assert!(line.contains("INFO") && !line.contains("WARN"), "{line}");
}

#[tokio::test]
async fn metrics_off_loopback_need_a_token_and_failures_count() {
    let mut metrics_token = String::new();
    let mut admin_token = String::new();
    let app = spawn_app_with(|settings| {
        settings.admin.listen = "0.0.0.0:0".parse().unwrap();
        settings.admin.failed_auth_per_minute = 3;
        admin_token = add_token(settings, "Oslo organiser", &["Norway"]);
        metrics_token = "prometheus-token".to_owned();
        settings.admin.metrics_token_sha256 = Some(hex::encode(
            <sha2::Sha256 as sha2::Digest>::digest(metrics_token.as_bytes()),
        ));
    })
    .await;
    assert_eq!(app.post_json(&valid_json()).await.status(), 201);
    let url = format!("{}/metrics", app.admin_address);
    let get = |token: Option<&str>| {
        let mut request = app.client.get(&url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let refused = get(None).await.unwrap();
    assert_eq!(refused.status(), 401);
    assert!(refused.headers().contains_key("www-authenticate"));
    for token in [metrics_token.as_str(), admin_token.as_str()] {
        let answer = get(Some(token)).await.unwrap();
        assert_eq!(answer.status(), 200, "{token}");
        let text = answer.text().await.unwrap();
        assert!(text.contains("joinform_submissions_total"), "{text}");
    }
    // The metrics-only token opens nothing else.
    let export = app
        .client
        .get(format!("{}/admin/submissions", app.admin_address))
        .bearer_auth(&metrics_token)
        .send()
        .await
        .unwrap();
    assert_eq!(export.status(), 401);
    // Failures count toward failed_auth_per_minute (3): the first refusal and the
    // export above were two.
    assert_eq!(get(Some("wrong")).await.unwrap().status(), 401);
    assert_eq!(get(None).await.unwrap().status(), 429);
    // A correct token is never refused.
    assert_eq!(get(Some(&metrics_token)).await.unwrap().status(), 200);
    app.stop().await;

    // Opted out: open on any address.
    let app = spawn_app_with(|settings| {
        settings.admin.listen = "0.0.0.0:0".parse().unwrap();
        settings.admin.public_metrics = true;
    })
    .await;
    let open = app
        .client
        .get(format!("{}/metrics", app.admin_address))
        .send()
        .await
        .unwrap();
    assert_eq!(open.status(), 200);
    app.stop().await;
}

#[test]
fn check_config_says_who_may_read_metrics() {
    let fallback =
        "[fallback]\nname = \"I\"\ncontacts = [\"d@members.organisation.no\"]\nlanguage = \"en\"\n";
    let cases: [(&str, &str); 5] = [
        ("", "/metrics without a token (loopback)"),
        (
            "[admin]\nlisten = \"0.0.0.0:8081\"\n",
            "/metrics needs a token (not on loopback), and none is configured",
        ),
        (
            "[admin]\nlisten = \"0.0.0.0:8081\"\npublic_metrics = true\n",
            "/metrics without a token (admin.public_metrics = true)",
        ),
        (
            &format!(
                "[admin]\nlisten = \"0.0.0.0:8081\"\n\
                 [[admin.tokens]]\nname = \"Operator\"\nsha256 = \"{ADMIN_DIGEST}\"\n"
            ),
            "/metrics needs an admin token (not on loopback)",
        ),
        (
            &format!(
                "[admin]\nlisten = \"0.0.0.0:8081\"\nmetrics_token_sha256 = \"{METRICS_DIGEST}\"\n"
            ),
            "/metrics needs the metrics token or an admin token (not on loopback)",
        ),
    ];
    for (admin, expected) in cases {
        let (ok, text, stderr) = check_config(Some(&format!("{admin}{fallback}")), &[]);
        assert!(ok, "{stderr}");
        assert!(text.contains(expected), "{expected}: {text}");
    }
}

#[test]
fn token_metrics_prints_a_token_and_the_line_with_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let output = Joinform::new()
        .current_dir(dir.path())
        .args(["token", "metrics"])
        .output();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    let token = text
        .split_whitespace()
        .find(|word| word.starts_with("jfm_"))
        .unwrap();
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(token.as_bytes()));
    assert!(
        text.contains(&format!("metrics_token_sha256 = \"{digest}\"")),
        "{text}"
    );
}
