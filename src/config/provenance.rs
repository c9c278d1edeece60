//! Where each setting came from: the configuration file or a `JOINFORM_*` variable.
//! A variable wins over the file without a word, so a container's environment can
//! quietly replace what a mounted file says; `check-config` lists both, and `serve`
//! names at start the settings the environment set.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Toml};
use figment::value::{Dict, Value};

use super::{EMBEDDED_CONFIG, ENV_PREFIX};

/// Keys whose values are never printed, only where they came from: secrets, and the
/// digests of tokens (a digest lets anyone test guesses offline).
const SECRET_KEYS: [&str; 4] = [
    "spam.secret",
    "mail.smtp.password",
    "admin.tokens",
    "admin.metrics_token_sha256",
];

/// Where one setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A `JOINFORM_*` environment variable, by its name as set.
    Environment {
        /// The variable (`JOINFORM_SERVER__LISTEN`).
        variable: String,
        /// Whether the configuration file sets this key too (and loses).
        over_file: bool,
        /// Whether the file's value differs from the shipped file's: one the operator
        /// wrote, silently replaced (the container image's variables replace the
        /// shipped file's listen addresses on every start, by design).
        over_edited: bool,
    },
    /// The configuration file.
    File,
}

/// One setting the file or the environment set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingOrigin {
    /// The key as the file writes it (`server.listen`; a whole array such as
    /// `sections` is one key).
    pub key: String,
    /// Its value, compact (JSON-like; an array of tables only counted), or `None` for
    /// a secret.
    pub value: Option<String>,
    pub origin: Origin,
}

/// Where every setting the file or the environment set came from; the rest are the
/// built-in defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provenance {
    /// The configuration file read, if any: without one, the built-in copy of
    /// `config/joinform.toml` supplies the defaults.
    pub file: Option<PathBuf>,
    /// The environment's settings first, then the file's, each in key order.
    pub settings: Vec<SettingOrigin>,
}

impl Provenance {
    /// Traces `written` (the file at `file`, if any, merged with the environment when
    /// `env` is that provider) key by key. Read again alone, the file tells which
    /// variables override it.
    pub(super) fn trace(
        written: &Figment,
        file: Option<&Path>,
        env: Option<&figment::providers::Env>,
    ) -> Self {
        let Ok(dict) = written.extract::<Dict>() else {
            return Self::default();
        };
        let mut leaves = Vec::new();
        collect_leaves(&dict, "", &mut leaves);
        let file_only = file.map(|path| Figment::from(Toml::file_exact(path)));
        let shipped = Figment::from(Toml::string(EMBEDDED_CONFIG));
        let env_metadata = env.map(figment::Provider::metadata);
        let variables = environment_keys();
        let mut from_env = Vec::new();
        let mut from_file = Vec::new();
        for (key, value) in leaves {
            let by_env = env_metadata.as_ref().is_some_and(|metadata| {
                written
                    .find_metadata(&key)
                    .is_some_and(|found| found == metadata)
            });
            let value = (!is_secret(&key)).then(|| show(value));
            if by_env {
                let variable = variables
                    .iter()
                    .filter(|(mapped, _)| key == *mapped || key.starts_with(&format!("{mapped}.")))
                    .max_by_key(|(mapped, _)| mapped.len())
                    .map_or_else(|| env_name(&key), |(_, name)| name.clone());
                let in_file = file_only
                    .as_ref()
                    .and_then(|figment| figment.find_value(&key).ok());
                let over_edited = in_file
                    .as_ref()
                    .is_some_and(|in_file| shipped.find_value(&key).ok().as_ref() != Some(in_file));
                from_env.push(SettingOrigin {
                    key,
                    value,
                    origin: Origin::Environment {
                        variable,
                        over_file: in_file.is_some(),
                        over_edited,
                    },
                });
            } else if file.is_some() {
                from_file.push(SettingOrigin {
                    key,
                    value,
                    origin: Origin::File,
                });
            }
        }
        from_env.append(&mut from_file);
        Self {
            file: file.map(Path::to_path_buf),
            settings: from_env,
        }
    }

    /// The settings the environment set.
    pub fn from_environment(&self) -> impl Iterator<Item = &SettingOrigin> {
        self.settings
            .iter()
            .filter(|setting| matches!(setting.origin, Origin::Environment { .. }))
    }

    /// What `check-config` prints under "where values came from": the file's path,
    /// then one line per setting the environment or the file set (`key = value
    /// (environment: VARIABLE)` or `key = value  (file)`, a secret's value not
    /// shown), then the defaults in one line.
    pub fn report(&self) -> String {
        let mut text =
            String::from("where values came from (a JOINFORM_* variable wins over the file):\n");
        if let Some(path) = &self.file {
            let _ = writeln!(text, "  (file) is {}", path.display());
        }
        for setting in &self.settings {
            let value = setting.value.as_deref().unwrap_or("(secret, not shown)");
            let origin = match &setting.origin {
                Origin::Environment {
                    variable,
                    over_file,
                    ..
                } => {
                    let over = if *over_file {
                        ", overriding the file's value"
                    } else {
                        ""
                    };
                    format!("environment: {variable}{over}")
                }
                Origin::File => "file".to_owned(),
            };
            let _ = writeln!(text, "  {} = {value}  ({origin})", setting.key);
        }
        let defaults = match self.file {
            Some(_) => "built-in defaults",
            None => "built-in defaults (the built-in copy of config/joinform.toml)",
        };
        let _ = writeln!(text, "  everything else: {defaults}");
        text
    }

    /// The one line `serve` logs at start when the environment set anything: the keys
    /// and variables, never a value. `None` when it set nothing.
    pub fn environment_line(&self) -> Option<String> {
        let set: Vec<String> = self
            .from_environment()
            .map(|setting| match &setting.origin {
                Origin::Environment {
                    variable,
                    over_file: true,
                    ..
                } => format!("{} ({variable}, over the file's value)", setting.key),
                Origin::Environment { variable, .. } => format!("{} ({variable})", setting.key),
                Origin::File => setting.key.clone(),
            })
            .collect();
        (!set.is_empty()).then(|| {
            format!(
                "configuration: the environment sets {}; it wins over the configuration file \
                 (joinform check-config shows every value and where it came from)",
                set.join(", ")
            )
        })
    }

    /// Whether some variable replaced a value the operator wrote in the file (one
    /// that differs from the shipped file's): `serve` then warns.
    pub fn environment_overrides_edited_file(&self) -> bool {
        self.settings.iter().any(|setting| {
            matches!(
                setting.origin,
                Origin::Environment {
                    over_edited: true,
                    ..
                }
            )
        })
    }
}

/// Every key with a value that is not a table (an array is one value), with it.
fn collect_leaves(dict: &Dict, prefix: &str, leaves: &mut Vec<(String, Value)>) {
    for (name, value) in dict {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        match value {
            Value::Dict(_, inner) => collect_leaves(inner, &key, leaves),
            other => leaves.push((key, other.clone())),
        }
    }
}

/// A value, compact: strings quoted, an array of scalars inline, an array of tables
/// counted (sections hold many lines; the routing table shows them).
fn show(value: Value) -> String {
    if let Value::Array(_, items) = &value
        && items.iter().any(|item| matches!(item, Value::Dict(..)))
    {
        return format!("[{} table(s)]", items.len());
    }
    value
        .deserialize::<serde_json::Value>()
        .map_or_else(|_| "(unprintable)".to_owned(), |json| json.to_string())
}

/// A listed key (or one inside it), or any key whose name says it holds a secret or a
/// digest (`…secret…`, `…password…`, `…sha256`), so that a secret setting added later
/// is hidden even if nobody remembers [`SECRET_KEYS`].
fn is_secret(key: &str) -> bool {
    let listed = SECRET_KEYS
        .iter()
        .any(|secret| key == *secret || key.starts_with(&format!("{secret}.")));
    listed
        || key.split('.').any(|name| {
            name.contains("secret") || name.contains("password") || name.ends_with("sha256")
        })
}

/// The `JOINFORM_*` variables set now, each as the key figment makes of it
/// (`server.listen`) and its name as set: what `Env::prefixed(..).split("__")` reads.
fn environment_keys() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(name, _)| {
            let name = name.into_string().ok()?;
            let rest = name
                .get(..ENV_PREFIX.len())
                .filter(|prefix| prefix.eq_ignore_ascii_case(ENV_PREFIX))
                .map(|_| &name[ENV_PREFIX.len()..])?;
            let key = rest.trim().replace("__", ".").to_ascii_lowercase();
            (key != "config").then_some((key, name))
        })
        .collect()
}

/// The variable that sets `key`, as the prefix and separator make it.
fn env_name(key: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        key.replace('.', "__").to_ascii_uppercase()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_token_digests_are_never_shown() {
        for key in [
            "spam.secret",
            "mail.smtp.password",
            "admin.tokens",
            "admin.metrics_token_sha256",
        ] {
            assert!(is_secret(key), "{key}");
        }
        // Named like a secret: hidden without being listed.
        for key in [
            "mail.smtp.client_password",
            "storage.backup_secret",
            "admin.readonly_token_sha256",
        ] {
            assert!(is_secret(key), "{key}");
        }
        for key in [
            "mail.smtp.username",
            "admin.listen",
            "spam.require_token",
            "spam.token_max_age",
        ] {
            assert!(!is_secret(key), "{key}");
        }
    }

    #[test]
    fn values_are_shown_compactly() {
        let value = |text: &str| text.parse::<Value>().unwrap();
        assert_eq!(show(value("0.0.0.0:8080")), "\"0.0.0.0:8080\"");
        assert_eq!(show(value("16384")), "16384");
        assert_eq!(
            show(value("[\"127.0.0.1\", \"::1\"]")),
            "[\"127.0.0.1\",\"::1\"]"
        );
        assert_eq!(show(value("[{name=\"a\"}, {name=\"b\"}]")), "[2 table(s)]");
    }
}
