//! Logging set-up. Spans and events carry ids, countries and statuses, never what a
//! visitor typed or where they connect from.

use std::io::{BufWriter, IsTerminal};

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

/// Log lines that may wait for the log thread before a request thread has to wait too.
const QUEUED_LINES: usize = 64 * 1024;

/// Keeps the log thread alive; dropping it writes out the lines still queued. Hold it
/// until the process is about to exit.
#[must_use = "dropping the guard stops logging"]
pub struct LogGuard {
    _worker: Option<WorkerGuard>,
}

/// Logs to standard error, filtered by `RUST_LOG` (default `info`).
///
/// Lines are formatted on the thread that logs them but written by a log thread of
/// their own: at `info` there is one line per submission, and a write to standard
/// error per line (a system call, and a lock shared by every HTTP worker) cost about a
/// fifth of the throughput. The log thread writes whatever has queued up in one go.
/// It never drops a line: when the queue is full, the logging thread waits.
pub fn init() -> LogGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name("joinform-log")
        .finish(BufWriter::new(std::io::stderr()));
    let installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        // Colours only for a person at a terminal, not in log files.
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
    // Someone else's subscriber is in place (a test): its writer is used, not ours.
    LogGuard {
        _worker: installed.is_ok().then_some(guard),
    }
}
