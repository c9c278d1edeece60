//! The `joinform` command's configuration checks, run as an operator would.

use std::process::Command;

use joinform::config::Settings;

fn joinform() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_joinform"));
    // The environment of whoever runs the tests must not leak into them.
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("JOINFORM_")) {
        command.env_remove(key);
    }
    command
}

/// Routing is required; tests of other keys add this to their file.
const FALLBACK: &str = "\n[fallback]\nname = \"International\"\ncontacts = [\"desk@example.org\"]\nlanguage = \"en\"\n";

fn check_config(file_text: &str, env: &[(&str, &str)]) -> (bool, String) {
    check_config_file(&format!("{file_text}{FALLBACK}"), env)
}

fn check_config_file(file_text: &str, env: &[(&str, &str)]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("joinform.toml");
    std::fs::write(&path, file_text).unwrap();
    let output = joinform()
        .args(["check-config", "--config"])
        .arg(&path)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn the_shipped_file_documents_exactly_the_defaults() {
    let shipped = include_str!("../../config/joinform.toml");
    let settings = Settings::from_toml(Some(shipped), false).unwrap();
    let defaults = Settings::default();
    assert_eq!(settings.server, defaults.server);
    assert_eq!(settings.storage, defaults.storage);
    assert_eq!(settings.form, defaults.form);
    assert_eq!(settings.mail, defaults.mail);
    assert_eq!(settings.admin, defaults.admin);
    assert_eq!(settings.retention, defaults.retention);
    // Sections have no default: the file ships illustrative ones and the fallback.
    assert!(!settings.sections.is_empty());
    assert!(settings.fallback.is_some());
}

#[test]
fn check_config_accepts_the_shipped_file_and_prints_a_summary() {
    let (ok, text) = check_config_file(include_str!("../../config/joinform.toml"), &[]);
    assert!(ok, "{text}");
    assert!(text.contains("configuration OK"), "{text}");
    assert!(text.contains("127.0.0.1:8080"), "{text}");
}

#[test]
fn check_config_names_the_key_and_the_problem() {
    let cases = [
        (
            "[server]\nlisten = \"127.0.0.1:8080\"\nlisen = 1\n",
            "lisen",
            "unknown key",
        ),
        ("[sever]\n", "sever", "unknown table"),
        (
            "[server]\nmax_body_bytes = \"big\"\n",
            "max_body_bytes",
            "wrong type",
        ),
        (
            "[server]\nmax_body_bytes = 10\n",
            "server.max_body_bytes",
            "out of range",
        ),
        (
            "[server]\nlisten = \"nowhere\"\n",
            "listen",
            "not an address",
        ),
        (
            "[form]\nsuccess_url = \"javascript:alert(1)\"\n",
            "form.success_url",
            "not a path or URL",
        ),
        (
            "[form]\nextra_fields = [{ name = \"email\", max_length = 10 }]\n",
            "form.extra_fields[0].name",
            "reuses a standard name",
        ),
        (
            "[form]\nextra_fields = [{ name = \"org\", max_length = 0 }]\n",
            "form.extra_fields[0].max_length",
            "zero length",
        ),
        (
            "[form]\nextra_fields = [{ name = \"org\", max_length = 5, colour = 1 }]\n",
            "colour",
            "unknown key in an extra field",
        ),
        ("not toml at all = = =\n", "TOML", "unparsable"),
    ];
    for (file, expected, reason) in cases {
        let (ok, text) = check_config(file, &[]);
        assert!(!ok, "{reason}: accepted");
        assert!(text.contains(expected), "{reason}: {text}");
    }
}

#[test]
fn environment_variables_override_the_file() {
    let (ok, text) = check_config(
        "[server]\nlisten = \"127.0.0.1:8080\"\n",
        &[
            ("JOINFORM_SERVER__LISTEN", "0.0.0.0:9090"),
            ("JOINFORM_STORAGE__DATABASE", "/data/joinform.db"),
            ("JOINFORM_FORM__CONSENT_REQUIRED", "false"),
        ],
    );
    assert!(ok, "{text}");
    assert!(text.contains("0.0.0.0:9090"), "{text}");
    assert!(text.contains("/data/joinform.db"), "{text}");
    assert!(text.contains("consent required: false"), "{text}");

    let (ok, text) = check_config("", &[("JOINFORM_SERVER__MAX_BODY_BYTES", "lots")]);
    assert!(!ok);
    assert!(text.contains("MAX_BODY_BYTES"), "{text}");
}

#[test]
fn an_unreadable_file_is_an_error_naming_it() {
    let output = joinform()
        .args(["check-config", "--config", "/nonexistent/joinform.toml"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(text.contains("/nonexistent/joinform.toml"), "{text}");
}

#[test]
fn joinform_config_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.toml");
    std::fs::write(
        &path,
        format!("[server]\nlisten = \"127.0.0.1:7777\"\n{FALLBACK}"),
    )
    .unwrap();
    let output = joinform()
        .arg("check-config")
        .env("JOINFORM_CONFIG", &path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("127.0.0.1:7777"), "{text}");
}

#[tokio::test]
async fn healthcheck_succeeds_against_a_running_server_and_fails_without_one() {
    let app = crate::helpers::spawn_app().await;
    let listen = format!("127.0.0.1:{}", app.address.rsplit(':').next().unwrap());
    let probe = |listen: String| {
        tokio::task::spawn_blocking(move || {
            joinform()
                .arg("healthcheck")
                .env("JOINFORM_SERVER__LISTEN", listen)
                .current_dir(std::env::temp_dir())
                .output()
                .unwrap()
        })
    };
    let output = probe(listen.clone()).await.unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    app.stop().await;
    let output = probe(listen).await.unwrap();
    assert!(!output.status.success());
}
