//! Mails to the visitors of a sealed installation (`storage.seal_keys`), kept in memory
//! until sent.
//!
//! After the commit the server cannot read a sealed sign-up's name or address, so its
//! notice, confirmation or access mail cannot be built when the worker sends it, as a
//! clear sign-up's is. It is built instead on the request's thread, where the clear
//! data is at hand (the join handler, the `/my-data` handler), once the writer reports
//! that its outbox row was queued, and held here under that row's id until the worker
//! sends it. Nothing of it is written to disk: a restart loses it, and the worker then
//! fails the row ([`BuildError::SealedVisitorMailLost`]); the visitor can sign up
//! again, or ask again at `/my-data` the next day.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use lettre::Message;
use lettre::message::Mailbox;

use crate::domain::{MailKind, SubmissionId, Timestamp};
use crate::mail::message::BuildError;
use crate::store::outbox::DueVisitorMail;
use crate::store::submissions::StoredSubmission;
use crate::store::visitor_mails::AccessQueued;

use super::VisitorMails;

/// How many built mails [`HeldInMemory`] holds at most by default: at a few kilobytes
/// each, tens of megabytes. More wait only behind `rate_limit.visitor_mails_per_hour`.
pub const DEFAULT_LIMIT: usize = 10_000;

/// Built mails by the id of their outbox row, at most `limit` of them.
#[derive(Debug)]
pub struct HeldInMemory {
    mails: Mutex<HashMap<SubmissionId, Message>>,
    limit: usize,
}

/// [`HeldInMemory::hold`] refused a mail: `limit` are held already.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{limit} sealed visitor mails are held in memory already: this one is not kept")]
pub struct HeldFull {
    pub limit: usize,
}

impl HeldInMemory {
    /// An empty store that holds at most `limit` mails.
    pub fn new(limit: usize) -> Self {
        Self {
            mails: Mutex::new(HashMap::new()),
            limit,
        }
    }

    /// The map, even after a panic elsewhere poisoned the lock: every operation leaves
    /// it whole, so what it holds is still right.
    fn mails(&self) -> std::sync::MutexGuard<'_, HashMap<SubmissionId, Message>> {
        self.mails.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Holds `message` for outbox row `id` (replacing one held for it already).
    ///
    /// # Errors
    /// [`HeldFull`] when `limit` other mails are held: the row will fail as one lost.
    pub fn hold(&self, id: SubmissionId, message: Message) -> Result<(), HeldFull> {
        let mut mails = self.mails();
        if mails.len() >= self.limit && !mails.contains_key(&id) {
            return Err(HeldFull { limit: self.limit });
        }
        mails.insert(id, message);
        Ok(())
    }

    /// A copy of the mail held for row `id`; it stays held until [`Self::remove`]
    /// (a send that fails for now is tried again with it).
    pub fn get(&self, id: SubmissionId) -> Option<Message> {
        self.mails().get(&id).cloned()
    }

    /// Drops the mail of row `id`, once it is sent, failed or cancelled.
    pub fn remove(&self, id: SubmissionId) {
        self.mails().remove(&id);
    }

    /// The rows a mail is held for.
    pub fn rows(&self) -> Vec<SubmissionId> {
        self.mails().keys().copied().collect()
    }

    /// How many mails are held.
    pub fn len(&self) -> usize {
        self.mails().len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a request of a sealed installation needs to build its visitor's mail: the
/// builder the worker uses for clear sign-ups, the sender, and where to hold the mail.
pub struct SealedVisitorMails {
    mails: Arc<VisitorMails>,
    from: Mailbox,
    held: Arc<HeldInMemory>,
    message_domain: String,
}

impl std::fmt::Debug for SealedVisitorMails {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedVisitorMails")
            .field("held", &self.held.len())
            .finish_non_exhaustive()
    }
}

impl SealedVisitorMails {
    /// Mails built by `mails`, from `from`, held in `held`; their Message-IDs end in
    /// `message_domain`, as their outbox rows' do.
    pub fn new(
        mails: Arc<VisitorMails>,
        from: Mailbox,
        held: Arc<HeldInMemory>,
        message_domain: &str,
    ) -> Self {
        Self {
            mails,
            from,
            held,
            message_domain: message_domain.to_owned(),
        }
    }

    /// Builds the `kind` mail about `clear` (the sign-up as the request has it, before
    /// sealing) for outbox row `row`, written at `now`. `None` when it has nothing to
    /// say.
    ///
    /// # Errors
    /// What [`VisitorMails`] refuses to build.
    pub fn build(
        &self,
        row: SubmissionId,
        kind: MailKind,
        clear: StoredSubmission,
        now: Timestamp,
    ) -> Result<Option<Message>, BuildError> {
        let due = DueVisitorMail {
            id: row,
            kind,
            // As `outbox::queue_about` writes it for the row.
            message_id: format!("<{row}@{}>", self.message_domain),
            attempts: 0,
            queued_at: now,
            submission: clear,
        };
        self.mails.compose_message(&due, &self.from, now)
    }

    /// Builds the access-link mail for outbox row `row`, about the sign-up `queued`
    /// names, to `address` (the normalised address the visitor typed on `/my-data`),
    /// in its stored language, else `language`, written at `now`. It greets nobody by
    /// name: the server cannot read it.
    ///
    /// # Errors
    /// What [`VisitorMails`] refuses to build (an address that does not parse).
    pub fn build_access(
        &self,
        row: SubmissionId,
        queued: &AccessQueued,
        address: &str,
        language: &str,
        now: Timestamp,
    ) -> Result<Option<Message>, BuildError> {
        let known = StoredSubmission {
            id: queued.about,
            created_at: now,
            name: String::new(),
            email: address.to_owned(),
            country: queued.country,
            phone: None,
            city: None,
            message: None,
            language: None,
            consent: true,
            extra: serde_json::Map::new(),
            status: crate::domain::SubmissionStatus::Accepted,
            section: queued.section.clone(),
            is_returning: false,
            followup: None,
            followup_at: None,
            followup_by: None,
            contacted_at: None,
            consent_text: None,
            consent_language: None,
            consent_version: None,
            visitor_language: queued
                .visitor_language
                .clone()
                .or_else(|| Some(language.to_owned())),
            confirmed_at: None,
            released_at: None,
            sealed: None,
            sealed_mail: None,
        };
        self.build(row, MailKind::Access, known, now)
    }

    /// Holds `message` for outbox row `row` until the worker sends it.
    ///
    /// # Errors
    /// [`HeldFull`]: the row will fail as one lost.
    pub fn hold(&self, row: SubmissionId, message: Message) -> Result<(), HeldFull> {
        self.held.hold(row, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(to: &str) -> Message {
        Message::builder()
            .from("joinform <joinform@example.org>".parse().unwrap())
            .to(to.parse().unwrap())
            .subject("s")
            .body(String::from("b"))
            .unwrap()
    }

    fn to(message: &Message) -> String {
        message.envelope().to()[0].to_string()
    }

    #[test]
    fn it_holds_at_most_its_limit_and_a_removal_makes_room() {
        let held = HeldInMemory::new(2);
        let (a, b, c) = (
            SubmissionId::generate(),
            SubmissionId::generate(),
            SubmissionId::generate(),
        );
        assert!(held.is_empty());
        held.hold(a, message("a@example.org")).unwrap();
        held.hold(b, message("b@example.org")).unwrap();
        assert_eq!(
            held.hold(c, message("c@example.org")),
            Err(HeldFull { limit: 2 })
        );
        assert_eq!(held.len(), 2);
        assert!(held.get(c).is_none(), "the refused one is not held");
        // A row held already may be held again (its mail replaced) when full.
        held.hold(a, message("a2@example.org")).unwrap();
        assert_eq!(to(&held.get(a).unwrap()), "a2@example.org");
        held.remove(b);
        held.hold(c, message("c@example.org")).unwrap();
        assert_eq!(held.len(), 2);
    }

    #[test]
    fn a_mail_stays_held_until_removed() {
        let held = HeldInMemory::new(DEFAULT_LIMIT);
        let id = SubmissionId::generate();
        held.hold(id, message("kari@example.org")).unwrap();
        // Read twice (a send that failed for now is tried again with the same mail).
        assert_eq!(to(&held.get(id).unwrap()), "kari@example.org");
        assert_eq!(to(&held.get(id).unwrap()), "kari@example.org");
        held.remove(id);
        assert!(held.get(id).is_none());
        assert!(held.is_empty());
        // Removing what is not held changes nothing.
        held.remove(id);
        assert!(held.is_empty());
    }
}
