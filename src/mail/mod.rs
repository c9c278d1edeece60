//! Email to the national contact: message building, transports (SMTP or files), and
//! the outbox worker that delivers.

pub mod message;
pub mod overflow;
pub mod pgp_mime;
pub mod templates;
pub mod transport;
pub mod worker;

use lettre::message::Mailbox;

use crate::config::{ConfigError, MailSettings};

pub use templates::Templates;
pub use transport::{DeliveryError, Mailer};
pub use worker::{DeliveryWorker, FollowupMail, RetryPolicy, VisitorMail};

/// `mail.from`, parsed: the organisation's own sender mailbox.
pub fn sender(settings: &MailSettings) -> Result<Mailbox, ConfigError> {
    settings.from.parse::<Mailbox>().map_err(|error| {
        ConfigError::bad(
            "mail.from",
            format!("`{}` is not a mailbox: {error}", settings.from),
        )
    })
}
