//! Where messages go: an SMTP server (pooled connections, built once at start-up) or
//! .eml files in a folder. Both sit behind the same outbox and worker.

use std::time::Duration;

use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use crate::config::{MailSettings, SmtpTls, TransportKind};

#[derive(Debug, thiserror::Error)]
pub enum TransportSetupError {
    #[error("mail.smtp: cannot set up TLS for {host}")]
    Tls {
        host: String,
        #[source]
        source: lettre::transport::smtp::Error,
    },
    #[error("mail.file_dir: cannot create {path}")]
    FileDir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Why a message was not delivered, in the two kinds the outbox cares about. The text
/// says what an operator should look at; it never holds the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// May succeed later: connection refused or reset, timeout, TLS failure, SMTP 4xx.
    #[error("{0}")]
    Transient(String),
    /// Will not succeed as it is: SMTP 5xx, or a message we cannot build.
    #[error("{0}")]
    Permanent(String),
}

pub enum Mailer {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        timeout: Duration,
    },
    File(AsyncFileTransport<Tokio1Executor>),
}

impl Mailer {
    /// Builds the transport; connects to nothing yet.
    pub fn from_settings(settings: &MailSettings) -> Result<Self, TransportSetupError> {
        match settings.transport {
            TransportKind::File => {
                std::fs::create_dir_all(&settings.file_dir).map_err(|source| {
                    TransportSetupError::FileDir {
                        path: settings.file_dir.clone(),
                        source,
                    }
                })?;
                // Closes a folder an older joinform left open to other accounts, and
                // with it the messages inside.
                crate::owner_only::restrict(&settings.file_dir);
                Ok(Self::File(AsyncFileTransport::new(&settings.file_dir)))
            }
            TransportKind::Smtp => {
                let smtp = &settings.smtp;
                let tls_error = |source| TransportSetupError::Tls {
                    host: smtp.host.clone(),
                    source,
                };
                let tls = match smtp.tls {
                    SmtpTls::None => Tls::None,
                    SmtpTls::Starttls => {
                        Tls::Required(TlsParameters::new(smtp.host.clone()).map_err(tls_error)?)
                    }
                    SmtpTls::Tls => {
                        Tls::Wrapper(TlsParameters::new(smtp.host.clone()).map_err(tls_error)?)
                    }
                };
                let timeout = smtp.timeout.get();
                let mut builder =
                    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
                        .port(smtp.port)
                        .tls(tls)
                        .timeout(Some(timeout))
                        .pool_config(PoolConfig::new().max_size(4));
                if let (Some(username), Some(password)) = (&smtp.username, &smtp.password) {
                    builder = builder.credentials(Credentials::new(
                        username.clone(),
                        password.expose_secret().to_owned(),
                    ));
                }
                Ok(Self::Smtp {
                    transport: builder.build(),
                    timeout,
                })
            }
        }
    }

    pub async fn send(&self, message: Message) -> Result<(), DeliveryError> {
        match self {
            Self::File(transport) => transport.send(message).await.map(drop).map_err(|error| {
                DeliveryError::Transient(redact_addresses(&format!("file transport: {error}")))
            }),
            Self::Smtp { transport, timeout } => {
                // A server may name a recipient by the local part alone ("user
                // kari.nordmann unknown"): those words are redacted too.
                let local_parts: Vec<String> = message
                    .envelope()
                    .to()
                    .iter()
                    .map(|address| address.user().to_owned())
                    .collect();
                // lettre's timeout covers each network step; this bounds the whole
                // conversation, so a server that trickles bytes cannot hold a send.
                match tokio::time::timeout(*timeout * 3, transport.send(message)).await {
                    Ok(result) => result
                        .map(drop)
                        .map_err(|error| redact_local_parts(classify(error), &local_parts)),
                    Err(_) => Err(DeliveryError::Transient(format!(
                        "SMTP conversation took longer than {}s",
                        timeout.as_secs() * 3
                    ))),
                }
            }
        }
    }
}

/// SMTP 5xx and client-side errors are permanent; everything else may pass later.
fn classify(error: lettre::transport::smtp::Error) -> DeliveryError {
    let text = error_text(&error);
    if error.is_permanent() || error.is_client() {
        DeliveryError::Permanent(text)
    } else {
        DeliveryError::Transient(text)
    }
}

/// The error and its causes on one line, with a word on what kind of fault it is.
fn error_text(error: &lettre::transport::smtp::Error) -> String {
    let kind = if error.is_timeout() {
        "timeout"
    } else if error.is_tls() {
        "TLS"
    } else if error.is_transient() {
        "SMTP 4xx"
    } else if error.is_permanent() {
        "SMTP 5xx"
    } else {
        "connection"
    };
    let mut text = format!("{kind}: {error}");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        // lettre's own message often quotes its cause already.
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    redact_addresses(
        &text
            .chars()
            .filter(|c| !c.is_control())
            .take(500)
            .collect::<String>(),
    )
}

/// `error` with every word that is one of `local_parts` (the recipients' own, compared
/// without case and without the brackets and punctuation around a word) redacted.
fn redact_local_parts(error: DeliveryError, local_parts: &[String]) -> DeliveryError {
    let redact = |text: String| {
        text.split(' ')
            .map(|word| {
                let bare = word.trim_matches(|c: char| "<>()[]\"'`:;,.".contains(c));
                if !bare.is_empty()
                    && local_parts
                        .iter()
                        .any(|part| part.eq_ignore_ascii_case(bare))
                {
                    "<address>"
                } else {
                    word
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    match error {
        DeliveryError::Transient(text) => DeliveryError::Transient(redact(text)),
        DeliveryError::Permanent(text) => DeliveryError::Permanent(redact(text)),
    }
}

/// A server's error text may quote an address (`<kari@example.org>: rejected`); it is
/// stored and logged, so every word holding an `@` is replaced.
fn redact_addresses(text: &str) -> String {
    text.split(' ')
        .map(|word| {
            if word.contains('@') {
                "<address>"
            } else {
                word
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::redact_addresses;

    #[test]
    fn addresses_in_server_errors_are_redacted() {
        assert_eq!(
            redact_addresses("550 5.1.1 <kari@example.org>: Recipient address rejected"),
            "550 5.1.1 <address> Recipient address rejected"
        );
        assert_eq!(redact_addresses("timeout: no answer"), "timeout: no answer");
    }

    /// A recipient named by its local part alone is redacted too, in any case and
    /// within punctuation; other words, even ones that contain it, are kept.
    #[test]
    fn a_recipients_bare_local_part_in_server_errors_is_redacted() {
        let parts = ["sara.second".to_owned()];
        let error = super::DeliveryError::Permanent(
            "SMTP 5xx: 550 mailbox unavailable; user Sara.Second unknown (sara.second) sara.seconds"
                .to_owned(),
        );
        assert_eq!(
            super::redact_local_parts(error, &parts).to_string(),
            super::DeliveryError::Permanent(
                "SMTP 5xx: 550 mailbox unavailable; user <address> unknown <address> sara.seconds"
                    .to_owned()
            )
            .to_string()
        );
    }
}
