//! The export formats. CSV follows RFC 4180 (the `csv` crate quotes as needed, lines end
//! in CRLF) with cells that a spreadsheet would run as a formula made inert; JSON is an
//! array of objects, NDJSON one object per line, with the same fields.
//!
//! Sealed storage adds one column, `sealed`, after the standard ones and before the
//! extra fields: a sealed row's personal fields as the ASCII-armoured OpenPGP message
//! (`-----BEGIN PGP MESSAGE-----`), its personal columns then empty. It is there when
//! the installation is sealed (`storage.seal_keys`) or the rows selected hold a sealed
//! one, and not when the export decrypts them (`--decrypt-key`), so an installation
//! that never sealed anything exports exactly as before.

use std::borrow::Cow;
use std::io::Write;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;
use strum::{Display, IntoStaticStr, VariantArray};

use crate::store::submissions::StoredSubmission;

use super::{ExportError, ExportOptions, FilterError};

/// The standard columns, in order; the configured extra fields follow. Documented in the
/// README: CRMs map them by name, so they never change (new ones are added at the end,
/// before the extra fields). The follow-up columns are empty (`null` in JSON) for a row
/// that is not an accepted sign-up; the consent columns are the proof of consent (the
/// text agreed to, its version, and for double opt-in when it was confirmed), empty
/// when the form did not send its text.
pub const COLUMNS: [&str; 18] = [
    "id",
    "created_at",
    "name",
    "email",
    "phone",
    "city",
    "country",
    "section",
    "language",
    "message",
    "status",
    "followup",
    "followup_at",
    "followup_by",
    "contacted_at",
    "consent_text",
    "consent_version",
    "confirmed_at",
];

/// The column of a sealed row's ciphertext, when there is one (see the module's text).
pub const SEALED_COLUMN: &str = "sealed";

const BYTE_ORDER_MARK: &[u8] = "\u{feff}".as_bytes();

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, IntoStaticStr, VariantArray, Display)]
#[strum(serialize_all = "snake_case")]
pub enum ExportFormat {
    #[default]
    Csv,
    Json,
    Ndjson,
}

impl ExportFormat {
    /// `csv`, `json` or `ndjson`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Json => "application/json",
            Self::Ndjson => "application/x-ndjson",
        }
    }
}

impl std::str::FromStr for ExportFormat {
    type Err = FilterError;

    /// One of the codes, as the command line and the query string give it.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        super::variant_named(text).ok_or_else(|| FilterError::BadFormat(text.to_owned()))
    }
}

/// The standard cells of a row, in [`COLUMNS`] order; `None` for a field left out.
fn standard(row: &StoredSubmission) -> [Option<Cow<'_, str>>; 18] {
    fn text(value: &Option<String>) -> Option<Cow<'_, str>> {
        value.as_deref().map(Cow::Borrowed)
    }
    [
        Some(Cow::Owned(row.id.to_string())),
        Some(Cow::Owned(row.created_at.to_string())),
        Some(Cow::Borrowed(&row.name)),
        Some(Cow::Borrowed(&row.email)),
        text(&row.phone),
        text(&row.city),
        Some(Cow::Borrowed(row.country.as_str())),
        Some(Cow::Borrowed(&row.section)),
        text(&row.language),
        text(&row.message),
        Some(Cow::Borrowed(row.status.as_str())),
        row.followup.map(|state| Cow::Borrowed(state.as_str())),
        row.followup_at.map(|at| Cow::Owned(at.to_string())),
        text(&row.followup_by),
        row.contacted_at.map(|at| Cow::Owned(at.to_string())),
        text(&row.consent_text),
        text(&row.consent_version),
        row.confirmed_at.map(|at| Cow::Owned(at.to_string())),
    ]
}

/// A row as a JSON object: the CSV's fields, the standard ones and then the configured
/// extra fields, each present (`null` when the visitor left it out); then any other
/// extra field the row holds (one configured when it was stored, since removed).
struct JsonRow<'a> {
    row: &'a StoredSubmission,
    extra_columns: &'a [String],
    sealed_column: bool,
}

impl<'a> JsonRow<'a> {
    fn new(row: &'a StoredSubmission, columns: &'a Columns) -> Self {
        Self {
            row,
            extra_columns: &columns.extra,
            sealed_column: columns.sealed,
        }
    }
}

impl Serialize for JsonRow<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (key, value) in COLUMNS.iter().zip(standard(self.row)) {
            map.serialize_entry(key, &value)?;
        }
        if self.sealed_column {
            let armoured = self.row.sealed.as_deref().map(crate::openpgp::armor);
            map.serialize_entry(SEALED_COLUMN, &armoured)?;
        }
        // Configuration forbids extra fields named like standard ones; a row stored
        // before that rule must not shadow a standard field.
        let shadows =
            |key: &str| COLUMNS.contains(&key) || (self.sealed_column && key == SEALED_COLUMN);
        let extra = |key: &&String| !shadows(key.as_str());
        for key in self.extra_columns.iter().filter(extra) {
            map.serialize_entry(key, self.row.extra.get(key).unwrap_or(&Value::Null))?;
        }
        for (key, value) in self.row.extra.iter().filter(|(key, _)| extra(key)) {
            if !self.extra_columns.contains(key) {
                map.serialize_entry(key, value)?;
            }
        }
        map.end()
    }
}

/// A cell a spreadsheet would read as a formula (or that hides one behind a control
/// character) gets a leading `'`, which spreadsheets show as text.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r' | '\0') => Cow::Owned(format!("'{cell}")),
        _ => Cow::Borrowed(cell),
    }
}

/// Where rows go, in the chosen format.
pub(super) enum Sink<W: Write> {
    Csv {
        // Boxed: the CSV writer carries its own state and buffer; the others are tiny.
        writer: Box<csv::Writer<W>>,
        columns: Columns,
    },
    Json {
        out: W,
        first: bool,
        columns: Columns,
    },
    Ndjson {
        out: W,
        columns: Columns,
    },
}

/// The columns after the standard ones: `sealed` or not, then the extra fields.
pub(super) struct Columns {
    pub(super) sealed: bool,
    pub(super) extra: Vec<String>,
}

impl<W: Write> Sink<W> {
    /// Writes what comes before the rows (the CSV header, the JSON array's bracket);
    /// with `sealed_column`, rows have the `sealed` column.
    pub(super) fn start(
        mut out: W,
        options: &ExportOptions,
        sealed_column: bool,
    ) -> Result<Self, ExportError> {
        let columns = Columns {
            sealed: sealed_column,
            extra: options.extra_columns.clone(),
        };
        Ok(match options.format {
            ExportFormat::Csv => {
                if options.excel {
                    out.write_all(BYTE_ORDER_MARK)?;
                }
                let mut writer = csv::WriterBuilder::new()
                    .terminator(csv::Terminator::CRLF)
                    .from_writer(out);
                let header = COLUMNS
                    .iter()
                    .copied()
                    .chain(columns.sealed.then_some(SEALED_COLUMN))
                    .chain(columns.extra.iter().map(String::as_str));
                writer.write_record(header)?;
                Self::Csv {
                    writer: Box::new(writer),
                    columns,
                }
            }
            ExportFormat::Json => {
                out.write_all(b"[")?;
                Self::Json {
                    out,
                    first: true,
                    columns,
                }
            }
            ExportFormat::Ndjson => Self::Ndjson { out, columns },
        })
    }

    pub(super) fn row(&mut self, row: &StoredSubmission) -> Result<(), ExportError> {
        match self {
            Self::Csv { writer, columns } => {
                let extras = columns.extra.iter().map(|name| match row.extra.get(name) {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::String(text)) => text.clone(),
                    Some(other) => other.to_string(),
                });
                let mut cells: Vec<String> = standard(row)
                    .into_iter()
                    .map(|cell| neutralise(&cell.unwrap_or_default()).into_owned())
                    .collect();
                if columns.sealed {
                    // joinform's own armour, kept byte for byte so that `gpg --decrypt`
                    // reads the cell: no visitor wrote it, so there is no formula to
                    // make inert (its leading dashes would get a quote).
                    cells.push(
                        row.sealed
                            .as_deref()
                            .map(crate::openpgp::armor)
                            .unwrap_or_default(),
                    );
                }
                cells.extend(extras.map(|cell| neutralise(&cell).into_owned()));
                writer.write_record(&cells)?;
            }
            Self::Json {
                out,
                first,
                columns,
            } => {
                out.write_all(if *first { b"\n" } else { b",\n" })?;
                *first = false;
                serde_json::to_writer(&mut *out, &JsonRow::new(row, columns))?;
            }
            Self::Ndjson { out, columns } => {
                serde_json::to_writer(&mut *out, &JsonRow::new(row, columns))?;
                out.write_all(b"\n")?;
            }
        }
        Ok(())
    }

    pub(super) fn finish(self) -> Result<(), ExportError> {
        match self {
            Self::Csv { mut writer, .. } => writer.flush()?,
            Self::Json { mut out, .. } => {
                out.write_all(b"\n]\n")?;
                out.flush()?;
            }
            Self::Ndjson { mut out, .. } => out.flush()?,
        }
        Ok(())
    }
}
