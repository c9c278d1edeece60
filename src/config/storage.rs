//! `[storage]`: the SQLite database file and its limits.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::store::{Checkpoints, Database};

use super::deprecated::{Renamed, Unit};
use super::{ConfigError, HumanDuration};

/// `storage.busy_timeout`, once `storage.busy_timeout_ms`.
pub(super) const BUSY_TIMEOUT: Renamed = Renamed {
    new: "storage.busy_timeout",
    old: "storage.busy_timeout_ms",
    unit: Unit::Millis,
};

/// The SQLite database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageSettings {
    /// The SQLite database file; its folder is created on first start.
    pub database: PathBuf,
    /// How long a write waits for a lock held by another process before giving up.
    pub busy_timeout: HumanDuration,
    /// Deprecated: `busy_timeout` in milliseconds. Read, never written; folded into
    /// `busy_timeout` on loading (see `config::deprecated`).
    #[serde(skip_serializing)]
    pub busy_timeout_ms: Option<u64>,
    /// The largest the database may grow, in MiB; 0 means no limit. A flood then
    /// fills this quota, not the disk.
    pub max_size_mib: u64,
    /// Sealed storage: ASCII-armoured OpenPGP public keys (relative to the
    /// configuration file's folder). When set, a submission's personal fields are
    /// stored only as one OpenPGP message to these keys and its section's `pgp_keys`;
    /// the server cannot read them back. Empty: stored in clear.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seal_keys: Vec<PathBuf>,
    /// Litestream replicates the database (`litestream replicate`, see
    /// config/litestream.yml) and checkpoints it: joinform then runs no checkpoint of
    /// its own (no checkpoint thread, `wal_autocheckpoint = 0`, no WAL truncation after
    /// erasures, in the quota rule or at shutdown). Erased rows then stay in the WAL
    /// until Litestream checkpoints, and in its LTX files until its retention drops
    /// them. false: joinform checkpoints.
    pub litestream: bool,
}

impl Default for StorageSettings {
    fn default() -> Self {
        Self {
            database: PathBuf::from("data/joinform.db"),
            busy_timeout: HumanDuration::from_secs(5),
            busy_timeout_ms: None,
            max_size_mib: 0,
            seal_keys: Vec::new(),
            litestream: false,
        }
    }
}

impl StorageSettings {
    /// The database these settings describe: its file, lock wait, size quota and who
    /// checkpoints it. The server and every command open it this way.
    pub fn database(&self) -> Database {
        Database::new(&self.database, self.busy_timeout.get())
            .with_max_size_mib(self.max_size_mib)
            .with_checkpoints(self.checkpoints())
    }

    /// Who checkpoints the WAL: Litestream when `litestream` is set, else joinform.
    pub fn checkpoints(&self) -> Checkpoints {
        if self.litestream {
            Checkpoints::Litestream
        } else {
            Checkpoints::Joinform
        }
    }

    /// Checks what serde cannot: a path is given and the limits are sensible.
    ///
    /// # Errors
    /// The first value out of range, by its key.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.database.as_os_str().is_empty() {
            return Err(ConfigError::bad("storage.database", "must not be empty"));
        }
        BUSY_TIMEOUT.within(
            self.busy_timeout_ms,
            self.busy_timeout,
            HumanDuration::from_millis(100)..=HumanDuration::from_secs(600),
        )?;
        if self.max_size_mib > 1024 * 1024 {
            return Err(ConfigError::bad(
                "storage.max_size_mib",
                "must be at most 1048576 (1 TiB), or 0 for no limit",
            ));
        }
        Ok(())
    }
}
