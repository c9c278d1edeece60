//! Settings that must never be printed: the form-token secret and the SMTP password.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, Serializer};
use subtle::ConstantTimeEq;

/// A secret setting. Held in a [`SecretString`], so its `Debug` (and so that of every
/// settings struct, log line or error that shows one) says `[REDACTED]`, and the text
/// is zeroed when dropped; read it with [`ExposeSecret::expose_secret`] where it is
/// used.
///
/// A wrapper rather than a bare `SecretString` for the two things secrecy leaves out
/// on purpose: equality, since settings are compared whole (here in constant time, so
/// comparing a secret tells nothing of it), and serialisation, since settings are
/// written back as a file (figment's layer of defaults, tests that hand their
/// settings to the command line), which must carry the secret itself. Nothing
/// serialises settings to show them.
#[derive(Clone, Debug, Deserialize)]
#[serde(transparent)]
pub struct SecretSetting(SecretString);

impl ExposeSecret<str> for SecretSetting {
    fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl From<&str> for SecretSetting {
    fn from(text: &str) -> Self {
        Self(text.into())
    }
}

impl From<String> for SecretSetting {
    fn from(text: String) -> Self {
        Self(text.into())
    }
}

impl PartialEq for SecretSetting {
    fn eq(&self, other: &Self) -> bool {
        self.expose_secret()
            .as_bytes()
            .ct_eq(other.expose_secret().as_bytes())
            .into()
    }
}

impl Serialize for SecretSetting {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.expose_secret())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    const SECRET: &str = "a form-token secret long enough to be accepted";
    const PASSWORD: &str = "the smtp password";

    fn with_secrets() -> Settings {
        let mut settings = Settings::default();
        settings.spam.secret = Some(SECRET.into());
        settings.mail.smtp.username = Some("joinform".to_owned());
        settings.mail.smtp.password = Some(PASSWORD.into());
        settings
    }

    #[test]
    fn secrets_are_not_in_debug_output() {
        let shown = format!("{:?} {:#?}", with_secrets(), with_secrets());
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(!shown.contains(PASSWORD), "{shown}");
        assert!(shown.contains("REDACTED"), "{shown}");
    }

    #[test]
    fn secrets_survive_being_written_back_as_a_file() {
        let file = toml::to_string(&with_secrets()).unwrap();
        let parsed: Settings = toml::from_str(&file).unwrap();
        assert_eq!(parsed, with_secrets());
        assert_eq!(
            parsed.spam.secret.as_ref().map(ExposeSecret::expose_secret),
            Some(SECRET)
        );
    }

    #[test]
    fn equal_means_the_same_text() {
        assert_eq!(
            SecretSetting::from(SECRET),
            SecretSetting::from(SECRET.to_owned())
        );
        assert_ne!(SecretSetting::from(SECRET), SecretSetting::from(PASSWORD));
    }
}
