//! GnuPG, the operator's own tool, as the tests run it: a home of its own per test,
//! and the OpenPGP keys of tests/data/openpgp. Without GnuPG a test says loudly that
//! it skipped its GnuPG side (and fails under `CI=true`).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use crate::helpers::outside_programs_present;

const INSTALL: &str = "apt-get install gpg gpg-agent (Debian), or your system's GnuPG 2";

/// A key file of tests/data/openpgp.
pub fn key_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/openpgp")
        .join(name)
}

/// A GnuPG home of its own (a short /tmp path: the agent's socket path is limited),
/// its agent stopped when dropped.
pub struct GnuPg {
    home: TempDir,
}

impl GnuPg {
    /// `None`, after saying so loudly, when GnuPG is not installed.
    pub fn new(test: &str) -> Option<Self> {
        if !outside_programs_present(test, &["gpg", "gpg-agent"], INSTALL) {
            return None;
        }
        let home = tempfile::Builder::new()
            .prefix("jfgpg")
            .tempdir_in("/tmp")
            .unwrap();
        std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        Some(Self { home })
    }

    /// Runs `gpg --batch ARGS` in this home; its standard output. Panics, with what
    /// gpg said, when it fails.
    pub fn run(&self, args: &[&str]) -> Vec<u8> {
        let output = Command::new("gpg")
            .env("GNUPGHOME", self.home.path())
            .args(["--batch", "--no-tty", "--pinentry-mode", "loopback"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "gpg {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }

    pub fn import(&self, file: &Path) {
        self.run(&["--import", file.to_str().unwrap()]);
    }

    /// `gpg --decrypt` of an ASCII-armoured message: the plaintext.
    pub fn decrypt(&self, armored: &str) -> Vec<u8> {
        let input = self.home.path().join("message.asc");
        std::fs::write(&input, armored).unwrap();
        self.run(&["--decrypt", input.to_str().unwrap()])
    }

    /// `gpg --decrypt` of the message in `file` with a secret key protected by
    /// `passphrase`: the plaintext.
    pub fn decrypt_file(&self, file: &Path, passphrase: &str) -> Vec<u8> {
        self.run(&[
            "--passphrase",
            passphrase,
            "--decrypt",
            file.to_str().unwrap(),
        ])
    }
}

impl Drop for GnuPg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "gpg-agent"])
            .status();
    }
}
