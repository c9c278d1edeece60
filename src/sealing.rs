//! Sealed storage (`storage.seal_keys`): a sign-up's personal fields are stored only as
//! one OpenPGP message to the operators' keys and its section's, so that neither the
//! server nor whoever copies its disk can read them.
//!
//! What is sealed is [`SealedFields`] as JSON. What stays readable is what the server
//! needs without the private key: id, times, country, language, section, status,
//! consent flag and version, follow-up state, and `email_key`, the keyed hash of the
//! address that duplicates, limits and erasure match on.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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
