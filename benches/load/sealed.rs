//! The sealed run (issue 18): `cargo bench --bench load -- sealed`.
//!
//! Two release joinforms side by side on the same accept settings as the main run
//! (`ACCEPT_SETTINGS`), each on a configuration file written from the shipped one: one
//! storing in clear, the other with sealed storage, `storage.seal_keys` the test
//! operator key and every section and the fallback keyed with the test keys
//! (`tests/data/openpgp`, cv25519; Sweden's RSA-3072). The load posts to Norway, so
//! each sealed sign-up is three OpenPGP messages: its fields to two keys, and its
//! notification, first and returning, to one.
//!
//! Each is warmed up, then loaded in LOAD_ROUNDS rounds that alternate between them
//! (clear, sealed, then sealed, clear, ...), so a slow spell of the shared machine hits
//! both alike. The report: each one's accepted requests per second and latency
//! percentiles, sealed / clear, the sealed server's CPU by thread (the OpenPGP work
//! should sit on the request workers, not `joinform-writer`), memory, and whether every
//! row answered 201 is stored, and, for the sealed one, stored sealed.
//!
//! Exit status: 0 when the run completed with every 201 stored (sealed on the sealed
//! server); 1 otherwise.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use anyhow::Context;
use joinform::config::{EMBEDDED_CONFIG, Settings};

use crate::client::{Client, Target};
use crate::servers::{count_rows, start_joinform_with};
use crate::{ACCEPT_SETTINGS, Options};

/// The test keys, from the source tree.
fn key(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/openpgp")
        .join(name)
}

/// The shipped configuration as a file in `dir`; with `sealed`, storage sealed to the
/// operator's test key and every section keyed.
fn write_config(dir: &Path, name: &str, sealed: bool) -> anyhow::Result<PathBuf> {
    let mut settings =
        Settings::from_toml(Some(EMBEDDED_CONFIG), false).context("the shipped configuration")?;
    if sealed {
        settings.storage.seal_keys = vec![key("operator.asc")];
        for section in &mut settings.sections {
            section.pgp_keys = vec![if section.name == "Sweden" {
                key("sweden-rsa.asc")
            } else {
                key("norway.asc")
            }];
        }
        if let Some(fallback) = &mut settings.fallback {
            fallback.pgp_keys = vec![key("norway.asc")];
        }
    }
    let path = dir.join(name);
    std::fs::write(&path, toml::to_string(&settings)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Rows stored sealed (`sealed IS NOT NULL`) in `database`.
fn count_sealed(database: &Path) -> anyhow::Result<u64> {
    let connection = rusqlite::Connection::open(database)
        .with_context(|| format!("opening {}", database.display()))?;
    let count: i64 = connection
        .query_row(
            "SELECT count(*) FROM submissions WHERE sealed IS NOT NULL",
            [],
            |row| row.get(0),
        )
        .context("counting sealed submissions")?;
    Ok(u64::try_from(count)?)
}

/// Runs the sealed comparison and prints its report; `Ok(true)` when every 201 is
/// stored, sealed on the sealed server.
pub(crate) fn run(options: &Options) -> anyhow::Result<bool> {
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
    let clear_config = write_config(dir.path(), "clear.toml", false)?;
    let sealed_config = write_config(dir.path(), "sealed.toml", true)?;
    let clear_database = dir.path().join("clear.db");
    let sealed_database = dir.path().join("sealed.db");
    let clear_server = start_joinform_with(
        dir.path(),
        &clear_database,
        options,
        ACCEPT_SETTINGS,
        Some(&clear_config),
    )?;
    let sealed_server = start_joinform_with(
        dir.path(),
        &sealed_database,
        options,
        ACCEPT_SETTINGS,
        Some(&sealed_config),
    )
    .context("starting the sealed joinform")?;

    let created = Target::JOIN_CREATED;
    let mut clear = client.load(&clear_server, created, options.warmup, Duration::ZERO)?;
    let mut sealed = client.load(&sealed_server, created, options.warmup, Duration::ZERO)?;
    let measure = |server| client.load(server, created, Duration::ZERO, options.round());
    let mut ratios = Vec::new();
    for round in 0..options.rounds {
        let (c, s) = if round % 2 == 0 {
            let c = measure(&clear_server)?;
            (c, measure(&sealed_server)?)
        } else {
            let s = measure(&sealed_server)?;
            (measure(&clear_server)?, s)
        };
        ratios.push(s.per_second() / c.per_second());
        clear.merge(&c);
        sealed.merge(&s);
    }
    let clear_memory = clear_server.memory().context("reading joinform's memory")?;
    let sealed_memory = sealed_server
        .memory()
        .context("reading joinform's memory")?;
    // Killed, not stopped: a 201 must mean the row is on disk, whatever happens next.
    drop(clear_server);
    drop(sealed_server);
    let clear_rows = count_rows(&clear_database)?;
    let sealed_rows = count_rows(&sealed_database)?;
    let sealed_sealed = count_sealed(&sealed_database)?;

    println!();
    println!(
        "load, sealed run: {} connections; per server {:.0} s warm-up, then {:.0} s \
         recorded in {} alternating rounds; client on {} thread(s)",
        options.connections,
        options.warmup.as_secs_f64(),
        options.measured.as_secs_f64(),
        options.rounds,
        options.client_threads,
    );
    println!();
    crate::client::LoadReport::print_header();
    clear.print_row("joinform clear");
    sealed.print_row("joinform sealed");
    for (name, report) in [("clear", &clear), ("sealed", &sealed)] {
        for (kind, count) in &report.errors {
            println!("  {name} error: {kind}: {count}");
        }
    }
    println!();
    sealed.print_threads("joinform sealed");
    println!(
        "sealed / clear req/s: {:.1} % (by round: {}); p99 clear {:.2} ms, sealed {:.2} ms",
        sealed.per_second() / clear.per_second() * 100.0,
        ratios
            .iter()
            .map(|ratio| format!("{:.1} %", ratio * 100.0))
            .collect::<Vec<_>>()
            .join(", "),
        clear.ms(0.99),
        sealed.ms(0.99),
    );
    println!(
        "RSS peak: clear {:.1} MB, sealed {:.1} MB",
        clear_memory.peak_mb(),
        sealed_memory.peak_mb()
    );
    let durable = clear_rows == clear.created_total && sealed_rows == sealed.created_total;
    println!(
        "durability: clear {} answered 201, {} rows; sealed {} answered 201, {} rows: {}",
        clear.created_total,
        clear_rows,
        sealed.created_total,
        sealed_rows,
        if durable { "OK" } else { "MISMATCH" }
    );
    let all_sealed = sealed_sealed == sealed_rows;
    println!(
        "sealed server: {sealed_sealed} of {sealed_rows} rows stored sealed: {}",
        if all_sealed {
            "OK"
        } else {
            "NOT SEALED (is the sealed request path in this build?)"
        }
    );
    Ok(durable && all_sealed)
}
