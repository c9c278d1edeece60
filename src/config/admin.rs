//! `[admin]` and `[[admin.tokens]]`: the admin listener and who may use it.

use std::collections::HashSet;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::{ConfigError, within};

/// The admin listener: exports, erasure and the tokens that may use them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminSettings {
    /// Address and port of the admin listener; never the public one.
    pub listen: SocketAddr,
    /// Who may use it: a name and the SHA-256 of a bearer token each.
    pub tokens: Vec<AdminTokenSettings>,
    /// Failed authentications one client may make per minute before it gets 429.
    pub failed_auth_per_minute: u32,
    /// Whether `GET /metrics` answers without a token on a listener that is not on
    /// loopback. Default `false`: there it needs a bearer token (see
    /// [`AdminSettings::metrics_need_token`]).
    pub public_metrics: bool,
    /// Hex SHA-256 of a token that may read `/metrics` and nothing else (for
    /// Prometheus); any admin token may read it too. Unset: only admin tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_token_sha256: Option<String>,
}

impl Default for AdminSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            tokens: Vec::new(),
            failed_auth_per_minute: 10,
            public_metrics: false,
            metrics_token_sha256: None,
        }
    }
}

/// One admin token, as written in the file. Only its hash is ever configured, so
/// nothing here is secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminTokenSettings {
    /// Shown in the audit trail as the actor.
    pub name: String,
    /// Hex SHA-256 of the token.
    pub sha256: String,
    /// The sections whose contacts it sees; empty means every section.
    #[serde(default)]
    pub sections: Vec<String>,
}

impl AdminSettings {
    /// Checks what serde cannot. The admin listener must not share `public`'s port,
    /// and a token may only be limited to one of `section_names` (the sections and the
    /// fallback).
    ///
    /// # Errors
    /// The first value out of range, malformed or naming nothing, by its key.
    pub fn check(&self, public: SocketAddr, section_names: &[&str]) -> Result<(), ConfigError> {
        // Port 0 (tests) asks the system for a free port, so two zeros cannot clash.
        if self.listen.port() != 0 && self.listen.port() == public.port() {
            return Err(ConfigError::bad(
                "admin.listen",
                "must use another port than server.listen: the admin routes are never \
                 served on the public listener",
            ));
        }
        within(
            "admin.failed_auth_per_minute",
            self.failed_auth_per_minute,
            1..=1000,
        )?;
        if let Some(digest) = &self.metrics_token_sha256
            && !is_sha256_hex(digest)
        {
            return Err(ConfigError::bad(
                "admin.metrics_token_sha256",
                "must be 64 hexadecimal digits (`joinform token metrics` prints it)",
            ));
        }
        let mut names = HashSet::new();
        for (index, token) in self.tokens.iter().enumerate() {
            let key = format!("admin.tokens[{index}]");
            token.check(&key, section_names)?;
            if !names.insert(token.name.as_str()) {
                return Err(ConfigError::bad(
                    format!("{key}.name"),
                    format!("`{}` is used by two tokens", token.name),
                ));
            }
        }
        Ok(())
    }
}

impl AdminSettings {
    /// Whether `GET /metrics` needs a bearer token: when the listener is not bound to
    /// a loopback address (`0.0.0.0` in a container, published by `docker run -P`),
    /// unless `public_metrics` opts out. The series hold no personal data, but they
    /// tell anyone who can reach them how many people sign up, from where, and
    /// whether mail flows.
    pub fn metrics_need_token(&self) -> bool {
        !self.public_metrics && !self.listen.ip().is_loopback()
    }
}

/// Whether `digest` is written as a SHA-256 digest is: 64 hexadecimal digits.
fn is_sha256_hex(digest: &str) -> bool {
    digest.len() == 64 && digest.chars().all(|c| c.is_ascii_hexdigit())
}

impl AdminTokenSettings {
    /// Checks one token, written at `key`, on its own.
    fn check(&self, key: &str, section_names: &[&str]) -> Result<(), ConfigError> {
        let name_ok = (1..=64).contains(&self.name.chars().count())
            && self
                .name
                .chars()
                .all(|c| c.is_alphanumeric() || " _.-@".contains(c));
        if !name_ok {
            return Err(ConfigError::bad(
                format!("{key}.name"),
                "must be 1-64 letters, digits, spaces or _ . - @",
            ));
        }
        if !is_sha256_hex(&self.sha256) {
            return Err(ConfigError::bad(
                format!("{key}.sha256"),
                "must be 64 hexadecimal digits (joinform token new prints it)",
            ));
        }
        for section in &self.sections {
            if !section_names.contains(&section.as_str()) {
                return Err(ConfigError::bad(
                    format!("{key}.sections"),
                    format!("`{section}` is not the name of a section or the fallback"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_need_a_token_off_loopback_unless_made_public() {
        let on = |listen: &str, public_metrics| AdminSettings {
            listen: listen.parse().unwrap(),
            public_metrics,
            ..AdminSettings::default()
        };
        let cases = [
            ("127.0.0.1:8081", false, false, "IPv4 loopback"),
            ("127.0.0.2:8081", false, false, "anywhere in 127/8"),
            ("[::1]:8081", false, false, "IPv6 loopback"),
            ("0.0.0.0:8081", false, true, "every interface"),
            ("[::]:8081", false, true, "every IPv6 interface"),
            ("10.0.0.5:8081", false, true, "a private network"),
            ("0.0.0.0:8081", true, false, "opted out"),
        ];
        for (listen, public, expected, reason) in cases {
            assert_eq!(
                on(listen, public).metrics_need_token(),
                expected,
                "{reason}"
            );
        }
    }

    #[test]
    fn a_metrics_token_digest_must_be_hex_sha256() {
        let with = |digest: &str| AdminSettings {
            metrics_token_sha256: Some(digest.to_owned()),
            ..AdminSettings::default()
        };
        let public = SocketAddr::from(([127, 0, 0, 1], 8080));
        assert!(with(&"ab".repeat(32)).check(public, &[]).is_ok());
        match with("abc").check(public, &[]) {
            Err(ConfigError::BadValue { key, .. }) => assert_eq!(key, "admin.metrics_token_sha256"),
            other => panic!("{other:?}"),
        }
    }
}
