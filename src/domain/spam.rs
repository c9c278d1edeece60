//! What the spam layers find, as the store records it.

use super::Timestamp;

/// Why a submission is spam. The codes are stable: they are stored, logged and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
    pub const ALL: [Self; 14] = [
        Self::Honeypot,
        Self::TokenMissing,
        Self::TokenMalformed,
        Self::TokenTampered,
        Self::TokenTooFast,
        Self::TokenExpired,
        Self::TokenReplayed,
        Self::LinkInName,
        Self::LinkInCity,
        Self::TooManyLinks,
        Self::BlockedPhrase,
        Self::BlockedPattern,
        Self::SymbolsInName,
        Self::DigitsInName,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Self::Honeypot => "honeypot",
            Self::TokenMissing => "token_missing",
            Self::TokenMalformed => "token_malformed",
            Self::TokenTampered => "token_tampered",
            Self::TokenTooFast => "token_too_fast",
            Self::TokenExpired => "token_expired",
            Self::TokenReplayed => "token_replayed",
            Self::LinkInName => "link_in_name",
            Self::LinkInCity => "link_in_city",
            Self::TooManyLinks => "too_many_links",
            Self::BlockedPhrase => "blocked_phrase",
            Self::BlockedPattern => "blocked_pattern",
            Self::SymbolsInName => "symbols_in_name",
            Self::DigitsInName => "digits_in_name",
        }
    }
}

/// The nonce of a token that passed every check but single use, and when the token
/// expires (after which the nonce need not be remembered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenNonce {
    pub nonce: String,
    pub expires_at: Timestamp,
}
