//! Integration tests: the real server on 127.0.0.1 port 0, a fresh SQLite file per test,
//! real HTTP. One binary, a file per capability.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;
mod mail_check;
mod operator_helpers;
mod process;
mod smtp;

mod admin;
mod architecture;
mod backup;
mod browser;
mod cli;
mod config_examples;
mod decoding;
mod durability;
mod email_corpus;
mod erasure;
mod export;
mod flood;
mod followup_mails;
mod followup_operators;
mod followup_pages;
mod form_page;
mod head;
mod lifecycle;
mod limits;
mod mail;
mod metrics;
mod openapi;
mod overflow;
mod pgp_mail;
mod privacy;
mod proof_of_work;
mod properties;
mod review;
mod seal;
mod sealed;
mod sealed_visitors;
mod spam;
mod storage;
mod submit;
mod validation;
mod visitor_flow;
mod visitor_mails;
mod visitor_pages;
