//! Sealed storage, the operator's side: `joinform seal` turns a database kept in clear
//! into a sealed one in place and leaves no clear text in the file, its free pages or
//! its WAL; exports show the ciphertext, or decrypt it with the operator's key on their
//! own machine; the admin listener only ever gives the ciphertext.

use std::path::{Path, PathBuf};
use std::process::Output;

use joinform::config::{ExtraFieldSettings, Settings};
use joinform::openpgp::SecretKey;
use joinform::sealing::SealedFields;
use joinform::store::submissions::StoredSubmission;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::gnupg::{GnuPg, key_file};
use crate::helpers::{created_id, spawn_app_in, spawn_app_with};
use crate::operator_helpers::{add_token, stderr, stdout};
use crate::process::Joinform;

const PASSPHRASE: &str = "correct horse battery staple";
const ARMOUR: &str = "-----BEGIN PGP MESSAGE-----";

/// Storage sealed to the operator's key; every section and the fallback with keys
/// (Sweden's an RSA key of its own, the others Norway's), as a sealed installation
/// must have.
fn seal_settings(settings: &mut Settings) {
    settings.storage.seal_keys = vec![key_file("operator.asc")];
    for section in &mut settings.sections {
        section.pgp_keys = vec![if section.name == "Sweden" {
            key_file("sweden-rsa.asc")
        } else {
            key_file("norway.asc")
        }];
    }
    if let Some(fallback) = &mut settings.fallback {
        fallback.pgp_keys = vec![key_file("norway.asc")];
    }
}

/// The personal values of sign-up `n`: every one unique, so that a byte search finds
/// exactly its copies. Countries cycle through three sections and the fallback.
fn sign_up(n: usize) -> Value {
    let country = ["NO", "SE", "GB", "DE"][n % 4];
    json!({
        "name": format!("Ingrid Sealtest{n:03}"),
        "email": format!("Ingrid.Sealtest{n:03}@Example.ORG"),
        "country": country,
        "consent": true,
        "phone": format!("+47 912 {n:03} 77"),
        "city": format!("Sealcity{n:03}"),
        "message": format!("Sealmessage{n:03}: I want to help"),
        "organisation": format!("Sealorg{n:03}"),
        "_lang": "en",
    })
}

/// What must not be anywhere in a sealed database's files for sign-up `row`.
fn personal_values(row: &StoredSubmission) -> Vec<String> {
    let mut values = vec![
        row.name.clone(),
        row.email.clone(),
        row.email.to_lowercase(),
        row.phone.clone().unwrap(),
        row.city.clone().unwrap(),
        row.message.clone().unwrap(),
    ];
    // The phone as typed and as its digits, however it was stored.
    values.push(
        row.phone
            .clone()
            .unwrap()
            .chars()
            .filter(char::is_ascii_digit)
            .collect(),
    );
    if let Some(Value::String(organisation)) = row.extra.get("organisation") {
        values.push(organisation.clone());
    }
    values
}

/// A database kept in clear with `count` sign-ups made through POST /join (phone, city,
/// message, an extra field, the consent text), its server stopped; returns its folder,
/// the rows as stored in clear, and a configuration file for the same database with
/// storage sealed.
async fn clear_database(count: usize) -> (TempDir, Vec<StoredSubmission>, PathBuf) {
    let app = spawn_app_with(|settings| {
        settings.form.extra_fields.push(ExtraFieldSettings {
            name: "organisation".into(),
            max_length: 100,
            required: false,
        });
    })
    .await;
    for n in 0..count {
        created_id(app.post_json(&sign_up(n)).await).await;
    }
    // In id order, as exports and `stored` give them.
    let mut rows = app.rows();
    rows.sort_by_key(|row| row.id);
    assert_eq!(rows.len(), count);
    assert!(
        rows.iter().all(|row| row.consent_text.is_some()),
        "consent text kept"
    );
    let mut settings = app.settings.clone();
    let dir = app.stop().await;
    seal_settings(&mut settings);
    let config = dir.path().join("sealed.toml");
    std::fs::write(&config, toml::to_string(&settings).unwrap()).unwrap();
    (dir, rows, config)
}

async fn joinform(config: &Path, args: &[&str]) -> Output {
    Joinform::new()
        .config(config)
        .args(args)
        .output_async()
        .await
}

/// The database file, its WAL and its shared-memory index, as bytes (a file that is
/// not there counts as empty).
fn database_files(database: &Path) -> Vec<(String, Vec<u8>)> {
    ["", "-wal", "-shm"]
        .iter()
        .map(|suffix| {
            let mut name = database.as_os_str().to_owned();
            name.push(suffix);
            let bytes = std::fs::read(&name).unwrap_or_default();
            (name.to_string_lossy().into_owned(), bytes)
        })
        .collect()
}

fn database_path(dir: &TempDir) -> PathBuf {
    dir.path().join("data").join("joinform.db")
}

/// Every row as read back now, by id.
fn stored(database: &Path) -> Vec<StoredSubmission> {
    let connection = rusqlite::Connection::open(database).unwrap();
    let mut rows = Vec::new();
    joinform::store::submissions::for_each_selected(
        &connection,
        &joinform::store::submissions::Selection {
            status: None,
            ..Default::default()
        },
        |row| {
            rows.push(row);
            Ok::<_, joinform::store::StoreError>(())
        },
    )
    .unwrap();
    rows
}

fn assert_same_fields(fields: &SealedFields, clear: &StoredSubmission) {
    assert_eq!(fields.name, clear.name);
    assert_eq!(fields.email, clear.email);
    assert_eq!(fields.phone, clear.phone);
    assert_eq!(fields.city, clear.city);
    assert_eq!(fields.message, clear.message);
    assert_eq!(fields.extra, clear.extra);
    assert_eq!(fields.consent_text, clear.consent_text);
}

/// The audit rows of `action`: (details, row_count, completed_at).
fn audit(database: &Path, action: &str) -> Vec<(Value, Option<i64>, Option<String>)> {
    let connection = rusqlite::Connection::open(database).unwrap();
    let mut statement = connection
        .prepare("SELECT details, row_count, completed_at FROM audit WHERE action = ?1 ORDER BY id")
        .unwrap();
    statement
        .query_map([action], |row| {
            let details: String = row.get(0)?;
            Ok((
                serde_json::from_str(&details).unwrap(),
                row.get(1)?,
                row.get(2)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test]
async fn seal_leaves_no_clear_text_in_the_files_and_each_row_opens_with_the_key() {
    let (dir, clear, config) = clear_database(40).await;
    let database = database_path(&dir);
    // The search finds what it looks for while the rows are in clear.
    let before = database_files(&database);
    let name = clear[0].name.as_bytes();
    assert!(
        before
            .iter()
            .any(|(_, bytes)| crate::helpers::contains(bytes, name)),
        "the clear database holds the names"
    );

    let output = joinform(&config, &["seal"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("sealed 40 sign-up(s)"),
        "{}",
        stdout(&output)
    );

    for (file, bytes) in database_files(&database) {
        for row in &clear {
            for value in personal_values(row) {
                assert!(
                    !crate::helpers::contains(&bytes, value.as_bytes()),
                    "{value:?} is still in {file}"
                );
            }
        }
    }

    // Each row: personal columns empty, the hash for the address, and the sealed
    // message opens with the operator's key to exactly what was stored in clear.
    let operator = SecretKey::parse(&std::fs::read(key_file("operator.secret.asc")).unwrap())
        .unwrap()
        .unlock(PASSPHRASE)
        .unwrap();
    let sealed = stored(&database);
    assert_eq!(sealed.len(), clear.len());
    for (row, clear) in sealed.iter().zip(&clear) {
        assert_eq!(row.id, clear.id);
        assert_eq!((row.name.as_str(), row.email.as_str()), ("", ""));
        assert_eq!((&row.phone, &row.city, &row.message), (&None, &None, &None));
        assert!(row.extra.is_empty() && row.consent_text.is_none());
        assert_eq!(
            (row.country, &row.section, row.status),
            (clear.country, &clear.section, clear.status)
        );
        let plain = operator
            .decrypt("", row.sealed.as_deref().unwrap())
            .unwrap();
        assert_same_fields(&SealedFields::from_json(&plain).unwrap(), clear);
        let mail = row.sealed_mail.as_deref().unwrap();
        assert!(mail.starts_with(ARMOUR), "the notification is encrypted");
    }
    let connection = rusqlite::Connection::open(&database).unwrap();
    let keys: Vec<String> = connection
        .prepare("SELECT email_key FROM submissions")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        keys.iter()
            .all(|key| key.len() == 64 && key.chars().all(|c| c.is_ascii_hexdigit())),
        "email_key is the keyed hash: {keys:?}"
    );
    drop(connection);

    // Again: nothing left to seal, and the rows are as they were.
    let again = joinform(&config, &["seal"]).await;
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stdout(&again).contains("sealed 0 sign-up(s)")
            && stdout(&again).contains("40 sign-up(s) were sealed already"),
        "{}",
        stdout(&again)
    );
    assert_eq!(stored(&database), sealed);
    let audited = audit(&database, "seal");
    assert_eq!(audited.len(), 2, "{audited:?}");
    assert_eq!(audited[0].1, Some(40));
    assert_eq!(audited[1].1, Some(0));
    assert!(audited.iter().all(|entry| entry.2.is_some()), "completed");
}

#[tokio::test]
async fn seal_refuses_without_seal_keys_and_while_a_server_has_the_database() {
    let (dir, _clear, config) = clear_database(2).await;
    let database = database_path(&dir);
    // The same configuration, storage in clear.
    let mut settings =
        Settings::load(&joinform::config::ConfigSource::File(config.clone())).unwrap();
    settings.storage.seal_keys.clear();
    let clear_config = dir.path().join("clear.toml");
    std::fs::write(&clear_config, toml::to_string(&settings).unwrap()).unwrap();
    let output = joinform(&clear_config, &["seal"]).await;
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("storage.seal_keys is empty"),
        "{}",
        stderr(&output)
    );

    // A server on the database (in clear, as before the migration).
    let server = Joinform::serve(dir.path())
        .config(&clear_config)
        .env("JOINFORM_STORAGE__BUSY_TIMEOUT", "200ms")
        .start();
    let output = Joinform::new()
        .config(&config)
        .arg("seal")
        .env("JOINFORM_STORAGE__BUSY_TIMEOUT", "200ms")
        .output_async()
        .await;
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("in use by another process"),
        "{}",
        stderr(&output)
    );
    drop(server);
    assert!(
        stored(&database).iter().all(|row| row.sealed.is_none()),
        "nothing was sealed"
    );
}

#[tokio::test]
async fn exports_show_the_ciphertext_or_decrypt_with_the_operators_key() {
    let (dir, clear, config) = clear_database(6).await;
    let database = database_path(&dir);
    let sealed = joinform(&config, &["seal"]).await;
    assert!(sealed.status.success(), "{}", stderr(&sealed));

    // Without a key: personal columns empty, the armoured message in `sealed`.
    let output = joinform(&config, &["export", "--format", "json"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let objects: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(objects.len(), clear.len());
    for object in &objects {
        assert_eq!(object["name"], "");
        assert_eq!(object["email"], "");
        assert_eq!(object["phone"], Value::Null);
        assert!(
            object["sealed"].as_str().unwrap().starts_with(ARMOUR),
            "{object}"
        );
    }
    let output = joinform(&config, &["export"]).await;
    let text = stdout(&output);
    let header = text.lines().next().unwrap();
    assert!(
        header.ends_with(",confirmed_at,sealed,organisation"),
        "the sealed column comes before the extra fields: {header}"
    );
    assert!(text.contains(ARMOUR), "kept as is, no quote before it");

    // With the key, its passphrase from a variable: the values as they were posted,
    // and no `sealed` column.
    let decrypted = Joinform::new()
        .config(&config)
        .args(["export", "--format", "json", "--decrypt-key"])
        .arg(key_file("operator.secret.asc"))
        .args(["--passphrase-env", "SEAL_TEST_PASSPHRASE"])
        .env("SEAL_TEST_PASSPHRASE", PASSPHRASE)
        .output_async()
        .await;
    assert!(decrypted.status.success(), "{}", stderr(&decrypted));
    let objects: Vec<Value> = serde_json::from_slice(&decrypted.stdout).unwrap();
    assert_decrypted(&objects, &clear);

    // From a file descriptor: standard input, and another one opened by the shell.
    let from_stdin = Joinform::new()
        .config(&config)
        .args(["export", "--format", "ndjson", "--decrypt-key"])
        .arg(key_file("operator.secret.asc"))
        .args(["--passphrase-fd", "0"])
        .stdin(Some(&format!("{PASSPHRASE}\n")))
        .output_async()
        .await;
    assert!(from_stdin.status.success(), "{}", stderr(&from_stdin));
    let objects: Vec<Value> = stdout(&from_stdin)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_decrypted(&objects, &clear);
    let passphrase_file = dir.path().join("passphrase");
    std::fs::write(&passphrase_file, format!("{PASSPHRASE}\n")).unwrap();
    let out_file = dir.path().join("decrypted.json");
    let from_fd3 = tokio::task::spawn_blocking({
        let (config, passphrase_file, out_file) =
            (config.clone(), passphrase_file.clone(), out_file.clone());
        move || {
            std::process::Command::new("sh")
                .arg("-c")
                .arg(r#"exec "$@" 3<"$PASSPHRASE_FILE""#)
                .arg("sh")
                .arg(env!("CARGO_BIN_EXE_joinform"))
                .arg("--config")
                .arg(&config)
                .args(["export", "--format", "json", "--decrypt-key"])
                .arg(key_file("operator.secret.asc"))
                .args(["--passphrase-fd", "3", "--output"])
                .arg(&out_file)
                .env("PASSPHRASE_FILE", &passphrase_file)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(from_fd3.status.success(), "{}", stderr(&from_fd3));
    let objects: Vec<Value> = serde_json::from_slice(&std::fs::read(&out_file).unwrap()).unwrap();
    assert_decrypted(&objects, &clear);

    // A wrong passphrase: a clear error, a failure, and no file.
    let wrong_file = dir.path().join("wrong.csv");
    let wrong = Joinform::new()
        .config(&config)
        .args(["export", "--decrypt-key"])
        .arg(key_file("operator.secret.asc"))
        .args(["--passphrase-env", "SEAL_TEST_PASSPHRASE", "--output"])
        .arg(&wrong_file)
        .env("SEAL_TEST_PASSPHRASE", "incorrect horse")
        .output_async()
        .await;
    assert!(!wrong.status.success());
    assert!(
        stderr(&wrong).contains("wrong passphrase"),
        "{}",
        stderr(&wrong)
    );
    assert!(!wrong_file.exists(), "no partial export file");

    // A section's key opens its own section's sign-ups only: Norway's, without a
    // passphrase (standard input is no terminal: no prompt, an empty one).
    let norway_file = dir.path().join("norway.json");
    let others = Joinform::new()
        .config(&config)
        .args(["export", "--format", "json", "--decrypt-key"])
        .arg(key_file("sweden-rsa.secret.asc"))
        .args(["--section", "Norway", "--output"])
        .arg(&norway_file)
        .output_async()
        .await;
    assert!(
        !others.status.success(),
        "Sweden's key cannot open Norway's"
    );
    assert!(
        stderr(&others).contains("nothing was exported"),
        "{}",
        stderr(&others)
    );
    assert!(!norway_file.exists());
    let norway = Joinform::new()
        .config(&config)
        .args(["export", "--format", "json", "--decrypt-key"])
        .arg(key_file("norway.secret.asc"))
        .args(["--section", "Norway"])
        .output_async()
        .await;
    assert!(norway.status.success(), "{}", stderr(&norway));
    let objects: Vec<Value> = serde_json::from_slice(&norway.stdout).unwrap();
    let norwegians: Vec<StoredSubmission> = clear
        .iter()
        .filter(|row| row.section == "Norway")
        .cloned()
        .collect();
    assert!(!norwegians.is_empty());
    assert_decrypted(&objects, &norwegians);

    // Every export that ran is audited, with whether it decrypted; the passphrase is
    // in none. A wrong passphrase is refused before the database is opened; a key the
    // rows were not sealed to leaves its entry incomplete, with no row.
    let exports = audit(&database, "export");
    let decrypted_flags: Vec<(bool, Option<i64>, bool)> = exports
        .iter()
        .map(|(details, rows, completed)| {
            (
                details["decrypted"].as_bool().unwrap(),
                *rows,
                completed.is_some(),
            )
        })
        .collect();
    assert_eq!(
        decrypted_flags,
        [
            (false, Some(6), true),
            (false, Some(6), true),
            (true, Some(6), true),
            (true, Some(6), true),
            (true, Some(6), true),
            (true, Some(0), false),
            (true, Some(norwegians.len() as i64), true),
        ]
    );
    let text: String = exports.iter().map(|entry| entry.0.to_string()).collect();
    assert!(!text.contains("horse"), "{text}");

    // A decrypting export that fails, at its first row or further on (Norway's key
    // meets Sweden's rows), leaves a file that was at --output as it was, and no
    // partial file beside it.
    let kept = dir.path().join("kept.json");
    std::fs::write(&kept, "precious").unwrap();
    let failed = Joinform::new()
        .config(&config)
        .args(["export", "--format", "json", "--decrypt-key"])
        .arg(key_file("norway.secret.asc"))
        .arg("--output")
        .arg(&kept)
        .output_async()
        .await;
    assert!(
        !failed.status.success(),
        "Norway's key cannot open Sweden's"
    );
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), "precious");
    let beside: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("partial"))
        .collect();
    assert!(beside.is_empty(), "{beside:?}");
}

/// The decrypted export holds exactly the values stored in clear, and no ciphertext.
fn assert_decrypted(objects: &[Value], clear: &[StoredSubmission]) {
    assert_eq!(objects.len(), clear.len());
    for (object, row) in objects.iter().zip(clear) {
        assert_eq!(object["id"], row.id.to_string());
        assert_eq!(object["name"], row.name.as_str());
        assert_eq!(object["email"], row.email.as_str());
        assert_eq!(object["phone"].as_str(), row.phone.as_deref());
        assert_eq!(object["city"].as_str(), row.city.as_deref());
        assert_eq!(object["message"].as_str(), row.message.as_deref());
        assert_eq!(object["consent_text"].as_str(), row.consent_text.as_deref());
        assert_eq!(object["organisation"], row.extra["organisation"]);
        assert!(object.get("sealed").is_none(), "{object}");
    }
}

#[tokio::test]
async fn the_admin_export_of_a_sealed_database_gives_the_ciphertext() {
    let (dir, clear, config) = clear_database(3).await;
    let sealed = joinform(&config, &["seal"]).await;
    assert!(sealed.status.success(), "{}", stderr(&sealed));
    let mut settings =
        Settings::load(&joinform::config::ConfigSource::File(config.clone())).unwrap();
    settings.server.listen = "127.0.0.1:0".parse().unwrap();
    settings.admin.listen = "127.0.0.1:0".parse().unwrap();
    let token = add_token(&mut settings, "head office", &[]);
    let app = spawn_app_in(dir, settings);
    let response =
        crate::operator_helpers::admin_get(&app, "/admin/submissions?format=json", &token).await;
    assert_eq!(response.status(), 200);
    let objects: Vec<Value> = response.json().await.unwrap();
    assert_eq!(objects.len(), clear.len());
    for (object, row) in objects.iter().zip(&clear) {
        assert_eq!(object["id"], row.id.to_string());
        assert_eq!(object["name"], "");
        assert!(
            object["sealed"].as_str().unwrap().starts_with(ARMOUR),
            "{object}"
        );
        let text = object.to_string();
        assert!(!text.contains(&row.name) && !text.contains(&row.email));
    }
    let csv = crate::operator_helpers::admin_get(&app, "/admin/submissions", &token)
        .await
        .text()
        .await
        .unwrap();
    assert!(csv.lines().next().unwrap().contains(",sealed,"), "{csv}");
    app.stop().await;
}

/// GnuPG, the operator's own tool, opens the `sealed` cell of an export made without a
/// key: the armour is a standard OpenPGP message holding the sealed fields as JSON.
#[tokio::test]
async fn gnupg_opens_the_sealed_column_of_an_export() {
    let test = "seal::gnupg_opens_the_sealed_column_of_an_export";
    let Some(gnupg) = GnuPg::new(test) else {
        return;
    };
    let (dir, clear, config) = clear_database(2).await;
    let sealed = joinform(&config, &["seal"]).await;
    assert!(sealed.status.success(), "{}", stderr(&sealed));
    let output = joinform(&config, &["export", "--format", "json"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let objects: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();

    gnupg.import(&key_file("operator.secret.asc"));
    for (object, row) in objects.iter().zip(&clear) {
        let message = dir.path().join("sealed.asc");
        std::fs::write(&message, object["sealed"].as_str().unwrap()).unwrap();
        let plain = gnupg.decrypt_file(&message, PASSPHRASE);
        assert_same_fields(&SealedFields::from_json(&plain).unwrap(), row);
    }
}
