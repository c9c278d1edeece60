//! The server's secret: the key behind form tokens and the keyed hashes that stand in
//! for addresses in the audit trail.
//!
//! Operators may set it (`spam.secret`, or `JOINFORM_SPAM__SECRET`); otherwise joinform
//! creates a random one beside the database, so a fresh install is safe without a step
//! and tokens survive a restart.

use std::io::Write;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// HMAC-SHA256, the one keyed hash joinform uses.
pub type HmacSha256 = Hmac<Sha256>;

/// The shortest secret accepted from the configuration.
pub const MIN_SECRET_CHARS: usize = 32;

/// The file name of the generated secret, in the database's folder.
const SECRET_FILE: &str = "secret.key";

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read or create the secret file {path}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the secret file {path} is not 64 hexadecimal digits")]
    Malformed { path: PathBuf },
    #[error("the system's random number generator failed: {0}")]
    Random(getrandom::Error),
}

/// The root key. Every use derives its own key from it, so a token key can never be
/// replayed as an audit key.
#[derive(Clone)]
pub struct ServerSecret {
    root: Vec<u8>,
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
}

impl KeyPurpose {
    fn label(self) -> &'static [u8] {
        match self {
            Self::FormToken => b"joinform form token v1",
            Self::AuditAddress => b"joinform audit address v1",
        }
    }
}

impl ServerSecret {
    /// The configured secret, or the one kept beside `database` (created on first use).
    pub fn load(configured: Option<&str>, database: &Path) -> Result<Self, SecretError> {
        if let Some(text) = configured {
            return Ok(Self {
                root: text.as_bytes().to_vec(),
            });
        }
        let folder = database.parent().unwrap_or(Path::new("."));
        let path = folder.join(SECRET_FILE);
        let file_error = |source| SecretError::File {
            path: path.clone(),
            source,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let root = hex::decode(text.trim())
                    .ok()
                    .filter(|bytes| bytes.len() == 32)
                    .ok_or_else(|| SecretError::Malformed { path: path.clone() })?;
                Ok(Self { root })
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let root = random_bytes::<32>()?.to_vec();
                std::fs::create_dir_all(folder).map_err(file_error)?;
                write_private(&path, hex::encode(&root).as_bytes()).map_err(file_error)?;
                tracing::info!(path = %path.display(), "created a new server secret");
                Ok(Self { root })
            }
            Err(error) => Err(file_error(error)),
        }
    }

    /// A secret for tests and tools that need no persistence.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self {
            root: bytes.to_vec(),
        }
    }

    /// The key for one purpose.
    pub fn key(&self, purpose: KeyPurpose) -> [u8; 32] {
        keyed_hash(&self.root, purpose.label())
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

/// Writes a file only its owner can read: created with mode 0600, never widened.
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}
