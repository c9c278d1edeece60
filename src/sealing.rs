//! Sealed storage (`storage.seal_keys`): a sign-up's personal fields are stored only as
//! one OpenPGP message to the operators' keys and its section's, so that neither the
//! server nor whoever copies its disk can read them.
//!
//! What is sealed is [`SealedFields`] as JSON. What stays readable is what the server
//! needs without the private key: id, times, country, language, section, status,
//! consent flag and version, follow-up state, and `email_key`, the keyed hash of the
//! address that duplicates, limits and erasure match on.

use std::sync::Arc;

use lettre::message::Mailbox;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::erasure;
use crate::mail::message::{self, BuildError};
use crate::mail::{FollowupMail, Templates, pgp_mime};
use crate::openpgp::{self, Certificate, CryptError};
use crate::routing::Routing;
use crate::secret::ServerSecret;
use crate::store::outbox::DueNotification;
use crate::store::submissions::{SealedRecord, StoredSubmission};

/// The personal fields of one sign-up, as sealed: the plaintext of
/// `submissions.sealed`, a JSON object with these keys (absent optional ones omitted).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedFields {
    pub name: String,
    /// As stored in clear: the local part as typed, the domain lower-case Unicode.
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The configured extra fields the visitor filled in.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
    /// The consent text exactly as the visitor saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent_text: Option<String>,
}

impl SealedFields {
    /// The JSON that is encrypted.
    ///
    /// # Errors
    /// serde_json's, which a struct of strings does not give.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    /// The fields back from decrypted JSON.
    ///
    /// # Errors
    /// When the plaintext is not such an object.
    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// Why a sign-up could not be sealed. Never holds its data.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The stored or posted address does not parse as one joinform would store.
    #[error("the address does not parse")]
    Address,
    #[error("the sealed fields cannot be written: {0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Crypt(#[from] CryptError),
    #[error("the notification cannot be built: {0}")]
    Mail(#[from] BuildError),
    /// Storage is not sealed, or the section has no keys (the configuration check
    /// refuses both in a sealed installation).
    #[error("section `{0}` has no keys to seal to")]
    NoKeys(String),
}

/// Seals sign-ups: holds the keys, the notification's templates and the server
/// secret behind the address hash. Built once at start-up (and by `joinform seal`).
#[derive(Clone)]
pub struct Sealer {
    routing: Arc<Routing>,
    templates: Arc<Templates>,
    from: Mailbox,
    followup: Option<Arc<dyn FollowupMail>>,
    secret: ServerSecret,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    /// A sealer for `routing`'s keys; `None` when storage is not sealed.
    pub fn new(
        routing: Arc<Routing>,
        templates: Arc<Templates>,
        from: Mailbox,
        followup: Option<Arc<dyn FollowupMail>>,
        secret: ServerSecret,
    ) -> Option<Self> {
        routing.is_sealed().then_some(Self {
            routing,
            templates,
            from,
            followup,
            secret,
        })
    }

    /// What sealed storage writes for `clear`, a sign-up as it would be stored in
    /// clear (its `section`, `id`, `created_at` and personal fields are read):
    /// the fields sealed to the operators' and the section's keys, the keyed hash of
    /// the address, and the notification (`message_id`) encrypted to the section's
    /// keys, as a first and as a returning sign-up. CPU work (three OpenPGP
    /// messages, about 0.1 ms each per cv25519 key in a release build): never on the
    /// writer's thread.
    ///
    /// # Errors
    /// [`SealError`]; nothing is written then.
    pub fn seal(
        &self,
        clear: &StoredSubmission,
        message_id: &str,
    ) -> Result<SealedRecord, SealError> {
        let section = self
            .routing
            .by_name(&clear.section)
            .unwrap_or_else(|| self.routing.fallback());
        let recipients = self.routing.seal_recipients(section);
        if recipients.is_empty() || !section.encrypts() {
            return Err(SealError::NoKeys(section.name.clone()));
        }
        let fields = SealedFields {
            name: clear.name.clone(),
            email: clear.email.clone(),
            phone: clear.phone.clone(),
            city: clear.city.clone(),
            message: clear.message.clone(),
            extra: clear.extra.clone(),
            consent_text: clear.consent_text.clone(),
        };
        let sealed = openpgp::encrypt(&recipients, fields.to_json()?)?;
        let key = erasure::address_key(&clear.email).ok_or(SealError::Address)?;
        let email_key = erasure::address_hash(&self.secret, &key);
        let link = self.followup.as_ref().and_then(|followup| {
            followup.notification_link(clear.id, &clear.section, clear.created_at)
        });
        let mail_as = |returning: bool| -> Result<String, SealError> {
            let mut submission = clear.clone();
            submission.is_returning = returning;
            let due = DueNotification {
                message_id: message_id.to_owned(),
                section: clear.section.clone(),
                attempts: 0,
                queued_at: clear.created_at,
                submission,
            };
            let (headers, body) = message::notification_parts(
                &due,
                section,
                &self.from,
                &self.templates,
                link.as_deref(),
                message::Storage::Sealed,
            )?;
            let payload = pgp_mime::protected_payload(headers, body)?;
            let keys: Vec<&Certificate> = section.pgp_keys.iter().collect();
            Ok(openpgp::encrypt_armored(&keys, payload)?)
        };
        Ok(SealedRecord {
            fields: sealed,
            email_key,
            mail: mail_as(false)?,
            mail_returning: mail_as(true)?,
        })
    }
}
