//! Typed settings: defaults in code, then the TOML file, then `JOINFORM_*` environment
//! variables. Every key is documented once, in `config/joinform.toml`.
//!
//! One file per table of the file, each with its type, defaults and checks, and one
//! for each kind of value several tables hold (`duration`, `secret_setting`), and one
//! for the old keys still read (`deprecated`); here,
//! the whole ([`Settings`]), how it is loaded and the one [`Settings::check`] that
//! asks each table in turn.

mod admin;
mod deprecated;
mod duration;
mod followup;
mod form;
mod log;
mod mail;
mod provenance;
mod rate_limit;
mod retention;
mod secret_setting;
mod sections;
mod server;
mod spam;
mod storage;

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Data, Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::domain::ConfirmationMode;

pub use admin::{AdminSettings, AdminTokenSettings};
pub use duration::HumanDuration;
pub use followup::{DigestSchedule, FollowupSettings};
pub use form::{EXPORT_ONLY_COLUMNS, ExtraFieldSettings, FormSettings};
pub use log::{LogFormat, LogSettings};
pub use mail::{MailSettings, SmtpSettings, SmtpTls, TransportKind};
pub use provenance::{Origin, Provenance, SettingOrigin};
pub use rate_limit::RateLimitSettings;
pub use retention::RetentionSettings;
pub use secret_setting::SecretSetting;
pub use sections::{FallbackSettings, SectionSettings};
pub use server::{ForwardingHeader, ServerSettings, parse_proxy};
pub use spam::SpamSettings;
pub use storage::StorageSettings;

/// The file `serve` and `check-config` read when no `--config` is given.
pub const DEFAULT_CONFIG_PATH: &str = "config/joinform.toml";

/// The shipped `config/joinform.toml`, built into the binary: used when the default file
/// is not there (an installed binary run from another folder).
pub const EMBEDDED_CONFIG: &str = include_str!("../../config/joinform.toml");

/// Environment variables with this prefix override keys: `JOINFORM_SERVER__LISTEN`
/// overrides `server.listen` (tables and keys are separated by a double underscore).
const ENV_PREFIX: &str = "JOINFORM_";

/// Every setting, one field per table of the file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// `[server]`: the public listener.
    pub server: ServerSettings,
    /// `[storage]`: the database.
    pub storage: StorageSettings,
    /// `[form]`: the fields and the built-in page.
    pub form: FormSettings,
    /// `[mail]`: how notifications leave.
    pub mail: MailSettings,
    /// `[spam]`: the spam checks.
    pub spam: SpamSettings,
    /// `[rate_limit]`: how often clients may post.
    pub rate_limit: RateLimitSettings,
    /// `[log]`: how joinform logs.
    pub log: LogSettings,
    /// `[admin]`: the admin listener and its tokens.
    pub admin: AdminSettings,
    /// `[retention]`: how long data is kept.
    pub retention: RetentionSettings,
    /// `[followup]`: reminders, escalation and digests of sign-ups nobody followed up.
    pub followup: FollowupSettings,
    /// National sections: who is told of a sign-up from which countries.
    pub sections: Vec<SectionSettings>,
    /// Who is told of sign-ups from countries no section covers. Required.
    pub fallback: Option<FallbackSettings>,
}

/// A configuration that cannot be used. Each message is complete and has no
/// `source()`, so it reads the same printed alone or with its chain: said once.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file named could not be opened.
    #[error("cannot read configuration file {path}: {problem}")]
    Unreadable {
        /// The file, as named.
        path: PathBuf,
        /// Why it could not be opened.
        problem: std::io::Error,
    },
    /// The file or the environment does not fit the settings' shape: bad TOML, an
    /// unknown key, a wrong type.
    #[error("{0}")]
    Invalid(String),
    /// The value at `key` (`mail.smtp.port`, `admin.tokens[0].name`) is unusable.
    #[error("{key}: {problem}")]
    BadValue {
        /// Where the value is, as the file writes it.
        key: String,
        /// What is wrong with it, in an operator's words.
        problem: String,
    },
}

/// Checks that `value`, written at `key`, lies in `range`.
///
/// # Errors
/// `key: must be between START and END` when it does not.
fn within<T: PartialOrd + std::fmt::Display>(
    key: impl Into<String>,
    value: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<(), ConfigError> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::bad(
            key,
            format!("must be between {} and {}", range.start(), range.end()),
        ))
    }
}

impl ConfigError {
    /// The value at `key` is unusable, for the reason `problem` gives in an operator's
    /// words (`must be between 1 and 300`).
    pub fn bad(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::BadValue {
            key: key.into(),
            problem: problem.into(),
        }
    }
}

/// Where the settings come from.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    /// A file the operator named: it must exist.
    File(PathBuf),
    /// The default path: used if present, otherwise the defaults built into the binary.
    DefaultPath,
}

impl ConfigSource {
    /// The file to read, if any.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Self::File(path) => Some(path),
            Self::DefaultPath => Some(Path::new(DEFAULT_CONFIG_PATH)).filter(|path| path.exists()),
        }
    }
}

impl Settings {
    /// Loads the settings from `source` and the environment, then checks them.
    ///
    /// # Errors
    /// [`ConfigError::Unreadable`] for a file that cannot be read; otherwise the first
    /// problem found, naming where the bad value came from (the file or a `JOINFORM_*`
    /// variable).
    pub fn load(source: &ConfigSource) -> Result<Self, ConfigError> {
        Self::load_with_provenance(source).map(|(settings, _)| settings)
    }

    /// As [`Settings::load`], with where each value the file or the environment set
    /// came from.
    ///
    /// # Errors
    /// As [`Settings::load`].
    pub fn load_with_provenance(source: &ConfigSource) -> Result<(Self, Provenance), ConfigError> {
        let Some(path) = source.file() else {
            return Self::extract(Some(Toml::string(EMBEDDED_CONFIG)), None, true);
        };
        // Said plainly up front: figment's own word for a missing file is vaguer.
        std::fs::File::open(path).map_err(|problem| ConfigError::Unreadable {
            path: path.to_owned(),
            problem,
        })?;
        // Read by figment itself, so its errors name the file, and a bad environment
        // variable is not blamed on the file.
        let (mut settings, provenance) =
            Self::extract(Some(Toml::file_exact(path)), Some(path), true)?;
        if let Some(folder) = path.parent() {
            settings.resolve_key_paths(folder);
        }
        Ok((settings, provenance))
    }

    /// Makes every relative OpenPGP key path (`pgp_keys`, `storage.seal_keys`)
    /// relative to `folder`, the configuration file's, as the file's comments promise.
    /// Without a file (the built-in copy), they stay relative to the working folder.
    pub fn resolve_key_paths(&mut self, folder: &Path) {
        let resolve = |paths: &mut Vec<PathBuf>| {
            for path in paths.iter_mut() {
                if path.is_relative() {
                    *path = folder.join(&*path);
                }
            }
        };
        for section in &mut self.sections {
            resolve(&mut section.pgp_keys);
        }
        if let Some(fallback) = &mut self.fallback {
            resolve(&mut fallback.pgp_keys);
        }
        resolve(&mut self.storage.seal_keys);
    }

    /// What `check-config` prints: where the settings came from and what they say.
    pub fn summary(&self, source: &ConfigSource) -> String {
        let origin = match source.file() {
            Some(path) => path.display().to_string(),
            None => "the built-in copy of config/joinform.toml".to_owned(),
        };
        let extra: Vec<String> = self
            .form
            .extra_fields
            .iter()
            .map(|f| {
                let required = if f.required { ", required" } else { "" };
                format!("{} (max {}{required})", f.name, f.max_length)
            })
            .collect();
        format!(
            "configuration OK: {origin}\n\
             listen:           {}\n\
             max body:         {} bytes\n\
             database:         {} (size limit: {})\n\
             success url:      {}\n\
             consent required: {}\n\
             extra fields:     {}\n\
             mail transport:   {}\n\
             spam checks:      honeypot `{}`, token {}, threshold {}, spam {}\n\
             rate limits:      {}/min per client (burst {}), {}/s overall, {} per address a day\n\
             flood defence:    over {} sign-ups/min or {}/s, unproved sign-ups are held; \
             proof of work {}..{}; {} notifications/h per section, then one overflow mail\n\
             trusted proxies:  {} (reading {})\n\
             {}{}",
            self.server.listen,
            self.server.max_body_bytes,
            self.storage.database.display(),
            match self.storage.max_size_mib {
                0 => "none".to_owned(),
                mib => format!("{mib} MiB"),
            },
            self.form.success_url,
            self.form.consent_required,
            if extra.is_empty() {
                "none".to_owned()
            } else {
                extra.join(", ")
            },
            match self.mail.transport {
                TransportKind::File => format!("files in {}", self.mail.file_dir.display()),
                TransportKind::Smtp => format!(
                    "smtp {}:{} (tls: {:?}{})",
                    self.mail.smtp.host,
                    self.mail.smtp.port,
                    self.mail.smtp.tls,
                    if self.mail.smtp.username.is_some() {
                        ", with credentials"
                    } else {
                        ""
                    }
                ),
            },
            self.spam.honeypot_field,
            if self.spam.require_token {
                "required"
            } else {
                "optional"
            },
            self.spam.threshold,
            if self.spam.keep { "kept" } else { "dropped" },
            self.rate_limit.per_ip_per_minute,
            self.rate_limit.per_ip_burst,
            self.rate_limit.global_per_second,
            self.rate_limit.per_email_per_day,
            self.spam.pow_baseline_per_minute,
            self.rate_limit.global_per_second,
            self.spam.pow_maxnumber,
            self.spam.pow_peak_maxnumber,
            self.mail.max_notifications_per_section_per_hour,
            if self.server.trusted_proxies.is_empty() {
                "none".to_owned()
            } else {
                self.server
                    .trusted_proxies
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            match self.server.forwarding_header {
                ForwardingHeader::XForwardedFor => "X-Forwarded-For",
                ForwardingHeader::Forwarded => "Forwarded",
            },
            self.followup_summary(),
            self.confirmation_summary(),
        )
    }

    /// The summary's line on mails to visitors: which sections send which, and their
    /// limits.
    fn confirmation_summary(&self) -> String {
        let mut by_mode: Vec<(ConfirmationMode, Vec<&str>)> = Vec::new();
        let sections = self
            .sections
            .iter()
            .map(|section| (section.name.as_str(), section.confirmation))
            .chain(
                self.fallback
                    .iter()
                    .map(|fallback| (fallback.name.as_str(), fallback.confirmation)),
            );
        for (name, written) in sections {
            let mode = self.confirmation_of(written);
            match by_mode.iter_mut().find(|(m, _)| *m == mode) {
                Some((_, names)) => names.push(name),
                None => by_mode.push((mode, vec![name])),
            }
        }
        if by_mode
            .iter()
            .all(|(mode, _)| *mode == ConfirmationMode::Off)
        {
            return "visitor mails:    off (form.confirmation = \"off\")\n".to_owned();
        }
        let modes: Vec<String> = by_mode
            .iter()
            .map(|(mode, names)| format!("{mode} for {}", names.join(", ")))
            .collect();
        format!(
            "visitor mails:    {}\n\
             visitor limits:   one mail per address a day, {} an hour in all; \
             unconfirmed sign-ups kept {}\n",
            modes.join("; "),
            self.rate_limit.visitor_mails_per_hour,
            self.form.confirm_within.in_file_units(),
        )
    }

    /// The summary's follow-up lines: off and why, or the address links go to and
    /// the periods.
    fn followup_summary(&self) -> String {
        let followup = &self.followup;
        match self.server.public_url() {
            Some(url) if self.followup_enabled() => format!(
                "follow-up:        on, links to {url}\n\
                 follow-up times:  remind after {}, escalate after {}, links last {}, \
                 checked every {}\n\
                 digest:           {}\n",
                followup.remind_after.in_file_units(),
                followup.escalate_after.in_file_units(),
                followup.link_ttl.in_file_units(),
                followup.check_every.in_file_units(),
                <&str>::from(followup.digest),
            ),
            Some(_) => "follow-up:        off (followup.enabled = false)\n".to_owned(),
            None => "follow-up:        off (server.public_url is not set)\n".to_owned(),
        }
    }

    /// Builds settings from a TOML text and, when `with_env`, the `JOINFORM_*` variables.
    ///
    /// # Errors
    /// The first problem found in the text, the environment or their combination.
    pub fn from_toml(toml_text: Option<&str>, with_env: bool) -> Result<Self, ConfigError> {
        Self::extract(toml_text.map(Toml::string), None, with_env).map(|(settings, _)| settings)
    }

    /// `toml` (the file at `file`, or a text) and the environment over the defaults,
    /// checked, with where each value came from (a text's values count as defaults).
    fn extract(
        toml: Option<Data<Toml>>,
        file: Option<&Path>,
        with_env: bool,
    ) -> Result<(Self, Provenance), ConfigError> {
        // What the operator wrote, apart from the defaults: a deprecated key may not
        // be set beside the key that replaced it.
        let mut written = Figment::new();
        if let Some(toml) = toml {
            written = written.merge(toml);
        }
        // JOINFORM_CONFIG names the file; it is not a setting.
        let env = with_env.then(|| Env::prefixed(ENV_PREFIX).split("__").ignore(&["config"]));
        if let Some(env) = &env {
            written = written.merge(env.clone());
        }
        let mut settings: Settings = Figment::from(Serialized::defaults(Settings::default()))
            .merge(&written)
            .extract()
            .map_err(describe_figment_error)?;
        settings.fold_deprecated(|key| written.contains(key))?;
        settings.check()?;
        let provenance = Provenance::trace(&written, file, env.as_ref());
        Ok((settings, provenance))
    }

    /// Checks what serde cannot: ranges, formats and names that depend on each other.
    /// Each table checks its own keys; a table whose keys depend on another's is
    /// handed that one.
    ///
    /// # Errors
    /// The first problem found, as [`ConfigError::BadValue`] naming its key.
    pub fn check(&self) -> Result<(), ConfigError> {
        self.server.check()?;
        self.log.check()?;
        self.storage.check()?;
        self.mail.check()?;
        self.spam.check(&self.form)?;
        self.rate_limit.check()?;
        let mut section_names: Vec<&str> = self.sections.iter().map(|s| s.name.as_str()).collect();
        if let Some(fallback) = &self.fallback {
            section_names.push(&fallback.name);
        }
        self.admin.check(self.server.listen, &section_names)?;
        self.retention.check()?;
        self.followup.check(&self.server)?;
        self.form.check()?;
        self.check_confirmation()
    }

    /// Mails to visitors carry links to this server: any mode but `off` needs
    /// `server.public_url`.
    fn check_confirmation(&self) -> Result<(), ConfigError> {
        if self.server.public_url().is_some() {
            return Ok(());
        }
        let form = (self.form.confirmation, "form.confirmation".to_owned());
        let sections = self
            .sections
            .iter()
            .enumerate()
            .filter_map(|(index, section)| {
                Some((
                    section.confirmation?,
                    format!("sections[{index}].confirmation"),
                ))
            });
        let fallback = self.fallback.as_ref().and_then(|fallback| {
            Some((fallback.confirmation?, "fallback.confirmation".to_owned()))
        });
        for (mode, key) in std::iter::once(form).chain(sections).chain(fallback) {
            if mode != ConfirmationMode::Off {
                return Err(ConfigError::bad(
                    key,
                    format!(
                        "is `{mode}` but server.public_url is not set: mails to visitors link to it"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The confirmation mode of a section as written (`None`: the form's).
    pub fn confirmation_of(&self, written: Option<ConfirmationMode>) -> ConfirmationMode {
        written.unwrap_or(self.form.confirmation)
    }

    /// Whether the routing in force is the shipped example: the sections and the
    /// fallback equal those of [`EMBEDDED_CONFIG`], whether they came from the
    /// built-in copy, a copy of the shipped file or the environment. Any change to
    /// them (a contact, a name, a country) makes it the operator's own.
    pub fn routes_to_shipped_example(&self) -> bool {
        /// Only the routing of the shipped file; its other tables are ignored.
        #[derive(Deserialize)]
        struct ShippedRouting {
            sections: Vec<SectionSettings>,
            fallback: Option<FallbackSettings>,
        }
        Figment::from(Toml::string(EMBEDDED_CONFIG))
            .extract::<ShippedRouting>()
            .is_ok_and(|shipped| {
                shipped.sections == self.sections && shipped.fallback == self.fallback
            })
    }

    /// Whether follow-up runs: see [`FollowupSettings::is_enabled`].
    pub fn followup_enabled(&self) -> bool {
        self.followup.is_enabled(&self.server)
    }
}

fn describe_figment_error(error: figment::Error) -> ConfigError {
    // Figment names keys with its profile ("default.server.listen"); operators write
    // them without.
    let problems: Vec<String> = error
        .into_iter()
        .map(|e| e.to_string().replace("key \"default.", "key \""))
        .collect();
    ConfigError::Invalid(problems.join("; "))
}
