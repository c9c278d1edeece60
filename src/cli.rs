//! What the operator commands print. The binary parses arguments and calls these.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;

use rusqlite::TransactionBehavior;
use sha2::{Digest, Sha256};

use crate::config::{
    AdminTokenSettings, ConfigError, ConfigSource, Provenance, Settings, TransportKind,
};
use crate::domain::{BadMark, FollowupState, ReviewStatus, SubmissionId, Timestamp};
use crate::erasure::{self, address_hash, address_key};
use crate::export::{
    ExportError, ExportFilter, ExportFormat, ExportOptions, ExportSummary, Unsealer,
    check_unsealer, cursor, write_export,
};
use crate::followup_stats::{self, WindowFigures, human};
use crate::mail::{self, Templates};
use crate::owner_only::{self, Existing};
use crate::retention;
use crate::routing::Routing;
use crate::secret::{SecretError, ServerSecret, random_bytes};
use crate::store::audit::{self, Action, AuditEntry};
use crate::store::followup::{self, Marked};
use crate::store::{self, StoreError, export_cursors, outbox, review};
use crate::visitor::AddressHasher;

/// `check-config`: the settings summary, the routing table (each section's key
/// fingerprints or "clear text", and whether storage is sealed) and where each value
/// the file or the environment set came from ([`Provenance::report`]); or the first
/// problem (an OpenPGP key that is expired, revoked or cannot encrypt, named with its
/// file; with `mail.transport = "smtp"`, a contact or sender at a domain reserved for
/// examples). Then a `warning:` line for each key expiring within 30 days, for routing
/// that reaches nobody (the shipped example) and for each deprecated key in use.
///
/// # Errors
/// [`ConfigError`] for a key that cannot be used, a reserved domain over SMTP, or a
/// routing rule broken.
pub fn check_config(
    settings: &Settings,
    source: &ConfigSource,
    provenance: &Provenance,
) -> Result<String, ConfigError> {
    // One instant for both: a key is refused as expired, or warned of, never neither.
    let now = std::time::SystemTime::now();
    let routing = Routing::from_settings_at(settings, now)?;
    let sender = mail::sender(&settings.mail)?;
    let templates = Templates::load().map_err(|error| ConfigError::Invalid(error.to_string()))?;
    if settings.mail.transport == TransportKind::Smtp {
        routing.check_smtp_recipients(&sender)?;
    }
    let mut report = settings.summary(source);
    let _ = writeln!(report, "mail from:        {sender}");
    let admin = &settings.admin;
    let metrics = if admin.metrics_need_token() {
        match (&admin.metrics_token_sha256, admin.tokens.is_empty()) {
            (None, true) => "/metrics needs a token (not on loopback), and none is configured",
            (None, false) => "/metrics needs an admin token (not on loopback)",
            (Some(_), _) => "/metrics needs the metrics token or an admin token (not on loopback)",
        }
    } else if admin.listen.ip().is_loopback() {
        "/metrics without a token (loopback)"
    } else {
        "/metrics without a token (admin.public_metrics = true)"
    };
    let _ = writeln!(
        report,
        "admin listen:     {} ({} token(s)); {metrics}\n\
         retention:        accepted {}, spam {}, outbox {}",
        admin.listen,
        admin.tokens.len(),
        settings.retention.accepted.in_file_units(),
        settings.retention.spam.in_file_units(),
        settings.retention.outbox.in_file_units()
    );
    let _ = writeln!(
        report,
        "WAL checkpoints:  {}",
        settings.storage.checkpoints().describe()
    );
    let form = &settings.form;
    let _ = writeln!(
        report,
        "form page:        default language {}, privacy notice {}, logo {}\n\
         allowed origins:  {}",
        form.default_language,
        if form.privacy_url.is_empty() {
            "none"
        } else {
            &form.privacy_url
        },
        if form.logo_url.is_empty() {
            "none"
        } else {
            &form.logo_url
        },
        if settings.server.allowed_origins.is_empty() {
            "none (scripts on other sites cannot read answers)".to_owned()
        } else {
            settings.server.allowed_origins.join(", ")
        },
    );
    report.push_str(&routing.table());
    report.push_str(&provenance.report());
    for section in routing.sections_and_fallback() {
        if !templates.has_language(&section.language) {
            let _ = writeln!(
                report,
                "note: no mail template for `{}` (section {}): English is used; available: {}",
                section.language,
                section.name,
                templates.languages().join(", ")
            );
        }
    }
    for warning in routing.expiring_keys(now) {
        let _ = writeln!(report, "warning: {warning}");
    }
    if let Some(warning) = routing.example_warning() {
        let _ = writeln!(report, "warning: {warning}");
    }
    for warning in settings.deprecation_warnings() {
        let _ = writeln!(report, "warning: {warning}");
    }
    Ok(report)
}

/// The database a server has created. A mistyped path is an error, not a new empty
/// database: "0 failed rows" or "0 submissions erased" from the wrong file would be
/// believed.
fn open(settings: &Settings) -> Result<rusqlite::Connection, StoreError> {
    let path = &settings.storage.database;
    match std::fs::metadata(path) {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(StoreError::Missing { path: path.clone() });
        }
        // Not "missing": a folder or file this account may not read (permission
        // denied) is there, and says so.
        Err(source) => {
            return Err(StoreError::Unreadable {
                path: path.clone(),
                source,
            });
        }
    }
    if let Err(source) = std::fs::File::open(path) {
        return Err(StoreError::Unreadable {
            path: path.clone(),
            source,
        });
    }
    let database = settings.storage.database();
    database.prepare()?;
    database.connect()
}

/// What `outbox` prints, and whether every id given to `retry` named a failed row.
#[derive(Debug)]
pub struct OutboxReport {
    pub text: String,
    pub every_id_matched: bool,
}

/// `outbox`: counts by state and the failed rows; with `retry`, requeues failed rows
/// first and names each given id that is not a failed row. No personal data is printed.
pub fn outbox(settings: &Settings, retry: Option<&[String]>) -> Result<OutboxReport, StoreError> {
    let connection = open(settings)?;
    let mut report = String::new();
    let mut every_id_matched = true;
    if let Some(ids) = retry {
        // Text that is no id names no row either: reported like an unknown id.
        let parsed: Vec<Option<SubmissionId>> =
            ids.iter().map(|id| SubmissionId::parse(id)).collect();
        let valid: Vec<SubmissionId> = parsed.iter().flatten().copied().collect();
        let retried = if ids.is_empty() || !valid.is_empty() {
            outbox::retry_failed(&connection, &valid, Timestamp::now())?
        } else {
            outbox::Retried::default()
        };
        let _ = writeln!(
            report,
            "{} failed row(s) put back to pending",
            retried.changed
        );
        if retried.folded > 0 {
            let _ = writeln!(
                report,
                "{} failed overflow mail(s) cancelled: their section has one pending, \
                 which lists everything they would have",
                retried.folded
            );
        }
        let mut unmatched = 0;
        for (text, id) in ids.iter().zip(&parsed) {
            if id.is_none_or(|id| retried.not_failed.contains(&id)) {
                unmatched += 1;
                let _ = writeln!(
                    report,
                    "not a failed row, left as it is: {}",
                    text.escape_debug()
                );
            }
        }
        every_id_matched = unmatched == 0;
        if retried.changed + retried.folded > 0 {
            report.push_str("a running server sends them within a minute\n");
        }
    }
    let counts = outbox::counts(&connection)?;
    report.push_str("outbox:\n");
    for (state, count) in counts {
        let _ = writeln!(report, "  {:<9} {count}", state.as_str());
    }
    let failed = outbox::failed(&connection)?;
    if !failed.is_empty() {
        report.push_str("failed rows (id, kind, section, attempts, queued at, last error):\n");
        for row in failed {
            let _ = writeln!(
                report,
                "  {}\t{}\t{}\t{}\t{}\t{}",
                row.id,
                row.kind,
                row.section,
                row.attempts,
                row.created_at,
                row.last_error.unwrap_or_default()
            );
        }
    }
    Ok(OutboxReport {
        text: report,
        every_id_matched,
    })
}

// ---- Operators' data commands: export, erasure, retention, audit, admin tokens. ----

/// Why an export, erasure, purge or token command failed.
#[derive(Debug, thiserror::Error)]
pub enum DataCommandError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the audit trail cannot be written, so nothing was exported")]
    AuditUnavailable(#[source] StoreError),
    #[error("cannot write {path}")]
    Output {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the export failed after {rows} row(s); the checkpoint was not moved")]
    Export {
        rows: u64,
        #[source]
        source: ExportError,
    },
    #[error(transparent)]
    Filter(#[from] crate::export::FilterError),
    #[error("that is not an address joinform would have stored")]
    InvalidAddress,
    #[error(
        "standard input holds {0} lines of text: give one address per run, so that each \
         erasure is asked for and audited on its own (nothing was erased)"
    )]
    SeveralAddresses(usize),
    #[error("--since-last: the consumer name must be 1-64 letters, digits, _ . or -")]
    BadConsumer,
    #[error("the server secret")]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot read the address from standard input")]
    Stdin(#[source] std::io::Error),
    #[error("there is no accepted sign-up {0} (never was, erased, or spam or a duplicate)")]
    UnknownSignUp(String),
    #[error(transparent)]
    BadMark(#[from] BadMark),
    #[error("--status {0}: sign-ups to review are `held` or `spam`")]
    ReviewStatus(String),
    #[error("cannot read the secret key {path}")]
    KeyFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the secret key {path} cannot be used; nothing was exported")]
    SecretKey {
        path: PathBuf,
        #[source]
        source: crate::openpgp::CryptError,
    },
    #[error(
        "the secret key {path} cannot be used; nothing was restored, the database was not touched"
    )]
    RestoreKey {
        path: PathBuf,
        #[source]
        source: crate::openpgp::CryptError,
    },
    #[error(
        "the secret key {path} has a passphrase, and there is no terminal to ask it on: \
         give --passphrase-env VAR or --passphrase-fd N; nothing was restored"
    )]
    NoTerminal { path: PathBuf },
    #[error("cannot read the passphrase: {0}")]
    Passphrase(String),
    #[error("nothing was exported")]
    Unseal(#[source] crate::export::UnsealError),
    #[error(
        "storage.seal_keys is empty: `joinform seal` seals to those keys (and each \
         section's pgp_keys); set them first (see the README, \"Sealed storage\")"
    )]
    NotSealed,
    #[error("cannot seal sign-up {id}; the sign-ups sealed before it stay sealed")]
    Seal {
        id: SubmissionId,
        #[source]
        source: crate::sealing::SealError,
    },
    #[error(
        "the sign-ups are sealed, but the write-ahead log could not be emptied: run \
         `joinform seal` again"
    )]
    WalNotEmptied,
    #[error(transparent)]
    Backup(#[from] crate::backup::BackupError),
}

impl From<rusqlite::Error> for DataCommandError {
    fn from(error: rusqlite::Error) -> Self {
        Self::Store(error.into())
    }
}

/// What `joinform export` was asked for.
#[derive(Debug, Clone, Default)]
pub struct ExportCommand {
    pub filter: ExportFilter,
    pub format: ExportFormat,
    pub excel: bool,
    /// Incremental: the consumer whose checkpoint to start after and move.
    pub since_last: Option<String>,
    /// Standard output when `None`.
    pub output: Option<PathBuf>,
    /// Sealed rows opened with this key (`--decrypt-key`); as ciphertext when `None`.
    pub decrypt: Option<Decryption>,
}

/// `--decrypt-key FILE` and where its passphrase comes from.
#[derive(Debug, Clone)]
pub struct Decryption {
    /// An OpenPGP secret key, ASCII-armoured or binary
    /// (`gpg --armor --export-secret-keys`).
    pub key_file: PathBuf,
    pub passphrase: PassphraseSource,
}

/// Where the passphrase of `--decrypt-key` is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PassphraseSource {
    /// `--passphrase-env VAR`: the variable's value.
    Env(String),
    /// `--passphrase-fd N`: the first line read from file descriptor N (`/dev/fd/N`).
    Fd(u32),
    /// Asked for on the terminal without echo when standard input is one; empty
    /// otherwise (a key without a passphrase).
    Prompt,
}

/// The passphrase from `source`, without its line end. Never logged or printed.
///
/// # Errors
/// [`DataCommandError::Passphrase`]: the variable is unset or not UTF-8, the file
/// descriptor cannot be read, or the terminal cannot be.
pub fn read_passphrase(
    source: &PassphraseSource,
    key_file: &std::path::Path,
) -> Result<secrecy::SecretString, DataCommandError> {
    use std::io::IsTerminal;
    let text = match source {
        PassphraseSource::Env(name) => std::env::var(name).map_err(|error| {
            DataCommandError::Passphrase(format!("--passphrase-env {name}: {error}"))
        })?,
        PassphraseSource::Fd(fd) => {
            // No `File::from_raw_fd` (the crate forbids `unsafe`): the kernel's
            // /dev/fd names the same open file.
            let file = std::fs::File::open(format!("/dev/fd/{fd}")).map_err(|error| {
                DataCommandError::Passphrase(match error.kind() {
                    std::io::ErrorKind::NotFound => {
                        format!("--passphrase-fd {fd}: file descriptor {fd} is not open")
                    }
                    _ => format!("--passphrase-fd {fd}: {error}"),
                })
            })?;
            let mut line = String::new();
            let read = std::io::BufRead::read_line(&mut std::io::BufReader::new(file), &mut line)
                .map_err(|error| {
                DataCommandError::Passphrase(format!("--passphrase-fd {fd}: {error}"))
            })?;
            // An empty line is an empty passphrase; no line at all is a mistake (an
            // empty file, `3</dev/null`), not a passphrase to try.
            if read == 0 {
                return Err(DataCommandError::Passphrase(format!(
                    "--passphrase-fd {fd}: nothing could be read from file descriptor {fd} \
                     (it is empty or at its end)"
                )));
            }
            line
        }
        PassphraseSource::Prompt if std::io::stdin().is_terminal() => {
            rpassword::prompt_password(format!(
                "Passphrase for {} (Enter if it has none): ",
                key_file.display()
            ))
            .map_err(|error| DataCommandError::Passphrase(format!("the terminal: {error}")))?
        }
        PassphraseSource::Prompt => String::new(),
    };
    let text = text.strip_suffix('\n').unwrap_or(&text);
    let text = text.strip_suffix('\r').unwrap_or(text);
    Ok(secrecy::SecretString::from(text.to_owned()))
}

/// The operator's secret key of `decryption`, read and unlocked with its passphrase.
/// `restoring`: for `restore`, whose messages say nothing was restored, and which
/// says so when there was no terminal to ask a passphrase on (an empty one was tried);
/// else for `export`.
///
/// # Errors
/// [`DataCommandError::KeyFile`], [`DataCommandError::Passphrase`]; a key that cannot
/// be parsed or unlocked: [`DataCommandError::RestoreKey`] when `restoring`, else
/// [`DataCommandError::SecretKey`]; [`DataCommandError::NoTerminal`].
fn unlocked_key(
    decryption: &Decryption,
    restoring: bool,
) -> Result<crate::openpgp::SecretKey, DataCommandError> {
    let path = &decryption.key_file;
    let bytes =
        crate::openpgp::read_key_file(path).map_err(|source| DataCommandError::KeyFile {
            path: path.clone(),
            source,
        })?;
    let key_error = |source| {
        let path = path.clone();
        if restoring {
            DataCommandError::RestoreKey { path, source }
        } else {
            DataCommandError::SecretKey { path, source }
        }
    };
    let key = crate::openpgp::SecretKey::parse(&bytes).map_err(key_error)?;
    let passphrase = read_passphrase(&decryption.passphrase, path)?;
    match key.unlock(secrecy::ExposeSecret::expose_secret(&passphrase)) {
        Ok(key) => Ok(key),
        // No terminal to ask on: an empty passphrase was tried, and the key has one.
        Err(crate::openpgp::CryptError::WrongPassphrase)
            if restoring
                && matches!(decryption.passphrase, PassphraseSource::Prompt)
                && !std::io::IsTerminal::is_terminal(&std::io::stdin()) =>
        {
            Err(DataCommandError::NoTerminal { path: path.clone() })
        }
        Err(source) => Err(key_error(source)),
    }
}

/// `export`: audit row first, then the rows, then the row count and (for `--since-last`)
/// the new checkpoint, together, only once every row is written.
///
/// With `--decrypt-key`, the key is read and its passphrase asked for first, then tried
/// on the first sealed row selected before any output is made: a wrong passphrase (or
/// a key the rows were not sealed to) exports nothing and leaves no file, and its audit
/// row stays incomplete. A decrypted export that fails later removes its file.
pub fn export(
    settings: &Settings,
    mut command: ExportCommand,
) -> Result<ExportSummary, DataCommandError> {
    command.filter.check()?;
    let options = ExportOptions {
        format: command.format,
        excel: command.excel,
        extra_columns: settings.form.extra_field_names(),
        installation_sealed: !settings.storage.seal_keys.is_empty(),
    };
    options.check()?;
    let unsealer = command
        .decrypt
        .as_ref()
        .map(|decryption| unlocked_key(decryption, false).map(Unsealer::unlocked))
        .transpose()?;
    let mut connection = open(settings)?;
    if let Some(consumer) = &command.since_last {
        let valid = (1..=64).contains(&consumer.len())
            && consumer
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !valid {
            return Err(DataCommandError::BadConsumer);
        }
        command.filter.after_id = export_cursors::get(&connection, consumer)?;
        command.filter.before_id = Some(cursor::settled_bound(Timestamp::now()));
    }
    let mut details = command.filter.details();
    details["format"] = command.format.as_str().into();
    details["via"] = "cli".into();
    details["consumer"] = command.since_last.clone().into();
    // Whether sealed rows left decrypted; never the key's passphrase.
    details["decrypted"] = unsealer.is_some().into();
    if let Some(path) = &command.output {
        details["output"] = path.display().to_string().into();
    }
    let audit_id = audit::begin(&connection, audit::CLI_ACTOR, Action::Export, &details)
        .map_err(DataCommandError::AuditUnavailable)?;
    if let Some(unsealer) = &unsealer
        && let Err(error) = check_unsealer(&connection, &command.filter, unsealer)
    {
        let _ = audit::finish(&connection, audit_id, 0, false);
        return Err(match error {
            ExportError::Unseal(error) => DataCommandError::Unseal(error),
            source => DataCommandError::Export { rows: 0, source },
        });
    }

    let mut summary = ExportSummary::default();
    let outcome = match &command.output {
        Some(path) => {
            // Written beside the file and renamed over it once complete, so that a
            // failed export leaves what was there before, and a reader never sees
            // half a file. Personal data: only its owner may read it.
            let partial = owner_only::partial_path(path);
            let output = |source| DataCommandError::Output {
                path: path.clone(),
                source,
            };
            // The file named is checked as it would be written to: the rename would
            // replace a symbolic link, where writing through it is refused.
            if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(output(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "is a symbolic link: name the file itself",
                )));
            }
            let file = owner_only::create(&partial, Existing::Refuse).map_err(output)?;
            let mut out = std::io::BufWriter::new(file);
            let written = write_export(
                &connection,
                &command.filter,
                &options,
                unsealer.as_ref(),
                &mut out,
                &mut summary,
            )
            .and_then(|()| {
                out.into_inner()
                    .map_err(|error| ExportError::Write(error.into_error()))?
                    .sync_all()
                    .map_err(ExportError::Write)
            });
            let written = written.and_then(|()| {
                owner_only::place(&partial, path).map_err(|error| {
                    ExportError::Write(std::io::Error::new(
                        error.kind(),
                        format!(
                            "cannot put the export in place at {}: {error}",
                            path.display()
                        ),
                    ))
                })
            });
            if written.is_err() {
                // Half an export is personal data nobody asked to keep: it goes.
                let _ = std::fs::remove_file(&partial);
            }
            written
        }
        None => {
            let stdout = std::io::stdout();
            let out = std::io::BufWriter::new(stdout.lock());
            write_export(
                &connection,
                &command.filter,
                &options,
                unsealer.as_ref(),
                out,
                &mut summary,
            )
        }
    };
    if let Err(source) = outcome {
        // The audit row keeps the attempt, marked incomplete, with what may have left.
        let _ = audit::finish(&connection, audit_id, summary.rows, false);
        return Err(DataCommandError::Export {
            rows: summary.rows,
            source,
        });
    }
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    audit::finish(&transaction, audit_id, summary.rows, true)?;
    if let (Some(consumer), Some(last_id)) = (&command.since_last, &summary.last_id) {
        export_cursors::set(&transaction, consumer, *last_id)?;
    }
    transaction.commit()?;
    Ok(summary)
}

/// Sign-ups sealed per transaction by `joinform seal`: a large database is rewritten
/// in many small commits, not one that would grow the WAL by its whole size.
pub const SEAL_BATCH: u32 = 200;

/// What `joinform seal` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SealReport {
    /// Sign-ups rewritten sealed by this run.
    pub sealed: u64,
    /// Among them, those whose notification was not sent yet: it now goes out as the
    /// payload encrypted to its section's keys.
    pub notifications: u64,
    /// Sign-ups already sealed before this run (by the server, or an earlier run).
    pub already_sealed: u64,
}

/// `seal`: rewrites every sign-up stored in clear as sealed storage stores one, to
/// `storage.seal_keys` and its section's `pgp_keys`, then rewrites the database file and
/// empties its WAL, so that no clear text is left in free pages or the log.
///
/// The database is held alone for the whole run ([`store::Database::connect_alone`]):
/// while a server has it open, nothing is done. Rows are sealed [`SEAL_BATCH`] to a
/// transaction; an interrupted run leaves every row either clear or sealed, and running
/// it again seals the rest (a row already sealed is never touched). Audited as `seal`,
/// by `cli`, with the number of rows sealed.
///
/// # Errors
/// [`DataCommandError::NotSealed`] without `storage.seal_keys`; a configuration a sealed
/// server would refuse; [`StoreError::InUse`] while a server runs;
/// [`DataCommandError::Seal`] naming the first sign-up that cannot be sealed.
pub fn seal(settings: &Settings) -> Result<SealReport, DataCommandError> {
    if settings.storage.seal_keys.is_empty() {
        return Err(DataCommandError::NotSealed);
    }
    // Everything a sealed server would check, before the database is touched.
    let routing = std::sync::Arc::new(Routing::from_settings(settings)?);
    let from = mail::sender(&settings.mail)?;
    let templates = std::sync::Arc::new(
        Templates::load().map_err(|error| ConfigError::Invalid(error.to_string()))?,
    );
    if !settings.storage.database.exists() {
        return Err(StoreError::Missing {
            path: settings.storage.database.clone(),
        }
        .into());
    }
    let database = settings.storage.database();
    database.prepare()?;
    let mut connection = database.connect_alone()?;
    let secret = ServerSecret::load(settings.spam.expose_secret(), &settings.storage.database)?;
    // A notification carries its sign-up's follow-up link when follow-up is on, as the
    // server's would.
    let followup_mails = settings
        .server
        .public_url()
        .filter(|_| settings.followup_enabled())
        .map(|public_url| {
            std::sync::Arc::new(crate::followup::FollowupMails::new(
                &settings.followup,
                std::sync::Arc::clone(&routing),
                std::sync::Arc::clone(&templates),
                crate::followup::Links::new(
                    crate::followup::links::LinkKey::from_secret(&secret),
                    public_url,
                    settings.followup.link_ttl.get(),
                ),
            )) as std::sync::Arc<dyn mail::FollowupMail>
        });
    let message_domain = from.email.domain().to_owned();
    let sealer = crate::sealing::Sealer::new(routing, templates, from, followup_mails, secret)
        .ok_or(DataCommandError::NotSealed)?;

    let total: i64 =
        connection.query_row("SELECT count(*) FROM submissions", [], |row| row.get(0))?;
    let clear = store::seal::clear_count(&connection)?;
    let mut report = SealReport {
        already_sealed: u64::try_from(total).unwrap_or(0).saturating_sub(clear),
        ..SealReport::default()
    };
    let audit_id = audit::begin(
        &connection,
        audit::CLI_ACTOR,
        Action::Seal,
        &serde_json::json!({ "clear_before": clear, "batch": SEAL_BATCH }),
    )
    .map_err(DataCommandError::AuditUnavailable)?;
    let mut after = None;
    loop {
        let rows = store::seal::clear_rows(&connection, after, SEAL_BATCH)?;
        let Some(last) = rows.last() else { break };
        after = Some(last.submission.id);
        // The OpenPGP work first, outside the transaction.
        let mut sealed = Vec::with_capacity(rows.len());
        for row in &rows {
            let id = row.submission.id;
            let message_id = row
                .message_id
                .clone()
                .unwrap_or_else(|| format!("<{id}@{message_domain}>"));
            let record = sealer
                .seal(&row.submission, &message_id)
                .map_err(|source| DataCommandError::Seal { id, source })?;
            sealed.push((row, record));
        }
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for (row, record) in &sealed {
            let id = row.submission.id;
            if store::seal::seal_row(&transaction, id, record, row.submission.is_returning)? {
                report.sealed += 1;
                report.notifications += u64::from(row.unsent_notification);
            }
        }
        transaction.commit()?;
    }
    audit::finish(&connection, audit_id, report.sealed, true)?;
    // Rows were rewritten, not deleted: their clear copies are in the pages they left
    // and in the WAL until the file is rewritten and the log emptied.
    if !store::rewrite_file(&connection)? {
        return Err(DataCommandError::WalNotEmptied);
    }
    Ok(report)
}

/// What `joinform seal` prints.
pub fn seal_summary(report: &SealReport) -> String {
    format!(
        "sealed {} sign-up(s), with {} unsent notification(s) now encrypted to their \
         sections' keys; {} sign-up(s) were sealed already\n\
         database file rewritten and its write-ahead log emptied: no clear text is left in \
         free pages or the log\n",
        report.sealed, report.notifications, report.already_sealed
    )
}

/// `forget EMAIL` (`-` reads it from standard input, keeping it out of shell history).
pub fn forget(settings: &Settings, email: &str) -> Result<String, DataCommandError> {
    let email = if email == "-" {
        // All of it: a second address must not be dropped unnoticed.
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(DataCommandError::Stdin)?;
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        if lines.len() > 1 {
            return Err(DataCommandError::SeveralAddresses(lines.len()));
        }
        lines.first().copied().unwrap_or_default().to_owned()
    } else {
        email.to_owned()
    };
    let key = address_key(&email).ok_or(DataCommandError::InvalidAddress)?;
    // The database first: a wrong path must not leave a new secret key behind.
    let mut connection = open(settings)?;
    let secret = ServerSecret::load(settings.spam.expose_secret(), &settings.storage.database)?;
    let hash = address_hash(&secret, &key);
    let report = store::erase(&mut connection, |erasing| {
        erasure::forget(
            erasing,
            &key,
            &hash,
            secret.audit_key_check(),
            audit::CLI_ACTOR,
        )
    })?;
    Ok(format!(
        "erased {} submission(s) and {} unsent notification(s); audit reference {}\n",
        report.submissions,
        report.unsent_notifications,
        &hash[..16]
    ))
}

/// `purge`: applies `[retention]` now.
pub fn purge(settings: &Settings) -> Result<String, DataCommandError> {
    let mut connection = open(settings)?;
    let report = store::erase(&mut connection, |erasing| {
        retention::purge(
            erasing,
            &settings.retention,
            settings.form.confirm_within,
            Timestamp::now(),
            audit::CLI_ACTOR,
        )
    })?;
    Ok(format!(
        "deleted {} accepted or duplicate submission(s) older than {}, {} spam and {} held \
         older than {}, {} unconfirmed sign-up(s) older than {}, \
         {} sent or failed notification(s) older than {}\n",
        report.accepted,
        settings.retention.accepted.in_file_units(),
        report.spam,
        report.held,
        settings.retention.spam.in_file_units(),
        report.unconfirmed,
        settings.form.confirm_within.in_file_units(),
        report.outbox,
        settings.retention.outbox.in_file_units()
    ))
}

/// `audit`: the newest entries, oldest first.
pub fn audit(settings: &Settings, limit: u32) -> Result<String, DataCommandError> {
    let connection = open(settings)?;
    Ok(audit_listing(&audit::list(&connection, limit)?))
}

// ---- Backups: backup, restore, the erasures since a backup. ----

/// `backup FILE [--encrypt-to KEY.asc…] [--force]`: a consistent copy of the live
/// database (see [`crate::backup::backup`]), and what it holds.
///
/// # Errors
/// [`DataCommandError`]: no database, a key that cannot be used, a copy that cannot be
/// written or fails its check (nothing is left at FILE then).
pub fn backup(
    settings: &Settings,
    config: Option<&std::path::Path>,
    request: &crate::backup::BackupRequest,
) -> Result<String, DataCommandError> {
    let connection = open(settings)?;
    let secret = ServerSecret::load(settings.spam.expose_secret(), &settings.storage.database)?;
    let report = crate::backup::backup(&connection, &secret, request)?;
    let mut text = stale_listing(&report.stale_removed, "backup");
    let _ = writeln!(
        text,
        "backed up to {} in {:.2} s: {} bytes, integrity_check ok",
        report.output.display(),
        report.elapsed.as_secs_f64(),
        report.file_bytes
    );
    if report.recipients.is_empty() {
        text.push_str(
            "not encrypted: it holds every sign-up in clear; keep it as safe as the \
             database\n",
        );
    } else {
        let _ = writeln!(
            text,
            "encrypted to {}; no clear copy was written",
            report.recipients.join(", ")
        );
    }
    text.push_str(&counts_listing(&report.counts));
    let _ = writeln!(
        text,
        "taken at {at}; after restoring it, and before starting the server, re-apply the \
         erasures made since then (SOURCE: the database it replaced, or a newer \
         `joinform audit --json` file):\n  {}",
        replay_command(&report.at.to_string(), "SOURCE", config),
        at = report.at
    );
    Ok(text)
}

/// The `joinform forget --replay` command line, as it can be pasted into a shell:
/// with `--config` when one was given, each path quoted when it needs it.
fn replay_command(since: &str, from: &str, config: Option<&std::path::Path>) -> String {
    let mut line = format!(
        "joinform forget --replay {since} --from {}",
        crate::backup::shell_word(from)
    );
    if let Some(config) = config {
        let _ = write!(
            line,
            " --config {}",
            crate::backup::shell_word(&config.to_string_lossy())
        );
    }
    line
}

/// A line per temporary file of an interrupted `what` that was removed.
fn stale_listing(removed: &[PathBuf], what: &str) -> String {
    removed
        .iter()
        .map(|path| {
            format!(
                "removed {}, left by an interrupted {what} (a copy of personal data)\n",
                path.display()
            )
        })
        .collect()
}

/// The row counts of a backup or a restored database, a line per table.
fn counts_listing(counts: &store::backup::Counts) -> String {
    let listed = |rows: &[(String, u64)]| {
        if rows.is_empty() {
            "none".to_owned()
        } else {
            rows.iter()
                .map(|(name, n)| format!("{name} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    format!(
        "submissions: {} ({} in all)\noutbox: {}\naudit entries: {}\ndatabase size: {} \
         bytes\n",
        listed(&counts.submissions),
        counts.submissions_total(),
        listed(&counts.outbox),
        counts.audit,
        counts.bytes
    )
}

/// `restore FILE [--decrypt-key KEY …] [--replace]`: puts a backup in place of the
/// database (see [`crate::backup::restore`]) and says what to do next.
///
/// # Errors
/// [`DataCommandError`]: each refusal (in use, exists, damaged, foreign, newer, not
/// SQLite, cannot decrypt); the database is then untouched.
pub fn restore(
    settings: &Settings,
    config: Option<&std::path::Path>,
    file: PathBuf,
    decryption: Option<&Decryption>,
    replace: bool,
) -> Result<String, DataCommandError> {
    let decrypt = decryption
        .map(|decryption| unlocked_key(decryption, true))
        .transpose()?;
    let database = settings.storage.database();
    let request = crate::backup::RestoreRequest {
        file: file.clone(),
        decrypt,
        replace,
    };
    let report = crate::backup::restore(&database, &request)?;
    Ok(restore_summary(&file, &report.database, config, &report))
}

fn restore_summary(
    file: &std::path::Path,
    target: &std::path::Path,
    config: Option<&std::path::Path>,
    report: &crate::backup::RestoreReport,
) -> String {
    use crate::backup::AuditKeyState;
    let mut text = stale_listing(&report.stale_removed, "restore");
    let _ = writeln!(
        text,
        "restored {} to {}: integrity_check ok",
        file.display(),
        target.display()
    );
    if let Some(version) = report.upgraded_from {
        let _ = writeln!(
            text,
            "the backup had schema version {version}: upgraded to {} while restoring",
            store::schema::SCHEMA_VERSION
        );
    }
    text.push_str(&counts_listing(&report.counts));
    let since = match (report.taken_at, report.taken_exactly) {
        (Some(at), true) => {
            let _ = writeln!(
                text,
                "the backup was taken at {at} (its `backup` audit entry)"
            );
            at.to_string()
        }
        (Some(at), false) => {
            let _ = writeln!(
                text,
                "the backup has no `backup` audit entry; the newest time it records is \
                 {at}: it was taken then or later"
            );
            at.to_string()
        }
        (None, _) => {
            text.push_str("the backup records no time at all\n");
            "<when the backup was taken>".to_owned()
        }
    };
    match &report.replaced {
        Some(replaced) => {
            let _ = writeln!(
                text,
                "the database it replaced is kept as {}: it holds personal data, and the \
                 erasures made since the backup. Re-apply them now, BEFORE starting the \
                 server (it would send the pending notifications of people erased since):\n  \
                 {}\nthen delete it.",
                replaced.display(),
                replay_command(&since, &replaced.to_string_lossy(), config)
            );
        }
        None => {
            let _ = writeln!(
                text,
                "erasures made after the backup are not in it: re-apply them BEFORE \
                 starting the server (it would send the pending notifications of people \
                 erased since), from a newer copy (a later backup, a Litestream restore) or \
                 a `joinform audit --json` file kept off-site (SOURCE):\n  {}",
                replay_command(&since, "SOURCE", config)
            );
        }
    }
    match report.audit_key {
        AuditKeyState::Same => {}
        AuditKeyState::Missing => text.push_str(
            "WARNING: there is no audit.key beside the database: put back the one kept \
             safe with the backups before replaying the erasures (`forget --replay` \
             refuses until then) and before starting the server. A new one would be made \
             from secret.key (or spam.secret): the same key only if that is the \
             installation's own too; otherwise the erasures' hashes and sealed sign-ups' \
             address keys would no longer match anybody.\n",
        ),
        AuditKeyState::Differs => text.push_str(
            "WARNING: audit.key beside the database is not the key this backup was made \
             with: erasure hashes and sealed sign-ups' address keys will not match. Put \
             back the audit.key of the backup's installation before starting the server.\n",
        ),
        AuditKeyState::Unreadable => text.push_str(
            "WARNING: audit.key beside the database cannot be read or holds no key: \
             put back the one kept safe with the backups before starting the server\n",
        ),
        AuditKeyState::Unknown => text.push_str(
            "the backup does not record its audit key (not made by `joinform backup`): \
             make sure audit.key beside the database is the installation's own\n",
        ),
    }
    if let Some(folder) = &report.litestream_folder {
        let _ = writeln!(
            text,
            "Litestream's folder {} is beside the database: Litestream does not notice a \
             replaced file; run `litestream reset` (or delete that folder) before starting \
             it again",
            folder.display()
        );
    }
    text
}

/// `audit --since DATE [--action A] [--json]`: every entry since a time; as JSON, one
/// object a line (id, at, actor, action, details, row_count, completed_at), for an
/// off-site list of erasures (it holds keyed hashes, never an address).
///
/// # Errors
/// [`DataCommandError`]: no database, or it cannot be read.
pub fn audit_since(
    settings: &Settings,
    since: Timestamp,
    action: Option<Action>,
    as_json: bool,
) -> Result<String, DataCommandError> {
    let connection = open(settings)?;
    let entries = audit::since(&connection, since, action)?;
    if !as_json {
        return Ok(audit_listing(&entries));
    }
    let mut text = String::new();
    for entry in &entries {
        let details: serde_json::Value =
            serde_json::from_str(&entry.details).unwrap_or(serde_json::Value::Null);
        let line = serde_json::json!({
            "id": entry.id,
            "at": entry.at.to_string(),
            "actor": entry.actor,
            "action": entry.action.as_str(),
            "details": details,
            "row_count": entry.row_count,
            "completed_at": entry.completed_at.map(|at| at.to_string()),
        });
        let _ = writeln!(text, "{line}");
    }
    Ok(text)
}

/// `forget --replay SINCE --from SOURCE`: the erasures recorded since `since` in
/// `source` (a joinform database, opened read-only, or an `audit --json` file)
/// applied to this database (see [`crate::backup::replay`]).
///
/// # Errors
/// [`DataCommandError`]: no database, an unreadable source; then nothing was erased.
pub fn forget_replay(
    settings: &Settings,
    since: Timestamp,
    source: &std::path::Path,
) -> Result<String, DataCommandError> {
    let erasures = crate::backup::read_erasures(source, since)?;
    let mut connection = open(settings)?;
    // Never a new key: one made now would match none of the recorded hashes, and the
    // replay would report everything "already applied".
    let secret =
        ServerSecret::load_existing(settings.spam.expose_secret(), &settings.storage.database)?;
    let report = crate::backup::replay(&mut connection, &secret, &erasures)?;
    if erasures.entries == 0 {
        return Ok(format!(
            "no erasure recorded since {since} in {}: nothing to re-apply\n",
            source.display()
        ));
    }
    let mut text = format!(
        "read {} erasure entr{} since {since} from {}: {} address(es) erased, {} held or \
         spam sign-up(s) discarded\n",
        erasures.entries,
        if erasures.entries == 1 { "y" } else { "ies" },
        source.display(),
        report.addresses,
        erasures.discarded.len()
    );
    if report.submissions == 0 && report.discarded == 0 {
        text.push_str("nothing here to erase: every one of them is already applied\n");
    } else {
        let _ = writeln!(
            text,
            "matched {} address(es): erased {} submission(s) and {} unsent \
             notification(s); discarded {} held or spam sign-up(s) again",
            report.matched, report.submissions, report.unsent_notifications, report.discarded
        );
    }
    if report.unchecked_unmatched > 0 {
        let _ = writeln!(
            text,
            "WARNING: {} of the {} erased address(es) whose entries do not record which \
             audit.key their hashes were made with (entries of an older version) matched \
             nobody here: either they were applied already, or audit.key beside the \
             database is not the one they were made with, and those erased people are \
             still here. Check that audit.key is the one kept safe with the backups.",
            report.unchecked_unmatched, report.unchecked
        );
    }
    Ok(text)
}

/// `token new NAME [--section S…]`: a fresh token, shown once, and the lines that
/// configure its hash. The token itself is never stored or logged.
pub fn new_token(
    settings: &Settings,
    name: &str,
    sections: &[String],
) -> Result<String, DataCommandError> {
    let token = format!("jfa_{}", hex::encode(random_bytes::<32>()?));
    let digest = hex::encode(Sha256::digest(token.as_bytes()));
    // The same checks as a configured token: name, uniqueness, known sections.
    let mut with_token = settings.clone();
    with_token.admin.tokens.push(AdminTokenSettings {
        name: name.to_owned(),
        sha256: digest.clone(),
        sections: sections.to_vec(),
    });
    with_token.check()?;
    let mut text = format!(
        "New admin token for {name} (shown only now; keep it in a password manager):\n\n  \
         {token}\n\nAdd these lines to the configuration file and restart joinform:\n\n\
         [[admin.tokens]]\nname = {}\nsha256 = \"{digest}\"\n",
        toml::Value::String(name.to_owned())
    );
    if !sections.is_empty() {
        let list = sections
            .iter()
            .map(|s| toml::Value::String(s.clone()).to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(text, "sections = [{list}]");
    }
    Ok(text)
}

/// `token metrics`: a fresh random token for `GET /metrics` only (Prometheus's
/// `authorization: credentials`), shown once, and the `admin.metrics_token_sha256`
/// line with its SHA-256.
///
/// # Errors
/// When the system's random source fails.
pub fn new_metrics_token() -> Result<String, SecretError> {
    let token = format!("jfm_{}", hex::encode(random_bytes::<32>()?));
    let digest = hex::encode(Sha256::digest(token.as_bytes()));
    Ok(format!(
        "New metrics token (shown only now; it reads /metrics and nothing else; give it \
         to Prometheus as a bearer token):\n\n  {token}\n\nAdd this line under [admin] \
         in the configuration file and restart joinform:\n\n\
         metrics_token_sha256 = \"{digest}\"\n"
    ))
}

/// A note for `--section NAME` when no configured section (nor the fallback) has that
/// name: the command still runs, since sign-ups keep the name of a section that was
/// renamed or removed since, but a typo should not read as "nobody there". `None` for
/// a configured name.
pub fn unknown_section_note(settings: &Settings, name: &str) -> Option<String> {
    let mut names: Vec<&str> = settings.sections.iter().map(|s| s.name.as_str()).collect();
    names.extend(settings.fallback.iter().map(|f| f.name.as_str()));
    if names.contains(&name) {
        return None;
    }
    Some(format!(
        "note: no configured section is named `{name}` (names are case-sensitive: {}); \
         only sign-ups stored under that exact name are shown",
        names.join(", ")
    ))
}

// ---- Follow-up of sign-ups: list, mark, stats. ----

/// `followup list [--section NAME] [--overdue]`: the sign-ups nobody has contacted yet
/// (state `new`), oldest first, as a table. No address, phone, message or name.
///
/// # Errors
/// [`DataCommandError`]: the database cannot be opened or read (or, for `mark`, written),
/// or the id or state given is not one.
pub fn followup_list(
    settings: &Settings,
    section: Option<&str>,
    overdue: bool,
) -> Result<String, DataCommandError> {
    let connection = open(settings)?;
    let now = Timestamp::now();
    let remind_after = settings.followup.remind_after.get();
    let overdue_before = now.minus(remind_after);
    let sections = section.map(|section| vec![section.to_owned()]);
    let waiting = followup::waiting(
        &connection,
        sections.as_deref(),
        overdue.then_some(overdue_before),
        None,
    )?;
    let mut text = format!(
        "{:<36}  {:<20}  {:<7}  {:<27}  {:>7}  state\n",
        "id", "section", "country", "signed up", "age"
    );
    for entry in &waiting {
        let _ = writeln!(
            text,
            "{:<36}  {:<20}  {:<7}  {:<27}  {:>7}  {}{}",
            entry.id,
            entry.section,
            entry.country.as_str(),
            entry.created_at,
            human(now.since(entry.waiting_since)),
            entry.state,
            if entry.waiting_since < overdue_before {
                " (overdue)"
            } else {
                ""
            }
        );
    }
    let _ = writeln!(
        text,
        "{} sign-up(s) waiting for a first contact{}",
        waiting.len(),
        if overdue {
            format!(
                ", all for over {} (followup.remind_after)",
                settings.followup.remind_after.in_file_units()
            )
        } else {
            String::new()
        }
    );
    Ok(text)
}

/// `followup mark ID STATE`: sets a sign-up's follow-up state, by `cli`, in a
/// transaction of its own with its audit row; says what changed, or that it already
/// had that state.
///
/// # Errors
/// [`DataCommandError`]: the database cannot be opened or read (or, for `mark`, written),
/// or the id or state given is not one.
pub fn followup_mark(
    settings: &Settings,
    id: &str,
    state: &str,
) -> Result<String, DataCommandError> {
    let to = FollowupState::parse_mark(state)?;
    let unknown = || DataCommandError::UnknownSignUp(id.escape_debug().to_string());
    let parsed = SubmissionId::parse(id).ok_or_else(unknown)?;
    let mut connection = open(settings)?;
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let marked = followup::mark(&transaction, parsed, to, audit::CLI_ACTOR, Timestamp::now())?;
    transaction.commit()?;
    match marked.ok_or_else(unknown)? {
        Marked::Changed { from, to } => Ok(format!("{parsed}: {from} -> {to}\n")),
        Marked::Unchanged(state) => Ok(format!("{parsed}: already {state}\n")),
    }
}

/// The windows `followup stats` reports on.
const STATS_WINDOWS: [(&str, u32); 2] = [("30d", 30), ("90d", 90)];

/// `followup stats`: per section and in total, over the sign-ups of the last 30 and 90
/// days, the median and 90th percentile time to first contact and the share contacted
/// within `followup.remind_after` (see [`crate::followup_stats`]), with the open and
/// overdue counts of now.
///
/// # Errors
/// [`DataCommandError`]: the database cannot be opened or read (or, for `mark`, written),
/// or the id or state given is not one.
pub fn followup_stats(settings: &Settings) -> Result<String, DataCommandError> {
    let routing = Routing::from_settings(settings)?;
    let connection = open(settings)?;
    let now = Timestamp::now();
    let remind_after = settings.followup.remind_after.get();
    let day = std::time::Duration::from_secs(86_400);
    let longest = STATS_WINDOWS
        .iter()
        .map(|&(_, days)| days)
        .max()
        .unwrap_or(0);
    let rows = followup::contact_times(&connection, now.minus(day * longest))?;
    let windows: Vec<_> = STATS_WINDOWS
        .iter()
        .map(|&(label, days)| {
            let figures = followup_stats::by_section(&rows, now, day * days, remind_after);
            (label, figures)
        })
        .collect();
    let mut open_now: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (section, _new_or_contacted, count) in followup::open_counts(&connection)? {
        open_now.entry(section).or_default().0 += count;
    }
    for waiting in followup::waiting_counts(&connection, now.minus(remind_after))? {
        open_now.entry(waiting.section).or_default().1 += waiting.count;
    }
    // Every configured section, then any other the rows name (one since renamed).
    let mut sections: Vec<String> = routing
        .sections_and_fallback()
        .map(|section| section.name.clone())
        .collect();
    let named = windows
        .iter()
        .flat_map(|(_, (each, _))| each.keys().map(|s| (*s).to_owned()))
        .chain(open_now.keys().cloned());
    for section in named {
        if !sections.contains(&section) {
            sections.push(section);
        }
    }

    let limit = settings.followup.remind_after.in_file_units();
    let in_time = format!("in {limit}");
    let mut text = format!(
        "Time from sign-up to first contact (median and 90th percentile, nearest rank) of\n\
         the sign-ups of each window that were contacted. \"{in_time}\": the share contacted\n\
         within followup.remind_after, of the sign-ups contacted or waiting longer than\n\
         that. Open: new or contacted now. Overdue: new for over {limit}.\n\n"
    );
    let _ = writeln!(
        text,
        "{:<20}  {:<6}  {:>8}  {:>9}  {:<7}  {:<7}  {:>7}  {:>5}  {:>7}",
        "section", "window", "sign-ups", "contacted", "median", "p90", in_time, "open", "overdue"
    );
    for section in &sections {
        for (index, (label, (each, _))) in windows.iter().enumerate() {
            let figures = each.get(section.as_str()).copied().unwrap_or_default();
            let open = (index == 0).then(|| open_now.get(section).copied().unwrap_or_default());
            stats_line(&mut text, section, index, label, &figures, open);
        }
    }
    let totals = open_now
        .values()
        .fold((0, 0), |(o, d), (open, overdue)| (o + open, d + overdue));
    for (index, (label, (_, total))) in windows.iter().enumerate() {
        stats_line(
            &mut text,
            "total",
            index,
            label,
            total,
            (index == 0).then_some(totals),
        );
    }
    Ok(text)
}

/// One line of `followup stats`: a section's (or the total's) figures over one window;
/// the section's name and its open and overdue counts on its first line only.
fn stats_line(
    text: &mut String,
    name: &str,
    index: usize,
    window: &str,
    figures: &WindowFigures,
    open: Option<(u64, u64)>,
) {
    let duration = |d: Option<std::time::Duration>| d.map_or_else(|| "-".to_owned(), human);
    let share = figures
        .percent_in_time()
        .map_or_else(|| "-".to_owned(), |p| format!("{p}%"));
    let (open, overdue) = open.map_or((String::new(), String::new()), |(o, d)| {
        (o.to_string(), d.to_string())
    });
    let line = format!(
        "{:<20}  {:<6}  {:>8}  {:>9}  {:<7}  {:<7}  {:>7}  {:>5}  {:>7}",
        if index == 0 { name } else { "" },
        window,
        figures.signed_up,
        figures.contacted,
        duration(figures.median),
        duration(figures.p90),
        share,
        open,
        overdue
    );
    text.push_str(line.trim_end());
    text.push('\n');
}

/// An error and each of its causes, "outer: inner: innermost", as every command prints
/// it: the operator sees the root cause, and each is said once as long as no message
/// repeats its own source.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The audit listing, one entry per line, tab-separated.
fn audit_listing(entries: &[AuditEntry]) -> String {
    let mut text = String::from("id\tat\tactor\taction\trows\tcompleted\tdetails\n");
    for entry in entries {
        let _ = writeln!(
            text,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
            entry.id,
            entry.at,
            entry.actor,
            entry.action.as_str(),
            entry.row_count.map_or("-".to_owned(), |n| n.to_string()),
            entry
                .completed_at
                .map_or_else(|| "INCOMPLETE".to_owned(), |at| at.to_string()),
            entry.details
        );
    }
    text
}

// ---- Review of held and spam sign-ups: list, release, discard. ----

/// How many sign-ups `review list` shows at most; it says how many more there are.
pub const REVIEW_LIST_LIMIT: u32 = 200;

/// The statuses `review list --status TEXT` names; without `--status`, both: an
/// operator looking after a flood should see every person waiting, and a person
/// wrongly flagged as spam is as lost as one held, so neither is hidden by default.
///
/// # Errors
/// [`DataCommandError::ReviewStatus`]: neither `held` nor `spam`.
pub fn review_statuses(status: Option<&str>) -> Result<Vec<ReviewStatus>, DataCommandError> {
    use strum::VariantArray as _;
    match status {
        None => Ok(ReviewStatus::VARIANTS.to_vec()),
        Some(text) => text.parse().map(|status| vec![status]).map_err(|_| {
            DataCommandError::ReviewStatus(
                text.chars()
                    .take(32)
                    .collect::<String>()
                    .escape_debug()
                    .to_string(),
            )
        }),
    }
}

/// How `review list` prints: at most `limit` rows ([`REVIEW_LIST_LIMIT`] unless told),
/// and with `ids_only`, the ids alone, one a line, for a pipe into `review release` or
/// `review discard`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReviewListing {
    pub limit: u32,
    pub ids_only: bool,
}

/// `review list [--status held|spam] [--section NAME] [--limit N] [--ids-only]`: the
/// stored held and spam sign-ups (those of `status` only, when given), newest first, at
/// most `how.limit`: id, time, section, country, first name, status and why, then how
/// many of each there are. No address, phone or message.
///
/// # Errors
/// [`DataCommandError`]: a status other than `held` or `spam`, or the database cannot
/// be opened or read.
pub fn review_list(
    settings: &Settings,
    status: Option<&str>,
    section: Option<&str>,
    how: &ReviewListing,
) -> Result<String, DataCommandError> {
    let statuses = review_statuses(status)?;
    let connection = open(settings)?;
    let sections = section.map(|name| vec![name.to_owned()]);
    let listing = review::flagged(&connection, &statuses, sections.as_deref(), how.limit)?;
    if how.ids_only {
        let mut ids = String::new();
        for entry in &listing.items {
            let _ = writeln!(ids, "{}", entry.id);
        }
        return Ok(ids);
    }
    let mut text = format!(
        "{:<36}  {:<27}  {:<20}  {:<7}  {:<16}  {:<6}  reasons\n",
        "id", "signed up", "section", "country", "first name", "status"
    );
    for entry in &listing.items {
        // A bot's name may be a link or control characters: shown short and escaped.
        let first_name: String = entry.first_name.chars().take(16).collect();
        let _ = writeln!(
            text,
            "{:<36}  {:<27}  {:<20}  {:<7}  {:<16}  {:<6}  {}",
            entry.id,
            entry.created_at,
            entry.section,
            entry.country.as_str(),
            first_name.escape_debug().to_string(),
            entry.status.as_str(),
            entry.reasons.join(",")
        );
    }
    let shown = u64::try_from(listing.items.len()).unwrap_or(u64::MAX);
    if listing.total() > shown {
        let _ = writeln!(text, "…and {} more", listing.total() - shown);
    }
    let totals: Vec<String> = statuses
        .iter()
        .map(|status| match status {
            ReviewStatus::Held => format!("{} held sign-up(s)", listing.held),
            ReviewStatus::Spam => format!("{} spam sign-up(s)", listing.spam),
        })
        .collect();
    let _ = writeln!(
        text,
        "{}; `joinform review release ID…` accepts one after all, \
         `joinform review discard ID…` erases it",
        totals.join(", ")
    );
    Ok(text)
}

/// What `review release` and `review discard` print, and whether every id given named
/// a stored held or spam sign-up that was released or discarded.
#[derive(Debug)]
pub struct ReviewReport {
    pub text: String,
    pub every_id_matched: bool,
}

/// `review release ID…`: each named held or spam sign-up becomes `accepted` and is
/// notified as usual, or a `duplicate` when the section heard of its address within
/// `spam.duplicate_window`, or of a double opt-in section `unconfirmed` and mailed its
/// confirmation link (see [`review::release`]), in one transaction with its `release`
/// audit entry, by `cli`. Each id that is not a stored held or spam sign-up is named
/// and left alone.
///
/// # Errors
/// [`DataCommandError`]: the configuration's sender, the server secret (read only when
/// a section asks to confirm), or the database cannot be opened, read or written; then
/// nothing changed.
pub fn review_release(
    settings: &Settings,
    ids: &[String],
) -> Result<ReviewReport, DataCommandError> {
    let sender = mail::sender(&settings.mail)?;
    let mut connection = open(settings)?;
    let valid = parse_ids(ids);
    let routing = Routing::from_settings(settings)?;
    // A double opt-in section's visitors are mailed a confirmation link, their one mail a
    // day claimed under the keyed hash of their address: the secret is read only then.
    // A sealed sign-up's confirmation mail can only be built by the request that
    // stored it (the server cannot read the address since): none goes out here.
    let addresses = if routing.any_confirms() && !routing.is_sealed() {
        Some(AddressHasher::from_secret(&ServerSecret::load(
            settings.spam.expose_secret(),
            &settings.storage.database,
        )?))
    } else {
        None
    };
    let address_hash = addresses
        .as_ref()
        .map(|hasher| move |key: &str| hasher.hash(key));
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let reviewed = review::release(
        &transaction,
        &valid,
        &review::Release {
            now: Timestamp::now(),
            duplicate_window: settings.spam.duplicate_window.get(),
            message_domain: sender.email.domain(),
            confirms: &|section| routing.confirms(section),
            confirming: address_hash
                .as_ref()
                .map(|hash| review::Confirming { address_hash: hash }),
        },
        &review::Reviewer {
            actor: audit::CLI_ACTOR,
            may_see: &|_| true,
        },
    )?;
    transaction.commit()?;
    let mut report = ReviewReport {
        text: format!(
            "{} sign-up(s) released: accepted, their notifications queued (a running \
             server sends them within a minute, or, past \
             mail.max_notifications_per_section_per_hour, in the section's next overflow \
             mail, or for sealed sign-ups once the hour has room)\n",
            reviewed.with(review::Outcome::Released).len()
        ),
        every_id_matched: true,
    };
    for id in reviewed.with(review::Outcome::Duplicate) {
        let _ = writeln!(
            report.text,
            "made a duplicate, not notified: {id} (its section heard of this address \
             within spam.duplicate_window)"
        );
    }
    name_unmatched(&mut report, ids, &reviewed);
    for id in reviewed.with(review::Outcome::ConfirmationSent) {
        let _ = writeln!(
            report.text,
            "of a double opt-in section, mailed a confirmation link: {id} (its section \
             hears of the person once they confirm)"
        );
    }
    for id in reviewed.with(review::Outcome::NeedsConfirmation) {
        report.every_id_matched = false;
        if routing.is_sealed() {
            let _ = writeln!(
                report.text,
                "of a double opt-in section, left as it is: {id} (its section hears of a \
                 person only once they confirm, and storage is sealed: the server cannot \
                 read the address to mail a confirmation link; the person can sign up \
                 again)"
            );
            continue;
        }
        let _ = writeln!(
            report.text,
            "of a double opt-in section, left as it is: {id} (its section hears of a person \
             only once they confirm, and no confirmation link can go now: its address had \
             a mail in the last day; release it again tomorrow, or the person can sign up \
             again)"
        );
    }
    Ok(report)
}

/// `review discard ID…`: erases each named held or spam sign-up through the erasure
/// routine (freed pages returned, WAL emptied), with its `discard` audit entry, by
/// `cli`. Each id that is not a stored held or spam sign-up is named and left alone.
///
/// # Errors
/// [`DataCommandError`]: the database cannot be opened, read or written; then nothing
/// was erased.
pub fn review_discard(
    settings: &Settings,
    ids: &[String],
) -> Result<ReviewReport, DataCommandError> {
    let mut connection = open(settings)?;
    let valid = parse_ids(ids);
    let reviewed = store::erase(&mut connection, |erasing| {
        review::discard(
            erasing,
            &valid,
            &review::Reviewer {
                actor: audit::CLI_ACTOR,
                may_see: &|_| true,
            },
        )
    })?;
    let mut report = ReviewReport {
        text: format!(
            "{} sign-up(s) erased\n",
            reviewed.with(review::Outcome::Discarded).len()
        ),
        every_id_matched: true,
    };
    name_unmatched(&mut report, ids, &reviewed);
    Ok(report)
}

/// The ids among `texts`; text that is no id names no row, and is reported as such.
fn parse_ids(texts: &[String]) -> Vec<SubmissionId> {
    texts
        .iter()
        .filter_map(|text| SubmissionId::parse(text))
        .collect()
}

/// Names each of `texts` that is no id, or an id that is no held or spam sign-up.
fn name_unmatched(report: &mut ReviewReport, texts: &[String], reviewed: &review::Reviewed) {
    for text in texts {
        let matched = SubmissionId::parse(text).is_some_and(|id| {
            reviewed
                .outcome_of(id)
                .is_some_and(|outcome| outcome != review::Outcome::NotFound)
        });
        if !matched {
            report.every_id_matched = false;
            let _ = writeln!(
                report.text,
                "not a stored held or spam sign-up, left as it is: {}",
                text.escape_debug()
            );
        }
    }
}

#[cfg(test)]
mod replay_command_tests {
    use super::*;

    #[test]
    fn a_printed_replay_command_names_the_configuration_and_quotes_what_needs_it() {
        assert_eq!(
            replay_command("2026-11-30T12:00:00Z", "/data/joinform.db.replaced-x", None),
            "joinform forget --replay 2026-11-30T12:00:00Z --from /data/joinform.db.replaced-x"
        );
        assert_eq!(
            replay_command(
                "2026-11-30T12:00:00Z",
                "/my data/it's.db",
                Some(std::path::Path::new("/etc/join form.toml"))
            ),
            "joinform forget --replay 2026-11-30T12:00:00Z --from '/my data/it'\\''s.db' \
             --config '/etc/join form.toml'"
        );
    }
}
