//! The `joinform` command: a thin layer over the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use joinform::config::{ConfigSource, Provenance, Settings};
use joinform::export::{
    Bound, ExportFilter, ExportFormat, StatusFilter, parse_country, parse_followup, parse_time,
};
use joinform::startup::Application;

#[derive(Parser)]
#[command(version, about = "Backend for an organisation's \"Join us\" form")]
struct Cli {
    /// Configuration file [default: config/joinform.toml, or built-in defaults when it
    /// does not exist].
    #[arg(long, global = true, env = "JOINFORM_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the form backend (the default).
    Serve,
    /// Load and check the configuration, print a summary, and exit.
    CheckConfig,
    /// Ask the running server's /healthz (for container health checks).
    Healthcheck,
    /// Show the outbox (notifications, follow-up mails, mails to visitors): counts by state and the
    /// failed rows.
    Outbox {
        #[command(subcommand)]
        action: Option<OutboxAction>,
    },
    /// Export contacts (CSV to standard output by default). Every export is audited.
    Export(ExportArgs),
    /// Erase every submission of an address, and its unsent notifications. Or, with
    /// --replay, re-apply the erasures made since a backup was taken (after restoring
    /// it).
    Forget {
        /// The address; `-` reads it from standard input (keeps it out of shell history).
        #[arg(required_unless_present = "replay", conflicts_with = "replay")]
        email: Option<String>,
        /// Re-apply the erasures (and discards of held or spam sign-ups) recorded at or
        /// after this date (UTC) or RFC 3339 time in --from, by their keyed hashes:
        /// the time `joinform restore` printed. Safe to run again. After a restore,
        /// run it before starting the server.
        #[arg(long, value_name = "SINCE", requires = "from",
              value_parser = |t: &str| parse_time(t, Bound::Since))]
        replay: Option<joinform::domain::Timestamp>,
        /// Where the erasures are recorded: a joinform database (the one a restore
        /// replaced, a newer backup; opened read-only) or a `joinform audit --json` file.
        #[arg(long, value_name = "SOURCE", requires = "replay")]
        from: Option<PathBuf>,
    },
    /// Write a consistent copy of the live database to FILE while the server keeps
    /// accepting; check it and print what it holds. Audited as `backup`.
    Backup {
        /// The file to write (created readable by its owner only).
        file: PathBuf,
        /// Encrypt the copy to this OpenPGP public key (repeatable): the file is one
        /// OpenPGP message and no clear copy is written anywhere.
        #[arg(long = "encrypt-to", value_name = "KEY.asc")]
        encrypt_to: Vec<PathBuf>,
        /// Overwrite FILE if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Put a backup in place of the database: checked first (a joinform database,
    /// integrity_check ok, schema no newer than this binary). Stop the server (and
    /// Litestream) first: it refuses while the database is in use. Audited as
    /// `restore`.
    #[command(
        mut_arg("decrypt_key", |arg| arg.help(
            "Open an encrypted backup with this OpenPGP secret key (its passphrase is \
             asked for on the terminal unless --passphrase-env or --passphrase-fd says)"
        )),
        mut_arg("passphrase_fd", |arg| arg.help(
            "Read the passphrase of --decrypt-key from the first line of this open file \
             descriptor"
        ))
    )]
    Restore {
        /// The backup: a database file, or an encrypted backup with --decrypt-key.
        file: PathBuf,
        /// Replace an existing database; it is kept as `<database>.replaced-<time>`,
        /// the source for `forget --replay`.
        #[arg(long)]
        replace: bool,
        #[command(flatten)]
        decrypt: DecryptArgs,
    },
    /// Delete what is past the [retention] windows now (serve does it daily).
    Purge,
    /// Seal the sign-ups stored in clear, in place, to storage.seal_keys and each
    /// section's pgp_keys; then rewrite the file and empty its write-ahead log, so no
    /// clear text is left. Stop the server first (it refuses while the database is in
    /// use); safe to run again. Audited as `seal`.
    Seal,
    /// List the audit trail: exports, erasures, purges, follow-up marks, backups.
    Audit {
        /// How many of the newest entries to show (without --since).
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Every entry at or after this date (UTC) or RFC 3339 time, however many.
        #[arg(long, value_name = "DATE|DATETIME",
              value_parser = |t: &str| parse_time(t, Bound::Since))]
        since: Option<joinform::domain::Timestamp>,
        /// Only entries of this action (forget, discard, export, backup…); with --since.
        #[arg(long, value_name = "ACTION", requires = "since",
              value_parser = |t: &str| t.parse::<joinform::store::audit::Action>()
                  .map_err(|_| format!("no audit action `{t}`")))]
        action: Option<joinform::store::audit::Action>,
        /// One JSON object a line (id, at, actor, action, details, row_count,
        /// completed_at); with --since. Erasures hold only keyed hashes: keep this
        /// off-site for `forget --replay`.
        #[arg(long, requires = "since")]
        json: bool,
    },
    /// Follow-up of accepted sign-ups: who is waiting, marking, how quickly.
    Followup {
        #[command(subcommand)]
        action: FollowupAction,
    },
    /// Review the sign-ups nobody was told of, those held during a flood and those the
    /// spam checks flagged: list them, release (accept) or discard (erase) them.
    Review {
        #[command(subcommand)]
        action: ReviewAction,
    },
    /// Admin tokens for the admin listener.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
}

#[derive(clap::Args)]
struct ExportArgs {
    /// csv, json or ndjson.
    #[arg(long, default_value = "csv")]
    format: ExportFormat,
    /// Only this section's contacts.
    #[arg(long, value_name = "NAME")]
    section: Option<String>,
    /// Only this country (ISO 3166-1 alpha-2).
    #[arg(long, value_name = "CC", value_parser = parse_country)]
    country: Option<joinform::domain::CountryCode>,
    /// accepted, duplicate, spam, unconfirmed, held or all (every one but unconfirmed).
    #[arg(long, default_value = "accepted")]
    status: StatusFilter,
    /// Signed up from this date (UTC) or RFC 3339 time on.
    #[arg(long, value_name = "DATE|DATETIME", value_parser = |t: &str| parse_time(t, Bound::Since))]
    since: Option<joinform::domain::Timestamp>,
    /// Signed up before this time; a date includes that whole day (UTC).
    #[arg(long, value_name = "DATE|DATETIME", value_parser = |t: &str| parse_time(t, Bound::Until))]
    until: Option<joinform::domain::Timestamp>,
    /// Only what is new since this consumer's previous export; moves its checkpoint
    /// when the export completes. Sign-ups of the last minute wait for the next run.
    #[arg(long, value_name = "NAME")]
    since_last: Option<String>,
    /// Only accepted sign-ups in this follow-up state: new, contacted, joined, declined
    /// or unreachable.
    #[arg(long, value_name = "STATE", value_parser = parse_followup)]
    followup: Option<joinform::domain::FollowupState>,
    /// Only overdue sign-ups: still `new`, signed up more than followup.remind_after ago.
    #[arg(long)]
    overdue: bool,
    /// CSV: start with a byte-order mark so spreadsheet programs read UTF-8.
    #[arg(long)]
    excel: bool,
    /// Write to this file (created readable by its owner only) instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    decrypt: DecryptArgs,
}

/// `--decrypt-key` and where its passphrase comes from, for `export` and `restore`
/// (whose help says what it decrypts there).
#[derive(clap::Args)]
struct DecryptArgs {
    /// Sealed storage: decrypt the sealed sign-ups with this OpenPGP secret key (on
    /// your own machine; `gpg --armor --export-secret-keys`) into the normal columns.
    /// Its passphrase is asked for on the terminal, unless --passphrase-env or
    /// --passphrase-fd names where to read it. Without it, a sealed sign-up's
    /// personal columns are empty and the `sealed` column holds its ciphertext.
    #[arg(long, value_name = "FILE")]
    decrypt_key: Option<PathBuf>,
    /// Read the passphrase of --decrypt-key from this environment variable.
    #[arg(
        long,
        value_name = "VAR",
        requires = "decrypt_key",
        conflicts_with = "passphrase_fd"
    )]
    passphrase_env: Option<String>,
    /// Read the passphrase of --decrypt-key from the first line of this open file
    /// descriptor (e.g. `--passphrase-fd 3 3<passphrase-file`).
    #[arg(long, value_name = "N", requires = "decrypt_key")]
    passphrase_fd: Option<u32>,
}

impl DecryptArgs {
    fn decryption(self) -> Option<joinform::cli::Decryption> {
        let passphrase = passphrase_source(self.passphrase_env, self.passphrase_fd);
        self.decrypt_key.map(|key_file| joinform::cli::Decryption {
            key_file,
            passphrase,
        })
    }
}

#[derive(Subcommand)]
enum TokenAction {
    /// Print a fresh random token once, and the configuration lines with its hash.
    New {
        /// Shown in the audit trail as the actor.
        name: String,
        /// Limit the token to a section's contacts (repeatable).
        #[arg(long = "section", value_name = "NAME")]
        sections: Vec<String>,
    },
    /// Print a fresh random token that may read /metrics and nothing else (for
    /// Prometheus), once, and the configuration line with its hash.
    Metrics,
}

#[derive(Subcommand)]
enum FollowupAction {
    /// The sign-ups nobody has contacted yet, oldest first (no contact details).
    List {
        /// Only this section's sign-ups.
        #[arg(long, value_name = "NAME")]
        section: Option<String>,
        /// Only those waiting longer than followup.remind_after.
        #[arg(long)]
        overdue: bool,
    },
    /// Mark a sign-up: contacted, joined, declined or unreachable (audited, by `cli`).
    Mark {
        /// The submission id, as `followup list` or an export shows it.
        id: String,
        /// contacted, joined, declined or unreachable.
        state: String,
    },
    /// Time to first contact (median, 90th percentile) over the last 30 and 90 days,
    /// the share contacted within followup.remind_after, open and overdue counts.
    Stats,
}

#[derive(Subcommand)]
enum ReviewAction {
    /// The stored held and spam sign-ups, newest first (at most 200, or --limit): id,
    /// time, section, country, first name, status and why; no contact details. Then
    /// how many of each there are.
    List {
        /// Only `held` (held during a flood) or only `spam` (flagged by the spam
        /// checks); both when not given.
        #[arg(long, value_name = "held|spam")]
        status: Option<String>,
        /// Only this section's sign-ups.
        #[arg(long, value_name = "NAME")]
        section: Option<String>,
        /// How many to list at most (1..=100000).
        #[arg(long, value_name = "N", default_value_t = joinform::cli::REVIEW_LIST_LIMIT,
              value_parser = clap::value_parser!(u32).range(1..=100_000))]
        limit: u32,
        /// Print only the ids, one a line, nothing else: for
        /// `joinform review list --status held --ids-only | xargs joinform review discard`.
        #[arg(long)]
        ids_only: bool,
    },
    /// Accept held or spam sign-ups after all: each becomes `accepted`, its follow-up
    /// `new` from now, its notification queued as usual; one whose address its section
    /// heard of within spam.duplicate_window becomes a `duplicate`, not notified again;
    /// one of a double opt-in section is mailed its confirmation link (audited as
    /// `release`, by `cli`). Exits with 1 when an id is not a stored held or spam
    /// sign-up, or a confirmation link cannot go now (left as it is).
    Release {
        /// Submission ids, as `review list` shows them.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Erase held or spam sign-ups for good, as an erasure does (audited as `discard`,
    /// by `cli`). Exits with 1 when an id is not a stored held or spam sign-up (left as
    /// it is).
    Discard {
        /// Submission ids, as `review list` shows them.
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

#[derive(Subcommand)]
enum OutboxAction {
    /// Put failed rows back to pending (all failed rows when no id is given).
    Retry {
        /// Outbox ids, as `joinform outbox` lists them (a notification's is its
        /// submission's).
        ids: Vec<String>,
    },
}

fn main() -> ExitCode {
    owner_only_files();
    let cli = Cli::parse();
    let source = match cli.config {
        Some(path) => ConfigSource::File(path),
        None => ConfigSource::DefaultPath,
    };
    let (settings, provenance) = match Settings::load_with_provenance(&source) {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("joinform: configuration error: {error}");
            return ExitCode::FAILURE;
        }
    };
    // Named by --config or JOINFORM_CONFIG: printed commands name it too.
    let given_config = match &source {
        ConfigSource::File(path) => Some(path.as_path()),
        ConfigSource::DefaultPath => None,
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::CheckConfig => {
            match joinform::cli::check_config(&settings, &source, &provenance) {
                Ok(report) => {
                    print!("{report}");
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("joinform: configuration error: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Outbox { action } => {
            let ids = action.map(|OutboxAction::Retry { ids }| ids);
            match joinform::cli::outbox(&settings, ids.as_deref()) {
                Ok(report) => {
                    print!("{}", report.text);
                    if report.every_id_matched {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(error) => {
                    eprintln!("joinform: {}", joinform::cli::error_chain(&error));
                    ExitCode::FAILURE
                }
            }
        }
        Command::Export(args) => {
            note_unknown_section(&settings, args.section.as_deref());
            let command = joinform::cli::ExportCommand {
                filter: ExportFilter {
                    sections: args.section.map(|section| vec![section]),
                    country: args.country,
                    status: args.status,
                    since: args.since,
                    until: args.until,
                    after_id: None,
                    before_id: None,
                    followup: args.followup,
                    overdue_before: args.overdue.then(|| {
                        joinform::domain::Timestamp::now()
                            .minus(settings.followup.remind_after.get())
                    }),
                },
                format: args.format,
                excel: args.excel,
                since_last: args.since_last,
                output: args.output,
                decrypt: args.decrypt.decryption(),
            };
            match joinform::cli::export(&settings, command) {
                // Standard output carries the data; the count goes to stderr.
                Ok(summary) => {
                    eprintln!("joinform: exported {} row(s)", summary.rows);
                    ExitCode::SUCCESS
                }
                Err(error) => report_failure(&error),
            }
        }
        Command::Forget {
            email,
            replay,
            from,
        } => print_report(match (replay, from) {
            (Some(since), Some(from)) => joinform::cli::forget_replay(&settings, since, &from),
            _ => joinform::cli::forget(&settings, email.as_deref().unwrap_or_default()),
        }),
        Command::Backup {
            file,
            encrypt_to,
            force,
        } => print_report(joinform::cli::backup(
            &settings,
            given_config,
            &joinform::backup::BackupRequest {
                output: file,
                encrypt_to,
                force,
            },
        )),
        Command::Restore {
            file,
            replace,
            decrypt,
        } => {
            let decryption = decrypt.decryption();
            print_report(joinform::cli::restore(
                &settings,
                given_config,
                file,
                decryption.as_ref(),
                replace,
            ))
        }
        Command::Purge => print_report(joinform::cli::purge(&settings)),
        Command::Seal => print_report(
            joinform::cli::seal(&settings).map(|report| joinform::cli::seal_summary(&report)),
        ),
        Command::Audit {
            limit,
            since,
            action,
            json,
        } => print_report(match since {
            Some(since) => joinform::cli::audit_since(&settings, since, action, json),
            None => joinform::cli::audit(&settings, limit),
        }),
        Command::Followup { action } => print_report(match action {
            FollowupAction::List { section, overdue } => {
                note_unknown_section(&settings, section.as_deref());
                joinform::cli::followup_list(&settings, section.as_deref(), overdue)
            }
            FollowupAction::Mark { id, state } => {
                joinform::cli::followup_mark(&settings, &id, &state)
            }
            FollowupAction::Stats => joinform::cli::followup_stats(&settings),
        }),
        Command::Review { action } => match action {
            ReviewAction::List {
                status,
                section,
                limit,
                ids_only,
            } => {
                note_unknown_section(&settings, section.as_deref());
                print_report(joinform::cli::review_list(
                    &settings,
                    status.as_deref(),
                    section.as_deref(),
                    &joinform::cli::ReviewListing { limit, ids_only },
                ))
            }
            ReviewAction::Release { ids } => {
                print_review(joinform::cli::review_release(&settings, &ids))
            }
            ReviewAction::Discard { ids } => {
                print_review(joinform::cli::review_discard(&settings, &ids))
            }
        },
        Command::Token {
            action: TokenAction::New { name, sections },
        } => print_report(joinform::cli::new_token(&settings, &name, &sections)),
        Command::Token {
            action: TokenAction::Metrics,
        } => print_report(joinform::cli::new_metrics_token()),
        Command::Serve => serve(&settings, &provenance),
        Command::Healthcheck => match joinform::probe::check_health(settings.server.listen) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!(
                    "joinform: unhealthy: {}",
                    joinform::cli::error_chain(&error)
                );
                ExitCode::FAILURE
            }
        },
    }
}

/// Makes every file and folder this process creates readable by its owner only.
///
/// What joinform stores is personal data of people who may be at risk for joining, yet
/// under the usual umask (022) a new file is readable by every account on the machine.
/// Setting the mask first, before anything is opened, covers every file of every
/// command, including the ones other code creates for us: SQLite's `-wal`, `-shm` and
/// `-journal`, and lettre's `.eml` messages. (SQLite gives its side files the mode of
/// the database file, so the database's 0600 carries over to them.) The mask only ever
/// takes permissions away, so files created with an explicit 0600 stay so.
fn owner_only_files() {
    #[cfg(unix)]
    {
        use rustix::fs::Mode;
        rustix::process::umask(Mode::RWXG | Mode::RWXO);
    }
}

fn serve(settings: &Settings, provenance: &Provenance) -> ExitCode {
    let log = joinform::telemetry::init(&settings.log);
    for warning in settings.deprecation_warnings() {
        tracing::warn!("configuration: {warning}");
    }
    // Names and variables only: a value may be a secret. A warning only when a value
    // the operator wrote in the file lost: the image's own variables replace the
    // shipped file's addresses on every start, by design.
    if let Some(line) = provenance.environment_line() {
        if provenance.environment_overrides_edited_file() {
            tracing::warn!("{line}");
        } else {
            tracing::info!("{line}");
        }
    }
    // A restore or backup killed beside the database leaves a copy of everyone
    // (possibly decrypted) that nothing else would ever remove. File names only.
    // Restore works beside the file a symbolic link points to: look there too.
    let configured = &settings.storage.database;
    let mut folders: Vec<std::path::PathBuf> = vec![
        configured
            .parent()
            .unwrap_or(std::path::Path::new(""))
            .to_owned(),
    ];
    if let Some(real) = std::fs::canonicalize(configured)
        .ok()
        .and_then(|real| real.parent().map(std::path::Path::to_owned))
        && std::fs::canonicalize(&folders[0]).ok().as_ref() != Some(&real)
    {
        folders.push(real);
    }
    let stale = folders
        .iter()
        .flat_map(|folder| joinform::owner_only::remove_stale_partials(folder));
    for removed in stale {
        let file = removed
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        tracing::warn!(
            file,
            "removed a temporary copy left beside the database by an interrupted \
             backup or restore"
        );
    }
    let result = actix_web::rt::System::new().block_on(async {
        let stop = joinform::startup::stop_signal()?;
        let application = Application::build(settings)?;
        application.run_until(stop).await?;
        Ok::<(), Box<dyn std::error::Error>>(())
    });
    // Writes out the queued log lines before the last word below.
    drop(log);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("joinform: {}", joinform::cli::error_chain(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}

fn print_report<E: std::error::Error>(result: Result<String, E>) -> ExitCode {
    match result {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(error) => report_failure(&error),
    }
}

/// Prints what a release or discard did; exits with 1 when an id was left alone.
fn print_review(
    result: Result<joinform::cli::ReviewReport, joinform::cli::DataCommandError>,
) -> ExitCode {
    match result {
        Ok(report) => {
            print!("{}", report.text);
            if report.every_id_matched {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => report_failure(&error),
    }
}

fn report_failure(error: &dyn std::error::Error) -> ExitCode {
    eprintln!("joinform: {}", joinform::cli::error_chain(error));
    ExitCode::FAILURE
}

/// Where `--decrypt-key`'s passphrase comes from: `--passphrase-env`, `--passphrase-fd`,
/// else the terminal.
fn passphrase_source(env: Option<String>, fd: Option<u32>) -> joinform::cli::PassphraseSource {
    match (env, fd) {
        (Some(name), _) => joinform::cli::PassphraseSource::Env(name),
        (None, Some(fd)) => joinform::cli::PassphraseSource::Fd(fd),
        (None, None) => joinform::cli::PassphraseSource::Prompt,
    }
}

/// Tells on standard error when `--section` names no configured section.
fn note_unknown_section(settings: &Settings, section: Option<&str>) {
    if let Some(note) = section.and_then(|name| joinform::cli::unknown_section_note(settings, name))
    {
        eprintln!("{note}");
    }
}
