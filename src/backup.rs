//! Backups of the live database, putting one back in place, and re-applying the
//! erasures made after it was taken.
//!
//! - [`backup`]: a consistent copy while the server keeps accepting (SQLite's online
//!   backup API, `store::backup`), checked with `integrity_check`, written to a
//!   temporary file beside the target, synced and renamed into place. Encrypted
//!   (`--encrypt-to`), the copy is made in memory and only the OpenPGP message is
//!   written: no clear copy ever touches the disk, where deleting it would not erase it
//!   (journalling file systems, SSD wear levelling). The cost is memory: about three
//!   times the database's size for a moment.
//! - [`restore`]: checks a backup (a SQLite file, sound, a joinform database no newer
//!   than this binary) on a copy beside the database, and renames it into place while
//!   it holds the old database alone, after taking the old one out of WAL mode so that
//!   no `-wal` of the old file is left to be replayed onto the new one.
//! - [`read_erasures`] and [`replay`]: the erasures (`forget`, by keyed hash) and
//!   discards (`discard`, by id) recorded since a time in another copy of the database
//!   or a `joinform audit --json` file, applied to this one without any address.
//!
//! Neither ever writes over the installation's own files (the database, its
//! companions, the key files; compared by inode and canonical path), and each removes
//! the temporary copies an interrupted earlier run left for the same file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, MAIN_DB};
use serde_json::{Value, json};

use crate::domain::{SubmissionId, Timestamp};
use crate::erasure;
use crate::openpgp::{self, Certificate, KeyError, SecretKey};
use crate::owner_only::{self, Existing};
use crate::secret::{ServerSecret, existing_audit_key_check};
use crate::store::audit::{self, Action};
use crate::store::backup::{self as copy, Counts};
use crate::store::{self, Database, StoreError, review, schema, submissions};

/// Why a backup, restore or replay did nothing (or, for a replay, stopped).
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path} exists: give --force to overwrite it (nothing was written)")]
    Exists { path: PathBuf },
    #[error(
        "{path} exists and is not a backup (neither a SQLite database nor an OpenPGP \
         message as `joinform backup` writes them): --force overwrites only an earlier \
         backup. Give another FILE; nothing was written"
    )]
    NotABackup { path: PathBuf },
    #[error("--encrypt-to")]
    Key(#[source] KeyError),
    #[error("cannot encrypt the backup")]
    Encrypt(#[source] openpgp::CryptError),
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the audit trail cannot be written, so nothing was backed up")]
    AuditUnavailable(#[source] StoreError),
    #[error(
        "the copy failed its integrity check ({}); nothing was written",
        .0.join("; ")
    )]
    CopyDamaged(Vec<String>),
    #[error(
        "{path} is not a SQLite database{hint}; the database was not touched",
        hint = if *.encrypted_hint { " (an encrypted backup? give --decrypt-key)" } else { "" }
    )]
    NotSqlite { path: PathBuf, encrypted_hint: bool },
    #[error(
        "{path} is damaged: the encrypted backup is cut short (truncated: its OpenPGP \
         packets run past the end of the file); the database was not touched"
    )]
    Truncated { path: PathBuf },
    #[error(
        "{path} is damaged or was altered: it decrypts with this key, but its integrity \
         check fails ({detail}); restore another backup. The database was not touched"
    )]
    Altered { path: PathBuf, detail: String },
    #[error(
        "{path} is a SQLite file whose header is damaged; restore another backup. The \
         database was not touched"
    )]
    HeaderDamaged { path: PathBuf },
    #[error(
        "the folder of {path}, {folder}, does not exist: create it first, or give another \
         FILE; nothing was written"
    )]
    NoFolder { path: PathBuf, folder: PathBuf },
    #[error("cannot decrypt {path}; the database was not touched")]
    Decrypt {
        path: PathBuf,
        #[source]
        source: openpgp::CryptError,
    },
    #[error(
        "{path} is damaged: integrity_check found {}; the database was not touched",
        .problems.join("; ")
    )]
    Damaged {
        path: PathBuf,
        problems: Vec<String>,
    },
    #[error("{path} cannot be restored; the database was not touched")]
    Refused {
        path: PathBuf,
        #[source]
        source: StoreError,
    },
    #[error(
        "{path} is a SQLite database but not a joinform one (schema version 0, no \
         joinform tables); the database was not touched"
    )]
    NotJoinform { path: PathBuf },
    #[error(
        "a database exists at {path}: give --replace to replace it (it is kept beside as \
         {path}.replaced-<time>); nothing was changed"
    )]
    DatabaseExists { path: PathBuf },
    #[error(
        "the database to replace, {path}, cannot be opened (damaged?), so restore cannot \
         make sure nothing else has it open, nor keep a copy. Stop `joinform serve` and \
         Litestream, then move it aside by hand with its companions (never delete \
         them; never leave the -wal beside the new file, it would be replayed onto \
         it):\n{moves}then run restore again without --replace. Nothing was changed"
    )]
    OldUnreadable {
        path: PathBuf,
        /// One shell-quoted `mv` line per file that exists (the database, its `-wal`,
        /// its `-shm`), each ending in a newline.
        moves: String,
        #[source]
        source: Box<StoreError>,
    },
    #[error(
        "{wal} exists without its database: move it away first (a write-ahead log beside \
         a database that is not its own is replayed onto it); nothing was changed"
    )]
    StrayWal { wal: PathBuf },
    #[error(
        "{path} is in use: a running `joinform serve` (or Litestream, or another \
         command) has it open. Stop it first, then restore; nothing was changed"
    )]
    InUse { path: PathBuf },
    #[error(
        "{path} is {what} of this installation: a backup never replaces it (not even \
         with --force), since the server would go on writing into the file it replaced; \
         write the backup elsewhere, best on another disk; nothing was written"
    )]
    OwnFile { path: PathBuf, what: &'static str },
    #[error(
        "a backup to standard output (`-`) is not supported: it could not be checked and \
         renamed into place whole; give a file name; nothing was written"
    )]
    Stdout,
    #[error(
        "{path} is {what} of this installation, not a backup: give the backup file; \
         nothing was changed"
    )]
    RestoreOwnFile { path: PathBuf, what: &'static str },
    #[error(
        "{path} has a write-ahead log beside it, {wal}, holding commits that are not yet \
         in the file, and SQLite cannot read the two together here (it needs to create \
         {path}-shm beside them): copy both into a folder you can write to and restore \
         from there (never restore the file without its -wal: the newest sign-ups would \
         be lost); the database was not touched"
    )]
    WalUnreadable {
        path: PathBuf,
        wal: PathBuf,
        #[source]
        source: StoreError,
    },
    #[error("the audit key")]
    Secret(#[from] crate::secret::SecretError),
    #[error(
        "{path} is neither a joinform database nor a `joinform audit --json` file (an \
         encrypted backup? restore it, or decrypt it, first); nothing was erased"
    )]
    NotReplaySource { path: PathBuf },
    #[error(
        "{count} erasure(s) in {path} were recorded under another audit.key (check \
         value {there}; audit.key beside the database: {here}), so their hashes cannot \
         match anybody here and those people would come back: {entries}. Nothing was \
         erased. Either put back the audit.key with that check value (kept safe with \
         the backups) and replay those entries with it, then the rest with this one \
         (`joinform audit --json` lines can be split by their \"audit_key_check\"), or \
         erase those people by hand, by address (`joinform forget ADDRESS`)"
    )]
    AuditKeyDiffers {
        path: PathBuf,
        here: String,
        there: String,
        count: usize,
        /// Each entry as `id N at TIME` (ids when the source records them).
        entries: String,
    },
    #[error("{since} is in the future: give the time restore printed; nothing was erased")]
    FutureSince { since: Timestamp },
    #[error("line {line} of {path} is not an audit entry as `joinform audit --json` writes it")]
    BadAuditLine { path: PathBuf, line: usize },
}

impl From<rusqlite::Error> for BackupError {
    fn from(error: rusqlite::Error) -> Self {
        Self::Store(error.into())
    }
}

// ---- Backup. ----

/// What `joinform backup` was asked for.
#[derive(Debug, Clone)]
pub struct BackupRequest {
    /// The file to write.
    pub output: PathBuf,
    /// OpenPGP public key files (`--encrypt-to`, repeatable); none: a clear copy.
    pub encrypt_to: Vec<PathBuf>,
    /// Overwrite `output` if it exists.
    pub force: bool,
}

/// What a backup wrote.
#[derive(Debug, Clone)]
pub struct BackupReport {
    pub output: PathBuf,
    /// The copy's rows.
    pub counts: Counts,
    /// The size of the file written, in bytes (the OpenPGP message when encrypted).
    pub file_bytes: u64,
    /// Fingerprints of the keys it was encrypted to; empty for a clear copy.
    pub recipients: Vec<String>,
    /// From the first read of the database to the file in place.
    pub elapsed: Duration,
    /// When the backup's audit entry was begun: the `SINCE` for `forget --replay`
    /// after restoring this backup.
    pub at: Timestamp,
    /// Temporary files of earlier backups to the same file that were interrupted
    /// (their process is gone), removed before this one.
    pub stale_removed: Vec<PathBuf>,
}

/// Writes a consistent copy of the database `source` is connected to into
/// `request.output`, while other connections go on writing. Audited as `backup` (by
/// `cli`) in the live database before the copy is made, so the copy holds its own
/// entry: its time, whether it is encrypted and to which keys, and the audit key's
/// check value ([`crate::secret::audit_key_check`]), by which a restore tells whether
/// the audit key beside the database is the one the backup's erasure hashes were made
/// with. The file's name is recorded, never its folder.
///
/// # Errors
/// [`BackupError::Exists`] without `force`; a key that cannot be encrypted to; a copy
/// that fails its integrity check; I/O and SQLite errors. Nothing is left at
/// `request.output` then (the temporary file is removed).
pub fn backup(
    source: &Connection,
    secret: &ServerSecret,
    request: &BackupRequest,
) -> Result<BackupReport, BackupError> {
    let started = Instant::now();
    if request.output.as_os_str() == "-" {
        return Err(BackupError::Stdout);
    }
    if let Some(database) = source.path().filter(|path| !path.is_empty())
        && let Some(what) = installation_file(Path::new(database), &request.output, true)
    {
        return Err(BackupError::OwnFile {
            path: request.output.clone(),
            what,
        });
    }
    if std::fs::symlink_metadata(&request.output).is_ok() {
        if !request.force {
            return Err(BackupError::Exists {
                path: request.output.clone(),
            });
        }
        // `--force` is for the backup of yesterday under the same name, never for a
        // mistyped name that is the configuration, a mail or a key.
        if !is_backup_file(&request.output) {
            return Err(BackupError::NotABackup {
                path: request.output.clone(),
            });
        }
    }
    let folder = folder_of(&request.output);
    if !folder.is_dir() {
        return Err(BackupError::NoFolder {
            path: request.output.clone(),
            folder: folder.to_owned(),
        });
    }
    let stale_removed = owner_only::remove_stale_partials(folder);
    let now = std::time::SystemTime::now();
    let mut certificates = Vec::new();
    for path in &request.encrypt_to {
        certificates.extend(openpgp::read_certificates(path, now).map_err(BackupError::Key)?);
    }
    let recipients: Vec<String> = certificates
        .iter()
        .map(|certificate| certificate.fingerprint().to_owned())
        .collect();
    let details = json!({
        "file": request.output.file_name().map(|name| name.to_string_lossy()),
        "encrypted": !certificates.is_empty(),
        "recipients": recipients,
        "audit_key_check": secret.audit_key_check(),
    });
    let audit_id = audit::begin(source, audit::CLI_ACTOR, Action::Backup, &details)
        .map_err(BackupError::AuditUnavailable)?;
    let at = audit::begun_at(source, audit_id)?;
    let partial = Partial::new(owner_only::partial_path(&request.output));
    let counts = if certificates.is_empty() {
        copy_to_file(source, audit_id, partial.path())
    } else {
        encrypted_copy(source, audit_id, &certificates, partial.path())
    }
    // The hidden temporary file is joinform's business: the operator gave FILE.
    .map_err(|error| match error {
        BackupError::Write { path, source } if path == partial.path() => BackupError::Write {
            path: request.output.clone(),
            source,
        },
        other => other,
    })?;
    let file_bytes = place(partial.path(), &request.output)?;
    partial.keep();
    audit::finish(source, audit_id, counts.submissions_total(), true)?;
    Ok(BackupReport {
        output: request.output.clone(),
        counts,
        file_bytes,
        recipients,
        elapsed: started.elapsed(),
        at,
        stale_removed,
    })
}

/// The copy as a database file at `partial` (created owner-only), checked and synced.
fn copy_to_file(
    source: &Connection,
    audit_id: audit::AuditId,
    partial: &Path,
) -> Result<Counts, BackupError> {
    let write_error = |source| BackupError::Write {
        path: partial.to_owned(),
        source,
    };
    drop(owner_only::create(partial, Existing::Refuse).map_err(write_error)?);
    let mut destination = Connection::open(partial)?;
    // A copy that fails is thrown away whole: it needs no rollback journal, and none
    // is left beside it by a kill.
    destination.pragma_update(None, "journal_mode", "OFF")?;
    let counts = copy_and_check(source, audit_id, &mut destination)?;
    // The copy's header says WAL, as its source's did; out of WAL mode the closed file
    // holds everything, with no `-wal` or `-shm` beside it.
    copy::leave_wal_mode(&destination)?;
    drop(destination);
    std::fs::File::open(partial)
        .and_then(|file| file.sync_all())
        .map_err(write_error)?;
    Ok(counts)
}

/// The copy made in memory, checked, and written to `partial` only as an OpenPGP
/// message to `certificates`.
fn encrypted_copy(
    source: &Connection,
    audit_id: audit::AuditId,
    certificates: &[Certificate],
    partial: &Path,
) -> Result<Counts, BackupError> {
    let mut destination = Connection::open_in_memory()?;
    let counts = copy_and_check(source, audit_id, &mut destination)?;
    let mut bytes = destination.serialize(MAIN_DB)?.to_vec();
    // The header says WAL, as the source's does (bytes 18 and 19, the file format
    // write and read versions: 2 for WAL). A clear backup is taken out of WAL mode;
    // the decrypted one is made the same: 1, rollback journal, so `gpg --decrypt`
    // gives a file that opens with no `-wal` or `-shm` beside it.
    if let Some(versions) = bytes.get_mut(18..20) {
        versions.fill(1);
    }
    drop(destination);
    let recipients: Vec<&Certificate> = certificates.iter().collect();
    let message = openpgp::encrypt(&recipients, bytes).map_err(BackupError::Encrypt)?;
    write_synced(partial, &message)?;
    Ok(counts)
}

/// Copies, checks, and marks the backup's own entry (`audit_id`, begun in the source
/// before the copy) completed in the copy: restored, a good backup does not look like
/// one that failed.
fn copy_and_check(
    source: &Connection,
    audit_id: audit::AuditId,
    destination: &mut Connection,
) -> Result<Counts, BackupError> {
    // A destination's page size must be its source's before the copy (an in-memory
    // one cannot change it during the copy).
    let page_size: i64 = source.pragma_query_value(None, "page_size", |row| row.get(0))?;
    destination.pragma_update(None, "page_size", page_size)?;
    copy::copy_live(source, destination)?;
    let problems = copy::integrity_problems(destination)?;
    if !problems.is_empty() {
        return Err(BackupError::CopyDamaged(problems));
    }
    let counts = copy::counts(destination)?;
    audit::finish(destination, audit_id, counts.submissions_total(), true)?;
    Ok(counts)
}

// ---- Restore. ----

/// What `joinform restore` was asked for.
pub struct RestoreRequest {
    /// The backup: a database file, or (with `decrypt`) an OpenPGP message of one.
    pub file: PathBuf,
    /// The operator's secret key, unlocked, for an encrypted backup.
    pub decrypt: Option<SecretKey>,
    /// Replace an existing database (kept beside it as `<db>.replaced-<time>`).
    pub replace: bool,
}

/// What a restore did, and what the operator must do next.
#[derive(Debug, Clone)]
pub struct RestoreReport {
    /// The file restored: the database, or the file its configured path (a symbolic
    /// link) points to.
    pub database: PathBuf,
    pub counts: Counts,
    /// When the backup was taken: its newest `backup` entry, else (`taken_exactly`
    /// false) the newest time it records.
    pub taken_at: Option<Timestamp>,
    pub taken_exactly: bool,
    /// The backup's schema version, when this binary upgraded it while restoring.
    pub upgraded_from: Option<i64>,
    /// Where the database that was replaced now is.
    pub replaced: Option<PathBuf>,
    pub audit_key: AuditKeyState,
    /// Litestream's folder beside the database, which must be reset now.
    pub litestream_folder: Option<PathBuf>,
    /// Temporary (decrypted) copies of earlier restores that were interrupted (their
    /// process is gone), removed before this one.
    pub stale_removed: Vec<PathBuf>,
}

/// Whether `audit.key` beside the database is the one the backup was made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditKeyState {
    Same,
    Differs,
    /// No `audit.key` beside the database.
    Missing,
    /// The backup does not record which key it was made with.
    Unknown,
    /// `audit.key` cannot be read, or does not hold a key.
    Unreadable,
}

/// Puts the backup `request.file` in place of `database`. The file is copied (or
/// decrypted) to a temporary file beside the database and checked there: a SQLite
/// file, `integrity_check` ok, a joinform database, schema version not newer than this
/// binary's. An older one is upgraded there, and the restore is audited in it. Then,
/// holding the old database alone ([`Database::connect_alone`]: refused while a
/// server or Litestream has it open), the old one is taken out of WAL mode, copied to
/// `<db>.replaced-<UTC time>` (owner-only), and the new one renamed into place.
///
/// # Errors
/// Each refusal of [`BackupError`]; the database is then untouched, and no temporary
/// file is left.
pub fn restore(
    database: &Database,
    request: &RestoreRequest,
) -> Result<RestoreReport, BackupError> {
    let configured = database.path();
    // A database path that is a symbolic link: the file it points to is the database
    // (renaming over the link would replace the link and leave the old database where
    // it is, unmentioned). The key files stay looked up where serve looks for them,
    // beside the configured path.
    let resolved;
    let database =
        if std::fs::symlink_metadata(configured).is_ok_and(|m| m.file_type().is_symlink()) {
            let real = std::fs::canonicalize(configured).map_err(|source| BackupError::Read {
                path: configured.to_owned(),
                source,
            })?;
            resolved = database.clone().with_path(real);
            &resolved
        } else {
            database
        };
    let target = database.path();
    if let Some(what) = installation_file(configured, &request.file, false) {
        return Err(BackupError::RestoreOwnFile {
            path: request.file.clone(),
            what,
        });
    }
    let exists = target.exists();
    let wal = schema::companion(target, "-wal");
    if !exists && wal.exists() {
        return Err(BackupError::StrayWal { wal });
    }
    if exists && !request.replace {
        return Err(BackupError::DatabaseExists {
            path: target.to_owned(),
        });
    }
    if let Some(folder) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
        // Owner-only, as `serve` makes it, whatever the umask.
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(folder)
            .map_err(|source| BackupError::Write {
                path: folder.to_owned(),
                source,
            })?;
    }
    let stale_removed = owner_only::remove_stale_partials(folder_of(target));
    let partial = Partial::new(owner_only::partial_path(target));
    let prepared = stage(request, partial.path())?;
    let replaced = put_in_place(database, partial.path(), exists)?;
    partial.keep();
    let recorded_key = prepared.audit_key_check;
    // The restore is done: a key file that cannot be read is a warning now, not a
    // failure.
    let audit_key = match (existing_audit_key_check(configured), recorded_key) {
        (Err(_), _) => AuditKeyState::Unreadable,
        (Ok(None), _) => AuditKeyState::Missing,
        (Ok(Some(here)), recorded_key) => match recorded_key {
            None => AuditKeyState::Unknown,
            Some(there) if here == there => AuditKeyState::Same,
            Some(_) => AuditKeyState::Differs,
        },
    };
    let litestream_folder = target
        .file_name()
        .map(|name| target.with_file_name(format!(".{}-litestream", name.to_string_lossy())))
        .filter(|folder| folder.exists());
    Ok(RestoreReport {
        database: target.to_owned(),
        counts: prepared.counts,
        taken_at: prepared.taken_at,
        taken_exactly: prepared.taken_exactly,
        upgraded_from: prepared.upgraded_from,
        replaced,
        audit_key,
        litestream_folder,
        stale_removed,
    })
}

/// Copies `file` with the commits of the `wal` beside it into `partial` through
/// SQLite's online backup API, from a read-only connection: SQLite reads the two
/// together, as it would have on the server. Neither is written; SQLite may leave a
/// `-shm` (its index of the WAL) beside them, and needs to be able to create it.
fn stage_with_wal(file: &Path, wal: &Path, partial: &Path) -> Result<(), BackupError> {
    let unreadable = |source| BackupError::WalUnreadable {
        path: file.to_owned(),
        wal: wal.to_owned(),
        source,
    };
    let source = schema::open_read_only(file).map_err(unreadable)?;
    // The connection opens lazily: the first read is where a `-shm` that cannot be
    // created (a read-only folder) shows.
    schema::user_version(&source).map_err(|error| unreadable(error.into()))?;
    owner_only::create(partial, Existing::Refuse).map_err(|source| BackupError::Write {
        path: partial.to_owned(),
        source,
    })?;
    let mut destination = Connection::open(partial)?;
    copy::copy_live(&source, &mut destination).map_err(|source| refusal(file, source))?;
    Ok(())
}

/// What the checks of a staged backup found.
struct Staged {
    counts: Counts,
    taken_at: Option<Timestamp>,
    taken_exactly: bool,
    upgraded_from: Option<i64>,
    audit_key_check: Option<String>,
}

/// Copies or decrypts the backup to `partial`, checks it, upgrades it and records the
/// restore in it; leaves it synced, out of WAL mode, with nothing beside it.
fn stage(request: &RestoreRequest, partial: &Path) -> Result<Staged, BackupError> {
    let file = &request.file;
    let read_error = |source| BackupError::Read {
        path: file.clone(),
        source,
    };
    let clear = schema::has_sqlite_header(file).map_err(read_error)?;
    let encrypted = !clear;
    let wal = schema::companion(file, "-wal");
    let wal_len = match std::fs::metadata(&wal) {
        Ok(metadata) => metadata.len(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => 0,
        Err(source) => return Err(BackupError::Read { path: wal, source }),
    };
    if clear && wal_len > 0 {
        // A copy taken by file copy or snapshot while the server ran: the commits
        // since the last checkpoint are in the `-wal` only. Copying FILE alone would
        // restore without them, silently.
        stage_with_wal(file, &wal, partial)?;
    } else if clear {
        let mut from = std::fs::File::open(file).map_err(read_error)?;
        let mut to =
            owner_only::create(partial, Existing::Refuse).map_err(|source| BackupError::Write {
                path: partial.to_owned(),
                source,
            })?;
        std::io::copy(&mut from, &mut to).map_err(|source| BackupError::Write {
            path: partial.to_owned(),
            source,
        })?;
    } else {
        let Some(key) = &request.decrypt else {
            return Err(BackupError::NotSqlite {
                path: file.clone(),
                encrypted_hint: true,
            });
        };
        let message = std::fs::read(file).map_err(read_error)?;
        let bytes = key.decrypt("", &message).map_err(|source| match source {
            openpgp::CryptError::NotAMessage(_) if truncated_message(&message) => {
                BackupError::Truncated { path: file.clone() }
            }
            openpgp::CryptError::NotAMessage(_) => BackupError::NotSqlite {
                path: file.clone(),
                encrypted_hint: false,
            },
            _ if truncated_message(&message) => BackupError::Truncated { path: file.clone() },
            openpgp::CryptError::Damaged(detail) => BackupError::Altered {
                path: file.clone(),
                detail,
            },
            source => BackupError::Decrypt {
                path: file.clone(),
                source,
            },
        })?;
        write_synced(partial, &bytes)?;
        if !schema::has_sqlite_header(partial).map_err(read_error)? {
            return Err(BackupError::NotSqlite {
                path: file.clone(),
                encrypted_hint: false,
            });
        }
    }
    // Version, foreign tables, header: without writing a byte.
    schema::inspect(partial).map_err(|source| refusal(file, source))?;
    let (version, problems) = {
        let reader = schema::open_read_only(partial).map_err(|source| refusal(file, source))?;
        let version =
            schema::user_version(&reader).map_err(|source| refusal(file, source.into()))?;
        let problems = copy::integrity_problems(&reader).map_err(|source| refusal(file, source))?;
        (version, problems)
    };
    if !problems.is_empty() {
        return Err(BackupError::Damaged {
            path: file.clone(),
            problems,
        });
    }
    if version == 0 {
        return Err(BackupError::NotJoinform { path: file.clone() });
    }
    let mut connection = Connection::open(partial)?;
    copy::leave_wal_mode(&connection)?;
    // The staged copy is thrown away whole if anything fails: no rollback journal (a
    // clear copy of everyone) is left beside it by a kill. The header stays in
    // rollback mode; `OFF` is not recorded in the file.
    connection.pragma_update(None, "journal_mode", "OFF")?;
    let (taken_at, taken_exactly, audit_key_check) = match copy::newest_backup_entry(&connection)? {
        Some((at, details)) => {
            let details: Value = serde_json::from_str(&details).unwrap_or(Value::Null);
            let check = details["audit_key_check"].as_str().map(str::to_owned);
            (Some(at), true, check)
        }
        None => (copy::newest_recorded_time(&connection)?, false, None),
    };
    schema::migrate(&mut connection, partial).map_err(|source| refusal(file, source))?;
    audit::record(
        &connection,
        audit::CLI_ACTOR,
        Action::Restore,
        &json!({
            "file": file.file_name().map(|name| name.to_string_lossy()),
            "encrypted": encrypted,
            "backup_at": taken_at.map(|at| at.to_string()),
            "backup_at_exact": taken_exactly,
            "schema_version": version,
        }),
        0,
    )?;
    let counts = copy::counts(&connection)?;
    drop(connection);
    std::fs::File::open(partial)
        .and_then(|file| file.sync_all())
        .map_err(|source| BackupError::Write {
            path: partial.to_owned(),
            source,
        })?;
    Ok(Staged {
        counts,
        taken_at,
        taken_exactly,
        upgraded_from: (version < schema::SCHEMA_VERSION).then_some(version),
        audit_key_check,
    })
}

/// A store error about the staged copy as the operator should read it: a file SQLite
/// cannot read as a database is damaged; the rest (newer, foreign) say what they are.
fn refusal(file: &Path, source: StoreError) -> BackupError {
    // The checks ran on the temporary copy: name the file the operator gave.
    let path = file.to_owned();
    let source = match source {
        StoreError::TooNew {
            found, supported, ..
        } => StoreError::TooNew {
            path,
            found,
            supported,
        },
        StoreError::Foreign { .. } => StoreError::Foreign { path },
        StoreError::NotSqlite { .. } => StoreError::NotSqlite { path },
        StoreError::Unreadable { source, .. } => StoreError::Unreadable { path, source },
        other => other,
    };
    match source {
        // It passed the magic-string check before: the rest of its header is damaged.
        StoreError::NotSqlite { .. } => BackupError::HeaderDamaged {
            path: file.to_owned(),
        },
        StoreError::Io(inner) => BackupError::Damaged {
            path: file.to_owned(),
            problems: vec![inner.to_string()],
        },
        source => BackupError::Refused {
            path: file.to_owned(),
            source,
        },
    }
}

/// Renames the staged `partial` over the database; an existing one is held alone
/// meanwhile, taken out of WAL mode and copied aside first. Returns where the copy is.
fn put_in_place(
    database: &Database,
    partial: &Path,
    exists: bool,
) -> Result<Option<PathBuf>, BackupError> {
    let target = database.path();
    if !exists {
        place(partial, target)?;
        return Ok(None);
    }
    // The database being replaced may be the disaster itself: a file SQLite cannot
    // read. Whether something still has it open cannot then be learnt the way SQLite
    // would (its locks live in the file it cannot read), so it is left to the
    // operator, who is told exactly what to do.
    let stamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_else(|_| "unknown-time".to_owned());
    // Listed before SQLite touches anything: a connection to a file it cannot read
    // may, as it closes, delete the -wal and -shm beside it, and the -wal can hold
    // the newest commits (the erasures a replay needs among them).
    let moves = move_aside_commands(target, &stamp);
    let unreadable = |source: StoreError| BackupError::OldUnreadable {
        path: target.to_owned(),
        moves: moves.clone(),
        source: Box::new(source),
    };
    // An empty file is one SQLite takes as a new database; anything else must start
    // with its header before SQLite is let near it.
    let empty = std::fs::metadata(target).is_ok_and(|metadata| metadata.len() == 0);
    if !empty && !schema::has_sqlite_header(target).unwrap_or(false) {
        return Err(unreadable(StoreError::NotSqlite {
            path: target.to_owned(),
        }));
    }
    let damaged = |error: StoreError| match error {
        StoreError::InUse { .. } | StoreError::Busy => BackupError::InUse {
            path: target.to_owned(),
        },
        other => unreadable(other),
    };
    let alone = database.connect_alone().map_err(damaged)?;
    copy::leave_wal_mode(&alone).map_err(damaged)?;
    // The copy is written as a partial first and renamed only once complete: a
    // restore killed meanwhile leaves a partial, which the next one removes, never a
    // truncated `.replaced-…` that looks like a whole copy.
    let mut base = target.as_os_str().to_owned();
    base.push(format!(".replaced-{stamp}"));
    let copying = Partial::new(owner_only::partial_path(Path::new(&base)));
    {
        let write_error = |source| BackupError::Write {
            path: copying.path().to_owned(),
            source,
        };
        let mut to = owner_only::create(copying.path(), Existing::Refuse).map_err(write_error)?;
        let mut from = std::fs::File::open(target).map_err(|source| BackupError::Read {
            path: target.to_owned(),
            source,
        })?;
        std::io::copy(&mut from, &mut to).map_err(write_error)?;
        to.sync_all().map_err(write_error)?;
    }
    let replaced = replaced_name(&base)?;
    place(copying.path(), &replaced)?;
    copying.keep();
    // Out of WAL mode these are gone; one left over (a crash of an earlier command)
    // holds nothing the file lacks, since the lock is ours and the WAL was copied in.
    for suffix in ["-wal", "-shm"] {
        let companion = schema::companion(target, suffix);
        if companion.exists() {
            std::fs::remove_file(&companion).map_err(|source| BackupError::Write {
                path: companion.clone(),
                source,
            })?;
        }
    }
    place(partial, target)?;
    drop(alone);
    Ok(Some(replaced))
}

/// A `mv` line for each of the damaged database at `target` and its `-wal` and
/// `-shm` that exists (a line per file: a missing `-wal` stops nothing), each path
/// quoted for a POSIX shell, to `NAME.damaged-<stamp>` (never over an earlier one).
fn move_aside_commands(target: &Path, stamp: &str) -> String {
    ["", "-wal", "-shm"]
        .iter()
        .map(|suffix| schema::companion(target, suffix))
        .filter(|path| std::fs::symlink_metadata(path).is_ok())
        .map(|path| {
            let from = path.to_string_lossy();
            format!(
                "  mv {} {}\n",
                shell_word(&from),
                shell_word(&format!("{from}.damaged-{stamp}"))
            )
        })
        .collect()
}

/// `text` as one word for a POSIX shell: as it is when it holds nothing the shell
/// reads specially, else in single quotes.
pub fn shell_word(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-:+@=,%".contains(c));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// A free name `<db>.replaced-<stamp>` (`base`), with `-2`, `-3`… when a restore in
/// the same second made one already. Restores are one at a time (each holds the
/// database alone while it copies), so a name free now stays free until the rename.
fn replaced_name(base: &std::ffi::OsStr) -> Result<PathBuf, BackupError> {
    for attempt in 1..100 {
        let mut name = base.to_owned();
        if attempt > 1 {
            name.push(format!("-{attempt}"));
        }
        let path = PathBuf::from(name);
        if std::fs::symlink_metadata(&path).is_err() {
            return Ok(path);
        }
    }
    Err(BackupError::Write {
        path: PathBuf::from(base),
        source: std::io::Error::from(std::io::ErrorKind::AlreadyExists),
    })
}

// ---- Erasures since a backup. ----

/// The erasures recorded since a time, as [`read_erasures`] found them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Erasures {
    /// The file they were read from.
    pub source: PathBuf,
    /// `forget` and `discard` entries read.
    pub entries: u64,
    /// Each `forget` entry, in the order read.
    pub forgets: Vec<ForgetEntry>,
    /// Held and spam sign-ups discarded.
    pub discarded: BTreeSet<SubmissionId>,
}

/// One `forget` entry of a replay's source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForgetEntry {
    /// Its id in the source's audit trail, when the source records it.
    pub id: Option<i64>,
    pub at: Timestamp,
    /// The keyed hash of the erased address.
    pub address_hash: Option<String>,
    /// The check value of the audit key the hash was made with, as the entry records
    /// it (since schema 9); `None` for an entry of an older version. Only the entry's
    /// own value tells which key its hash was made with: a `backup` entry's says
    /// nothing about it.
    pub key_check: Option<String>,
}

/// Reads the `forget` and `discard` entries at or after `since` from `source`: a
/// joinform database (opened read-only; left exactly as it is) or a file of
/// `joinform audit --json` lines.
///
/// # Errors
/// [`BackupError::FutureSince`] for a `since` after now (nothing can have been
/// recorded then: a mistyped time, which would replay nothing and say all is done);
/// a file that cannot be read, a database whose audit trail cannot, a line that is no
/// audit entry.
pub fn read_erasures(source: &Path, since: Timestamp) -> Result<Erasures, BackupError> {
    if since > Timestamp::now() {
        return Err(BackupError::FutureSince { since });
    }
    let read_error = |error| BackupError::Read {
        path: source.to_owned(),
        source: error,
    };
    let mut erasures = Erasures {
        source: source.to_owned(),
        ..Erasures::default()
    };
    if schema::has_sqlite_header(source).map_err(read_error)? {
        let connection = schema::open_read_only(source)?;
        for entry in audit::since(&connection, since, None)? {
            let details: Value = serde_json::from_str(&entry.details).unwrap_or(Value::Null);
            erasures.add(Some(entry.id), entry.action, entry.at, &details);
        }
        return Ok(erasures);
    }
    let text = std::fs::read_to_string(source).map_err(|error| {
        if error.kind() == std::io::ErrorKind::InvalidData {
            BackupError::NotReplaySource {
                path: source.to_owned(),
            }
        } else {
            read_error(error)
        }
    })?;
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = || BackupError::BadAuditLine {
            path: source.to_owned(),
            line: number + 1,
        };
        let entry: Value = serde_json::from_str(line).map_err(|_| bad())?;
        let action = entry["action"]
            .as_str()
            .and_then(|text| text.parse::<Action>().ok())
            .ok_or_else(bad)?;
        let at = entry["at"]
            .as_str()
            .and_then(Timestamp::parse)
            .ok_or_else(bad)?;
        if at >= since {
            erasures.add(entry["id"].as_i64(), action, at, &entry["details"]);
        }
    }
    Ok(erasures)
}

/// The audit key's check value an entry records: `None` when it records none (an
/// entry older than the value), else the value in lower case; anything there that is
/// not a check value (a number, `null`, an empty string: a hand-edited file) stands
/// for a key that is not this one, so it can never pass for "no value".
fn recorded_key_check(details: &Value) -> Option<String> {
    let value = details.get("audit_key_check")?;
    Some(match value.as_str() {
        Some(text) if !text.is_empty() => text.to_ascii_lowercase(),
        _ => format!("(not a check value: {value})"),
    })
}

impl Erasures {
    fn add(&mut self, id: Option<i64>, action: Action, at: Timestamp, details: &Value) {
        match action {
            Action::Forget => {
                self.entries += 1;
                self.forgets.push(ForgetEntry {
                    id,
                    at,
                    address_hash: details["address_hash"].as_str().map(str::to_owned),
                    key_check: recorded_key_check(details),
                });
            }
            Action::Discard => {
                self.entries += 1;
                let ids = details["ids"].as_array().map(Vec::as_slice).unwrap_or(&[]);
                self.discarded.extend(
                    ids.iter()
                        .filter_map(Value::as_str)
                        .filter_map(SubmissionId::parse),
                );
            }
            _ => {}
        }
    }
}

/// What a replay did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Addresses erased in the source.
    pub addresses: u64,
    /// Among them, those with sign-ups here to erase.
    pub matched: u64,
    /// Sign-ups erased, and unsent notifications with them.
    pub submissions: u64,
    pub unsent_notifications: u64,
    /// Held or spam sign-ups discarded again.
    pub discarded: u64,
    /// `forget` entries that do not record their audit key (older versions), and
    /// among them those whose address matched nobody here: already applied, or made
    /// under another audit key (then the erased people are still here).
    pub unchecked: u64,
    pub unchecked_unmatched: u64,
}

/// Applies `erasures` to the database `connection` is connected to, through
/// [`store::erase`] (secure delete, free pages returned, WAL emptied), from the keyed
/// hashes alone: a row matches an erased address when
/// [`erasure::stored_key_hash`] of its `email_key` is that address's hash and it was
/// signed up by the time of the erasure. Runs beside a server, as `joinform forget`
/// does. Idempotent: what is gone is not found again, and nothing is audited then.
///
/// Each `forget` entry is judged by the audit key check value it records itself: an
/// entry made under another key than `secret`'s cannot match anybody, so the replay
/// refuses whole, listing those entries, rather than skip them and let those people
/// come back unnoticed. Entries that record no key (older versions) are replayed, and
/// counted in the report when they matched nobody. With no entries, changes nothing.
///
/// # Errors
/// [`BackupError::AuditKeyDiffers`]; SQLite's error; then nothing was erased.
pub fn replay(
    connection: &mut Connection,
    secret: &ServerSecret,
    erasures: &Erasures,
) -> Result<ReplayReport, BackupError> {
    let here = secret.audit_key_check();
    let foreign: Vec<&ForgetEntry> = erasures
        .forgets
        .iter()
        .filter(|entry| {
            entry
                .key_check
                .as_deref()
                .is_some_and(|check| check != here)
        })
        .collect();
    if !foreign.is_empty() {
        let there: BTreeSet<&str> = foreign
            .iter()
            .filter_map(|entry| entry.key_check.as_deref())
            .collect();
        let entries: Vec<String> = foreign
            .iter()
            .map(|entry| match entry.id {
                Some(id) => format!("id {id} at {}", entry.at),
                None => format!("at {}", entry.at),
            })
            .collect();
        return Err(BackupError::AuditKeyDiffers {
            path: erasures.source.clone(),
            here: here.to_owned(),
            there: there.into_iter().collect::<Vec<_>>().join(", "),
            count: foreign.len(),
            entries: entries.join(", "),
        });
    }
    if erasures.entries == 0 {
        return Ok(ReplayReport::default());
    }
    // Each address hash erased, with the newest time it was erased.
    let mut addresses: BTreeMap<&str, Timestamp> = BTreeMap::new();
    let mut unchecked: BTreeSet<&str> = BTreeSet::new();
    for entry in &erasures.forgets {
        let Some(hash) = entry.address_hash.as_deref() else {
            continue;
        };
        let newest = addresses.entry(hash).or_insert(entry.at);
        *newest = (*newest).max(entry.at);
        if entry.key_check.is_none() {
            unchecked.insert(hash);
        }
    }
    // Every stored key hashed once; rows signed up before an erasure do not change
    // meanwhile (only erasures remove them), so this may be read outside the
    // transaction.
    // For each erased address found: its key in clear, when a row holds it (else its
    // hash, which is a sealed row's key; erasing by key and hash takes both kinds).
    let mut found: BTreeMap<&str, String> = BTreeMap::new();
    if !addresses.is_empty() {
        for key in submissions::email_keys(connection)? {
            let hash = erasure::stored_key_hash(secret, &key);
            if let Some((hash, _)) = addresses.get_key_value(hash.as_str()) {
                let slot = found.entry(hash).or_insert_with(|| key.clone());
                if key.contains('@') {
                    *slot = key;
                }
            }
        }
    }
    let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    let unchecked_unmatched = count(
        unchecked
            .iter()
            .filter(|hash| !found.contains_key(**hash))
            .count(),
    );
    let discarded: Vec<SubmissionId> = erasures.discarded.iter().copied().collect();
    Ok(store::erase(connection, |erasing| {
        let mut report = ReplayReport {
            addresses: count(addresses.len()),
            unchecked: count(unchecked.len()),
            unchecked_unmatched,
            ..ReplayReport::default()
        };
        for (hash, key) in &found {
            let Some(&erased_at) = addresses.get(*hash) else {
                continue;
            };
            let erased =
                erasure::forget_replayed(erasing, key, hash, erased_at, audit::CLI_ACTOR, here)?;
            report.submissions += erased.submissions;
            report.unsent_notifications += erased.unsent_notifications;
            report.matched += u64::from(erased.submissions > 0);
        }
        if !discarded.is_empty() {
            report.discarded = review::discard_replayed(erasing, &discarded, audit::CLI_ACTOR)?;
        }
        Ok(report)
    })?)
}

// ---- Files. ----

/// What `path` is among the files of the installation whose database is `database`,
/// if it is one: the database, a companion of it (`-wal`, `-shm`, `-journal`, a
/// `.replaced-…` copy, Litestream's folder, a temporary file), or a key file beside
/// it. `by_name`: also any other file in the database's folder whose name starts
/// with the database's (a `.replaced-…` copy is a fine backup to restore from, but
/// never one to overwrite). The same file under any spelling: a symbolic link, `..`, another hard link
/// (compared by device and inode when it exists, else by canonical folder and name).
fn installation_file(database: &Path, path: &Path, by_name: bool) -> Option<&'static str> {
    let secret = crate::secret::audit_key_path(database);
    let folder = secret.parent().map(Path::to_owned).unwrap_or_default();
    let named: [(PathBuf, &'static str); 6] = [
        (database.to_owned(), "the database"),
        (
            schema::companion(database, "-wal"),
            "the database's write-ahead log",
        ),
        (
            schema::companion(database, "-shm"),
            "the database's shared-memory file",
        ),
        (
            schema::companion(database, "-journal"),
            "the database's journal",
        ),
        (secret, "the audit key"),
        (folder.join("secret.key"), "the server secret"),
    ];
    if let Ok(found) = std::fs::metadata(path) {
        for (own, what) in &named {
            if std::fs::metadata(own).is_ok_and(|own| same_inode(&own, &found)) {
                return Some(what);
            }
        }
    }
    let (folder_of_path, name) = canonical_entry(path)?;
    for (own, what) in &named {
        if canonical_entry(own).is_some_and(|entry| entry == (folder_of_path.clone(), name.clone()))
        {
            return Some(what);
        }
    }
    if !by_name {
        return None;
    }
    // The rest of what joinform keeps beside the database, by its name.
    let (database_folder, database_name) = canonical_entry(database)?;
    let name = name.to_string_lossy();
    let database_name = database_name.to_string_lossy();
    let hidden = format!(".{database_name}");
    (folder_of_path == database_folder
        && (name.starts_with(&*database_name) || name.starts_with(&hidden)))
    .then_some("a file joinform keeps beside the database")
}

/// The canonical folder of `path` and its file name: the same for every spelling of
/// a path whose folder exists, whether the file itself exists or not.
fn canonical_entry(path: &Path) -> Option<(PathBuf, std::ffi::OsString)> {
    let name = path.file_name()?.to_owned();
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let folder = std::fs::canonicalize(folder).ok()?;
    // A symbolic link named `path` is followed: the file it points to is what a
    // careless overwrite would reach.
    match std::fs::canonicalize(path) {
        Ok(resolved) => Some((
            resolved.parent().map(Path::to_owned).unwrap_or(folder),
            resolved.file_name().map_or(name, std::ffi::OsStr::to_owned),
        )),
        Err(_) => Some((folder, name)),
    }
}

#[cfg(unix)]
fn same_inode(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_inode(_a: &std::fs::Metadata, _b: &std::fs::Metadata) -> bool {
    false
}

/// Whether `path` is a regular file that begins as a backup of joinform's does: the
/// SQLite header (a clear backup), or an OpenPGP public-key encrypted session key
/// packet (RFC 9580 §5.1, tag 1, old or new packet format: the first packet of an
/// encrypted backup).
fn is_backup_file(path: &Path) -> bool {
    use std::io::Read;
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return false;
    }
    let mut head = [0u8; 16];
    let Ok(read) = std::fs::File::open(path).and_then(|mut file| file.read(&mut head)) else {
        return false;
    };
    let head = &head[..read];
    if head == b"SQLite format 3\0" {
        return true;
    }
    let Some(&first) = head.first() else {
        return false;
    };
    let tag = match first {
        b if b & 0x80 == 0 => return false,
        b if b & 0x40 != 0 => b & 0x3f,
        b => (b >> 2) & 0x0f,
    };
    tag == 1
}

/// Whether the binary OpenPGP message `bytes` ends before its packets do (a copy cut
/// short), by walking the packet headers (RFC 9580 §4.2): old and new formats, and
/// the partial body lengths of a streamed packet. Armored text is not walked.
fn truncated_message(bytes: &[u8]) -> bool {
    let mut at = 0usize;
    while at < bytes.len() {
        let tag = bytes[at];
        if tag & 0x80 == 0 {
            return false; // Not a packet header: not ours to judge.
        }
        at += 1;
        if tag & 0x40 == 0 {
            // Old format: the length's size is in the tag's low bits.
            let size = match tag & 0x03 {
                0 => 1,
                1 => 2,
                2 => 4,
                _ => return false, // Indeterminate: to the end of the file.
            };
            let Some(field) = bytes.get(at..at + size) else {
                return true;
            };
            let length = field.iter().fold(0usize, |n, b| (n << 8) | usize::from(*b));
            at = at.saturating_add(size).saturating_add(length);
            continue;
        }
        // New format: chunks with partial lengths, then a final length.
        loop {
            let Some(&first) = bytes.get(at) else {
                return true;
            };
            let (length, header, partial) = match first {
                0..=191 => (usize::from(first), 1, false),
                192..=223 => {
                    let Some(&second) = bytes.get(at + 1) else {
                        return true;
                    };
                    (
                        (usize::from(first - 192) << 8) + usize::from(second) + 192,
                        2,
                        false,
                    )
                }
                224..=254 => (1usize << (first & 0x1f), 1, true),
                255 => {
                    let Some(field) = bytes.get(at + 1..at + 5) else {
                        return true;
                    };
                    (
                        field.iter().fold(0usize, |n, b| (n << 8) | usize::from(*b)),
                        5,
                        false,
                    )
                }
            };
            at = at.saturating_add(header).saturating_add(length);
            if !partial {
                break;
            }
        }
    }
    at > bytes.len()
}

/// The folder `path` is in (`.` for a bare name).
fn folder_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Writes `bytes` to a new owner-only file at `path` and syncs it.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), BackupError> {
    owner_only::write_new(path, bytes).map_err(|source| BackupError::Write {
        path: path.to_owned(),
        source,
    })
}

/// Puts the synced `partial` in place at `path` ([`owner_only::place`]). Returns the
/// file's size.
fn place(partial: &Path, path: &Path) -> Result<u64, BackupError> {
    let write_error = |source| BackupError::Write {
        path: path.to_owned(),
        source,
    };
    owner_only::place(partial, path).map_err(write_error)?;
    Ok(std::fs::metadata(path).map_err(write_error)?.len())
}

/// A temporary file being written (a copy of everyone, possibly decrypted): removed,
/// with whatever SQLite left beside it, when the guard is dropped — on every early
/// return and panic — unless [`Partial::keep`] says it was put in place.
struct Partial {
    path: PathBuf,
    kept: bool,
}

impl Partial {
    fn new(path: PathBuf) -> Self {
        Self { path, kept: false }
    }

    fn path(&self) -> &Path {
        &self.path
    }

    /// It was renamed into place: nothing is left at its path to remove.
    fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.kept {
            remove_with_companions(&self.path);
        }
    }
}

/// Removes a temporary file and whatever SQLite left beside it.
fn remove_with_companions(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(schema::companion(path, suffix));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::database;

    const T0: &str = "2026-11-30T12:00:00.000000Z";

    #[test]
    fn a_recorded_check_value_that_is_not_one_never_passes_for_none() {
        assert_eq!(recorded_key_check(&json!({"address_hash": "ab"})), None);
        assert_eq!(
            recorded_key_check(&json!({"audit_key_check": "DA7CC21AF99A843A"})).as_deref(),
            Some("da7cc21af99a843a")
        );
        for odd in [
            json!(12345),
            Value::Null,
            json!(""),
            json!(["da7cc21af99a843a"]),
        ] {
            let check = recorded_key_check(&json!({ "audit_key_check": odd }));
            assert!(
                check
                    .as_deref()
                    .is_some_and(|text| text.starts_with("(not a check value")),
                "{odd}: {check:?}"
            );
        }
    }

    /// A sign-up stored with `email_key` (an address in clear, or a sealed row's hash).
    fn stored(connection: &Connection, email_key: &str, status: &str) -> SubmissionId {
        let id = SubmissionId::generate();
        connection
            .execute(
                "INSERT INTO submissions (id, created_at, name, email, country, consent,
                                          status, email_key)
                 VALUES (?1, ?2, 'x', ?3, 'NO', 1, ?4, ?3)",
                rusqlite::params![id, Timestamp::parse(T0).unwrap(), email_key, status],
            )
            .unwrap();
        id
    }

    #[test]
    fn a_replay_erases_clear_and_sealed_rows_by_hash_and_discards_by_id_once() {
        let (_dir, mut connection) = database();
        let secret = ServerSecret::from_bytes(b"a secret of the tests, 32 chars or more");
        let hash = erasure::address_hash(&secret, "kari@example.org");
        stored(&connection, "kari@example.org", "accepted");
        // A sealed row keeps the hash as its key.
        stored(&connection, &hash, "accepted");
        let kept = stored(&connection, "ola@example.org", "accepted");
        let spam = stored(&connection, "spam@example.org", "spam");
        // An accepted sign-up is never taken by a discard.
        let accepted = stored(&connection, "per@example.org", "accepted");
        let erased_at = Timestamp::now();
        let mut erasures = Erasures::default();
        erasures.add(
            None,
            Action::Forget,
            erased_at,
            &json!({ "address_hash": hash }),
        );
        erasures.add(
            None,
            Action::Discard,
            erased_at,
            &json!({ "ids": [spam.to_string(), accepted.to_string()] }),
        );
        erasures.add(None, Action::Export, erased_at, &json!({}));
        assert_eq!(erasures.entries, 2);

        let report = replay(&mut connection, &secret, &erasures).unwrap();
        assert_eq!(
            report,
            ReplayReport {
                addresses: 1,
                matched: 1,
                submissions: 2,
                unsent_notifications: 0,
                discarded: 1,
                unchecked: 1,
                unchecked_unmatched: 0,
            }
        );
        let left: BTreeSet<String> = connection
            .prepare("SELECT id FROM submissions")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            left,
            BTreeSet::from([kept.to_string(), accepted.to_string()])
        );
        let replayed: i64 = connection
            .query_row(
                "SELECT count(*) FROM audit WHERE json_extract(details, '$.replay') = 1",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(
            replayed, 2,
            "the address's erasure (both rows) and the discard"
        );

        let again = replay(&mut connection, &secret, &erasures).unwrap();
        assert_eq!(again.submissions + again.discarded, 0);
        let audited: i64 = connection
            .query_row("SELECT count(*) FROM audit", [], |row| row.get(0))
            .unwrap();
        assert_eq!(audited, 2, "a replay that erases nothing records nothing");
    }
}
