//! The `submissions` table.

use rusqlite::{Connection, params};

use crate::domain::{
    NewSubmission, SpamReason, SubmissionId, SubmissionStatus, Timestamp, TokenNonce,
};

use super::StoreError;

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
    /// before, outside the duplicate window.
    Accepted { returning: bool },
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

impl Admission {
    /// A short code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Accepted { returning: false } => "accepted",
            Self::Accepted { returning: true } => "returning",
            Self::Duplicate => "duplicate",
            Self::Spam { stored: true, .. } => "spam",
            Self::Spam { stored: false, .. } => "spam_discarded",
            Self::OverDailyLimit => "over_daily_limit",
        }
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
    /// What the request-side spam checks found; empty when nothing.
    pub spam_reasons: Vec<SpamReason>,
    /// The form token's nonce, to be used up in the same transaction.
    pub token: Option<TokenNonce>,
    /// Keyed hash of the client's address.
    pub client_hash: Option<String>,
    /// The consent text shown and its language, when the form sent them.
    pub consent_record: Option<(String, String)>,
    pub rules: AdmissionRules,
}

impl SubmissionRecord {
    /// A new submission routed to `section`, with a fresh id.
    pub fn new(submission: NewSubmission, section: &str, message_domain: &str) -> Self {
        let id = SubmissionId::generate();
        Self {
            id,
            created_at: Timestamp::now(),
            section: section.to_owned(),
            submission,
            message_id: format!("<{id}@{message_domain}>"),
            spam_reasons: Vec::new(),
            token: None,
            client_hash: None,
            consent_record: None,
            rules: AdmissionRules::default(),
        }
    }
}

/// Decides and writes one submission; the caller owns the transaction, so earlier
/// submissions of the same batch count.
pub fn admit(connection: &Connection, record: &SubmissionRecord) -> Result<Admission, StoreError> {
    let mut reasons = record.spam_reasons.clone();
    if let Some(token) = &record.token {
        let mut statement = connection.prepare_cached(
            "INSERT INTO used_tokens (nonce, expires_at) VALUES (?1, ?2)
             ON CONFLICT (nonce) DO NOTHING",
        )?;
        if statement.execute(params![token.nonce, token.expires_at.to_string()])? == 0 {
            reasons.push(SpamReason::TokenReplayed);
        }
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
    let key = record.submission.email.key();
    let day_ago = record
        .created_at
        .minus(std::time::Duration::from_secs(24 * 3600))
        .to_string();
    // One seek to the address's index entries and a walk over them (an address has
    // few) gives both the last day's count and the last accepted sign-up; the index
    // holds the status, so no row is read.
    let mut statement = connection.prepare_cached(
        "SELECT count(*) FILTER (WHERE created_at > ?2 AND status <> 'spam'),
                max(created_at) FILTER (WHERE status = 'accepted')
         FROM submissions WHERE email_key = ?1",
    )?;
    let (today, last_accepted): (i64, Option<String>) =
        statement.query_row(params![key, day_ago], |row| Ok((row.get(0)?, row.get(1)?)))?;
    if today >= i64::from(record.rules.per_email_per_day) {
        return Ok(Admission::OverDailyLimit);
    }
    let window_start = record
        .created_at
        .minus(record.rules.duplicate_window)
        .to_string();
    match last_accepted {
        Some(last) if last > window_start => {
            insert(connection, record, SubmissionStatus::Duplicate, None, false)?;
            Ok(Admission::Duplicate)
        }
        last => {
            let returning = last.is_some();
            insert(
                connection,
                record,
                SubmissionStatus::Accepted,
                None,
                returning,
            )?;
            super::outbox::insert(connection, record)?;
            Ok(Admission::Accepted { returning })
        }
    }
}

/// Forgets used form tokens that have expired: an expired token is refused anyway.
pub fn forget_expired_tokens(connection: &Connection, now: Timestamp) -> Result<usize, StoreError> {
    Ok(connection.execute(
        "DELETE FROM used_tokens WHERE expires_at < ?1",
        [now.to_string()],
    )?)
}

/// Writes one row as decided.
fn insert(
    connection: &Connection,
    record: &SubmissionRecord,
    status: SubmissionStatus,
    spam_reasons: Option<&str>,
    returning: bool,
) -> Result<(), StoreError> {
    let s = &record.submission;
    let extra = serde_json::to_string(&s.extra)?;
    let (consent_text, consent_language) = match &record.consent_record {
        Some((text, language)) => (Some(text.as_str()), Some(language.as_str())),
        None => (None, None),
    };
    let mut statement = connection.prepare_cached(
        "INSERT INTO submissions (id, created_at, name, email, country, phone, city, message,
                                  language, consent, extra, status, section, email_key,
                                  spam_reasons, is_returning, client_hash, consent_text,
                                  consent_language)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                 ?18, ?19)",
    )?;
    statement.execute(params![
        record.id.to_string(),
        record.created_at.to_string(),
        s.name.as_str(),
        s.email.to_string(),
        s.country.as_str(),
        s.phone.as_ref().map(|p| p.as_str()),
        s.city.as_ref().map(|c| c.as_str()),
        s.message.as_ref().map(|m| m.as_str()),
        s.language.as_ref().map(|l| l.as_str()),
        s.consent.0,
        extra,
        status.as_str(),
        record.section,
        s.email.key(),
        spam_reasons,
        returning,
        record.client_hash,
        consent_text,
        consent_language,
    ])?;
    Ok(())
}
