//! `[log]`: how joinform logs.

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// How joinform logs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// One line per event, readable or JSON.
    pub format: LogFormat,
    /// A `RUST_LOG`-style filter; the `RUST_LOG` variable, when set, wins.
    pub filter: String,
}

/// The shape of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One readable line per event.
    Human,
    /// One JSON object per line, for log shippers.
    Json,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Human,
            filter: "info".to_owned(),
        }
    }
}

impl LogSettings {
    /// Checks that the filter parses, so a typo stops start-up instead of silencing
    /// the log.
    ///
    /// # Errors
    /// `log.filter` with the parser's own words.
    pub fn check(&self) -> Result<(), ConfigError> {
        tracing_subscriber::EnvFilter::builder()
            .parse(&self.filter)
            .map(drop)
            .map_err(|error| ConfigError::bad("log.filter", error.to_string()))
    }
}
