//! The follow-up columns of `submissions`: where the organisers are with each accepted
//! sign-up, and what the section lists, reminders, digests, gauges and statistics read.
//!
//! Open sign-ups are read through the `submissions_open` index (state, section, time),
//! so a section's list or a gauge never walks the whole table.

use rusqlite::{Connection, OptionalExtension, ToSql, params};
use serde_json::json;

use crate::domain::{CountryCode, FollowupState, SubmissionId, Timestamp, shown_name};

use super::StoreError;
use super::audit::{self, Action};

/// An accepted sign-up as the follow-up shows it: enough to recognise the person and
/// act, nothing more (no address, phone or message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowupEntry {
    pub id: SubmissionId,
    pub created_at: Timestamp,
    /// Since when its section could act on it, which waiting, overdue and time to first
    /// contact count from: the sign-up, or (double opt-in) its confirmation, which may
    /// come days later, or its release by a review (held in a flood, or taken for spam).
    pub waiting_since: Timestamp,
    pub section: String,
    pub country: CountryCode,
    /// The whole name as given (empty when sealed); pages show the first word of it.
    pub name: String,
    /// Sealed storage: the name cannot be read, and the sign-up is shown by its id.
    pub sealed: bool,
    pub state: FollowupState,
    /// When the state last changed (the sign-up's time while `new`).
    pub state_at: Timestamp,
    /// Who changed it last: an admin token's name, `link` or `cli`.
    pub state_by: Option<String>,
    /// The first time it left `new`.
    pub contacted_at: Option<Timestamp>,
}

impl FollowupEntry {
    const COLUMNS: &str = "id, created_at, section, country, name, followup, followup_at, \
        followup_by, contacted_at, coalesce(released_at, confirmed_at, created_at), \
        sealed IS NOT NULL";

    fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        let created_at: Timestamp = row.get(1)?;
        Ok(Self {
            id: row.get(0)?,
            created_at,
            section: row.get(2)?,
            country: row.get(3)?,
            name: row.get(4)?,
            state: row.get(5)?,
            state_at: row.get::<_, Option<Timestamp>>(6)?.unwrap_or(created_at),
            state_by: row.get(7)?,
            contacted_at: row.get(8)?,
            waiting_since: row.get(9)?,
            sealed: row.get(10)?,
        })
    }

    /// What the follow-up pages and mails show for the person: the first word of the
    /// name, or a sealed sign-up's id ([`shown_name`]).
    pub fn first_name(&self) -> String {
        shown_name(&self.name, self.sealed, self.id)
    }
}

/// The sign-up `id`, if it exists and was accepted (only those are followed up).
///
/// # Errors
/// A failed query, or a row this version cannot read.
pub fn entry(
    connection: &Connection,
    id: SubmissionId,
) -> Result<Option<FollowupEntry>, StoreError> {
    Ok(connection
        .prepare_cached(&format!(
            "SELECT {} FROM submissions WHERE id = ?1 AND followup IS NOT NULL",
            FollowupEntry::COLUMNS
        ))?
        .query_row([id], FollowupEntry::from_row)
        .optional()?)
}

/// Sign-ups still `new` (nobody has contacted them), longest waiting first: in
/// `sections` when given (`Some(&[])` selects nothing), waiting since before `before`
/// ([`FollowupEntry::waiting_since`]) when given (the
/// overdue ones, with `before` = now less `followup.remind_after`), at most `limit`
/// when given (pages and mails show the longest-waiting and count the rest with
/// [`waiting_counts`] or [`open_counts`]).
///
/// # Errors
/// A failed query, or a row this version cannot read.
pub fn waiting(
    connection: &Connection,
    sections: Option<&[String]>,
    before: Option<Timestamp>,
    limit: Option<usize>,
) -> Result<Vec<FollowupEntry>, StoreError> {
    let mut conditions = vec!["followup = 'new'".to_owned()];
    let mut values: Vec<&dyn ToSql> = Vec::new();
    if let Some(sections) = sections {
        if sections.is_empty() {
            return Ok(Vec::new());
        }
        let mut alternatives = Vec::new();
        for section in sections {
            values.push(section);
            alternatives.push(format!("section = ?{}", values.len()));
        }
        conditions.push(format!("({})", alternatives.join(" OR ")));
    }
    if let Some(before) = &before {
        values.push(before);
        conditions.push(format!(
            "coalesce(released_at, confirmed_at, created_at) < ?{}",
            values.len()
        ));
    }
    // -1 is SQLite's "no limit".
    let limit = limit.map_or(-1, |limit| i64::try_from(limit).unwrap_or(i64::MAX));
    values.push(&limit);
    let mut statement = connection.prepare(&format!(
        "SELECT {} FROM submissions WHERE {} ORDER BY coalesce(released_at, confirmed_at, created_at), id
         LIMIT ?{}",
        FollowupEntry::COLUMNS,
        conditions.join(" AND "),
        values.len()
    ))?;
    let rows = statement.query_map(values.as_slice(), FollowupEntry::from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// What [`mark`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marked {
    /// The state changed, and an audit entry says so.
    Changed {
        from: FollowupState,
        to: FollowupState,
    },
    /// It already had that state: nothing changed, nothing is recorded.
    Unchanged(FollowupState),
}

/// Sets the follow-up state of sign-up `id` to `to`, by `by` (an admin token's name,
/// `link` or `cli`), at `now`, and records the change in the audit trail, in the
/// caller's transaction. Idempotent: marking the state it has changes nothing. The
/// first time it leaves `new` is kept as `contacted_at`, whatever comes after.
/// `Ok(None)` when there is no accepted sign-up `id` (never was, erased, or spam or a
/// duplicate).
///
/// # Errors
/// A failed statement; the caller's transaction then rolls back.
pub fn mark(
    connection: &Connection,
    id: SubmissionId,
    to: FollowupState,
    by: &str,
    now: Timestamp,
) -> Result<Option<Marked>, StoreError> {
    let from: Option<FollowupState> = connection
        .prepare_cached("SELECT followup FROM submissions WHERE id = ?1 AND followup IS NOT NULL")?
        .query_row([id], |row| row.get(0))
        .optional()?;
    let Some(from) = from else {
        return Ok(None);
    };
    if from == to {
        return Ok(Some(Marked::Unchanged(from)));
    }
    audit::record(
        connection,
        by,
        Action::Followup,
        &json!({ "id": id.to_string(), "from": from.as_str(), "to": to.as_str() }),
        1,
    )?;
    connection
        .prepare_cached(
            "UPDATE submissions SET followup = ?2, followup_at = ?3, followup_by = ?4,
                 contacted_at = CASE WHEN ?2 = 'new' THEN contacted_at
                                     ELSE coalesce(contacted_at, ?3) END
             WHERE id = ?1",
        )?
        .execute(params![id, to, now, by])?;
    Ok(Some(Marked::Changed { from, to }))
}

/// How many sign-ups are open, by section and state (`new` and `contacted`), in the
/// order of their codes; sections and states with none are left out.
///
/// # Errors
/// A failed query, or a row this version cannot read.
pub fn open_counts(
    connection: &Connection,
) -> Result<Vec<(String, FollowupState, u64)>, StoreError> {
    let mut statement = connection.prepare(
        "SELECT section, followup, count(*) FROM submissions
         WHERE followup = 'new' OR followup = 'contacted'
         GROUP BY section, followup ORDER BY section, followup",
    )?;
    let rows = statement.query_map([], |row| {
        Ok((row.get(0)?, row.get(1)?, row.get::<_, i64>(2)?))
    })?;
    rows.map(|row| {
        let (section, state, count) = row?;
        Ok((section, state, u64::try_from(count).unwrap_or(0)))
    })
    .collect()
}

/// A section's sign-ups left waiting: still `new`, waiting since before a bound
/// ([`FollowupEntry::waiting_since`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub section: String,
    pub count: u64,
    /// Since when the one waiting longest has waited.
    pub oldest: Timestamp,
    /// Since when the one waiting shortest has waited: the last to pass the bound.
    pub newest: Timestamp,
}

/// Per section, the sign-ups still `new` waiting since before `before`, sections in
/// name order. Counts and times only: what an escalation and the overdue gauge need.
///
/// # Errors
/// A failed query, or a row this version cannot read.
pub fn waiting_counts(
    connection: &Connection,
    before: Timestamp,
) -> Result<Vec<Waiting>, StoreError> {
    let mut statement = connection.prepare(
        "SELECT section, count(*), min(coalesce(released_at, confirmed_at, created_at)),
                max(coalesce(released_at, confirmed_at, created_at))
         FROM submissions
         WHERE followup = 'new' AND coalesce(released_at, confirmed_at, created_at) < ?1
         GROUP BY section ORDER BY section",
    )?;
    let rows = statement.query_map([before], |row| {
        Ok(Waiting {
            section: row.get(0)?,
            count: u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
            oldest: row.get(2)?,
            newest: row.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// When an accepted sign-up came and when it was first contacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactTime {
    pub section: String,
    /// Since when its section could act on it: the sign-up, or its confirmation.
    pub waiting_since: Timestamp,
    /// `None` while nobody has marked it.
    pub contacted_at: Option<Timestamp>,
}

/// Every accepted sign-up since `since`, oldest first, with its first-contact time:
/// what `joinform followup stats` computes its figures from. Read by a range of the
/// table's key (ids are time-ordered).
///
/// # Errors
/// A failed query, or a row this version cannot read.
pub fn contact_times(
    connection: &Connection,
    since: Timestamp,
) -> Result<Vec<ContactTime>, StoreError> {
    let mut statement = connection.prepare(
        "SELECT section, coalesce(released_at, confirmed_at, created_at), contacted_at FROM submissions
         WHERE id >= ?1 AND created_at >= ?2 AND followup IS NOT NULL
         ORDER BY id",
    )?;
    let rows = statement.query_map(params![SubmissionId::at_or_before(since), since], |row| {
        Ok(ContactTime {
            section: row.get(0)?,
            waiting_since: row.get(1)?,
            contacted_at: row.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A section's accepted sign-ups in `[since, until)`, oldest first (a digest's
/// "new").
///
/// # Errors
/// A failed query, or a row this version cannot read.
pub fn signed_up_between(
    connection: &Connection,
    section: &str,
    since: Timestamp,
    until: Timestamp,
) -> Result<Vec<FollowupEntry>, StoreError> {
    let mut statement = connection.prepare(&format!(
        "SELECT {} FROM submissions
         WHERE id >= ?1 AND created_at >= ?2 AND created_at < ?3 AND section = ?4
           AND followup IS NOT NULL
         ORDER BY id",
        FollowupEntry::COLUMNS
    ))?;
    let rows = statement.query_map(
        params![SubmissionId::at_or_before(since), since, until, section],
        FollowupEntry::from_row,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// How many of a section's sign-ups were last marked in `[since, until)`, by the state
/// they were marked with (a digest's "done"); states with none are left out.
///
/// # Errors
/// A failed query, or a row this version cannot read.
pub fn marked_between(
    connection: &Connection,
    section: &str,
    since: Timestamp,
    until: Timestamp,
) -> Result<Vec<(FollowupState, u64)>, StoreError> {
    let mut statement = connection.prepare(
        "SELECT followup, count(*) FROM submissions
         WHERE section = ?1 AND followup IS NOT NULL AND followup <> 'new'
           AND followup_at >= ?2 AND followup_at < ?3
         GROUP BY followup ORDER BY followup",
    )?;
    let rows = statement.query_map(params![section, since, until], |row| {
        Ok((row.get(0)?, row.get::<_, i64>(1)?))
    })?;
    rows.map(|row| {
        let (state, count) = row?;
        Ok((state, u64::try_from(count).unwrap_or(0)))
    })
    .collect()
}

/// Every accepted sign-up that has been contacted, with its section and both times: the
/// time-to-first-contact histogram `/metrics` computes at each scrape. Only what
/// retention keeps is here.
///
/// # Errors
/// A failed query, or a row this version cannot read.
pub fn first_contacts(connection: &Connection) -> Result<Vec<ContactTime>, StoreError> {
    let mut statement = connection.prepare(
        "SELECT section, coalesce(released_at, confirmed_at, created_at), contacted_at FROM submissions
         WHERE followup IS NOT NULL AND contacted_at IS NOT NULL",
    )?;
    let rows = statement.query_map([], |row| {
        Ok(ContactTime {
            section: row.get(0)?,
            waiting_since: row.get(1)?,
            contacted_at: row.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::Database;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }

    /// A fresh database with three sign-ups: two accepted in Norway (one older), one
    /// accepted in France, and one spam row (no follow-up).
    fn database() -> (tempfile::TempDir, rusqlite::Connection, Vec<SubmissionId>) {
        let dir = tempfile::tempdir().unwrap();
        let database = Database::new(dir.path().join("joinform.db"), Duration::from_secs(1));
        database.prepare().unwrap();
        let connection = database.connect().unwrap();
        let mut ids = Vec::new();
        for (created, name, section, status) in [
            (
                "2026-11-01T10:00:00.000000Z",
                "Kari Nordmann",
                "Norway",
                "accepted",
            ),
            (
                "2026-11-03T10:00:00.000000Z",
                "Ola Nordmann",
                "Norway",
                "accepted",
            ),
            (
                "2026-11-02T10:00:00.000000Z",
                "Jeanne Martin",
                "France",
                "accepted",
            ),
            ("2026-11-02T11:00:00.000000Z", "Spam Bot", "France", "spam"),
        ] {
            // Ids in sign-up order, as the server's time-ordered ids are.
            let id = SubmissionId::first_at(at(created));
            let followup = (status == "accepted").then_some("new");
            connection
                .execute(
                    "INSERT INTO submissions (id, created_at, name, email, country, consent,
                                              status, section, email_key, followup, followup_at)
                     VALUES (?1, ?2, ?3, 'x@example.org', 'NO', 1, ?4, ?5, 'x@example.org',
                             ?6, CASE WHEN ?6 IS NULL THEN NULL ELSE ?2 END)",
                    params![id, at(created), name, status, section, followup],
                )
                .unwrap();
            ids.push(id);
        }
        (dir, connection, ids)
    }

    #[test]
    fn marking_is_idempotent_keeps_the_first_contact_and_is_audited() {
        let (_dir, connection, ids) = database();
        let first = at("2026-11-04T09:00:00.000000Z");
        assert_eq!(
            mark(&connection, ids[0], FollowupState::Contacted, "link", first).unwrap(),
            Some(Marked::Changed {
                from: FollowupState::New,
                to: FollowupState::Contacted
            })
        );
        assert_eq!(
            mark(
                &connection,
                ids[0],
                FollowupState::Contacted,
                "cli",
                at("2026-11-05T09:00:00.000000Z")
            )
            .unwrap(),
            Some(Marked::Unchanged(FollowupState::Contacted))
        );
        let later = at("2026-11-06T09:00:00.000000Z");
        mark(&connection, ids[0], FollowupState::Joined, "ops", later).unwrap();
        let entry = entry(&connection, ids[0]).unwrap().unwrap();
        assert_eq!(entry.state, FollowupState::Joined);
        assert_eq!(entry.state_at, later);
        assert_eq!(entry.state_by.as_deref(), Some("ops"));
        assert_eq!(entry.contacted_at, Some(first), "the first contact is kept");
        assert_eq!(entry.first_name(), "Kari");
        let audited: Vec<(String, String)> = connection
            .prepare("SELECT actor, details FROM audit WHERE action = 'followup' ORDER BY id")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            audited.len(),
            2,
            "the unchanged mark is not a change: {audited:?}"
        );
        assert_eq!(audited[0].0, "link");
        assert!(
            audited[1].1.contains(r#""from":"contacted""#),
            "{:?}",
            audited[1]
        );
        assert!(
            audited[1].1.contains(r#""to":"joined""#),
            "{:?}",
            audited[1]
        );
        // Spam and unknown ids are not followed up.
        assert_eq!(
            mark(&connection, ids[3], FollowupState::Contacted, "cli", later).unwrap(),
            None
        );
        assert_eq!(
            mark(
                &connection,
                SubmissionId::generate(),
                FollowupState::Contacted,
                "cli",
                later
            )
            .unwrap(),
            None
        );
        assert!(entry_is_none(&connection, ids[3]));
    }

    fn entry_is_none(connection: &Connection, id: SubmissionId) -> bool {
        entry(connection, id).unwrap().is_none()
    }

    #[test]
    fn waiting_lists_new_sign_ups_oldest_first_by_section_and_age() {
        let (_dir, connection, ids) = database();
        let far = at("2100-01-01T00:00:00.000000Z");
        let norway = ["Norway".to_owned()];
        let all: Vec<SubmissionId> = waiting(&connection, None, None, None)
            .unwrap()
            .iter()
            .map(|entry| entry.id)
            .collect();
        assert_eq!(all, [ids[0], ids[2], ids[1]]);
        let listed = waiting(&connection, Some(&norway), None, None).unwrap();
        assert_eq!(
            listed.iter().map(|e| e.id).collect::<Vec<_>>(),
            [ids[0], ids[1]]
        );
        assert!(
            waiting(&connection, Some(&[]), None, None)
                .unwrap()
                .is_empty()
        );
        let first = waiting(&connection, Some(&norway), None, Some(1)).unwrap();
        assert_eq!(first.iter().map(|e| e.id).collect::<Vec<_>>(), [ids[0]]);
        let overdue = waiting(
            &connection,
            Some(&norway),
            Some(at("2026-11-02T00:00:00.000000Z")),
            None,
        )
        .unwrap();
        assert_eq!(overdue.iter().map(|e| e.id).collect::<Vec<_>>(), [ids[0]]);

        mark(
            &connection,
            ids[0],
            FollowupState::Contacted,
            "cli",
            at("2026-11-04T00:00:00.000000Z"),
        )
        .unwrap();
        assert_eq!(
            waiting_counts(&connection, at("2026-11-10T00:00:00.000000Z")).unwrap(),
            [
                Waiting {
                    section: "France".into(),
                    count: 1,
                    oldest: at("2026-11-02T10:00:00.000000Z"),
                    newest: at("2026-11-02T10:00:00.000000Z"),
                },
                Waiting {
                    section: "Norway".into(),
                    count: 1,
                    oldest: at("2026-11-03T10:00:00.000000Z"),
                    newest: at("2026-11-03T10:00:00.000000Z"),
                },
            ]
        );
        assert_eq!(
            open_counts(&connection).unwrap(),
            [
                ("France".to_owned(), FollowupState::New, 1),
                ("Norway".to_owned(), FollowupState::Contacted, 1),
                ("Norway".to_owned(), FollowupState::New, 1),
            ]
        );
        assert_eq!(
            marked_between(
                &connection,
                "Norway",
                at("2026-11-03T00:00:00.000000Z"),
                far
            )
            .unwrap(),
            [(FollowupState::Contacted, 1)]
        );
        assert!(
            marked_between(
                &connection,
                "Norway",
                at("2026-11-05T00:00:00.000000Z"),
                far
            )
            .unwrap()
            .is_empty()
        );
        // The end is excluded: a sign-up or mark at the boundary is the next window's.
        assert!(
            signed_up_between(
                &connection,
                "Norway",
                at("2026-11-02T00:00:00.000000Z"),
                at("2026-11-03T10:00:00.000000Z")
            )
            .unwrap()
            .is_empty()
        );
        assert!(
            marked_between(
                &connection,
                "Norway",
                at("2026-11-03T00:00:00.000000Z"),
                at("2026-11-04T00:00:00.000000Z")
            )
            .unwrap()
            .is_empty()
        );
        let since = signed_up_between(
            &connection,
            "Norway",
            at("2026-11-02T00:00:00.000000Z"),
            far,
        )
        .unwrap();
        assert_eq!(since.iter().map(|e| e.id).collect::<Vec<_>>(), [ids[1]]);
        let times = contact_times(&connection, at("2026-11-01T00:00:00.000000Z")).unwrap();
        assert_eq!(times.len(), 3, "spam is not followed up");
        assert_eq!(
            times[0].contacted_at,
            Some(at("2026-11-04T00:00:00.000000Z"))
        );
    }
}
