//! Load benchmark: `cargo bench --bench load`.
//!
//! Servers, each its own process on 127.0.0.1:
//! - two bare actix-web servers (this binary, re-run with `--bare-server PORT MODE`)
//!   whose POST /join answers 201 with a small JSON body and stores nothing:
//!   - `parse` reads the body with joinform's own decoder and runs joinform's
//!     `NewSubmission::parse` on it: the issue's "endpoint that only parses the same
//!     form", and the yardstick of the target;
//!   - `pairs` only decodes the body into name/value pairs with `web::Form`: what
//!     actix-web alone does on this machine, kept so that figures stay comparable with
//!     earlier runs;
//! - a third bare server, `store`, that parses like `parse` and then commits each
//!   submission through joinform's own single writer (group commit, `synchronous=FULL`,
//!   outbox row included) before answering 201, with no spam check, log line, metrics or
//!   mail: the ceiling of any design built on that writer on this machine;
//! - the release `joinform`, in an empty folder (built-in defaults) on a fresh database,
//!   and a second one whose rate limit the client is over (every answer a 429).
//!
//! LOAD_CONNECTIONS (64) keep-alive connections each post unique valid submissions, one
//! after another. Each server is warmed up for LOAD_WARMUP_SECONDS (2), not recorded;
//! then LOAD_SECONDS (10) per server are recorded in LOAD_ROUNDS (5) short rounds that
//! alternate between them (pairs, parse, joinform, then joinform, parse, pairs, ...),
//! so that a slow spell of a shared machine hits all alike and the ratio stays
//! meaningful. The servers not being loaded sit idle.
//!
//! The report: each server's requests per second and latency percentiles, the ratio
//! joinform / bare (overall and by round, against both bare servers), CPU use (server,
//! client, hypervisor steal),
//! joinform's CPU by thread and memory, and whether the database holds exactly the
//! submissions answered 201; then PASS/FAIL against the targets.
//!
//! Other settings: LOAD_CLIENT_THREADS (1: one thread drives every connection, which
//! leaves the most CPU to the servers), LOAD_RUST_LOG (joinform's RUST_LOG; unset: its
//! default, `info`), LOAD_DIR (where the temporary database folder is made; default:
//! the system's temporary folder). `JOINFORM_*` variables are passed on to joinform.
//!
//! Exit status: 0 when the run completed, whether or not the targets were met; 1 when
//! the run itself broke (a server did not start, a connection task panicked, or the
//! database does not hold exactly the submissions answered 201).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// joinform's accepted submissions per second, as a share of the bare parse endpoint's.
const TARGET_RATIO: f64 = 0.45;
/// A client over its rate limit, answered 429, as a share of the bare parse endpoint.
const TARGET_FLOOD_RATIO: f64 = 0.70;

/// The accept path with every check on: limits raised to their maximum, since the
/// whole load comes from one address with unique email addresses. The admin listener
/// gets a free port so that two joinforms can run side by side.
const ACCEPT_SETTINGS: &[(&str, &str)] = &[
    ("JOINFORM_RATE_LIMIT__PER_IP_PER_MINUTE", "1000000"),
    ("JOINFORM_RATE_LIMIT__PER_IP_BURST", "1000000"),
    ("JOINFORM_RATE_LIMIT__GLOBAL_PER_SECOND", "1000000"),
    ("JOINFORM_RATE_LIMIT__PER_EMAIL_PER_DAY", "1000000"),
    ("JOINFORM_ADMIN__LISTEN", "127.0.0.1:0"),
];

/// One post a minute: the benchmark's client is over it at once.
const LIMITED_SETTINGS: &[(&str, &str)] = &[
    ("JOINFORM_RATE_LIMIT__PER_IP_PER_MINUTE", "1"),
    ("JOINFORM_RATE_LIMIT__PER_IP_BURST", "1"),
    ("JOINFORM_ADMIN__LISTEN", "127.0.0.1:0"),
];
/// joinform's 99th percentile latency, in milliseconds.
const TARGET_P99_MS: f64 = 5.0;
/// joinform's peak resident memory, in MB (MiB).
const TARGET_RSS_MB: f64 = 50.0;

/// How long a server may take to answer GET /healthz after it is started.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// The argument that turns this binary into the bare server.
const BARE_SERVER_ARG: &str = "--bare-server";
/// Linux reports CPU time in /proc in units of USER_HZ, which is 100 on every
/// mainstream architecture.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|arg| arg == BARE_SERVER_ARG) {
        let port = args.get(at + 1).map(|port| port.parse::<u16>());
        let mode = args.get(at + 2).and_then(|mode| bare::Mode::from_arg(mode));
        return match (port, mode) {
            (Some(Ok(port)), Some(mode)) => bare::serve(port, mode),
            _ => {
                eprintln!(
                    "load: {BARE_SERVER_ARG} needs a port and a mode (pairs, parse or store)"
                );
                ExitCode::FAILURE
            }
        };
    }
    // `cargo bench` passes `--bench` (and maybe a filter); there is nothing to filter.
    let options = Options::from_env();
    match run(&options) {
        Ok(outcome) => {
            outcome.print(&options);
            if outcome.durable() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("load: the run broke: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Settings of one run, from LOAD_* environment variables.
struct Options {
    warmup: Duration,
    /// Recorded time per server, split into `rounds` alternating bursts.
    measured: Duration,
    rounds: u32,
    connections: usize,
    client_threads: usize,
    rust_log: Option<String>,
    dir: Option<PathBuf>,
    /// `JOINFORM_*` settings in the environment, passed on to joinform.
    joinform_env: Vec<String>,
}

impl Options {
    fn from_env() -> Self {
        Self {
            warmup: Duration::from_secs_f64(env_number("LOAD_WARMUP_SECONDS", 2.0)),
            measured: Duration::from_secs_f64(env_number("LOAD_SECONDS", 10.0).max(0.1)),
            rounds: env_number("LOAD_ROUNDS", 5.0).clamp(1.0, 100.0) as u32,
            connections: env_number("LOAD_CONNECTIONS", 64.0).max(1.0) as usize,
            client_threads: env_number("LOAD_CLIENT_THREADS", 1.0).max(1.0) as usize,
            rust_log: std::env::var("LOAD_RUST_LOG").ok(),
            dir: std::env::var_os("LOAD_DIR").map(PathBuf::from),
            joinform_env: std::env::vars()
                .filter(|(name, _)| {
                    name.starts_with("JOINFORM_")
                        && !matches!(
                            name.as_str(),
                            "JOINFORM_SERVER__LISTEN" | "JOINFORM_STORAGE__DATABASE"
                        )
                })
                .map(|(name, value)| format!("{name}={value}"))
                .collect(),
        }
    }

    fn round(&self) -> Duration {
        self.measured / self.rounds
    }

    fn runtime(&self) -> std::io::Result<tokio::runtime::Runtime> {
        if self.client_threads == 1 {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        } else {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(self.client_threads)
                .enable_all()
                .build()
        }
    }
}

/// A non-negative number from the environment, or `default` (with a warning when the
/// variable is set but not a number).
fn env_number(name: &str, default: f64) -> f64 {
    match std::env::var(name) {
        Err(_) => default,
        Ok(text) => match text.trim().parse::<f64>() {
            Ok(value) if value.is_finite() && value >= 0.0 => value,
            _ => {
                eprintln!("load: ignoring {name}={text:?}: not a number");
                default
            }
        },
    }
}

/// Everything one run found.
struct Outcome {
    /// The bare server that only decodes name/value pairs.
    pairs: LoadReport,
    /// The bare server that decodes and parses like joinform: the yardstick.
    parse: LoadReport,
    real: LoadReport,
    /// The bare server that parses and commits through joinform's writer: the ceiling.
    store: LoadReport,
    /// Rows the `store` server committed, counted after it was killed.
    store_rows: u64,
    /// A second joinform whose rate limit the client is over: every answer a 429.
    limited: LoadReport,
    /// joinform / bare parse requests per second, in each round.
    round_ratios: Vec<f64>,
    /// joinform / bare pairs requests per second, in each round.
    round_ratios_pairs: Vec<f64>,
    memory: Memory,
    /// Rows in `submissions` after joinform was stopped.
    stored: u64,
}

/// Starts the servers, warms each up, then loads them in turn, in short rounds
/// (pairs, parse, joinform, then joinform, parse, pairs, ...; then parse + store and
/// the 429 flood), so that a slow spell of a shared machine hits all alike. The servers
/// not being loaded sit idle.
fn run(options: &Options) -> anyhow::Result<Outcome> {
    let runtime = options.runtime().context("building the client's runtime")?;
    let client = Client {
        runtime: &runtime,
        connections: options.connections,
        counter: Arc::new(AtomicU64::new(0)),
    };
    let dir = match &options.dir {
        Some(parent) => tempfile::tempdir_in(parent),
        None => tempfile::tempdir(),
    }
    .context("creating a temporary folder")?;
    let database = dir.path().join("joinform.db");

    let pairs_server = start_bare_server(dir.path(), bare::Mode::Pairs)?;
    let parse_server = start_bare_server(dir.path(), bare::Mode::Parse)?;
    let store_server = start_bare_server(dir.path(), bare::Mode::Store)?;
    // Every check on; the limits raised, since all the load comes from one address.
    let joinform = start_joinform(dir.path(), &database, options, ACCEPT_SETTINGS)?;
    let limited_server = start_joinform(
        dir.path(),
        &dir.path().join("limited.db"),
        options,
        LIMITED_SETTINGS,
    )?;
    let created = Target::JOIN_CREATED;
    let warm_up = |server| client.load(server, created, options.warmup, Duration::ZERO);
    let mut pairs = warm_up(&pairs_server)?;
    let mut parse = warm_up(&parse_server)?;
    let mut real = warm_up(&joinform)?;
    let mut store = warm_up(&store_server)?;
    let mut limited = client.load(
        &limited_server,
        Target::JOIN_LIMITED,
        options.warmup,
        Duration::ZERO,
    )?;
    let mut round_ratios = Vec::new();
    let mut round_ratios_pairs = Vec::new();
    let measure = |server| client.load(server, created, Duration::ZERO, options.round());
    for round in 0..options.rounds {
        let (p, b, r) = if round % 2 == 0 {
            let p = measure(&pairs_server)?;
            let b = measure(&parse_server)?;
            (p, b, measure(&joinform)?)
        } else {
            let r = measure(&joinform)?;
            let b = measure(&parse_server)?;
            (measure(&pairs_server)?, b, r)
        };
        let s = measure(&store_server)?;
        let l = client.load(
            &limited_server,
            Target::JOIN_LIMITED,
            Duration::ZERO,
            options.round(),
        )?;
        round_ratios.push(r.per_second() / b.per_second());
        round_ratios_pairs.push(r.per_second() / p.per_second());
        limited.merge(&l);
        pairs.merge(&p);
        parse.merge(&b);
        real.merge(&r);
        store.merge(&s);
    }
    let memory = joinform.memory().context("reading joinform's memory")?;
    // Killed, not stopped: a 201 must mean the row is on disk, whatever happens next.
    drop(joinform);
    drop(limited_server);
    drop(pairs_server);
    drop(parse_server);
    drop(store_server);
    let stored = count_rows(&database)?;
    let store_rows = count_rows(&dir.path().join(bare::STORE_DATABASE))?;
    Ok(Outcome {
        pairs,
        parse,
        real,
        store,
        store_rows,
        limited,
        round_ratios,
        round_ratios_pairs,
        memory,
        stored,
    })
}

// ---------------------------------------------------------------------------------------
// Servers

/// A child server process, killed (and reaped) when dropped, on every path out.
struct Server {
    name: &'static str,
    port: u16,
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

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn memory(&self) -> anyhow::Result<Memory> {
        Memory::of(self.pid())
    }
}

/// A bare server, in `dir` like joinform so that the parse mode finds no config file
/// either and uses the same built-in form settings.
fn start_bare_server(dir: &Path, mode: bare::Mode) -> anyhow::Result<Server> {
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
fn start_joinform(
    dir: &Path,
    database: &Path,
    options: &Options,
    settings: &[(&str, &str)],
) -> anyhow::Result<Server> {
    let port = free_port()?;
    let log = database.with_extension("log");
    let log_file = std::fs::File::create(&log).context("creating joinform's log file")?;
    let mut command = Command::new(env!("CARGO_BIN_EXE_joinform"));
    command
        .arg("serve")
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

fn count_rows(database: &Path) -> anyhow::Result<u64> {
    let connection = rusqlite::Connection::open(database)
        .with_context(|| format!("opening {}", database.display()))?;
    let count: i64 = connection
        .query_row("SELECT count(*) FROM submissions", [], |row| row.get(0))
        .context("counting submissions")?;
    Ok(u64::try_from(count)?)
}

// ---------------------------------------------------------------------------------------
// /proc

/// Resident memory of a process, in KiB.
struct Memory {
    peak_kib: u64,
    current_kib: u64,
}

impl Memory {
    fn of(pid: u32) -> anyhow::Result<Self> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let field = |name: &str| -> anyhow::Result<u64> {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kib| kib.parse().ok())
                .with_context(|| format!("no {name} in /proc/{pid}/status"))
        };
        Ok(Self {
            peak_kib: field("VmHWM:")?,
            current_kib: field("VmRSS:")?,
        })
    }

    fn peak_mb(&self) -> f64 {
        self.peak_kib as f64 / 1024.0
    }

    fn current_mb(&self) -> f64 {
        self.current_kib as f64 / 1024.0
    }
}

/// CPU time used so far by each thread of a process: (thread id, name) → ticks.
type ThreadTimes = BTreeMap<(u32, String), u64>;

fn thread_times(pid: u32) -> ThreadTimes {
    let mut times = ThreadTimes::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return times;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        if let Some((tid, name, ticks)) = parse_stat(&stat) {
            times.insert((tid, name), ticks);
        }
    }
    times
}

/// Thread id, name and user+system ticks from a /proc/.../stat line. The name is in
/// parentheses and may itself hold spaces and parentheses.
fn parse_stat(stat: &str) -> Option<(u32, String, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let tid = stat[..open].trim().parse().ok()?;
    let name = stat[open + 1..close].to_owned();
    // After the name: state is field 3, utime field 14 and stime field 15.
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((tid, name, utime + stime))
}

/// CPU ticks per thread name between two samples, with the number of threads of that
/// name (the HTTP workers share one).
type CpuByName = BTreeMap<String, (usize, u64)>;

fn cpu_by_thread_name(before: &ThreadTimes, after: &ThreadTimes) -> CpuByName {
    let mut by_name = CpuByName::new();
    for ((tid, name), ticks) in after {
        let start = before.get(&(*tid, name.clone())).copied().unwrap_or(0);
        let entry = by_name.entry(name.clone()).or_default();
        entry.0 += 1;
        entry.1 += ticks.saturating_sub(start);
    }
    by_name
}

fn total_ticks(times: &ThreadTimes) -> u64 {
    times.values().sum()
}

/// All cores together, in ticks, from the first line of /proc/stat.
#[derive(Default)]
struct MachineCpu {
    /// Ticks spent running anything (user, system, interrupts).
    busy: u64,
    /// Ticks the hypervisor gave to someone else.
    steal: u64,
    /// Ticks idle or waiting for I/O.
    idle: u64,
}

impl MachineCpu {
    fn now() -> Self {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let ticks: Vec<u64> = stat
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .map(|field| field.parse().unwrap_or(0))
            .collect();
        let at = |index: usize| ticks.get(index).copied().unwrap_or(0);
        // user nice system idle iowait irq softirq steal (guest time is inside user).
        Self {
            busy: at(0) + at(1) + at(2) + at(5) + at(6),
            idle: at(3) + at(4),
            steal: at(7),
        }
    }

    fn add(&mut self, other: &Self) {
        self.busy += other.busy;
        self.steal += other.steal;
        self.idle += other.idle;
    }

    fn since(&self, before: &Self) -> Self {
        Self {
            busy: self.busy.saturating_sub(before.busy),
            steal: self.steal.saturating_sub(before.steal),
            idle: self.idle.saturating_sub(before.idle),
        }
    }

    /// Share of the machine's CPU time that was busy, stolen, idle.
    fn shares(&self) -> (f64, f64, f64) {
        let total = (self.busy + self.steal + self.idle).max(1) as f64;
        (
            self.busy as f64 / total,
            self.steal as f64 / total,
            self.idle as f64 / total,
        )
    }
}

// ---------------------------------------------------------------------------------------
// Load

/// What one server answered.
struct LoadReport {
    /// Seconds recorded (warm-up excluded).
    seconds: f64,
    /// Latency of expected answers (201) to requests sent in the recorded time, in
    /// microseconds.
    histogram: Histogram<u64>,
    /// Expected answers (201) to requests sent in the recorded time.
    created: u64,
    /// Expected answers in warm-up and recorded time together.
    created_total: u64,
    /// Everything that was not the expected answer, by kind ("status 503", "io: ...").
    errors: BTreeMap<String, u64>,
    /// CPU ticks in the recorded time: the server's, by thread name.
    server_cpu: CpuByName,
    /// CPU ticks in the recorded time: the server's, all threads.
    server_ticks: u64,
    /// CPU ticks in the recorded time: this load client's.
    client_ticks: u64,
    /// The whole machine in the recorded time, from /proc/stat.
    machine: MachineCpu,
}

impl LoadReport {
    fn new(seconds: f64) -> Self {
        Self {
            seconds,
            histogram: Histogram::new_with_bounds(1, 60_000_000, 3)
                .unwrap_or_else(|_| unreachable!("constant, valid bounds")),
            created: 0,
            created_total: 0,
            errors: BTreeMap::new(),
            server_cpu: CpuByName::new(),
            server_ticks: 0,
            client_ticks: 0,
            machine: MachineCpu::default(),
        }
    }

    fn merge(&mut self, other: &Self) {
        self.seconds += other.seconds;
        self.histogram
            .add(&other.histogram)
            .unwrap_or_else(|_| unreachable!("histograms with the same bounds always add up"));
        self.created += other.created;
        self.created_total += other.created_total;
        for (kind, count) in &other.errors {
            *self.errors.entry(kind.clone()).or_default() += count;
        }
        for (name, (threads, ticks)) in &other.server_cpu {
            let entry = self.server_cpu.entry(name.clone()).or_default();
            entry.0 = entry.0.max(*threads);
            entry.1 += ticks;
        }
        self.server_ticks += other.server_ticks;
        self.client_ticks += other.client_ticks;
        self.machine.add(&other.machine);
    }

    /// Average cores busy over the recorded time, for a number of ticks.
    fn cores(&self, ticks: u64) -> f64 {
        ticks as f64 / CLOCK_TICKS_PER_SECOND / self.seconds
    }

    fn error(&mut self, kind: impl Into<String>) {
        *self.errors.entry(kind.into()).or_default() += 1;
    }

    fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    fn per_second(&self) -> f64 {
        self.created as f64 / self.seconds
    }

    /// Latency at quantile `q`, in milliseconds.
    fn ms(&self, q: f64) -> f64 {
        self.histogram.value_at_quantile(q) as f64 / 1000.0
    }
}

/// What the connections post, and which answer counts as the expected one. Any other
/// answer is an error. The LoadReport's `created` figures count expected answers.
#[derive(Clone, Copy)]
struct Target {
    path: &'static str,
    expected_status: u16,
}

impl Target {
    /// Valid submissions, each answered 201 once it is committed.
    const JOIN_CREATED: Self = Self {
        path: "/join",
        expected_status: 201,
    };
    /// The same posts against a joinform whose rate limit this client is over, so
    /// every answer should be 429. Such a run counts no rows.
    const JOIN_LIMITED: Self = Self {
        path: "/join",
        expected_status: 429,
    };
}

/// The load generator: one runtime driving every connection.
struct Client<'a> {
    runtime: &'a tokio::runtime::Runtime,
    connections: usize,
    /// Numbers the submissions, so that every one is unique across the run.
    counter: Arc<AtomicU64>,
}

impl Client<'_> {
    /// Loads `server` with `target` from fresh connections for `warmup` (not
    /// recorded), then for `measured`. Every connection finishes its last request
    /// before this returns, so every expected answer is counted.
    fn load(
        &self,
        server: &Server,
        target: Target,
        warmup: Duration,
        measured: Duration,
    ) -> anyhow::Result<LoadReport> {
        let port = server.port;
        let pid = server.pid();
        self.runtime.block_on(async {
            let measure_from = Instant::now() + warmup;
            let window = Window {
                measure_from,
                stop_at: measure_from + measured,
            };
            let connections: Vec<_> = (0..self.connections)
                .map(|_| {
                    let counter = Arc::clone(&self.counter);
                    tokio::spawn(connection(port, target, counter, window))
                })
                .collect();

            tokio::time::sleep_until(window.measure_from.into()).await;
            let server_before = thread_times(pid);
            let client_before = total_ticks(&thread_times(std::process::id()));
            let machine_before = MachineCpu::now();
            tokio::time::sleep_until(window.stop_at.into()).await;
            let machine = MachineCpu::now().since(&machine_before);
            let server_after = thread_times(pid);
            let client_after = total_ticks(&thread_times(std::process::id()));

            let mut report = LoadReport::new(0.0);
            for handle in connections {
                let part = handle
                    .await
                    .with_context(|| format!("a connection to {}", server.name))?;
                report.merge(&part);
            }
            report.seconds = measured.as_secs_f64();
            report.server_cpu = cpu_by_thread_name(&server_before, &server_after);
            report.server_ticks =
                total_ticks(&server_after).saturating_sub(total_ticks(&server_before));
            report.client_ticks = client_after.saturating_sub(client_before);
            report.machine = machine;
            Ok(report)
        })
    }
}

#[derive(Clone, Copy)]
struct Window {
    measure_from: Instant,
    stop_at: Instant,
}

/// One keep-alive connection posting submissions until the window closes. A broken
/// connection is counted as an error and replaced.
async fn connection(
    port: u16,
    target: Target,
    counter: Arc<AtomicU64>,
    window: Window,
) -> LoadReport {
    let mut report = LoadReport::new(0.0);
    let mut request = Vec::with_capacity(512);
    let mut buffer = Vec::with_capacity(1024);
    let mut stream: Option<TcpStream> = None;
    while Instant::now() < window.stop_at {
        let live = match stream.as_mut() {
            Some(live) => live,
            None => match connect(port).await {
                Ok(fresh) => stream.insert(fresh),
                Err(error) => {
                    report.error(format!("connect: {}", error.kind()));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        build_request(
            &mut request,
            target.path,
            counter.fetch_add(1, Ordering::Relaxed),
        );
        let sent = Instant::now();
        let answer = exchange(live, &request, &mut buffer).await;
        let elapsed = sent.elapsed();
        match answer {
            Ok(status) if status == target.expected_status => {
                report.created_total += 1;
                if sent >= window.measure_from {
                    report.created += 1;
                    let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
                    report.histogram.saturating_record(micros.max(1));
                }
            }
            Ok(status) => report.error(format!("status {status}")),
            Err(error) => {
                report.error(format!("io: {}", error.kind()));
                stream = None;
            }
        }
    }
    report
}

async fn connect(port: u16) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// A POST of the form as a browser's fetch would send it, with submission number `n`.
fn build_request(request: &mut Vec<u8>, path: &str, n: u64) {
    let mut body = String::with_capacity(128);
    let _ = write!(
        body,
        "name=Load+Tester+{n}&email=load{n}%40example.org&country=NO&consent=on\
         &city=Oslo&message=Hello"
    );
    request.clear();
    let _ = write!(
        request,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
}

/// Writes one request and reads its whole response; returns the status code.
async fn exchange(
    stream: &mut TcpStream,
    request: &[u8],
    buffer: &mut Vec<u8>,
) -> std::io::Result<u16> {
    stream.write_all(request).await?;
    buffer.clear();
    let head_end = loop {
        if let Some(at) = find(buffer, b"\r\n\r\n") {
            break at + 4;
        }
        read_more(stream, buffer).await?;
    };
    let (status, length) = parse_head(&buffer[..head_end])?;
    while buffer.len() < head_end + length {
        read_more(stream, buffer).await?;
    }
    Ok(status)
}

async fn read_more(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> std::io::Result<()> {
    let mut chunk = [0u8; 2048];
    let read = stream.read(&mut chunk).await?;
    if read == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    buffer.extend_from_slice(&chunk[..read]);
    Ok(())
}

/// Status code and Content-Length (0 when absent) of a response head.
fn parse_head(head: &[u8]) -> std::io::Result<(u16, usize)> {
    let invalid = || std::io::Error::from(std::io::ErrorKind::InvalidData);
    let head = std::str::from_utf8(head).map_err(|_| invalid())?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(invalid)?;
    let mut length = 0;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("transfer-encoding") {
                // Neither server chunks these small bodies; reading one is not worth it.
                return Err(std::io::Error::other("chunked response"));
            }
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().map_err(|_| invalid())?;
            }
        }
    }
    Ok((status, length))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

// ---------------------------------------------------------------------------------------
// Report

impl Outcome {
    fn durable(&self) -> bool {
        self.stored == self.real.created_total && self.store_rows == self.store.created_total
    }

    fn ratio(&self) -> f64 {
        self.real.per_second() / self.parse.per_second()
    }

    fn ratio_pairs(&self) -> f64 {
        self.real.per_second() / self.pairs.per_second()
    }

    fn print(&self, options: &Options) {
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        println!();
        println!(
            "load: {} connections; per server {:.0} s warm-up, then {:.0} s recorded in {} \
             alternating rounds; client on {} thread(s); {cores} cores",
            options.connections,
            options.warmup.as_secs_f64(),
            options.measured.as_secs_f64(),
            options.rounds,
            options.client_threads,
        );
        if let Some(filter) = &options.rust_log {
            println!("joinform RUST_LOG={filter}");
        }
        if !options.joinform_env.is_empty() {
            println!(
                "joinform settings from the environment: {}",
                options.joinform_env.join(" ")
            );
        }
        println!();
        println!(
            "{:<20} {:>7} {:>34} {:>6}  {:>13}  {:>13}",
            "", "", "latency (ms)", "", "CPU (cores)", "machine"
        );
        println!(
            "{:<20} {:>7} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6}  {:>6} {:>6}  {:>6} {:>6}",
            "",
            "req/s",
            "p50",
            "p90",
            "p99",
            "p99.9",
            "max",
            "errors",
            "server",
            "client",
            "stolen",
            "idle"
        );
        self.pairs.print_row("bare pairs endpoint");
        self.parse.print_row("bare parse endpoint");
        self.real.print_row("joinform POST /join");
        self.store.print_row("bare parse + store");
        self.limited.print_row("joinform 429 flood");
        for (name, report) in [
            ("joinform 429", &self.limited),
            ("bare pairs", &self.pairs),
            ("bare parse", &self.parse),
            ("joinform", &self.real),
            ("bare parse + store", &self.store),
        ] {
            for (kind, count) in &report.errors {
                println!("  {name} error: {kind}: {count}");
            }
        }
        println!();
        self.real.print_threads("joinform");
        let by_round = |ratios: &[f64]| {
            ratios
                .iter()
                .map(|ratio| format!("{:.1} %", ratio * 100.0))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "ratio joinform / bare parse by round: {}",
            by_round(&self.round_ratios)
        );
        println!(
            "ratio joinform / bare pairs by round: {}",
            by_round(&self.round_ratios_pairs)
        );
        println!();
        self.print_verdicts();
    }

    fn print_verdicts(&self) {
        let ratio = self.ratio();
        let p99 = self.real.ms(0.99);
        let peak = self.memory.peak_mb();
        verdict(
            &format!("ratio joinform / bare parse: {:.1} %", ratio * 100.0),
            &format!("≥ {:.0} %", TARGET_RATIO * 100.0),
            ratio >= TARGET_RATIO,
        );
        // Not the target's yardstick; shown so that runs stay comparable with those
        // made before the parse endpoint existed.
        println!(
            "ratio joinform / bare pairs: {:.1} % (for comparison)",
            self.ratio_pairs() * 100.0
        );
        // Not a target either: how far joinform's writer alone goes, whatever the
        // request side does.
        println!(
            "ceiling: bare parse + store / bare parse: {:.1} %, p99 {:.2} ms ({} answered \
             201, {} rows)",
            self.store.per_second() / self.parse.per_second() * 100.0,
            self.store.ms(0.99),
            self.store.created_total,
            self.store_rows,
        );
        let flood = self.limited.per_second() / self.parse.per_second();
        verdict(
            &format!("429 flood / bare parse: {:.1} %", flood * 100.0),
            &format!("≥ {:.0} %", TARGET_FLOOD_RATIO * 100.0),
            flood >= TARGET_FLOOD_RATIO,
        );
        verdict(
            &format!("joinform p99: {p99:.2} ms"),
            &format!("≤ {TARGET_P99_MS:.0} ms"),
            p99 <= TARGET_P99_MS,
        );
        verdict(
            &format!(
                "joinform RSS: peak {peak:.1} MB, now {:.1} MB",
                self.memory.current_mb()
            ),
            &format!("≤ {TARGET_RSS_MB:.0} MB"),
            peak <= TARGET_RSS_MB,
        );
        let durability = format!(
            "durability: {} answered 201, {} rows",
            self.real.created_total, self.stored
        );
        if self.durable() {
            println!("{durability:<44} {:<15} OK", "");
        } else {
            println!("{durability:<44} {:<15} MISMATCH", "");
            eprintln!(
                "load: DURABILITY MISMATCH: {} submissions were answered 201 but the \
                 database holds {} rows",
                self.real.created_total, self.stored
            );
        }
    }
}

impl LoadReport {
    fn print_row(&self, name: &str) {
        let (_, stolen, idle) = self.machine.shares();
        println!(
            "{name:<20} {:>7.0} {:>6.2} {:>6.2} {:>6.2} {:>6.2} {:>6.2} {:>6}  {:>6.2} {:>6.2}  \
             {:>4.0} % {:>4.0} %",
            self.per_second(),
            self.ms(0.50),
            self.ms(0.90),
            self.ms(0.99),
            self.ms(0.999),
            self.histogram.max() as f64 / 1000.0,
            self.error_count(),
            self.cores(self.server_ticks),
            self.cores(self.client_ticks),
            stolen * 100.0,
            idle * 100.0,
        );
    }

    /// The server's busiest threads in the recorded time, in cores.
    fn print_threads(&self, name: &str) {
        let mut threads: Vec<_> = self.server_cpu.iter().collect();
        threads.sort_by_key(|(_, (_, ticks))| std::cmp::Reverse(*ticks));
        let busy: Vec<String> = threads
            .into_iter()
            .filter(|(_, (_, ticks))| self.cores(*ticks) >= 0.01)
            .map(|(thread, (count, ticks))| {
                let count = if *count > 1 {
                    format!(" (×{count})")
                } else {
                    String::new()
                };
                format!("{thread}{count} {:.2}", self.cores(*ticks))
            })
            .collect();
        println!("{name} CPU by thread (cores): {}", busy.join(", "));
    }
}

fn verdict(measured: &str, target: &str, ok: bool) {
    let result = if ok { "PASS" } else { "FAIL" };
    println!("{measured:<44} target {target:<8} {result}");
}

// ---------------------------------------------------------------------------------------
// The bare server

/// The yardsticks: actix-web with the same worker count as joinform (actix's default),
/// answering with a JSON body like joinform's; no routing, no storage, no logging.
mod bare {
    use std::process::ExitCode;

    use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
    use joinform::config::{ConfigSource, Settings};
    use joinform::domain::{FormSchema, NewSubmission};
    use joinform::http::body::read_form;
    use joinform::http::join::preferred_language;
    use joinform::store::{Database, SubmissionRecord, Writer};
    use serde::Serialize;

    /// The `store` server's database, in the folder it runs in.
    pub const STORE_DATABASE: &str = "bare-store.db";

    /// What a bare server does with the body.
    #[derive(Debug, Clone, Copy)]
    pub enum Mode {
        /// Decodes the urlencoded body into name/value pairs, nothing more.
        Pairs,
        /// Decodes and parses the body exactly as joinform's POST /join does.
        Parse,
        /// Parses as `Parse`, then commits the submission with joinform's writer.
        Store,
    }

    impl Mode {
        pub fn from_arg(arg: &str) -> Option<Self> {
            match arg {
                "pairs" => Some(Self::Pairs),
                "parse" => Some(Self::Parse),
                "store" => Some(Self::Store),
                _ => None,
            }
        }

        pub fn arg(self) -> &'static str {
            match self {
                Self::Pairs => "pairs",
                Self::Parse => "parse",
                Self::Store => "store",
            }
        }

        pub fn server_name(self) -> &'static str {
            match self {
                Self::Pairs => "the bare pairs server",
                Self::Parse => "the bare parse server",
                Self::Store => "the bare parse + store server",
            }
        }
    }

    #[derive(Serialize)]
    struct Received {
        id: String,
        status: &'static str,
    }

    fn created() -> HttpResponse {
        HttpResponse::Created().json(Received {
            id: uuid::Uuid::now_v7().to_string(),
            status: "received",
        })
    }

    /// `web::Form` reads the body (up to 16 KiB, joinform's default limit) and decodes
    /// it with serde_urlencoded into name/value pairs.
    async fn join_pairs(form: web::Form<Vec<(String, String)>>) -> HttpResponse {
        let fields = form.into_inner();
        std::hint::black_box(&fields);
        created()
    }

    /// What joinform's handler needs to decode and parse, from the same settings.
    struct ParseState {
        schema: FormSchema,
        max_body_bytes: usize,
        /// The `store` mode's writer, with the section and mail domain its records get.
        store: Option<StoreState>,
    }

    struct StoreState {
        writer: Writer,
        section: String,
        message_domain: String,
    }

    /// joinform's own body decoder and `NewSubmission::parse`, with the same limit,
    /// schema and Accept-Language handling; then nothing is routed, stored or logged.
    async fn join_parse(
        request: HttpRequest,
        payload: web::Payload,
        state: web::Data<ParseState>,
    ) -> HttpResponse {
        let Ok(raw) = read_form(&request, payload, &state.schema, state.max_body_bytes).await
        else {
            return HttpResponse::BadRequest().finish();
        };
        let Ok(submission) =
            NewSubmission::parse(&raw, &state.schema, preferred_language(&request))
        else {
            return HttpResponse::UnprocessableEntity().finish();
        };
        let Some(store) = &state.store else {
            std::hint::black_box(&submission);
            return created();
        };
        let record = SubmissionRecord::new(submission, &store.section, &store.message_domain);
        match store.writer.admit(record).await {
            Ok(_) => created(),
            Err(_) => HttpResponse::ServiceUnavailable().finish(),
        }
    }

    async fn healthz() -> HttpResponse {
        HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
    }

    pub fn serve(port: u16, mode: Mode) -> ExitCode {
        exit_when_parent_goes();
        // The same settings joinform loads in the same (empty) folder.
        let settings = match Settings::load(&ConfigSource::DefaultPath) {
            Ok(settings) => settings,
            Err(error) => {
                eprintln!("load: the bare server cannot load joinform's settings: {error}");
                return ExitCode::FAILURE;
            }
        };
        // The writer and checkpointer threads, as joinform starts them; they live as
        // long as the process.
        let store = match mode {
            Mode::Store => match start_store(&settings) {
                Ok(store) => Some(store),
                Err(error) => {
                    eprintln!("load: the bare store server cannot open its database: {error}");
                    return ExitCode::FAILURE;
                }
            },
            Mode::Pairs | Mode::Parse => None,
        };
        let state = web::Data::new(ParseState {
            schema: settings.form.schema(),
            max_body_bytes: settings.server.max_body_bytes,
            store,
        });
        let served = actix_web::rt::System::new().block_on(async move {
            HttpServer::new(move || {
                let join = match mode {
                    Mode::Pairs => web::post().to(join_pairs),
                    Mode::Parse | Mode::Store => web::post().to(join_parse),
                };
                App::new()
                    .app_data(state.clone())
                    .route("/join", join)
                    .route("/healthz", web::get().to(healthz))
            })
            .backlog(1024)
            .bind(("127.0.0.1", port))?
            .run()
            .await
        });
        match served {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("load: the bare server failed: {error}");
                ExitCode::FAILURE
            }
        }
    }

    /// joinform's database with its PRAGMAs, schema, single writer and checkpointer, as
    /// `joinform serve` opens it, in the current folder.
    fn start_store(settings: &Settings) -> Result<StoreState, joinform::store::StoreError> {
        let database = Database::new(
            STORE_DATABASE,
            std::time::Duration::from_millis(settings.storage.busy_timeout_ms),
        );
        database.prepare()?;
        let (writer, writer_thread) = database.start_writer()?;
        let checkpointer = database.start_checkpointer()?;
        // Never joined: the benchmark kills this process.
        std::mem::forget((writer_thread, checkpointer));
        Ok(StoreState {
            writer,
            section: settings
                .fallback
                .as_ref()
                .map(|fallback| fallback.name.clone())
                .unwrap_or_default(),
            message_domain: "example.org".to_owned(),
        })
    }

    /// The parent holds our standard input open; when it closes (the parent stopped us
    /// or died), exit.
    fn exit_when_parent_goes() {
        std::thread::spawn(|| {
            let mut sink = [0u8; 64];
            let mut stdin = std::io::stdin();
            while matches!(super::Read::read(&mut stdin, &mut sink), Ok(n) if n > 0) {}
            std::process::exit(0);
        });
    }
}
