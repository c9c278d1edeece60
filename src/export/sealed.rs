//! Sealed rows in an export (`storage.seal_keys`): shown as their ciphertext, or, on the
//! operator's own machine with their secret key (`joinform export --decrypt-key`),
//! opened back into the normal columns. The server never holds a secret key: the
//! admin listener's export always gives the ciphertext.

use secrecy::{ExposeSecret, SecretString};

use crate::domain::SubmissionId;
use crate::openpgp::{CryptError, SecretKey};
use crate::sealing::SealedFields;
use crate::store::submissions::StoredSubmission;

/// Why a sealed row could not be opened. Never holds its data.
#[derive(Debug, thiserror::Error)]
pub enum UnsealError {
    /// A wrong passphrase, or a key the row was not sealed to (`storage.seal_keys`
    /// or its section's `pgp_keys`: a section's key opens only its sign-ups).
    #[error("cannot open sign-up {id}")]
    Decrypt {
        id: SubmissionId,
        #[source]
        source: CryptError,
    },
    #[error("sign-up {id} decrypts to something that is not its sealed fields")]
    Fields {
        id: SubmissionId,
        #[source]
        source: serde_json::Error,
    },
}

/// An operator's secret key, unlocked, to open sealed rows.
pub struct Unsealer {
    key: SecretKey,
}

impl std::fmt::Debug for Unsealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Unsealer(..)")
    }
}

impl Unsealer {
    /// `key`, unlocked once with `passphrase` (empty for a key without one): each
    /// row then costs one decryption, not one key derivation too.
    ///
    /// # Errors
    /// [`CryptError::WrongPassphrase`].
    pub fn new(key: SecretKey, passphrase: &SecretString) -> Result<Self, CryptError> {
        Ok(Self {
            key: key.unlock(passphrase.expose_secret())?,
        })
    }

    /// `key`, unlocked already ([`SecretKey::unlock`]).
    pub fn unlocked(key: SecretKey) -> Self {
        Self { key }
    }

    /// The sealed fields of sign-up `id` from its `sealed` message.
    ///
    /// # Errors
    /// [`UnsealError::Decrypt`] (a wrong passphrase or another recipient: OpenPGP cannot
    /// tell the two apart), [`UnsealError::Fields`].
    pub fn fields(&self, id: SubmissionId, sealed: &[u8]) -> Result<SealedFields, UnsealError> {
        let plain = self
            .key
            .decrypt("", sealed)
            .map_err(|source| UnsealError::Decrypt { id, source })?;
        SealedFields::from_json(&plain).map_err(|source| UnsealError::Fields { id, source })
    }

    /// Puts a sealed row's fields back where a row stored in clear has them, and drops
    /// its ciphertext; a row stored in clear is left as it is.
    ///
    /// # Errors
    /// As [`Unsealer::fields`].
    pub fn open(&self, row: &mut StoredSubmission) -> Result<(), UnsealError> {
        let Some(sealed) = row.sealed.take() else {
            return Ok(());
        };
        let fields = self.fields(row.id, &sealed)?;
        row.name = fields.name;
        row.email = fields.email;
        row.phone = fields.phone;
        row.city = fields.city;
        row.message = fields.message;
        row.extra = fields.extra;
        row.consent_text = fields.consent_text;
        Ok(())
    }
}
