//! `[form]`: the fields a submission may carry and the built-in form page.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::{ConfigError, HumanDuration, within};
use crate::domain::{ConfirmationMode, ExtraFieldSpec, FieldName, FormSchema};

/// The form: its fields, where it leads and how the built-in page looks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FormSettings {
    /// Where a plain HTML form is redirected after a successful post: a path on this
    /// site or an http(s) URL.
    pub success_url: String,
    /// Whether the `consent` field must be given and true.
    pub consent_required: bool,
    /// Additional fields an organisation asks for, stored as JSON.
    pub extra_fields: Vec<ExtraFieldSettings>,
    /// The form page's language when neither `?lang=` nor Accept-Language names a
    /// shipped one.
    pub default_language: String,
    /// The privacy notice linked from the consent checkbox and from the page after a
    /// visitor withdraws; empty: no link.
    pub privacy_url: String,
    /// The form page's heading; empty: "Join us" in the page's language.
    pub title: String,
    /// The paragraph under the heading; empty: the built-in text in the page's language.
    pub intro: String,
    /// A logo shown above the heading; empty: none.
    pub logo_url: String,
    /// Links, focus rings and the button, as `#rrggbb`; must reach WCAG AA contrast.
    pub accent_color: String,
    /// What a visitor hears after an accepted sign-up: `off` (nothing), `notice` (one
    /// mail with a withdraw link) or `double_opt_in` (the section hears only once the
    /// visitor confirms). A section may set its own.
    pub confirmation: ConfirmationMode,
    /// How long a double opt-in sign-up waits for its visitor to confirm before the
    /// purge deletes it; also how long its confirmation link works.
    pub confirm_within: HumanDuration,
}

/// One extra field, as written in the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtraFieldSettings {
    /// The field's name in the form and the export: a-z, 0-9 and `_`.
    pub name: String,
    /// The longest value accepted, in characters (1..=2000).
    pub max_length: usize,
    /// Whether a submission without it is refused.
    #[serde(default)]
    pub required: bool,
}

/// Export column names other than the form's own fields: an extra field by one of these
/// names would make two CSV columns of one name.
pub const EXPORT_ONLY_COLUMNS: [&str; 12] = [
    "id",
    "created_at",
    "section",
    "status",
    "followup",
    "followup_at",
    "followup_by",
    "contacted_at",
    "consent_text",
    "consent_version",
    "confirmed_at",
    // Sealed storage's ciphertext (`export::SEALED_COLUMN`).
    "sealed",
];

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
            confirmation: ConfirmationMode::Off,
            confirm_within: HumanDuration::from_secs(7 * 86_400),
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

    /// Checks what serde cannot: the success URL, the extra fields and the page.
    ///
    /// # Errors
    /// The first value that is malformed or clashes with another, by its key.
    pub fn check(&self) -> Result<(), ConfigError> {
        check_url(&self.success_url)
            .map_err(|problem| ConfigError::bad("form.success_url", problem))?;
        self.check_extra_fields()?;
        self.check_page()?;
        let hour = std::time::Duration::from_secs(3600);
        let days_90 = std::time::Duration::from_secs(90 * 86_400);
        if self.confirm_within.get() < hour || self.confirm_within.get() > days_90 {
            return Err(ConfigError::bad(
                "form.confirm_within",
                "must be between 1h and 90d",
            ));
        }
        Ok(())
    }

    /// Each extra field: a valid name, used once and by no export column, and a length.
    fn check_extra_fields(&self) -> Result<(), ConfigError> {
        let mut seen = HashSet::new();
        for (index, field) in self.extra_fields.iter().enumerate() {
            let key = format!("form.extra_fields[{index}]");
            FieldName::parse_extra(&field.name)
                .map_err(|problem| ConfigError::bad(format!("{key}.name"), problem.to_string()))?;
            if !seen.insert(field.name.as_str()) {
                return Err(ConfigError::bad(
                    format!("{key}.name"),
                    format!("`{}` is declared twice", field.name),
                ));
            }
            if EXPORT_ONLY_COLUMNS.contains(&field.name.as_str()) {
                return Err(ConfigError::bad(
                    format!("{key}.name"),
                    format!("`{}` is the name of an export column", field.name),
                ));
            }
            within(format!("{key}.max_length"), field.max_length, 1..=2000)?;
        }
        Ok(())
    }

    /// The built-in page: its language, links, texts and colour.
    fn check_page(&self) -> Result<(), ConfigError> {
        if !crate::i18n::shipped().any(|tag| tag == self.default_language) {
            let shipped: Vec<&str> = crate::i18n::shipped().collect();
            return Err(ConfigError::bad(
                "form.default_language",
                format!(
                    "must be one of the shipped languages: {}",
                    shipped.join(", ")
                ),
            ));
        }
        for (key, url) in [
            ("form.privacy_url", &self.privacy_url),
            ("form.logo_url", &self.logo_url),
        ] {
            if !url.is_empty() {
                check_url(url).map_err(|problem| ConfigError::bad(key, problem))?;
            }
        }
        for (key, text, max) in [
            ("form.title", &self.title, 200),
            ("form.intro", &self.intro, 1000),
        ] {
            if text.chars().count() > max || text.chars().any(char::is_control) {
                return Err(ConfigError::bad(
                    key,
                    format!("must be at most {max} characters on one line"),
                ));
            }
        }
        match crate::colour::contrast(&self.accent_color, crate::colour::BACKGROUND) {
            None => Err(ConfigError::bad(
                "form.accent_color",
                "must be a colour written #rrggbb",
            )),
            Some(ratio) if ratio < crate::colour::AA_TEXT => Err(ConfigError::bad(
                "form.accent_color",
                format!(
                    "contrast with white is {ratio:.2}:1; WCAG AA needs 4.5:1 (choose a darker colour)"
                ),
            )),
            Some(_) => Ok(()),
        }
    }
}

/// A relative path on this site (`/join/thanks`) or an absolute http(s) URL.
fn check_url(url: &str) -> Result<(), &'static str> {
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
