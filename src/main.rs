//! The `joinform` command: a thin layer over the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use joinform::config::{ConfigSource, Settings};
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
    /// Show the notification outbox: counts by state and the failed rows.
    Outbox {
        #[command(subcommand)]
        action: Option<OutboxAction>,
    },
}

#[derive(Subcommand)]
enum OutboxAction {
    /// Put failed rows back to pending (all failed rows when no id is given).
    Retry {
        /// Submission ids, as `joinform outbox` lists them.
        ids: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let source = match cli.config {
        Some(path) => ConfigSource::File(path),
        None => ConfigSource::DefaultPath,
    };
    let settings = match Settings::load(&source) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("joinform: configuration error: {error}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::CheckConfig => match joinform::cli::check_config(&settings, &source) {
            Ok(report) => {
                print!("{report}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("joinform: configuration error: {error}");
                ExitCode::FAILURE
            }
        },
        Command::Outbox { action } => {
            let ids = action.map(|OutboxAction::Retry { ids }| ids);
            match joinform::cli::outbox(&settings, ids.as_deref()) {
                Ok(report) => {
                    print!("{report}");
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("joinform: {}", error_chain(&error));
                    ExitCode::FAILURE
                }
            }
        }
        Command::Serve => serve(&settings),
        Command::Healthcheck => match joinform::probe::check_health(settings.server.listen) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("joinform: unhealthy: {}", error_chain(&error));
                ExitCode::FAILURE
            }
        },
    }
}

fn serve(settings: &Settings) -> ExitCode {
    let log = joinform::telemetry::init();
    let result = actix_web::rt::System::new().block_on(async {
        let application = Application::build(settings)?;
        application.run_until_stopped().await?;
        Ok::<(), Box<dyn std::error::Error>>(())
    });
    // Writes out the queued log lines before the last word below.
    drop(log);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("joinform: {}", error_chain(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// "outer: inner: innermost", so the operator sees the root cause.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
