//! Signed link tokens: what the links in follow-up mails carry.
//!
//! Two kinds, each base64url without padding, at most [`MAX_TOKEN_CHARS`]:
//!
//! - A **person token** names one sign-up: version `1` ‖ its id (16 bytes) ‖ expiry (8
//!   bytes, big-endian Unix seconds) ‖ MAC (16 bytes), 41 bytes, 55 characters. The
//!   MAC also covers the sign-up's section, which the token does not carry: a page
//!   decodes the token ([`PersonToken::decode`]), reads the row by its id and checks the
//!   token against the row's section ([`PersonToken::check`]). So a link stops working
//!   when its sign-up moves to another section, and the token holds nothing about the
//!   person.
//! - A **section token** names a section (digest and escalation mails): version `2` ‖
//!   expiry ‖ MAC ‖ the section's name in UTF-8, which the page needs to find the
//!   section (names are at most 100 bytes, `routing`).
//!
//! Each MAC is the first 16 bytes of HMAC-SHA256 under the follow-up link key
//! ([`KeyPurpose::FollowupLink`]) of a label that says the kind (`person`, `section`,
//! then a zero byte) and the fields. 128 bits is far beyond guessing online; the labels
//! keep one kind's MAC from passing as another's.
//!
//! A token is checked in this order: shape (else [`LinkError::Malformed`]), MAC (else
//! [`LinkError::Tampered`]), expiry (else [`LinkError::Expired`]). The MAC comes before
//! the expiry so that an altered expiry reads as tampering, not as a fresh link.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::Mac;
use subtle::ConstantTimeEq;

use crate::domain::{SubmissionId, Timestamp};
use crate::secret::{HmacSha256, KeyPurpose, ServerSecret};

/// Longer tokens are not ours; refusing them before decoding bounds the work a
/// request can cause.
pub const MAX_TOKEN_CHARS: usize = 512;

/// Bytes of each MAC kept: half of HMAC-SHA256.
pub(crate) const MAC_BYTES: usize = 16;
const PERSON_VERSION: u8 = 1;
const SECTION_VERSION: u8 = 2;
/// Version, id, expiry, MAC.
const PERSON_BYTES: usize = 1 + 16 + 8 + MAC_BYTES;
/// Version, expiry, MAC; the section's name follows.
const SECTION_HEADER_BYTES: usize = 1 + 8 + MAC_BYTES;

/// Why a link token was refused. The pages answer all three alike, save perhaps
/// saying an expired link is old; the variants are for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum LinkError {
    /// Not a token of this kind: too long, not base64url, the wrong length or version.
    #[error("the link is not a follow-up link")]
    Malformed,
    /// Shaped right but not signed by this server for this sign-up and section: altered,
    /// made up, signed under an earlier secret, or for a sign-up now in another section.
    #[error("the link's signature does not match")]
    Tampered,
    /// Genuine, but past its expiry.
    #[error("the link has expired")]
    Expired,
}

/// The key link tokens are signed with, derived from the server's secret for this
/// purpose only.
#[derive(Clone)]
pub struct LinkKey([u8; 32]);

impl std::fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkKey(..)")
    }
}

impl LinkKey {
    /// The follow-up link key of `secret`.
    pub fn from_secret(secret: &ServerSecret) -> Self {
        Self(secret.key(KeyPurpose::FollowupLink))
    }

    /// The key of `secret` for `purpose`: visitors' links have one of their own.
    pub fn for_purpose(secret: &ServerSecret, purpose: KeyPurpose) -> Self {
        Self(secret.key(purpose))
    }

    /// The first [`MAC_BYTES`] of the HMAC of `label`, a zero byte, then `parts`.
    pub(crate) fn mac(&self, label: &[u8], parts: &[&[u8]]) -> [u8; MAC_BYTES] {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(label);
        mac.update(&[0]);
        for part in parts {
            mac.update(part);
        }
        let full: [u8; 32] = mac.finalize().into_bytes().into();
        let mut short = [0; MAC_BYTES];
        short.copy_from_slice(&full[..MAC_BYTES]);
        short
    }
}

/// A decoded person token: which sign-up it names and until when. Its signature is not
/// checked yet; only [`PersonToken::check`] says whether to believe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonToken {
    /// The sign-up the link is for.
    pub id: SubmissionId,
    /// The link works before this instant (whole seconds).
    pub expires: Timestamp,
    mac: [u8; MAC_BYTES],
}

impl PersonToken {
    /// A token for the sign-up `id` of section `section` that works until `expires`
    /// (rounded down to the second): 55 base64url characters.
    pub fn issue(key: &LinkKey, id: SubmissionId, section: &str, expires: Timestamp) -> String {
        let id_bytes = id.to_bytes();
        let expiry = expires.unix_seconds().to_be_bytes();
        let mac = person_mac(key, &id_bytes, &expiry, section);
        let mut bytes = Vec::with_capacity(PERSON_BYTES);
        bytes.push(PERSON_VERSION);
        bytes.extend_from_slice(&id_bytes);
        bytes.extend_from_slice(&expiry);
        bytes.extend_from_slice(&mac);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Reads the id and expiry out of `token`, without checking its signature: the id
    /// is what finds the row whose section [`PersonToken::check`] needs.
    ///
    /// # Errors
    /// [`LinkError::Malformed`] for anything that is not a person token's shape.
    pub fn decode(token: &str) -> Result<Self, LinkError> {
        let bytes = decode_base64(token)?;
        let bytes: [u8; PERSON_BYTES] = bytes.try_into().map_err(|_| LinkError::Malformed)?;
        let (version, rest) = bytes.split_at(1);
        let (id, rest) = rest.split_at(16);
        let (expiry, mac) = rest.split_at(8);
        if version != [PERSON_VERSION] {
            return Err(LinkError::Malformed);
        }
        // The lengths are fixed above, so these conversions cannot fail.
        let id: [u8; 16] = id.try_into().map_err(|_| LinkError::Malformed)?;
        let expiry: [u8; 8] = expiry.try_into().map_err(|_| LinkError::Malformed)?;
        let mac: [u8; MAC_BYTES] = mac.try_into().map_err(|_| LinkError::Malformed)?;
        Ok(Self {
            id: SubmissionId::from_bytes(id),
            expires: expiry_instant(expiry)?,
            mac,
        })
    }

    /// Whether this token was signed by `key` for its sign-up in section `section`, and
    /// is still good at `now`.
    ///
    /// # Errors
    /// [`LinkError::Tampered`] when the signature does not match (another key, another
    /// section, an altered id or expiry); then [`LinkError::Expired`] from `expires` on.
    pub fn check(&self, key: &LinkKey, section: &str, now: Timestamp) -> Result<(), LinkError> {
        let expected = person_mac(
            key,
            &self.id.to_bytes(),
            &self.expires.unix_seconds().to_be_bytes(),
            section,
        );
        if !bool::from(expected.ct_eq(&self.mac)) {
            return Err(LinkError::Tampered);
        }
        if now >= self.expires {
            return Err(LinkError::Expired);
        }
        Ok(())
    }

    /// [`decode`](Self::decode) then [`check`](Self::check), for a caller that knows the
    /// section already: the sign-up's id and the link's expiry.
    ///
    /// # Errors
    /// As `decode` and `check`.
    pub fn verify_for_section(
        key: &LinkKey,
        token: &str,
        section: &str,
        now: Timestamp,
    ) -> Result<(SubmissionId, Timestamp), LinkError> {
        let token = Self::decode(token)?;
        token.check(key, section, now)?;
        Ok((token.id, token.expires))
    }
}

fn person_mac(key: &LinkKey, id: &[u8; 16], expiry: &[u8; 8], section: &str) -> [u8; MAC_BYTES] {
    // The id and expiry have fixed lengths, so the section, last, needs no delimiter.
    key.mac(b"person", &[id, expiry, section.as_bytes()])
}

/// Tokens that name a section (digests, escalations).
#[derive(Debug)]
pub struct SectionToken;

impl SectionToken {
    /// A token for section `section` that works until `expires` (rounded down to the
    /// second): 34 base64url characters plus about 4 for every 3 bytes of the name.
    pub fn issue(key: &LinkKey, section: &str, expires: Timestamp) -> String {
        let expiry = expires.unix_seconds().to_be_bytes();
        let mac = section_mac(key, &expiry, section);
        let mut bytes = Vec::with_capacity(SECTION_HEADER_BYTES + section.len());
        bytes.push(SECTION_VERSION);
        bytes.extend_from_slice(&expiry);
        bytes.extend_from_slice(&mac);
        bytes.extend_from_slice(section.as_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The section `token` names, if `key` signed it and it is still good at `now`.
    ///
    /// # Errors
    /// [`LinkError::Malformed`] for anything not shaped as a section token (a name that
    /// is not UTF-8 included), [`LinkError::Tampered`] for a signature that does not
    /// match, [`LinkError::Expired`] from its expiry on.
    pub fn verify(key: &LinkKey, token: &str, now: Timestamp) -> Result<String, LinkError> {
        let bytes = decode_base64(token)?;
        if bytes.len() < SECTION_HEADER_BYTES || bytes[0] != SECTION_VERSION {
            return Err(LinkError::Malformed);
        }
        let (expiry, rest) = bytes[1..].split_at(8);
        let (mac, name) = rest.split_at(MAC_BYTES);
        let expiry: [u8; 8] = expiry.try_into().map_err(|_| LinkError::Malformed)?;
        let expected = section_mac(key, &expiry, name);
        if !bool::from(expected.ct_eq(mac)) {
            return Err(LinkError::Tampered);
        }
        // Signed by us, so the name is one we wrote; checked all the same, as nothing
        // else here trusts a token's bytes before it must.
        let name = std::str::from_utf8(name).map_err(|_| LinkError::Malformed)?;
        if now >= expiry_instant(expiry)? {
            return Err(LinkError::Expired);
        }
        Ok(name.to_owned())
    }
}

fn section_mac(key: &LinkKey, expiry: &[u8; 8], section: impl AsRef<[u8]>) -> [u8; MAC_BYTES] {
    key.mac(b"section", &[expiry, section.as_ref()])
}

/// The hidden form value that goes with `token` on the page its link opens: the page's
/// POST must send it back ([`csrf_ok`]). 22 base64url characters (16 bytes of
/// HMAC-SHA256 of the label `csrf`, a zero byte and the token).
///
/// It ties a POST to a page joinform served for that very link, so a form elsewhere
/// cannot make an organiser's browser change a sign-up, even if the token leaked
/// through a referrer or a log, without also knowing the key.
pub fn csrf_value(key: &LinkKey, token: &str) -> String {
    URL_SAFE_NO_PAD.encode(key.mac(b"csrf", &[token.as_bytes()]))
}

/// Whether `given` is [`csrf_value`] of `token`, compared in constant time.
pub fn csrf_ok(key: &LinkKey, token: &str, given: &str) -> bool {
    bool::from(csrf_value(key, token).as_bytes().ct_eq(given.as_bytes()))
}

/// The bytes of `token`, if it is short enough to be ours and canonical base64url
/// without padding.
pub(crate) fn decode_base64(token: &str) -> Result<Vec<u8>, LinkError> {
    if token.len() > MAX_TOKEN_CHARS {
        return Err(LinkError::Malformed);
    }
    URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| LinkError::Malformed)
}

/// The instant an 8-byte expiry names; one past year 9999 was never issued.
pub(crate) fn expiry_instant(expiry: [u8; 8]) -> Result<Timestamp, LinkError> {
    Timestamp::from_unix_seconds(u64::from_be_bytes(expiry)).ok_or(LinkError::Malformed)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;

    fn key() -> LinkKey {
        LinkKey::from_secret(&ServerSecret::from_bytes(&[7; 32]))
    }

    fn other_key() -> LinkKey {
        LinkKey::from_secret(&ServerSecret::from_bytes(&[8; 32]))
    }

    /// A whole second, as tokens carry expiry instants.
    fn at(seconds: u64) -> Timestamp {
        Timestamp::from_unix_seconds(seconds).unwrap()
    }

    const NOW: u64 = 1_750_000_000;

    /// Every token that differs from `token` in one byte of its decoded form.
    fn with_one_byte_changed(token: &str) -> Vec<String> {
        let bytes = URL_SAFE_NO_PAD.decode(token).unwrap();
        (0..bytes.len())
            .map(|index| {
                let mut changed = bytes.clone();
                changed[index] ^= 0x01;
                URL_SAFE_NO_PAD.encode(changed)
            })
            .collect()
    }

    #[test]
    fn a_person_token_round_trips_without_the_section_in_it() {
        let id = SubmissionId::generate();
        let expires = at(NOW + 3600);
        let token = PersonToken::issue(&key(), id, "Norway", expires);
        assert_eq!(token.len(), 55);
        assert!(!token.contains("Norway"));
        let decoded = PersonToken::decode(&token).unwrap();
        assert_eq!((decoded.id, decoded.expires), (id, expires));
        assert_eq!(decoded.check(&key(), "Norway", at(NOW)), Ok(()));
        assert_eq!(
            PersonToken::verify_for_section(&key(), &token, "Norway", at(NOW)),
            Ok((id, expires))
        );
    }

    #[test]
    fn an_expiry_is_kept_to_the_second_below() {
        let expires = at(NOW).plus(Duration::from_millis(900));
        let token = PersonToken::issue(&key(), SubmissionId::generate(), "N", expires);
        assert_eq!(PersonToken::decode(&token).unwrap().expires, at(NOW));
    }

    #[test]
    fn a_person_token_checks_section_key_and_expiry() {
        let id = SubmissionId::generate();
        let token = PersonToken::issue(&key(), id, "Norway", at(NOW + 60));
        let decoded = PersonToken::decode(&token).unwrap();
        assert_eq!(
            decoded.check(&key(), "Sweden", at(NOW)),
            Err(LinkError::Tampered)
        );
        assert_eq!(
            decoded.check(&other_key(), "Norway", at(NOW)),
            Err(LinkError::Tampered)
        );
        assert_eq!(decoded.check(&key(), "Norway", at(NOW + 59)), Ok(()));
        assert_eq!(
            decoded.check(&key(), "Norway", at(NOW + 60)),
            Err(LinkError::Expired)
        );
        // An expired token signed for another section is tampered first: expiry says
        // nothing until the signature holds.
        assert_eq!(
            decoded.check(&key(), "Sweden", at(NOW + 600)),
            Err(LinkError::Tampered)
        );
    }

    #[test]
    fn a_changed_byte_anywhere_in_a_person_token_is_refused() {
        let token = PersonToken::issue(&key(), SubmissionId::generate(), "Norway", at(NOW + 60));
        for (index, changed) in with_one_byte_changed(&token).iter().enumerate() {
            let outcome = PersonToken::verify_for_section(&key(), changed, "Norway", at(NOW));
            match index {
                // The version.
                0 => assert_eq!(outcome, Err(LinkError::Malformed), "byte {index}"),
                // The expiry: its high bytes name instants past year 9999, which are
                // no token's; the others fail the signature.
                17..25 => assert!(
                    matches!(outcome, Err(LinkError::Malformed | LinkError::Tampered)),
                    "byte {index}: {outcome:?}"
                ),
                _ => assert_eq!(outcome, Err(LinkError::Tampered), "byte {index}"),
            }
        }
    }

    #[test]
    fn a_section_token_round_trips_and_checks_key_and_expiry() {
        let token = SectionToken::issue(&key(), "United Kingdom", at(NOW + 60));
        assert_eq!(
            SectionToken::verify(&key(), &token, at(NOW)),
            Ok("United Kingdom".to_owned())
        );
        assert_eq!(
            SectionToken::verify(&key(), &token, at(NOW + 60)),
            Err(LinkError::Expired)
        );
        assert_eq!(
            SectionToken::verify(&other_key(), &token, at(NOW)),
            Err(LinkError::Tampered)
        );
        let longest = "å".repeat(50);
        let token = SectionToken::issue(&key(), &longest, at(NOW + 60));
        assert_eq!(SectionToken::verify(&key(), &token, at(NOW)), Ok(longest));
    }

    #[test]
    fn a_changed_byte_anywhere_in_a_section_token_is_refused() {
        let token = SectionToken::issue(&key(), "Norway", at(NOW + 60));
        for (index, changed) in with_one_byte_changed(&token).iter().enumerate() {
            let outcome = SectionToken::verify(&key(), changed, at(NOW));
            let expected = if index == 0 {
                LinkError::Malformed
            } else {
                LinkError::Tampered
            };
            assert_eq!(outcome, Err(expected), "byte {index}");
        }
        // Another name under the same signature.
        let bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        let mut renamed = bytes[..SECTION_HEADER_BYTES].to_vec();
        renamed.extend_from_slice(b"Sweden");
        assert_eq!(
            SectionToken::verify(&key(), &URL_SAFE_NO_PAD.encode(renamed), at(NOW)),
            Err(LinkError::Tampered)
        );
    }

    #[test]
    fn one_kind_of_token_is_not_the_other() {
        let person = PersonToken::issue(&key(), SubmissionId::generate(), "N", at(NOW + 60));
        let section = SectionToken::issue(&key(), "N", at(NOW + 60));
        assert_eq!(
            SectionToken::verify(&key(), &person, at(NOW)),
            Err(LinkError::Malformed)
        );
        assert_eq!(PersonToken::decode(&section), Err(LinkError::Malformed));
    }

    #[test]
    fn garbage_is_malformed() {
        let overlong = "A".repeat(MAX_TOKEN_CHARS + 4);
        let cases = [
            ("", "empty"),
            ("abc", "too short"),
            ("not base64!", "not base64url"),
            ("AQ==", "padded"),
            ("AQ+/", "standard base64, not url-safe"),
            (overlong.as_str(), "longer than any token"),
        ];
        for (token, reason) in cases {
            assert_eq!(
                PersonToken::decode(token),
                Err(LinkError::Malformed),
                "{reason}"
            );
            assert_eq!(
                SectionToken::verify(&key(), token, at(NOW)),
                Err(LinkError::Malformed),
                "{reason}"
            );
        }
        // The right length and version, but an expiry past year 9999.
        let mut bytes = vec![PERSON_VERSION];
        bytes.extend_from_slice(&[0; 16]);
        bytes.extend_from_slice(&u64::MAX.to_be_bytes());
        bytes.extend_from_slice(&[0; MAC_BYTES]);
        assert_eq!(
            PersonToken::decode(&URL_SAFE_NO_PAD.encode(bytes)),
            Err(LinkError::Malformed)
        );
    }

    #[test]
    fn the_csrf_value_belongs_to_its_token_and_key() {
        let token = PersonToken::issue(&key(), SubmissionId::generate(), "N", at(NOW + 60));
        let value = csrf_value(&key(), &token);
        assert_eq!(value.len(), 22);
        assert!(csrf_ok(&key(), &token, &value));
        assert!(!csrf_ok(&other_key(), &token, &value));
        let other = PersonToken::issue(&key(), SubmissionId::generate(), "N", at(NOW + 60));
        assert!(!csrf_ok(&key(), &other, &value));
        assert!(!csrf_ok(&key(), &token, ""));
        assert!(!csrf_ok(&key(), &token, &value[..21]));
        assert_ne!(csrf_value(&key(), &token), token);
    }

    #[test]
    fn link_keys_differ_from_form_token_keys() {
        let secret = ServerSecret::from_bytes(&[7; 32]);
        assert_ne!(
            secret.key(KeyPurpose::FollowupLink),
            secret.key(KeyPurpose::FormToken)
        );
        assert_eq!(format!("{:?}", key()), "LinkKey(..)");
    }

    proptest! {
        /// No text makes decoding or checking panic, whatever it holds.
        #[test]
        fn no_text_makes_a_token_panic(token in "\\PC{0,600}") {
            let _ = PersonToken::decode(&token).map(|t| t.check(&key(), "N", at(NOW)));
            let _ = SectionToken::verify(&key(), &token, at(NOW));
            let _ = csrf_ok(&key(), &token, &token);
        }

        /// Neither do base64url texts of any bytes, which reach past the first check.
        #[test]
        fn no_bytes_make_a_token_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let token = URL_SAFE_NO_PAD.encode(&bytes);
            let _ = PersonToken::decode(&token).map(|t| t.check(&key(), "N", at(NOW)));
            let _ = SectionToken::verify(&key(), &token, at(NOW));
        }
    }
}
