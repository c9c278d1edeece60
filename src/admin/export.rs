//! GET /admin/submissions: the export, streamed as it is read. Sealed rows are given as
//! their ciphertext: the server holds no key to open them (`joinform export
//! --decrypt-key` does that on the operator's machine).

use std::io::{self, Write};

use actix_web::http::header;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::domain::Timestamp;
use crate::export::{
    Bound, ExportFilter, ExportFormat, ExportOptions, ExportSummary, parse_country, parse_followup,
    parse_time, write_export,
};
use crate::store::audit::{self, Action};

use super::auth::{AdminToken, authenticate};
use super::{AdminError, AdminState};

/// Bytes gathered before a chunk goes to the client.
const CHUNK_BYTES: usize = 32 * 1024;
/// Chunks in flight between the reading thread and the client.
const CHUNKS_IN_FLIGHT: usize = 8;

/// The filters, as query parameters. Anything else is refused, so a misspelt filter
/// cannot silently widen an export.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportQuery {
    format: Option<String>,
    section: Option<String>,
    country: Option<String>,
    status: Option<String>,
    since: Option<String>,
    until: Option<String>,
    excel: Option<bool>,
    followup: Option<String>,
    overdue: Option<String>,
}

#[tracing::instrument(name = "admin_export", skip_all, fields(actor = tracing::field::Empty, audit_id = tracing::field::Empty))]
pub(super) async fn submissions(
    request: HttpRequest,
    state: web::Data<AdminState>,
) -> Result<HttpResponse, AdminError> {
    let token = authenticate(&request, &state.tokens, &state.limiter)?;
    let span = tracing::Span::current();
    span.record("actor", token.name.as_str());
    let query = web::Query::<ExportQuery>::from_query(request.query_string())
        .map_err(|error| AdminError::BadRequest(error.to_string()))?
        .into_inner();
    let format = match &query.format {
        Some(text) => text.parse()?,
        None => format_from_accept(&request),
    };
    let filter = filter_for(token, &query, state.overdue_before(Timestamp::now()))?;
    let options = ExportOptions {
        format,
        excel: query.excel.unwrap_or(false),
        extra_columns: state.extra_columns.clone(),
        installation_sealed: state.routing.is_sealed(),
    };
    options.check()?;

    // The audit row comes first: an export that cannot be recorded does not happen.
    let mut details = filter.details();
    details["format"] = format.as_str().into();
    details["via"] = "http".into();
    details["decrypted"] = false.into();
    let actor = token.name.clone();
    let audit_id = state
        .writer
        .run(move |connection| audit::begin(connection, &actor, Action::Export, &details))
        .await
        .map_err(AdminError::AuditUnavailable)?;
    span.record("audit_id", audit_id.0);

    let database = state.database.clone();
    let connection = web::block(move || database.connect())
        .await
        .map_err(|_| AdminError::Write(crate::store::WriteFailure::Stopped))??;
    let (sender, receiver) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let reading = tokio::task::spawn_blocking({
        let span = span.clone();
        move || {
            let _entered = span.enter();
            let mut out = ChunkWriter {
                buffer: Vec::with_capacity(CHUNK_BYTES),
                sender,
            };
            let mut summary = ExportSummary::default();
            let outcome =
                write_export(&connection, &filter, &options, None, &mut out, &mut summary);
            if let Err(error) = &outcome {
                tracing::warn!(%error, cause = ?std::error::Error::source(error),
                    rows = summary.rows, "export stopped early");
                // Tell the client the body is incomplete: the connection is cut.
                let _ = out
                    .sender
                    .blocking_send(Err(io::Error::other("export failed")));
            }
            (summary.rows, outcome.is_ok())
        }
    });
    let writer = state.writer.clone();
    actix_web::rt::spawn(async move {
        let (rows, completed) = reading.await.unwrap_or((0, false));
        let finished = writer
            .run(move |connection| audit::finish(connection, audit_id, rows, completed))
            .await;
        if let Err(failure) = finished {
            tracing::error!(%failure, "export done but its audit row not completed");
        } else {
            tracing::info!(rows, completed, "export finished");
        }
    });

    let body = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    });
    let file_name = format!(
        "joinform-{}.{}",
        Timestamp::now()
            .to_string()
            .chars()
            .filter(char::is_ascii_digit)
            .take(14)
            .collect::<String>(),
        if format == ExportFormat::Ndjson {
            "ndjson"
        } else {
            format.as_str()
        }
    );
    Ok(HttpResponse::Ok()
        .content_type(format.content_type())
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{file_name}\""),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .streaming(body))
}

/// The query's filters within the token's scope: a scoped token that names no section
/// gets its own sections, and naming another is refused. `overdue_before` is what
/// `overdue=true` selects before.
fn filter_for(
    token: &AdminToken,
    query: &ExportQuery,
    overdue_before: Timestamp,
) -> Result<ExportFilter, AdminError> {
    let sections = match (&query.section, &token.sections) {
        (Some(section), _) if !token.may_see(section) => {
            return Err(AdminError::SectionOutOfScope);
        }
        (Some(section), _) => Some(vec![section.clone()]),
        (None, scope) => scope.clone(),
    };
    let filter = ExportFilter {
        sections,
        country: query.country.as_deref().map(parse_country).transpose()?,
        status: query.status.as_deref().unwrap_or("accepted").parse()?,
        since: query
            .since
            .as_deref()
            .map(|t| parse_time(t, Bound::Since))
            .transpose()?,
        until: query
            .until
            .as_deref()
            .map(|t| parse_time(t, Bound::Until))
            .transpose()?,
        after_id: None,
        before_id: None,
        followup: query.followup.as_deref().map(parse_followup).transpose()?,
        overdue_before: super::flag("overdue", query.overdue.as_deref())?.then_some(overdue_before),
    };
    filter.check()?;
    Ok(filter)
}

/// The first format the client's Accept header names that we write; CSV otherwise.
fn format_from_accept(request: &HttpRequest) -> ExportFormat {
    crate::http::negotiate::accepted_media_types(request)
        .into_iter()
        .find_map(
            |mime| match (mime.type_().as_str(), mime.subtype().as_str()) {
                ("application", "json") => Some(ExportFormat::Json),
                ("application", "x-ndjson") => Some(ExportFormat::Ndjson),
                ("text", "csv") => Some(ExportFormat::Csv),
                _ => None,
            },
        )
        .unwrap_or(ExportFormat::Csv)
}

/// Hands the export to the response body in chunks. A client that went away makes the
/// next write fail, which stops the export.
struct ChunkWriter {
    buffer: Vec<u8>,
    sender: mpsc::Sender<Result<Bytes, io::Error>>,
}

impl ChunkWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(CHUNK_BYTES),
        ));
        self.sender
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= CHUNK_BYTES {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}
