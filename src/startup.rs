//! Building the application: database, writer, listener and HTTP server, in the order
//! that lets a failure stop start-up with a clear message.

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpServer, web};

use crate::config::Settings;
use crate::domain::FormSchema;
use crate::http::{self, AppState};
use crate::store::{Database, StoreError, Writer, WriterThread};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot open the database {path}")]
    Database {
        path: std::path::PathBuf,
        #[source]
        source: StoreError,
    },
    #[error("cannot listen on {address}")]
    Listen {
        address: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A built, not yet running, joinform server.
pub struct Application {
    port: u16,
    server: Server,
    writer: Writer,
    writer_thread: WriterThread,
}

impl Application {
    /// Binds its own listener, so tests can ask for port 0 and read the port back.
    pub fn build(settings: &Settings) -> Result<Self, StartupError> {
        let database = Database::new(
            &settings.storage.database,
            Duration::from_millis(settings.storage.busy_timeout_ms),
        )
        .with_max_size_mib(settings.storage.max_size_mib);
        let database_error = |source| StartupError::Database {
            path: settings.storage.database.clone(),
            source,
        };
        database.prepare().map_err(database_error)?;
        let (writer, writer_thread) = database.start_writer().map_err(database_error)?;

        let address = settings.server.listen;
        let listen_error = |source| StartupError::Listen { address, source };
        let listener = TcpListener::bind(address).map_err(listen_error)?;
        let port = listener.local_addr().map_err(listen_error)?.port();

        let state = web::Data::new(AppState {
            writer: writer.clone(),
            schema: FormSchema::from_settings(&settings.form),
            max_body_bytes: settings.server.max_body_bytes,
            success_url: settings.form.success_url.clone(),
        });
        let mut server =
            HttpServer::new(move || App::new().app_data(state.clone()).configure(http::routes))
                .backlog(1024);
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        let server = server.listen(listener).map_err(listen_error)?.run();
        tracing::info!(%address, port, "joinform is listening");
        Ok(Self {
            port,
            server,
            writer,
            writer_thread,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server from elsewhere (tests, signal handling).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped (SIGINT/SIGTERM or the handle), then lets the writer
    /// commit what it has queued before returning.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        self.writer.stop();
        drop(self.writer);
        let thread = self.writer_thread;
        // Joining blocks; do it off the async runtime.
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        served
    }
}
