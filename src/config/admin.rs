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
}

impl Default for AdminSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            tokens: Vec::new(),
            failed_auth_per_minute: 10,
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
        let digest_ok =
            self.sha256.len() == 64 && self.sha256.chars().all(|c| c.is_ascii_hexdigit());
        if !digest_ok {
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
