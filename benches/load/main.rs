//! Load benchmark: `cargo bench --bench load`. The flood run (issue 17), a mode of its
//! own with its own report, is `cargo bench --bench load -- flood` (see `flood`); the
//! sealed run (issue 18), clear against sealed storage, is
//! `cargo bench --bench load -- sealed` (see `sealed`).
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
//!
//! The code, by concern: this file holds the options and the run (which server is
//! loaded when); `servers` starts and stops the server processes, `bare` is the bare
//! servers themselves, `client` the load generator and what it counts, `procfs` the CPU
//! and memory figures read from /proc, `report` the printed report and its targets;
//! `flood` is the flood run, with its own bots, visitors and report.

mod bare;
mod client;
mod flood;
mod procfs;
mod report;
mod sealed;
mod servers;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use anyhow::Context;

use client::{Client, LoadReport, Target};
use procfs::Memory;
use servers::{count_rows, start_bare_server, start_joinform};

/// The accept path with every check on: limits raised to their maximum, since the
/// whole load comes from one address with unique email addresses. The flood baseline
/// too: at thousands of sign-ups a second, all but the first 20 of each minute would be
/// held (stored without a notification), which is the flood run's business, not the
/// accept path's. The admin listener gets a free port so that two joinforms can run
/// side by side.
const ACCEPT_SETTINGS: &[(&str, &str)] = &[
    ("JOINFORM_RATE_LIMIT__PER_IP_PER_MINUTE", "1000000"),
    ("JOINFORM_RATE_LIMIT__PER_IP_BURST", "1000000"),
    ("JOINFORM_RATE_LIMIT__GLOBAL_PER_SECOND", "1000000"),
    ("JOINFORM_RATE_LIMIT__PER_EMAIL_PER_DAY", "1000000"),
    ("JOINFORM_SPAM__POW_BASELINE_PER_MINUTE", "1000000"),
    ("JOINFORM_ADMIN__LISTEN", "127.0.0.1:0"),
];

/// One post a minute: the benchmark's client is over it at once.
const LIMITED_SETTINGS: &[(&str, &str)] = &[
    ("JOINFORM_RATE_LIMIT__PER_IP_PER_MINUTE", "1"),
    ("JOINFORM_RATE_LIMIT__PER_IP_BURST", "1"),
    ("JOINFORM_ADMIN__LISTEN", "127.0.0.1:0"),
];

/// The argument that turns this binary into the bare server.
const BARE_SERVER_ARG: &str = "--bare-server";

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
    // `cargo bench` passes `--bench`, and what follows `--`: `flood` picks the flood
    // run, `sealed` the sealed one; there is nothing else to filter.
    let options = Options::from_env();
    if args.iter().skip(1).any(|arg| arg == "sealed") {
        return match sealed::run(&options) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(error) => {
                eprintln!("load: the sealed run broke: {error:#}");
                ExitCode::FAILURE
            }
        };
    }
    if args.iter().skip(1).any(|arg| arg == "flood") {
        return match flood::run(&options) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(error) => {
                eprintln!("load: the flood run broke: {error:#}");
                ExitCode::FAILURE
            }
        };
    }
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
