//! Erasure on request: every submission of one address goes, with its notifications,
//! and the audit trail keeps only a keyed hash of the address.

use serde::Serialize;
use serde_json::json;

use crate::domain::{MemberEmail, Timestamp};
use crate::secret::{KeyPurpose, ServerSecret, keyed_hash};
use crate::store::audit::{self, Action};
use crate::store::{Erasing, StoreError, submissions};

/// What an erasure removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ForgetReport {
    pub submissions: u64,
    /// Notifications not yet sent that will now never be.
    pub unsent_notifications: u64,
}

/// The address as erasure matches it: as `MemberEmail::key` made it when stored.
/// Anything that is not an address joinform would store cannot be in the database.
pub fn address_key(raw: &str) -> Option<String> {
    MemberEmail::parse(raw.trim()).ok().map(|email| email.key())
}

/// Stands in for the address in the audit trail: the same address always gives the
/// same hash, so a later request can be matched to an earlier erasure, but without the
/// audit key (`audit.key`, kept apart from the token secret so that changing that one
/// keeps these matchable) the hash cannot be turned back into an address or tested
/// against guesses. Hex HMAC-SHA256 of the address key.
pub fn address_hash(secret: &ServerSecret, key: &str) -> String {
    hex::encode(keyed_hash(
        &secret.key(KeyPurpose::AuditAddress),
        key.as_bytes(),
    ))
}

/// The audit hash for a stored `email_key`: a clear row's key (an address, with its
/// `@`) is hashed; a sealed row's already is that hash ([`address_hash`]).
pub fn stored_key_hash(secret: &ServerSecret, stored: &str) -> String {
    if stored.contains('@') {
        address_hash(secret, stored)
    } else {
        stored.to_owned()
    }
}

/// Deletes every submission of `key`, stored in clear or sealed (then its `email_key`
/// is `address_hash`), with their outbox rows (by cascade), and records it. Runs
/// inside [`crate::store::erase`], which returns the freed pages to the file system
/// and empties the WAL once it commits. The entry carries `audit_key_check` (the
/// check value of the audit key `address_hash` was made with,
/// [`crate::secret::audit_key_check`]), so a replay of it elsewhere can tell whether
/// its key is the same.
///
/// # Errors
/// SQLite's error; the routine then rolls everything back.
pub fn forget(
    connection: &Erasing<'_>,
    key: &str,
    address_hash: &str,
    audit_key_check: &str,
    actor: &str,
) -> Result<ForgetReport, StoreError> {
    let erased = submissions::erase_address(connection, key, address_hash, None)?;
    let report = ForgetReport {
        submissions: erased.submissions,
        unsent_notifications: erased.unsent_notifications,
    };
    audit::record(
        connection,
        actor,
        Action::Forget,
        &json!({
            "address_hash": address_hash,
            "audit_key_check": audit_key_check,
            "submissions": report.submissions,
            "unsent_notifications": report.unsent_notifications,
        }),
        report.submissions,
    )?;
    Ok(report)
}

/// Re-applies an erasure recorded at `erased_at` in another copy of the database (the
/// one a restore replaced, a newer backup) by its `address_hash` alone: deletes the
/// rows signed up by then whose stored key is `key` (found by hashing the stored keys,
/// see [`stored_key_hash`]) or `address_hash` (sealed rows). A sign-up made after the
/// erasure is a new one and stays. Audited as `forget` with `"replay": true` only when
/// a row went, so running a replay again leaves no trace.
///
/// # Errors
/// SQLite's error; the routine then rolls everything back.
pub fn forget_replayed(
    connection: &Erasing<'_>,
    key: &str,
    address_hash: &str,
    erased_at: Timestamp,
    actor: &str,
    audit_key_check: &str,
) -> Result<ForgetReport, StoreError> {
    let erased = submissions::erase_address(connection, key, address_hash, Some(erased_at))?;
    let report = ForgetReport {
        submissions: erased.submissions,
        unsent_notifications: erased.unsent_notifications,
    };
    if report.submissions > 0 {
        audit::record(
            connection,
            actor,
            Action::Forget,
            &json!({
                "replay": true,
                "address_hash": address_hash,
                "audit_key_check": audit_key_check,
                "submissions": report.submissions,
                "unsent_notifications": report.unsent_notifications,
            }),
            report.submissions,
        )?;
    }
    Ok(report)
}
