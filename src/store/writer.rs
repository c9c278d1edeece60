//! The single writer: one thread owns the write connection and commits whatever is
//! queued in one transaction (group commit). One fsync then covers many submissions,
//! which keeps full durability fast; no request holds a connection across an `.await`.

use std::thread::JoinHandle;

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use crate::domain::{SubmissionId, Timestamp};

use super::outbox::{self, Attempt};
use super::quota::QuotaGuard;
use super::scrub::{self, Erasing};
use super::{Admitted, StoreError, SubmissionRecord, submissions};

/// How many requests may wait for the writer before senders wait too.
const QUEUE_CAPACITY: usize = 4096;
/// The most submissions committed in one transaction.
const MAX_BATCH: usize = 512;
/// Under load (the last batch held more than one job), the writer waits this long for
/// more jobs before it commits. Each commit rewrites the last page of every index and
/// syncs the WAL, so fuller batches cost far less per submission; when idle, a lone
/// submission is committed at once.
const GATHER_WINDOW: std::time::Duration = std::time::Duration::from_micros(250);

type Reply = oneshot::Sender<Result<(), WriteFailure>>;
type AdmissionReply = oneshot::Sender<Result<Admitted, WriteFailure>>;
/// Work for [`Writer::run`]; it hands its result out through a channel of its own, read
/// only once the transaction has committed.
type Task = Box<dyn FnOnce(&Connection) -> Result<(), StoreError> + Send>;
/// Work for [`Writer::erase`]: a deletion of personal data.
type EraseTask = Box<dyn FnOnce(&Erasing<'_>) -> Result<(), StoreError> + Send>;

/// How often the writer forgets used form tokens that have expired.
const TOKEN_SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(600);

/// Why a queued write was not committed, as told to each requester of a batch. The
/// full error is logged once by the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WriteFailure {
    #[error("the database is locked by another process")]
    Busy,
    #[error("the disk holding the database is full")]
    DiskFull,
    #[error("the database has reached storage.max_size_mib")]
    OverQuota,
    #[error("the database file cannot be written")]
    Io,
    #[error("the database writer has stopped")]
    Stopped,
    #[error("the database refused the write")]
    Refused,
}

impl From<&StoreError> for WriteFailure {
    fn from(error: &StoreError) -> Self {
        match error {
            StoreError::Busy => Self::Busy,
            StoreError::DiskFull => Self::DiskFull,
            StoreError::OverQuota => Self::OverQuota,
            StoreError::Io(_) => Self::Io,
            StoreError::WriterStopped => Self::Stopped,
            _ => Self::Refused,
        }
    }
}

enum Job {
    /// With the requester's span, so what the writer logs about the submission sits in
    /// the request's context (its id and request id) though it runs on this thread.
    Insert(Box<SubmissionRecord>, AdmissionReply, tracing::Span),
    /// Takes and releases the write lock, and checks there is room for a submission:
    /// proves the database can take a sign-up.
    Probe(Reply),
    /// The delivery worker's results.
    RecordAttempts(Vec<(SubmissionId, Attempt)>, Reply),
    /// Administrative work (erasure, purge, audit rows) in a transaction of its own,
    /// after the batch it arrived with: its failure must not cost sign-ups their commit.
    Run(Task, Reply, tracing::Span),
    /// A deletion of personal data, like `Run`, through [`scrub::erase`].
    Erase(EraseTask, Reply, tracing::Span),
    /// Commit what is queued before this, then stop.
    Stop,
}

/// A handle to queue writes. Cheap to clone; the thread stops when the last one drops.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

/// The writer's thread, to be joined at shutdown so the last batch is committed.
pub struct WriterThread(JoinHandle<()>);

impl WriterThread {
    pub fn join(self) {
        if self.0.join().is_err() {
            tracing::error!("the database writer thread panicked");
        }
    }
}

pub(super) fn start(connection: Connection, quota: Option<QuotaGuard>) -> (Writer, WriterThread) {
    let (jobs, queue) = mpsc::channel(QUEUE_CAPACITY);
    let thread = std::thread::Builder::new()
        .name("joinform-writer".into())
        .spawn(move || run(connection, queue, quota));
    match thread {
        Ok(handle) => (Writer { jobs }, WriterThread(handle)),
        // Without a thread nothing can be written; every request will get a 503.
        Err(error) => {
            tracing::error!(%error, "cannot start the database writer thread");
            let (jobs, _) = mpsc::channel(1);
            (Writer { jobs }, WriterThread(std::thread::spawn(|| {})))
        }
    }
}

impl Writer {
    /// Resolves once the submission is admitted and that decision committed to disk,
    /// or with why it was not.
    pub async fn admit(&self, record: SubmissionRecord) -> Result<Admitted, WriteFailure> {
        let (reply, done) = oneshot::channel();
        let span = tracing::Span::current();
        self.send(Job::Insert(Box::new(record), reply, span))
            .await?;
        done.await.unwrap_or(Err(WriteFailure::Stopped))
    }

    /// Whether the writer can take the database's write lock now, and (with a quota)
    /// has room for a submission.
    pub async fn probe(&self) -> Result<(), WriteFailure> {
        let (reply, done) = oneshot::channel();
        self.send(Job::Probe(reply)).await?;
        done.await.unwrap_or(Err(WriteFailure::Stopped))
    }

    /// Records what came of delivery attempts, by submission id.
    pub async fn record_attempts(
        &self,
        attempts: Vec<(SubmissionId, Attempt)>,
    ) -> Result<(), WriteFailure> {
        let (reply, done) = oneshot::channel();
        self.send(Job::RecordAttempts(attempts, reply)).await?;
        done.await.unwrap_or(Err(WriteFailure::Stopped))
    }

    /// Runs `work` on the writer thread in its own `IMMEDIATE` transaction and returns
    /// its result once that is committed. For the admin listener, whose writes must not
    /// open a second write connection beside the writer's.
    pub async fn run<T, F>(&self, work: F) -> Result<T, WriteFailure>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (result_tx, result_rx) = oneshot::channel();
        let task: Task = Box::new(move |connection| {
            let value = work(connection)?;
            let _ = result_tx.send(value);
            Ok(())
        });
        let (reply, done) = oneshot::channel();
        self.send(Job::Run(task, reply, tracing::Span::current()))
            .await?;
        done.await.unwrap_or(Err(WriteFailure::Stopped))?;
        result_rx.await.map_err(|_| WriteFailure::Stopped)
    }

    /// Runs `work`, a deletion of personal data, on the writer thread through
    /// [`scrub::erase`] (delete, return the free pages, commit, truncate the WAL), and
    /// returns its result once all of that is done.
    pub async fn erase<T, F>(&self, work: F) -> Result<T, WriteFailure>
    where
        T: Send + 'static,
        F: FnOnce(&Erasing<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (result_tx, result_rx) = oneshot::channel();
        let task: EraseTask = Box::new(move |erasing| {
            let value = work(erasing)?;
            let _ = result_tx.send(value);
            Ok(())
        });
        let (reply, done) = oneshot::channel();
        self.send(Job::Erase(task, reply, tracing::Span::current()))
            .await?;
        done.await.unwrap_or(Err(WriteFailure::Stopped))?;
        result_rx.await.map_err(|_| WriteFailure::Stopped)
    }

    /// Asks the thread to stop once everything queued so far is committed.
    pub fn stop(&self) {
        // A full queue means requests are still arriving; the thread then stops when
        // the last handle drops instead.
        let _ = self.jobs.try_send(Job::Stop);
    }

    async fn send(&self, job: Job) -> Result<(), WriteFailure> {
        self.jobs.send(job).await.map_err(|_| WriteFailure::Stopped)
    }
}

/// Moves what is queued now into `batch`, up to [`MAX_BATCH`] jobs.
fn take_queued(queue: &mut mpsc::Receiver<Job>, batch: &mut Vec<Job>) {
    while batch.len() < MAX_BATCH {
        match queue.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
}

fn run(mut connection: Connection, mut queue: mpsc::Receiver<Job>, mut quota: Option<QuotaGuard>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut stopping = false;
    let mut last_size = 0_usize;
    let mut last_token_sweep = std::time::Instant::now();
    while !stopping {
        let Some(first) = queue.blocking_recv() else {
            break;
        };
        batch.push(first);
        take_queued(&mut queue, &mut batch);
        // Under load, wait for more only when what has queued already is well short of
        // the last batch: a full queue commits at once instead of sleeping first.
        if last_size > 1 && batch.len() < last_size / 2 {
            std::thread::sleep(GATHER_WINDOW);
            take_queued(&mut queue, &mut batch);
        }
        last_size = batch.len();
        stopping = batch.iter().any(|job| matches!(job, Job::Stop));
        if let Some(quota) = &mut quota {
            refuse_if_full(&connection, quota, &mut batch);
            if batch.is_empty() {
                continue;
            }
        }
        let size = batch.len();
        let sweep_tokens = last_token_sweep.elapsed() >= TOKEN_SWEEP_INTERVAL;
        if sweep_tokens {
            last_token_sweep = std::time::Instant::now();
        }
        // Held to the end of this round: the writer's events about the batch sit in it.
        let _batch = tracing::debug_span!("store_batch", jobs = size).entered();
        let outcome = commit(&mut connection, &batch, sweep_tokens).map_err(|error| {
            tracing::error!(size, error = %error, cause = ?std::error::Error::source(&error),
                "batch not committed");
            WriteFailure::from(&error)
        });
        let mut admissions = match &outcome {
            Ok(admissions) => admissions.clone().into_iter(),
            Err(_) => Vec::new().into_iter(),
        };
        let outcome = outcome.map(|_| ());
        if outcome.is_ok() {
            tracing::debug!("batch committed");
        }
        if let Some(quota) = &mut quota {
            match outcome {
                Ok(()) if batch.iter().any(|job| matches!(job, Job::Insert(..))) => {
                    quota.write_succeeded();
                }
                Err(WriteFailure::DiskFull) => quota.write_failed_full(&connection),
                _ => {}
            }
        }
        for job in batch.drain(..) {
            // A requester may have gone away; what it sent is committed all the same.
            match job {
                Job::Insert(_, reply, span) => {
                    let admission =
                        outcome.and_then(|()| admissions.next().ok_or(WriteFailure::Stopped));
                    // Let go of the span first: then the request, not this thread, closes
                    // it when it ends.
                    drop(span);
                    let _ = reply.send(admission);
                }
                Job::Probe(reply) | Job::RecordAttempts(_, reply) => {
                    let _ = reply.send(outcome);
                }
                Job::Run(task, reply, span) => {
                    let done = span.in_scope(|| run_alone(&mut connection, task));
                    drop(span);
                    let _ = reply.send(done);
                }
                Job::Erase(task, reply, span) => {
                    let done = span.in_scope(|| {
                        scrub::erase(&mut connection, task).map_err(|error| {
                            tracing::error!(error = %error,
                                cause = ?std::error::Error::source(&error),
                                "deletion not committed");
                            WriteFailure::from(&error)
                        })
                    });
                    drop(span);
                    let _ = reply.send(done);
                }
                Job::Stop => {}
            }
        }
    }
    tracing::debug!("database writer stopped");
}

/// Everything in the batch, or nothing: a failed insert or commit rolls back the
/// whole transaction, and every requester is told. Returns the inserts' admissions,
/// in batch order.
fn commit(
    connection: &mut Connection,
    batch: &[Job],
    sweep_tokens: bool,
) -> Result<Vec<Admitted>, StoreError> {
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let now = Timestamp::now();
    let mut admissions = Vec::new();
    if sweep_tokens {
        submissions::forget_expired_tokens(&transaction, now)?;
        super::visitor_mails::sweep(&transaction, now)?;
    }
    for job in batch {
        match job {
            Job::Insert(record, _, span) => {
                let _entered = span.enter();
                let admission = submissions::admit_with_proof(&transaction, record)?;
                tracing::debug!(
                    outcome = admission.admission.code(),
                    "admitted, to be committed"
                );
                admissions.push(admission);
            }
            Job::RecordAttempts(attempts, _) => {
                for (submission_id, attempt) in attempts {
                    outbox::record_attempt(&transaction, *submission_id, attempt, now)?;
                }
            }
            Job::Probe(_) | Job::Run(..) | Job::Erase(..) | Job::Stop => {}
        }
    }
    transaction.commit()?;
    Ok(admissions)
}

/// With the database at its quota, sign-ups and probes are answered at once and taken
/// out of the batch; the rest (delivery results, deletions, audit rows) still runs.
fn refuse_if_full(connection: &Connection, quota: &mut QuotaGuard, batch: &mut Vec<Job>) {
    let Err(error) = quota.check(connection) else {
        return;
    };
    let failure = WriteFailure::from(&error);
    let mut refused = 0_usize;
    for job in std::mem::take(batch) {
        match job {
            Job::Insert(_, reply, _) => {
                refused += 1;
                let _ = reply.send(Err(failure));
            }
            Job::Probe(reply) => {
                let _ = reply.send(Err(failure));
            }
            other => batch.push(other),
        }
    }
    if refused > 0 {
        tracing::warn!(refused, error = %error, "sign-ups refused");
    }
}

/// One [`Job::Run`] task in its own transaction: committed if it succeeds, rolled back
/// (by dropping the transaction) if it fails.
fn run_alone(connection: &mut Connection, task: Task) -> Result<(), WriteFailure> {
    let outcome = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(StoreError::from)
        .and_then(|transaction| {
            task(&transaction)?;
            transaction.commit().map_err(StoreError::from)
        });
    outcome.map_err(|error| {
        tracing::error!(error = %error, cause = ?std::error::Error::source(&error),
            "administrative write not committed");
        WriteFailure::from(&error)
    })
}
