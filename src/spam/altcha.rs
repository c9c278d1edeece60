//! Proof of work, compatible with the ALTCHA widget (issue 17, first part): GET
//! /join/challenge hands out a signed puzzle, and a post may carry its solution in the
//! `altcha` field.
//!
//! The protocol, as ALTCHA's documentation describes it (read, not copied):
//! - the challenge is JSON `{algorithm, challenge, maxnumber, salt, signature}`, where
//!   `algorithm` is `"SHA-256"`, `challenge` the hex SHA-256 of the text `salt` followed
//!   by a secret number's decimal digits, the number at most `maxnumber`, and
//!   `signature` the hex HMAC-SHA256 of the `challenge` text under the server's key;
//!   the salt may carry parameters after a `?`, `expires=<unix seconds>` among them
//!   (<https://www.npmjs.com/package/altcha-lib>, <https://pypi.org/p/altcha>,
//!   <https://www.rubydoc.info/gems/altcha/Altcha> `create_challenge`,
//!   <https://hexdocs.pm/altcha/Altcha.epub> `Altcha.Challenge`);
//! - the widget finds the number and posts, in the form field `altcha`, the base64 of
//!   the JSON `{algorithm, challenge, number, salt, signature}` (and `took`, the
//!   milliseconds it spent), which the server checks (`verifySolution(payload, hmacKey)`,
//!   "a Base64-encoded JSON payload (as submitted by the widget)",
//!   <https://www.npmjs.com/package/altcha-lib>).
//!
//! Why a solution cannot be made cheaper than what we issue now: the signature covers
//! only `challenge`, but `challenge` is the hash of the salt, and the salt carries our
//! parameters (`expires`, `maxnumber`). A client that changes a parameter changes the
//! hash, which it cannot sign. `maxnumber` in the challenge JSON is a hint for the
//! widget and is never read back; the salt's copy is the one compared with
//! `spam.pow_maxnumber`, so a challenge issued before an operator raised the quiet
//! difficulty is refused as too easy. One issued easier as a flood began stays good
//! until it expires (`spam.pow_ttl`): a visitor who opened the page before the flood is
//! not turned away, and a stock of them is bounded by the challenge limit and the ttl. Our salts end with `&`, and a solution's salt must too: otherwise digits
//! could move between the salt's last parameter and the number (`…expires=17` + `42`
//! hashes as `…expires=174` + `2`), lengthening a challenge's life under the same
//! signature. The number has no `&`, so the last `&` fixes where the salt ends.
//!
//! Single use is the writer's: a verified solution's nonce (`pow:` and its signature)
//! goes into `used_tokens` in the transaction that stores the post.

use std::time::{Duration, SystemTime};

use base64::Engine;
use hmac::Mac;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::domain::{PowVerdict, Timestamp, TokenNonce};
use crate::secret::{HmacSha256, SecretError, random_bytes};

/// The form field the widget posts its solution in.
pub const ALTCHA_FIELD: &str = crate::domain::PROOF_OF_WORK_FIELD;

/// The only algorithm issued and accepted.
const ALGORITHM: &str = "SHA-256";

/// A longer payload is not one of ours (ours are about 400 characters); refused before
/// it is decoded, which bounds the work per request.
const MAX_PAYLOAD_CHARS: usize = 1024;

/// What prefixes a solution's nonce in `used_tokens`: form tokens' nonces are bare hex,
/// so the two never meet.
const NONCE_PREFIX: &str = "pow:";

/// A challenge, as GET /join/challenge sends it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Challenge {
    pub algorithm: String,
    pub challenge: String,
    pub maxnumber: u64,
    pub salt: String,
    pub signature: String,
}

/// Why a posted solution is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AltchaError {
    #[error("not a base64 JSON solution to one of our challenges")]
    Malformed,
    #[error("the challenge's signature is not ours")]
    BadSignature,
    #[error("the number does not solve the challenge")]
    WrongAnswer,
    #[error("the challenge has expired")]
    Expired,
    #[error("the challenge is easier than the ones issued now")]
    TooEasy,
}

impl AltchaError {
    /// The verdict counted and recorded for this refusal.
    pub fn verdict(self) -> PowVerdict {
        match self {
            Self::Malformed => PowVerdict::Malformed,
            Self::BadSignature => PowVerdict::BadSignature,
            Self::WrongAnswer => PowVerdict::WrongAnswer,
            Self::Expired => PowVerdict::Expired,
            Self::TooEasy => PowVerdict::TooEasy,
        }
    }
}

/// What the widget posts, once decoded. Other members (`took`) are ignored.
#[derive(Deserialize)]
struct Payload {
    algorithm: String,
    challenge: String,
    number: u64,
    salt: String,
    signature: String,
}

/// Issues and verifies challenges under one key and difficulty.
pub struct ProofsOfWork {
    key: [u8; 32],
    maxnumber: u64,
    ttl: Duration,
}

impl ProofsOfWork {
    pub fn new(key: [u8; 32], maxnumber: u64, ttl: Duration) -> Self {
        Self {
            key,
            maxnumber,
            ttl,
        }
    }

    /// A fresh challenge of the quiet difficulty (`spam.pow_maxnumber`).
    ///
    /// # Errors
    /// The system's random number generator failed.
    pub fn issue(&self, now: SystemTime) -> Result<Challenge, SecretError> {
        self.issue_at(now, self.maxnumber)
    }

    /// A fresh challenge: a random salt with its expiry and difficulty, and a random
    /// number in `0..=maxnumber` (the remainder of 64 random bits: its bias, below
    /// 2⁻³⁶ for the largest allowed `maxnumber`, helps nobody). `maxnumber` is what the
    /// flood gauge asks for now, never below the quiet difficulty.
    ///
    /// # Errors
    /// The system's random number generator failed.
    pub fn issue_at(&self, now: SystemTime, maxnumber: u64) -> Result<Challenge, SecretError> {
        let maxnumber = maxnumber.max(self.maxnumber);
        let expires = unix_seconds(now).saturating_add(self.ttl.as_secs());
        let salt = format!(
            "{}?expires={expires}&maxnumber={maxnumber}&",
            hex::encode(random_bytes::<12>()?),
        );
        let number = u64::from_le_bytes(random_bytes::<8>()?) % (maxnumber + 1);
        let challenge = hex::encode(hash(&salt, number));
        let signature = hex::encode(self.mac(&challenge).finalize().into_bytes());
        Ok(Challenge {
            algorithm: ALGORITHM.to_owned(),
            challenge,
            maxnumber,
            salt,
            signature,
        })
    }

    /// Checks a posted `altcha` value: its shape, our signature, the answer, the
    /// expiry and the difficulty. Single use is the writer's to check, with the nonce
    /// returned.
    ///
    /// # Errors
    /// Why the solution is refused.
    pub fn verify(&self, posted: &str, now: SystemTime) -> Result<TokenNonce, AltchaError> {
        if posted.len() > MAX_PAYLOAD_CHARS {
            return Err(AltchaError::Malformed);
        }
        let json = base64::engine::general_purpose::STANDARD
            .decode(posted.trim())
            .map_err(|_| AltchaError::Malformed)?;
        let payload: Payload = serde_json::from_slice(&json).map_err(|_| AltchaError::Malformed)?;
        if payload.algorithm != ALGORITHM {
            return Err(AltchaError::Malformed);
        }
        let challenge = decode_hash(&payload.challenge)?;
        let signature = decode_hash(&payload.signature)?;
        self.mac(&payload.challenge)
            .verify_slice(&signature)
            .map_err(|_| AltchaError::BadSignature)?;
        let params = SaltParams::parse(&payload.salt)?;
        let solved = hash(&payload.salt, payload.number);
        if payload.number > params.maxnumber || !bool::from(solved.ct_eq(&challenge)) {
            return Err(AltchaError::WrongAnswer);
        }
        if params.expires <= unix_seconds(now) {
            return Err(AltchaError::Expired);
        }
        if params.maxnumber < self.maxnumber {
            return Err(AltchaError::TooEasy);
        }
        Ok(TokenNonce {
            // Re-encoded, so an upper-case copy of the signature is the same nonce.
            nonce: format!("{NONCE_PREFIX}{}", hex::encode(signature)),
            expires_at: Timestamp::from_system_time(
                SystemTime::UNIX_EPOCH + Duration::from_secs(params.expires),
            ),
        })
    }

    fn mac(&self, challenge: &str) -> HmacSha256 {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(challenge.as_bytes());
        mac
    }
}

/// The parameters our salts carry.
struct SaltParams {
    expires: u64,
    maxnumber: u64,
}

impl SaltParams {
    /// `<random hex>?expires=<s>&maxnumber=<n>&`: other parameters are allowed (the
    /// protocol has them) but ignored; both of ours must be there, once, and the salt
    /// must end with `&` (see the module's documentation).
    fn parse(salt: &str) -> Result<Self, AltchaError> {
        let query = salt
            .strip_suffix('&')
            .and_then(|salt| salt.split_once('?'))
            .map(|(_, query)| query)
            .ok_or(AltchaError::Malformed)?;
        let (mut expires, mut maxnumber) = (None, None);
        for pair in query.split('&') {
            let slot = match pair.split_once('=') {
                Some(("expires", value)) => (&mut expires, value),
                Some(("maxnumber", value)) => (&mut maxnumber, value),
                _ => continue,
            };
            let value = slot.1.parse::<u64>().map_err(|_| AltchaError::Malformed)?;
            if slot.0.replace(value).is_some() {
                return Err(AltchaError::Malformed);
            }
        }
        match (expires, maxnumber) {
            (Some(expires), Some(maxnumber)) => Ok(Self { expires, maxnumber }),
            _ => Err(AltchaError::Malformed),
        }
    }
}

/// SHA-256 of the salt followed by the number's decimal digits.
fn hash(salt: &str, number: u64) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(salt.as_bytes());
    hasher.update(number.to_string().as_bytes());
    hasher.finalize().into()
}

/// 64 hex digits as 32 bytes.
fn decode_hash(text: &str) -> Result<[u8; 32], AltchaError> {
    let bytes = hex::decode(text).map_err(|_| AltchaError::Malformed)?;
    <[u8; 32]>::try_from(bytes).map_err(|_| AltchaError::Malformed)
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [9; 32];

    fn proofs(maxnumber: u64) -> ProofsOfWork {
        ProofsOfWork::new(KEY, maxnumber, Duration::from_secs(600))
    }

    /// The number that solves `challenge`, by trying every one as the widget does.
    fn solve(challenge: &Challenge) -> u64 {
        let target = hex::decode(&challenge.challenge).unwrap();
        (0..=challenge.maxnumber)
            .find(|&number| hash(&challenge.salt, number)[..] == target[..])
            .unwrap()
    }

    fn payload(challenge: &Challenge, number: u64) -> String {
        let json = serde_json::json!({
            "algorithm": challenge.algorithm,
            "challenge": challenge.challenge,
            "number": number,
            "salt": challenge.salt,
            "signature": challenge.signature,
            "took": 25,
        });
        base64::engine::general_purpose::STANDARD.encode(json.to_string())
    }

    #[test]
    fn a_solved_challenge_is_verified_with_a_prefixed_nonce() {
        let proofs = proofs(1000);
        let now = SystemTime::now();
        let challenge = proofs.issue(now).unwrap();
        assert_eq!(challenge.algorithm, "SHA-256");
        assert_eq!(challenge.maxnumber, 1000);
        assert!(challenge.salt.contains("?expires=") && challenge.salt.ends_with('&'));
        let nonce = proofs
            .verify(&payload(&challenge, solve(&challenge)), now)
            .unwrap();
        assert_eq!(nonce.nonce, format!("pow:{}", challenge.signature));
        assert!(nonce.expires_at > Timestamp::from_system_time(now));
    }

    #[test]
    fn each_way_of_cheating_is_refused_with_its_reason() {
        let proofs = proofs(1000);
        let now = SystemTime::now();
        let challenge = proofs.issue(now).unwrap();
        let number = solve(&challenge);
        let good = payload(&challenge, number);
        let mut tampered = challenge.clone();
        let flipped = if tampered.signature.starts_with('0') {
            "1"
        } else {
            "0"
        };
        tampered.signature.replace_range(..1, flipped);
        let mut spliced = challenge.clone();
        // The number's first digit moved into the salt: same hashed text.
        let digits = format!("{number}0");
        spliced.salt.push_str(&digits[..1]);
        let later = now + Duration::from_secs(601);
        let cases = [
            (
                proofs.verify(&payload(&challenge, number + 1), now),
                AltchaError::WrongAnswer,
                "another number",
            ),
            (
                proofs.verify(&payload(&tampered, number), now),
                AltchaError::BadSignature,
                "a signature changed",
            ),
            (
                proofs.verify(&payload(&spliced, 0), now),
                AltchaError::Malformed,
                "digits moved into the salt",
            ),
            (proofs.verify(&good, later), AltchaError::Expired, "expired"),
            (
                self::proofs(2000).verify(&good, now),
                AltchaError::TooEasy,
                "issued easier than now",
            ),
            (
                ProofsOfWork::new([1; 32], 1000, Duration::from_secs(600)).verify(&good, now),
                AltchaError::BadSignature,
                "another server's key",
            ),
        ];
        for (result, expected, reason) in cases {
            assert_eq!(result, Err(expected), "{reason}");
        }
        assert!(
            proofs.verify(&good, now).is_ok(),
            "and the honest one passes"
        );
    }

    #[test]
    fn garbage_and_oversized_payloads_are_malformed() {
        let proofs = proofs(1000);
        let now = SystemTime::now();
        let challenge = proofs.issue(now).unwrap();
        let number = solve(&challenge);
        let encode = |json: serde_json::Value| {
            base64::engine::general_purpose::STANDARD.encode(json.to_string())
        };
        let mut sha1 = serde_json::to_value(&challenge).unwrap();
        sha1["algorithm"] = "SHA-1".into();
        sha1["number"] = number.into();
        let mut no_number = serde_json::to_value(&challenge).unwrap();
        no_number["number"] = serde_json::Value::Null;
        let cases = [
            ("", "empty"),
            ("not base64 at all!", "not base64"),
            (
                &*base64::engine::general_purpose::STANDARD.encode("{"),
                "not JSON",
            ),
            (&*encode(sha1), "another algorithm"),
            (&*encode(no_number), "no number"),
            (&*"A".repeat(MAX_PAYLOAD_CHARS + 4), "too long to decode"),
        ];
        for (posted, reason) in cases {
            assert_eq!(
                proofs.verify(posted, now),
                Err(AltchaError::Malformed),
                "{reason}"
            );
        }
    }

    /// Built by hand from the documented format (a salt with parameters, the hash of
    /// salt and number, the HMAC of the hash's hex, base64 of the JSON the widget
    /// posts), not through `issue`.
    #[test]
    fn a_payload_in_the_documented_format_is_accepted() {
        let salt = "4a1c9b0e77d2f3a5b6c8d9e0?expires=4102444800&maxnumber=50000&";
        let number = 31337_u64;
        let challenge = hex::encode(Sha256::digest(format!("{salt}{number}")));
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&KEY).unwrap();
        mac.update(challenge.as_bytes());
        let signature = hex::encode(mac.finalize().into_bytes());
        let json = format!(
            r#"{{"algorithm":"SHA-256","challenge":"{challenge}","number":{number},"salt":"{salt}","signature":"{signature}","took":1234}}"#
        );
        let posted = base64::engine::general_purpose::STANDARD.encode(json);
        let nonce = proofs(50_000).verify(&posted, SystemTime::now()).unwrap();
        assert_eq!(nonce.nonce, format!("pow:{signature}"));
    }
}
