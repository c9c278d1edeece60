//! Logging set-up. Spans and events carry ids, routes, countries, outcomes and reason
//! codes, never what a visitor typed or where they connect from.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing::Level;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogFormat, LogSettings};

/// How long a line may wait before it is written to standard error.
const FLUSH_INTERVAL: Duration = Duration::from_millis(20);
/// Past this many waiting bytes, the thread that logs writes them out itself, so a
/// flood of lines cannot grow memory without bound. No line is ever dropped.
const MAX_PENDING_BYTES: usize = 1 << 20;

/// Logs to standard error, filtered by `RUST_LOG` if set, else by `log.filter`; as
/// readable lines or as JSON (`log.format`).
///
/// At `info` there is one line per request. A write to standard error per line (a
/// system call, under a lock every HTTP worker shares) cost about a fifth of the
/// throughput; handing each line to a log thread through a channel still cost a
/// wake-up per line. So lines are formatted on the thread that logs them, appended to
/// a shared buffer, and written out in one go every [`FLUSH_INTERVAL`] by a thread of
/// their own.
///
/// Hold the returned guard until the process is about to exit: dropping it writes out
/// what is still waiting.
pub fn init(settings: &LogSettings) -> LogGuard {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Other crates' debug and trace output can hold request bytes and mail headers, so
    // it is never shown, whatever the filter says.
    let only_our_details =
        filter_fn(|meta| meta.target().starts_with("joinform") || *meta.level() <= Level::INFO);
    let writer = BatchedStderr::default();
    let make_writer = {
        let writer = writer.clone();
        move || writer.clone()
    };
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(only_our_details);
    let installed = match settings.format {
        LogFormat::Human => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(make_writer)
                    // Colours only for a person at a terminal, not in log files.
                    .with_ansi(std::io::stderr().is_terminal()),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(make_writer),
            )
            .try_init(),
    };
    if installed.is_err() {
        // Someone else's subscriber is in place (a test); nothing will use ours.
        return LogGuard(None);
    }
    LogGuard(Flusher::start(writer))
}

/// A `Write` for the log formatter. Each formatted line arrives in one `write` call
/// and is appended whole, so lines from different threads never interleave.
#[derive(Clone, Default)]
struct BatchedStderr(Arc<Buffers>);

/// Two buffers that swap: loggers append to `pending` while `output` is written, so
/// no logger waits for a system call. Lock order: `output`, then `pending`.
#[derive(Default)]
struct Buffers {
    pending: Mutex<Vec<u8>>,
    output: Mutex<Vec<u8>>,
}

/// A panic while appending leaves at worst a partial line; keep logging.
fn lock(buffer: &Mutex<Vec<u8>>) -> MutexGuard<'_, Vec<u8>> {
    buffer.lock().unwrap_or_else(PoisonError::into_inner)
}

impl BatchedStderr {
    /// Writes out the lines waiting so far. Holding `output` while swapping and
    /// writing keeps the lines in order, whichever thread writes them.
    fn write_out(&self) {
        let mut output = lock(&self.0.output);
        std::mem::swap(&mut *output, &mut *lock(&self.0.pending));
        if output.is_empty() {
            return;
        }
        // Nowhere to report a failure to write the log; those lines are lost.
        let _ = std::io::stderr().lock().write_all(&output);
        output.clear();
    }
}

impl Write for BatchedStderr {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let full = {
            let mut pending = lock(&self.0.pending);
            pending.extend_from_slice(line);
            pending.len() >= MAX_PENDING_BYTES
        };
        if full {
            self.write_out();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Whether the flusher should stop, and the signal that wakes it early to do so.
type StopSignal = Arc<(Mutex<bool>, Condvar)>;

/// The thread that writes the waiting lines out.
struct Flusher {
    writer: BatchedStderr,
    thread: JoinHandle<()>,
    stop: StopSignal,
}

impl Flusher {
    /// `None` when no thread can be started: lines then wait until the buffer is full
    /// (or the guard drops) and are written by the thread that logs.
    fn start(writer: BatchedStderr) -> Option<Self> {
        let stop = StopSignal::default();
        let thread = std::thread::Builder::new()
            .name("joinform-log".into())
            .spawn({
                let writer = writer.clone();
                let stop = Arc::clone(&stop);
                move || run(&writer, &stop)
            })
            .ok()?;
        Some(Self {
            writer,
            thread,
            stop,
        })
    }
}

fn run(writer: &BatchedStderr, stop: &StopSignal) {
    let (stopping, wake) = &**stop;
    let mut stopped = stopping.lock().unwrap_or_else(PoisonError::into_inner);
    while !*stopped {
        stopped = match wake.wait_timeout(stopped, FLUSH_INTERVAL) {
            Ok((guard, _)) => guard,
            Err(poisoned) => poisoned.into_inner().0,
        };
        writer.write_out();
    }
}

/// Keeps the log thread running; dropping it writes out the lines still waiting.
#[must_use = "dropping the guard stops the log thread"]
pub struct LogGuard(Option<Flusher>);

impl Drop for LogGuard {
    fn drop(&mut self) {
        let Some(flusher) = self.0.take() else {
            return;
        };
        let (stopping, wake) = &*flusher.stop;
        *stopping.lock().unwrap_or_else(PoisonError::into_inner) = true;
        wake.notify_one();
        let _ = flusher.thread.join();
        // Lines logged after the thread stopped.
        flusher.writer.write_out();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_wait_whole_and_in_order_until_written_out() {
        let mut writer = BatchedStderr::default();
        assert!(writer.write_all(b"test line one\n").is_ok());
        assert!(writer.write_all(b"test line two\n").is_ok());
        assert_eq!(
            lock(&writer.0.pending).as_slice(),
            b"test line one\ntest line two\n"
        );
        writer.write_out();
        assert!(lock(&writer.0.pending).is_empty());
        assert!(lock(&writer.0.output).is_empty());
    }
}
