//! The write path alone: `cargo bench --bench writer`.
//!
//! What one sign-up costs the single writer, without HTTP, queues or the gather window:
//! joinform's own `Database` (PRAGMAs, schema, checkpointer thread) and
//! `store::submissions::admit`, driven in `IMMEDIATE` transactions of WRITER_BATCH (32,
//! what the writer commits at a time under the load benchmark's 64 connections)
//! submissions, as the writer thread does. Each batch also records the previous batch's
//! notifications as sent, as the delivery worker's results arrive in the writer's
//! batches. The submissions are the accept-ratio benchmark's form (unique address,
//! country FR, city, phone, message, consent), routed to one section.
//!
//! WRITER_SUBMISSIONS (150 000: one 10 s round of the load benchmark at 15 000 req/s)
//! are written after a warm-up of WRITER_WARMUP (20 000, not recorded) into a fresh
//! file under WRITER_DIR (default: the system's temporary folder; put it on the disk you
//! care about, since the fsync is part of the figure). WRITER_SQL, if set, is run on
//! the fresh file before the run (e.g. `DROP INDEX ...`), to try a schema change
//! without a rebuild; the connection has `foreign_keys` off while it runs.
//!
//! The report, per submission: the writer thread's wall time in `admit` and in COMMIT,
//! its CPU time (`/proc/thread-self/schedstat`, user and system), the bytes it handed
//! to `write` (`/proc/thread-self/io`, `wchar`: WAL frames of 24 + page-size bytes) and
//! its write calls; at the end, the database's size in pages per 1 000 rows after a
//! TRUNCATE checkpoint. Wall times move with the machine's load; CPU, bytes and pages
//! do not much, and are the figures to compare between schema versions.
//!
//! Exit status: 0 when the run completed, 1 when it could not (a database error).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use joinform::config::{ConfigSource, Settings};
use joinform::domain::{FormSchema, NewSubmission, RawForm, RawValue, SubmissionId, Timestamp};
use joinform::store::outbox::{self, Attempt};
use joinform::store::{Database, SubmissionRecord, submissions};
use rusqlite::TransactionBehavior;

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(default)
}

/// The writer thread's CPU time so far (the first field of `schedstat`, in ns).
fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

/// The thread's `wchar` (bytes handed to write calls) and `syscw` (write calls).
fn thread_writes() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/thread-self/io").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0)
    };
    (field("wchar:"), field("syscw:"))
}

/// Submission `n` of the accept-ratio benchmark's form.
fn record(schema: &FormSchema, run: u64, n: usize) -> anyhow::Result<SubmissionRecord> {
    let mut raw = RawForm::default();
    let fields = [
        ("name", format!("Jane Example {n}")),
        ("email", format!("j{run}-t1-{n}@example.org")),
        ("country", "FR".to_owned()),
        ("city", "Lyon".to_owned()),
        ("phone", "+33612345678".to_owned()),
        (
            "message",
            "I would like to join and help with local events.".to_owned(),
        ),
        ("consent", "true".to_owned()),
    ];
    for (name, value) in fields {
        raw.insert(name, RawValue::Text(value))?;
    }
    let submission = NewSubmission::parse(&raw, schema, None)
        .map_err(|errors| anyhow::anyhow!("the bench's form does not parse: {errors:?}"))?;
    Ok(SubmissionRecord::new(submission, "France", "example.org"))
}

#[derive(Default)]
struct Totals {
    admit: Duration,
    commit: Duration,
    cpu: Duration,
    bytes: u64,
    writes: u64,
    submissions: usize,
}

fn run() -> anyhow::Result<()> {
    let total = env_count("WRITER_SUBMISSIONS", 150_000);
    let warmup = env_count("WRITER_WARMUP", 20_000);
    let batch_size = env_count("WRITER_BATCH", 32).max(1);
    let parent = std::env::var_os("WRITER_DIR").map_or_else(std::env::temp_dir, Into::into);
    let dir = tempfile::tempdir_in(parent).context("cannot make the temporary folder")?;
    let schema = Settings::load(&ConfigSource::DefaultPath)
        .context("cannot load the built-in settings")?
        .form
        .schema();
    let run_tag = Timestamp::now().unix_millis();

    let database = Database::new(dir.path().join("writer.db"), Duration::from_secs(5));
    database.prepare()?;
    let mut connection = database.connect()?;
    if let Ok(sql) = std::env::var("WRITER_SQL") {
        connection.pragma_update(None, "foreign_keys", "OFF")?;
        connection
            .execute_batch(&sql)
            .context("WRITER_SQL failed")?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
    }
    // As `Database::start_writer` sets it: the checkpointer thread does the work.
    connection.pragma_update(None, "wal_autocheckpoint", 16_384)?;
    let checkpointer = database.start_checkpointer()?;

    let mut totals = Totals::default();
    let mut sent: Vec<SubmissionId> = Vec::new();
    let mut n = 0;
    let started = Instant::now();
    while n < warmup + total {
        let records = (n..(n + batch_size).min(warmup + total))
            .map(|i| record(&schema, run_tag, i))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let recorded = n >= warmup;
        let (cpu_before, (bytes_before, writes_before)) = (thread_cpu(), thread_writes());
        let begun = Instant::now();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = Timestamp::now();
        for id in sent.drain(..) {
            outbox::record_attempt(&transaction, id, &Attempt::Sent, now)?;
        }
        for record in &records {
            submissions::admit(&transaction, record)?;
            sent.push(record.id);
        }
        let admitted = Instant::now();
        transaction.commit()?;
        let committed = Instant::now();
        let (bytes_after, writes_after) = thread_writes();
        if recorded {
            totals.admit += admitted - begun;
            totals.commit += committed - admitted;
            totals.cpu += thread_cpu().saturating_sub(cpu_before);
            totals.bytes += bytes_after.saturating_sub(bytes_before);
            totals.writes += writes_after.saturating_sub(writes_before);
            totals.submissions += records.len();
        }
        n += records.len();
    }
    let elapsed = started.elapsed();
    // Always a checkpointer: this database leaves checkpoints to joinform.
    if let Some(checkpointer) = checkpointer {
        checkpointer.stop();
    }
    connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    let pragma = |name: &str| -> rusqlite::Result<i64> {
        connection.pragma_query_value(None, name, |row| row.get(0))
    };
    let (pages, page_size) = (pragma("page_count")?, pragma("page_size")?);
    let rows: i64 =
        connection.query_row("SELECT count(*) FROM submissions", [], |row| row.get(0))?;
    if usize::try_from(rows).ok() != Some(warmup + total) {
        bail!("{rows} rows for {} submissions", warmup + total);
    }
    let per = |value: f64| value / totals.submissions.max(1) as f64;
    let micros = |duration: Duration| per(duration.as_secs_f64() * 1e6);
    println!(
        "writer: {} submissions in batches of {batch_size} (after {warmup} unrecorded), {:.1} s",
        totals.submissions,
        elapsed.as_secs_f64()
    );
    println!(
        "per submission: admit {:.2} µs, commit {:.2} µs (wall); writer CPU {:.2} µs; \
         WAL {:.0} bytes in {:.2} write calls",
        micros(totals.admit),
        micros(totals.commit),
        micros(totals.cpu),
        per(totals.bytes as f64),
        per(totals.writes as f64)
    );
    println!(
        "file: {pages} pages of {page_size} bytes for {rows} rows: {:.1} pages per 1 000 rows",
        pages as f64 * 1000.0 / rows as f64
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("writer: {error:#}");
            ExitCode::FAILURE
        }
    }
}
