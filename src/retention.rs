//! Retention: data is kept no longer than `[retention]` says. `joinform purge` applies
//! it on demand, and `serve` once a day.

use std::time::Duration;

use serde::Serialize;
use serde_json::json;
use tokio::sync::watch;

use crate::audit::{self, Action};
use crate::config::RetentionSettings;
use crate::domain::{SubmissionId, Timestamp};
use crate::store::{Erasing, StoreError, Writer};

const DAY: Duration = Duration::from_secs(86_400);

/// What a purge deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PurgeReport {
    /// Accepted and duplicate submissions past `accepted_days`.
    pub accepted: u64,
    /// Spam past `spam_days`.
    pub spam: u64,
    /// Sent and failed notifications queued more than `outbox_days` ago.
    pub outbox: u64,
}

fn days(count: u32) -> Duration {
    DAY * count
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
    now: Timestamp,
    actor: &str,
) -> Result<PurgeReport, StoreError> {
    let cutoff = |count| now.minus(days(count)).to_string();
    let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    // The id bound makes each deletion a range of the table's key, which is in time
    // order; there is no index on `created_at`, which then decides exactly.
    let id_bound = |count| SubmissionId::after(now.minus(days(count))).to_string();
    let accepted = connection.execute(
        "DELETE FROM submissions
         WHERE status IN ('accepted', 'duplicate') AND created_at < ?1 AND id < ?2",
        [cutoff(policy.accepted_days), id_bound(policy.accepted_days)],
    )?;
    let spam = connection.execute(
        "DELETE FROM submissions WHERE status = 'spam' AND created_at < ?1 AND id < ?2",
        [cutoff(policy.spam_days), id_bound(policy.spam_days)],
    )?;
    // Pending rows stay whatever their age: the delivery worker gives up on them by
    // `mail.give_up_after`, and then they are failed rows like any other.
    let outbox = connection.execute(
        "DELETE FROM outbox WHERE state IN ('sent', 'failed') AND created_at < ?1",
        [cutoff(policy.outbox_days)],
    )?;
    let report = PurgeReport {
        accepted: count(accepted),
        spam: count(spam),
        outbox: count(outbox),
    };
    audit::record(
        connection,
        actor,
        Action::Purge,
        &json!({
            "accepted": report.accepted,
            "spam": report.spam,
            "outbox": report.outbox,
            "accepted_days": policy.accepted_days,
            "spam_days": policy.spam_days,
            "outbox_days": policy.outbox_days,
        }),
        report.accepted + report.spam + report.outbox,
    )?;
    Ok(report)
}

/// The server's purge: at start, then every day, through the writer, until `stopping`.
pub async fn run_daily(
    writer: Writer,
    policy: RetentionSettings,
    mut stopping: watch::Receiver<bool>,
) {
    loop {
        let policy_now = policy.clone();
        let outcome = writer
            .erase(move |connection| {
                purge(
                    connection,
                    &policy_now,
                    Timestamp::now(),
                    audit::SERVER_ACTOR,
                )
            })
            .await;
        match outcome {
            Ok(report) => tracing::info!(
                accepted = report.accepted,
                spam = report.spam,
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
