//! Spam and abuse defence, cheapest layer first: rate limits (before the body is read),
//! then, once a submission has parsed, the honeypot, the form token and the content
//! rules. Duplicates and the per-address daily limit need the database, so the writer
//! decides those in the submission's own transaction (`store::submissions::admit`).
//!
//! A spam verdict never changes the answer the sender sees: probing teaches nothing.

mod altcha;
mod client;
mod content;
mod flood;
mod rate_limit;
mod token;

use crate::config::Settings;
use crate::domain::{NewSubmission, ProofOfWork, RawForm, RawValue, SpamReason, TokenNonce};
use crate::secret::{KeyPurpose, ServerSecret};

pub use altcha::{ALTCHA_FIELD, AltchaError, Challenge, ProofsOfWork};
pub use client::{ClientHasher, ClientIp, TrustedProxies};
pub use content::ContentRules;
pub use flood::FloodGauge;
pub use rate_limit::{LimitScope, Limited, RateLimiter};
pub use token::{FormTokens, IssuedToken, TOKEN_FIELD};

/// The spam layers that judge a parsed submission, built once from the settings.
pub struct SpamChecks {
    honeypot_field: String,
    require_token: bool,
    pub tokens: FormTokens,
    pub proofs: ProofsOfWork,
    content: ContentRules,
    threshold: u32,
}

/// What the request-side layers found. The token's nonce goes to the writer, which
/// refuses a second use in the same transaction that stores the submission.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Judgement {
    pub reasons: Vec<SpamReason>,
    pub token: Option<TokenNonce>,
    /// The proof of work in the `altcha` field, when one was posted. A missing or
    /// refused proof adds no spam reason: it only matters during a flood, when a
    /// sign-up without a verified one is held (`store::submissions::admit_with_proof`).
    pub proof: Option<ProofOfWork>,
}

impl SpamChecks {
    pub fn from_settings(settings: &Settings, secret: &ServerSecret) -> Self {
        let spam = &settings.spam;
        Self {
            honeypot_field: spam.honeypot_field.clone(),
            require_token: spam.require_token,
            tokens: FormTokens::new(
                secret.key(KeyPurpose::FormToken),
                spam.min_fill.get(),
                spam.token_max_age.get(),
            ),
            proofs: ProofsOfWork::new(
                secret.key(KeyPurpose::ProofOfWork),
                spam.pow_maxnumber,
                spam.pow_ttl.get(),
            ),
            content: ContentRules::from_settings(spam),
            threshold: spam.threshold,
        }
    }

    /// The form fields these checks read, which the body decoders must keep.
    pub fn fields(&self) -> [&str; 3] {
        [self.honeypot_field.as_str(), TOKEN_FIELD, ALTCHA_FIELD]
    }

    pub fn judge(&self, raw: &RawForm, submission: &NewSubmission) -> Judgement {
        let mut judgement = Judgement::default();
        let filled = |name: &str| match raw.get(name) {
            None => None,
            Some(RawValue::Text(text)) => Some(text.trim()).filter(|text| !text.is_empty()),
            Some(RawValue::Bool(false)) => None,
            Some(RawValue::Bool(true) | RawValue::Other) => Some("?"),
        };
        if filled(&self.honeypot_field).is_some() {
            judgement.reasons.push(SpamReason::Honeypot);
        }
        match filled(TOKEN_FIELD) {
            Some(token) => match self.tokens.check(token, std::time::SystemTime::now()) {
                Ok(nonce) => judgement.token = Some(nonce),
                Err(reason) => judgement.reasons.push(reason),
            },
            None if self.require_token => judgement.reasons.push(SpamReason::TokenMissing),
            None => {}
        }
        judgement.proof = filled(ALTCHA_FIELD).map(|posted| {
            match self.proofs.verify(posted, std::time::SystemTime::now()) {
                Ok(nonce) => ProofOfWork::Solved(nonce),
                Err(error) => ProofOfWork::Refused(error.verdict()),
            }
        });
        // Honeypot and token failures are spam by themselves; content rules add up.
        let (score, content_reasons) = self.content.score(submission);
        if score >= self.threshold {
            judgement.reasons.extend(content_reasons);
        }
        judgement
    }
}
