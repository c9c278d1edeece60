use std::path::PathBuf;

use rusqlite::ErrorCode;

/// Why the store could not do what was asked. The messages say what an operator
/// should look at; none carries a submission's content.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database is locked by another process past the busy timeout")]
    Busy,
    #[error("the disk holding the database is full")]
    DiskFull,
    #[error("the database file cannot be read or written")]
    Io(#[source] rusqlite::Error),
    #[error("the database writer has stopped")]
    WriterStopped,
    #[error(
        "there is no database at {path}: check storage.database (`joinform serve` creates \
         it on its first start)"
    )]
    Missing { path: PathBuf },
    #[error("cannot create the database folder {path}")]
    CreateFolder {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} has schema version {found}, newer than the {supported} this binary knows: \
         run the newer joinform, or restore a backup made for this version"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("{path} holds tables but is not a joinform database (user_version 0)")]
    Foreign { path: PathBuf },
    #[error("{path} is not a SQLite database: check storage.database")]
    NotSqlite { path: PathBuf },
    #[error("cannot read {path}")]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the database and its write-ahead log have reached storage.max_size_mib; erase or \
         purge data, or raise the limit"
    )]
    OverQuota,
    #[error(
        "{path} is in use by another process (a running `joinform serve`?): stop it \
         first, then run this again"
    )]
    InUse { path: PathBuf },
    #[error("the database refused WAL mode (journal mode is {mode})")]
    NoWal { mode: String },
    #[error("cannot encode a value as JSON")]
    Encode(#[from] serde_json::Error),
    #[error("database error")]
    Sqlite(#[source] rusqlite::Error),
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        match error.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Self::Busy,
            Some(ErrorCode::DiskFull) => Self::DiskFull,
            Some(
                ErrorCode::SystemIoFailure
                | ErrorCode::CannotOpen
                | ErrorCode::ReadOnly
                | ErrorCode::PermissionDenied
                | ErrorCode::DatabaseCorrupt
                | ErrorCode::NotADatabase,
            ) => Self::Io(error),
            _ => Self::Sqlite(error),
        }
    }
}

impl StoreError {
    /// A fault that may clear by itself: the client should try again later.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Busy | Self::DiskFull | Self::OverQuota | Self::Io(_) | Self::WriterStopped
        )
    }
}
