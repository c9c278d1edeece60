//! Typed settings: defaults in code, then the TOML file, then `JOINFORM_*` environment
//! variables. Every key is documented once, in `config/joinform.toml`.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Data, Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::domain::{ExtraFieldSpec, FieldName, FormSchema};

/// The file `serve` and `check-config` read when no `--config` is given.
pub const DEFAULT_CONFIG_PATH: &str = "config/joinform.toml";

/// The shipped `config/joinform.toml`, built into the binary: used when the default file
/// is not there (an installed binary run from another folder).
pub const EMBEDDED_CONFIG: &str = include_str!("../config/joinform.toml");

/// Environment variables with this prefix override keys: `JOINFORM_SERVER__LISTEN`
/// overrides `server.listen` (tables and keys are separated by a double underscore).
const ENV_PREFIX: &str = "JOINFORM_";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub storage: StorageSettings,
    pub form: FormSettings,
    pub mail: MailSettings,
    pub spam: SpamSettings,
    pub rate_limit: RateLimitSettings,
    pub log: LogSettings,
    pub admin: AdminSettings,
    pub retention: RetentionSettings,
    /// National sections: who is told of a sign-up from which countries.
    pub sections: Vec<SectionSettings>,
    /// Who is told of sign-ups from countries no section covers. Required.
    pub fallback: Option<FallbackSettings>,
}

/// A national section, as written in the file; checked by `routing::Routing`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SectionSettings {
    pub name: String,
    pub countries: Vec<String>,
    pub contacts: Vec<String>,
    pub language: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FallbackSettings {
    pub name: String,
    pub contacts: Vec<String>,
    pub language: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailSettings {
    /// `file` writes each message as an .eml file; `smtp` sends it.
    pub transport: TransportKind,
    /// The sender: a mailbox of the organisation's own domain.
    pub from: String,
    /// Where the file transport writes messages.
    pub file_dir: PathBuf,
    /// The first retry waits this long; each next one twice as long, with jitter.
    pub retry_initial: HumanDuration,
    /// No retry waits longer than this.
    pub retry_max: HumanDuration,
    /// A message still not delivered this long after the sign-up is marked failed.
    pub give_up_after: HumanDuration,
    /// The most messages sent per second: protects the mail server and leaves the CPU
    /// to sign-ups when a backlog is drained.
    pub max_per_second: u32,
    pub smtp: SmtpSettings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    File,
    Smtp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, which is required (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on the same host or a test server.
    None,
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    /// Best given as JOINFORM_MAIL__SMTP__PASSWORD, never in a committed file.
    pub password: Option<String>,
    pub timeout_seconds: u64,
}

impl fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("timeout_seconds", &self.timeout_seconds)
            .finish()
    }
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            transport: TransportKind::File,
            from: "joinform <joinform@example.org>".to_owned(),
            file_dir: PathBuf::from("data/mail"),
            retry_initial: HumanDuration::from_secs(30),
            retry_max: HumanDuration::from_secs(3600),
            give_up_after: HumanDuration::from_secs(3 * 24 * 3600),
            max_per_second: 20,
            smtp: SmtpSettings::default(),
        }
    }
}

impl Default for SmtpSettings {
    fn default() -> Self {
        Self {
            host: "localhost".to_owned(),
            port: 587,
            tls: SmtpTls::Starttls,
            username: None,
            password: None,
            timeout_seconds: 10,
        }
    }
}

/// A duration written as a number and a unit: `30s`, `15m`, `1h`, `3d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(Duration);

impl HumanDuration {
    pub const fn from_secs(seconds: u64) -> Self {
        Self(Duration::from_secs(seconds))
    }

    pub fn get(self) -> Duration {
        self.0
    }
}

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let not_a_duration = || format!("`{text}` is not a duration such as 30s, 15m, 1h or 3d");
        if unit.starts_with(['.', ',']) {
            return Err(format!(
                "{}: whole numbers only (90m, not 1.5h)",
                not_a_duration()
            ));
        }
        let number: u64 = number.parse().map_err(|_| not_a_duration())?;
        let seconds_per_unit = match unit.trim() {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return Err(format!("`{text}`: the unit must be s, m, h or d")),
        };
        number
            .checked_mul(seconds_per_unit)
            .map(Self::from_secs)
            .ok_or_else(|| format!("`{text}` is too long"))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.0.as_secs();
        match seconds {
            s if s % 86_400 == 0 && s > 0 => write!(f, "{}d", s / 86_400),
            s if s % 3600 == 0 && s > 0 => write!(f, "{}h", s / 3600),
            s if s % 60 == 0 && s > 0 => write!(f, "{}m", s / 60),
            s => write!(f, "{s}s"),
        }
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Address and port of the public listener.
    pub listen: SocketAddr,
    /// Largest request body accepted, counted after decompression.
    pub max_body_bytes: usize,
    /// Worker threads serving HTTP; 0 means one per CPU core.
    pub workers: usize,
    /// Reverse proxies whose forwarding header is believed: CIDR ranges
    /// (`10.0.0.0/8`) or bare addresses, each one host (`/32` for IPv4, `/128` for
    /// IPv6).
    #[serde(deserialize_with = "proxies")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The one forwarding header the trusted proxies write.
    pub forwarding_header: ForwardingHeader,
    /// Web origins (`https://example.org`) whose scripts may post to joinform and read
    /// the answer (CORS). Plain HTML forms need no entry here.
    pub allowed_origins: Vec<String>,
    /// On SIGTERM/SIGINT, how long requests in flight may take to finish.
    pub shutdown_timeout: HumanDuration,
}

/// `server.trusted_proxies`: each entry a CIDR range or a bare IPv4/IPv6 address.
fn proxies<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<ipnet::IpNet>, D::Error> {
    Vec::<String>::deserialize(deserializer)?
        .iter()
        .map(|entry| parse_proxy(entry).map_err(serde::de::Error::custom))
        .collect()
}

/// A CIDR range, or a bare address as the one-host range (RFC 4632 §3.1 for IPv4,
/// RFC 4291 §2.3 for IPv6): `127.0.0.1` is `127.0.0.1/32`, `::1` is `::1/128`.
///
/// # Errors
/// A message quoting `entry` when it is neither.
pub fn parse_proxy(entry: &str) -> Result<ipnet::IpNet, String> {
    let entry = entry.trim();
    entry
        .parse::<ipnet::IpNet>()
        .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| {
            format!(
                "`{entry}` is not an IP address or a CIDR range (such as 10.0.0.1 or 10.0.0.0/8)"
            )
        })
}

/// The header a trusted proxy names the client in. Only that one is read: a proxy
/// appends to the header it writes but passes the other on as the client sent it, so
/// believing both would let a client name itself through the proxy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardingHeader {
    /// `X-Forwarded-For`, which nginx, HAProxy, Caddy, Traefik and cloud load
    /// balancers write.
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded`.
    Forwarded,
}

/// How joinform logs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A `RUST_LOG`-style filter; the `RUST_LOG` variable, when set, wins.
    pub filter: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One readable line per event.
    Human,
    /// One JSON object per line, for log shippers.
    Json,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Human,
            filter: "info".to_owned(),
        }
    }
}

/// The spam checks: honeypot, form token, content rules and duplicates.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpamSettings {
    /// The field humans never fill.
    pub honeypot_field: String,
    /// The key behind form tokens; generated beside the database when unset. (Audit
    /// hashes have a key of their own, `audit.key`.)
    pub secret: Option<String>,
    /// Whether a post without a form token is spam.
    pub require_token: bool,
    /// A token younger than this is spam: nobody fills the form that fast.
    pub min_fill_seconds: u64,
    /// A token older than this is spam.
    pub token_max_age: HumanDuration,
    /// The most links a message may carry before it scores.
    pub max_links: usize,
    /// Phrases (case-insensitive) that score when found in any text field.
    pub blocked_phrases: Vec<String>,
    /// Regular expressions that score when they match any text field.
    pub blocked_patterns: Vec<String>,
    /// The score at which a submission is spam.
    pub threshold: u32,
    /// Another sign-up of the same address within this window is a duplicate.
    pub duplicate_window: HumanDuration,
    /// Whether spam is stored (with its reasons) or discarded.
    pub keep: bool,
}

impl fmt::Debug for SpamSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpamSettings")
            .field("honeypot_field", &self.honeypot_field)
            .field("secret", &self.secret.as_ref().map(|_| "(set)"))
            .field("require_token", &self.require_token)
            .field("min_fill_seconds", &self.min_fill_seconds)
            .field("token_max_age", &self.token_max_age)
            .field("max_links", &self.max_links)
            .field("blocked_phrases", &self.blocked_phrases.len())
            .field("blocked_patterns", &self.blocked_patterns.len())
            .field("threshold", &self.threshold)
            .field("duplicate_window", &self.duplicate_window)
            .field("keep", &self.keep)
            .finish()
    }
}

impl Default for SpamSettings {
    fn default() -> Self {
        Self {
            honeypot_field: "_gotcha".to_owned(),
            secret: None,
            require_token: false,
            min_fill_seconds: 3,
            token_max_age: HumanDuration(Duration::from_secs(24 * 3600)),
            max_links: 1,
            blocked_phrases: Vec::new(),
            blocked_patterns: Vec::new(),
            threshold: 5,
            duplicate_window: HumanDuration(Duration::from_secs(24 * 3600)),
            keep: true,
        }
    }
}

/// Request rate limits on the public form endpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Sustained posts per minute from one client.
    pub per_ip_per_minute: u32,
    /// Posts one client may make at once before the sustained rate applies.
    pub per_ip_burst: u32,
    /// Posts per second from everyone together.
    pub global_per_second: u32,
    /// Sign-ups stored per address in 24 hours; past it, posts are dropped.
    pub per_email_per_day: u32,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            per_ip_per_minute: 10,
            per_ip_burst: 5,
            global_per_second: 200,
            per_email_per_day: 5,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageSettings {
    /// The SQLite database file; its folder is created on first start.
    pub database: PathBuf,
    /// How long a write waits for a lock held by another process before giving up.
    pub busy_timeout_ms: u64,
    /// The largest the database may grow, in MiB; 0 means no limit. A flood then
    /// fills this quota, not the disk.
    pub max_size_mib: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FormSettings {
    /// Where a plain HTML form is redirected after a successful post.
    pub success_url: String,
    /// Whether the `consent` field must be given and true.
    pub consent_required: bool,
    /// Additional fields an organisation asks for, stored as JSON.
    pub extra_fields: Vec<ExtraFieldSettings>,
    /// The form page's language when neither `?lang=` nor Accept-Language names a
    /// shipped one.
    pub default_language: String,
    /// The privacy notice linked from the consent checkbox; empty: no link.
    pub privacy_url: String,
    /// The form page's heading; empty: "Join us" in the page's language.
    pub title: String,
    /// The paragraph under the heading; empty: the built-in text in the page's language.
    pub intro: String,
    /// A logo shown above the heading; empty: none.
    pub logo_url: String,
    /// Links, focus rings and the button, as `#rrggbb`; must reach WCAG AA contrast.
    pub accent_color: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtraFieldSettings {
    pub name: String,
    pub max_length: usize,
    #[serde(default)]
    pub required: bool,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 16 * 1024,
            workers: 0,
            trusted_proxies: Vec::new(),
            forwarding_header: ForwardingHeader::default(),
            allowed_origins: Vec::new(),
            shutdown_timeout: HumanDuration(Duration::from_secs(30)),
        }
    }
}

impl Default for StorageSettings {
    fn default() -> Self {
        Self {
            database: PathBuf::from("data/joinform.db"),
            busy_timeout_ms: 5_000,
            max_size_mib: 0,
        }
    }
}

impl FormSettings {
    /// The fields a submission of this form may carry. The settings were checked when
    /// loaded; an extra field whose name fails here is skipped.
    pub fn schema(&self) -> FormSchema {
        FormSchema {
            consent_required: self.consent_required,
            extra_fields: self
                .extra_fields
                .iter()
                .filter_map(|field| {
                    Some(ExtraFieldSpec {
                        name: FieldName::parse_extra(&field.name).ok()?,
                        max_chars: field.max_length,
                        required: field.required,
                    })
                })
                .collect(),
            control_fields: Vec::new(),
        }
    }

    /// The configured extra fields' names, in order: the export columns after the
    /// standard ones.
    pub fn extra_field_names(&self) -> Vec<String> {
        self.extra_fields
            .iter()
            .map(|field| field.name.clone())
            .collect()
    }
}

impl Default for FormSettings {
    fn default() -> Self {
        Self {
            success_url: "/join/thanks".to_owned(),
            consent_required: true,
            extra_fields: Vec::new(),
            default_language: crate::i18n::REFERENCE_LANGUAGE.to_owned(),
            privacy_url: String::new(),
            title: String::new(),
            intro: String::new(),
            logo_url: String::new(),
            accent_color: crate::colour::DEFAULT_ACCENT.to_owned(),
        }
    }
}

/// A configuration that cannot be used. Each message is complete and has no
/// `source()`, so it reads the same printed alone or with its chain: said once.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {problem}")]
    Unreadable {
        path: PathBuf,
        problem: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("{key}: {problem}")]
    BadValue { key: String, problem: String },
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
        let Some(path) = source.file() else {
            return Self::from_toml(Some(EMBEDDED_CONFIG), true);
        };
        // Said plainly up front: figment's own word for a missing file is vaguer.
        std::fs::File::open(path).map_err(|problem| ConfigError::Unreadable {
            path: path.to_owned(),
            problem,
        })?;
        // Read by figment itself, so its errors name the file, and a bad environment
        // variable is not blamed on the file.
        Self::extract(Some(Toml::file_exact(path)), true)
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
             trusted proxies:  {} (reading {})\n",
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
        )
    }

    /// Builds settings from a TOML text and, when `with_env`, the `JOINFORM_*` variables.
    ///
    /// # Errors
    /// The first problem found in the text, the environment or their combination.
    pub fn from_toml(toml_text: Option<&str>, with_env: bool) -> Result<Self, ConfigError> {
        Self::extract(toml_text.map(Toml::string), with_env)
    }

    fn extract(toml: Option<Data<Toml>>, with_env: bool) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(toml) = toml {
            figment = figment.merge(toml);
        }
        if with_env {
            // JOINFORM_CONFIG names the file; it is not a setting.
            figment = figment.merge(Env::prefixed(ENV_PREFIX).split("__").ignore(&["config"]));
        }
        let settings: Settings = figment.extract().map_err(describe_figment_error)?;
        settings.check()?;
        Ok(settings)
    }

    /// Checks what serde cannot: ranges, formats and names that depend on each other.
    pub fn check(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, problem: String| ConfigError::BadValue {
            key: key.to_owned(),
            problem,
        };
        if !(1024..=1024 * 1024).contains(&self.server.max_body_bytes) {
            return Err(bad(
                "server.max_body_bytes",
                format!("{} is outside 1024..=1048576", self.server.max_body_bytes),
            ));
        }
        if self.server.shutdown_timeout.get() > Duration::from_secs(3600) {
            return Err(bad("server.shutdown_timeout", "must be at most 1h".into()));
        }
        if let Err(error) = tracing_subscriber::EnvFilter::builder().parse(&self.log.filter) {
            return Err(bad("log.filter", error.to_string()));
        }
        if self.server.workers > 256 {
            return Err(bad("server.workers", "must be at most 256".into()));
        }
        if self.storage.database.as_os_str().is_empty() {
            return Err(bad("storage.database", "must not be empty".into()));
        }
        if !(100..=600_000).contains(&self.storage.busy_timeout_ms) {
            return Err(bad(
                "storage.busy_timeout_ms",
                "must be between 100 and 600000".into(),
            ));
        }
        if self.storage.max_size_mib > 1024 * 1024 {
            return Err(bad(
                "storage.max_size_mib",
                "must be at most 1048576 (1 TiB), or 0 for no limit".into(),
            ));
        }
        self.check_mail()?;
        self.check_spam()?;
        self.check_admin()?;
        check_success_url(&self.form.success_url)
            .map_err(|problem| bad("form.success_url", problem.into()))?;
        self.check_page()?;
        let mut seen = std::collections::HashSet::new();
        for (index, field) in self.form.extra_fields.iter().enumerate() {
            let key = format!("form.extra_fields[{index}]");
            FieldName::parse_extra(&field.name)
                .map_err(|problem| bad(&format!("{key}.name"), problem.to_string()))?;
            if !seen.insert(field.name.as_str()) {
                return Err(bad(
                    &format!("{key}.name"),
                    format!("`{}` is declared twice", field.name),
                ));
            }
            if !(1..=2000).contains(&field.max_length) {
                return Err(bad(
                    &format!("{key}.max_length"),
                    "must be between 1 and 2000".into(),
                ));
            }
        }
        Ok(())
    }
}

impl Settings {
    /// The form page's settings: branding, links, language and CORS origins.
    fn check_page(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, problem: String| ConfigError::BadValue {
            key: key.to_owned(),
            problem,
        };
        let form = &self.form;
        if !crate::i18n::shipped().any(|tag| tag == form.default_language) {
            let shipped: Vec<&str> = crate::i18n::shipped().collect();
            return Err(bad(
                "form.default_language",
                format!(
                    "must be one of the shipped languages: {}",
                    shipped.join(", ")
                ),
            ));
        }
        for (key, url) in [
            ("form.privacy_url", &form.privacy_url),
            ("form.logo_url", &form.logo_url),
        ] {
            if !url.is_empty() {
                check_success_url(url).map_err(|problem| bad(key, problem.into()))?;
            }
        }
        for (key, text, max) in [
            ("form.title", &form.title, 200),
            ("form.intro", &form.intro, 1000),
        ] {
            if text.chars().count() > max || text.chars().any(char::is_control) {
                return Err(bad(
                    key,
                    format!("must be at most {max} characters on one line"),
                ));
            }
        }
        match crate::colour::contrast(&form.accent_color, crate::colour::BACKGROUND) {
            None => {
                return Err(bad(
                    "form.accent_color",
                    "must be a colour written #rrggbb".into(),
                ));
            }
            Some(ratio) if ratio < crate::colour::AA_TEXT => {
                return Err(bad(
                    "form.accent_color",
                    format!(
                        "contrast with white is {ratio:.2}:1; WCAG AA needs 4.5:1 (choose a darker colour)"
                    ),
                ));
            }
            Some(_) => {}
        }
        for (index, origin) in self.server.allowed_origins.iter().enumerate() {
            check_origin(origin).map_err(|problem| {
                bad(&format!("server.allowed_origins[{index}]"), problem.into())
            })?;
        }
        Ok(())
    }

    fn check_spam(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, problem: String| ConfigError::BadValue {
            key: key.to_owned(),
            problem,
        };
        let spam = &self.spam;
        let honeypot = &spam.honeypot_field;
        let honeypot_ok = (1..=32).contains(&honeypot.len())
            && honeypot
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            && !crate::domain::STANDARD_FIELDS.contains(&honeypot.as_str())
            && !self.form.extra_fields.iter().any(|f| &f.name == honeypot);
        if !honeypot_ok {
            return Err(bad(
                "spam.honeypot_field",
                "must be 1-32 characters of letters, digits, _ and -, and not the name of \
                 another field"
                    .into(),
            ));
        }
        if let Some(secret) = &spam.secret
            && secret.chars().count() < crate::secret::MIN_SECRET_CHARS
        {
            return Err(bad(
                "spam.secret",
                format!(
                    "must be at least {} characters (or unset, to generate one)",
                    crate::secret::MIN_SECRET_CHARS
                ),
            ));
        }
        if spam.min_fill_seconds > 3600 {
            return Err(bad("spam.min_fill_seconds", "must be at most 3600".into()));
        }
        if spam.token_max_age.get() <= Duration::from_secs(spam.min_fill_seconds) {
            return Err(bad(
                "spam.token_max_age",
                "must be longer than spam.min_fill_seconds".into(),
            ));
        }
        for (index, pattern) in spam.blocked_patterns.iter().enumerate() {
            regex::RegexBuilder::new(pattern)
                .size_limit(1 << 20)
                .build()
                .map_err(|error| {
                    bad(
                        &format!("spam.blocked_patterns[{index}]"),
                        error.to_string(),
                    )
                })?;
        }
        if spam.blocked_phrases.iter().any(|p| p.trim().is_empty()) {
            return Err(bad(
                "spam.blocked_phrases",
                "must not hold an empty phrase".into(),
            ));
        }
        if spam.threshold == 0 {
            return Err(bad("spam.threshold", "must be at least 1".into()));
        }
        let limits = &self.rate_limit;
        for (key, value) in [
            ("rate_limit.per_ip_per_minute", limits.per_ip_per_minute),
            ("rate_limit.per_ip_burst", limits.per_ip_burst),
            ("rate_limit.global_per_second", limits.global_per_second),
            ("rate_limit.per_email_per_day", limits.per_email_per_day),
        ] {
            if !(1..=1_000_000).contains(&value) {
                return Err(bad(key, "must be between 1 and 1000000".into()));
            }
        }
        Ok(())
    }

    fn check_mail(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, problem: &str| ConfigError::BadValue {
            key: key.to_owned(),
            problem: problem.to_owned(),
        };
        let mail = &self.mail;
        if mail.retry_initial.get() < Duration::from_secs(1) {
            return Err(bad("mail.retry_initial", "must be at least 1s"));
        }
        if mail.retry_max < mail.retry_initial {
            return Err(bad(
                "mail.retry_max",
                "must not be shorter than mail.retry_initial",
            ));
        }
        if mail.give_up_after < mail.retry_initial {
            return Err(bad(
                "mail.give_up_after",
                "must not be shorter than mail.retry_initial",
            ));
        }
        if !(1..=10_000).contains(&mail.max_per_second) {
            return Err(bad("mail.max_per_second", "must be between 1 and 10000"));
        }
        if !(1..=300).contains(&mail.smtp.timeout_seconds) {
            return Err(bad(
                "mail.smtp.timeout_seconds",
                "must be between 1 and 300",
            ));
        }
        if mail.transport == TransportKind::Smtp && mail.smtp.host.trim().is_empty() {
            return Err(bad(
                "mail.smtp.host",
                "is required when mail.transport = \"smtp\"",
            ));
        }
        if mail.smtp.username.is_some() != mail.smtp.password.is_some() {
            return Err(bad(
                "mail.smtp.password",
                "username and password go together (set JOINFORM_MAIL__SMTP__PASSWORD)",
            ));
        }
        Ok(())
    }
}

/// A relative path on this site (`/join/thanks`) or an absolute http(s) URL.
fn check_success_url(url: &str) -> Result<(), &'static str> {
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("must not contain spaces or control characters");
    }
    let is_local_path = url.starts_with('/') && !url.starts_with("//");
    let is_absolute = ["https://", "http://"]
        .iter()
        .any(|scheme| url.len() > scheme.len() && url.to_ascii_lowercase().starts_with(scheme));
    if is_local_path || is_absolute {
        Ok(())
    } else {
        Err("must be a path starting with `/` or an http(s) URL")
    }
}

/// A web origin as browsers send it: `https://host` or `http://host:port`, no path.
fn check_origin(origin: &str) -> Result<(), &'static str> {
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .ok_or("must start with https:// or http://")?;
    let host_ok = !rest.is_empty()
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if host_ok {
        Ok(())
    } else {
        Err(
            "must be a scheme and host (and port) only, such as https://example.org, without a path or wildcard",
        )
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

/// The admin listener: exports, erasure and the tokens that may use them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminSettings {
    /// Address and port of the admin listener; never the public one.
    pub listen: SocketAddr,
    /// Who may use it: a name and the SHA-256 of a bearer token each.
    pub tokens: Vec<AdminTokenSettings>,
    /// Failed authentications one client may make per minute before it gets 429.
    pub failed_auth_per_minute: u32,
}

impl Default for AdminSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            tokens: Vec::new(),
            failed_auth_per_minute: 10,
        }
    }
}

/// One admin token, as written in the file. Only its hash is ever configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminTokenSettings {
    /// Shown in the audit trail as the actor.
    pub name: String,
    /// Hex SHA-256 of the token.
    pub sha256: String,
    /// The sections whose contacts it sees; empty means every section.
    #[serde(default)]
    pub sections: Vec<String>,
}

/// How long data is kept; `joinform purge` and the server's daily purge apply it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSettings {
    /// Accepted (and duplicate) submissions are deleted this many days after sign-up.
    pub accepted_days: u32,
    /// Spam is deleted this many days after it arrived.
    pub spam_days: u32,
    /// Sent and failed notifications are deleted this many days after they were queued.
    pub outbox_days: u32,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            accepted_days: 730,
            spam_days: 30,
            outbox_days: 30,
        }
    }
}

/// Export column names other than the form's own fields: an extra field by one of these
/// names would make two CSV columns of one name.
pub const EXPORT_ONLY_COLUMNS: [&str; 4] = ["id", "created_at", "section", "status"];

impl Settings {
    fn check_admin(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, problem: String| ConfigError::BadValue {
            key: key.to_owned(),
            problem,
        };
        let (admin, public) = (self.admin.listen, self.server.listen);
        // Port 0 (tests) asks the system for a free port, so two zeros cannot clash.
        if admin.port() != 0 && admin.port() == public.port() {
            return Err(bad(
                "admin.listen",
                "must use another port than server.listen: the admin routes are never \
                 served on the public listener"
                    .into(),
            ));
        }
        if !(1..=1000).contains(&self.admin.failed_auth_per_minute) {
            return Err(bad(
                "admin.failed_auth_per_minute",
                "must be between 1 and 1000".into(),
            ));
        }
        let mut section_names: Vec<&str> = self.sections.iter().map(|s| s.name.as_str()).collect();
        if let Some(fallback) = &self.fallback {
            section_names.push(&fallback.name);
        }
        let mut names = std::collections::HashSet::new();
        for (index, token) in self.admin.tokens.iter().enumerate() {
            let key = format!("admin.tokens[{index}]");
            let name_ok = (1..=64).contains(&token.name.chars().count())
                && token
                    .name
                    .chars()
                    .all(|c| c.is_alphanumeric() || " _.-@".contains(c));
            if !name_ok {
                return Err(bad(
                    &format!("{key}.name"),
                    "must be 1-64 letters, digits, spaces or _ . - @".into(),
                ));
            }
            if !names.insert(token.name.as_str()) {
                return Err(bad(
                    &format!("{key}.name"),
                    format!("`{}` is used by two tokens", token.name),
                ));
            }
            let digest_ok =
                token.sha256.len() == 64 && token.sha256.chars().all(|c| c.is_ascii_hexdigit());
            if !digest_ok {
                return Err(bad(
                    &format!("{key}.sha256"),
                    "must be 64 hexadecimal digits (joinform token new prints it)".into(),
                ));
            }
            for section in &token.sections {
                if !section_names.contains(&section.as_str()) {
                    return Err(bad(
                        &format!("{key}.sections"),
                        format!("`{section}` is not the name of a section or the fallback"),
                    ));
                }
            }
        }
        for field in &self.form.extra_fields {
            if EXPORT_ONLY_COLUMNS.contains(&field.name.as_str()) {
                return Err(bad(
                    "form.extra_fields",
                    format!("`{}` is the name of an export column", field.name),
                ));
            }
        }
        let retention = &self.retention;
        for (key, value) in [
            ("retention.accepted_days", retention.accepted_days),
            ("retention.spam_days", retention.spam_days),
            ("retention.outbox_days", retention.outbox_days),
        ] {
            if !(1..=36_500).contains(&value) {
                return Err(bad(key, "must be between 1 and 36500".into()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trusted_proxy_is_a_cidr_range_or_one_host() {
        let file = |entries: &str| {
            format!(
                "[server]\ntrusted_proxies = {entries}\n[fallback]\nname = \"X\"\n\
                 contacts = [\"a@example.org\"]\nlanguage = \"en\"\n"
            )
        };
        let settings = Settings::from_toml(
            Some(&file(
                r#"["127.0.0.1", "10.0.0.0/8", "::1", "2001:db8::/32", " 192.0.2.7 "]"#,
            )),
            false,
        )
        .unwrap();
        let loaded: Vec<String> = settings
            .server
            .trusted_proxies
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            loaded,
            [
                "127.0.0.1/32",
                "10.0.0.0/8",
                "::1/128",
                "2001:db8::/32",
                "192.0.2.7/32"
            ]
        );
        for bad in ["10.0.0.0/33", "localhost", "10.0.0", ""] {
            let error = Settings::from_toml(Some(&file(&format!("[\"{bad}\"]"))), false)
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("trusted_proxies") && error.contains("not an IP address"),
                "{bad}: {error}"
            );
        }
    }
}
