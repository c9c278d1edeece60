//! The follow-up of sign-ups (issue 15): organisers mark each sign-up `new` →
//! `contacted` → `joined`, `declined` or `unreachable` through links in mails, and are
//! reminded of sign-ups nobody has followed up.
//!
//! - [`links`]: the signed tokens in those links. A link names a sign-up (or a
//!   section) and its expiry, never a person's data, and works only as long as its
//!   signature under the server's secret holds.
//!
//! A link never acts on GET, since mail scanners open every link: GET shows a page,
//! and its form POSTs with the [`links::csrf_value`] of the token.

pub mod links;
