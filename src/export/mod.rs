//! Contacts out of joinform: the rows a filter selects, written as CSV, JSON or NDJSON
//! to any `Write` (a file, stdout, or an HTTP body in chunks) one row at a time, so a
//! large export never sits in memory.

pub mod cursor;
mod filter;
mod format;

use std::io::Write;

use rusqlite::Connection;

use crate::domain::SubmissionId;
use crate::store::{StoreError, submissions};

pub use filter::{
    Bound, ExportFilter, FilterError, StatusFilter, parse_country, parse_followup, parse_time,
};
pub use format::{COLUMNS, ExportFormat, neutralise};

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

/// How the rows are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOptions {
    pub format: ExportFormat,
    /// CSV only: a UTF-8 byte-order mark first, so spreadsheet programs read UTF-8.
    pub excel: bool,
    /// The CSV columns after the standard ones: the configured extra fields, in order.
    pub extra_columns: Vec<String>,
}

impl ExportOptions {
    /// Refuses options that cannot all be honoured, rather than ignore one.
    ///
    /// # Errors
    /// [`FilterError::ExcelWithoutCsv`] for `excel` with JSON or NDJSON.
    pub fn check(&self) -> Result<(), FilterError> {
        if self.excel && self.format != ExportFormat::Csv {
            return Err(FilterError::ExcelWithoutCsv);
        }
        Ok(())
    }
}

/// What an export wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportSummary {
    pub rows: u64,
    /// The greatest id written, for the incremental checkpoint.
    pub last_id: Option<SubmissionId>,
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
    let mut sink = format::Sink::start(out, options)?;
    submissions::for_each_selected(connection, &filter.selection(), |row| {
        sink.row(&row)?;
        summary.rows += 1;
        summary.last_id = Some(row.id);
        Ok::<_, ExportError>(())
    })?;
    sink.finish()?;
    Ok(())
}

/// The variant whose code (its strum name) is `text`, for the `FromStr` of the filter
/// and format enums, whose errors name the text and the codes allowed.
fn variant_named<T>(text: &str) -> Option<T>
where
    T: strum::VariantArray + Copy + Into<&'static str>,
{
    T::VARIANTS
        .iter()
        .copied()
        .find(|&variant| variant.into() == text)
}
