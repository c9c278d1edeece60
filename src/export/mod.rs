//! Contacts out of joinform: the rows a filter selects, written as CSV, JSON or NDJSON
//! to any `Write` (a file, stdout, or an HTTP body in chunks) one row at a time, so a
//! large export never sits in memory.

pub mod cursor;
mod filter;
mod format;

use std::io::Write;

use rusqlite::{Connection, params_from_iter};

use crate::store::StoreError;

pub use filter::{Bound, ExportFilter, FilterError, StatusFilter, parse_country, parse_time};
pub use format::{COLUMNS, ExportFormat, ExportRow, neutralise};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot read the submissions")]
    Store(#[from] StoreError),
    #[error("cannot write the export")]
    Write(#[from] std::io::Error),
    #[error("cannot write the CSV")]
    Csv(#[from] csv::Error),
    #[error("cannot write the JSON")]
    Json(#[from] serde_json::Error),
}

impl From<rusqlite::Error> for ExportError {
    fn from(error: rusqlite::Error) -> Self {
        Self::Store(error.into())
    }
}

/// How the rows are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOptions {
    pub format: ExportFormat,
    /// CSV only: a UTF-8 byte-order mark first, so spreadsheet programs read UTF-8.
    pub excel: bool,
    /// The CSV columns after the standard ones: the configured extra fields, in order.
    pub extra_columns: Vec<String>,
}

/// What an export wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportSummary {
    pub rows: u64,
    /// The greatest id written, for the incremental checkpoint.
    pub last_id: Option<String>,
}

/// Writes every row `filter` selects to `out`, oldest first. One SELECT reads them, so
/// the export is one consistent snapshot even while the server writes (WAL).
///
/// `summary` counts rows as they are handed to `out`, so that an export that stops
/// early can still be audited with what may have left (rather more than less).
pub fn write_export(
    connection: &Connection,
    filter: &ExportFilter,
    options: &ExportOptions,
    out: impl Write,
    summary: &mut ExportSummary,
) -> Result<(), ExportError> {
    let (condition, values) = filter.to_sql();
    let mut statement = connection.prepare(&format!(
        "SELECT id, created_at, name, email, phone, city, country, section, language,
                message, status, extra
         FROM submissions WHERE {condition} ORDER BY id"
    ))?;
    let mut rows = statement.query(params_from_iter(values))?;
    let mut sink = format::Sink::start(out, options)?;
    while let Some(row) = rows.next()? {
        let extra: String = row.get(11)?;
        let record = ExportRow {
            id: row.get(0)?,
            created_at: row.get(1)?,
            name: row.get(2)?,
            email: row.get(3)?,
            phone: row.get(4)?,
            city: row.get(5)?,
            country: row.get(6)?,
            section: row.get(7)?,
            language: row.get(8)?,
            message: row.get(9)?,
            status: row.get(10)?,
            // The column is CHECKed to be valid JSON; an object is all we ever write.
            extra: serde_json::from_str(&extra).unwrap_or_default(),
        };
        sink.row(&record)?;
        summary.rows += 1;
        summary.last_id = Some(record.id);
    }
    sink.finish()?;
    Ok(())
}
