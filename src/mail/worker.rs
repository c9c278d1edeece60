//! The delivery worker: sends due outbox rows, records each attempt, and retries
//! transient failures with exponential backoff and jitter until it gives up.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use lettre::Message;
use lettre::message::Mailbox;
use rusqlite::Connection;
use tokio::sync::{Notify, watch};

use crate::config::MailSettings;
use crate::domain::{SubmissionId, Timestamp};
use crate::metrics::{DeliveryResult, Metrics};
use crate::routing::Routing;
use crate::store::outbox::{
    self, Attempt, DueMail, DueOverflow, DueScheduled, DueVisitorMail, OVERFLOW_WINDOW,
};
use crate::store::{Database, StoreError, Writer};

use super::message::{self, BuildError};
use super::overflow::{self, Covered, OverflowContent};
use super::pgp_mime;
use super::templates::Templates;
use super::transport::{DeliveryError, Mailer};

/// Rows read and sent per round.
const BATCH: usize = 32;
/// The longest the worker sleeps without looking at the outbox.
const IDLE_CHECK: Duration = Duration::from_secs(60);
/// How long to wait before reading the outbox again after a database error.
const STORE_RETRY: Duration = Duration::from_secs(5);

/// When to try again after a transient failure, when to stop trying, and how fast to
/// send.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub initial: Duration,
    pub max: Duration,
    pub give_up_after: Duration,
    /// The shortest time between two sends.
    pub send_interval: Duration,
}

impl RetryPolicy {
    pub fn from_settings(settings: &MailSettings) -> Self {
        Self {
            initial: settings.retry_initial.get(),
            max: settings.retry_max.get(),
            give_up_after: settings.give_up_after.get(),
            send_interval: Duration::from_secs(1) / settings.max_per_second.max(1),
        }
    }

    /// The wait after the `attempts`-th failed attempt: `initial`, doubled each time,
    /// capped at `max`, then spread by ±25 % so that retries do not come in waves.
    pub fn delay(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(30);
        let base = self.initial.saturating_mul(1 << doublings).min(self.max);
        let jitter = 0.75 + fastrand::f64() * 0.5;
        base.mul_f64(jitter).min(self.max)
    }
}

/// The follow-up's part in mail: the link a notification carries, and the reminders,
/// escalations and digests, built from the data as it is when they are sent, so a
/// person erased or marked meanwhile is in none of them. The follow-up service
/// implements it; the worker only sends (so `mail` never depends on `followup`).
pub trait FollowupMail: Send + Sync + 'static {
    /// The message for `due`, from `from`, or `None` when it has nothing left to say
    /// (it is then recorded as cancelled, and nothing is sent).
    ///
    /// # Errors
    /// [`BuildError::Unreadable`] when the data cannot be read now (the row is tried
    /// again later); any other [`BuildError`] fails the row.
    fn build(
        &self,
        connection: &Connection,
        due: &DueScheduled,
        from: &Mailbox,
        now: Timestamp,
    ) -> Result<Option<Message>, BuildError>;

    /// The address of sign-up `id`'s own follow-up page, for its notification, written
    /// at `now`; `section` is the section the sign-up is stored under (the link is
    /// signed for it). `None` when there is none to give.
    fn notification_link(&self, id: SubmissionId, section: &str, now: Timestamp) -> Option<String>;
}

/// Mails to visitors (confirmation, notice, access link), in the visitor's language,
/// built from the sign-up as stored when sent. The visitor service implements it; the
/// worker only sends and keeps `rate_limit.visitor_mails_per_hour`.
pub trait VisitorMail: Send + Sync + 'static {
    /// The message for `due`, from `from`, written at `now`, or `None` when it has
    /// nothing left to say (a confirmation whose sign-up was confirmed meanwhile, or
    /// whose link has expired while the mail waited): it is then recorded as
    /// cancelled, and nothing is sent.
    ///
    /// # Errors
    /// [`BuildError::Unreadable`] when it cannot be built now (tried again later); any
    /// other [`BuildError`] fails the row.
    fn build(
        &self,
        due: &DueVisitorMail,
        from: &Mailbox,
        now: Timestamp,
    ) -> Result<Option<Message>, BuildError>;

    /// Outbox row `row` is done with (sent, failed, cancelled, or no longer pending):
    /// whatever was kept in memory for it can go.
    fn settled(&self, row: SubmissionId);

    /// The rows something is kept in memory for: the worker checks now and then that
    /// they are still pending (a row erased while it waited is never seen again).
    fn kept(&self) -> Vec<SubmissionId>;
}

/// How often the worker drops what is kept in memory for rows no longer pending.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// How long the hourly cap on mails to visitors looks back.
const VISITOR_CAP_WINDOW: Duration = Duration::from_secs(3600);

/// What the worker needs; built at start-up.
pub struct DeliveryWorker {
    /// When this process built the worker, before it took any request: a sealed
    /// sign-up's visitor mail queued earlier was held by a process that has stopped.
    pub started: Timestamp,
    pub database: Database,
    pub writer: Writer,
    pub routing: Arc<Routing>,
    pub mailer: Arc<Mailer>,
    pub templates: Arc<Templates>,
    pub from: Mailbox,
    pub policy: RetryPolicy,
    /// Signalled after a submission with a notification is committed.
    pub wake: Arc<Notify>,
    pub metrics: Arc<Metrics>,
    /// Gives notifications their follow-up link and builds reminders, escalations and
    /// digests; `None` when follow-up is off (notifications then carry no link, and a
    /// follow-up row left from before is cancelled).
    pub followup: Option<Arc<dyn FollowupMail>>,
    /// Builds mails to visitors; `None` when every section's confirmation is off (a
    /// visitor's mail left from before is then cancelled).
    pub visitor: Option<Arc<dyn VisitorMail>>,
    /// `rate_limit.visitor_mails_per_hour`: past it, mails to visitors wait.
    pub visitor_mails_per_hour: u32,
    /// `mail.max_notifications_per_section_per_hour`: past it, a section's
    /// notifications wait for its overflow mail.
    pub notifications_per_section_per_hour: u32,
}

/// A built mail, and for an overflow mail what it covered (recorded with it).
type Built = (Message, Option<Covered>);

impl DeliveryWorker {
    /// Runs until `shutdown` turns true; an attempt under way is finished and recorded
    /// first, so no row is left half-done.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut pace = Pace::new(self.policy.send_interval);
        tracing::info!("delivery worker started");
        // Mails to visitors held by the hourly cap are weighed again against the cap
        // configured now, not the one that held them.
        match self
            .writer
            .run(|c| outbox::release_waiting_visitor_mails(c, Timestamp::now()))
            .await
        {
            Ok(0) => {}
            Ok(released) => tracing::info!(
                released,
                "mails to visitors held by the hourly cap are due again"
            ),
            Err(failure) => {
                tracing::warn!(%failure, "cannot release the mails to visitors held by the hourly cap")
            }
        }
        // The same for sealed sign-ups' notifications deferred by the section's cap.
        match self
            .writer
            .run(|c| outbox::release_deferred_sealed_notifications(c, Timestamp::now()))
            .await
        {
            Ok(0) => {}
            Ok(released) => tracing::info!(
                released,
                "sealed notifications deferred by the hourly cap are due again"
            ),
            Err(failure) => {
                tracing::warn!(%failure, "cannot release the sealed notifications deferred by the hourly cap")
            }
        }
        // A sealed sign-up's mail to its visitor lived only in the stopped process's
        // memory: each still pending is lost, and is said to be now.
        let lost = BuildError::SealedVisitorMailLost.to_string();
        let started = self.started;
        match self
            .writer
            .run(move |c| outbox::fail_lost_sealed_visitor_mails(c, &lost, started))
            .await
        {
            Ok(0) => {}
            Ok(failed) => tracing::warn!(
                failed,
                "mails to visitors of sealed sign-ups were held in memory only and were lost \
                 when the server stopped: failed"
            ),
            Err(failure) => {
                tracing::warn!(%failure, "cannot fail the lost mails to sealed sign-ups' visitors")
            }
        }
        // Notifications left waiting with no overflow mail to list them (one failed for
        // good, or the server stopped in between) get one.
        let domain = self.message_domain();
        match self
            .writer
            .run(move |c| outbox::ensure_overflows_for_waiting(c, &domain, Timestamp::now()))
            .await
        {
            Ok(0) => {}
            Ok(queued) => tracing::info!(
                queued,
                "waiting notifications had no overflow mail: one queued per section"
            ),
            Err(failure) => {
                tracing::warn!(%failure, "cannot queue overflow mails for waiting notifications")
            }
        }
        let mut pruned = tokio::time::Instant::now();
        while !*shutdown.borrow() {
            if pruned.elapsed() >= PRUNE_EVERY {
                pruned = tokio::time::Instant::now();
                self.prune_kept().await;
            }
            let pause = match self.round(&mut pace, &shutdown).await {
                Ok(Some(sent_some)) if sent_some => continue,
                Ok(_) => self.idle_time().await,
                Err(error) => {
                    tracing::error!(%error, "cannot read the outbox");
                    STORE_RETRY
                }
            };
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = self.wake.notified() => {}
                _ = shutdown.changed() => {}
            }
        }
        tracing::info!("delivery worker stopped");
    }

    /// Sends what is due now, at the configured pace, until done or asked to stop.
    /// `Some(true)` if it handled a full batch (more may wait).
    async fn round(
        &self,
        pace: &mut Pace,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<Option<bool>, StoreError> {
        let now = Timestamp::now();
        let due = self.read(move |c| outbox::due(c, now, BATCH)).await?;
        if due.is_empty() {
            return Ok(None);
        }
        let mut attempts = Vec::with_capacity(due.len());
        let mut handled = 0;
        // Mails to visitors sent this round, not yet recorded in the outbox.
        let mut visitor_sent = 0_u64;
        // Per section: its notifications sent in the last hour, counting this round's.
        let mut notified = HashMap::new();
        for mail in &due {
            if *shutdown.borrow() {
                break;
            }
            pace.ready().await;
            handled += 1;
            // The batch was read up to `BATCH` sends ago, seconds or minutes at a slow
            // pace or server: a submission erased since (`forget`, `purge`) must not be
            // sent now, and one another process put back or sent needs nothing.
            let id = mail.id();
            if !self.read(move |c| outbox::still_pending(c, id)).await? {
                tracing::info!(%id, "no longer pending (erased or handled elsewhere): not sent");
                self.settled(mail);
                continue;
            }
            let attempt = if let Some(at) = self.visitor_cap_reached(mail, visitor_sent).await? {
                tracing::info!(%id, kind = %mail.kind(),
                    "rate_limit.visitor_mails_per_hour reached: the mail waits");
                Attempt::Deferred { at }
            } else if self.notification_cap_reached(mail, &mut notified).await? {
                match self.sealed_notification_slot(mail).await? {
                    // The overflow mail cannot list what only the sealed payload
                    // says: the notification itself goes out once a place frees.
                    Some(at) => {
                        tracing::info!(%id, section = %mail.section(),
                            "mail.max_notifications_per_section_per_hour reached: \
                             the sealed notification waits for a free place");
                        Attempt::Deferred { at }
                    }
                    None => {
                        tracing::info!(%id, section = %mail.section(),
                            "mail.max_notifications_per_section_per_hour reached: \
                             the notification waits for the section's overflow mail");
                        Attempt::Waiting {
                            message_domain: self.message_domain(),
                        }
                    }
                }
            } else {
                if let DueMail::Overflow(overflow) = mail {
                    // It lists what waits as recorded: this round's first, and the
                    // section's notifications due but not reached yet, past its cap.
                    self.record(std::mem::take(&mut attempts)).await?;
                    let section = overflow.section.clone();
                    let cap = self.notifications_per_section_per_hour;
                    self.writer
                        .run(move |c| outbox::wait_due_past_cap(c, &section, cap, Timestamp::now()))
                        .await
                        .map_err(|failure| {
                            tracing::error!(error = %failure,
                                "cannot move due notifications into the overflow mail");
                            StoreError::WriterStopped
                        })?;
                }
                pace.used();
                self.deliver(mail).await
            };
            if attempt == Attempt::Sent {
                if mail.kind().is_to_visitor() {
                    visitor_sent += 1;
                } else if let Some(sent) = notified.get_mut(mail.section())
                    && matches!(mail, DueMail::Notification(_))
                {
                    *sent += 1;
                }
            }
            let result = match attempt {
                Attempt::Sent | Attempt::SentOverflow { .. } => Some(DeliveryResult::Sent),
                Attempt::Retry { .. } => Some(DeliveryResult::Retry),
                Attempt::Failed { .. } => Some(DeliveryResult::Failed),
                Attempt::Cancelled | Attempt::Deferred { .. } | Attempt::Waiting { .. } => None,
            };
            if let Some(result) = result {
                self.metrics.delivery_attempt(mail.kind(), result);
            }
            if matches!(
                attempt,
                Attempt::Sent | Attempt::Failed { .. } | Attempt::Cancelled
            ) {
                self.settled(mail);
            }
            attempts.push((id, attempt));
        }
        let full_batch = handled == BATCH;
        self.record(attempts).await?;
        Ok(Some(full_batch))
    }

    /// Drops what the visitor's builder keeps in memory for rows no longer pending:
    /// a sealed sign-up erased while its mail waited behind the hourly cap.
    async fn prune_kept(&self) {
        let Some(builder) = self.visitor.clone() else {
            return;
        };
        let kept = builder.kept();
        if kept.is_empty() {
            return;
        }
        match self
            .read(move |c| outbox::no_longer_pending(c, &kept))
            .await
        {
            Ok(gone) => {
                for row in &gone {
                    builder.settled(*row);
                }
                if !gone.is_empty() {
                    tracing::info!(
                        dropped = gone.len(),
                        "mails kept in memory for rows no longer pending dropped"
                    );
                }
            }
            Err(error) => tracing::warn!(%error, "cannot check the rows kept in memory"),
        }
    }

    /// A mail to a visitor is done with: the visitor's builder drops what it kept in
    /// memory for it (a sealed sign-up's mail). Any other mail keeps nothing.
    fn settled(&self, mail: &DueMail) {
        if let (DueMail::Visitor(visitor), Some(builder)) = (mail, &self.visitor) {
            builder.settled(visitor.id);
        }
    }

    /// Records what came of a round's attempts.
    async fn record(&self, attempts: Vec<(SubmissionId, Attempt)>) -> Result<(), StoreError> {
        if attempts.is_empty() {
            return Ok(());
        }
        self.writer
            .record_attempts(attempts)
            .await
            .map_err(|failure| {
                // The rows stay pending and are sent again: at-least-once delivery.
                tracing::error!(error = %failure, "cannot record delivery attempts");
                StoreError::WriterStopped
            })
    }

    /// Whether `mail` is a notification of a section that was sent
    /// `mail.max_notifications_per_section_per_hour` in the last hour. `notified` holds
    /// each section's count as first read this round, plus what the round sent since.
    async fn notification_cap_reached(
        &self,
        mail: &DueMail,
        notified: &mut HashMap<String, u64>,
    ) -> Result<bool, StoreError> {
        let DueMail::Notification(notification) = mail else {
            return Ok(false);
        };
        let sent = match notified.get(&notification.section) {
            Some(sent) => *sent,
            None => {
                let section = notification.section.clone();
                let since = Timestamp::now().minus(OVERFLOW_WINDOW);
                let sent = self
                    .read(move |c| outbox::notifications_sent_since(c, &section, since))
                    .await?;
                notified.insert(notification.section.clone(), sent);
                sent
            }
        };
        Ok(sent >= u64::from(self.notifications_per_section_per_hour))
    }

    /// For a sealed sign-up's notification past its section's hourly cap: when a place
    /// frees (an hour after the first of the hour's sends, a second later so the
    /// count has surely dropped). `None` for any other mail, which waits for the
    /// overflow mail instead.
    async fn sealed_notification_slot(
        &self,
        mail: &DueMail,
    ) -> Result<Option<Timestamp>, StoreError> {
        let DueMail::Notification(notification) = mail else {
            return Ok(None);
        };
        if notification.submission.sealed_mail.is_none() {
            return Ok(None);
        }
        let now = Timestamp::now();
        let section = notification.section.clone();
        let since = now.minus(OVERFLOW_WINDOW);
        let first = self
            .read(move |c| outbox::first_notification_sent_since(c, &section, since))
            .await?;
        let frees = first
            .unwrap_or(now)
            .plus(OVERFLOW_WINDOW)
            .plus(Duration::from_secs(1));
        Ok(Some(frees.max(now.plus(Duration::from_secs(1)))))
    }

    /// The domain of the sender's address, for the Message-IDs of mails it queues.
    fn message_domain(&self) -> String {
        self.from.email.domain().to_owned()
    }

    /// For a mail to a visitor when `rate_limit.visitor_mails_per_hour` were sent in the
    /// last hour (`sent_now` of them this round, not yet recorded): when a place frees.
    /// `None` for any other mail, or when there is room.
    async fn visitor_cap_reached(
        &self,
        mail: &DueMail,
        sent_now: u64,
    ) -> Result<Option<Timestamp>, StoreError> {
        if !mail.kind().is_to_visitor() {
            return Ok(None);
        }
        let now = Timestamp::now();
        let since = now.minus(VISITOR_CAP_WINDOW);
        let (recorded, first) = self
            .read(move |c| outbox::visitor_mails_sent_since(c, since))
            .await?;
        if recorded + sent_now < u64::from(self.visitor_mails_per_hour) {
            return Ok(None);
        }
        // The first send of the hour leaves it then; if this round sent them all, an
        // hour from now. A second later, so the count has surely dropped.
        let frees = first
            .unwrap_or(now)
            .plus(VISITOR_CAP_WINDOW)
            .plus(Duration::from_secs(1));
        Ok(Some(frees.max(now.plus(Duration::from_secs(1)))))
    }

    /// How long until the next pending row is due, at most [`IDLE_CHECK`].
    async fn idle_time(&self) -> Duration {
        match self.read(outbox::next_due).await {
            Ok(Some(next)) => next.since(Timestamp::now()).min(IDLE_CHECK),
            Ok(None) => IDLE_CHECK,
            Err(_) => STORE_RETRY,
        }
    }

    /// A sealed sign-up's notification: the payload encrypted when it was stored,
    /// wrapped as PGP/MIME to `section`'s contacts. The server cannot read the
    /// visitor's address, so there is no Reply-To: the organisers take it from the
    /// decrypted mail.
    ///
    /// # Errors
    /// [`BuildError::Sealed`] when the row holds no encrypted notification (one stored
    /// as a duplicate, which is never notified); [`BuildError::Message`] when lettre
    /// refuses it.
    fn sealed_notification(
        &self,
        due: &outbox::DueNotification,
        section: &crate::routing::Section,
    ) -> Result<Message, BuildError> {
        let submission = &due.submission;
        let armored = submission.sealed_mail.clone().ok_or(BuildError::Sealed)?;
        let outer = pgp_mime::Outer {
            from: &self.from,
            to: &section.contacts,
            subject: message::outer_notification_subject(submission.id),
            message_id: &due.message_id,
            date: submission
                .released_at
                .unwrap_or(submission.created_at)
                .to_system_time(),
            reply_to: None,
        };
        pgp_mime::wrap(&outer, armored)
    }

    async fn deliver(&self, due: &DueMail) -> Attempt {
        let section = match self.routing.by_name(due.section()) {
            Some(section) => section,
            // A visitor's mail goes to the visitor whatever the section; only a mail to
            // contacts is redirected.
            None if due.kind().is_to_visitor() => self.routing.fallback(),
            None => {
                tracing::warn!(id = %due.id(), section = %due.section(),
                    "the section is no longer configured: sending to the fallback");
                self.routing.fallback()
            }
        };
        let attempts = due.attempts() + 1;
        let span = tracing::info_span!("deliver", id = %due.id(), kind = %due.kind(),
            section = %section.name, attempts);
        let built: Result<Option<Built>, BuildError> = match due {
            DueMail::Notification(notification) if notification.submission.sealed.is_some() => span
                .in_scope(|| self.sealed_notification(notification, section))
                .map(|message| Some((message, None))),
            DueMail::Notification(notification) => span.in_scope(|| {
                // Signed for the section the sign-up is stored under, which the page
                // checks the link against, even when it is mailed to the fallback.
                let submission = &notification.submission;
                let link = self.followup.as_ref().and_then(|followup| {
                    followup.notification_link(submission.id, &submission.section, Timestamp::now())
                });
                message::notification(
                    notification,
                    section,
                    &self.from,
                    &self.templates,
                    link.as_deref(),
                )
                .map(|message| Some((message, None)))
            }),
            DueMail::Scheduled(scheduled) => alone(self.build_scheduled(scheduled).await),
            DueMail::Visitor(visitor) => alone(span.in_scope(|| match &self.visitor {
                Some(builder) => builder.build(visitor, &self.from, Timestamp::now()),
                None => Ok(None),
            })),
            DueMail::Overflow(overflow) => {
                let built = self.build_overflow(overflow, section).await;
                span.in_scope(|| {
                    if let Ok(Some((_, Some(covered)))) = &built {
                        tracing::info!(listed = covered.listed.len(), "overflow mail built");
                    }
                });
                built
            }
        };
        let _entered = span.enter();
        let (message, covered) = match built {
            Ok(Some(built)) => built,
            Ok(None) => {
                tracing::info!("nothing left to say: cancelled");
                return Attempt::Cancelled;
            }
            Err(BuildError::Unreadable(error))
                if Timestamp::now().since(due.queued_at()) >= self.policy.give_up_after =>
            {
                tracing::error!(%error, "mail could not be built for too long: failed");
                return Attempt::Failed {
                    error: format!("gave up after {attempts} attempts: {error}"),
                };
            }
            Err(BuildError::Unreadable(error)) => {
                let delay = self.policy.delay(attempts);
                tracing::warn!(%error, retry_in_seconds = delay.as_secs(),
                    "mail cannot be built now: will retry");
                return Attempt::Retry {
                    at: Timestamp::now().plus(delay),
                    error,
                };
            }
            Err(error) => {
                tracing::error!(%error, "mail cannot be built: failed");
                return Attempt::Failed {
                    error: error.to_string(),
                };
            }
        };
        drop(_entered);
        let result = self.mailer.send(message).await;
        let _entered = span.enter();
        let now = Timestamp::now();
        match result {
            Ok(()) => {
                tracing::info!("mail sent");
                match covered {
                    None => Attempt::Sent,
                    Some(Covered { listed, as_of }) => Attempt::SentOverflow {
                        listed,
                        as_of,
                        message_domain: self.message_domain(),
                    },
                }
            }
            Err(DeliveryError::Permanent(error)) => {
                tracing::error!(%error, "mail refused permanently: failed");
                Attempt::Failed { error }
            }
            Err(DeliveryError::Transient(error)) => {
                let queued = due.queued_at();
                if now.since(queued) >= self.policy.give_up_after {
                    tracing::error!(%error, "mail undelivered for too long: failed");
                    Attempt::Failed {
                        error: format!("gave up after {attempts} attempts: {error}"),
                    }
                } else {
                    let delay = self.policy.delay(attempts);
                    tracing::warn!(%error, retry_in_seconds = delay.as_secs(), "mail not sent: will retry");
                    Attempt::Retry {
                        at: now.plus(delay),
                        error,
                    }
                }
            }
        }
    }

    /// A reminder, escalation or digest, built on a read connection from the data as
    /// it is now; `Ok(None)` when follow-up is off or it has nothing to say.
    async fn build_scheduled(&self, due: &DueScheduled) -> Result<Option<Message>, BuildError> {
        let Some(builder) = self.followup.clone() else {
            return Ok(None);
        };
        let (due, from) = (due.clone(), self.from.clone());
        let database = self.database.clone();
        tokio::task::spawn_blocking(move || {
            let connection = database
                .connect()
                .map_err(|error| BuildError::Unreadable(error.to_string()))?;
            builder.build(&connection, &due, &from, Timestamp::now())
        })
        .await
        .map_err(|_| BuildError::Unreadable("the build task stopped".to_owned()))?
    }

    /// An overflow mail, built on a read connection from the data as it is now, to
    /// `section` (the row's, or the fallback); `Ok(None)` when it has nothing to say.
    async fn build_overflow(
        &self,
        due: &DueOverflow,
        section: &crate::routing::Section,
    ) -> Result<Option<Built>, BuildError> {
        let database = self.database.clone();
        let read = due.clone();
        let content = tokio::task::spawn_blocking(move || {
            let connection = database
                .connect()
                .map_err(|error| BuildError::Unreadable(error.to_string()))?;
            OverflowContent::read(&connection, &read)
        })
        .await
        .map_err(|_| BuildError::Unreadable("the build task stopped".to_owned()))??;
        let now = content.as_of;
        // Signed for the section each sign-up is stored under, as its notification's.
        let link = |listed: &outbox::DueNotification| {
            let submission = &listed.submission;
            self.followup.as_ref().and_then(|followup| {
                followup.notification_link(submission.id, &submission.section, now)
            })
        };
        let message = overflow::message(
            due,
            &content,
            section,
            &self.from,
            &self.templates,
            self.notifications_per_section_per_hour,
            link,
            now,
        )?;
        Ok(message.map(|message| {
            let covered = Covered {
                listed: content.listed_ids(),
                as_of: content.as_of,
            };
            (message, Some(covered))
        }))
    }

    /// Runs a read off the async threads on a connection of its own, opened and
    /// closed there: no connection lives across an `.await`. A read happens at most
    /// once per round, so opening one costs little.
    async fn read<T: Send + 'static>(
        &self,
        query: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let database = self.database.clone();
        tokio::task::spawn_blocking(move || query(&database.connect()?))
            .await
            .map_err(|_| StoreError::WriterStopped)?
    }
}

/// A built mail that lists nothing beside itself.
fn alone(built: Result<Option<Message>, BuildError>) -> Result<Option<Built>, BuildError> {
    built.map(|message| message.map(|message| (message, None)))
}

/// Spaces sends at least `interval` apart. Only a send uses up the interval: a row that
/// is not sent (it waits, or is no longer pending) costs no time of its own.
struct Pace {
    interval: Duration,
    next: tokio::time::Instant,
}

impl Pace {
    fn new(interval: Duration) -> Self {
        Self {
            interval,
            next: tokio::time::Instant::now(),
        }
    }

    /// Waits until the next send may go.
    async fn ready(&self) {
        tokio::time::sleep_until(self.next).await;
    }

    /// A send goes now: the next waits `interval`.
    fn used(&mut self) {
        self.next = tokio::time::Instant::now() + self.interval;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let policy = RetryPolicy {
            initial: Duration::from_secs(30),
            max: Duration::from_secs(3600),
            give_up_after: Duration::from_secs(3 * 86_400),
            send_interval: Duration::from_millis(50),
        };
        for _ in 0..100 {
            let first = policy.delay(1).as_secs_f64();
            assert!((22.5..=37.5).contains(&first), "{first}");
            let third = policy.delay(3).as_secs_f64();
            assert!((90.0..=150.0).contains(&third), "{third}");
            assert!(policy.delay(40) <= Duration::from_secs(3600));
            assert!(policy.delay(40) >= Duration::from_secs(2700));
        }
    }
}
