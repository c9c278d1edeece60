//! Form tokens: proof that a post came from a form fetched a while ago, not from a
//! script firing straight at the endpoint.
//!
//! A token is `<issued, ms since 1970, hex>.<nonce, 16 random bytes, hex>.<HMAC-SHA256
//! of the first two parts, hex>`. It carries no data about the visitor.

use std::time::{Duration, SystemTime};

use hmac::Mac;

use crate::domain::{SpamReason, Timestamp, TokenNonce};
use crate::secret::{HmacSha256, SecretError, random_bytes};

/// The form field that carries the token.
pub const TOKEN_FIELD: &str = "_token";

/// Longer tokens are not ours; refusing them early bounds the work per request.
const MAX_TOKEN_CHARS: usize = 128;

pub struct FormTokens {
    key: [u8; 32],
    min_fill: Duration,
    max_age: Duration,
}

/// A freshly issued token and when it may be used.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub usable_after: Duration,
    pub expires_in: Duration,
}

impl IssuedToken {
    /// `usable_after` in whole seconds, rounded up (`spam.min_fill` may be `1500ms`): a
    /// page that waits this long never posts too early.
    pub fn usable_after_seconds(&self) -> u64 {
        self.usable_after.as_secs() + u64::from(self.usable_after.subsec_nanos() > 0)
    }
}

impl FormTokens {
    pub fn new(key: [u8; 32], min_fill: Duration, max_age: Duration) -> Self {
        Self {
            key,
            min_fill,
            max_age,
        }
    }

    pub fn issue(&self, now: SystemTime) -> Result<IssuedToken, SecretError> {
        let issued = millis_since_epoch(now);
        let nonce = hex::encode(random_bytes::<16>()?);
        let body = format!("{issued:x}.{nonce}");
        let mac = hex::encode(self.mac(&body).finalize().into_bytes());
        Ok(IssuedToken {
            token: format!("{body}.{mac}"),
            usable_after: self.min_fill,
            expires_in: self.max_age,
        })
    }

    /// Checks signature and age; single use is the writer's to check.
    pub fn check(&self, token: &str, now: SystemTime) -> Result<TokenNonce, SpamReason> {
        if token.len() > MAX_TOKEN_CHARS {
            return Err(SpamReason::TokenMalformed);
        }
        let mut parts = token.split('.');
        let (Some(issued_hex), Some(nonce), Some(mac_hex), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(SpamReason::TokenMalformed);
        };
        let issued = u64::from_str_radix(issued_hex, 16).map_err(|_| SpamReason::TokenMalformed)?;
        let mac = hex::decode(mac_hex).map_err(|_| SpamReason::TokenMalformed)?;
        let body_len = issued_hex.len() + 1 + nonce.len();
        let body = token.get(..body_len).ok_or(SpamReason::TokenMalformed)?;
        self.mac(body)
            .verify_slice(&mac)
            .map_err(|_| SpamReason::TokenTampered)?;
        let now_ms = millis_since_epoch(now);
        let age = Duration::from_millis(now_ms.saturating_sub(issued));
        if issued > now_ms || age < self.min_fill {
            return Err(SpamReason::TokenTooFast);
        }
        if age > self.max_age {
            return Err(SpamReason::TokenExpired);
        }
        let expires = SystemTime::UNIX_EPOCH + Duration::from_millis(issued) + self.max_age;
        Ok(TokenNonce {
            nonce: nonce.to_owned(),
            expires_at: Timestamp::from_system_time(expires),
        })
    }

    fn mac(&self, body: &str) -> HmacSha256 {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(body.as_bytes());
        mac
    }
}

fn millis_since_epoch(time: SystemTime) -> u64 {
    Timestamp::from_system_time(time).unix_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> FormTokens {
        FormTokens::new([7; 32], Duration::from_secs(3), Duration::from_secs(3600))
    }

    #[test]
    fn the_wait_a_page_is_told_is_never_shorter_than_min_fill() {
        for (min_fill, seconds) in [(0, 0), (1000, 1), (1500, 2), (3000, 3)] {
            let tokens = FormTokens::new(
                [7; 32],
                Duration::from_millis(min_fill),
                Duration::from_secs(3600),
            );
            let issued = tokens.issue(SystemTime::now()).unwrap();
            assert_eq!(issued.usable_after_seconds(), seconds, "{min_fill}ms");
        }
    }

    #[test]
    fn a_token_is_good_between_min_fill_and_max_age() {
        let tokens = tokens();
        let issued_at = SystemTime::now();
        let token = tokens.issue(issued_at).unwrap().token;
        let after = |seconds| issued_at + Duration::from_secs(seconds);
        assert_eq!(
            tokens.check(&token, after(1)),
            Err(SpamReason::TokenTooFast)
        );
        assert!(tokens.check(&token, after(4)).is_ok());
        assert_eq!(
            tokens.check(&token, after(3601)),
            Err(SpamReason::TokenExpired)
        );
        let earlier = issued_at - Duration::from_secs(10);
        assert_eq!(tokens.check(&token, earlier), Err(SpamReason::TokenTooFast));
    }

    #[test]
    fn any_change_is_tampering_or_malformed() {
        let tokens = tokens();
        let issued_at = SystemTime::now() - Duration::from_secs(10);
        let token = tokens.issue(issued_at).unwrap().token;
        let now = SystemTime::now();
        let (issued, rest) = token.split_once('.').unwrap();
        let older = format!(
            "{:x}.{rest}",
            u64::from_str_radix(issued, 16).unwrap() - 1000
        );
        assert_eq!(tokens.check(&older, now), Err(SpamReason::TokenTampered));
        let other_key = FormTokens::new([8; 32], Duration::ZERO, Duration::from_secs(3600));
        assert_eq!(other_key.check(&token, now), Err(SpamReason::TokenTampered));
        for bad in ["", "abc", "1.2", "1.2.3.4", "zz.00.00", &"a".repeat(200)] {
            assert!(
                matches!(
                    tokens.check(bad, now),
                    Err(SpamReason::TokenMalformed | SpamReason::TokenTampered)
                ),
                "{bad}"
            );
        }
    }
}
