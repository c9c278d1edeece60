//! The `submissions` table.

use rusqlite::{Connection, OptionalExtension, ToSql, params};

use serde_json::{Map, Value};

use crate::domain::{
    ConfirmationMode, CountryCode, FollowupState, HoldReason, MailKind, NewSubmission, PowVerdict,
    ProofOfWork, SpamReason, SubmissionId, SubmissionStatus, Timestamp, TokenNonce,
};

use super::{Erasing, StoreError};

/// The rules the writer applies to a submission in its transaction, where it can see
/// every earlier sign-up, including those in the same batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionRules {
    /// A second sign-up of an address within this time of its last accepted one is a
    /// duplicate: stored, not mailed.
    pub duplicate_window: std::time::Duration,
    /// Sign-ups stored per address in 24 hours (spam not counted); more are dropped.
    pub per_email_per_day: u32,
    /// Whether spam is stored (with its reasons) or dropped.
    pub keep_spam: bool,
}

impl Default for AdmissionRules {
    fn default() -> Self {
        Self {
            duplicate_window: std::time::Duration::from_secs(24 * 3600),
            per_email_per_day: 5,
            keep_spam: true,
        }
    }
}

/// What the writer did with a submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Stored and its notification queued; `returning` when the address signed up
    /// before, outside the duplicate window. In `notice` mode, `visitor_mail` says
    /// whether the visitor's notice was queued (not when the address had a mail in the
    /// last day).
    Accepted { returning: bool, visitor_mail: bool },
    /// Double opt-in: stored as `unconfirmed`, nobody told yet; `visitor_mail` says
    /// whether a confirmation mail was queued (not when the address had a mail in the
    /// last day).
    Unconfirmed { visitor_mail: bool },
    /// Held during a flood (status `held`): it would have been accepted, but proved
    /// nothing while [`SubmissionRecord::hold`] said to hold such sign-ups. Nobody is
    /// mailed until a review releases it.
    Held { reason: HoldReason },
    /// Stored with status `duplicate`; nobody is mailed.
    Duplicate,
    /// Spam, stored with its reasons when `keep_spam`, else dropped.
    Spam {
        reasons: Vec<SpamReason>,
        stored: bool,
    },
    /// The address is over its daily limit: not stored.
    OverDailyLimit,
}

/// What became of a submission, without the details: the label of logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum AdmissionOutcome {
    Accepted,
    Returning,
    Unconfirmed,
    Held,
    Duplicate,
    Spam,
    SpamDiscarded,
    OverDailyLimit,
}

impl Admission {
    /// Which [`AdmissionOutcome`] this is.
    pub fn outcome(&self) -> AdmissionOutcome {
        match self {
            Self::Accepted {
                returning: false, ..
            } => AdmissionOutcome::Accepted,
            Self::Accepted {
                returning: true, ..
            } => AdmissionOutcome::Returning,
            Self::Unconfirmed { .. } => AdmissionOutcome::Unconfirmed,
            Self::Held { .. } => AdmissionOutcome::Held,
            Self::Duplicate => AdmissionOutcome::Duplicate,
            Self::Spam { stored: true, .. } => AdmissionOutcome::Spam,
            Self::Spam { stored: false, .. } => AdmissionOutcome::SpamDiscarded,
            Self::OverDailyLimit => AdmissionOutcome::OverDailyLimit,
        }
    }

    /// The outcome's snake_case code (`spam_discarded`), for logs and metrics.
    pub fn code(&self) -> &'static str {
        self.outcome().into()
    }
}

/// A submission with what the server adds to it, ready to be admitted.
#[derive(Debug, Clone)]
pub struct SubmissionRecord {
    pub id: SubmissionId,
    pub created_at: Timestamp,
    /// The name of the section it was routed to.
    pub section: String,
    pub submission: NewSubmission,
    /// `<unique@sender-domain>` for its notification, kept across retries.
    pub message_id: String,
    /// The sender's domain, for the Message-IDs of other mails about it.
    pub message_domain: String,
    /// What the request-side spam checks found; empty when nothing.
    pub spam_reasons: Vec<SpamReason>,
    /// The form token's nonce, to be used up in the same transaction.
    pub token: Option<TokenNonce>,
    /// The proof of work posted with it, a solved one to be used up in the same
    /// transaction.
    pub proof: Option<ProofOfWork>,
    /// Set while a flood is on (issue 17): the sign-up is held, not accepted, unless
    /// its proof of work is verified here.
    pub hold: Option<HoldReason>,
    /// Keyed hash of the client's address.
    pub client_hash: Option<String>,
    /// The consent text shown and its language, when the form sent them.
    pub consent_record: Option<(String, String)>,
    pub rules: AdmissionRules,
    /// What the visitor hears once it is accepted: its section's mode.
    pub confirmation: ConfirmationMode,
    /// The keyed hash of the address that holds its one mail a day
    /// (`visitor_mails`); with `None`, no mail goes to the visitor whatever the mode.
    pub visitor_address_hash: Option<String>,
    /// The shipped language mails to the visitor are written in.
    pub visitor_language: Option<String>,
    /// The id the outbox row of a mail to the visitor gets, chosen beforehand so that
    /// a sealed sign-up's request can build that mail (its Message-ID holds the id)
    /// and hold it under the row's id.
    pub visitor_mail_id: SubmissionId,
    /// Sealed storage (`storage.seal_keys`): what is written instead of the personal
    /// fields. `None`: stored in clear.
    pub sealed: Option<SealedRecord>,
}

/// What sealed storage writes in place of a sign-up's personal fields, all made before
/// the writer sees it (encryption is CPU work that must not hold the single writer).
#[derive(Clone)]
pub struct SealedRecord {
    /// The personal fields (name, email, phone, city, message, extra, consent text) as
    /// one binary OpenPGP message to the operators' and the section's keys.
    pub fields: Vec<u8>,
    /// Stands for the address in `email_key`: the keyed hash erasure's audit trail
    /// uses (`erasure::address_hash` of `MemberEmail::key`), 64 hex digits.
    pub email_key: String,
    /// The notification's protected payload encrypted to the section's keys
    /// (armoured): as a first sign-up's, and as a returning one's (its body says so),
    /// since only the writer knows which it is.
    pub mail: String,
    pub mail_returning: String,
}

impl std::fmt::Debug for SealedRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealedRecord(..)")
    }
}

impl SubmissionRecord {
    /// The value of `email_key` for this sign-up: the keyed hash when sealed, else the
    /// address as duplicates and erasure match it.
    pub fn email_key(&self) -> String {
        match &self.sealed {
            Some(sealed) => sealed.email_key.clone(),
            None => self.submission.email.key(),
        }
    }

    /// A new submission routed to `section`, with a fresh id.
    pub fn new(submission: NewSubmission, section: &str, message_domain: &str) -> Self {
        let id = SubmissionId::generate();
        Self {
            id,
            created_at: Timestamp::now(),
            section: section.to_owned(),
            submission,
            message_id: format!("<{id}@{message_domain}>"),
            message_domain: message_domain.to_owned(),
            spam_reasons: Vec::new(),
            token: None,
            proof: None,
            hold: None,
            client_hash: None,
            consent_record: None,
            rules: AdmissionRules::default(),
            confirmation: ConfirmationMode::Off,
            visitor_address_hash: None,
            visitor_language: None,
            visitor_mail_id: SubmissionId::generate(),
            sealed: None,
        }
    }
}

/// What the writer tells a request: the admission, and what its proof of work came to
/// once its single use was checked.
#[derive(Debug, Clone)]
pub struct Admitted {
    pub admission: Admission,
    pub proof: Option<PowVerdict>,
}

/// Uses up the record's proof of work, then [`admit`]s it, in the caller's
/// transaction.
pub fn admit_with_proof(
    connection: &Connection,
    record: &SubmissionRecord,
) -> Result<Admitted, StoreError> {
    let proof = match &record.proof {
        None => None,
        Some(ProofOfWork::Refused(verdict)) => Some(*verdict),
        Some(ProofOfWork::Solved(nonce)) => Some(if use_nonce(connection, nonce)? {
            PowVerdict::Verified
        } else {
            PowVerdict::Replayed
        }),
    };
    // A verified proof is what lets a sign-up through a flood; anything else is held.
    let hold = record
        .hold
        .filter(|_| proof != Some(PowVerdict::Verified))
        .map(|reason| (reason, proof));
    Ok(Admitted {
        admission: decide(connection, record, hold)?,
        proof,
    })
}

/// Records `nonce` in `used_tokens`; `false` when it was there already (a replay).
fn use_nonce(connection: &Connection, nonce: &TokenNonce) -> Result<bool, StoreError> {
    let mut statement = connection.prepare_cached(
        "INSERT INTO used_tokens (nonce, expires_at) VALUES (?1, ?2)
         ON CONFLICT (nonce) DO NOTHING",
    )?;
    Ok(statement.execute(params![nonce.nonce, nonce.expires_at])? == 1)
}

/// Decides and writes one submission; the caller owns the transaction, so earlier
/// submissions of the same batch count. Its proof of work is not looked at: with
/// [`SubmissionRecord::hold`] set, it is held where it would be accepted.
///
/// # Errors
/// A failed statement; the caller's transaction then rolls back.
pub fn admit(connection: &Connection, record: &SubmissionRecord) -> Result<Admission, StoreError> {
    decide(connection, record, record.hold.map(|reason| (reason, None)))
}

/// Why a sign-up is held and the verdict on its proof of work (`None`: it had none).
type Hold = (HoldReason, Option<PowVerdict>);

fn decide(
    connection: &Connection,
    record: &SubmissionRecord,
    hold: Option<Hold>,
) -> Result<Admission, StoreError> {
    let mut reasons = record.spam_reasons.clone();
    if let Some(token) = &record.token
        && !use_nonce(connection, token)?
    {
        reasons.push(SpamReason::TokenReplayed);
    }
    if !reasons.is_empty() {
        let stored = record.rules.keep_spam;
        if stored {
            let codes: Vec<&str> = reasons.iter().map(|reason| reason.code()).collect();
            let codes = serde_json::to_string(&codes)?;
            insert(
                connection,
                record,
                SubmissionStatus::Spam,
                Some(&codes),
                false,
            )?;
        }
        return Ok(Admission::Spam { reasons, stored });
    }
    let key = record.email_key();
    let day_ago = record
        .created_at
        .minus(std::time::Duration::from_secs(24 * 3600));
    // One seek to the address's index entries and a walk over them (an address has
    // few) gives both the last day's count and when its section last heard of it.
    // Held sign-ups are not counted: anyone can post an address without a proof in a
    // flood, and must not use up its person's day that way. The section heard of an
    // accepted sign-up when it arrived, was confirmed or was released: only those
    // rows are read for the two times beyond the index.
    let mut statement = connection.prepare_cached(
        "SELECT count(*) FILTER (WHERE created_at > ?2 AND status <> 'spam'
                                       AND status <> 'held'),
                max(coalesce(released_at, confirmed_at, created_at))
                    FILTER (WHERE status = 'accepted')
         FROM submissions WHERE email_key = ?1",
    )?;
    let (today, last_accepted): (i64, Option<Timestamp>) =
        statement.query_row(params![key, day_ago], |row| Ok((row.get(0)?, row.get(1)?)))?;
    if today >= i64::from(record.rules.per_email_per_day) {
        return Ok(Admission::OverDailyLimit);
    }
    let window_start = record.created_at.minus(record.rules.duplicate_window);
    match last_accepted {
        Some(last) if last > window_start => {
            insert(connection, record, SubmissionStatus::Duplicate, None, false)?;
            Ok(Admission::Duplicate)
        }
        last => {
            let returning = last.is_some();
            if let Some((reason, proof)) = hold {
                let codes = serde_json::to_string(&reason.codes(proof, record.token.is_some()))?;
                insert(
                    connection,
                    record,
                    SubmissionStatus::Held,
                    Some(&codes),
                    returning,
                )?;
                // The section hears of its held sign-ups in its overflow mail: at once
                // when it had none this hour, else in the next (one probe, mostly).
                super::outbox::ensure_overflow(
                    connection,
                    &record.section,
                    &record.message_domain,
                    record.created_at,
                )?;
                return Ok(Admission::Held { reason });
            }
            if record.confirmation == ConfirmationMode::DoubleOptIn {
                insert(
                    connection,
                    record,
                    SubmissionStatus::Unconfirmed,
                    None,
                    returning,
                )?;
                let visitor_mail = queue_visitor_mail(connection, record, MailKind::Confirmation)?;
                return Ok(Admission::Unconfirmed { visitor_mail });
            }
            insert(
                connection,
                record,
                SubmissionStatus::Accepted,
                None,
                returning,
            )?;
            super::outbox::insert(connection, record)?;
            let visitor_mail = record.confirmation == ConfirmationMode::Notice
                && queue_visitor_mail(connection, record, MailKind::Notice)?;
            Ok(Admission::Accepted {
                returning,
                visitor_mail,
            })
        }
    }
}

/// Queues a mail of `kind` to the visitor of `record`, unless their address had one in
/// the last 24 hours. Returns whether it was queued.
fn queue_visitor_mail(
    connection: &Connection,
    record: &SubmissionRecord,
    kind: MailKind,
) -> Result<bool, StoreError> {
    let Some(address_hash) = &record.visitor_address_hash else {
        return Ok(false);
    };
    if !super::visitor_mails::claim(connection, address_hash, record.created_at)? {
        return Ok(false);
    }
    super::outbox::queue_about_as(
        connection,
        record.visitor_mail_id,
        kind,
        record.id,
        &record.section,
        &record.message_domain,
        record.created_at,
    )?;
    Ok(true)
}

/// How many sign-ups of `section` are held: created after `since` (all of them when
/// `None`), and in all. Counts only, read from `submissions_held` alone, for the
/// section's overflow mail.
///
/// # Errors
/// A failed query.
pub fn held_counts(
    connection: &Connection,
    section: &str,
    since: Option<Timestamp>,
) -> Result<(u64, u64), StoreError> {
    let (new, total): (i64, i64) = connection
        .prepare_cached(
            "SELECT count(*) FILTER (WHERE ?2 IS NULL OR created_at > ?2), count(*)
             FROM submissions WHERE status = 'held' AND section = ?1",
        )?
        .query_row(params![section, since], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
    Ok((
        u64::try_from(new).unwrap_or(0),
        u64::try_from(total).unwrap_or(0),
    ))
}

/// How many sign-ups are stored in clear and how many sealed: what start-up checks
/// the configuration against (a sealed installation must not serve a database that
/// still holds clear rows, nor a clear one a sealed database).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SealingCounts {
    /// Rows whose personal fields are in clear (`sealed IS NULL`).
    pub clear: u64,
    /// Rows whose personal fields are sealed.
    pub sealed: u64,
}

/// [`SealingCounts`] of the whole table: one pass, at start-up.
///
/// # Errors
/// A failed query.
pub fn sealing_counts(connection: &Connection) -> Result<SealingCounts, StoreError> {
    let (clear, sealed): (i64, i64) = connection.query_row(
        "SELECT count(*) FILTER (WHERE sealed IS NULL),
                count(*) FILTER (WHERE sealed IS NOT NULL)
         FROM submissions",
        [],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    Ok(SealingCounts {
        clear: u64::try_from(clear).unwrap_or(0),
        sealed: u64::try_from(sealed).unwrap_or(0),
    })
}

/// The first 16 hex digits of the SHA-256 of a consent text: names its exact wording,
/// so that the proof of consent says which version of the text was agreed to.
pub fn consent_version(text: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(text.as_bytes());
    hex::encode(&digest[..8])
}

/// What [`confirm`] did with a sign-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmed {
    /// It was waiting and is now `accepted`, its notification queued.
    Now { section: String },
    /// It was waiting, but the address had an accepted sign-up within the duplicate
    /// window meanwhile: it is now a `duplicate` (the section has heard of them).
    AsDuplicate { section: String },
    /// It was confirmed before (or never needed to be): nothing changed.
    Already { section: String },
    /// No such sign-up: withdrawn, purged after `form.confirm_within`, or spam.
    Gone,
}

/// Double opt-in: confirms the sign-up `id` at `now`, keeping the proof (the time and
/// the keyed hash of the confirming client's address); the caller owns the transaction.
/// Its notification is queued as a sign-up's is, with the Message-ID
/// `<id@message_domain>` it would have had. Confirming twice changes nothing.
///
/// # Errors
/// A failed statement.
pub fn confirm(
    connection: &Connection,
    id: SubmissionId,
    now: Timestamp,
    client_hash: Option<&str>,
    duplicate_window: std::time::Duration,
    message_domain: &str,
) -> Result<Confirmed, StoreError> {
    let found: Option<(SubmissionStatus, String, String)> = connection
        .query_row(
            "SELECT status, section, email_key FROM submissions WHERE id = ?1",
            [id],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .optional()?;
    let Some((status, section, key)) = found else {
        return Ok(Confirmed::Gone);
    };
    match status {
        SubmissionStatus::Unconfirmed => {}
        SubmissionStatus::Accepted | SubmissionStatus::Duplicate => {
            return Ok(Confirmed::Already { section });
        }
        // A held sign-up was never sent a confirmation link: one naming it is not ours.
        SubmissionStatus::Spam | SubmissionStatus::Held => return Ok(Confirmed::Gone),
    }
    let window_start = now.minus(duplicate_window);
    let recent: bool = connection.query_row(
        "SELECT EXISTS (SELECT 1 FROM submissions
                        WHERE email_key = ?1 AND status = 'accepted' AND created_at > ?2)",
        params![key, window_start],
        |row| row.get(0),
    )?;
    if recent {
        connection.execute(
            "UPDATE submissions SET status = 'duplicate', confirmed_at = ?2,
                                    confirm_client_hash = ?3
             WHERE id = ?1",
            params![id, now, client_hash],
        )?;
        return Ok(Confirmed::AsDuplicate { section });
    }
    accept(connection, id, &section, now, message_domain)?;
    connection.execute(
        "UPDATE submissions SET confirmed_at = ?2, confirm_client_hash = ?3 WHERE id = ?1",
        params![id, now, client_hash],
    )?;
    Ok(Confirmed::Now { section })
}

/// Makes the stored sign-up `id` (of `section`) `accepted` at `now`: its follow-up starts
/// `new` from `now`, and its notification is queued as a sign-up's is, with the
/// Message-ID `<id@message_domain>` it would have had. The one step both a confirmation
/// and an operator's release of a wrongly flagged sign-up take; the caller owns the
/// transaction and has checked the status it comes from.
///
/// # Errors
/// A failed statement.
pub(super) fn accept(
    connection: &Connection,
    id: SubmissionId,
    section: &str,
    now: Timestamp,
    message_domain: &str,
) -> Result<(), StoreError> {
    connection.execute(
        "UPDATE submissions SET status = 'accepted', followup = 'new', followup_at = ?2
         WHERE id = ?1",
        params![id, now],
    )?;
    super::outbox::queue_notification(
        connection,
        id,
        section,
        &format!("<{id}@{message_domain}>"),
        now,
    )?;
    Ok(())
}

/// The sign-up `id` as stored, if it is.
///
/// # Errors
/// A failed query, or a row this version cannot read.
pub fn by_id(
    connection: &Connection,
    id: SubmissionId,
) -> Result<Option<StoredSubmission>, StoreError> {
    Ok(connection
        .query_row(
            &format!(
                "SELECT {} FROM submissions s WHERE s.id = ?1",
                StoredSubmission::COLUMNS
            ),
            [id],
            |row| StoredSubmission::from_row(row, 0),
        )
        .optional()?)
}

/// The address key (`MemberEmail::key`) of sign-up `id`, if it is stored: what erasing
/// "everything of this person" through one of their links matches.
///
/// # Errors
/// A failed query.
pub fn address_key_of(
    connection: &Connection,
    id: SubmissionId,
) -> Result<Option<String>, StoreError> {
    Ok(connection
        .query_row(
            "SELECT email_key FROM submissions WHERE id = ?1",
            [id],
            |row| row.get(0),
        )
        .optional()?)
}

/// Every sign-up stored under the address of sign-up `id` (whatever its status),
/// oldest first; empty when `id` is not stored.
///
/// # Errors
/// A failed query, or a row this version cannot read.
pub fn of_same_address(
    connection: &Connection,
    id: SubmissionId,
) -> Result<Vec<StoredSubmission>, StoreError> {
    let mut statement = connection.prepare_cached(&format!(
        "SELECT {} FROM submissions s
         WHERE s.email_key = (SELECT email_key FROM submissions WHERE id = ?1)
         ORDER BY s.id",
        StoredSubmission::COLUMNS
    ))?;
    let rows = statement.query_map([id], |row| StoredSubmission::from_row(row, 0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The newest sign-up of address key `key` that is not spam, and its section, if any
/// is stored: what an access mail is about. A mail about spam would carry the
/// spammer's words (the name) to the address's owner.
///
/// # Errors
/// A failed query.
pub fn newest_of_address(
    connection: &Connection,
    key: &str,
) -> Result<Option<super::visitor_mails::AccessQueued>, StoreError> {
    Ok(connection
        .query_row(
            "SELECT id, section, country, visitor_language FROM submissions
             WHERE email_key = ?1 AND status <> 'spam'
             ORDER BY created_at DESC LIMIT 1",
            [key],
            |row| {
                Ok(super::visitor_mails::AccessQueued {
                    about: row.get(0)?,
                    section: row.get(1)?,
                    country: row.get(2)?,
                    visitor_language: row.get(3)?,
                })
            },
        )
        .optional()?)
}

/// Forgets used form tokens that have expired: an expired token is refused anyway.
pub fn forget_expired_tokens(connection: &Connection, now: Timestamp) -> Result<usize, StoreError> {
    Ok(connection.execute("DELETE FROM used_tokens WHERE expires_at < ?1", [now])?)
}

/// Writes one row as decided: the personal fields in clear, or, when the record is
/// sealed, empty beside the sealed message and the notification's payload.
fn insert(
    connection: &Connection,
    record: &SubmissionRecord,
    status: SubmissionStatus,
    spam_reasons: Option<&str>,
    returning: bool,
) -> Result<(), StoreError> {
    let s = &record.submission;
    let (consent_text, consent_language) = match &record.consent_record {
        Some((text, language)) => (Some(text.as_str()), Some(language.as_str())),
        None => (None, None),
    };
    let consent_version = consent_text.map(consent_version);
    let (name, email, phone, city, message, extra, consent_text) = match &record.sealed {
        Some(_) => (
            String::new(),
            String::new(),
            None,
            None,
            None,
            "{}".to_owned(),
            None,
        ),
        None => (
            s.name.as_str().to_owned(),
            s.email.to_string(),
            s.phone.as_ref().map(|p| p.as_str()),
            s.city.as_ref().map(|c| c.as_str()),
            s.message.as_ref().map(|m| m.as_str()),
            serde_json::to_string(&s.extra)?,
            consent_text,
        ),
    };
    let (sealed, sealed_mail) = match &record.sealed {
        Some(sealed) => (
            Some(sealed.fields.as_slice()),
            Some(if returning {
                sealed.mail_returning.as_str()
            } else {
                sealed.mail.as_str()
            }),
        ),
        None => (None, None),
    };
    let mut statement = connection.prepare_cached(
        "INSERT INTO submissions (id, created_at, name, email, country, phone, city, message,
                                  language, consent, extra, status, section, email_key,
                                  spam_reasons, is_returning, client_hash, consent_text,
                                  consent_language, followup, followup_at,
                                  visitor_language, consent_version, sealed, sealed_mail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                 ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25)",
    )?;
    // Only an accepted sign-up is followed up: it starts `new` at its sign-up time.
    let followup = (status == SubmissionStatus::Accepted).then_some(FollowupState::New);
    let followup_at = followup.map(|_| record.created_at);
    statement.execute(params![
        record.id,
        record.created_at,
        name,
        email,
        s.country,
        phone,
        city,
        message,
        s.language.as_ref().map(|l| l.as_str()),
        s.consent.0,
        extra,
        status,
        record.section,
        record.email_key(),
        spam_reasons,
        returning,
        record.client_hash,
        consent_text,
        consent_language,
        followup,
        followup_at,
        record.visitor_language,
        consent_version,
        sealed,
        sealed_mail,
    ])?;
    Ok(())
}

/// What erasing one address removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddressErased {
    /// Rows of `submissions`.
    pub submissions: u64,
    /// Pending notifications among them, which will now never be sent.
    pub unsent_notifications: u64,
}

/// Deletes every submission whose `email_key` is `key` (the address as
/// `MemberEmail::key` makes it, a clear row's) or `hash` (its keyed hash, a sealed
/// row's: both, so that a database half-way through `joinform seal` loses nobody's
/// rows), and with them (the `submissions_take_their_mails` trigger) their
/// notifications and visitor mails. Reminders and digests are built when sent, from
/// what is stored then: erased people are in none.
///
/// `until`: only the rows signed up at or before it — what an erasure made then took,
/// for a replayed one, which must not take a sign-up the person made again after it;
/// `None`: all of them.
///
/// # Errors
/// A failed statement; the caller's erasure transaction then rolls back.
pub fn erase_address(
    connection: &Erasing<'_>,
    key: &str,
    hash: &str,
    until: Option<Timestamp>,
) -> Result<AddressErased, StoreError> {
    let unsent: i64 = connection.query_row(
        "SELECT count(*) FROM outbox o JOIN submissions s ON s.id = o.id
         WHERE s.email_key IN (?1, ?2) AND (?3 IS NULL OR s.created_at <= ?3)
           AND o.kind = ?4 AND o.state = 'pending'",
        params![key, hash, until, MailKind::Notification],
        |row| row.get(0),
    )?;
    let deleted = connection.execute(
        "DELETE FROM submissions
         WHERE email_key IN (?1, ?2) AND (?3 IS NULL OR created_at <= ?3)",
        params![key, hash, until],
    )?;
    Ok(AddressErased {
        submissions: count(deleted),
        unsent_notifications: u64::try_from(unsent).unwrap_or(0),
    })
}

/// Every distinct `email_key` stored: an address for a row kept in clear, the
/// address's keyed hash for a sealed one. `joinform forget --replay` hashes these to
/// find the rows an erasure recorded only by its hash would have taken.
///
/// # Errors
/// SQLite's error.
pub fn email_keys(connection: &Connection) -> Result<Vec<String>, StoreError> {
    let mut statement = connection.prepare("SELECT DISTINCT email_key FROM submissions")?;
    let keys = statement
        .query_map([], |row| row.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(keys)
}

/// Deletes the submissions of the given statuses created before `cutoff` (retention),
/// with their notifications. Returns how many submissions went.
///
/// # Errors
/// A failed statement; the caller's erasure transaction then rolls back.
pub fn erase_created_before(
    connection: &Erasing<'_>,
    statuses: &[SubmissionStatus],
    cutoff: Timestamp,
) -> Result<u64, StoreError> {
    if statuses.is_empty() {
        return Ok(0);
    }
    // One pass whatever the number of statuses, over a range of the table's key: the
    // id bound is time order (a little wider); `created_at` then decides exactly.
    let placeholders: Vec<String> = (3..=statuses.len() + 2).map(|n| format!("?{n}")).collect();
    let id_bound = SubmissionId::after(cutoff);
    let mut values: Vec<&dyn ToSql> = vec![&cutoff, &id_bound];
    values.extend(statuses.iter().map(|status| status as &dyn ToSql));
    let condition = format!(
        "created_at < ?1 AND id < ?2 AND status IN ({})",
        placeholders.join(", ")
    );
    let deleted = connection.execute(
        &format!("DELETE FROM submissions WHERE {condition}"),
        values.as_slice(),
    )?;
    Ok(count(deleted))
}

/// Deletes the `unconfirmed` sign-ups whose wait for their visitor began before
/// `cutoff`: at the sign-up, or at a review's release (`released_at`), which gives the
/// visitor `form.confirm_within` from then. Returns how many went.
///
/// # Errors
/// A failed statement.
pub fn erase_unconfirmed_before(
    connection: &Erasing<'_>,
    cutoff: Timestamp,
) -> Result<u64, StoreError> {
    let deleted = connection.execute(
        "DELETE FROM submissions
         WHERE status = 'unconfirmed' AND coalesce(released_at, created_at) < ?1",
        [cutoff],
    )?;
    Ok(count(deleted))
}

/// A count of rows SQLite reports, as the reports give it.
pub(super) fn count(rows: usize) -> u64 {
    u64::try_from(rows).unwrap_or(u64::MAX)
}

/// One row of `submissions` as read back: the values passed validation when written,
/// and are given back exactly as stored. The one row type for everything that reads a
/// stored submission (exports, notifications, tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSubmission {
    pub id: SubmissionId,
    pub created_at: Timestamp,
    pub name: String,
    /// As the visitor typed the local part; domain lower-case, in Unicode.
    pub email: String,
    pub country: CountryCode,
    pub phone: Option<String>,
    pub city: Option<String>,
    pub message: Option<String>,
    /// The BCP 47 tag given or negotiated, as stored.
    pub language: Option<String>,
    pub consent: bool,
    /// The configured extra fields the visitor filled in.
    pub extra: Map<String, Value>,
    pub status: SubmissionStatus,
    /// The section it was routed to.
    pub section: String,
    /// The address signed up before, outside the duplicate window.
    pub is_returning: bool,
    /// Where the organisers are with it; `None` unless it was accepted.
    pub followup: Option<FollowupState>,
    /// When the follow-up state last changed (the sign-up's time while `new`).
    pub followup_at: Option<Timestamp>,
    /// Who changed it last: an admin token's name, `link` or `cli`.
    pub followup_by: Option<String>,
    /// The first time it left `new`.
    pub contacted_at: Option<Timestamp>,
    /// The consent text exactly as the visitor saw it, its language, and its version
    /// ([`consent_version`]); `None` when the form did not send them.
    pub consent_text: Option<String>,
    pub consent_language: Option<String>,
    pub consent_version: Option<String>,
    /// The shipped language of mails to the visitor.
    pub visitor_language: Option<String>,
    /// When the visitor confirmed (double opt-in).
    pub confirmed_at: Option<Timestamp>,
    /// When a review released it from `held` or `spam`.
    pub released_at: Option<Timestamp>,
    /// Sealed storage: the personal fields as one binary OpenPGP message (then `name`,
    /// `email`, `phone`, `city`, `message`, `extra` and `consent_text` are empty);
    /// `None` for a sign-up stored in clear.
    pub sealed: Option<Vec<u8>>,
    /// Sealed storage: the notification's payload, encrypted to the section's keys
    /// when the sign-up was stored (armoured); `None` in clear.
    pub sealed_mail: Option<String>,
}

impl StoredSubmission {
    /// `record` as it would read back once stored in clear and accepted (first, not
    /// returning; no follow-up yet): what sealed storage seals and builds the
    /// notification from, before the writer sees the record (the sign-up's server
    /// side `Sealer` and `joinform seal` alike).
    pub fn from_record(record: &SubmissionRecord) -> Self {
        let s = &record.submission;
        let (consent_text, consent_language) = match &record.consent_record {
            Some((text, language)) => (Some(text.clone()), Some(language.clone())),
            None => (None, None),
        };
        Self {
            id: record.id,
            created_at: record.created_at,
            name: s.name.as_str().to_owned(),
            email: s.email.to_string(),
            country: s.country,
            phone: s.phone.as_ref().map(|p| p.as_str().to_owned()),
            city: s.city.as_ref().map(|c| c.as_str().to_owned()),
            message: s.message.as_ref().map(|m| m.as_str().to_owned()),
            language: s.language.as_ref().map(|l| l.as_str().to_owned()),
            consent: s.consent.0,
            extra: s
                .extra
                .iter()
                .map(|(name, value)| (name.clone(), Value::String(value.clone())))
                .collect(),
            status: SubmissionStatus::Accepted,
            section: record.section.clone(),
            is_returning: false,
            followup: None,
            followup_at: None,
            followup_by: None,
            contacted_at: None,
            consent_version: consent_text.as_deref().map(consent_version),
            consent_text,
            consent_language,
            visitor_language: record.visitor_language.clone(),
            confirmed_at: None,
            released_at: None,
            sealed: None,
            sealed_mail: None,
        }
    }

    /// The columns [`StoredSubmission::from_row`] reads, in its order, for a `SELECT`
    /// from `submissions` (aliased `s` where the query joins).
    pub(super) const COLUMNS: &str = "s.id, s.created_at, s.name, s.email, s.country, \
        s.phone, s.city, s.message, s.language, s.consent, s.extra, s.status, s.section, \
        s.is_returning, s.followup, s.followup_at, s.followup_by, s.contacted_at, \
        s.consent_text, s.consent_language, s.consent_version, s.visitor_language, \
        s.confirmed_at, s.released_at, s.sealed, s.sealed_mail";

    /// How many columns [`StoredSubmission::COLUMNS`] names: a query that selects more
    /// after them reads those from `first + COLUMN_COUNT`.
    pub(super) const COLUMN_COUNT: usize = 26;

    /// Reads the [`StoredSubmission::COLUMNS`] starting at column `first`.
    pub(super) fn from_row(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Self> {
        let extra: String = row.get(first + 10)?;
        Ok(Self {
            id: row.get(first)?,
            created_at: row.get(first + 1)?,
            name: row.get(first + 2)?,
            email: row.get(first + 3)?,
            country: row.get(first + 4)?,
            phone: row.get(first + 5)?,
            city: row.get(first + 6)?,
            message: row.get(first + 7)?,
            language: row.get(first + 8)?,
            consent: row.get(first + 9)?,
            // The column is CHECKed to be valid JSON; an object is all we ever write.
            extra: serde_json::from_str(&extra).unwrap_or_default(),
            status: row.get(first + 11)?,
            section: row.get(first + 12)?,
            is_returning: row.get(first + 13)?,
            followup: row.get(first + 14)?,
            followup_at: row.get(first + 15)?,
            followup_by: row.get(first + 16)?,
            contacted_at: row.get(first + 17)?,
            consent_text: row.get(first + 18)?,
            consent_language: row.get(first + 19)?,
            consent_version: row.get(first + 20)?,
            visitor_language: row.get(first + 21)?,
            confirmed_at: row.get(first + 22)?,
            released_at: row.get(first + 23)?,
            sealed: row.get(first + 24)?,
            sealed_mail: row.get(first + 25)?,
        })
    }
}

/// Which rows of `submissions` to read: every condition set must hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Selection<'a> {
    /// Only rows routed to one of these sections; `Some(&[])` selects nothing.
    pub sections: Option<&'a [String]>,
    pub country: Option<CountryCode>,
    /// Only this verdict; `None` for every one but `unconfirmed` (sign-ups nobody
    /// confirmed may have been made by someone else: they are read only when named).
    pub status: Option<SubmissionStatus>,
    /// Created at or after this instant.
    pub since: Option<Timestamp>,
    /// Created before this instant.
    pub until: Option<Timestamp>,
    /// Ids after this one (incremental exports)…
    pub after_id: Option<SubmissionId>,
    /// …and before this one.
    pub before_id: Option<SubmissionId>,
    /// Only sign-ups in this follow-up state (accepted ones, then).
    pub followup: Option<FollowupState>,
    /// Only overdue sign-ups: still `new` and signed up before this instant (now less
    /// `followup.remind_after`).
    pub overdue_before: Option<Timestamp>,
}

impl<'a> Selection<'a> {
    /// The `WHERE` condition and its parameters, numbered from `?1`.
    fn condition(&self) -> (String, Vec<Box<dyn ToSql + 'a>>) {
        let mut conditions = Vec::new();
        let mut values: Vec<Box<dyn ToSql + 'a>> = Vec::new();
        if let Some(sections) = self.sections {
            if sections.is_empty() {
                // A scope with no section sees nothing, never everything.
                return ("0".to_owned(), Vec::new());
            }
            let mut alternatives = Vec::new();
            for section in sections {
                values.push(Box::new(section.as_str()));
                alternatives.push(format!("section = ?{}", values.len()));
            }
            conditions.push(format!("({})", alternatives.join(" OR ")));
        }
        let mut add = |condition: &str, value: Box<dyn ToSql + 'a>| {
            values.push(value);
            conditions.push(condition.replace('?', &format!("?{}", values.len())));
        };
        if let Some(country) = self.country {
            add("country = ?", Box::new(country));
        }
        match self.status {
            Some(status) => add("status = ?", Box::new(status)),
            None => add("status <> ?", Box::new(SubmissionStatus::Unconfirmed)),
        }
        // A time range is also given as a range of ids, a little wider, so that it is a
        // range of the table's key (there is no index on `created_at`, which then
        // decides exactly).
        if let Some(since) = self.since {
            add("created_at >= ?", Box::new(since));
            add("id >= ?", Box::new(SubmissionId::at_or_before(since)));
        }
        if let Some(until) = self.until {
            add("created_at < ?", Box::new(until));
            add("id < ?", Box::new(SubmissionId::after(until)));
        }
        if let Some(after) = self.after_id {
            add("id > ?", Box::new(after));
        }
        if let Some(before) = self.before_id {
            add("id < ?", Box::new(before));
        }
        if let Some(state) = self.followup {
            add("followup = ?", Box::new(state));
        }
        if let Some(before) = self.overdue_before {
            add("followup = ?", Box::new(FollowupState::New));
            add("created_at < ?", Box::new(before));
        }
        if conditions.is_empty() {
            ("1".to_owned(), values)
        } else {
            (conditions.join(" AND "), values)
        }
    }
}

/// Hands every row `selection` picks to `each`, in id (time) order. One `SELECT` reads
/// them, so the rows are one consistent snapshot even while the writer commits (WAL);
/// nothing is collected in memory.
///
/// # Errors
/// The first error of the query or of `each`; the rows after it are not read.
pub fn for_each_selected<E: From<StoreError>>(
    connection: &Connection,
    selection: &Selection<'_>,
    mut each: impl FnMut(StoredSubmission) -> Result<(), E>,
) -> Result<(), E> {
    let (condition, values) = selection.condition();
    let mut statement = connection
        .prepare(&format!(
            "SELECT {} FROM submissions s WHERE {condition} ORDER BY id",
            StoredSubmission::COLUMNS
        ))
        .map_err(StoreError::from)?;
    let mut rows = statement
        .query(rusqlite::params_from_iter(values))
        .map_err(StoreError::from)?;
    while let Some(row) = rows.next().map_err(StoreError::from)? {
        each(StoredSubmission::from_row(row, 0).map_err(StoreError::from)?)?;
    }
    Ok(())
}

/// The first (oldest) sealed row `selection` picks, its id and its `sealed` message;
/// `None` when every row it picks is stored in clear. Tells an export whether it needs
/// the `sealed` column, and lets it try the operator's key before writing a byte.
///
/// # Errors
/// A failed query.
pub fn first_sealed(
    connection: &Connection,
    selection: &Selection<'_>,
) -> Result<Option<(SubmissionId, Vec<u8>)>, StoreError> {
    let (condition, values) = selection.condition();
    Ok(connection
        .query_row(
            &format!(
                "SELECT id, sealed FROM submissions
                 WHERE ({condition}) AND sealed IS NOT NULL ORDER BY id LIMIT 1"
            ),
            rusqlite::params_from_iter(values),
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?)
}

// The count must follow the column list: one more column there, one more here.
const _: () = {
    let columns = StoredSubmission::COLUMNS.as_bytes();
    let mut commas = 0;
    let mut at = 0;
    while at < columns.len() {
        if columns[at] == b',' {
            commas += 1;
        }
        at += 1;
    }
    assert!(commas + 1 == StoredSubmission::COLUMN_COUNT);
};

#[cfg(test)]
mod tests {
    use crate::store::test_support::database;
    use std::time::Duration;

    use super::*;

    const DAY: Duration = Duration::from_secs(24 * 3600);

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }

    /// A sign-up of `email` to Norway at `created_at` in `mode`, with a consent record
    /// and the address's mail hash, as the join handler makes it.
    fn record(email: &str, created_at: Timestamp, mode: ConfirmationMode) -> SubmissionRecord {
        let submission = crate::store::test_support::submission("Kari Nordmann", email);
        let mut record = SubmissionRecord::new(submission, "Norway", "example.org");
        record.created_at = created_at;
        record.confirmation = mode;
        record.consent_record = Some(("I agree to be contacted.".into(), "en".into()));
        record.visitor_address_hash = Some(format!("hash of {email}"));
        record.visitor_language = Some("nb".into());
        record
    }

    /// The outbox: (kind, id, submission_id, message_id), in queue order.
    fn outbox(connection: &Connection) -> Vec<(MailKind, SubmissionId, SubmissionId, String)> {
        connection
            .prepare(
                "SELECT kind, id, submission_id, message_id FROM outbox ORDER BY created_at, kind",
            )
            .unwrap()
            .query_map([], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn confirm_client_hash(connection: &Connection, id: SubmissionId) -> Option<String> {
        connection
            .query_row(
                "SELECT confirm_client_hash FROM submissions WHERE id = ?1",
                [id],
                |row| row.get(0),
            )
            .unwrap()
    }

    const T0: &str = "2026-11-30T12:00:00.000000Z";

    /// What sealed storage seals is the row a clear installation would read back: one
    /// shape for the server's `Sealer` and `joinform seal`.
    #[test]
    fn a_record_seen_as_stored_is_the_row_a_clear_insert_reads_back() {
        let (_dir, connection) = database();
        let mut record = record("Kari@Example.org", at(T0), ConfirmationMode::Off);
        record.submission.phone = crate::domain::PhoneNumber::parse("+47 912 34 567").unwrap();
        record
            .submission
            .extra
            .insert("organisation".into(), "Bergen lag".into());
        let clear = StoredSubmission::from_record(&record);
        admit(&connection, &record).unwrap();
        let mut stored = by_id(&connection, record.id).unwrap().unwrap();
        // Set by the writer only: the follow-up starts once it is accepted.
        assert_eq!(stored.followup, Some(FollowupState::New));
        stored.followup = None;
        stored.followup_at = None;
        assert_eq!(clear, stored);
    }

    /// A solved proof of work is used up once; a replay, or a proof refused on the
    /// request side, is reported as such and, out of a flood, changes no admission. A
    /// form token with the same hex never meets a proof's prefixed nonce.
    #[test]
    fn a_proof_of_work_is_used_once_and_out_of_a_flood_changes_no_admission() {
        let (_dir, connection) = database();
        let expires_at = at("2026-11-30T12:10:00.000000Z");
        let nonce = TokenNonce {
            nonce: format!("pow:{}", "ab".repeat(32)),
            expires_at,
        };
        let cases = [
            (
                "first@example.org",
                Some(ProofOfWork::Solved(nonce.clone())),
                Some(PowVerdict::Verified),
            ),
            (
                "second@example.org",
                Some(ProofOfWork::Solved(nonce)),
                Some(PowVerdict::Replayed),
            ),
            (
                "third@example.org",
                Some(ProofOfWork::Refused(PowVerdict::TooEasy)),
                Some(PowVerdict::TooEasy),
            ),
            ("fourth@example.org", None, None),
        ];
        for (email, proof, verdict) in cases {
            let mut record = record(email, at(T0), ConfirmationMode::Off);
            record.proof = proof;
            let admitted = admit_with_proof(&connection, &record).unwrap();
            assert_eq!(admitted.proof, verdict, "{email}");
            assert!(
                matches!(admitted.admission, Admission::Accepted { .. }),
                "{email}: {:?}",
                admitted.admission
            );
        }
        let mut token = record("fifth@example.org", at(T0), ConfirmationMode::Off);
        token.token = Some(TokenNonce {
            nonce: "ab".repeat(32),
            expires_at,
        });
        assert!(matches!(
            admit(&connection, &token).unwrap(),
            Admission::Accepted { .. }
        ));
    }

    /// In a flood, only a verified proof lets a sign-up through: the rest are held
    /// (with why, for the review), nobody mailed, visitor or section; duplicates and
    /// spam stay what they are.
    #[test]
    fn in_a_flood_only_a_verified_proof_passes_and_the_rest_are_held_with_why() {
        let (_dir, connection) = database();
        let nonce = TokenNonce {
            nonce: format!("pow:{}", "cd".repeat(32)),
            expires_at: at("2026-11-30T12:10:00.000000Z"),
        };
        let cases = [
            (
                "proved@example.org",
                Some(ProofOfWork::Solved(nonce.clone())),
                None,
            ),
            (
                "replayed@example.org",
                Some(ProofOfWork::Solved(nonce)),
                Some(r#"["over_baseline","proof_replayed"]"#),
            ),
            (
                "expired@example.org",
                Some(ProofOfWork::Refused(PowVerdict::Expired)),
                Some(r#"["over_baseline","proof_expired"]"#),
            ),
            (
                "none@example.org",
                None,
                Some(r#"["over_baseline","no_proof"]"#),
            ),
            (
                "token@example.org",
                None,
                Some(r#"["over_baseline","no_proof","form_token"]"#),
            ),
        ];
        for (email, proof, held_because) in cases {
            let mut record = record(email, at(T0), ConfirmationMode::Notice);
            record.proof = proof;
            if email.starts_with("token") {
                record.token = Some(TokenNonce {
                    nonce: "ef".repeat(32),
                    expires_at: at("2026-12-01T12:00:00.000000Z"),
                });
            }
            record.hold = Some(HoldReason::OverBaseline);
            let admission = admit_with_proof(&connection, &record).unwrap().admission;
            let stored = by_id(&connection, record.id).unwrap().unwrap();
            let reasons: Option<String> = connection
                .query_row(
                    "SELECT spam_reasons FROM submissions WHERE id = ?1",
                    [record.id],
                    |row| row.get(0),
                )
                .unwrap();
            match held_because {
                None => {
                    assert!(matches!(admission, Admission::Accepted { .. }), "{email}");
                    assert_eq!(stored.status, SubmissionStatus::Accepted);
                }
                Some(why) => {
                    assert_eq!(
                        admission,
                        Admission::Held {
                            reason: HoldReason::OverBaseline
                        },
                        "{email}"
                    );
                    assert_eq!(stored.status, SubmissionStatus::Held);
                    assert_eq!(stored.followup, None, "not followed up while held");
                    assert_eq!(reasons.as_deref(), Some(why));
                }
            }
        }
        // The held ones' section is told in one overflow mail, counts only.
        let overflows: i64 = connection
            .query_row(
                "SELECT count(*) FROM outbox WHERE kind = 'overflow' AND state = 'pending'
                   AND section = 'Norway' AND submission_id IS NULL",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(overflows, 1, "one overflow mail, however many are held");
        connection
            .execute("DELETE FROM outbox WHERE kind = 'overflow'", [])
            .unwrap();
        let queued = outbox(&connection);
        assert_eq!(
            queued.len(),
            2,
            "the proved sign-up's notification and notice only: {queued:?}"
        );
        let mut spam = record("spam@example.org", at(T0), ConfirmationMode::Off);
        spam.spam_reasons = vec![SpamReason::Honeypot];
        spam.hold = Some(HoldReason::OverGlobalLimit);
        assert!(matches!(
            admit(&connection, &spam).unwrap(),
            Admission::Spam { .. }
        ));
        let mut again = record("proved@example.org", at(T0), ConfirmationMode::Off);
        again.hold = Some(HoldReason::OverGlobalLimit);
        assert_eq!(admit(&connection, &again).unwrap(), Admission::Duplicate);
    }

    /// Sign-ups held in a flood do not use up their address's day: anyone can post a
    /// known person's address without a proof, and must not lock them out that way.
    #[test]
    fn held_sign_ups_do_not_count_against_the_daily_limit() {
        let (_dir, connection) = database();
        for _ in 0..3 {
            let mut held = record("kari@example.org", at(T0), ConfirmationMode::Off);
            held.rules.per_email_per_day = 2;
            held.hold = Some(HoldReason::OverBaseline);
            assert!(matches!(
                admit(&connection, &held).unwrap(),
                Admission::Held { .. }
            ));
        }
        let mut real = record("kari@example.org", at(T0), ConfirmationMode::Off);
        real.rules.per_email_per_day = 2;
        assert!(matches!(
            admit(&connection, &real).unwrap(),
            Admission::Accepted { .. }
        ));
    }

    /// `joinform forget --replay`: an erasure re-applied from its time takes what it
    /// took then, not a sign-up the person made again later.
    #[test]
    fn a_replayed_erasure_takes_the_sign_ups_made_by_its_time_and_no_later_one() {
        let (_dir, mut connection) = database();
        let before = record(
            "kari@example.org",
            at("2026-11-28T12:00:00.000000Z"),
            ConfirmationMode::Off,
        );
        let after = record(
            "kari@example.org",
            at("2026-11-30T12:00:00.000000Z"),
            ConfirmationMode::Off,
        );
        let other = record(
            "ola@example.org",
            at("2026-11-28T12:00:00.000000Z"),
            ConfirmationMode::Off,
        );
        for record in [&before, &after, &other] {
            admit(&connection, record).unwrap();
        }
        let mut keys = email_keys(&connection).unwrap();
        keys.sort();
        assert_eq!(keys, ["kari@example.org", "ola@example.org"]);
        let erased = crate::store::erase(&mut connection, |erasing| {
            erase_address(
                erasing,
                "kari@example.org",
                "hash",
                Some(at("2026-11-29T00:00:00.000000Z")),
            )
        })
        .unwrap();
        assert_eq!(erased.submissions, 1);
        assert_eq!(erased.unsent_notifications, 1);
        let left: Vec<String> = connection
            .prepare("SELECT id FROM submissions ORDER BY id")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut expected = vec![after.id.to_string(), other.id.to_string()];
        expected.sort();
        assert_eq!(left, expected);
    }

    /// The duplicate window runs from when the section heard of the person: a sign-up
    /// released (or confirmed) a minute ago, though made two days ago, makes a new one
    /// a duplicate, not a second notification.
    #[test]
    fn the_duplicate_window_runs_from_a_release() {
        let (_dir, connection) = database();
        let old = record(
            "kari@example.org",
            at("2026-11-28T12:00:00.000000Z"),
            ConfirmationMode::Off,
        );
        admit(&connection, &old).unwrap();
        connection
            .execute(
                "UPDATE submissions SET released_at = ?2 WHERE id = ?1",
                params![old.id, at("2026-11-30T11:59:00.000000Z")],
            )
            .unwrap();
        let again = record("kari@example.org", at(T0), ConfirmationMode::Off);
        assert_eq!(admit(&connection, &again).unwrap(), Admission::Duplicate);
    }

    /// A double opt-in sign-up waits, mailing its visitor only; confirming it makes it
    /// accepted, queues the section's notification as a sign-up's would be, and keeps
    /// the proof (time, client hash, the consent text and its version).
    #[test]
    fn confirming_accepts_queues_the_notification_and_keeps_the_proof() {
        let (_dir, connection) = database();
        let record = record("kari@example.org", at(T0), ConfirmationMode::DoubleOptIn);
        assert_eq!(
            admit(&connection, &record).unwrap(),
            Admission::Unconfirmed { visitor_mail: true }
        );
        let waiting = by_id(&connection, record.id).unwrap().unwrap();
        assert_eq!(waiting.status, SubmissionStatus::Unconfirmed);
        assert_eq!(
            waiting.followup, None,
            "nobody follows up an unconfirmed sign-up"
        );
        let queued = outbox(&connection);
        assert_eq!(queued.len(), 1, "{queued:?}");
        assert_eq!(queued[0].0, MailKind::Confirmation);
        assert_eq!(queued[0].2, record.id);

        let now = at("2026-11-30T13:00:00.000000Z");
        assert_eq!(
            confirm(
                &connection,
                record.id,
                now,
                Some("client"),
                DAY,
                "example.org"
            )
            .unwrap(),
            Confirmed::Now {
                section: "Norway".into()
            }
        );
        let confirmed = by_id(&connection, record.id).unwrap().unwrap();
        assert_eq!(confirmed.status, SubmissionStatus::Accepted);
        assert_eq!(confirmed.confirmed_at, Some(now));
        assert_eq!(confirmed.followup, Some(FollowupState::New));
        // Follow-up counts from the confirmation: the section could not know before.
        assert_eq!(confirmed.followup_at, Some(now));
        assert_eq!(
            confirmed.consent_text.as_deref(),
            Some("I agree to be contacted.")
        );
        assert_eq!(
            confirmed.consent_version.as_deref(),
            Some(consent_version("I agree to be contacted.").as_str())
        );
        assert_eq!(confirmed.visitor_language.as_deref(), Some("nb"));
        assert_eq!(
            confirm_client_hash(&connection, record.id).as_deref(),
            Some("client")
        );
        let queued = outbox(&connection);
        assert_eq!(queued.len(), 2, "{queued:?}");
        let notification = &queued[1];
        assert_eq!(notification.0, MailKind::Notification);
        // Keyed by its sign-up, as every notification is (erasure relies on it).
        assert_eq!((notification.1, notification.2), (record.id, record.id));
        assert_eq!(notification.3, format!("<{}@example.org>", record.id));
    }

    #[test]
    fn confirming_twice_changes_nothing() {
        let (_dir, connection) = database();
        let record = record("kari@example.org", at(T0), ConfirmationMode::DoubleOptIn);
        admit(&connection, &record).unwrap();
        let first = at("2026-11-30T13:00:00.000000Z");
        confirm(
            &connection,
            record.id,
            first,
            Some("one"),
            DAY,
            "example.org",
        )
        .unwrap();
        let again = at("2026-11-30T14:00:00.000000Z");
        assert_eq!(
            confirm(
                &connection,
                record.id,
                again,
                Some("two"),
                DAY,
                "example.org"
            )
            .unwrap(),
            Confirmed::Already {
                section: "Norway".into()
            }
        );
        let row = by_id(&connection, record.id).unwrap().unwrap();
        assert_eq!(row.confirmed_at, Some(first), "the first proof is kept");
        assert_eq!(
            confirm_client_hash(&connection, record.id).as_deref(),
            Some("one")
        );
        let notifications = outbox(&connection)
            .into_iter()
            .filter(|(kind, ..)| *kind == MailKind::Notification)
            .count();
        assert_eq!(notifications, 1);
    }

    /// If the address had a sign-up accepted within the duplicate window by the time
    /// the visitor confirms, the section has heard of them already: the confirmed
    /// sign-up becomes a duplicate, with its proof, and nobody is told again.
    #[test]
    fn an_address_accepted_meanwhile_makes_the_confirmation_a_duplicate() {
        let (_dir, connection) = database();
        let waiting = record("kari@example.org", at(T0), ConfirmationMode::DoubleOptIn);
        admit(&connection, &waiting).unwrap();
        // The same person, now through a section without double opt-in (the address
        // compared as its key: case does not matter).
        let direct = record(
            "Kari@EXAMPLE.org",
            at("2026-11-30T12:10:00.000000Z"),
            ConfirmationMode::Off,
        );
        assert_eq!(
            admit(&connection, &direct).unwrap(),
            Admission::Accepted {
                returning: false,
                visitor_mail: false
            }
        );
        let now = at("2026-11-30T13:00:00.000000Z");
        assert_eq!(
            confirm(
                &connection,
                waiting.id,
                now,
                Some("client"),
                DAY,
                "example.org"
            )
            .unwrap(),
            Confirmed::AsDuplicate {
                section: "Norway".into()
            }
        );
        let row = by_id(&connection, waiting.id).unwrap().unwrap();
        assert_eq!(row.status, SubmissionStatus::Duplicate);
        assert_eq!(row.confirmed_at, Some(now));
        assert_eq!(row.followup, None);
        let notified: Vec<SubmissionId> = outbox(&connection)
            .into_iter()
            .filter(|(kind, ..)| *kind == MailKind::Notification)
            .map(|(_, id, ..)| id)
            .collect();
        assert_eq!(notified, [direct.id], "only the accepted sign-up's");
        // Outside the window, the same confirmation would have been accepted.
        let (_dir, connection) = database();
        admit(&connection, &waiting).unwrap();
        admit(&connection, &direct).unwrap();
        let two_days = at("2026-12-02T13:00:00.000000Z");
        assert!(matches!(
            confirm(&connection, waiting.id, two_days, None, DAY, "example.org").unwrap(),
            Confirmed::Now { .. }
        ));
    }

    #[test]
    fn an_unknown_or_spam_sign_up_is_gone() {
        let (_dir, connection) = database();
        let now = at(T0);
        assert_eq!(
            confirm(
                &connection,
                SubmissionId::generate(),
                now,
                None,
                DAY,
                "example.org"
            )
            .unwrap(),
            Confirmed::Gone
        );
        let mut spam = record("bot@example.org", now, ConfirmationMode::DoubleOptIn);
        spam.spam_reasons = vec![SpamReason::Honeypot];
        assert!(matches!(
            admit(&connection, &spam).unwrap(),
            Admission::Spam { stored: true, .. }
        ));
        assert_eq!(
            confirm(&connection, spam.id, now, None, DAY, "example.org").unwrap(),
            Confirmed::Gone
        );
        assert!(outbox(&connection).is_empty(), "spam mails nobody");
        let status = by_id(&connection, spam.id).unwrap().unwrap().status;
        assert_eq!(status, SubmissionStatus::Spam);
    }

    /// A second double opt-in sign-up of a waiting address within the day is stored,
    /// but its visitor is not mailed again.
    #[test]
    fn a_waiting_address_gets_one_confirmation_a_day() {
        let (_dir, connection) = database();
        let first = record("kari@example.org", at(T0), ConfirmationMode::DoubleOptIn);
        let second = record(
            "kari@example.org",
            at("2026-11-30T20:00:00.000000Z"),
            ConfirmationMode::DoubleOptIn,
        );
        let next_day = record(
            "kari@example.org",
            at("2026-12-01T12:00:00.000000Z"),
            ConfirmationMode::DoubleOptIn,
        );
        assert_eq!(
            [&first, &second, &next_day].map(|record| admit(&connection, record).unwrap()),
            [
                Admission::Unconfirmed { visitor_mail: true },
                Admission::Unconfirmed {
                    visitor_mail: false
                },
                Admission::Unconfirmed { visitor_mail: true },
            ]
        );
        let confirmations: Vec<SubmissionId> = outbox(&connection)
            .into_iter()
            .map(|(kind, _, about, _)| {
                assert_eq!(kind, MailKind::Confirmation);
                about
            })
            .collect();
        assert_eq!(confirmations, [first.id, next_day.id]);
    }
}
