//! Logging set-up. Spans and events carry ids, countries and statuses, never what a
//! visitor typed or where they connect from.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Logs to standard error, filtered by `RUST_LOG` (default `info`).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, not in log files.
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
