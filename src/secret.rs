//! The server's secret, the key behind form tokens and follow-up links, and the audit
//! key, behind the keyed hashes that stand in for addresses in the audit trail.
//!
//! Operators may set the secret (`spam.secret`, or `JOINFORM_SPAM__SECRET`); otherwise
//! joinform creates a random one beside the database, so a fresh install is safe without
//! a step and tokens survive a restart.
//!
//! The audit key lives in a file of its own beside the database (`audit.key`), so that
//! changing the secret (which should invalidate outstanding tokens) leaves earlier
//! erasures matchable. Before it existed, audit hashes were keyed with a key derived
//! from the secret; the file is created holding that same derived key, so an upgraded
//! install keeps matching the erasures it recorded before.

use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// HMAC-SHA256, the one keyed hash joinform uses.
pub type HmacSha256 = Hmac<Sha256>;

/// The shortest secret accepted from the configuration.
pub const MIN_SECRET_CHARS: usize = 32;

/// The file name of the generated secret, in the database's folder.
const SECRET_FILE: &str = "secret.key";
/// The file name of the audit key, in the database's folder.
const AUDIT_KEY_FILE: &str = "audit.key";

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read or create the secret file {path}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "there is no {path}: put back the one kept safe with the backups (a new one \
         would match none of the recorded erasures); nothing was changed"
    )]
    Missing { path: PathBuf },
    #[error("the key file {path} is not 64 hexadecimal digits")]
    Malformed { path: PathBuf },
    #[error("the system's random number generator failed: {0}")]
    Random(getrandom::Error),
}

/// The root key, from which the form-token key is derived, and the audit key beside it.
#[derive(Clone)]
pub struct ServerSecret {
    root: Vec<u8>,
    audit: [u8; 32],
    /// [`audit_key_check`] of `audit`, computed once: every erasure records it.
    audit_check: String,
}

impl std::fmt::Debug for ServerSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerSecret(..)")
    }
}

/// What a derived key is for.
#[derive(Debug, Clone, Copy)]
pub enum KeyPurpose {
    FormToken,
    AuditAddress,
    /// The signed links in follow-up mails (`followup::links`): derived from the
    /// secret like form tokens, so rotating the secret revokes every link mailed.
    FollowupLink,
    /// The signed links in mails to visitors (`visitor::links`): confirm, withdraw,
    /// access. A key apart from the organisers' links, so neither kind passes as the
    /// other.
    VisitorLink,
    /// The keyed hash of an address in `visitor_mails` (one mail a day per address).
    VisitorAddress,
    /// The HMAC that signs proof-of-work challenges (`spam::altcha`): a key apart from
    /// form tokens', so neither signature passes as the other.
    ProofOfWork,
}

impl KeyPurpose {
    fn label(self) -> &'static [u8] {
        match self {
            Self::FormToken => b"joinform form token v1",
            Self::AuditAddress => b"joinform audit address v1",
            Self::FollowupLink => b"joinform followup link v1",
            Self::VisitorLink => b"joinform visitor link v1",
            Self::VisitorAddress => b"joinform visitor address v1",
            Self::ProofOfWork => b"joinform proof of work v1",
        }
    }
}

impl ServerSecret {
    fn new(root: Vec<u8>, audit: [u8; 32]) -> Self {
        Self {
            audit_check: audit_key_check(&audit),
            root,
            audit,
        }
    }

    /// The configured secret, or the one kept beside `database` (created on first use),
    /// with the audit key kept beside `database` (created on first use from the
    /// secret, see the module's documentation).
    ///
    /// # Errors
    /// A key file that cannot be read or created, or does not hold 64 hex digits.
    pub fn load(configured: Option<&str>, database: &Path) -> Result<Self, SecretError> {
        let folder = database.parent().unwrap_or(Path::new("."));
        let root = match configured {
            Some(text) => text.as_bytes().to_vec(),
            None => load_or_create(&folder.join(SECRET_FILE), "server secret", || {
                random_bytes::<32>()
            })?
            .to_vec(),
        };
        let audit = load_or_create(&folder.join(AUDIT_KEY_FILE), "audit key", || {
            Ok(derived_audit_key(&root))
        })?;
        Ok(Self::new(root, audit))
    }

    /// Like [`ServerSecret::load`], but never creates a key file: for re-applying
    /// erasures after a restore, where a new key would silently match nobody.
    ///
    /// # Errors
    /// [`SecretError::Missing`] when `audit.key` (or, without `configured`,
    /// `secret.key`) is not beside `database`; a file that cannot be read or does not
    /// hold 64 hex digits.
    pub fn load_existing(configured: Option<&str>, database: &Path) -> Result<Self, SecretError> {
        let folder = database.parent().unwrap_or(Path::new("."));
        let existing = |path: PathBuf| read_key(&path)?.ok_or(SecretError::Missing { path });
        let audit = existing(folder.join(AUDIT_KEY_FILE))?;
        let root = match configured {
            Some(text) => text.as_bytes().to_vec(),
            None => existing(folder.join(SECRET_FILE))?.to_vec(),
        };
        Ok(Self::new(root, audit))
    }

    /// A secret for tests and tools that need no persistence; the audit key is derived
    /// from it.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self::new(bytes.to_vec(), derived_audit_key(bytes))
    }

    /// The key for one purpose.
    pub fn key(&self, purpose: KeyPurpose) -> [u8; 32] {
        match purpose {
            KeyPurpose::FormToken
            | KeyPurpose::FollowupLink
            | KeyPurpose::VisitorLink
            | KeyPurpose::VisitorAddress
            | KeyPurpose::ProofOfWork => keyed_hash(&self.root, purpose.label()),
            KeyPurpose::AuditAddress => self.audit,
        }
    }
}

/// The label whose keyed hash under the audit key is that key's check value.
const AUDIT_KEY_CHECK_LABEL: &[u8] = b"joinform audit key check v1";

/// A value that tells audit keys apart without revealing them: 16 hex digits of the
/// HMAC-SHA256 of a fixed label under the key. `joinform backup` records it, so
/// `joinform restore` can tell whether `audit.key` is the one the backup was made with.
pub fn audit_key_check(key: &[u8; 32]) -> String {
    hex::encode(&keyed_hash(key, AUDIT_KEY_CHECK_LABEL)[..8])
}

impl ServerSecret {
    /// The check value of this secret's audit key ([`audit_key_check`]): 16 hex
    /// digits.
    pub fn audit_key_check(&self) -> &str {
        &self.audit_check
    }
}

/// Where the audit key of the database at `database` is kept (`audit.key` beside it).
pub fn audit_key_path(database: &Path) -> PathBuf {
    database
        .parent()
        .unwrap_or(Path::new("."))
        .join(AUDIT_KEY_FILE)
}

/// The check value ([`audit_key_check`]) of the audit key kept beside `database`, or
/// `None` when there is no such file. Unlike [`ServerSecret::load`], never creates it.
///
/// # Errors
/// A file that cannot be read or does not hold 64 hex digits.
pub fn existing_audit_key_check(database: &Path) -> Result<Option<String>, SecretError> {
    Ok(read_key(&audit_key_path(database))?.map(|key| audit_key_check(&key)))
}

/// The 32-byte key in `path` (64 hex digits, blanks around them ignored), or `None`
/// when there is no such file.
///
/// # Errors
/// [`SecretError::File`] when it cannot be read, [`SecretError::Malformed`] when it
/// does not hold 64 hex digits.
fn read_key(path: &Path) -> Result<Option<[u8; 32]>, SecretError> {
    match std::fs::read_to_string(path) {
        Ok(text) => hex::decode(text.trim())
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .map(Some)
            .ok_or_else(|| SecretError::Malformed {
                path: path.to_owned(),
            }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(SecretError::File {
            path: path.to_owned(),
            source,
        }),
    }
}

/// The audit key as joinform derived it from the secret before `audit.key` existed.
fn derived_audit_key(root: &[u8]) -> [u8; 32] {
    keyed_hash(root, KeyPurpose::AuditAddress.label())
}

/// The 32-byte key in `path` (64 hex digits), or `make()`'s, written there first.
fn load_or_create(
    path: &Path,
    what: &'static str,
    make: impl FnOnce() -> Result<[u8; 32], SecretError>,
) -> Result<[u8; 32], SecretError> {
    let file_error = |source| SecretError::File {
        path: path.to_owned(),
        source,
    };
    if let Some(key) = read_key(path)? {
        return Ok(key);
    }
    let key = make()?;
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder).map_err(file_error)?;
    }
    match crate::owner_only::write_new(path, hex::encode(key).as_bytes()) {
        Ok(()) => {
            tracing::info!(path = %path.display(), "created the {what}");
            Ok(key)
        }
        // Another process (a command beside the server) made it first: theirs.
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            read_key(path)?.ok_or_else(|| file_error(std::io::ErrorKind::NotFound.into()))
        }
        Err(error) => Err(file_error(error)),
    }
}

/// HMAC-SHA256 of `data` under `key`.
pub fn keyed_hash(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// `N` bytes from the operating system's generator.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], SecretError> {
    let mut bytes = [0; N];
    getrandom::fill(&mut bytes).map_err(SecretError::Random)?;
    Ok(bytes)
}
