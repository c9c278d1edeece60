//! Building the application: database, writer, listener and HTTP server, in the order
//! that lets a failure stop start-up with a clear message.

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpServer, web};

use std::sync::Arc;

use tokio::sync::{Notify, watch};

use crate::admin::{self, AdminState};
use crate::config::{ConfigError, RetentionSettings, Settings};
use crate::domain::FormSchema;
use crate::http::{self, AppState};
use crate::mail::templates::TemplateError;
use crate::mail::transport::TransportSetupError;
use crate::mail::{self, DeliveryWorker, Mailer, RetryPolicy, Templates};
use crate::retention;
use crate::routing::Routing;
use crate::secret::{SecretError, ServerSecret};
use crate::store::{Checkpointer, Database, StoreError, Writer, WriterThread};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("configuration error: {0}")]
    Config(#[from] ConfigError),
    #[error("mail set-up failed")]
    Mail(#[from] TransportSetupError),
    #[error("built-in mail templates")]
    Templates(#[from] TemplateError),
    #[error("cannot open the database {path}")]
    Database {
        path: std::path::PathBuf,
        #[source]
        source: StoreError,
    },
    #[error("the server secret")]
    Secret(#[from] SecretError),
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
    checkpointer: Checkpointer,
    worker: DeliveryWorker,
    admin_port: u16,
    admin_server: Server,
    retention: RetentionSettings,
}

impl Application {
    /// Binds its own listener, so tests can ask for port 0 and read the port back.
    pub fn build(settings: &Settings) -> Result<Self, StartupError> {
        // Everything a request or a delivery will need is parsed now, so that a bad
        // contact or sender stops start-up instead of failing later.
        let routing = Arc::new(Routing::from_settings(settings)?);
        let from = mail::sender(&settings.mail)?;
        let templates = Arc::new(Templates::load()?);
        let mailer = Arc::new(Mailer::from_settings(&settings.mail)?);

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
        let checkpointer = database.start_checkpointer().map_err(database_error)?;

        let address = settings.server.listen;
        let listen_error = |source| StartupError::Listen { address, source };
        let listener = TcpListener::bind(address).map_err(listen_error)?;
        let port = listener.local_addr().map_err(listen_error)?.port();

        let delivery = Arc::new(Notify::new());
        let worker = DeliveryWorker {
            database: database.clone(),
            writer: writer.clone(),
            routing: Arc::clone(&routing),
            mailer,
            templates,
            from: from.clone(),
            policy: RetryPolicy::from_settings(&settings.mail),
            wake: Arc::clone(&delivery),
        };
        let state = web::Data::new(AppState {
            writer: writer.clone(),
            schema: FormSchema::from_settings(&settings.form),
            max_body_bytes: settings.server.max_body_bytes,
            success_url: settings.form.success_url.clone(),
            routing,
            message_domain: from.email.domain().to_owned(),
            delivery,
        });

        // The admin listener (exports, erasure): a server of its own on its own port,
        // so its routes do not exist on the public listener at all.
        let admin_address = settings.admin.listen;
        let admin_listen_error = |source| StartupError::Listen {
            address: admin_address,
            source,
        };
        let admin_listener = TcpListener::bind(admin_address).map_err(admin_listen_error)?;
        let admin_port = admin_listener
            .local_addr()
            .map_err(admin_listen_error)?
            .port();
        let secret =
            ServerSecret::load(settings.spam.secret.as_deref(), &settings.storage.database)?;
        let admin_state = web::Data::new(AdminState::from_settings(
            settings,
            writer.clone(),
            database.clone(),
            secret,
        )?);
        let admin_server = HttpServer::new(move || {
            App::new()
                .app_data(admin_state.clone())
                .configure(admin::routes)
        })
        // Operators' traffic: one worker is plenty, and leaves the cores to sign-ups.
        .workers(1)
        .listen(admin_listener)
        .map_err(admin_listen_error)?
        .run();
        tracing::info!(address = %admin_address, port = admin_port, "admin listener ready");

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
            checkpointer,
            worker,
            admin_port,
            admin_server,
            retention: settings.retention.clone(),
        })
    }

    /// The admin listener's port (`admin.listen`; tests ask for port 0).
    pub fn admin_port(&self) -> u16 {
        self.admin_port
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Wakes the delivery worker, as a new submission does: used after rows are put
    /// back to pending from outside the server.
    pub fn delivery_waker(&self) -> Arc<Notify> {
        Arc::clone(&self.worker.wake)
    }

    /// Stops the server from elsewhere (tests, signal handling).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped (SIGINT/SIGTERM or the handle), then lets the delivery
    /// worker finish its attempt and the writer commit what it has queued.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let (stop_worker, stopping) = watch::channel(false);
        let worker = tokio::spawn(self.worker.run(stopping.clone()));
        let purge = tokio::spawn(retention::run_daily(
            self.writer.clone(),
            self.retention,
            stopping,
        ));
        let admin_handle = self.admin_server.handle();
        let admin = tokio::spawn(self.admin_server);
        let served = self.server.await;
        admin_handle.stop(true).await;
        let _ = admin.await;
        let _ = stop_worker.send(true);
        let _ = worker.await;
        let _ = purge.await;
        self.writer.stop();
        drop(self.writer);
        let thread = self.writer_thread;
        let checkpointer = self.checkpointer;
        // Joining blocks; do it off the async runtime.
        let _ = tokio::task::spawn_blocking(move || {
            thread.join();
            checkpointer.stop();
        })
        .await;
        served
    }
}
