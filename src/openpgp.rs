//! OpenPGP (RFC 4880 / RFC 9580) through rPGP, the `pgp` crate: reading and checking
//! the public keys of sections and operators, encrypting to them, and decrypting with
//! an operator's secret key on their own machine (`export --decrypt-key`).
//!
//! rPGP is a low-level library: it checks signatures but leaves "is this key usable
//! today" to its caller (its README, "layer 4"). The rules here are the ones GnuPG
//! applies and the ones that matter for encryption: a key revoked, expired, of version
//! 6, or with no subkey (or primary) flagged for encryption is refused, with its
//! fingerprint.
//!
//! Messages are SEIPD version 1 with AES-256 and no compression: GnuPG 2.2 and 2.4,
//! Thunderbird and Proton all read it, while RFC 9580's SEIPD version 2 is read by
//! neither GnuPG nor Thunderbird (rnp issue 1770, pgpainless issue 486). No compression
//! also leaves no compression side channel.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use pgp::composed::{
    ArmorOptions, Deserializable, Message, MessageBuilder, SignedPublicKey, SignedSecretKey,
};
use pgp::crypto::sym::SymmetricKeyAlgorithm;
use pgp::packet::{Signature, SignatureType};
use pgp::types::{KeyDetails, KeyVersion, Password};

/// A public key that cannot be used, named by its file and (once read) fingerprint.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the key file {path}: {source}")]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} holds no OpenPGP public key (an ASCII-armoured `gpg --armor --export`): {detail}"
    )]
    NotAKey { path: PathBuf, detail: String },
    #[error(
        "{path} holds a secret (private) key: give the public key (`gpg --armor --export`); \
         a private key must never be on the server"
    )]
    SecretKey { path: PathBuf },
    #[error("{path}: key {fingerprint} has a broken self-signature: {detail}")]
    BadSignature {
        path: PathBuf,
        fingerprint: String,
        detail: String,
    },
    #[error("{path}: key {fingerprint} is revoked")]
    Revoked { path: PathBuf, fingerprint: String },
    #[error("{path}: key {fingerprint} expired on {expired}")]
    Expired {
        path: PathBuf,
        fingerprint: String,
        expired: String,
    },
    #[error(
        "{path}: key {fingerprint} has no usable encryption key (no subkey, or primary, \
         flagged for encryption that is unexpired and unrevoked): it can only sign"
    )]
    CannotEncrypt { path: PathBuf, fingerprint: String },
    #[error(
        "{path}: key {fingerprint} is an OpenPGP version {version} key; only version 4 keys \
         are read by GnuPG 2.2 and Thunderbird, so joinform accepts only those"
    )]
    Unsupported {
        path: PathBuf,
        fingerprint: String,
        version: u8,
    },
}

/// Why a message could not be encrypted or decrypted. Never holds the data.
#[derive(Debug, thiserror::Error)]
pub enum CryptError {
    #[error("no recipient to encrypt to")]
    NoRecipient,
    #[error("OpenPGP encryption failed: {0}")]
    Encrypt(String),
    #[error("not an OpenPGP message: {0}")]
    NotAMessage(String),
    /// rPGP answers a wrong passphrase and "not encrypted to this key" with the same
    /// error, so the two cannot be told apart.
    #[error("cannot decrypt: wrong passphrase, or the message is not encrypted to this key")]
    Decrypt,
    /// The session key was unlocked (the key and passphrase are right), but the data
    /// failed to decrypt or its integrity check (MDC, AEAD tag): a changed, cut or
    /// appended byte.
    #[error("the message is damaged or was altered (its integrity check failed): {0}")]
    Damaged(String),
    #[error("cannot read the secret key: {0}")]
    SecretKey(String),
    #[error("wrong passphrase for the secret key")]
    WrongPassphrase,
}

/// A checked public key (certificate): usable for encryption at the time it was read.
/// Cloning is cheap; the key is shared.
#[derive(Clone)]
pub struct Certificate {
    key: Arc<SignedPublicKey>,
    fingerprint: String,
    user_id: Option<String>,
    expires_at: Option<SystemTime>,
    /// Which parts encrypt: the primary (a key made with `gpg --quick-gen-key … encr`)
    /// and the indexes of the usable subkeys.
    primary_encrypts: bool,
    subkeys: Vec<usize>,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl PartialEq for Certificate {
    fn eq(&self, other: &Self) -> bool {
        self.fingerprint == other.fingerprint
    }
}

impl Eq for Certificate {}

impl Certificate {
    /// The primary key's fingerprint, 40 upper-case hex digits, as GnuPG prints it.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The primary user id (`Oslo office <oslo@example.org>`), if any is readable.
    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    /// When the key (or, earlier, its last usable encryption subkey) expires; `None`
    /// for a key that does not.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires_at
    }

    /// True when the key expires within `within` of `now` (a warning: mail to it
    /// stops being readable by new software once it has).
    pub fn expires_within(&self, now: SystemTime, within: Duration) -> bool {
        self.expires_at.is_some_and(|at| at <= now + within)
    }
}

/// The largest key file read: a certificate with many third-party signatures is a few
/// hundred KiB; anything near this is not a key (`/dev/zero` must not exhaust memory).
pub const MAX_KEY_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Reads at most [`MAX_KEY_FILE_BYTES`] of `path`.
///
/// # Errors
/// The I/O error, or `InvalidData` for a larger file.
pub fn read_key_file(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_KEY_FILE_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "larger than {} MiB: not a key file",
                MAX_KEY_FILE_BYTES >> 20
            ),
        ));
    }
    Ok(bytes)
}

/// Reads every public key in `path` (ASCII-armoured or binary; one or several, in one
/// armour block or several one after another, as `cat a.asc b.asc` makes) and checks
/// each for encryption at `now`.
///
/// # Errors
/// [`KeyError`] for an unreadable file, no key in it, a secret key, or the first key
/// that is revoked, expired, of version 6, or has nothing that encrypts.
pub fn read_certificates(path: &Path, now: SystemTime) -> Result<Vec<Certificate>, KeyError> {
    let bytes = read_key_file(path).map_err(|source| KeyError::Unreadable {
        path: path.to_owned(),
        source,
    })?;
    parse_certificates(path, &bytes, now)
}

/// What an ASCII armour block holds, by its `-----BEGIN PGP …-----` line (RFC 4880
/// §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Armour {
    PublicKey,
    PrivateKey,
    Other,
}

/// Each armour block of `bytes` with its kind, in order; text around them is ignored,
/// as GnuPG ignores it. `None` when `bytes` holds no armour (binary packets).
fn armour_blocks(bytes: &[u8]) -> Option<Vec<(Armour, &[u8])>> {
    const BEGIN: &[u8] = b"-----BEGIN PGP ";
    const END: &[u8] = b"-----END PGP ";
    let find = |from: usize, needle: &[u8]| {
        bytes
            .get(from..)?
            .windows(needle.len())
            .position(|window| window == needle)
            .map(|at| at + from)
    };
    let mut blocks = Vec::new();
    let mut at = 0;
    while let Some(start) = find(at, BEGIN) {
        let label_end = find(start, b"\n").unwrap_or(bytes.len());
        let label = &bytes[start..label_end];
        let kind = if label.starts_with(b"-----BEGIN PGP PUBLIC KEY BLOCK-----") {
            Armour::PublicKey
        } else if label.starts_with(b"-----BEGIN PGP PRIVATE KEY BLOCK-----") {
            Armour::PrivateKey
        } else {
            Armour::Other
        };
        // The block runs to the end of its END line.
        let end = find(start, END)
            .and_then(|end| find(end, b"-----\n").or_else(|| find(end + END.len(), b"-----")))
            .map_or(bytes.len(), |end| (end + 6).min(bytes.len()));
        blocks.push((kind, &bytes[start..end]));
        at = end;
    }
    (!blocks.is_empty()).then_some(blocks)
}

/// The first line of an rPGP error, at most 160 characters: its Display may run on to
/// internal detail (and a backtrace when `RUST_BACKTRACE` is set).
fn first_line(error: &pgp::errors::Error) -> String {
    let text = error.to_string();
    text.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(160)
        .collect()
}

/// As [`read_certificates`], from bytes already read; `path` only names them in errors.
///
/// # Errors
/// As [`read_certificates`].
pub fn parse_certificates(
    path: &Path,
    bytes: &[u8],
    now: SystemTime,
) -> Result<Vec<Certificate>, KeyError> {
    let not_a_key = |detail: String| KeyError::NotAKey {
        path: path.to_owned(),
        detail,
    };
    let secret = || KeyError::SecretKey {
        path: path.to_owned(),
    };
    let mut keys = Vec::new();
    match armour_blocks(bytes) {
        Some(blocks) => {
            for (number, (kind, block)) in blocks.into_iter().enumerate() {
                let damaged = |detail: String| {
                    not_a_key(format!(
                        "its armour block {} is damaged or cut short ({detail})",
                        number + 1
                    ))
                };
                match kind {
                    Armour::PublicKey => {
                        let (found, _) = SignedPublicKey::from_armor_many(block)
                            .map_err(|error| damaged(first_line(&error)))?;
                        // Every block must give a key: one that gives none (a bad
                        // checksum stops rPGP's reader quietly) would drop a reader.
                        let mut any = false;
                        for key in found {
                            keys.push(key.map_err(|error| damaged(first_line(&error)))?);
                            any = true;
                        }
                        if !any {
                            return Err(damaged("no key could be read from it".to_owned()));
                        }
                    }
                    Armour::PrivateKey => return Err(secret()),
                    Armour::Other => {
                        return Err(not_a_key(
                            "it holds an armoured block that is not a public key".to_owned(),
                        ));
                    }
                }
            }
        }
        None if bytes.iter().all(u8::is_ascii_whitespace) => {
            return Err(not_a_key("the file is empty".to_owned()));
        }
        None => {
            // Binary packets: a secret key is told apart, so that the answer says what
            // is wrong with it rather than how it fails to parse.
            if SignedSecretKey::from_bytes(bytes).is_ok() {
                return Err(secret());
            }
            let neither =
                || not_a_key("it is neither ASCII armour nor OpenPGP key packets".to_owned());
            let (found, _) = SignedPublicKey::from_reader_many(bytes).map_err(|_| neither())?;
            for key in found {
                keys.push(key.map_err(|_| neither())?);
            }
        }
    }
    let mut certificates = Vec::new();
    for key in keys {
        certificates.push(check(path, key, now)?);
    }
    if certificates.is_empty() {
        return Err(not_a_key("no key in it".to_owned()));
    }
    Ok(certificates)
}

fn is_certification(typ: SignatureType) -> bool {
    matches!(
        typ,
        SignatureType::CertGeneric
            | SignatureType::CertPersona
            | SignatureType::CertCasual
            | SignatureType::CertPositive
    )
}

fn newest<'a>(signatures: impl Iterator<Item = &'a Signature>) -> Option<&'a Signature> {
    signatures.max_by_key(|signature| signature.created().map_or(0, |at| at.as_secs()))
}

/// `created + key_expiration_time`, where 0 (or none) means "does not expire".
fn expiry(created: pgp::types::Timestamp, signature: &Signature) -> Option<SystemTime> {
    let lifetime = signature.key_expiration_time()?.as_secs();
    (lifetime != 0).then(|| SystemTime::from(created) + Duration::from_secs(u64::from(lifetime)))
}

fn check(path: &Path, key: SignedPublicKey, now: SystemTime) -> Result<Certificate, KeyError> {
    let fingerprint = format!("{:X}", key.fingerprint());
    let version = key.version();
    if version != KeyVersion::V4 {
        return Err(KeyError::Unsupported {
            path: path.to_owned(),
            fingerprint,
            version: u8::from(version),
        });
    }
    key.verify_bindings()
        .map_err(|error| KeyError::BadSignature {
            path: path.to_owned(),
            fingerprint: fingerprint.clone(),
            detail: first_line(&error),
        })?;
    // A revocation signature that verified (verify_bindings) is a revocation, whatever
    // its reason: a superseded key is no key to encrypt new mail to.
    if !key.details.revocation_signatures.is_empty() {
        return Err(KeyError::Revoked {
            path: path.to_owned(),
            fingerprint,
        });
    }
    // The primary's own expiry and flags sit on its newest direct-key signature, else
    // on the primary user id's newest certification (where GnuPG writes them).
    let primary_user = key
        .details
        .users
        .iter()
        .find(|user| user.is_primary())
        .or_else(|| key.details.users.first());
    let self_signature = newest(key.details.direct_signatures.iter()).or_else(|| {
        primary_user.and_then(|user| {
            newest(
                user.signatures
                    .iter()
                    .filter(|signature| signature.typ().is_some_and(is_certification)),
            )
        })
    });
    let created = key.primary_key.created_at();
    let primary_expires = self_signature.and_then(|signature| expiry(created, signature));
    if let Some(at) = primary_expires
        && at <= now
    {
        return Err(KeyError::Expired {
            path: path.to_owned(),
            fingerprint,
            expired: crate::domain::Timestamp::from_system_time(at).date_text(),
        });
    }
    let primary_encrypts = self_signature.is_some_and(|signature| {
        let flags = signature.key_flags();
        (flags.encrypt_comms() || flags.encrypt_storage())
            && key.primary_key.algorithm().can_encrypt()
    });
    let mut subkeys = Vec::new();
    let mut subkey_expires: Option<SystemTime> = None;
    for (index, subkey) in key.public_subkeys.iter().enumerate() {
        let revoked = subkey
            .signatures
            .iter()
            .any(|signature| signature.typ() == Some(SignatureType::SubkeyRevocation));
        let Some(binding) = newest(
            subkey
                .signatures
                .iter()
                .filter(|signature| signature.typ() == Some(SignatureType::SubkeyBinding)),
        ) else {
            continue;
        };
        let flags = binding.key_flags();
        let expires = expiry(subkey.key.created_at(), binding);
        if revoked
            || !(flags.encrypt_comms() || flags.encrypt_storage())
            || !subkey.key.algorithm().can_encrypt()
            || expires.is_some_and(|at| at <= now)
        {
            continue;
        }
        subkeys.push(index);
        // The key stays usable as long as its longest-lived subkey does.
        subkey_expires = match (subkey_expires, expires) {
            (None, _) if subkeys.len() == 1 => expires,
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
    }
    if !primary_encrypts && subkeys.is_empty() {
        return Err(KeyError::CannotEncrypt {
            path: path.to_owned(),
            fingerprint,
        });
    }
    let expires_at = match (primary_expires, primary_encrypts, subkey_expires) {
        (Some(primary), _, Some(subkey)) => Some(primary.min(subkey)),
        (Some(primary), _, None) => Some(primary),
        (None, false, subkey) => subkey,
        (None, true, _) => None,
    };
    let user_id =
        primary_user.and_then(|user| std::str::from_utf8(user.id.id()).ok().map(str::to_owned));
    Ok(Certificate {
        key: Arc::new(key),
        fingerprint,
        user_id,
        expires_at,
        primary_encrypts,
        subkeys,
    })
}

/// How an encrypted message is written out.
#[derive(Clone, Copy)]
enum Output {
    Binary,
    Armored,
}

fn encrypt_to(
    recipients: &[&Certificate],
    data: Vec<u8>,
    output: Output,
) -> Result<Vec<u8>, CryptError> {
    if recipients.is_empty() {
        // rPGP would write a message encrypted to nobody: unreadable by anyone.
        return Err(CryptError::NoRecipient);
    }
    let encrypt = |error: pgp::errors::Error| CryptError::Encrypt(error.to_string());
    let mut rng = rand::thread_rng();
    let mut builder =
        MessageBuilder::from_bytes("", data).seipd_v1(&mut rng, SymmetricKeyAlgorithm::AES256);
    for certificate in recipients {
        let key = &certificate.key;
        if certificate.primary_encrypts {
            builder
                .encrypt_to_key(&mut rng, &key.primary_key)
                .map_err(encrypt)?;
        }
        for &index in &certificate.subkeys {
            if let Some(subkey) = key.public_subkeys.get(index) {
                builder.encrypt_to_key(&mut rng, subkey).map_err(encrypt)?;
            }
        }
    }
    match output {
        Output::Binary => builder.to_vec(&mut rng).map_err(encrypt),
        Output::Armored => builder
            .to_armored_string(&mut rng, ArmorOptions::default())
            .map(String::into_bytes)
            .map_err(encrypt),
    }
}

/// `data` as one binary OpenPGP message (SEIPDv1, AES-256, uncompressed) that each of
/// `recipients` can open with their secret key. About 0.1 ms per cv25519 recipient
/// and 0.5 ms per RSA-3072 one in a release build (measured on the 2-core CI machine):
/// CPU work, to be done off the single writer thread.
///
/// # Errors
/// [`CryptError::NoRecipient`] for an empty list; [`CryptError::Encrypt`] when rPGP
/// fails.
pub fn encrypt(recipients: &[&Certificate], data: Vec<u8>) -> Result<Vec<u8>, CryptError> {
    encrypt_to(recipients, data, Output::Binary)
}

/// As [`encrypt`], ASCII-armoured (`-----BEGIN PGP MESSAGE-----`, RFC 4880 §6.2,
/// 64-character lines with a CRC), as PGP/MIME carries it.
///
/// # Errors
/// As [`encrypt`].
pub fn encrypt_armored(recipients: &[&Certificate], data: Vec<u8>) -> Result<String, CryptError> {
    let bytes = encrypt_to(recipients, data, Output::Armored)?;
    String::from_utf8(bytes).map_err(|error| CryptError::Encrypt(error.to_string()))
}

/// Binary OpenPGP `data` as ASCII armour (`-----BEGIN PGP MESSAGE-----`), byte for
/// byte the same packets: how an export shows a sealed row.
pub fn armor(data: &[u8]) -> String {
    struct Packets<'a>(&'a [u8]);
    impl pgp::ser::Serialize for Packets<'_> {
        fn to_writer<W: std::io::Write>(&self, writer: &mut W) -> pgp::errors::Result<()> {
            writer.write_all(self.0)?;
            Ok(())
        }
        fn write_len(&self) -> usize {
            self.0.len()
        }
    }
    let mut out = Vec::with_capacity(data.len() * 4 / 3 + 128);
    // Writing base64 to a Vec cannot fail.
    let _ = pgp::armor::write(
        &Packets(data),
        pgp::armor::BlockType::Message,
        &mut out,
        None,
        true,
    );
    String::from_utf8_lossy(&out).into_owned()
}

/// An operator's secret key, read on their machine to decrypt an export. Never on the
/// server.
pub struct SecretKey {
    keys: Vec<SignedSecretKey>,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl SecretKey {
    /// Reads every secret key in `bytes` (`gpg --armor --export-secret-keys`, or
    /// binary).
    ///
    /// # Errors
    /// [`CryptError::SecretKey`] when none is there or one does not parse.
    pub fn parse(bytes: &[u8]) -> Result<Self, CryptError> {
        let public = || {
            CryptError::SecretKey(
                "it is a public key; decrypting needs the secret key \
                 (`gpg --armor --export-secret-keys`)"
                    .to_owned(),
            )
        };
        let unreadable = |error: pgp::errors::Error| CryptError::SecretKey(error.to_string());
        let mut keys = Vec::new();
        match armour_blocks(bytes) {
            Some(blocks) => {
                for (kind, block) in blocks {
                    match kind {
                        Armour::PrivateKey => {
                            let (found, _) =
                                SignedSecretKey::from_armor_many(block).map_err(unreadable)?;
                            for key in found {
                                keys.push(key.map_err(unreadable)?);
                            }
                        }
                        Armour::PublicKey => return Err(public()),
                        Armour::Other => {
                            return Err(CryptError::SecretKey(
                                "it holds an armoured block that is not a secret key".to_owned(),
                            ));
                        }
                    }
                }
            }
            None => {
                let found = SignedSecretKey::from_reader_many(bytes)
                    .ok()
                    .and_then(|(found, _)| found.collect::<Result<Vec<_>, _>>().ok());
                match found {
                    Some(found) => keys = found,
                    None if SignedPublicKey::from_bytes(bytes).is_ok() => return Err(public()),
                    None => {
                        return Err(CryptError::SecretKey(
                            "it is neither ASCII armour nor OpenPGP key packets".to_owned(),
                        ));
                    }
                }
            }
        }
        if keys.is_empty() {
            return Err(CryptError::SecretKey(
                "the file holds no secret key".to_owned(),
            ));
        }
        Ok(Self { keys })
    }

    /// This key with its passphrase taken off, in memory only: [`SecretKey::decrypt`]
    /// then takes an empty passphrase and skips the key derivation (GnuPG's
    /// iterated-and-salted S2K hashes 65 MB for each unlock: the second or so that an
    /// export of many rows must not pay per row). A part that is no secret key material
    /// (a GnuPG stub for a key on a smartcard) is left as it is.
    ///
    /// # Errors
    /// [`CryptError::WrongPassphrase`] when no protected part opens with `passphrase`.
    pub fn unlock(mut self, passphrase: &str) -> Result<Self, CryptError> {
        let password = Password::from(passphrase);
        let (mut protected, mut opened) = (0, 0);
        for key in &mut self.keys {
            protected += 1;
            opened += usize::from(key.primary_key.remove_password(&password).is_ok());
            for subkey in &mut key.secret_subkeys {
                protected += 1;
                opened += usize::from(subkey.key.remove_password(&password).is_ok());
            }
        }
        if protected > 0 && opened == 0 {
            return Err(CryptError::WrongPassphrase);
        }
        Ok(self)
    }

    /// Opens a message (binary or armoured) encrypted to this key, unlocking it with
    /// `passphrase` (empty for an unprotected key, or one [`SecretKey::unlock`]ed).
    ///
    /// # Errors
    /// [`CryptError::NotAMessage`] for bytes that are no message;
    /// [`CryptError::Decrypt`] for a wrong passphrase or another recipient;
    /// [`CryptError::Damaged`] when a session key was opened but the data fails (a
    /// changed, cut or appended byte: rPGP reads the first packets while decrypting).
    pub fn decrypt(&self, passphrase: &str, data: &[u8]) -> Result<Vec<u8>, CryptError> {
        let password = Password::from(passphrase);
        let mut damaged = None;
        for key in &self.keys {
            let message = if data.starts_with(b"-----BEGIN PGP MESSAGE-----") {
                Message::from_armor(data).map(|(message, _)| message)
            } else {
                Message::from_bytes(data)
            }
            .map_err(|error| CryptError::NotAMessage(error.to_string()))?;
            // rPGP answers `MissingKey` when no session key opened with this key (a
            // wrong passphrase, another recipient); any other failure came after one
            // did, from the encrypted data.
            let mut message = match message.decrypt(&password, key) {
                Ok(message) => message,
                Err(pgp::errors::Error::MissingKey) => continue,
                Err(error) => {
                    damaged = Some(error.to_string());
                    continue;
                }
            };
            // The session key opened: what fails from here on is the data itself.
            if message.is_compressed() {
                message = message
                    .decompress()
                    .map_err(|error| CryptError::Damaged(error.to_string()))?;
            }
            return message
                .as_data_vec()
                .map_err(|error| CryptError::Damaged(error.to_string()));
        }
        Err(damaged.map_or(CryptError::Decrypt, CryptError::Damaged))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/openpgp")
            .join(name)
    }

    fn read(name: &str) -> Result<Vec<Certificate>, KeyError> {
        read_certificates(&fixture(name), SystemTime::now())
    }

    fn secret(name: &str) -> SecretKey {
        SecretKey::parse(&std::fs::read(fixture(name)).unwrap()).unwrap()
    }

    #[test]
    fn usable_keys_are_read_with_their_fingerprint_and_user_id() {
        let norway = read("norway.asc").unwrap();
        assert_eq!(norway.len(), 1);
        assert_eq!(
            norway[0].fingerprint(),
            "14E6B35B2E26669A693B3526E5516617CE918B09"
        );
        assert_eq!(
            norway[0].user_id(),
            Some("Norway section (test only) <norway@example.org>")
        );
        assert_eq!(norway[0].expires_at(), None);
        assert_eq!(read("sweden-rsa.asc").unwrap().len(), 1);
        // A primary key flagged for encryption, with no subkey, encrypts itself.
        assert_eq!(read("primary-encrypts.asc").unwrap().len(), 1);
    }

    /// Each kind of key that cannot take mail is refused, by a message that names the
    /// file and the fingerprint.
    #[test]
    fn keys_that_cannot_encrypt_today_are_refused_by_name() {
        type IsKind = fn(&KeyError) -> bool;
        let cases: [(&str, IsKind, &str); 3] = [
            (
                "expired.asc",
                |e| matches!(e, KeyError::Expired { .. }),
                "expired on 2020-01-02",
            ),
            (
                "revoked.asc",
                |e| matches!(e, KeyError::Revoked { .. }),
                "is revoked",
            ),
            (
                "sign-only.asc",
                |e| matches!(e, KeyError::CannotEncrypt { .. }),
                "it can only sign",
            ),
        ];
        for (file, kind, words) in cases {
            let error = read(file).unwrap_err();
            assert!(kind(&error), "{file}: {error:?}");
            let text = error.to_string();
            assert!(
                text.contains(file) && text.contains(words),
                "{file}: {text}"
            );
        }
        let public_key = std::fs::read(fixture("norway.asc")).unwrap();
        let not_a_key = [b"".as_slice(), b"hello", &public_key[..120]];
        for bytes in not_a_key {
            let error = parse_certificates(Path::new("x.asc"), bytes, SystemTime::now());
            assert!(matches!(error, Err(KeyError::NotAKey { .. })), "{error:?}");
        }
        let missing = read("no-such-file.asc").unwrap_err();
        assert!(matches!(missing, KeyError::Unreadable { .. }));
    }

    #[test]
    fn a_key_is_checked_at_the_time_given() {
        // The expired key was made on 2020-01-01 for one day: usable within that day.
        let made = SystemTime::UNIX_EPOCH + Duration::from_secs(1_577_836_800);
        let path = fixture("expired.asc");
        let bytes = std::fs::read(&path).unwrap();
        let young = parse_certificates(&path, &bytes, made + Duration::from_secs(3600)).unwrap();
        assert!(young[0].expires_within(made, Duration::from_secs(30 * 86_400)));
        assert!(!young[0].expires_within(made, Duration::from_secs(3600)));
        assert!(parse_certificates(&path, &bytes, made + Duration::from_secs(86_400)).is_err());
    }

    /// A message to several keys opens with each of their secret keys, and with no
    /// other; an unlocked passphrase is needed where one is set.
    #[test]
    fn a_message_to_several_keys_opens_with_each_and_only_those() {
        let norway = read("norway.asc").unwrap();
        let sweden = read("sweden-rsa.asc").unwrap();
        let recipients = [&norway[0], &sweden[0]];
        let plain = "Kari Nordmann <kari@example.org>\r\n".as_bytes().to_vec();
        let binary = encrypt(&recipients, plain.clone()).unwrap();
        let armored = encrypt_armored(&recipients, plain.clone()).unwrap();
        assert!(armored.starts_with("-----BEGIN PGP MESSAGE-----"));
        assert!(!binary.windows(4).any(|w| w == b"Kari"));
        for key in ["norway.secret.asc", "sweden-rsa.secret.asc"] {
            assert_eq!(secret(key).decrypt("", &binary).unwrap(), plain, "{key}");
            assert_eq!(secret(key).decrypt("", armored.as_bytes()).unwrap(), plain);
        }
        assert!(matches!(
            secret("operator.secret.asc").decrypt("correct horse battery staple", &binary),
            Err(CryptError::Decrypt)
        ));
        let operator = read("operator.asc").unwrap();
        let sealed = encrypt(&[&operator[0]], plain.clone()).unwrap();
        let key = secret("operator.secret.asc");
        assert!(matches!(
            key.decrypt("wrong", &sealed),
            Err(CryptError::Decrypt)
        ));
        assert_eq!(
            key.decrypt("correct horse battery staple", &sealed)
                .unwrap(),
            plain
        );
        // Armouring the stored bytes gives a message that opens the same.
        let armored = armor(&sealed);
        assert!(armored.starts_with("-----BEGIN PGP MESSAGE-----"));
        assert_eq!(
            key.decrypt("correct horse battery staple", armored.as_bytes())
                .unwrap(),
            plain
        );
    }

    #[test]
    fn nobody_to_encrypt_to_is_an_error_not_an_unreadable_message() {
        assert!(matches!(
            encrypt(&[], b"x".to_vec()),
            Err(CryptError::NoRecipient)
        ));
        assert!(matches!(
            secret("norway.secret.asc").decrypt("", b"not a message"),
            Err(CryptError::NotAMessage(_))
        ));
    }

    /// Keys are found in every armour block of a file, however many are joined (`cat
    /// a.asc b.asc`), with text between them, and in binary packets; each is checked.
    #[test]
    fn every_key_of_a_file_is_read_and_checked_however_the_file_is_made() {
        let read = |name: &str| std::fs::read(fixture(name)).unwrap();
        let now = SystemTime::now();
        let mut joined = read("norway.asc");
        joined.extend_from_slice(b"\nSweden's office key follows.\r\n");
        joined.extend(read("sweden-rsa.asc"));
        let keys = parse_certificates(Path::new("both.asc"), &joined, now).unwrap();
        let fingerprints: Vec<&str> = keys.iter().map(Certificate::fingerprint).collect();
        assert_eq!(fingerprints.len(), 2, "{fingerprints:?}");
        assert_eq!(fingerprints[0], "14E6B35B2E26669A693B3526E5516617CE918B09");
        // A bad key second in the file is refused, not skipped.
        let mut with_expired = read("norway.asc");
        with_expired.extend(read("expired.asc"));
        let error = parse_certificates(Path::new("two.asc"), &with_expired, now).unwrap_err();
        assert!(matches!(error, KeyError::Expired { .. }), "{error}");
        // Whatever line of the second block is damaged (characters changed, or the line
        // cut in half), the file is refused or both keys are read in full (rPGP does not
        // check the armour's checksum): never is the second key silently left out.
        let sweden = String::from_utf8(read("sweden-rsa.asc")).unwrap();
        for (number, line) in sweden.lines().enumerate() {
            if line.starts_with("-----") || line.trim().is_empty() {
                continue;
            }
            let changed = line.replacen(|c: char| c.is_ascii_alphanumeric(), "/", 3);
            let halved = line[..line.len() / 2].to_owned();
            for broken in [changed, halved] {
                let mut damaged = read("norway.asc");
                damaged.extend(sweden.replacen(line, &broken, 1).into_bytes());
                match parse_certificates(Path::new("d.asc"), &damaged, now) {
                    Ok(found) => assert_eq!(found.len(), 2, "line {number}: one key dropped"),
                    Err(error) => {
                        let text = error.to_string();
                        assert!(!text.contains('\n') && text.len() < 400, "{text}");
                    }
                }
            }
        }
        // A line of key material changed is refused too (here its signature fails).
        let line = sweden.lines().nth(5).unwrap().to_owned();
        let mut changed = read("norway.asc");
        changed.extend(
            sweden
                .replacen(&line, &line.chars().rev().collect::<String>(), 1)
                .into_bytes(),
        );
        assert!(parse_certificates(Path::new("l.asc"), &changed, now).is_err());
        let mut cut = read("norway.asc");
        let sweden_bytes = read("sweden-rsa.asc");
        cut.extend_from_slice(&sweden_bytes[..sweden_bytes.len() / 2]);
        let error = parse_certificates(Path::new("c.asc"), &cut, now).unwrap_err();
        assert!(error.to_string().contains("armour block 2"), "{error}");
        // Binary packets, as `gpg --export` without --armor writes them.
        let (key, _) = SignedPublicKey::from_armor_single(&read("norway.asc")[..]).unwrap();
        let binary = pgp::ser::Serialize::to_bytes(&key).unwrap();
        assert_eq!(
            parse_certificates(Path::new("k.gpg"), &binary, now)
                .unwrap()
                .len(),
            1
        );
    }

    /// A secret key where a public one belongs, and the other way round, each get
    /// words for what is wrong; so do garbage and a file too large to be a key.
    #[test]
    fn keys_of_the_wrong_kind_are_named_as_such() {
        let now = SystemTime::now();
        let secret = std::fs::read(fixture("norway.secret.asc")).unwrap();
        let error = parse_certificates(Path::new("s.asc"), &secret, now).unwrap_err();
        assert!(matches!(error, KeyError::SecretKey { .. }), "{error}");
        assert!(
            error.to_string().contains("must never be on the server"),
            "{error}"
        );
        let (key, _) = SignedSecretKey::from_armor_single(&secret[..]).unwrap();
        let binary_secret = pgp::ser::Serialize::to_bytes(&key).unwrap();
        let error = parse_certificates(Path::new("s.gpg"), &binary_secret, now).unwrap_err();
        assert!(matches!(error, KeyError::SecretKey { .. }), "{error}");
        let public = std::fs::read(fixture("norway.asc")).unwrap();
        let error = SecretKey::parse(&public).unwrap_err();
        assert!(error.to_string().contains("it is a public key"), "{error}");
        for garbage in [&b"\x99\x01\x02garbage"[..], b"not a key at all"] {
            let error = parse_certificates(Path::new("g"), garbage, now).unwrap_err();
            assert!(
                error
                    .to_string()
                    .contains("neither ASCII armour nor OpenPGP"),
                "{error}"
            );
            let error = SecretKey::parse(garbage).unwrap_err();
            assert!(
                error
                    .to_string()
                    .contains("neither ASCII armour nor OpenPGP"),
                "{error}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let huge = dir.path().join("huge.asc");
        std::fs::write(&huge, vec![b'A'; (MAX_KEY_FILE_BYTES + 1) as usize]).unwrap();
        let error = read_certificates(&huge, now).unwrap_err();
        assert!(error.to_string().contains("not a key file"), "{error}");
    }
}
