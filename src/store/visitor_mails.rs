//! The `visitor_mails` table: when each visitor's address last had a mail queued, so
//! that an address gets at most one mail in 24 hours, whatever asks for it (sign-ups,
//! `/my-data`) and even across an erasure. Rows hold a keyed hash of the address, never
//! the address, and are dropped once a day old.

use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use crate::domain::{CountryCode, MailKind, SubmissionId, Timestamp};

use super::StoreError;

/// One mail per address per this long.
pub const PER_ADDRESS: Duration = Duration::from_secs(24 * 3600);

/// Takes the address's mail for the day at `now`: `true` (and records `now`) when its
/// last mail was queued at least [`PER_ADDRESS`] ago or never; `false` otherwise,
/// changing nothing. The caller owns the transaction.
///
/// # Errors
/// A failed statement.
pub fn claim(
    connection: &Connection,
    address_hash: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let changed = connection
        .prepare_cached(
            "INSERT INTO visitor_mails (address_hash, last_at) VALUES (?1, ?2)
             ON CONFLICT (address_hash) DO UPDATE SET last_at = excluded.last_at
                 WHERE last_at <= ?3",
        )?
        .execute(params![address_hash, now, now.minus(PER_ADDRESS)])?;
    Ok(changed == 1)
}

/// Drops the rows a day old or older at `now`: they no longer hold anything back.
///
/// # Errors
/// A failed statement.
pub fn sweep(connection: &Connection, now: Timestamp) -> Result<usize, StoreError> {
    Ok(connection.execute(
        "DELETE FROM visitor_mails WHERE last_at <= ?1",
        [now.minus(PER_ADDRESS)],
    )?)
}

/// A visitor asked on `/my-data` for what is stored under address key `key`: queues
/// an access-link mail about their newest sign-up, when one is stored and the address
/// had no mail in the last day. Returns whether a mail was queued.
///
/// Either way the transaction writes: when nothing is queued (an unknown address, or
/// one that had its mail today), a placeholder row is written to `visitor_mails` and
/// deleted again. A transaction that changed no page commits without writing the WAL
/// or syncing it, so without this an answer to a known address would take a disk sync
/// longer than one to an unknown address, and its timing would tell who signed up.
/// What still differs is a statement or two of work in memory (tens of microseconds,
/// far below a network's jitter, and the pages' rate limit bounds the samples).
///
/// # Errors
/// A failed statement.
pub fn request_access(
    connection: &Connection,
    key: &str,
    address_hash: &str,
    message_domain: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let row = SubmissionId::generate();
    Ok(request_access_as(connection, row, key, address_hash, message_domain, now)?.is_some())
}

/// An access mail [`request_access_as`] queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessQueued {
    /// The sign-up it is about: the address's newest that is not spam.
    pub about: SubmissionId,
    pub section: String,
    pub country: CountryCode,
    /// The language stored for mails to the visitor, if any.
    pub visitor_language: Option<String>,
}

/// As [`request_access`], queuing the mail under outbox row id `row` (chosen by the
/// caller, so a sealed installation's request can build the mail for that row), and
/// telling what it queued it about. `key` is what `email_key` holds for the address:
/// the address itself, or in a sealed installation its keyed hash.
///
/// # Errors
/// A failed statement.
pub fn request_access_as(
    connection: &Connection,
    row: SubmissionId,
    key: &str,
    address_hash: &str,
    message_domain: &str,
    now: Timestamp,
) -> Result<Option<AccessQueued>, StoreError> {
    let queued = match super::submissions::newest_of_address(connection, key)? {
        Some(newest) if claim(connection, address_hash, now)? => {
            super::outbox::queue_about_as(
                connection,
                row,
                MailKind::Access,
                newest.about,
                &newest.section,
                message_domain,
                now,
            )?;
            Some(newest)
        }
        _ => None,
    };
    if queued.is_none() {
        write_placeholder(connection, now)?;
    }
    Ok(queued)
}

/// Writes a row under a random hash (shaped as an address hash, so it lands where one
/// would) and deletes it: the table ends as it was, but its page is written at commit.
fn write_placeholder(connection: &Connection, now: Timestamp) -> Result<(), StoreError> {
    let placeholder: String = std::iter::repeat_with(|| fastrand::digit(16))
        .take(64)
        .collect();
    connection
        .prepare_cached("INSERT INTO visitor_mails (address_hash, last_at) VALUES (?1, ?2)")?
        .execute(params![placeholder, now])?;
    connection
        .prepare_cached("DELETE FROM visitor_mails WHERE address_hash = ?1")?
        .execute([placeholder])?;
    Ok(())
}

/// When the address last had a mail queued, if within the last day (for tests and
/// `joinform outbox`).
///
/// # Errors
/// A failed query.
pub fn last_at(
    connection: &Connection,
    address_hash: &str,
) -> Result<Option<Timestamp>, StoreError> {
    Ok(connection
        .query_row(
            "SELECT last_at FROM visitor_mails WHERE address_hash = ?1",
            [address_hash],
            |row| row.get(0),
        )
        .optional()?)
}

#[cfg(test)]
mod tests {
    use crate::store::test_support::database;
    use rusqlite::TransactionBehavior;

    use super::*;
    use crate::domain::SubmissionId;
    use crate::store::Database;
    use crate::store::submissions::{SubmissionRecord, admit};

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }

    const T0: &str = "2026-11-30T12:00:00.000000Z";

    #[test]
    fn an_address_gets_one_mail_a_day_and_a_refused_claim_moves_nothing() {
        let (_dir, connection) = database();
        let t0 = at(T0);
        assert!(claim(&connection, "a", t0).unwrap(), "never mailed");
        assert!(!claim(&connection, "a", t0).unwrap(), "the same instant");
        assert!(claim(&connection, "b", t0).unwrap(), "another address");
        let almost = at("2026-12-01T11:59:59.999999Z");
        assert!(
            !claim(&connection, "a", almost).unwrap(),
            "a microsecond short"
        );
        // Refused claims did not restart the day: it still counts from the first.
        assert_eq!(last_at(&connection, "a").unwrap(), Some(t0));
        let day_later = at("2026-12-01T12:00:00.000000Z");
        assert!(
            claim(&connection, "a", day_later).unwrap(),
            "24 hours later"
        );
        assert_eq!(last_at(&connection, "a").unwrap(), Some(day_later));
        assert!(!claim(&connection, "a", day_later).unwrap());
        assert_eq!(last_at(&connection, "c").unwrap(), None);
    }

    #[test]
    fn the_sweep_drops_rows_a_day_old_and_keeps_younger_ones() {
        let (_dir, connection) = database();
        for (hash, time) in [
            ("old", "2026-11-29T11:00:00.000000Z"),
            ("exactly_a_day", "2026-11-29T12:00:00.000000Z"),
            ("young", "2026-11-30T11:00:00.000000Z"),
        ] {
            assert!(claim(&connection, hash, at(time)).unwrap());
        }
        assert_eq!(sweep(&connection, at(T0)).unwrap(), 2);
        assert_eq!(last_at(&connection, "old").unwrap(), None);
        assert_eq!(last_at(&connection, "exactly_a_day").unwrap(), None);
        assert_eq!(
            last_at(&connection, "young").unwrap(),
            Some(at("2026-11-30T11:00:00.000000Z"))
        );
        // What the sweep dropped held nothing back; what it kept still does.
        assert!(claim(&connection, "old", at(T0)).unwrap());
        assert!(!claim(&connection, "young", at(T0)).unwrap());
        assert_eq!(sweep(&connection, at(T0)).unwrap(), 0);
    }

    /// The access rows queued, by the sign-up they are about.
    fn access_rows(connection: &Connection) -> Vec<SubmissionId> {
        connection
            .prepare("SELECT submission_id FROM outbox WHERE kind = 'access'")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// Stores a sign-up of `email` made `minutes_ago` before `now`, spam or not.
    fn stored(
        connection: &Connection,
        email: &str,
        now: Timestamp,
        minutes_ago: u64,
        spam: bool,
    ) -> SubmissionId {
        let submission =
            crate::store::test_support::submission("Claim prize at evil example", email);
        let mut record = SubmissionRecord::new(submission, "Norway", "example.org");
        record.created_at = now.minus(Duration::from_secs(minutes_ago * 60));
        record.rules.duplicate_window = Duration::ZERO;
        if spam {
            record.spam_reasons = vec![crate::domain::SpamReason::LinkInName];
        }
        admit(connection, &record).unwrap();
        record.id
    }

    #[test]
    fn mails_held_by_the_hourly_cap_are_released_and_nothing_else() {
        let (_dir, connection) = database();
        let t0 = at(T0);
        let id = stored(&connection, "kari@example.org", t0, 10, false);
        let held = super::super::outbox::queue_about(
            &connection,
            MailKind::Notice,
            id,
            "Norway",
            "example.org",
            t0,
        )
        .unwrap();
        let tried = super::super::outbox::queue_about(
            &connection,
            MailKind::Access,
            id,
            "Norway",
            "example.org",
            t0,
        )
        .unwrap();
        let later = t0.plus(Duration::from_secs(3600));
        super::super::outbox::record_attempt(
            &connection,
            held,
            &super::super::outbox::Attempt::Deferred { at: later },
            t0,
        )
        .unwrap();
        super::super::outbox::record_attempt(
            &connection,
            tried,
            &super::super::outbox::Attempt::Retry {
                at: later,
                error: "421".into(),
            },
            t0,
        )
        .unwrap();
        assert_eq!(
            super::super::outbox::release_waiting_visitor_mails(&connection, t0).unwrap(),
            1
        );
        let due: Vec<SubmissionId> = super::super::outbox::due(&connection, t0, 10)
            .unwrap()
            .iter()
            .map(|mail| mail.id())
            .collect();
        assert!(due.contains(&held), "the held mail is due again");
        assert!(!due.contains(&tried), "a retry keeps its backoff");
    }

    #[test]
    fn an_access_request_never_mails_about_spam() {
        let (_dir, connection) = database();
        let t0 = at(T0);
        // Only spam under the address: no mail, so a spammer's words never reach it.
        stored(&connection, "victim@example.org", t0, 10, true);
        assert!(
            !request_access(&connection, "victim@example.org", "h1", "example.org", t0).unwrap()
        );
        assert!(access_rows(&connection).is_empty());
        // Spam newer than a real sign-up: the mail is about the real one.
        let real = stored(&connection, "kari@example.org", t0, 30, false);
        stored(&connection, "kari@example.org", t0, 5, true);
        assert!(request_access(&connection, "kari@example.org", "h2", "example.org", t0).unwrap());
        assert_eq!(access_rows(&connection), [real]);
    }

    #[test]
    fn an_access_request_queues_one_mail_about_the_newest_sign_up_of_a_known_address() {
        let (_dir, connection) = database();
        let t0 = at(T0);
        let mut ids = Vec::new();
        for minutes in [0, 5] {
            let submission =
                crate::store::test_support::submission("Kari Nordmann", "Kari@Example.org");
            let mut record = SubmissionRecord::new(submission, "Norway", "example.org");
            record.created_at = t0.minus(Duration::from_secs(3600 - minutes * 60));
            record.rules.duplicate_window = Duration::ZERO;
            admit(&connection, &record).unwrap();
            ids.push(record.id);
        }
        let key = "kari@example.org";
        // Unknown address: nothing queued, and nothing recorded against it.
        assert!(
            !request_access(&connection, "nobody@example.org", "h0", "example.org", t0).unwrap()
        );
        assert_eq!(last_at(&connection, "h0").unwrap(), None);
        assert!(request_access(&connection, key, "h1", "example.org", t0).unwrap());
        assert_eq!(access_rows(&connection), [ids[1]]);
        // A second request the same day gets nothing more.
        let later = t0.plus(Duration::from_secs(3600));
        assert!(!request_access(&connection, key, "h1", "example.org", later).unwrap());
        assert_eq!(access_rows(&connection).len(), 1);
    }

    /// What an access request writes, committed: whether it queued a mail, and how
    /// much the WAL grew.
    fn request(connection: &mut Connection, wal: &std::path::Path, key: &str) -> (bool, u64) {
        let size = || std::fs::metadata(wal).map_or(0, |m| m.len());
        let before = size();
        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();
        let hash = format!("{:0>64}", key.len());
        let queued =
            request_access(&transaction, key, &hash, "example.org", Timestamp::now()).unwrap();
        transaction.commit().unwrap();
        (queued, size() - before)
    }

    #[test]
    fn every_answer_to_an_access_request_writes_the_wal_and_leaves_only_real_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("joinform.db");
        let database = Database::new(&path, Duration::from_secs(1));
        database.prepare().unwrap();
        let mut connection = database.connect().unwrap();
        connection
            .execute(
                "INSERT INTO submissions (id, created_at, name, email, country, consent,
                                          section, email_key)
                 VALUES ('0190a5a0-0000-7000-8000-000000000001',
                         '2026-01-01T00:00:00.000000Z', 'A', 'a@example.org', 'NO', 1,
                         'Norway', 'a@example.org')",
                [],
            )
            .unwrap();
        let wal = dir.path().join("joinform.db-wal");
        let known = request(&mut connection, &wal, "a@example.org");
        let again = request(&mut connection, &wal, "a@example.org");
        let unknown = request(&mut connection, &wal, "nobody@example.org");
        assert!(
            known.0,
            "the first request of a stored address queues its mail"
        );
        assert!(!again.0 && !unknown.0);
        for (case, (_, grew)) in [("known", known), ("again", again), ("unknown", unknown)] {
            assert!(grew > 0, "{case}: the commit wrote nothing");
        }
        let rows: i64 = connection
            .query_row("SELECT count(*) FROM visitor_mails", [], |row| row.get(0))
            .unwrap();
        assert_eq!(rows, 1, "only the known address's day is held");
    }
}
