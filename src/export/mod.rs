//! Contacts out of joinform: the rows a filter selects, written as CSV, JSON or NDJSON
//! to any `Write` (a file, stdout, or an HTTP body in chunks) one row at a time, so a
//! large export never sits in memory. Sealed rows (`storage.seal_keys`) are written as
//! their ciphertext, or opened with the operator's key ([`Unsealer`]).

pub mod cursor;
mod filter;
mod format;
mod sealed;

use std::io::Write;

use rusqlite::Connection;

use crate::domain::SubmissionId;
use crate::store::{StoreError, submissions};

pub use filter::{
    Bound, ExportFilter, FilterError, StatusFilter, parse_country, parse_followup, parse_time,
};
pub use format::{COLUMNS, ExportFormat, SEALED_COLUMN, neutralise};
pub use sealed::{UnsealError, Unsealer};

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
    #[error(transparent)]
    Unseal(#[from] UnsealError),
}

/// How the rows are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOptions {
    pub format: ExportFormat,
    /// CSV only: a UTF-8 byte-order mark first, so spreadsheet programs read UTF-8.
    pub excel: bool,
    /// The CSV columns after the standard ones: the configured extra fields, in order.
    pub extra_columns: Vec<String>,
    /// Storage is sealed (`storage.seal_keys`): the `sealed` column is there even when
    /// no row selected is sealed, so the columns do not depend on the data.
    pub installation_sealed: bool,
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
/// Sealed rows are opened with `unsealer` into the normal columns (there is then no
/// `sealed` column); without one they keep their personal columns empty and carry
/// their ciphertext in the `sealed` column, which is there when
/// `options.installation_sealed` or a selected row is sealed.
///
/// `summary` counts rows as they are handed to `out`, so that an export that stops
/// early can still be audited with what may have left (rather more than less).
///
/// # Errors
/// [`ExportError`]; with `unsealer`, [`ExportError::Unseal`] for the first sealed row
/// it cannot open (try it first with [`check_unsealer`], before making a file).
pub fn write_export(
    connection: &Connection,
    filter: &ExportFilter,
    options: &ExportOptions,
    unsealer: Option<&Unsealer>,
    out: impl Write,
    summary: &mut ExportSummary,
) -> Result<(), ExportError> {
    let selection = filter.selection();
    let sealed_column = unsealer.is_none()
        && (options.installation_sealed
            || submissions::first_sealed(connection, &selection)?.is_some());
    let mut sink = format::Sink::start(out, options, sealed_column)?;
    submissions::for_each_selected(connection, &selection, |mut row| {
        if let Some(unsealer) = unsealer {
            unsealer.open(&mut row)?;
        }
        sink.row(&row)?;
        summary.rows += 1;
        summary.last_id = Some(row.id);
        Ok::<_, ExportError>(())
    })?;
    sink.finish()?;
    Ok(())
}

/// Tries `unsealer` on the first sealed row `filter` selects, so that a wrong
/// passphrase or key is found before an output file is made; `Ok` when no row selected
/// is sealed.
///
/// # Errors
/// [`ExportError::Unseal`], or the store's error.
pub fn check_unsealer(
    connection: &Connection,
    filter: &ExportFilter,
    unsealer: &Unsealer,
) -> Result<(), ExportError> {
    if let Some((id, sealed)) = submissions::first_sealed(connection, &filter.selection())? {
        unsealer.fields(id, &sealed)?;
    }
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
