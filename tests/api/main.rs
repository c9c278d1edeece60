//! Integration tests: the real server on 127.0.0.1 port 0, a fresh SQLite file per test,
//! real HTTP. One binary, a file per capability.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;
mod smtp;

mod browser;
mod cli;
mod decoding;
mod durability;
mod email_corpus;
mod form_page;
mod limits;
mod mail;
mod privacy;
mod properties;
mod spam;
mod storage;
mod submit;
mod validation;
