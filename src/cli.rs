//! What the operator commands print. The binary parses arguments and calls these.

use std::fmt::Write;
use std::time::Duration;

use crate::config::{ConfigError, ConfigSource, Settings};
use crate::mail::{self, Templates};
use crate::routing::Routing;
use crate::store::{Database, StoreError, Timestamp, outbox};

/// `check-config`: the settings summary and the routing table, or the first problem.
pub fn check_config(settings: &Settings, source: &ConfigSource) -> Result<String, ConfigError> {
    let routing = Routing::from_settings(settings)?;
    let sender = mail::sender(&settings.mail)?;
    let templates = Templates::load().map_err(|error| ConfigError::Invalid(error.to_string()))?;
    let mut report = settings.summary(source);
    let _ = writeln!(report, "mail from:        {sender}");
    report.push_str(&routing.table());
    for section in routing.sections_and_fallback() {
        if !templates.has_language(&section.language) {
            let _ = writeln!(
                report,
                "note: no mail template for `{}` (section {}): English is used; available: {}",
                section.language,
                section.name,
                templates.languages().join(", ")
            );
        }
    }
    Ok(report)
}

fn open(settings: &Settings) -> Result<rusqlite::Connection, StoreError> {
    let database = Database::new(
        &settings.storage.database,
        Duration::from_millis(settings.storage.busy_timeout_ms),
    );
    database.prepare()?;
    database.connect()
}

/// `outbox`: counts by state and the failed rows; with `retry`, requeues failed rows
/// first. No personal data is printed.
pub fn outbox(settings: &Settings, retry: Option<&[String]>) -> Result<String, StoreError> {
    let connection = open(settings)?;
    let mut report = String::new();
    if let Some(ids) = retry {
        let changed = outbox::retry_failed(&connection, ids, Timestamp::now())?;
        let _ = writeln!(report, "{changed} failed row(s) put back to pending");
        if changed > 0 {
            report.push_str("a running server sends them within a minute\n");
        }
    }
    let counts = outbox::counts(&connection)?;
    report.push_str("outbox:\n");
    for state in ["pending", "sent", "failed"] {
        let count = counts
            .iter()
            .find(|(name, _)| name == state)
            .map_or(0, |(_, count)| *count);
        let _ = writeln!(report, "  {state:<8} {count}");
    }
    let failed = outbox::failed(&connection)?;
    if !failed.is_empty() {
        report.push_str("failed rows (submission id, section, attempts, queued at, last error):\n");
        for row in failed {
            let _ = writeln!(
                report,
                "  {}\t{}\t{}\t{}\t{}",
                row.submission_id,
                row.section,
                row.attempts,
                row.created_at,
                row.last_error.unwrap_or_default()
            );
        }
    }
    Ok(report)
}
