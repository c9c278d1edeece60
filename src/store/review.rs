//! Review of the sign-ups nobody was told of: those held during a flood (`held`) and
//! those the spam checks flagged (`spam`). They are listed, released (accepted after
//! all, and notified as usual) or discarded (erased). A person held or wrongly flagged
//! is otherwise lost to the organisers.

use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, ToSql, params};
use serde_json::json;

use super::audit::{self, Action};
use super::submissions::{accept, count};
use super::{Erasing, StoreError};
use crate::domain::{
    CountryCode, MailKind, ReviewStatus, SubmissionId, SubmissionStatus, Timestamp, shown_name,
};

/// One held or spam sign-up as a review lists it: no address, phone, message or full
/// name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flagged {
    pub id: SubmissionId,
    pub created_at: Timestamp,
    pub section: String,
    pub country: CountryCode,
    /// The first word of the name, enough to recognise a person among bots; a sealed
    /// sign-up's id ([`shown_name`]).
    pub first_name: String,
    pub status: ReviewStatus,
    /// Why, as stored: the spam reasons' codes (`honeypot`, `link_in_name`…), or for a
    /// held sign-up the flood's reason and what became of its proof of work
    /// (`over_baseline`, `no_proof`).
    pub reasons: Vec<String>,
}

/// What [`flagged`] found: the newest sign-ups, and how many of each status there are
/// in all (within the same filters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    pub items: Vec<Flagged>,
    pub held: u64,
    pub spam: u64,
}

impl Listing {
    /// Every sign-up the filters select, shown or not.
    pub fn total(&self) -> u64 {
        self.held.saturating_add(self.spam)
    }
}

/// The newest `limit` sign-ups of `statuses` (in `sections` only, when given;
/// `Some(&[])` selects nothing), newest first, and how many of each status there are
/// in all.
///
/// # Errors
/// A failed query.
pub fn flagged(
    connection: &Connection,
    statuses: &[ReviewStatus],
    sections: Option<&[String]>,
    limit: u32,
) -> Result<Listing, StoreError> {
    let mut listing = Listing::default();
    if sections.is_some_and(<[String]>::is_empty) {
        return Ok(listing);
    }
    let mut values: Vec<&dyn ToSql> = Vec::new();
    let mut in_sections = String::new();
    if let Some(sections) = sections {
        let places: Vec<String> = sections
            .iter()
            .map(|section| {
                values.push(section);
                format!("?{}", values.len())
            })
            .collect();
        in_sections = format!(" AND section IN ({})", places.join(", "));
    }
    values.push(&limit);
    let limit_place = values.len();
    // One status at a time: `status = 'held'` lets SQLite use the held sign-ups' own
    // index (a flood may leave many), which a condition on both statuses would not.
    for &status in statuses {
        // The code is our own constant, never input: it is written into the SQL.
        let selected = format!("status = '{}'{in_sections}", status.as_str());
        let number: i64 = connection.query_row(
            &format!("SELECT count(*) FROM submissions WHERE {selected}"),
            &values[..limit_place - 1],
            |row| row.get(0),
        )?;
        let number = u64::try_from(number).unwrap_or(0);
        match status {
            ReviewStatus::Held => listing.held = number,
            ReviewStatus::Spam => listing.spam = number,
        }
        let mut statement = connection.prepare(&format!(
            "SELECT id, created_at, section, country, name, spam_reasons, sealed IS NOT NULL
             FROM submissions
             WHERE {selected} ORDER BY created_at DESC, id DESC LIMIT ?{limit_place}"
        ))?;
        let rows = statement.query_map(values.as_slice(), |row| {
            let name: String = row.get(4)?;
            let reasons: Option<String> = row.get(5)?;
            let id = row.get(0)?;
            Ok(Flagged {
                id,
                created_at: row.get(1)?,
                section: row.get(2)?,
                country: row.get(3)?,
                first_name: shown_name(&name, row.get(6)?, id),
                status,
                // The column is CHECKed to be valid JSON; a list of codes is all we
                // write.
                reasons: reasons
                    .and_then(|text| serde_json::from_str(&text).ok())
                    .unwrap_or_default(),
            })
        })?;
        for row in rows {
            listing.items.push(row?);
        }
    }
    // Newest first across both statuses, as each query ordered its own.
    listing
        .items
        .sort_by_key(|item| std::cmp::Reverse((item.created_at, item.id)));
    listing
        .items
        .truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(listing)
}

/// What a release or a discard did with one id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Outcome {
    /// Accepted, its notification queued.
    Released,
    /// Its address had a sign-up the section heard of within the duplicate window:
    /// made a `duplicate`, nobody told again.
    Duplicate,
    /// Of a double opt-in section: made `unconfirmed` and its visitor mailed a
    /// confirmation link, as on arrival; its section hears of them once they confirm.
    ConfirmationSent,
    /// Of a double opt-in section, and no confirmation link can go now (see
    /// [`release`]): left as it is.
    NeedsConfirmation,
    /// Erased.
    Discarded,
    /// No held or spam sign-up the reviewer may see (unknown, erased, accepted
    /// already, or of a section outside the reviewer's scope): left alone.
    NotFound,
}

impl Outcome {
    /// The code: `released`, `duplicate`, `confirmation_sent`, `needs_confirmation`,
    /// `discarded` or `not_found`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// What a release or a discard did: each id given once, in the order given, with its
/// [`Outcome`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reviewed(pub Vec<(SubmissionId, Outcome)>);

impl Reviewed {
    /// The ids that came to `outcome`, in the order given.
    pub fn with(&self, outcome: Outcome) -> Vec<SubmissionId> {
        self.0
            .iter()
            .filter(|(_, came_to)| *came_to == outcome)
            .map(|(id, _)| *id)
            .collect()
    }

    /// What became of `id`, if it was given.
    pub fn outcome_of(&self, id: SubmissionId) -> Option<Outcome> {
        self.0
            .iter()
            .find(|(given, _)| *given == id)
            .map(|(_, outcome)| *outcome)
    }
}

/// Who reviews: the audit's actor (`cli`, or an admin token's name), and the sections
/// they may see. A sign-up of a section they may not see is treated exactly as an
/// unknown id, so a scoped token learns nothing of other sections.
pub struct Reviewer<'a> {
    pub actor: &'a str,
    pub may_see: &'a dyn Fn(&str) -> bool,
}

/// What a release needs besides the ids: the time, the duplicate window
/// (`spam.duplicate_window`), the sender's domain for Message-IDs, which sections ask
/// their visitors to confirm (double opt-in), and how to ask them.
pub struct Release<'a> {
    pub now: Timestamp,
    pub duplicate_window: Duration,
    pub message_domain: &'a str,
    pub confirms: &'a dyn Fn(&str) -> bool,
    /// `None`: no confirmation link can be mailed (no section mails its visitors).
    pub confirming: Option<Confirming<'a>>,
}

/// How a release mails a confirmation link to the visitor of a double opt-in section.
pub struct Confirming<'a> {
    /// The keyed hash of an address key that holds its one mail a day
    /// (`visitor_mails`), as the join handler makes it.
    pub address_hash: &'a dyn Fn(&str) -> String,
}

/// A stored held or spam sign-up the reviewer may see.
struct Pending {
    section: String,
    email_key: String,
}

/// The held or spam sign-up `id`, if the reviewer may see it.
fn pending(
    connection: &Connection,
    id: SubmissionId,
    reviewer: &Reviewer<'_>,
) -> Result<Option<Pending>, StoreError> {
    let found: Option<(SubmissionStatus, Pending)> = connection
        .prepare_cached("SELECT status, section, email_key FROM submissions WHERE id = ?1")?
        .query_row([id], |row| {
            Ok((
                row.get(0)?,
                Pending {
                    section: row.get(1)?,
                    email_key: row.get(2)?,
                },
            ))
        })
        .optional()?;
    Ok(found.and_then(|(status, found)| {
        let reviewable = matches!(status, SubmissionStatus::Held | SubmissionStatus::Spam);
        (reviewable && (reviewer.may_see)(&found.section)).then_some(found)
    }))
}

/// `ids` without repeats, in the order given.
fn once_each(ids: &[SubmissionId]) -> Vec<SubmissionId> {
    let mut seen = Vec::with_capacity(ids.len());
    for &id in ids {
        if !seen.contains(&id) {
            seen.push(id);
        }
    }
    seen
}

/// Releases the held and spam sign-ups among `ids`, in the caller's (`IMMEDIATE`)
/// transaction. Each becomes `accepted` through the step a confirmation takes, so its
/// follow-up starts `new` from `release.now` and its notification is queued for the
/// running server's worker. Its `spam_reasons` are kept: the record of why it was held
/// or flagged, for judging the checks later (nothing reads them to decide anything). No
/// mail goes to the visitor (but for a confirmation link, below).
///
/// A person is never notified twice: when the sign-up's address has an `accepted`
/// sign-up the section heard of within `release.duplicate_window` before `now` (it came,
/// was confirmed, or was released in that time, this release's earlier ids included),
/// the sign-up becomes a `duplicate` instead, as it would have on arrival.
///
/// A sign-up of a section where `release.confirms(section)` (double opt-in) is not
/// accepted: its section may hear of a person only once that person confirmed, which
/// an operator cannot do for them. It becomes `unconfirmed` and its visitor is mailed a
/// confirmation link, as on arrival (the address's one mail a day claimed). It is left
/// as it is, [`Outcome::NeedsConfirmation`], when that cannot be done now: no
/// `release.confirming`, or a mail to the address in the last day (a release tomorrow
/// can send it). Its visitor has `form.confirm_within` from the release (`released_at`),
/// however long it was held: the link, the pages and the purge all count from then.
///
/// Released twice, a sign-up is `not_found` the second time: it is held or spam no
/// more. Audited as `release` by the reviewer, with the ids changed (`duplicates`: those
/// made duplicates; `asked_to_confirm`: those mailed a confirmation link) and their
/// count, when any changed.
///
/// # Errors
/// A failed statement; the caller's transaction then rolls back.
pub fn release(
    connection: &Connection,
    ids: &[SubmissionId],
    release: &Release<'_>,
    reviewer: &Reviewer<'_>,
) -> Result<Reviewed, StoreError> {
    let window_start = release.now.minus(release.duplicate_window);
    // When the section was told: on arrival (`created_at`), on confirmation
    // (`confirmed_at`), or on a release (`released_at`, an earlier one of this batch
    // included).
    let mut heard_of = connection.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM submissions
                        WHERE email_key = ?1 AND status = 'accepted'
                          AND (created_at > ?2 OR confirmed_at > ?2 OR released_at > ?2))",
    )?;
    let mut outcomes = Vec::new();
    for id in once_each(ids) {
        let outcome = match pending(connection, id, reviewer)? {
            None => Outcome::NotFound,
            Some(found) => {
                let recent: bool =
                    heard_of.query_row(params![found.email_key, window_start], |row| row.get(0))?;
                if recent {
                    connection.execute(
                        "UPDATE submissions SET status = 'duplicate' WHERE id = ?1",
                        [id],
                    )?;
                    Outcome::Duplicate
                } else if (release.confirms)(&found.section) {
                    ask_to_confirm(connection, id, &found, release)?
                } else {
                    accept(
                        connection,
                        id,
                        &found.section,
                        release.now,
                        release.message_domain,
                    )?;
                    // Its section can act on it from now: follow-up waits count from here.
                    connection.execute(
                        "UPDATE submissions SET released_at = ?2 WHERE id = ?1",
                        params![id, release.now],
                    )?;
                    Outcome::Released
                }
            }
        };
        outcomes.push((id, outcome));
    }
    let reviewed = Reviewed(outcomes);
    let changed: Vec<SubmissionId> = reviewed
        .0
        .iter()
        .filter(|(_, outcome)| {
            matches!(
                outcome,
                Outcome::Released | Outcome::Duplicate | Outcome::ConfirmationSent
            )
        })
        .map(|(id, _)| *id)
        .collect();
    record(
        connection,
        reviewer.actor,
        Action::Release,
        &changed,
        Some((
            &reviewed.with(Outcome::Duplicate),
            &reviewed.with(Outcome::ConfirmationSent),
        )),
    )?;
    Ok(reviewed)
}

/// Makes the held or spam sign-up `id` of a double opt-in section `unconfirmed` and
/// queues its confirmation mail, when it can (see [`release`]).
fn ask_to_confirm(
    connection: &Connection,
    id: SubmissionId,
    found: &Pending,
    release: &Release<'_>,
) -> Result<Outcome, StoreError> {
    let Some(confirming) = &release.confirming else {
        return Ok(Outcome::NeedsConfirmation);
    };
    let address_hash = (confirming.address_hash)(&found.email_key);
    if !super::visitor_mails::claim(connection, &address_hash, release.now)? {
        return Ok(Outcome::NeedsConfirmation);
    }
    // Its visitor has `form.confirm_within` from now, not from the sign-up: a review a
    // week after a flood must still be able to let the person confirm.
    connection.execute(
        "UPDATE submissions SET status = 'unconfirmed', released_at = ?2 WHERE id = ?1",
        params![id, release.now],
    )?;
    super::outbox::queue_about(
        connection,
        MailKind::Confirmation,
        id,
        &found.section,
        release.message_domain,
        release.now,
    )?;
    Ok(Outcome::ConfirmationSent)
}

/// Erases the held and spam sign-ups among `ids`, inside [`super::erase`] (which
/// returns the freed pages and empties the WAL once it commits). Audited as `discard`
/// by the reviewer, with the ids and their count, when any was discarded.
///
/// # Errors
/// A failed statement; the erasure then rolls back.
pub fn discard(
    connection: &Erasing<'_>,
    ids: &[SubmissionId],
    reviewer: &Reviewer<'_>,
) -> Result<Reviewed, StoreError> {
    let deleted = delete_held_or_spam(connection, ids, |id| {
        Ok(pending(connection, id, reviewer)?.is_some())
    })?;
    let reviewed = Reviewed(
        deleted
            .into_iter()
            .map(|(id, erased)| {
                let outcome = if erased {
                    Outcome::Discarded
                } else {
                    Outcome::NotFound
                };
                (id, outcome)
            })
            .collect(),
    );
    record(
        connection,
        reviewer.actor,
        Action::Discard,
        &reviewed.with(Outcome::Discarded),
        None,
    )?;
    Ok(reviewed)
}

/// Re-applies discards recorded in another copy of the database (`joinform forget
/// --replay`): erases the held and spam sign-ups among `ids`, inside [`super::erase`].
/// Audited as `discard` with `"replay": true` when any went; returns how many did.
///
/// # Errors
/// A failed statement; the erasure then rolls back.
pub fn discard_replayed(
    connection: &Erasing<'_>,
    ids: &[SubmissionId],
    actor: &str,
) -> Result<u64, StoreError> {
    let erased: Vec<String> = delete_held_or_spam(connection, ids, |_| Ok(true))?
        .into_iter()
        .filter(|&(_, erased)| erased)
        .map(|(id, _)| id.to_string())
        .collect();
    let rows = count(erased.len());
    if rows > 0 {
        audit::record(
            connection,
            actor,
            Action::Discard,
            &json!({ "replay": true, "ids": erased, "count": rows }),
            rows,
        )?;
    }
    Ok(rows)
}

/// Deletes each of `ids` (once, in order) that is held or spam and that `allowed`
/// lets go, with its mails (the `submissions_take_their_mails` trigger): each id, and
/// whether it went.
fn delete_held_or_spam(
    connection: &Connection,
    ids: &[SubmissionId],
    mut allowed: impl FnMut(SubmissionId) -> Result<bool, StoreError>,
) -> Result<Vec<(SubmissionId, bool)>, StoreError> {
    let mut statement = connection.prepare_cached(
        "DELETE FROM submissions WHERE id = ?1 AND (status = 'held' OR status = 'spam')",
    )?;
    let mut deleted = Vec::new();
    for id in once_each(ids) {
        let went = allowed(id)? && statement.execute([id])? == 1;
        deleted.push((id, went));
    }
    Ok(deleted)
}

fn record(
    connection: &Connection,
    actor: &str,
    action: Action,
    ids: &[SubmissionId],
    released: Option<(&[SubmissionId], &[SubmissionId])>,
) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let texts = |ids: &[SubmissionId]| ids.iter().map(ToString::to_string).collect::<Vec<_>>();
    let rows = count(ids.len());
    let mut details = json!({ "ids": texts(ids), "count": rows });
    if let Some((duplicates, asked_to_confirm)) = released {
        details["duplicates"] = texts(duplicates).into();
        details["asked_to_confirm"] = texts(asked_to_confirm).into();
    }
    audit::record(connection, actor, action, &details, rows)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{HoldReason, SpamReason};
    use crate::store::test_support::database;

    use crate::store::submissions::{Admission, SubmissionRecord, admit};

    const HOUR: Duration = Duration::from_secs(3600);

    /// Stores a sign-up of `email` to `section` `ago` before now: held when `hold`,
    /// else accepted.
    fn sign_up(
        connection: &Connection,
        email: &str,
        section: &str,
        ago: Duration,
        hold: bool,
    ) -> SubmissionId {
        store(connection, email, section, ago, hold, false)
    }

    /// Stores a sign-up the honeypot caught.
    fn spam(connection: &Connection, email: &str, section: &str, ago: Duration) -> SubmissionId {
        store(connection, email, section, ago, false, true)
    }

    fn store(
        connection: &Connection,
        email: &str,
        section: &str,
        ago: Duration,
        hold: bool,
        spam: bool,
    ) -> SubmissionId {
        let submission = crate::store::test_support::submission("Kari Nordmann", email);
        let mut record = SubmissionRecord::new(submission, section, "example.org");
        record.created_at = Timestamp::now().minus(ago);
        record.hold = hold.then_some(HoldReason::OverBaseline);
        if spam {
            record.spam_reasons = vec![SpamReason::Honeypot];
        }
        let admission = admit(connection, &record).unwrap();
        let expected = if spam {
            matches!(admission, Admission::Spam { stored: true, .. })
        } else if hold {
            matches!(admission, Admission::Held { .. })
        } else {
            matches!(admission, Admission::Accepted { .. })
        };
        assert!(expected, "{email}: {admission:?}");
        record.id
    }

    fn status(connection: &Connection, id: SubmissionId) -> Option<String> {
        connection
            .query_row(
                "SELECT status FROM submissions WHERE id = ?1",
                [id],
                |row| row.get(0),
            )
            .optional()
            .unwrap()
    }

    /// The notifications queued about `id`.
    fn notifications(connection: &Connection, id: SubmissionId) -> usize {
        let kinds: Vec<MailKind> = connection
            .prepare("SELECT kind FROM outbox WHERE submission_id = ?1")
            .unwrap()
            .query_map([id], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        kinds
            .iter()
            .filter(|kind| **kind == MailKind::Notification)
            .count()
    }

    fn audit_details(connection: &Connection, action: &str) -> Vec<serde_json::Value> {
        connection
            .prepare("SELECT details FROM audit WHERE action = ?1 ORDER BY id")
            .unwrap()
            .query_map([action], |row| row.get::<_, String>(0))
            .unwrap()
            .map(|text| serde_json::from_str(&text.unwrap()).unwrap())
            .collect()
    }

    fn everyone<'a>() -> Reviewer<'a> {
        Reviewer {
            actor: "cli",
            may_see: &|_| true,
        }
    }

    fn releasing<'a>() -> Release<'a> {
        Release {
            now: Timestamp::now(),
            duplicate_window: 24 * HOUR,
            message_domain: "example.org",
            confirms: &|_| false,
            confirming: None,
        }
    }

    #[test]
    fn held_and_spam_are_listed_by_status_and_section_with_totals() {
        let (_dir, connection) = database();
        let held = sign_up(&connection, "kari@example.org", "Norway", HOUR, true);
        let other = sign_up(&connection, "sven@example.org", "Sweden", HOUR, true);
        sign_up(&connection, "ola@example.org", "Norway", HOUR, false);
        let listing = flagged(&connection, &[ReviewStatus::Held], None, 10).unwrap();
        assert_eq!((listing.held, listing.spam, listing.total()), (2, 0, 2));
        let norway = ["Norway".to_owned()];
        let listing = flagged(
            &connection,
            &[ReviewStatus::Held, ReviewStatus::Spam],
            Some(&norway),
            10,
        )
        .unwrap();
        let ids: Vec<_> = listing.items.iter().map(|item| item.id).collect();
        assert_eq!(ids, [held]);
        assert_eq!(listing.items[0].status, ReviewStatus::Held);
        assert_eq!(listing.items[0].first_name, "Kari");
        assert_eq!(listing.items[0].reasons, ["over_baseline", "no_proof"]);
        assert!(
            flagged(&connection, &[ReviewStatus::Held], Some(&[]), 10)
                .unwrap()
                .items
                .is_empty()
        );
        let listing = flagged(&connection, &[ReviewStatus::Spam], None, 10).unwrap();
        assert_eq!(listing.total(), 0);
        assert!(!listing.items.iter().any(|item| item.id == other));

        // Both statuses, newest first across them, at most `limit`, counted in full.
        let bot = spam(&connection, "bot@example.org", "Norway", HOUR / 2);
        let listing = flagged(
            &connection,
            &[ReviewStatus::Held, ReviewStatus::Spam],
            None,
            2,
        )
        .unwrap();
        assert_eq!((listing.held, listing.spam), (2, 1));
        assert_eq!(listing.items.len(), 2);
        assert_eq!(listing.items[0].id, bot);
        assert_eq!(listing.items[0].status, ReviewStatus::Spam);
        assert_eq!(listing.items[0].reasons, ["honeypot"]);
    }

    #[test]
    fn a_release_accepts_and_notifies_once_and_a_second_does_nothing() {
        let (_dir, connection) = database();
        let id = sign_up(&connection, "kari@example.org", "Norway", HOUR, true);
        assert_eq!(notifications(&connection, id), 0);
        let now_releasing = releasing();
        let reviewed = release(&connection, &[id, id], &now_releasing, &everyone()).unwrap();
        assert_eq!(reviewed.0, [(id, Outcome::Released)]);
        assert_eq!(status(&connection, id).as_deref(), Some("accepted"));
        assert_eq!(notifications(&connection, id), 1);
        // Its section can act on it from the release, not from the sign-up an hour
        // before: follow-up waits (reminders, overdue) count from then.
        let waiting = crate::store::followup::waiting(&connection, None, None, None).unwrap();
        assert_eq!(waiting.len(), 1);
        assert_eq!(
            waiting[0].waiting_since.to_string(),
            now_releasing.now.to_string(),
            "stored to the microsecond"
        );
        assert!(waiting[0].created_at < now_releasing.now);
        let again = release(&connection, &[id], &releasing(), &everyone()).unwrap();
        assert_eq!(again.0, [(id, Outcome::NotFound)]);
        assert_eq!(notifications(&connection, id), 1);
        assert_eq!(
            audit_details(&connection, "release"),
            [
                json!({"ids": [id.to_string()], "count": 1, "duplicates": [],
                    "asked_to_confirm": []})
            ]
        );
    }

    /// An address the section heard of within the duplicate window (accepted
    /// meanwhile, or released earlier in the same release) is not notified again.
    #[test]
    fn an_address_heard_of_within_the_window_becomes_a_duplicate() {
        let (_dir, connection) = database();
        let held = sign_up(&connection, "kari@example.org", "Norway", 2 * HOUR, true);
        sign_up(&connection, "kari@example.org", "Norway", HOUR, false);
        let first = sign_up(&connection, "sven@example.org", "Norway", 50 * HOUR, true);
        let second = sign_up(&connection, "sven@example.org", "Norway", 49 * HOUR, true);
        let reviewed = release(
            &connection,
            &[held, first, second],
            &releasing(),
            &everyone(),
        )
        .unwrap();
        assert_eq!(
            reviewed.0,
            [
                (held, Outcome::Duplicate),
                (first, Outcome::Released),
                (second, Outcome::Duplicate)
            ]
        );
        assert_eq!(status(&connection, held).as_deref(), Some("duplicate"));
        assert_eq!(notifications(&connection, held), 0);
        assert_eq!(notifications(&connection, second), 0);
        let details = &audit_details(&connection, "release")[0];
        assert_eq!(details["count"], 3);
        assert_eq!(
            details["duplicates"],
            json!([held.to_string(), second.to_string()])
        );
    }

    #[test]
    fn out_of_scope_and_double_opt_in_sign_ups_are_left_alone() {
        let (_dir, connection) = database();
        let norway = sign_up(&connection, "kari@example.org", "Norway", HOUR, true);
        let sweden = sign_up(&connection, "sven@example.org", "Sweden", HOUR, true);
        let scoped = Reviewer {
            actor: "norway",
            may_see: &|section| section == "Norway",
        };
        let confirming = Release {
            confirms: &|section| section == "Norway",
            ..releasing()
        };
        let reviewed = release(&connection, &[norway, sweden], &confirming, &scoped).unwrap();
        assert_eq!(
            reviewed.0,
            [
                (norway, Outcome::NeedsConfirmation),
                (sweden, Outcome::NotFound)
            ]
        );
        assert!(audit_details(&connection, "release").is_empty());
        let mut connection = connection;
        let discarded = crate::store::erase(&mut connection, |erasing| {
            discard(erasing, &[norway, sweden], &scoped)
        })
        .unwrap();
        assert_eq!(
            discarded.0,
            [(norway, Outcome::Discarded), (sweden, Outcome::NotFound)]
        );
        assert_eq!(status(&connection, norway), None);
        assert_eq!(status(&connection, sweden).as_deref(), Some("held"));
        assert_eq!(
            audit_details(&connection, "discard"),
            [json!({"ids": [norway.to_string()], "count": 1})]
        );
    }

    /// Double opt-in: the visitor is mailed a confirmation link, as on arrival, when
    /// the address had no mail in the last day and the link has a day left to work.
    #[test]
    fn a_double_opt_in_sign_up_is_sent_a_confirmation_when_it_can_be() {
        let (_dir, connection) = database();
        let fresh = sign_up(&connection, "kari@example.org", "Norway", HOUR, true);
        let again = sign_up(&connection, "kari@example.org", "Norway", HOUR / 2, true);
        let old = sign_up(
            &connection,
            "sven@example.org",
            "Norway",
            7 * 24 * HOUR,
            true,
        );
        let hash = |key: &str| format!("hash of {key}");
        let confirming = Release {
            confirms: &|section| section == "Norway",
            confirming: Some(Confirming {
                address_hash: &hash,
            }),
            ..releasing()
        };
        let reviewed =
            release(&connection, &[fresh, again, old], &confirming, &everyone()).unwrap();
        assert_eq!(
            reviewed.0,
            [
                (fresh, Outcome::ConfirmationSent),
                (again, Outcome::NeedsConfirmation),
                // Held a week, past form.confirm_within from its sign-up: its visitor
                // gets the whole window from the release all the same.
                (old, Outcome::ConfirmationSent)
            ]
        );
        assert_eq!(status(&connection, fresh).as_deref(), Some("unconfirmed"));
        assert_eq!(status(&connection, again).as_deref(), Some("held"));
        assert_eq!(status(&connection, old).as_deref(), Some("unconfirmed"));
        let released: Option<Timestamp> = connection
            .query_row(
                "SELECT released_at FROM submissions WHERE id = ?1",
                [old],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(
            released.map(|at| at.to_string()),
            Some(confirming.now.to_string()),
            "the wait for its visitor starts at the release"
        );
        let kinds: Vec<MailKind> = connection
            .prepare("SELECT kind FROM outbox WHERE submission_id = ?1")
            .unwrap()
            .query_map([fresh], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(kinds, [MailKind::Confirmation]);
        assert_eq!(notifications(&connection, fresh), 0);
        assert_eq!(
            audit_details(&connection, "release"),
            [
                json!({"ids": [fresh.to_string(), old.to_string()], "count": 2,
                    "duplicates": [], "asked_to_confirm": [fresh.to_string(), old.to_string()]})
            ]
        );
    }
}
