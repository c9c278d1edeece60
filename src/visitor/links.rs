//! Signed link tokens in mails to visitors: confirm a sign-up (double opt-in), withdraw
//! it, see what is stored (access).
//!
//! A token is base64url without padding: version `3` ‖ purpose (1 byte: 1 confirm, 2
//! withdraw, 3 access) ‖ the sign-up's id (16 bytes) ‖ expiry (8 bytes, big-endian
//! Unix seconds) ‖ MAC (16 bytes): 42 bytes, 56 characters. The MAC is the first 16
//! bytes of HMAC-SHA256, under the visitor link key ([`KeyPurpose::VisitorLink`], apart
//! from the organisers' link key), of the label `visitor`, a zero byte and the other
//! fields. A token names a sign-up, never a person's data; withdraw and access act on
//! every sign-up stored under that sign-up's address.
//!
//! Checked as the follow-up's links are: shape, then MAC, then expiry
//! ([`LinkError`]), so an altered expiry reads as tampering.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

use crate::domain::{SubmissionId, Timestamp};
use crate::followup::links::{LinkKey, MAC_BYTES, decode_base64, expiry_instant};
use crate::secret::{KeyPurpose, ServerSecret};

pub use crate::followup::links::{LinkError, csrf_ok, csrf_value};

const VERSION: u8 = 3;
/// Version, purpose, id, expiry, MAC.
const TOKEN_BYTES: usize = 1 + 1 + 16 + 8 + MAC_BYTES;

/// What a visitor's link does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum LinkPurpose {
    /// `/confirm/{token}`: confirms a double opt-in sign-up.
    Confirm,
    /// `/withdraw/{token}`: erases every sign-up of the address.
    Withdraw,
    /// `/my-data/{token}`: shows every sign-up of the address.
    Access,
}

impl LinkPurpose {
    fn byte(self) -> u8 {
        match self {
            Self::Confirm => 1,
            Self::Withdraw => 2,
            Self::Access => 3,
        }
    }
}

/// The key visitors' links are signed with.
#[derive(Clone, Debug)]
pub struct VisitorLinkKey(LinkKey);

impl VisitorLinkKey {
    /// The visitor link key of `secret`.
    pub fn from_secret(secret: &ServerSecret) -> Self {
        Self(LinkKey::for_purpose(secret, KeyPurpose::VisitorLink))
    }

    /// A token for `purpose` on sign-up `id`, working until `expires` (rounded down to
    /// the second): 56 base64url characters.
    pub fn issue(&self, purpose: LinkPurpose, id: SubmissionId, expires: Timestamp) -> String {
        let id_bytes = id.to_bytes();
        let expiry = expires.unix_seconds().to_be_bytes();
        let mac = self.mac(purpose, &id_bytes, &expiry);
        let mut bytes = Vec::with_capacity(TOKEN_BYTES);
        bytes.push(VERSION);
        bytes.push(purpose.byte());
        bytes.extend_from_slice(&id_bytes);
        bytes.extend_from_slice(&expiry);
        bytes.extend_from_slice(&mac);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The sign-up `token` names and its expiry, if this key signed it for `purpose`
    /// and it is still good at `now`.
    ///
    /// # Errors
    /// [`LinkError::Malformed`] for anything not shaped as a visitor token (another
    /// purpose's included), [`LinkError::Tampered`] for a signature that does not
    /// match, [`LinkError::Expired`] from its expiry on.
    pub fn verify(
        &self,
        purpose: LinkPurpose,
        token: &str,
        now: Timestamp,
    ) -> Result<(SubmissionId, Timestamp), LinkError> {
        let (id, expires) = self.verify_signature(purpose, token)?;
        if now >= expires {
            return Err(LinkError::Expired);
        }
        Ok((id, expires))
    }

    /// The sign-up `token` names and its expiry, if this key signed it for `purpose`,
    /// whether or not it has expired: a page refusing an expired link still speaks its
    /// sign-up's language, and tells a visitor whose sign-up was confirmed meanwhile
    /// so.
    ///
    /// # Errors
    /// [`LinkError::Malformed`] or [`LinkError::Tampered`], as [`Self::verify`].
    pub fn verify_signature(
        &self,
        purpose: LinkPurpose,
        token: &str,
    ) -> Result<(SubmissionId, Timestamp), LinkError> {
        let bytes = decode_base64(token)?;
        let bytes: [u8; TOKEN_BYTES] = bytes.try_into().map_err(|_| LinkError::Malformed)?;
        if bytes[0] != VERSION || bytes[1] != purpose.byte() {
            return Err(LinkError::Malformed);
        }
        let id: [u8; 16] = bytes[2..18].try_into().map_err(|_| LinkError::Malformed)?;
        let expiry: [u8; 8] = bytes[18..26].try_into().map_err(|_| LinkError::Malformed)?;
        let expected = self.mac(purpose, &id, &expiry);
        if !bool::from(expected.ct_eq(&bytes[26..])) {
            return Err(LinkError::Tampered);
        }
        Ok((SubmissionId::from_bytes(id), expiry_instant(expiry)?))
    }

    /// The hidden form value a page served for `token` carries: its POST must send it
    /// back (see [`csrf_value`]).
    pub fn csrf_value(&self, token: &str) -> String {
        csrf_value(&self.0, token)
    }

    /// Whether `given` is [`VisitorLinkKey::csrf_value`] of `token`.
    pub fn csrf_ok(&self, token: &str, given: &str) -> bool {
        csrf_ok(&self.0, token, given)
    }

    fn mac(&self, purpose: LinkPurpose, id: &[u8; 16], expiry: &[u8; 8]) -> [u8; MAC_BYTES] {
        self.0.mac(b"visitor", &[&[purpose.byte()], id, expiry])
    }
}

/// The keyed hash that stands in for a visitor's address in `visitor_mails`: hex
/// HMAC-SHA256, under a key derived from the server's secret, of the address key
/// (`MemberEmail::key`).
#[derive(Clone)]
pub struct AddressHasher([u8; 32]);

impl std::fmt::Debug for AddressHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AddressHasher(..)")
    }
}

impl AddressHasher {
    pub fn from_secret(secret: &ServerSecret) -> Self {
        Self(secret.key(KeyPurpose::VisitorAddress))
    }

    /// 64 hex digits for address key `key`.
    pub fn hash(&self, key: &str) -> String {
        hex::encode(crate::secret::keyed_hash(&self.0, key.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> VisitorLinkKey {
        VisitorLinkKey::from_secret(&ServerSecret::from_bytes(&[byte; 32]))
    }

    fn at(seconds: u64) -> Timestamp {
        Timestamp::from_unix_seconds(seconds).unwrap()
    }

    const NOW: u64 = 1_750_000_000;

    #[test]
    fn a_token_round_trips_for_its_purpose_only() {
        let id = SubmissionId::generate();
        let token = key(1).issue(LinkPurpose::Withdraw, id, at(NOW + 60));
        assert_eq!(token.len(), 56);
        assert_eq!(
            key(1).verify(LinkPurpose::Withdraw, &token, at(NOW)),
            Ok((id, at(NOW + 60)))
        );
        for other in [LinkPurpose::Confirm, LinkPurpose::Access] {
            assert_eq!(
                key(1).verify(other, &token, at(NOW)),
                Err(LinkError::Malformed)
            );
        }
        assert_eq!(
            key(2).verify(LinkPurpose::Withdraw, &token, at(NOW)),
            Err(LinkError::Tampered)
        );
        assert_eq!(
            key(1).verify(LinkPurpose::Withdraw, &token, at(NOW + 60)),
            Err(LinkError::Expired)
        );
        // Past its expiry the signature still names the sign-up, for the refusal's words.
        assert_eq!(
            key(1).verify_signature(LinkPurpose::Withdraw, &token),
            Ok((id, at(NOW + 60)))
        );
        assert_eq!(
            key(2).verify_signature(LinkPurpose::Withdraw, &token),
            Err(LinkError::Tampered)
        );
    }

    #[test]
    fn every_changed_byte_is_refused() {
        let token = key(1).issue(LinkPurpose::Confirm, SubmissionId::generate(), at(NOW + 60));
        let bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        for index in 0..bytes.len() {
            let mut changed = bytes.clone();
            changed[index] ^= 1;
            let changed = URL_SAFE_NO_PAD.encode(changed);
            assert!(
                key(1)
                    .verify(LinkPurpose::Confirm, &changed, at(NOW))
                    .is_err(),
                "byte {index}"
            );
        }
    }

    #[test]
    fn a_follow_up_key_does_not_sign_visitor_links() {
        let secret = ServerSecret::from_bytes(&[1; 32]);
        assert_ne!(
            secret.key(KeyPurpose::VisitorLink),
            secret.key(KeyPurpose::FollowupLink)
        );
        assert_ne!(
            AddressHasher::from_secret(&secret).hash("a@example.org"),
            AddressHasher::from_secret(&secret).hash("b@example.org")
        );
    }
}
