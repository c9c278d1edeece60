//! Logging set-up. Spans and events carry ids, routes, countries, outcomes and reason
//! codes, never what a visitor typed or where they connect from.

use std::io::IsTerminal;

use tracing::Level;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogFormat, LogSettings};

/// Logs to standard error, filtered by `RUST_LOG` if set, else by `log.filter`.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Other crates' debug and trace output can hold request bytes and mail headers, so
    // it is never shown, whatever the filter says.
    let only_our_details =
        filter_fn(|meta| meta.target().starts_with("joinform") || *meta.level() <= Level::INFO);
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(only_our_details);
    let _ = match settings.format {
        LogFormat::Human => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
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
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
}
