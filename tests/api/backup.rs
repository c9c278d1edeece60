//! Backups through the real binary: `joinform backup` beside a serving `joinform
//! serve`, encrypted backups, `joinform restore` and its refusals, and re-applying the
//! erasures made after a backup (`joinform forget --replay`).

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use joinform::config::Settings;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::gnupg::{GnuPg, key_file};
use crate::helpers::{contains, created_id, test_settings, use_smtp};
use crate::operator_helpers::{stderr, stdout};
use crate::process::{Joinform, ServerProcess};
use crate::smtp::{Behaviour, SmtpServer, closed_port};

const PASSPHRASE: &str = "correct horse battery staple";

/// An installation in a folder of its own: its settings (database under `data/`) and
/// the configuration file that says so.
struct Install {
    dir: TempDir,
    config: PathBuf,
    database: PathBuf,
}

impl Install {
    fn new(adjust: impl FnOnce(&mut Settings)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = test_settings(&dir);
        adjust(&mut settings);
        let config = dir.path().join("joinform.toml");
        std::fs::write(&config, toml::to_string(&settings).unwrap()).unwrap();
        Self {
            database: settings.storage.database.clone(),
            dir,
            config,
        }
    }

    fn serve(&self) -> ServerProcess {
        Joinform::new().config(&self.config).arg("serve").start()
    }

    async fn run(&self, args: &[&str]) -> Output {
        Joinform::new()
            .config(&self.config)
            .args(args)
            .output_async()
            .await
    }

    async fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        Joinform::new()
            .config(&self.config)
            .args(args)
            .envs(env)
            .output_async()
            .await
    }

    /// `joinform forget --replay SINCE --from SOURCE`.
    async fn replay(&self, since: &str, source: &str) -> Output {
        self.run(&["forget", "--replay", since, "--from", source])
            .await
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn sign_up(n: usize) -> Value {
    json!({
        "name": format!("Backup Person{n:04}"),
        "email": format!("backup.person{n:04}@example.org"),
        "country": "NO",
        "consent": true,
    })
}

async fn post(client: &reqwest::Client, server: &ServerProcess, body: &Value) -> String {
    created_id(
        client
            .post(server.url("/join"))
            .json(body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

fn ok(output: &Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        stdout(output),
        stderr(output)
    );
    stdout(output)
}

fn refused(output: &Output, what: &str, expected: &str) {
    assert!(
        !output.status.success(),
        "{what} should be refused: {}",
        stdout(output)
    );
    let message = stderr(output);
    assert!(
        message.contains(expected),
        "{what}: the message should say `{expected}`: {message}"
    );
}

fn ids_in(database: &Path) -> HashSet<String> {
    let connection = rusqlite::Connection::open(database).unwrap();
    let mut statement = connection.prepare("SELECT id FROM submissions").unwrap();
    statement
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn integrity(database: &Path) -> String {
    let connection = rusqlite::Connection::open(database).unwrap();
    connection
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap()
}

fn count(database: &Path, sql: &str) -> i64 {
    let connection = rusqlite::Connection::open(database).unwrap();
    connection.query_row(sql, [], |row| row.get(0)).unwrap()
}

/// The `SINCE` printed in a command's `joinform forget --replay SINCE …` line.
fn replay_since(text: &str) -> String {
    text.split("joinform forget --replay ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no replay command in: {text}"))
        .to_owned()
}

fn file_bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

#[tokio::test]
async fn a_backup_beside_a_serving_server_holds_every_acknowledged_sign_up() {
    let install = Install::new(|_| {});
    let server = install.serve();
    let client = reqwest::Client::new();
    let mut acknowledged = HashSet::new();
    for n in 0..40 {
        acknowledged.insert(post(&client, &server, &sign_up(n)).await);
    }
    // An address erased before the backup leaves no byte of it in the copy.
    post(&client, &server, &json!({"name": "Erased Before", "email": "erased.before@example.org", "country": "SE", "consent": true})).await;
    ok(
        &install.run(&["forget", "erased.before@example.org"]).await,
        "forget",
    );

    // Sign-ups keep coming while the copy is made: the copy starts once they flow.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let posted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let posting = {
        let (client, url) = (client.clone(), server.url("/join"));
        let (stop, posted) = (stop.clone(), posted.clone());
        tokio::spawn(async move {
            let mut n = 1000;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let response = client.post(&url).json(&sign_up(n)).send().await.unwrap();
                assert_eq!(response.status(), 201);
                n += 1;
                posted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        })
    };
    while posted.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let file = install.path("backup.db");
    let output = install.run(&["backup", file.to_str().unwrap()]).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    posting.await.unwrap();
    let printed = ok(&output, "backup");

    assert_eq!(integrity(&file), "ok");
    let in_copy = ids_in(&file);
    assert!(
        acknowledged.is_subset(&in_copy),
        "every sign-up acknowledged before the backup is in it"
    );
    let total = count(&file, "SELECT count(*) FROM submissions");
    assert!(
        printed.contains(&format!("submissions: accepted {total} ({total} in all)")),
        "the counts printed are the copy's ({total}): {printed}"
    );
    let audit = count(&file, "SELECT count(*) FROM audit");
    assert!(
        printed.contains(&format!("audit entries: {audit}")),
        "{printed}"
    );
    assert!(printed.contains("integrity_check ok"), "{printed}");
    assert!(!contains(&file_bytes(&file), b"erased.before"));
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the backup is readable by its owner only");
    }
    // Nothing but the backup was left in the folder.
    let names: Vec<String> = std::fs::read_dir(install.dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("backup") || name.starts_with(".backup"))
        .collect();
    assert_eq!(names, ["backup.db"]);

    // The backup is audited in the live database (read once the server stopped), and
    // in the copy itself.
    let mut server = server;
    server.stop("TERM", Duration::from_secs(30)).await;
    let details: String = rusqlite::Connection::open(&install.database)
        .unwrap()
        .query_row(
            "SELECT details FROM audit WHERE action = 'backup' AND completed_at IS NOT NULL",
            [],
            |row| row.get(0),
        )
        .unwrap();
    let details: Value = serde_json::from_str(&details).unwrap();
    assert_eq!(details["file"], "backup.db");
    assert_eq!(details["encrypted"], false);
    assert_eq!(details["audit_key_check"].as_str().unwrap().len(), 16);
    assert_eq!(
        count(&file, "SELECT count(*) FROM audit WHERE action = 'backup'"),
        1
    );

    // An existing file is kept unless --force.
    let again = install.run(&["backup", file.to_str().unwrap()]).await;
    refused(&again, "a second backup to the same file", "--force");
    ok(
        &install
            .run(&["backup", file.to_str().unwrap(), "--force"])
            .await,
        "backup --force",
    );
}

/// `gpg --decrypt` of `file` with the operator's secret key, in a GnuPG home of its
/// own; `None`, after saying so loudly, without GnuPG.
fn gpg_decrypt(test: &str, file: &Path) -> Option<Vec<u8>> {
    let gnupg = GnuPg::new(test)?;
    gnupg.import(&key_file("operator.secret.asc"));
    Some(gnupg.decrypt_file(file, PASSPHRASE))
}

#[tokio::test]
async fn an_encrypted_backup_holds_no_clear_text_and_restores_with_the_operators_key() {
    let install = Install::new(|_| {});
    let server = install.serve();
    let client = reqwest::Client::new();
    let mut ids = HashSet::new();
    for n in 0..5 {
        ids.insert(post(&client, &server, &sign_up(n)).await);
    }
    let file = install.path("backup.pgp");
    let printed = ok(
        &install
            .run(&[
                "backup",
                file.to_str().unwrap(),
                "--encrypt-to",
                key_file("operator.asc").to_str().unwrap(),
            ])
            .await,
        "encrypted backup",
    );
    assert!(printed.contains("encrypted to"), "{printed}");
    let bytes = file_bytes(&file);
    for n in 0..5 {
        for value in [format!("Person{n:04}"), format!("backup.person{n:04}")] {
            assert!(!contains(&bytes, value.as_bytes()), "{value} in the file");
        }
    }
    assert!(!bytes.starts_with(b"SQLite format 3"));
    let left: Vec<_> = std::fs::read_dir(install.dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("partial"))
        .collect();
    assert!(left.is_empty(), "no temporary file left: {left:?}");
    drop(server);

    // GnuPG opens it too: a standard OpenPGP message of the database file.
    if let Some(opened) = gpg_decrypt("backup: gpg opens an encrypted backup", &file) {
        assert_eq!(
            &opened[18..20],
            &[1, 1],
            "rollback-journal mode, as a clear backup"
        );
        let copy = install.path("from-gpg.db");
        std::fs::write(&copy, opened).unwrap();
        assert_eq!(integrity(&copy), "ok");
        assert_eq!(ids_in(&copy), ids);
    }

    // A key that cannot encrypt is refused, and nothing is written.
    let refused_file = install.path("refused.pgp");
    let output = install
        .run(&[
            "backup",
            refused_file.to_str().unwrap(),
            "--encrypt-to",
            key_file("revoked.asc").to_str().unwrap(),
        ])
        .await;
    refused(&output, "a revoked key", "revoked");
    assert!(!refused_file.exists());

    // Restored elsewhere with the operator's secret key.
    let elsewhere = Install::new(|_| {});
    let restore = ["restore", file.to_str().unwrap()];
    refused(
        &elsewhere.run(&restore).await,
        "an encrypted backup without a key",
        "--decrypt-key",
    );
    let secret = key_file("operator.secret.asc");
    let printed = ok(
        &elsewhere
            .run_with(
                &[
                    "restore",
                    file.to_str().unwrap(),
                    "--decrypt-key",
                    secret.to_str().unwrap(),
                    "--passphrase-env",
                    "BACKUP_TEST_PASSPHRASE",
                ],
                &[("BACKUP_TEST_PASSPHRASE", PASSPHRASE)],
            )
            .await,
        "restore of the encrypted backup",
    );
    assert!(printed.contains("integrity_check ok"), "{printed}");
    assert_eq!(ids_in(&elsewhere.database), ids);
    // A restore into a new installation lacks the audit key the backup was made with.
    assert!(printed.contains("no audit.key"), "{printed}");
}

#[tokio::test]
async fn restore_refuses_what_it_must_not_put_in_place_and_leaves_the_database_alone() {
    let install = Install::new(|_| {});
    let server = install.serve();
    let client = reqwest::Client::new();
    for n in 0..3 {
        post(&client, &server, &sign_up(n)).await;
    }
    let good = install.path("good.db");
    ok(
        &install.run(&["backup", good.to_str().unwrap()]).await,
        "backup",
    );

    // While the server runs.
    let output = install
        .run_with(
            &["restore", good.to_str().unwrap(), "--replace"],
            &[("JOINFORM_STORAGE__BUSY_TIMEOUT", "300ms")],
        )
        .await;
    refused(&output, "a restore while serving", "is in use");
    // The server goes on.
    post(&client, &server, &sign_up(3)).await;
    let mut server = server;
    server.stop("TERM", Duration::from_secs(30)).await;
    let before = file_bytes(&install.database);

    // Without --replace.
    refused(
        &install.run(&["restore", good.to_str().unwrap()]).await,
        "a restore over a database",
        "--replace",
    );

    // A newer schema version.
    let newer = install.path("newer.db");
    std::fs::copy(&good, &newer).unwrap();
    rusqlite::Connection::open(&newer)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    // A damaged copy: pages past the first overwritten.
    let damaged = install.path("damaged.db");
    let mut bytes = file_bytes(&good);
    let len = bytes.len();
    bytes[4096 * 2..len.min(4096 * 8)].fill(0x5a);
    std::fs::write(&damaged, bytes).unwrap();
    // Another program's SQLite file, and an empty one.
    let foreign = install.path("foreign.db");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE notes (text TEXT); INSERT INTO notes VALUES ('x');")
        .unwrap();
    let empty = install.path("empty.db");
    rusqlite::Connection::open(&empty)
        .unwrap()
        .execute_batch("CREATE TABLE t (x); DROP TABLE t;")
        .unwrap();
    // Not SQLite at all.
    let text = install.path("notes.txt");
    std::fs::write(&text, "just some text, not a database\n".repeat(10)).unwrap();
    for (file, what, expected) in [
        (&newer, "a newer schema", "newer than"),
        (&damaged, "a damaged backup", "damaged"),
        (&foreign, "a foreign database", "not a joinform database"),
        (&empty, "an empty SQLite file", "not a joinform one"),
        (&text, "a text file", "not a SQLite database"),
    ] {
        refused(
            &install
                .run(&["restore", file.to_str().unwrap(), "--replace"])
                .await,
            what,
            expected,
        );
    }

    assert_eq!(
        file_bytes(&install.database),
        before,
        "every refusal left the database as it was"
    );
    for suffix in ["-wal", "-shm"] {
        let mut name = install.database.as_os_str().to_owned();
        name.push(suffix);
        assert!(!Path::new(&name).exists(), "{suffix} left by a refusal");
    }
    let left: Vec<_> = std::fs::read_dir(install.database.parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("partial") || name.contains("replaced"))
        .collect();
    assert!(
        left.is_empty(),
        "nothing left beside the database: {left:?}"
    );
}

#[tokio::test]
async fn a_restored_database_serves_its_sign_ups_and_delivers_its_pending_mail() {
    // Mail cannot go: every notification stays pending in the backup.
    let unreachable = closed_port().port();
    let install = Install::new(|settings| use_smtp(settings, unreachable));
    let server = install.serve();
    let client = reqwest::Client::new();
    let mut ids = HashSet::new();
    for n in 0..3 {
        ids.insert(post(&client, &server, &sign_up(n)).await);
    }
    let file = install.path("backup.db");
    ok(
        &install.run(&["backup", file.to_str().unwrap()]).await,
        "backup",
    );
    drop(server);
    assert_eq!(
        count(&file, "SELECT count(*) FROM outbox WHERE state = 'pending'"),
        3
    );

    // The machine is lost; a new one with working mail gets the backup.
    let smtp = SmtpServer::start(Behaviour::Scripted(VecDeque::new())).await;
    let elsewhere = Install::new(|settings| use_smtp(settings, smtp.port()));
    let printed = ok(
        &elsewhere.run(&["restore", file.to_str().unwrap()]).await,
        "restore",
    );
    assert!(printed.contains("submissions: accepted 3"), "{printed}");
    let server = elsewhere.serve();
    let mails = smtp.wait_for(3, Duration::from_secs(30)).await;
    let message_ids: HashSet<String> = mails
        .iter()
        .filter_map(|mail| {
            String::from_utf8_lossy(&mail.data)
                .lines()
                .find(|line| line.to_ascii_lowercase().starts_with("message-id:"))
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(message_ids.len(), 3, "each pending notification once");
    let mut server = server;
    server.stop("TERM", Duration::from_secs(30)).await;
    assert_eq!(ids_in(&elsewhere.database), ids);
    assert_eq!(
        count(
            &elsewhere.database,
            "SELECT count(*) FROM audit WHERE action = 'restore'"
        ),
        1
    );
}

#[tokio::test]
async fn erasures_made_after_a_backup_are_replayed_from_the_replaced_database_and_from_an_audit_file()
 {
    let install = Install::new(|_| {});
    let server = install.serve();
    let client = reqwest::Client::new();
    let erased = json!({"name": "Gone Aftermath", "email": "Gone.Aftermath@example.org", "country": "NO", "consent": true});
    post(&client, &server, &erased).await;
    post(&client, &server, &erased).await;
    let kept = post(&client, &server, &sign_up(1)).await;
    let file = install.path("backup.db");
    let printed = ok(
        &install.run(&["backup", file.to_str().unwrap()]).await,
        "backup",
    );
    let since = replay_since(&printed);

    // After the backup: the person asks to be erased (while the server runs).
    ok(
        &install.run(&["forget", "gone.aftermath@example.org"]).await,
        "forget",
    );
    let listed = ok(
        &install
            .run(&["audit", "--since", &since, "--action", "forget", "--json"])
            .await,
        "audit --since --json",
    );
    let lines: Vec<Value> = listed
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{listed}");
    assert_eq!(lines[0]["action"], "forget");
    assert!(lines[0]["details"]["address_hash"].is_string());
    assert!(!listed.to_lowercase().contains("gone.aftermath"));
    let audit_file = install.path("erasures.jsonl");
    std::fs::write(&audit_file, &listed).unwrap();
    let mut server = server;
    server.stop("TERM", Duration::from_secs(30)).await;

    // The disk is lost; the backup comes back, and with it the erased person.
    let printed = ok(
        &install
            .run(&["restore", file.to_str().unwrap(), "--replace"])
            .await,
        "restore --replace",
    );
    assert!(printed.contains("holds personal data"), "{printed}");
    assert_eq!(replay_since(&printed), since, "{printed}");
    let replaced = PathBuf::from(
        printed
            .split("--from ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap(),
    );
    assert!(replaced.exists());
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&replaced).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let gone = "SELECT count(*) FROM submissions WHERE email_key = 'gone.aftermath@example.org'";
    assert_eq!(count(&install.database, gone), 2, "back with the backup");

    // Replayed before the server starts, as restore says, with the command it printed.
    assert!(
        printed.contains("BEFORE starting the server")
            && printed.contains(&format!("--config {}", install.config.display())),
        "{printed}"
    );
    let replay = [
        "forget",
        "--replay",
        since.as_str(),
        "--from",
        replaced.to_str().unwrap(),
    ];
    let printed = ok(&install.run(&replay).await, "forget --replay");
    assert!(printed.contains("erased 2 submission(s)"), "{printed}");
    let printed = ok(&install.run(&replay).await, "forget --replay again");
    assert!(printed.contains("nothing here to erase"), "{printed}");
    assert_eq!(count(&install.database, gone), 0);
    assert!(ids_in(&install.database).contains(&kept));
    assert!(!contains(&file_bytes(&install.database), b"gone.aftermath"));
    assert_eq!(
        count(
            &install.database,
            "SELECT count(*) FROM audit WHERE action = 'forget'
             AND json_extract(details, '$.replay') = 1"
        ),
        1
    );

    // The same from the off-site audit file.
    ok(
        &install
            .run(&["restore", file.to_str().unwrap(), "--replace"])
            .await,
        "second restore",
    );
    assert_eq!(count(&install.database, gone), 2);
    let printed = ok(
        &install.replay(&since, audit_file.to_str().unwrap()).await,
        "forget --replay from the audit file",
    );
    assert!(printed.contains("erased 2 submission(s)"), "{printed}");
    assert_eq!(count(&install.database, gone), 0);
    assert!(ids_in(&install.database).contains(&kept));
}

#[tokio::test]
async fn a_backup_never_replaces_the_installations_own_files_nor_restores_from_them() {
    let install = Install::new(|_| {});
    let server = install.serve();
    let client = reqwest::Client::new();
    let first = post(&client, &server, &sign_up(0)).await;
    let folder = install.database.parent().unwrap().to_owned();
    let name = install.database.file_name().unwrap().to_str().unwrap();
    let link = install.path("link-to-database");
    std::os::unix::fs::symlink(&install.database, &link).unwrap();
    let spellings = [
        install.database.clone(),
        folder
            .join("..")
            .join(folder.file_name().unwrap())
            .join(name),
        link.clone(),
        folder.join(format!("{name}-wal")),
        folder.join(format!("{name}-shm")),
        folder.join("audit.key"),
        folder.join("secret.key"),
        folder.join(format!("{name}.replaced-x")),
    ];
    for path in &spellings {
        let output = install
            .run(&["backup", path.to_str().unwrap(), "--force"])
            .await;
        refused(
            &output,
            &format!("backup to {}", path.display()),
            "of this installation",
        );
    }
    refused(
        &install.run(&["backup", "-"]).await,
        "backup -",
        "standard output",
    );
    assert!(!Path::new("-").exists());
    // The server went on with its own files: a later sign-up stays.
    let second = post(&client, &server, &sign_up(1)).await;
    let mut server = server;
    server.stop("TERM", Duration::from_secs(30)).await;
    let ids = ids_in(&install.database);
    assert!(ids.contains(&first) && ids.contains(&second), "{ids:?}");

    for path in [&install.database, &link] {
        refused(
            &install
                .run(&["restore", path.to_str().unwrap(), "--replace"])
                .await,
            "restore from the database itself",
            "not a backup",
        );
    }
    assert_eq!(ids_in(&install.database), ids);
}

#[tokio::test]
async fn a_replay_never_makes_an_audit_key_and_refuses_another_one() {
    let install = Install::new(|_| {});
    let server = install.serve();
    let client = reqwest::Client::new();
    let erased = json!({"name": "Key Person", "email": "key.person@example.org", "country": "NO", "consent": true});
    post(&client, &server, &erased).await;
    let file = install.path("backup.db");
    let since = replay_since(&ok(
        &install.run(&["backup", file.to_str().unwrap()]).await,
        "backup",
    ));
    ok(
        &install.run(&["forget", "key.person@example.org"]).await,
        "forget",
    );
    let listed = ok(
        &install
            .run(&["audit", "--since", &since, "--action", "forget", "--json"])
            .await,
        "audit --json",
    );
    assert!(listed.contains("\"audit_key_check\""), "{listed}");
    let mut server = server;
    server.stop("TERM", Duration::from_secs(30)).await;
    let printed = ok(
        &install
            .run(&["restore", file.to_str().unwrap(), "--replace"])
            .await,
        "restore",
    );
    let replaced = printed
        .split("--from ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned();
    let folder = install.database.parent().unwrap();
    let audit_key = folder.join("audit.key");
    let kept = std::fs::read(&audit_key).unwrap();
    let gone = "SELECT count(*) FROM submissions WHERE email_key = 'key.person@example.org'";

    // No audit.key: refused, and none made.
    std::fs::remove_file(&audit_key).unwrap();
    let replay = [
        "forget",
        "--replay",
        since.as_str(),
        "--from",
        replaced.as_str(),
    ];
    refused(
        &install.run(&replay).await,
        "a replay without audit.key",
        "there is no",
    );
    assert!(!audit_key.exists(), "a replay made an audit key");
    // Another installation's key: refused by the recorded check value.
    std::fs::write(&audit_key, format!("{}\n", "ab".repeat(32))).unwrap();
    refused(
        &install.run(&replay).await,
        "a replay with another key",
        "recorded under another audit.key",
    );
    std::fs::write(&audit_key, &kept).unwrap();
    assert_eq!(
        count(&install.database, gone),
        1,
        "nothing erased by a refusal"
    );

    // A time in the future; a file that is neither a database nor an audit file.
    refused(
        &install.replay("2999-01-01", replaced.as_str()).await,
        "a future SINCE",
        "in the future",
    );
    let binary = install.path("backup.pgp");
    std::fs::write(&binary, [0x85u8, 0x01, 0xff, 0xfe, 0x00, 0x80]).unwrap();
    refused(
        &install
            .replay(since.as_str(), binary.to_str().unwrap())
            .await,
        "an encrypted file as SOURCE",
        "neither a joinform database",
    );
    let printed = ok(&install.run(&replay).await, "the replay with the right key");
    assert!(printed.contains("erased 1 submission(s)"), "{printed}");
    assert_eq!(count(&install.database, gone), 0);
    // Nothing since a time after the erasure.
    let later = joinform::domain::Timestamp::now().to_string();
    let printed = ok(
        &install.replay(&later, replaced.as_str()).await,
        "a replay with nothing since",
    );
    assert!(printed.contains("no erasure recorded since"), "{printed}");
}

#[tokio::test]
async fn the_temporary_files_of_an_interrupted_backup_or_restore_are_removed_by_the_next_one() {
    let install = Install::new(|_| {});
    let folder = install.database.parent().unwrap().to_owned();
    let name = install.database.file_name().unwrap().to_str().unwrap();
    // What a SIGKILL leaves: the pid is of no running process (above pid_max).
    let dead = "4194305";
    // A restore --decrypt-key killed before serve starts: serve removes it.
    std::fs::create_dir_all(&folder).unwrap();
    let before_serve = folder.join(format!(".{name}.joinform-partial-{dead}"));
    std::fs::write(&before_serve, "backup person0000@example.org").unwrap();
    let server = install.serve();
    let client = reqwest::Client::new();
    post(&client, &server, &sign_up(0)).await;
    let mut server = server;
    server.stop("TERM", Duration::from_secs(30)).await;
    assert!(!before_serve.exists(), "serve left a stale restore partial");
    let log = server.log();
    assert!(log.contains("interrupted backup or restore"), "{log}");
    assert!(!log.contains("person0000"), "{log}");

    // Partials of any name in the folder, yesterday's dated backup's too.
    let stale_backup = [
        install.path(&format!(".b.db.joinform-partial-{dead}")),
        install.path(&format!(".b.db.joinform-partial-{dead}-journal")),
        install.path(&format!(".b-2026-11-29.db.joinform-partial-{dead}")),
    ];
    let stale_restore = [
        folder.join(format!(".{name}.joinform-partial-{dead}")),
        // A restore killed while copying the old database aside.
        folder.join(format!(
            ".{name}.replaced-20261129T000000Z.joinform-partial-{dead}"
        )),
    ];
    // A running process's file (this test's) is another run under way; a user's own
    // files that only look alike are not joinform's: all left alone.
    let kept = [
        install.path(&format!(".b.db.joinform-partial-{}", std::process::id())),
        install.path(&format!(".b.db.partial-{dead}")),
        install.path(&format!("b.db.joinform-partial-{dead}")),
        install.path(&format!(".b.db.joinform-partial-{dead}.txt")),
    ];
    for path in stale_backup.iter().chain(&stale_restore).chain(&kept) {
        std::fs::write(path, "backup person0000@example.org").unwrap();
    }
    let file = install.path("b.db");
    let printed = ok(
        &install.run(&["backup", file.to_str().unwrap()]).await,
        "backup",
    );
    for path in &stale_backup {
        assert!(!path.exists(), "{} left", path.display());
        assert!(printed.contains(&path.display().to_string()), "{printed}");
    }
    assert!(printed.contains("interrupted backup"), "{printed}");
    for path in &kept {
        assert!(path.exists(), "{} removed", path.display());
    }
    let printed = ok(
        &install
            .run(&["restore", file.to_str().unwrap(), "--replace"])
            .await,
        "restore",
    );
    for path in &stale_restore {
        assert!(!path.exists(), "{} left", path.display());
    }
    assert!(printed.contains("interrupted restore"), "{printed}");
    let left: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("partial") || name.ends_with("-journal"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn restore_and_commands_say_what_went_wrong_in_their_own_words() {
    let install = Install::new(|_| {});
    let server = install.serve();
    let client = reqwest::Client::new();
    post(&client, &server, &sign_up(0)).await;
    let file = install.path("backup.pgp");
    ok(
        &install
            .run(&[
                "backup",
                file.to_str().unwrap(),
                "--encrypt-to",
                key_file("operator.asc").to_str().unwrap(),
            ])
            .await,
        "encrypted backup",
    );
    let clear = install.path("clear.db");
    ok(
        &install.run(&["backup", clear.to_str().unwrap()]).await,
        "clear backup",
    );
    drop(server);

    let elsewhere = Install::new(|_| {});
    let secret = key_file("operator.secret.asc");
    let restore = |file: &Path, key: &Path| {
        vec![
            "restore".to_owned(),
            file.to_str().unwrap().to_owned(),
            "--decrypt-key".to_owned(),
            key.to_str().unwrap().to_owned(),
        ]
    };
    let with_env = |mut args: Vec<String>| {
        args.extend([
            "--passphrase-env".to_owned(),
            "BACKUP_TEST_PASSPHRASE".to_owned(),
        ]);
        args
    };
    let run = |args: Vec<String>, passphrase: &'static str| {
        let elsewhere = &elsewhere;
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            elsewhere
                .run_with(&args, &[("BACKUP_TEST_PASSPHRASE", passphrase)])
                .await
        }
    };
    for (args, passphrase, what) in [
        (
            with_env(restore(&file, &secret)),
            "wrong",
            "a wrong passphrase",
        ),
        (
            with_env(restore(&file, &key_file("operator.asc"))),
            PASSPHRASE,
            "a public key",
        ),
    ] {
        let output = run(args, passphrase).await;
        refused(&output, what, "nothing was restored");
        assert!(!stderr(&output).contains("exported"), "{}", stderr(&output));
    }
    refused(
        &run(restore(&file, &secret), PASSPHRASE).await,
        "no passphrase option and no terminal",
        "no terminal",
    );
    let cut = install.path("cut.pgp");
    let bytes = file_bytes(&file);
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    refused(
        &run(with_env(restore(&cut, &secret)), PASSPHRASE).await,
        "a truncated encrypted backup",
        "truncated",
    );
    let newer = install.path("newer.db");
    std::fs::copy(&clear, &newer).unwrap();
    rusqlite::Connection::open(&newer)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let output = elsewhere.run(&["restore", newer.to_str().unwrap()]).await;
    refused(&output, "a newer schema", "newer.db has schema version 99");
    assert!(!stderr(&output).contains("partial"), "{}", stderr(&output));

    // A changed byte, an appended one: the key opens it, the integrity check fails.
    let changed = install.path("changed.pgp");
    let mut altered = bytes.clone();
    let middle = altered.len() / 2;
    altered[middle] ^= 0x01;
    std::fs::write(&changed, &altered).unwrap();
    let appended = install.path("appended.pgp");
    let mut longer = bytes.clone();
    longer.push(0);
    std::fs::write(&appended, &longer).unwrap();
    for (path, what) in [
        (&changed, "a changed byte"),
        (&appended, "an appended byte"),
    ] {
        let output = run(with_env(restore(path, &secret)), PASSPHRASE).await;
        refused(&output, what, "damaged or was altered");
        assert!(
            !stderr(&output).contains("passphrase"),
            "{}",
            stderr(&output)
        );
    }
    // A clear backup whose header is damaged past its magic string: the FILE is.
    let header = install.path("header.db");
    let mut damaged = file_bytes(&clear);
    damaged[16..18].copy_from_slice(&[0x00, 0x03]);
    std::fs::write(&header, &damaged).unwrap();
    let output = elsewhere.run(&["restore", header.to_str().unwrap()]).await;
    refused(
        &output,
        "a damaged header",
        "header.db is a SQLite file whose header is damaged",
    );
    assert!(
        !stderr(&output).contains("storage.database"),
        "{}",
        stderr(&output)
    );
    // A passphrase file descriptor with nothing in it.
    let mut args = restore(&file, &secret);
    args.extend(["--passphrase-fd".to_owned(), "0".to_owned()]);
    let output = crate::process::Joinform::new()
        .config(&elsewhere.config)
        .args(&args)
        .stdin(Some(""))
        .output_async()
        .await;
    refused(
        &output,
        "an empty --passphrase-fd",
        "nothing could be read from file descriptor 0",
    );
    assert!(!elsewhere.database.exists());
    // A backup to a folder that does not exist names FILE's folder, not a temporary.
    let nowhere = install.path("missing").join("b.db");
    let output = install.run(&["backup", nowhere.to_str().unwrap()]).await;
    refused(&output, "a backup to a missing folder", "does not exist");
    assert!(!stderr(&output).contains("partial"), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(&nowhere.display().to_string()),
        "{}",
        stderr(&output)
    );
}

#[tokio::test]
async fn restore_over_a_damaged_database_says_how_to_move_it_aside() {
    // A name the shell must not split or end early.
    let install = Install::new(|settings| {
        settings.storage.database = settings
            .storage
            .database
            .with_file_name("it's my join form.db");
    });
    let server = install.serve();
    let client = reqwest::Client::new();
    let id = post(&client, &server, &sign_up(0)).await;
    let file = install.path("backup.db");
    ok(
        &install.run(&["backup", file.to_str().unwrap()]).await,
        "backup",
    );
    let mut server = server;
    server.stop("TERM", Duration::from_secs(30)).await;
    // The disaster: the file's first pages overwritten.
    let mut bytes = file_bytes(&install.database);
    bytes[..4096].fill(0x5a);
    std::fs::write(&install.database, &bytes).unwrap();
    // Its companions may hold the newest commits: they must be listed and kept, not
    // deleted by a connection SQLite opened to the damaged file and closed again.
    let companions: Vec<(PathBuf, Vec<u8>)> = [("-wal", 4152), ("-shm", 32768)]
        .into_iter()
        .map(|(suffix, len)| {
            let mut path = install.database.as_os_str().to_owned();
            path.push(suffix);
            let content: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            std::fs::write(&path, &content).unwrap();
            (PathBuf::from(path), content)
        })
        .collect();
    let output = install
        .run(&["restore", file.to_str().unwrap(), "--replace"])
        .await;
    refused(
        &output,
        "a restore over a damaged database",
        "move it aside by hand",
    );
    assert_eq!(file_bytes(&install.database), bytes, "nothing was changed");
    for (path, content) in &companions {
        assert_eq!(
            &file_bytes(path),
            content,
            "{} kept as it was",
            path.display()
        );
    }
    // As the message says: a quoted `mv` per file that exists, each pasted into a
    // shell as it is.
    let message = stderr(&output);
    let moves: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with("mv "))
        .collect();
    // The database, its -wal and its -shm: a line each.
    assert_eq!(moves.len(), 3, "{message}");
    assert!(!message.contains("&&"), "{message}");
    for line in moves {
        let status = std::process::Command::new("sh")
            .args(["-c", line])
            .status()
            .unwrap();
        assert!(status.success(), "{line}");
    }
    // Each moved to NAME.damaged-<time>, whole.
    let folder = install.database.parent().unwrap();
    let name = install.database.file_name().unwrap().to_str().unwrap();
    let aside = |suffix: &str| {
        std::fs::read_dir(folder)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .find(|path| {
                let file = path.file_name().unwrap().to_str().unwrap();
                file.starts_with(&format!("{name}{suffix}.damaged-"))
            })
            .unwrap_or_else(|| panic!("no {name}{suffix}.damaged-<time>"))
    };
    assert_eq!(file_bytes(&aside("")), bytes);
    for ((path, content), suffix) in companions.iter().zip(["-wal", "-shm"]) {
        assert_eq!(&file_bytes(&aside(suffix)), content);
        assert!(!path.exists());
    }
    assert!(!install.database.exists());
    ok(
        &install.run(&["restore", file.to_str().unwrap()]).await,
        "restore after moving the damaged file aside",
    );
    assert!(ids_in(&install.database).contains(&id));
}

#[tokio::test]
async fn a_good_backup_is_completed_in_its_own_audit_trail_and_restores_into_an_owner_only_folder()
{
    let install = Install::new(|_| {});
    let server = install.serve();
    let client = reqwest::Client::new();
    post(&client, &server, &sign_up(0)).await;
    let file = install.path("backup.db");
    ok(
        &install.run(&["backup", file.to_str().unwrap()]).await,
        "backup",
    );
    drop(server);
    let bytes = file_bytes(&file);
    assert_eq!(&bytes[18..20], &[1, 1], "rollback-journal mode");
    assert_eq!(
        count(
            &file,
            "SELECT count(*) FROM audit WHERE action = 'backup' AND completed_at IS NOT NULL \
             AND row_count = 1"
        ),
        1
    );
    let elsewhere = Install::new(|_| {});
    let folder = elsewhere.database.parent().unwrap().to_owned();
    if folder.exists() {
        std::fs::remove_dir_all(&folder).unwrap();
    }
    ok(
        &elsewhere.run(&["restore", file.to_str().unwrap()]).await,
        "restore into a new folder",
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&folder).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    let listed = ok(&elsewhere.run(&["audit"]).await, "audit");
    let backup_line = listed
        .lines()
        .find(|line| line.contains("backup"))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(!backup_line.contains("INCOMPLETE"), "{listed}");
}

#[tokio::test]
async fn a_database_that_cannot_be_read_is_not_called_missing() {
    // A path through a regular file: not "no such file", and running as root (where
    // permissions do not stop a read) cannot hide it.
    let blocker = tempfile::tempdir().unwrap();
    let file = blocker.path().join("not-a-folder");
    std::fs::write(&file, "x").unwrap();
    let database = file.join("joinform.db");
    let install = Install::new(|settings| settings.storage.database = database.clone());
    let output = install.run(&["audit"]).await;
    refused(&output, "a database that cannot be read", "cannot read");
    assert!(
        !stderr(&output).contains("there is no database"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test]
async fn a_copy_taken_with_its_write_ahead_log_is_restored_with_the_commits_in_it() {
    let install = Install::new(|_| {});
    let mut server = install.serve();
    let client = reqwest::Client::new();
    post(&client, &server, &sign_up(0)).await;
    let base = install.path("base.db");
    ok(
        &install.run(&["backup", base.to_str().unwrap()]).await,
        "backup",
    );
    for n in 1..4 {
        post(&client, &server, &sign_up(n)).await;
    }
    let full = install.path("full.db");
    ok(
        &install.run(&["backup", full.to_str().unwrap()]).await,
        "backup",
    );
    server.stop("TERM", Duration::from_secs(30)).await;
    let expected = ids_in(&full);
    assert_eq!(expected.len(), 4);

    // A live file whose newest commits are in its WAL only, copied (as a file copy
    // or a snapshot would) while it is open: FILE and FILE-wal, no -shm.
    let live_dir = install.path("live");
    std::fs::create_dir(&live_dir).unwrap();
    let live = live_dir.join("joinform.db");
    std::fs::copy(&base, &live).unwrap();
    let copied_dir = install.path("copied");
    std::fs::create_dir(&copied_dir).unwrap();
    let copied = copied_dir.join("joinform.db");
    {
        let connection = rusqlite::Connection::open(&live).unwrap();
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .unwrap();
        connection
            .pragma_update(None, "wal_autocheckpoint", 0)
            .unwrap();
        connection
            .execute("ATTACH ?1 AS full", [full.to_str().unwrap()])
            .unwrap();
        connection
            .execute_batch(
                "INSERT INTO main.submissions SELECT * FROM full.submissions
                 WHERE id NOT IN (SELECT id FROM main.submissions);
                 DETACH full;",
            )
            .unwrap();
        // `cp` in a child process: reading the files in this one would drop the
        // connection's locks.
        let status = std::process::Command::new("cp")
            .arg(&live)
            .arg(live_dir.join("joinform.db-wal"))
            .arg(&copied_dir)
            .status()
            .unwrap();
        assert!(status.success());
    }
    let wal = copied_dir.join("joinform.db-wal");
    assert!(std::fs::metadata(&wal).unwrap().len() > 0);
    // The file alone holds only the first sign-up: the others are in the WAL.
    assert_eq!(
        ids_in_file_alone(&copied),
        ids_in(&base),
        "the test's copy should hold the newer rows in its WAL only"
    );

    ok(
        &install
            .run(&["restore", copied.to_str().unwrap(), "--replace"])
            .await,
        "restore of a copy with its WAL",
    );
    assert_eq!(ids_in(&install.database), expected);
    assert_eq!(integrity(&install.database), "ok");
    // The copy's WAL is read, not replayed into it or removed.
    assert!(std::fs::metadata(&wal).unwrap().len() > 0);
}

/// The sign-up ids in the database file at `path`, read without the `-wal` beside it.
fn ids_in_file_alone(path: &Path) -> HashSet<String> {
    let dir = tempfile::tempdir().unwrap();
    let alone = dir.path().join("alone.db");
    std::fs::copy(path, &alone).unwrap();
    ids_in(&alone)
}

/// The `--from` file restore printed in its `forget --replay` line.
fn replay_from(text: &str) -> PathBuf {
    PathBuf::from(
        text.split("--from ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no --from in: {text}")),
    )
}

#[tokio::test]
async fn a_discard_made_after_a_backup_is_replayed_through_the_binary() {
    let install = Install::new(|_| {});
    let server = install.serve();
    let client = reqwest::Client::new();
    // Caught by the honeypot: spam, which `review discard` erases.
    let mut bot = sign_up(7);
    bot["_gotcha"] = json!("x");
    let spam = post(&client, &server, &bot).await;
    let kept = post(&client, &server, &sign_up(1)).await;
    let file = install.path("backup.db");
    let printed = ok(
        &install.run(&["backup", file.to_str().unwrap()]).await,
        "backup",
    );
    let since = replay_since(&printed);
    ok(
        &install.run(&["review", "discard", &spam]).await,
        "review discard",
    );
    let mut server = server;
    server.stop("TERM", Duration::from_secs(30)).await;
    assert!(!ids_in(&install.database).contains(&spam));

    let printed = ok(
        &install
            .run(&["restore", file.to_str().unwrap(), "--replace"])
            .await,
        "restore --replace",
    );
    assert!(
        ids_in(&install.database).contains(&spam),
        "back with the backup"
    );
    let replaced = replay_from(&printed);
    let replay = [
        "forget",
        "--replay",
        since.as_str(),
        "--from",
        replaced.to_str().unwrap(),
    ];
    let printed = ok(&install.run(&replay).await, "forget --replay");
    assert!(
        printed.contains("discarded 1 held or spam sign-up(s) again"),
        "{printed}"
    );
    let ids = ids_in(&install.database);
    assert!(!ids.contains(&spam));
    assert!(ids.contains(&kept));
    let printed = ok(&install.run(&replay).await, "forget --replay again");
    assert!(printed.contains("nothing here to erase"), "{printed}");
}

#[tokio::test]
async fn a_sign_up_made_again_after_an_erasure_is_kept_by_the_replay() {
    let install = Install::new(|_| {});
    let server = install.serve();
    let client = reqwest::Client::new();
    let person = json!({"name": "Back Again", "email": "back.again@example.org", "country": "NO", "consent": true});
    post(&client, &server, &person).await;
    let first = install.path("first.db");
    let printed = ok(
        &install.run(&["backup", first.to_str().unwrap()]).await,
        "backup",
    );
    let since = replay_since(&printed);
    ok(
        &install.run(&["forget", "back.again@example.org"]).await,
        "forget",
    );
    // The person signs up again after being erased, and a later backup holds that.
    let again = post(&client, &server, &person).await;
    let second = install.path("second.db");
    ok(
        &install.run(&["backup", second.to_str().unwrap()]).await,
        "second backup",
    );
    let mut server = server;
    server.stop("TERM", Duration::from_secs(30)).await;

    let printed = ok(
        &install
            .run(&["restore", second.to_str().unwrap(), "--replace"])
            .await,
        "restore --replace",
    );
    // The older SINCE reaches back past the erasure: the replay reads it, and must
    // leave the sign-up made after it.
    let replaced = replay_from(&printed);
    let replay = [
        "forget",
        "--replay",
        since.as_str(),
        "--from",
        replaced.to_str().unwrap(),
    ];
    let printed = ok(&install.run(&replay).await, "forget --replay");
    assert!(printed.contains("read 1 erasure entry"), "{printed}");
    assert!(printed.contains("nothing here to erase"), "{printed}");
    assert_eq!(ids_in(&install.database), HashSet::from([again]));
}

/// The `audit --json` lines of `listed` that are `forget` entries, each as a value.
fn forget_lines(listed: &str) -> Vec<Value> {
    listed
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|entry| entry["action"] == "forget")
        .collect()
}

fn write_lines(path: &Path, entries: &[Value]) {
    let text: String = entries.iter().map(|entry| format!("{entry}\n")).collect();
    std::fs::write(path, text).unwrap();
}

#[tokio::test]
async fn a_replay_judges_each_erasure_by_its_own_audit_key_and_never_skips_one_silently() {
    let install = Install::new(|_| {});
    let server = install.serve();
    let client = reqwest::Client::new();
    for n in [1, 2] {
        post(&client, &server, &sign_up(n)).await;
    }
    let mut server = server;
    let file = install.path("backup.db");
    let since = replay_since(&ok(
        &install.run(&["backup", file.to_str().unwrap()]).await,
        "backup",
    ));
    server.stop("TERM", Duration::from_secs(30)).await;
    let audit_key = install.database.parent().unwrap().join("audit.key");
    let first_key = std::fs::read(&audit_key).unwrap();
    // The first erasure under the kept key; the second after that key was lost and a
    // new one made; then the kept one put back.
    ok(
        &install
            .run(&["forget", "backup.person0001@example.org"])
            .await,
        "forget under the first key",
    );
    std::fs::write(&audit_key, format!("{}\n", "cd".repeat(32))).unwrap();
    ok(
        &install
            .run(&["forget", "backup.person0002@example.org"])
            .await,
        "forget under a second key",
    );
    std::fs::write(&audit_key, &first_key).unwrap();
    let listed = ok(
        &install.run(&["audit", "--since", &since, "--json"]).await,
        "audit --json",
    );
    let forgets = forget_lines(&listed);
    assert_eq!(forgets.len(), 2, "{listed}");
    let second_id = forgets[1]["id"].to_string();
    let printed = ok(
        &install
            .run(&["restore", file.to_str().unwrap(), "--replace"])
            .await,
        "restore",
    );
    let replaced = replay_from(&printed);
    let person = |n: usize| {
        format!(
            "SELECT count(*) FROM submissions WHERE email_key = 'backup.person{n:04}@example.org'"
        )
    };

    // Both keys in the source: refused whole, naming the entry made under the other.
    let output = install.replay(&since, replaced.to_str().unwrap()).await;
    refused(&output, "a replay of two keys' erasures", "1 erasure(s)");
    let message = stderr(&output);
    assert!(message.contains("another audit.key"), "{message}");
    assert!(
        message.contains(&format!("id {second_id} at ")),
        "{message}"
    );
    assert!(message.contains("joinform forget ADDRESS"), "{message}");
    for n in [1, 2] {
        assert_eq!(count(&install.database, &person(n)), 1, "nothing erased");
    }

    // The first key's entries alone, from an audit file: replayed.
    let own = install.path("first-key.json");
    write_lines(&own, &forgets[..1]);
    let printed = ok(
        &install.replay(&since, own.to_str().unwrap()).await,
        "a replay of this key's entries",
    );
    assert!(printed.contains("erased 1 submission(s)"), "{printed}");
    assert!(!printed.contains("WARNING"), "{printed}");
    assert_eq!(count(&install.database, &person(1)), 0);

    // An entry that records no key (an older version) is replayed, and one that
    // matches nobody is warned about loudly, even beside a `backup` entry carrying
    // this key's check value: that value says nothing about the erasure's.
    let mut old = forgets[1].clone();
    old["details"]
        .as_object_mut()
        .unwrap()
        .remove("audit_key_check");
    let backup_entry = listed
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .find(|entry| entry["action"] == "backup")
        .unwrap();
    assert!(backup_entry["details"]["audit_key_check"].is_string());
    let older = install.path("older.json");
    write_lines(&older, &[backup_entry, old]);
    let printed = ok(
        &install.replay(&since, older.to_str().unwrap()).await,
        "a replay of an entry that records no key",
    );
    assert!(
        printed.contains("WARNING: 1 of the 1 erased address(es)"),
        "{printed}"
    );
    assert_eq!(count(&install.database, &person(2)), 1);
}

#[tokio::test]
async fn restore_over_a_database_path_that_is_a_symbolic_link_replaces_the_real_file() {
    let install = Install::new(|_| {});
    let server = install.serve();
    let client = reqwest::Client::new();
    let kept = post(&client, &server, &sign_up(0)).await;
    let file = install.path("backup.db");
    ok(
        &install.run(&["backup", file.to_str().unwrap()]).await,
        "backup",
    );
    let later = post(&client, &server, &sign_up(1)).await;
    let mut server = server;
    server.stop("TERM", Duration::from_secs(30)).await;
    // The database moved to another disk, the configured path a link to it.
    let real_folder = install.path("real");
    std::fs::create_dir(&real_folder).unwrap();
    let real = real_folder.join("joinform.db");
    std::fs::rename(&install.database, &real).unwrap();
    std::os::unix::fs::symlink(&real, &install.database).unwrap();

    let printed = ok(
        &install
            .run(&["restore", file.to_str().unwrap(), "--replace"])
            .await,
        "restore through a link",
    );
    let link = std::fs::symlink_metadata(&install.database).unwrap();
    assert!(link.file_type().is_symlink(), "the link was replaced");
    let real = std::fs::canonicalize(&real).unwrap();
    assert!(
        printed.contains(&format!("to {}", real.display())),
        "{printed}"
    );
    assert_eq!(ids_in(&real), HashSet::from([kept.clone()]));
    let replaced = replay_from(&printed);
    assert_eq!(
        replaced.parent().unwrap(),
        real.parent().unwrap(),
        "{printed}"
    );
    assert_eq!(ids_in(&replaced), HashSet::from([kept, later]));
    // A restore killed there leaves its copy beside the real file: serve, started
    // on the link, removes it too (pid 4194305 is above pid_max: no process).
    let stale = real.with_file_name(".joinform.db.joinform-partial-4194305");
    std::fs::write(&stale, "a copy of everyone").unwrap();
    let mut server = install.serve();
    server.stop("TERM", Duration::from_secs(30)).await;
    assert!(!stale.exists(), "serve left a partial beside the real file");
}

#[tokio::test]
async fn backup_force_overwrites_only_an_earlier_backup() {
    let install = Install::new(|_| {});
    let mut server = install.serve();
    server.stop("TERM", Duration::from_secs(30)).await;
    let clear = install.path("clear.db");
    let encrypted = install.path("encrypted.pgp");
    let operator = key_file("operator.asc");
    ok(
        &install.run(&["backup", clear.to_str().unwrap()]).await,
        "backup",
    );
    ok(
        &install
            .run(&[
                "backup",
                encrypted.to_str().unwrap(),
                "--encrypt-to",
                operator.to_str().unwrap(),
            ])
            .await,
        "encrypted backup",
    );
    // Each backup over itself, clear over encrypted and back: all backups.
    for (file, extra) in [
        (&clear, None),
        (&encrypted, Some(&operator)),
        (&encrypted, None),
        (&clear, Some(&operator)),
    ] {
        let mut args = vec!["backup", file.to_str().unwrap(), "--force"];
        if let Some(key) = extra {
            args.extend(["--encrypt-to", key.to_str().unwrap()]);
        }
        ok(&install.run(&args).await, "backup --force over a backup");
    }
    // The configuration, a mail, a public key, an empty file, a folder: refused even
    // with --force, and left as they were.
    let mail = install.path("message.eml");
    std::fs::write(&mail, "From: a@example.org\r\n\r\nhello\r\n").unwrap();
    let public_key = install.path("operator.asc");
    std::fs::copy(&operator, &public_key).unwrap();
    let empty = install.path("empty");
    std::fs::write(&empty, b"").unwrap();
    let folder = install.path("folder");
    std::fs::create_dir(&folder).unwrap();
    for path in [&install.config, &mail, &public_key, &empty, &folder] {
        let bytes = std::fs::read(path).ok();
        refused(
            &install
                .run(&["backup", path.to_str().unwrap(), "--force"])
                .await,
            &format!("backup --force over {}", path.display()),
            "is not a backup",
        );
        assert_eq!(std::fs::read(path).ok(), bytes, "{}", path.display());
    }
}
