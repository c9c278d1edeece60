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
use crate::followup::links::LinkKey;
use crate::followup::{self, FollowupMails, Scheduler};
use crate::http::{self, AppState};
use crate::mail::templates::TemplateError;
use crate::mail::transport::TransportSetupError;
use crate::mail::{self, DeliveryWorker, Mailer, RetryPolicy, Templates};
use crate::metrics::Metrics;
use crate::retention;
use crate::routing::Routing;
use crate::sealing::Sealer;
use crate::secret::{SecretError, ServerSecret};
use crate::spam::{ClientHasher, FloodGauge, RateLimiter, SpamChecks, TrustedProxies};
use crate::store::submissions::{self, SealingCounts};
use crate::store::{AdmissionRules, Checkpointer, Checkpoints, StoreError, Writer, WriterThread};
use crate::visitor::{VisitorLinkKey, VisitorLinks, VisitorMails};

/// How often rate limiters forget clients whose quota is full again, and the day key
/// for client addresses is replaced once its day is over.
const LIMITER_SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// Time an idle delivery worker gets to notice the stop when the requests in flight
/// have used up the whole shutdown timeout, so it is not cut off (with a warning)
/// before it could look.
const WORKER_STOP_GRACE: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    // The cause is the source, not part of this message: printers that walk the
    // chain would otherwise say it twice.
    #[error("configuration error")]
    Config(#[from] ConfigError),
    #[error("mail set-up failed")]
    Mail(#[from] TransportSetupError),
    #[error("built-in mail templates")]
    Templates(#[from] TemplateError),
    // Quoted, not a source: TranslationError's message already quotes its own cause.
    #[error("built-in form translations: {0}")]
    Translations(crate::i18n::TranslationError),
    #[error("server secret")]
    Secret(#[from] SecretError),
    #[error("cannot open the database {path}")]
    Database {
        path: std::path::PathBuf,
        #[source]
        source: StoreError,
    },
    /// A sealed configuration on a database that still holds sign-ups in clear.
    #[error(
        "storage.seal_keys is set, but {clear} sign-ups are stored in clear: run `joinform seal` first"
    )]
    ClearRows { clear: u64 },
    /// A clear configuration on a database holding sealed sign-ups.
    #[error(
        "this database is sealed ({sealed} sign-ups are stored encrypted): set storage.seal_keys \
         to the keys it was sealed with"
    )]
    SealedDatabase { sealed: u64 },
    #[error("cannot listen on {address}")]
    Listen {
        address: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Resolves at the first SIGTERM or SIGINT (Ctrl-C where there are no Unix signals),
/// for [`Application::run_until`]. Call it before the listeners open, so a signal that
/// comes early is not met by the default action (an immediate exit).
///
/// Both signals stop gracefully: a container runtime sends SIGTERM, a person at a
/// terminal presses Ctrl-C, and neither should cut off a visitor's sign-up.
///
/// # Errors
/// When the signal handlers cannot be installed; must run inside the async runtime.
pub fn stop_signal() -> std::io::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        Ok(async move {
            let name = tokio::select! {
                _ = terminate.recv() => "SIGTERM",
                _ = interrupt.recv() => "SIGINT",
            };
            tracing::info!(signal = name, "stopping: finishing the requests in flight");
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("stopping: finishing the requests in flight");
        })
    }
}

/// A built, not yet running, joinform server.
pub struct Application {
    port: u16,
    server: Server,
    writer: Writer,
    writer_thread: WriterThread,
    /// `None` when Litestream checkpoints (`storage.litestream`).
    checkpointer: Option<Checkpointer>,
    worker: DeliveryWorker,
    /// The follow-up scheduler, when follow-up is on.
    scheduler: Option<Scheduler>,
    limiters: [Arc<RateLimiter>; 5],
    client_hasher: Arc<ClientHasher>,
    metrics: Arc<Metrics>,
    shutdown_timeout: Duration,
    admin_port: u16,
    admin_server: Server,
    retention: RetentionSettings,
    /// `form.confirm_within`: unconfirmed sign-ups are purged after it.
    confirm_within: crate::config::HumanDuration,
}

impl Application {
    /// Binds its own listener, so tests can ask for port 0 and read the port back.
    pub fn build(settings: &Settings) -> Result<Self, StartupError> {
        // Everything a request or a delivery will need is parsed now, so that a bad
        // contact or sender stops start-up instead of failing later.
        let routing = Arc::new(Routing::from_settings(settings)?);
        let from = mail::sender(&settings.mail)?;
        let templates = Arc::new(Templates::load()?);
        crate::i18n::check().map_err(StartupError::Translations)?;
        let mailer = Arc::new(Mailer::from_settings(&settings.mail)?);

        let database = settings.storage.database();
        let database_error = |source| StartupError::Database {
            path: settings.storage.database.clone(),
            source,
        };
        database.prepare().map_err(database_error)?;
        let (counts, replicated) = database
            .connect()
            .and_then(|connection| {
                Ok((
                    submissions::sealing_counts(&connection)?,
                    crate::store::schema::has_litestream_tables(&connection)?,
                ))
            })
            .map_err(database_error)?;
        log_checkpoints(database.checkpoints(), replicated);
        check_sealing(routing.is_sealed(), counts)?;
        log_keys(&routing, std::time::SystemTime::now());
        log_unreachable_routing(&routing, &from, settings.mail.transport);
        let secret = ServerSecret::load(settings.spam.expose_secret(), &settings.storage.database)?;
        let spam = SpamChecks::from_settings(settings, &secret);
        let client_hasher = Arc::new(ClientHasher::new()?);
        let join_limiter = Arc::new(RateLimiter::from_settings(&settings.rate_limit));
        // Like challenges, form tokens (one HMAC each) have no ceiling for everyone:
        // in a flood the form page must still hand real visitors theirs.
        let token_limiter = Arc::new(RateLimiter::per_client_only(&settings.rate_limit));
        let challenge_limiter = Arc::new(RateLimiter::per_client_only(&settings.rate_limit));
        let flood = Arc::new(FloodGauge::new(
            settings.spam.pow_baseline_per_minute,
            settings.spam.pow_maxnumber,
            settings.spam.pow_peak_maxnumber,
        ));
        let followup_limiter = Arc::new(http::followup_page::limiter(&settings.rate_limit));
        let visitor_limiter = Arc::new(http::visitor_pages::limiter(&settings.rate_limit));
        let metrics = Arc::new(Metrics::new());
        metrics.watch_flood(Arc::clone(&flood));
        let (writer, writer_thread) = database.start_writer().map_err(database_error)?;
        let checkpointer = database.start_checkpointer().map_err(database_error)?;

        let address = settings.server.listen;
        let listen_error = |source| StartupError::Listen { address, source };
        let listener = TcpListener::bind(address).map_err(listen_error)?;
        let port = listener.local_addr().map_err(listen_error)?.port();

        let delivery = Arc::new(Notify::new());
        let message_domain = from.email.domain().to_owned();
        // Follow-up (when on, `server.public_url` is set: the settings' check says so):
        // notifications carry each sign-up's link, and the scheduler queues reminders,
        // escalations and digests, which the worker builds with `FollowupMails`.
        let (followup_mails, scheduler) = match settings.server.public_url() {
            Some(public_url) if settings.followup.is_enabled(&settings.server) => {
                let links = followup::Links::new(
                    LinkKey::from_secret(&secret),
                    public_url,
                    settings.followup.link_ttl.get(),
                );
                let mails: Arc<dyn mail::FollowupMail> = Arc::new(FollowupMails::new(
                    &settings.followup,
                    Arc::clone(&routing),
                    Arc::clone(&templates),
                    links,
                ));
                let scheduler = Scheduler {
                    plan: Arc::new(followup::Plan::new(
                        &settings.followup,
                        &routing,
                        &message_domain,
                    )),
                    writer: writer.clone(),
                    every: settings.followup.check_every.get(),
                    wake: Arc::clone(&delivery),
                };
                (Some(mails), Some(scheduler))
            }
            _ => (None, None),
        };
        // Whether any section mails its visitors: only then are their addresses hashed
        // for the one mail a day, and their mails built.
        let visitors_mailed = routing
            .sections_and_fallback()
            .any(|section| section.confirmation != crate::domain::ConfirmationMode::Off);
        // Their mails are built by the worker when sent; without `server.public_url`
        // there are no links to put in them (the settings' check refuses that then).
        // A sealed installation's are built by the requests, which still hold the clear
        // sign-up, and kept in memory until the worker sends them.
        let held_visitor_mails = Arc::new(crate::visitor::HeldInMemory::new(
            crate::visitor::held::DEFAULT_LIMIT,
        ));
        let visitor_builder = visitors_mailed
            .then(|| VisitorLinks::new(settings, VisitorLinkKey::from_secret(&secret)))
            .flatten()
            .map(|links| {
                Arc::new(
                    VisitorMails::new(Arc::clone(&routing), links)
                        .with_held(Arc::clone(&held_visitor_mails)),
                )
            });
        let sealed_visitor_mails = visitor_builder
            .as_ref()
            .filter(|_| routing.is_sealed())
            .map(|builder| {
                crate::visitor::SealedVisitorMails::new(
                    Arc::clone(builder),
                    from.clone(),
                    held_visitor_mails,
                    &message_domain,
                )
            });
        let visitor_mails = visitor_builder.map(|builder| builder as Arc<dyn mail::VisitorMail>);
        let sealer = Sealer::new(
            Arc::clone(&routing),
            Arc::clone(&templates),
            from.clone(),
            followup_mails.clone(),
            secret.clone(),
        );
        let worker = DeliveryWorker {
            started: crate::domain::Timestamp::now(),
            database: database.clone(),
            writer: writer.clone(),
            routing: Arc::clone(&routing),
            mailer,
            templates,
            from: from.clone(),
            policy: RetryPolicy::from_settings(&settings.mail),
            wake: Arc::clone(&delivery),
            metrics: Arc::clone(&metrics),
            followup: followup_mails,
            visitor: visitor_mails,
            visitor_mails_per_hour: settings.rate_limit.visitor_mails_per_hour,
            notifications_per_section_per_hour: settings
                .mail
                .max_notifications_per_section_per_hour,
        };
        let schema = settings.form.schema().with_control_fields(
            spam.fields()
                .into_iter()
                .chain([http::form_page::LANGUAGE_FIELD]),
        );
        let page = http::form_page::FormPage::from_settings(settings, &schema);
        let followup_pages = settings.followup_enabled().then(|| {
            http::followup_page::FollowupPages::new(
                settings,
                crate::followup::links::LinkKey::from_secret(&secret),
                database.clone(),
                Arc::clone(page.layout()),
            )
        });
        // The visitor's pages exist exactly when visitors are mailed: their links come
        // from those mails, and /my-data's answer is one (see visitor_pages).
        let visitor_pages = visitors_mailed
            .then(|| {
                http::visitor_pages::VisitorPages::new(
                    settings,
                    &secret,
                    database.clone(),
                    Arc::clone(page.layout()),
                )
            })
            .flatten();
        let state = web::Data::new(AppState {
            writer: writer.clone(),
            schema,
            max_body_bytes: settings.server.max_body_bytes,
            success_url: settings.form.success_url.clone(),
            routing,
            message_domain,
            delivery: Arc::clone(&delivery),
            trusted_proxies: TrustedProxies::new(
                settings.server.trusted_proxies.clone(),
                settings.server.forwarding_header,
            ),
            join_limiter: Arc::clone(&join_limiter),
            token_limiter: Arc::clone(&token_limiter),
            challenge_limiter: Arc::clone(&challenge_limiter),
            flood,
            followup_limiter: Arc::clone(&followup_limiter),
            spam,
            client_hasher: Arc::clone(&client_hasher),
            admission_rules: AdmissionRules {
                duplicate_window: settings.spam.duplicate_window.get(),
                per_email_per_day: settings.rate_limit.per_email_per_day,
                keep_spam: settings.spam.keep,
            },
            metrics: Arc::clone(&metrics),
            page,
            followup: followup_pages,
            visitor_addresses: visitors_mailed
                .then(|| crate::visitor::AddressHasher::from_secret(&secret)),
            visitor: visitor_pages,
            visitor_limiter: Arc::clone(&visitor_limiter),
            sealer,
            sealed_visitor_mails,
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
        let admin_state = web::Data::new(AdminState::from_settings(
            settings,
            writer.clone(),
            database.clone(),
            secret.clone(),
            Arc::clone(&metrics),
            Arc::clone(&delivery),
        )?);
        let admin_server = HttpServer::new(move || {
            App::new()
                .app_data(admin_state.clone())
                .wrap(actix_web::middleware::from_fn(
                    http::request_log::log_request,
                ))
                .configure(admin::routes)
        })
        // Operators' traffic: one worker is plenty, and leaves the cores to sign-ups.
        .workers(1)
        // Signals are handled once, in `run_until`: actix's own handler in each server
        // let the idle one stop the whole runtime while the other was still serving.
        .disable_signals()
        .shutdown_timeout(settings.server.shutdown_timeout.get().as_secs())
        .listen(admin_listener)
        .map_err(admin_listen_error)?
        .run();
        tracing::info!(address = %admin_address, port = admin_port, "admin listener ready");

        let allowed_origins = settings.server.allowed_origins.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .wrap(http::cors(&allowed_origins))
                // Outermost: every answer is logged, CORS preflights included.
                .wrap(actix_web::middleware::from_fn(
                    http::request_log::log_request,
                ))
                .configure(http::routes)
        })
        .backlog(1024)
        .disable_signals()
        .shutdown_timeout(settings.server.shutdown_timeout.get().as_secs());
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
            scheduler,
            limiters: [
                join_limiter,
                token_limiter,
                challenge_limiter,
                followup_limiter,
                visitor_limiter,
            ],
            client_hasher,
            metrics,
            shutdown_timeout: settings.server.shutdown_timeout.get(),
            admin_port,
            admin_server,
            retention: settings.retention.clone(),
            confirm_within: settings.form.confirm_within,
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

    /// The counters `/metrics` shows.
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    /// Stops the public server from elsewhere (tests); `run_until` then stops the admin
    /// listener too.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until the public server is stopped through [`Application::handle`]; see
    /// [`Application::run_until`].
    ///
    /// # Errors
    /// When the public server fails.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(std::future::pending()).await
    }

    /// Serves until `stop` resolves (in the binary: [`stop_signal`]) or the public server
    /// is stopped through its handle. Then both listeners stop accepting connections
    /// at once and finish the requests they have started, for at most
    /// `server.shutdown_timeout`; the delivery worker is given what is left of that
    /// time to finish a send, and the writer commits what it has queued.
    ///
    /// # Errors
    /// When the public server fails.
    pub async fn run_until(self, stop: impl Future<Output = ()>) -> std::io::Result<()> {
        let (stop_worker, stopping) = watch::channel(false);
        let mut worker = tokio::spawn(self.worker.run(stopping.clone()));
        // Stopped with the worker; a round under way is one writer job and finishes.
        let scheduler = self
            .scheduler
            .map(|scheduler| tokio::spawn(scheduler.run(stopping.clone())));
        let purge = tokio::spawn(retention::run_daily(
            self.writer.clone(),
            self.retention,
            self.confirm_within,
            stopping,
        ));
        let limiters = self.limiters;
        let client_hasher = self.client_hasher;
        let sweeper = tokio::spawn(async move {
            let mut interval = tokio::time::interval(LIMITER_SWEEP_INTERVAL);
            loop {
                interval.tick().await;
                for limiter in &limiters {
                    limiter.sweep();
                }
                if client_hasher.rotate_if_due().is_err() {
                    // The old key stays until a random key can be drawn; hashing
                    // retries at the next sign-up, the sweep in a minute.
                    tracing::error!("the day's client-address key could not be replaced");
                }
            }
        });
        let public_handle = self.server.handle();
        let admin_handle = self.admin_server.handle();
        let mut public = tokio::spawn(self.server);
        let admin = tokio::spawn(self.admin_server);
        let mut served = None;
        tokio::select! {
            () = stop => {}
            ended = &mut public => served = Some(ended),
        }
        let deadline = tokio::time::Instant::now() + self.shutdown_timeout;
        // Both at once, gracefully: each stops accepting, lets the requests it has
        // started (bodies still arriving included) finish, and closes idle
        // connections. A request still unfinished at the timeout is cut off.
        tokio::join!(public_handle.stop(true), admin_handle.stop(true));
        let served = match served {
            Some(ended) => ended,
            None => public.await,
        }
        .unwrap_or_else(|joined| Err(std::io::Error::other(joined)));
        let _ = admin.await;
        sweeper.abort();
        let _ = stop_worker.send(true);
        // A send under way is given what is left of the shutdown timeout to finish and
        // be recorded, so the whole stop fits in it (an orchestrator's kill comes after
        // its own grace period). If it is cut short, its row is still pending and is
        // sent after the restart.
        let worker_deadline = deadline.max(tokio::time::Instant::now() + WORKER_STOP_GRACE);
        if tokio::time::timeout_at(worker_deadline, &mut worker)
            .await
            .is_err()
        {
            worker.abort();
            tracing::warn!("the delivery worker did not stop in time; its row stays pending");
        }
        let _ = purge.await;
        if let Some(scheduler) = scheduler {
            let _ = scheduler.await;
        }
        self.writer.stop();
        drop(self.writer);
        let thread = self.writer_thread;
        let checkpointer = self.checkpointer;
        // Joining blocks; do it off the async runtime.
        let _ = tokio::task::spawn_blocking(move || {
            thread.join();
            if let Some(checkpointer) = checkpointer {
                checkpointer.stop();
            }
        })
        .await;
        served
    }
}

/// Says who checkpoints the WAL, and warns when Litestream's tables are in a database
/// joinform checkpoints itself: if Litestream runs, each of joinform's TRUNCATE
/// checkpoints (after an erasure, at shutdown) waits the busy timeout for its read lock.
fn log_checkpoints(checkpoints: Checkpoints, replicated: bool) {
    tracing::info!("WAL checkpoints: {}", checkpoints.describe());
    if replicated && checkpoints == Checkpoints::Joinform {
        tracing::warn!(
            "this database has Litestream's tables (_litestream_seq): if Litestream \
             replicates it, set storage.litestream = true (JOINFORM_STORAGE__LITESTREAM), \
             or every erasure and the shutdown wait busy_timeout for Litestream's read \
             lock before their WAL truncation fails"
        );
    }
}

/// Refuses a configuration that does not match how the database stores sign-ups:
/// sealed settings over clear rows (they would stay readable), or clear settings over
/// sealed rows (the server could not match addresses or send their notifications).
///
/// # Errors
/// [`StartupError::ClearRows`] and [`StartupError::SealedDatabase`], naming the fix.
fn check_sealing(sealed: bool, counts: SealingCounts) -> Result<(), StartupError> {
    match (sealed, counts) {
        (true, SealingCounts { clear, .. }) if clear > 0 => Err(StartupError::ClearRows { clear }),
        (false, SealingCounts { sealed, .. }) if sealed > 0 => {
            Err(StartupError::SealedDatabase { sealed })
        }
        _ => Ok(()),
    }
}

/// Logs each OpenPGP key that expires within 30 days of `now` (a warning each), and
/// that storage is sealed, to which keys.
fn log_keys(routing: &Routing, now: std::time::SystemTime) {
    for line in routing.expiring_keys(now) {
        tracing::warn!("{line}");
    }
    if routing.is_sealed() {
        tracing::info!(
            seal_keys = %routing.seal_fingerprints().join(","),
            "storage is sealed: personal fields are stored only encrypted"
        );
    }
}

/// Says at start, as warnings, when mail cannot reach a person: the routing is the
/// shipped example or every contact is at a reserved domain (one line), and over SMTP,
/// each section with contacts at reserved domains (a line each). Start-up goes on:
/// `cargo run` on the defaults is the local demo, and tests deliver to `example.org`.
fn log_unreachable_routing(
    routing: &Routing,
    from: &lettre::message::Mailbox,
    transport: crate::config::TransportKind,
) {
    if let Some(line) = routing.example_warning() {
        tracing::warn!("{line}");
    }
    if transport == crate::config::TransportKind::Smtp {
        for line in routing.smtp_warnings(from) {
            tracing::warn!("{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configuration_must_match_how_the_database_stores_sign_ups() {
        let counts = |clear, sealed| SealingCounts { clear, sealed };
        assert!(check_sealing(true, counts(0, 0)).is_ok());
        assert!(check_sealing(false, counts(0, 0)).is_ok());
        assert!(check_sealing(true, counts(0, 7)).is_ok());
        assert!(check_sealing(false, counts(7, 0)).is_ok());
        let clear = check_sealing(true, counts(3, 7)).unwrap_err().to_string();
        assert!(
            clear.contains("3 sign-ups are stored in clear: run `joinform seal` first"),
            "{clear}"
        );
        let sealed = check_sealing(false, counts(3, 7)).unwrap_err().to_string();
        assert!(
            sealed.contains("this database is sealed") && sealed.contains("set storage.seal_keys"),
            "{sealed}"
        );
    }

    #[test]
    fn start_up_errors_say_each_cause_once() {
        let toml_error = toml::from_str::<toml::Table>("= =")
            .unwrap_err()
            .to_string();
        let translations = StartupError::Translations(crate::i18n::TranslationError::Invalid {
            language: "xx".into(),
            source: toml::from_str::<toml::Table>("= =").unwrap_err(),
        });
        let config = StartupError::from(ConfigError::bad("fallback", "missing"));
        for (error, cause) in [
            (translations, toml_error.as_str()),
            (config, "fallback: missing"),
        ] {
            let text = crate::cli::error_chain(&error);
            assert_eq!(text.matches(cause).count(), 1, "{text}");
        }
    }
}
