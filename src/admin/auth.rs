//! Admin authentication: bearer tokens, configured only as SHA-256 digests, compared in
//! constant time; failed attempts rate limited per client.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::http::header;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{AdminSettings, AdminTokenSettings, ConfigError};

use super::error::AdminError;

/// Query parameters that look like a credential. A token in a URL ends up in proxy
/// logs and browser history, so such a request is refused even if its header is good.
const CREDENTIAL_PARAMETERS: [&str; 6] = [
    "token",
    "access_token",
    "bearer",
    "authorization",
    "api_key",
    "key",
];

/// What a configured digest must be, for its error.
const HEX_DIGEST: &str = "must be 64 hexadecimal digits";

/// A SHA-256 digest written as 64 hexadecimal digits.
fn parse_digest(hex_digest: &str) -> Option<[u8; 32]> {
    hex::decode(hex_digest)
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
}

/// A configured token: who it is and what it may see.
#[derive(Debug, Clone)]
pub struct AdminToken {
    pub name: String,
    digest: [u8; 32],
    /// `None`: every section. `Some`: only these.
    pub sections: Option<Vec<String>>,
}

impl AdminToken {
    /// Whether this token may see `section`'s contacts.
    pub fn may_see(&self, section: &str) -> bool {
        self.sections
            .as_ref()
            .is_none_or(|sections| sections.iter().any(|s| s == section))
    }
}

/// The configured tokens.
#[derive(Debug, Clone, Default)]
pub struct Tokens(Vec<AdminToken>);

impl Tokens {
    pub fn from_settings(tokens: &[AdminTokenSettings]) -> Result<Self, ConfigError> {
        tokens
            .iter()
            .enumerate()
            .map(|(index, token)| {
                let digest = parse_digest(&token.sha256).ok_or_else(|| {
                    ConfigError::bad(format!("admin.tokens[{index}].sha256"), HEX_DIGEST)
                })?;
                Ok(AdminToken {
                    name: token.name.clone(),
                    digest,
                    sections: (!token.sections.is_empty()).then(|| token.sections.clone()),
                })
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// The token `presented` is, if any. The presented token is hashed first, so every
    /// comparison is between two 32-byte digests whatever its length, and every
    /// configured token is compared, without stopping at the first match.
    pub fn find(&self, presented: &str) -> Option<&AdminToken> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for token in &self.0 {
            if bool::from(token.digest.ct_eq(&digest)) {
                found = Some(token);
            }
        }
        found
    }
}

/// Failed authentications per client address. A correct token is never refused, so an
/// attacker who trips the limit cannot lock the organisers out.
pub struct FailedAuthLimiter {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
}

/// Keyed state is pruned once it holds this many clients, so a scan from many
/// addresses cannot grow it without bound.
const PRUNE_ABOVE: usize = 10_000;

impl FailedAuthLimiter {
    pub fn per_minute(count: u32) -> Self {
        let count = NonZeroU32::new(count).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: DefaultKeyedRateLimiter::keyed(Quota::per_minute(count)),
        }
    }

    /// Counts a failure; `Err` with the wait when the client is over its allowance.
    fn failed(&self, client: IpAddr) -> Result<(), Duration> {
        if self.limiter.len() > PRUNE_ABOVE {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(&client)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

/// The token behind a request, or why there is none. Every failure counts against the
/// client's allowance; past it the answer is 429 instead of 401.
pub fn authenticate<'t>(
    request: &HttpRequest,
    tokens: &'t Tokens,
    limiter: &FailedAuthLimiter,
) -> Result<&'t AdminToken, AdminError> {
    counted(request, limiter, check(request, tokens))
}

/// Who may read `GET /metrics` (see `AdminSettings::metrics_need_token`).
#[derive(Debug, Clone)]
pub enum MetricsAccess {
    /// Whoever reaches the listener: it is on loopback, or `admin.public_metrics`.
    Open,
    /// A bearer token: any admin token, or the metrics-only one whose SHA-256 this is
    /// (`admin.metrics_token_sha256`).
    Token {
        /// The metrics-only token's digest, if one is configured.
        metrics_only: Option<[u8; 32]>,
    },
}

impl MetricsAccess {
    /// The access `admin` describes.
    ///
    /// # Errors
    /// `admin.metrics_token_sha256` that is not 64 hexadecimal digits.
    pub fn from_settings(admin: &AdminSettings) -> Result<Self, ConfigError> {
        if !admin.metrics_need_token() {
            return Ok(Self::Open);
        }
        let metrics_only = admin
            .metrics_token_sha256
            .as_deref()
            .map(|digest| {
                parse_digest(digest)
                    .ok_or_else(|| ConfigError::bad("admin.metrics_token_sha256", HEX_DIGEST))
            })
            .transpose()?;
        Ok(Self::Token { metrics_only })
    }
}

/// Whether a request may read `/metrics`. A failure counts against the client's
/// allowance as on every other admin route: past it, 429 instead of 401.
///
/// # Errors
/// [`AdminError::Unauthorized`] (or [`AdminError::TokenInQuery`]) without a token
/// that may; [`AdminError::TooManyAttempts`] past the allowance.
pub fn authorize_metrics(
    request: &HttpRequest,
    access: &MetricsAccess,
    tokens: &Tokens,
    limiter: &FailedAuthLimiter,
) -> Result<(), AdminError> {
    let MetricsAccess::Token { metrics_only } = access else {
        return Ok(());
    };
    let outcome = presented(request).and_then(|presented| {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        // Both compared, whatever the first says, as `Tokens::find` compares them all.
        let dedicated = metrics_only.is_some_and(|known| bool::from(known.ct_eq(&digest)));
        let admin = tokens.find(presented).is_some();
        if dedicated | admin {
            Ok(())
        } else {
            Err(AdminError::Unauthorized)
        }
    });
    counted(request, limiter, outcome)
}

/// `outcome`, with a failure counted against the client's allowance: past it, the
/// answer becomes 429.
fn counted<T>(
    request: &HttpRequest,
    limiter: &FailedAuthLimiter,
    outcome: Result<T, AdminError>,
) -> Result<T, AdminError> {
    if outcome.is_err() {
        let client = request
            .peer_addr()
            .map_or(IpAddr::from([0, 0, 0, 0]), |peer| peer.ip());
        if let Err(wait) = limiter.failed(client) {
            tracing::warn!("admin authentication failures over the limit");
            return Err(AdminError::TooManyAttempts(wait));
        }
        tracing::info!("admin authentication failed");
    }
    outcome
}

fn check<'t>(request: &HttpRequest, tokens: &'t Tokens) -> Result<&'t AdminToken, AdminError> {
    tokens
        .find(presented(request)?)
        .ok_or(AdminError::Unauthorized)
}

/// The bearer token a request presents, trimmed; refused when a query parameter
/// looks like a credential, even beside a good header.
fn presented(request: &HttpRequest) -> Result<&str, AdminError> {
    let credential_in_query = url_pairs(request.query_string())
        .any(|(key, _)| CREDENTIAL_PARAMETERS.contains(&key.to_ascii_lowercase().as_str()));
    if credential_in_query {
        return Err(AdminError::TokenInQuery);
    }
    let value = request
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or(AdminError::Unauthorized)?
        .to_str()
        .map_err(|_| AdminError::Unauthorized)?;
    let (scheme, presented) = value.split_once(' ').ok_or(AdminError::Unauthorized)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AdminError::Unauthorized);
    }
    Ok(presented.trim())
}

/// Decoded `key=value` pairs of a query string.
pub(super) fn url_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
}

fn decode(text: &str) -> String {
    let spaced = text.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}
