//! Retention: data is kept no longer than `[retention]` says. `joinform purge` applies
//! it on demand, and `serve` once a day.

use std::time::Duration;

use serde::Serialize;
use serde_json::json;
use tokio::sync::watch;

use crate::config::{HumanDuration, RetentionSettings};
use crate::domain::{SubmissionStatus, Timestamp};
use crate::store::audit::{self, Action};
use crate::store::{Erasing, StoreError, Writer, outbox, submissions};

const DAY: Duration = Duration::from_secs(86_400);

/// What a purge deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PurgeReport {
    /// Accepted and duplicate submissions past `retention.accepted`.
    pub accepted: u64,
    /// Spam past `retention.spam`.
    pub spam: u64,
    /// Sign-ups held in a flood and never released, past `retention.spam` too: a
    /// review had that long to find the people among them.
    pub held: u64,
    /// Double opt-in sign-ups their visitors did not confirm within
    /// `form.confirm_within`.
    pub unconfirmed: u64,
    /// Sent and failed notifications queued more than `retention.outbox` ago.
    pub outbox: u64,
}

/// Deletes what is past its time as of `now` and records it. Runs inside
/// [`crate::store::erase`], which returns the freed pages to the file system and
/// empties the WAL once it commits, so purged rows leave no trace in the files.
///
/// # Errors
/// SQLite's error; the routine then rolls everything back.
pub fn purge(
    connection: &Erasing<'_>,
    policy: &RetentionSettings,
    confirm_within: HumanDuration,
    now: Timestamp,
    actor: &str,
) -> Result<PurgeReport, StoreError> {
    let cutoff = |kept: HumanDuration| now.minus(kept.get());
    let report = PurgeReport {
        accepted: submissions::erase_created_before(
            connection,
            &[SubmissionStatus::Accepted, SubmissionStatus::Duplicate],
            cutoff(policy.accepted),
        )?,
        spam: submissions::erase_created_before(
            connection,
            &[SubmissionStatus::Spam],
            cutoff(policy.spam),
        )?,
        held: submissions::erase_created_before(
            connection,
            &[SubmissionStatus::Held],
            cutoff(policy.spam),
        )?,
        unconfirmed: submissions::erase_unconfirmed_before(connection, cutoff(confirm_within))?,
        outbox: outbox::erase_finished_before(connection, cutoff(policy.outbox))?,
    };
    audit::record(
        connection,
        actor,
        Action::Purge,
        &json!({
            "accepted": report.accepted,
            "spam": report.spam,
            "held": report.held,
            "unconfirmed": report.unconfirmed,
            "outbox": report.outbox,
            "accepted_after": policy.accepted.in_file_units(),
            "spam_after": policy.spam.in_file_units(),
            "outbox_after": policy.outbox.in_file_units(),
            "unconfirmed_after": confirm_within.in_file_units(),
        }),
        report.accepted + report.spam + report.held + report.unconfirmed + report.outbox,
    )?;
    Ok(report)
}

/// The server's purge: at start, then every day, through the writer, until `stopping`.
pub async fn run_daily(
    writer: Writer,
    policy: RetentionSettings,
    confirm_within: HumanDuration,
    mut stopping: watch::Receiver<bool>,
) {
    loop {
        let policy_now = policy.clone();
        let outcome = writer
            .erase(move |connection| {
                purge(
                    connection,
                    &policy_now,
                    confirm_within,
                    Timestamp::now(),
                    audit::SERVER_ACTOR,
                )
            })
            .await;
        match outcome {
            Ok(report) => tracing::info!(
                accepted = report.accepted,
                spam = report.spam,
                held = report.held,
                unconfirmed = report.unconfirmed,
                outbox = report.outbox,
                "retention purge done"
            ),
            Err(failure) => tracing::warn!(%failure, "retention purge failed; next try in a day"),
        }
        tokio::select! {
            _ = tokio::time::sleep(DAY) => {}
            _ = stopping.wait_for(|stop| *stop) => return,
        }
    }
}
