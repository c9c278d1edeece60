//! The server processes: the bare servers (this binary again) and the release joinform,
//! each on 127.0.0.1, killed when dropped.

use std::io::{BufRead, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::procfs::Memory;
use crate::{BARE_SERVER_ARG, Options, bare};

/// How long a server may take to answer GET /healthz after it is started.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// A child server process, killed (and reaped) when dropped, on every path out.
pub(crate) struct Server {
    pub(crate) name: &'static str,
    pub(crate) port: u16,
    child: Child,
    /// Where its standard error goes, to show when it fails to start.
    log: Option<PathBuf>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn spawn(
        name: &'static str,
        command: &mut Command,
        port: u16,
        log: Option<PathBuf>,
    ) -> anyhow::Result<Self> {
        let child = command
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let mut server = Self {
            name,
            port,
            child,
            log,
        };
        server.wait_until_healthy()?;
        Ok(server)
    }

    /// Polls GET /healthz until it answers 200; fails early if the process exits.
    fn wait_until_healthy(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited during start-up ({status}){}",
                    self.name,
                    self.log_tail()
                );
            }
            if matches!(get_status(self.port, "/healthz"), Ok(200)) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} did not answer GET /healthz with 200 within {} s{}",
                    self.name,
                    STARTUP_TIMEOUT.as_secs(),
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The last lines of the server's log, for an error message.
    fn log_tail(&self) -> String {
        let Some(text) = self
            .log
            .as_ref()
            .and_then(|path| std::fs::read_to_string(path).ok())
        else {
            return String::new();
        };
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n  ");
        format!("; its log ends:\n  {tail}")
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn memory(&self) -> anyhow::Result<Memory> {
        Memory::of(self.pid())
    }
}

/// A bare server, in `dir` like joinform so that the parse mode finds no config file
/// either and uses the same built-in form settings.
pub(crate) fn start_bare_server(dir: &Path, mode: bare::Mode) -> anyhow::Result<Server> {
    let port = free_port()?;
    let exe = std::env::current_exe().context("finding this benchmark's own binary")?;
    let mut command = Command::new(exe);
    command
        .args([BARE_SERVER_ARG, &port.to_string(), mode.arg()])
        .current_dir(dir)
        // The bare server exits when this pipe closes, even if this process is killed.
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    Server::spawn(mode.server_name(), &mut command, port, None)
}

/// The release joinform, in an empty folder (so it finds no config file and uses its
/// built-in defaults), with a fresh database. Other `JOINFORM_*` variables are passed
/// on, to try a setting (they are listed in the report); `settings` are added on top,
/// e.g. `[("JOINFORM_RATE_LIMIT__PER_IP_PER_MINUTE", "1")]` for a server that answers
/// 429 (start such a one on its own database file, and load it with
/// [`Target::JOIN_LIMITED`]).
pub(crate) fn start_joinform(
    dir: &Path,
    database: &Path,
    options: &Options,
    settings: &[(&str, &str)],
) -> anyhow::Result<Server> {
    start_joinform_with(dir, database, options, settings, None)
}

/// [`start_joinform`], reading `config` (`--config FILE`) when given instead of the
/// built-in defaults; the environment's settings still win over the file's.
pub(crate) fn start_joinform_with(
    dir: &Path,
    database: &Path,
    options: &Options,
    settings: &[(&str, &str)],
    config: Option<&Path>,
) -> anyhow::Result<Server> {
    let port = free_port()?;
    let log = database.with_extension("log");
    let log_file = std::fs::File::create(&log).context("creating joinform's log file")?;
    let mut command = Command::new(env!("CARGO_BIN_EXE_joinform"));
    command.arg("serve");
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    command
        .current_dir(dir)
        .env("JOINFORM_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("JOINFORM_STORAGE__DATABASE", database)
        .env_remove("RUST_LOG");
    if let Some(filter) = &options.rust_log {
        command.env("RUST_LOG", filter);
    }
    command.envs(settings.iter().copied());
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file);
    Server::spawn("joinform", &mut command, port, Some(log))
}

/// A port that was free a moment ago: bound, read, released.
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// One GET over a fresh connection; the response's status code.
fn get_status(port: u16, path: &str) -> std::io::Result<u16> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut status_line = String::new();
    std::io::BufReader::new(stream).read_line(&mut status_line)?;
    status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {status_line:?}")))
}

pub(crate) fn count_rows(database: &Path) -> anyhow::Result<u64> {
    let connection = rusqlite::Connection::open(database)
        .with_context(|| format!("opening {}", database.display()))?;
    let count: i64 = connection
        .query_row("SELECT count(*) FROM submissions", [], |row| row.get(0))
        .context("counting submissions")?;
    Ok(u64::try_from(count)?)
}
