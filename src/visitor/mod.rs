//! The visitor's side (issue 16): the mails joinform sends to the person who signed up
//! (`form.confirmation`: a notice, or double opt-in's confirmation), and the links in
//! them that let a visitor confirm, withdraw (GDPR article 7(3) and 17) or see what is
//! stored about them (article 15) without asking anybody.
//!
//! - [`links`]: the signed tokens those links carry, and the keyed hash that stands in
//!   for an address in `visitor_mails`.
//!
//! A link never acts on GET, since mail scanners open every link: GET shows a page,
//! whose form POSTs with the token's CSRF value.

pub mod links;

pub use links::{AddressHasher, LinkPurpose, VisitorLinkKey};
