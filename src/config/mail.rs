//! `[mail]` and `[mail.smtp]`: how notifications leave, and how hard joinform tries.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::deprecated::{Renamed, Unit};
use super::{ConfigError, HumanDuration, SecretSetting, within};

/// `mail.smtp.timeout`, once `mail.smtp.timeout_seconds`.
pub(super) const SMTP_TIMEOUT: Renamed = Renamed {
    new: "mail.smtp.timeout",
    old: "mail.smtp.timeout_seconds",
    unit: Unit::Seconds,
};

/// How notifications are sent and retried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailSettings {
    /// `file` writes each message as an .eml file; `smtp` sends it.
    pub transport: TransportKind,
    /// The sender: a mailbox of the organisation's own domain.
    pub from: String,
    /// Where the file transport writes messages.
    pub file_dir: PathBuf,
    /// The first retry waits this long; each next one twice as long, with jitter.
    pub retry_initial: HumanDuration,
    /// No retry waits longer than this.
    pub retry_max: HumanDuration,
    /// A message still not delivered this long after the sign-up is marked failed.
    pub give_up_after: HumanDuration,
    /// The most messages sent per second: protects the mail server and leaves the CPU
    /// to sign-ups when a backlog is drained.
    pub max_per_second: u32,
    /// The most notifications a section's contacts get one by one in an hour (issue
    /// 17); past it, further ones wait and go out listed in one overflow mail, at most
    /// one an hour per section.
    pub max_notifications_per_section_per_hour: u32,
    /// The SMTP server, used when `transport` is `smtp`.
    pub smtp: SmtpSettings,
}

/// Where notifications go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// Each message becomes an .eml file in `mail.file_dir`: no mail server needed.
    File,
    /// Each message is sent through `mail.smtp`.
    Smtp,
}

/// How the SMTP connection is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, which is required (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on the same host or a test server.
    None,
}

/// The SMTP server and its credentials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpSettings {
    /// Host name or address of the server; also the name its certificate must bear.
    pub host: String,
    /// TCP port: 587 for STARTTLS, 465 for TLS.
    pub port: u16,
    /// How the connection is encrypted.
    pub tls: SmtpTls,
    /// The login, if the server wants one; goes with `password`.
    pub username: Option<String>,
    /// Best given as JOINFORM_MAIL__SMTP__PASSWORD, never in a committed file.
    pub password: Option<SecretSetting>,
    /// How long each network step of the SMTP conversation may take.
    pub timeout: HumanDuration,
    /// Deprecated: `timeout` in seconds. Read, never written; folded into `timeout` on
    /// loading (see `config::deprecated`).
    #[serde(skip_serializing)]
    pub timeout_seconds: Option<u64>,
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            transport: TransportKind::File,
            from: "joinform <joinform@example.org>".to_owned(),
            file_dir: PathBuf::from("data/mail"),
            retry_initial: HumanDuration::from_secs(30),
            retry_max: HumanDuration::from_secs(3600),
            give_up_after: HumanDuration::from_secs(3 * 24 * 3600),
            max_per_second: 20,
            max_notifications_per_section_per_hour: 60,
            smtp: SmtpSettings::default(),
        }
    }
}

impl Default for SmtpSettings {
    fn default() -> Self {
        Self {
            host: "localhost".to_owned(),
            port: 587,
            tls: SmtpTls::Starttls,
            username: None,
            password: None,
            timeout: HumanDuration::from_secs(10),
            timeout_seconds: None,
        }
    }
}

impl MailSettings {
    /// Checks what serde cannot: the retry schedule's order, the pace, and that the
    /// SMTP settings are complete. `mail.from` is parsed by `mail::sender`.
    ///
    /// # Errors
    /// The first value out of range or missing, by its key.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.retry_initial < HumanDuration::from_secs(1) {
            return Err(ConfigError::bad(
                "mail.retry_initial",
                "must be at least 1s",
            ));
        }
        if self.retry_max < self.retry_initial {
            return Err(ConfigError::bad(
                "mail.retry_max",
                "must not be shorter than mail.retry_initial",
            ));
        }
        if self.give_up_after < self.retry_initial {
            return Err(ConfigError::bad(
                "mail.give_up_after",
                "must not be shorter than mail.retry_initial",
            ));
        }
        within("mail.max_per_second", self.max_per_second, 1..=10_000)?;
        within(
            "mail.max_notifications_per_section_per_hour",
            self.max_notifications_per_section_per_hour,
            1..=100_000,
        )?;
        self.smtp.check(self.transport)
    }
}

impl SmtpSettings {
    /// Checks the timeout, and that a host and whole credentials are given.
    ///
    /// # Errors
    /// The first value out of range or missing, by its key.
    fn check(&self, transport: TransportKind) -> Result<(), ConfigError> {
        SMTP_TIMEOUT.within(
            self.timeout_seconds,
            self.timeout,
            HumanDuration::from_secs(1)..=HumanDuration::from_secs(300),
        )?;
        if transport == TransportKind::Smtp && self.host.trim().is_empty() {
            return Err(ConfigError::bad(
                "mail.smtp.host",
                "is required when mail.transport = \"smtp\"",
            ));
        }
        if self.username.is_some() != self.password.is_some() {
            return Err(ConfigError::bad(
                "mail.smtp.password",
                "username and password go together (set JOINFORM_MAIL__SMTP__PASSWORD)",
            ));
        }
        Ok(())
    }
}
