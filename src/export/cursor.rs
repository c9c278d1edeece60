//! Incremental exports: which ids a run may take. The checkpoints themselves are the
//! `export_cursors` table (`store::export_cursors`).

use std::time::Duration;

use crate::domain::{SubmissionId, Timestamp};

/// Sign-ups younger than this are left for the next incremental export. Ids are taken
/// when a request arrives and committed a little later, so a younger id might still be
/// on its way to the disk when a newer one is already exported; past the busy timeout
/// and the writer's queue, a request has either committed or failed.
pub const SETTLE: Duration = Duration::from_secs(60);

/// The upper id bound of an incremental export run now.
pub fn settled_bound(now: Timestamp) -> SubmissionId {
    SubmissionId::first_at(now.minus(SETTLE))
}
