//! joinform: the backend of an organisation's "Join us" form.
//!
//! A submission enters at [`http::join`], is decoded by [`http::body`], parsed into a
//! [`domain::NewSubmission`], and committed by the single writer in [`store`].

pub mod admin;
pub mod backup;
pub mod cli;
pub mod colour;
pub mod config;
pub mod domain;
pub mod erasure;
pub mod export;
pub mod followup;
pub mod followup_stats;
pub mod http;
pub mod i18n;
pub mod mail;
pub mod metrics;
pub mod openpgp;
pub mod owner_only;
pub mod probe;
pub mod retention;
pub mod routing;
pub mod sealing;
pub mod secret;
pub mod spam;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod visitor;
