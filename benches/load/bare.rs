//! The yardsticks: actix-web with the same worker count as joinform (actix's default),
//! answering with a JSON body like joinform's; no routing, no storage, no logging.

use std::process::ExitCode;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use joinform::config::{ConfigSource, Settings};
use joinform::domain::{FormSchema, NewSubmission};
use joinform::http::body::read_form;
use joinform::http::join::preferred_language;
use joinform::store::{Database, SubmissionRecord, Writer};
use serde::Serialize;

/// The `store` server's database, in the folder it runs in.
pub const STORE_DATABASE: &str = "bare-store.db";

/// What a bare server does with the body.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// Decodes the urlencoded body into name/value pairs, nothing more.
    Pairs,
    /// Decodes and parses the body exactly as joinform's POST /join does.
    Parse,
    /// Parses as `Parse`, then commits the submission with joinform's writer.
    Store,
}

impl Mode {
    pub fn from_arg(arg: &str) -> Option<Self> {
        match arg {
            "pairs" => Some(Self::Pairs),
            "parse" => Some(Self::Parse),
            "store" => Some(Self::Store),
            _ => None,
        }
    }

    pub fn arg(self) -> &'static str {
        match self {
            Self::Pairs => "pairs",
            Self::Parse => "parse",
            Self::Store => "store",
        }
    }

    pub fn server_name(self) -> &'static str {
        match self {
            Self::Pairs => "the bare pairs server",
            Self::Parse => "the bare parse server",
            Self::Store => "the bare parse + store server",
        }
    }
}

#[derive(Serialize)]
struct Received {
    id: String,
    status: &'static str,
}

fn created() -> HttpResponse {
    HttpResponse::Created().json(Received {
        id: uuid::Uuid::now_v7().to_string(),
        status: "received",
    })
}

/// `web::Form` reads the body (up to 16 KiB, joinform's default limit) and decodes
/// it with serde_urlencoded into name/value pairs.
async fn join_pairs(form: web::Form<Vec<(String, String)>>) -> HttpResponse {
    let fields = form.into_inner();
    std::hint::black_box(&fields);
    created()
}

/// What joinform's handler needs to decode and parse, from the same settings.
struct ParseState {
    schema: FormSchema,
    max_body_bytes: usize,
    /// The `store` mode's writer, with the section and mail domain its records get.
    store: Option<StoreState>,
}

struct StoreState {
    writer: Writer,
    section: String,
    message_domain: String,
}

/// joinform's own body decoder and `NewSubmission::parse`, with the same limit,
/// schema and Accept-Language handling; then nothing is routed, stored or logged.
async fn join_parse(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<ParseState>,
) -> HttpResponse {
    let Ok(raw) = read_form(&request, payload, &state.schema, state.max_body_bytes).await else {
        return HttpResponse::BadRequest().finish();
    };
    let Ok(submission) = NewSubmission::parse(&raw, &state.schema, preferred_language(&request))
    else {
        return HttpResponse::UnprocessableEntity().finish();
    };
    let Some(store) = &state.store else {
        std::hint::black_box(&submission);
        return created();
    };
    let record = SubmissionRecord::new(submission, &store.section, &store.message_domain);
    match store.writer.admit(record).await {
        Ok(_) => created(),
        Err(_) => HttpResponse::ServiceUnavailable().finish(),
    }
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

pub fn serve(port: u16, mode: Mode) -> ExitCode {
    exit_when_parent_goes();
    // The same settings joinform loads in the same (empty) folder.
    let settings = match Settings::load(&ConfigSource::DefaultPath) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("load: the bare server cannot load joinform's settings: {error}");
            return ExitCode::FAILURE;
        }
    };
    // The writer and checkpointer threads, as joinform starts them; they live as
    // long as the process.
    let store = match mode {
        Mode::Store => match start_store(&settings) {
            Ok(store) => Some(store),
            Err(error) => {
                eprintln!("load: the bare store server cannot open its database: {error}");
                return ExitCode::FAILURE;
            }
        },
        Mode::Pairs | Mode::Parse => None,
    };
    let state = web::Data::new(ParseState {
        schema: settings.form.schema(),
        max_body_bytes: settings.server.max_body_bytes,
        store,
    });
    let served = actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || {
            let join = match mode {
                Mode::Pairs => web::post().to(join_pairs),
                Mode::Parse | Mode::Store => web::post().to(join_parse),
            };
            App::new()
                .app_data(state.clone())
                .route("/join", join)
                .route("/healthz", web::get().to(healthz))
        })
        .backlog(1024)
        .bind(("127.0.0.1", port))?
        .run()
        .await
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("load: the bare server failed: {error}");
            ExitCode::FAILURE
        }
    }
}

/// joinform's database with its PRAGMAs, schema, single writer and checkpointer, as
/// `joinform serve` opens it, in the current folder.
fn start_store(settings: &Settings) -> Result<StoreState, joinform::store::StoreError> {
    let database = Database::new(STORE_DATABASE, settings.storage.busy_timeout.get());
    database.prepare()?;
    let (writer, writer_thread) = database.start_writer()?;
    let checkpointer = database.start_checkpointer()?;
    // Never joined: the benchmark kills this process.
    std::mem::forget((writer_thread, checkpointer));
    Ok(StoreState {
        writer,
        section: settings
            .fallback
            .as_ref()
            .map(|fallback| fallback.name.clone())
            .unwrap_or_default(),
        message_domain: "example.org".to_owned(),
    })
}

/// The parent holds our standard input open; when it closes (the parent stopped us
/// or died), exit.
fn exit_when_parent_goes() {
    std::thread::spawn(|| {
        let mut sink = [0u8; 64];
        let mut stdin = std::io::stdin();
        while matches!(std::io::Read::read(&mut stdin, &mut sink), Ok(n) if n > 0) {}
        std::process::exit(0);
    });
}
