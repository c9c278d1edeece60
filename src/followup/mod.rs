//! The follow-up of sign-ups (issue 15): organisers mark each sign-up `new` →
//! `contacted` → `joined`, `declined` or `unreachable` through links in mails, and are
//! reminded of sign-ups nobody has followed up.
//!
//! - [`links`]: the signed tokens in those links. A link names a sign-up (or a
//!   section) and its expiry, never a person's data, and works only as long as its
//!   signature under the server's secret holds.
//! - [`scheduler`]: the task that queues reminders, escalations and digests in the
//!   outbox, one per kind, section and day (or week).
//! - [`mails`]: what those mails say, built when they are sent; also the link each
//!   notification carries.
//!
//! A link never acts on GET, since mail scanners open every link: GET shows a page,
//! and its form POSTs with the [`links::csrf_value`] of the token.

pub mod links;
pub mod mails;
pub mod scheduler;

pub use mails::{FollowupMails, Links};
pub use scheduler::{Plan, Scheduler};
