//! What the spam layers find, as the store records it.

use super::Timestamp;

/// Why a submission is spam. The codes are stable: they are stored, logged and counted.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
)]
#[strum(serialize_all = "snake_case")]
pub enum SpamReason {
    Honeypot,
    TokenMissing,
    TokenMalformed,
    TokenTampered,
    TokenTooFast,
    TokenExpired,
    TokenReplayed,
    LinkInName,
    LinkInCity,
    TooManyLinks,
    BlockedPhrase,
    BlockedPattern,
    SymbolsInName,
    DigitsInName,
}

impl SpamReason {
    /// The stable code: the variant's name in snake_case (`token_too_fast`).
    pub fn code(self) -> &'static str {
        self.into()
    }
}

/// Why a sign-up is held for review rather than notified (issue 17): a flood was on and
/// it carried no valid proof of work. Stored first in the held row's `spam_reasons`,
/// followed by `no_proof` or the refused proof's verdict (`proof_expired`…).
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum HoldReason {
    /// Sign-ups came in at or over `spam.pow_baseline_per_minute` in the last minute.
    OverBaseline,
    /// Requests came in past `rate_limit.global_per_second`.
    OverGlobalLimit,
}

impl HoldReason {
    /// The stable code: `over_baseline` or `over_global_limit`.
    pub fn code(self) -> &'static str {
        self.into()
    }

    /// Why a sign-up is held, as its `spam_reasons` store it and its log line says: this
    /// reason's code; then `no_proof`, or `proof_` and the verdict on the proof it
    /// carried; then `form_token` when it came with a valid form token (the form page
    /// without JavaScript: not enough to pass, since a token costs a bot only a
    /// request, but a hint of a person for whoever reviews).
    pub fn codes(self, proof: Option<PowVerdict>, form_token: bool) -> Vec<&'static str> {
        let proof = match proof {
            None => "no_proof",
            Some(PowVerdict::Verified) => "proof_verified",
            Some(PowVerdict::Replayed) => "proof_replayed",
            Some(PowVerdict::Malformed) => "proof_malformed",
            Some(PowVerdict::BadSignature) => "proof_bad_signature",
            Some(PowVerdict::WrongAnswer) => "proof_wrong_answer",
            Some(PowVerdict::Expired) => "proof_expired",
            Some(PowVerdict::TooEasy) => "proof_too_easy",
        };
        let mut codes = vec![self.code(), proof];
        if form_token {
            codes.push("form_token");
        }
        codes
    }
}

/// The nonce of a token that passed every check but single use, and when the token
/// expires (after which the nonce need not be remembered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenNonce {
    pub nonce: String,
    pub expires_at: Timestamp,
}

/// What came of the proof of work a post carried in its `altcha` field (issue 17). The
/// codes are stable: they are counted (`joinform_pow_verdicts_total{result}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum PowVerdict {
    /// Solved, signed by this server, in time, hard enough and never used before.
    Verified,
    /// As `Verified`, but its challenge was used up by an earlier post.
    Replayed,
    Malformed,
    BadSignature,
    WrongAnswer,
    Expired,
    TooEasy,
}

impl PowVerdict {
    /// The stable code: the variant's name in snake_case (`too_easy`).
    pub fn code(self) -> &'static str {
        self.into()
    }
}

/// A proof of work as the request side found it; single use is the writer's to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProofOfWork {
    /// Passed every check but single use: the nonce the writer uses up in
    /// `used_tokens` (prefixed, so it never meets a form token's nonce).
    Solved(TokenNonce),
    /// Refused on the request side, with why (never `Verified` or `Replayed`).
    Refused(PowVerdict),
}

#[cfg(test)]
mod tests {
    use strum::VariantArray;

    use super::*;

    #[test]
    fn the_codes_are_the_stable_ones_stored_logged_and_counted() {
        // Renaming a variant must not rename a code that rows, logs and dashboards hold.
        let codes: Vec<&str> = SpamReason::VARIANTS.iter().map(|r| r.code()).collect();
        assert_eq!(
            codes,
            [
                "honeypot",
                "token_missing",
                "token_malformed",
                "token_tampered",
                "token_too_fast",
                "token_expired",
                "token_replayed",
                "link_in_name",
                "link_in_city",
                "too_many_links",
                "blocked_phrase",
                "blocked_pattern",
                "symbols_in_name",
                "digits_in_name",
            ]
        );
        assert_eq!("token_replayed".parse(), Ok(SpamReason::TokenReplayed));
    }
}
