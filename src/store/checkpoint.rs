//! WAL checkpoints on their own thread. Left to SQLite, the writer would copy the WAL
//! back into the database in the middle of a commit, and every request of that batch
//! would wait for it.
//!
//! Unless Litestream replicates the database (`storage.litestream`): Litestream keeps
//! a read transaction open between its own checkpoints so that nobody else restarts
//! the WAL under it (<https://litestream.io/how-it-works/>). A TRUNCATE checkpoint of
//! ours would then wait the whole busy timeout and fail, and a checkpoint it missed
//! would cost it a full snapshot; so joinform runs none at all and leaves them to
//! Litestream, as its tips ask (`wal_autocheckpoint = 0`,
//! <https://litestream.io/tips/>).

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

/// How often the WAL is copied back into the database file.
const INTERVAL: Duration = Duration::from_millis(200);

/// The writer checkpoints by itself only if the WAL passes this many pages (about
/// 64 MiB): a safety net for when this thread falls behind.
pub const WRITER_AUTOCHECKPOINT_PAGES: i64 = 16_384;

/// Who copies the WAL back into the database file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Checkpoints {
    /// joinform: a PASSIVE checkpoint every 200 ms on its own thread, a TRUNCATE after
    /// each deletion of personal data, in the quota rule and at shutdown.
    #[default]
    Joinform,
    /// Litestream, which replicates the database and checkpoints it itself: joinform
    /// never checkpoints, and every connection it opens has `wal_autocheckpoint = 0`.
    Litestream,
}

impl Checkpoints {
    /// The `wal_autocheckpoint` a connection gets under [`Checkpoints::Litestream`]:
    /// none. joinform sets it on no connection otherwise, so it is also how code that
    /// only holds a connection ([`super::erase`]) tells who checkpoints.
    pub(super) const LITESTREAM_AUTOCHECKPOINT: i64 = 0;

    /// Who checkpoints for `connection` (one from [`super::Database::connect`]), read
    /// from its `wal_autocheckpoint`; [`Checkpoints::Joinform`] if it cannot be read.
    pub(super) fn of(connection: &Connection) -> Self {
        match connection.pragma_query_value(None, "wal_autocheckpoint", |row| row.get::<_, i64>(0))
        {
            Ok(Self::LITESTREAM_AUTOCHECKPOINT) => Self::Litestream,
            _ => Self::Joinform,
        }
    }

    /// One line for `check-config` and the start-up log.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Joinform => {
                "by joinform (PASSIVE every 200 ms; TRUNCATE after erasures and at shutdown)"
            }
            Self::Litestream => "left to Litestream (storage.litestream = true)",
        }
    }
}

pub struct Checkpointer {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl Checkpointer {
    pub(super) fn start(connection: Connection) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("joinform-checkpoint".into())
            .spawn(move || run(&connection, &stopped))?;
        Ok(Self { stop, thread })
    }

    /// Stops after one last checkpoint.
    pub fn stop(self) {
        let _ = self.stop.send(());
        if self.thread.join().is_err() {
            tracing::error!("the checkpoint thread panicked");
        }
    }
}

fn run(connection: &Connection, stopped: &mpsc::Receiver<()>) {
    loop {
        let last = !matches!(
            stopped.recv_timeout(INTERVAL),
            Err(mpsc::RecvTimeoutError::Timeout)
        );
        // PASSIVE never blocks the writer; it copies what it can.
        let mode = if last { "TRUNCATE" } else { "PASSIVE" };
        if let Err(error) =
            connection.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |_| Ok(()))
        {
            tracing::warn!(%error, "WAL checkpoint failed");
        }
        if last {
            return;
        }
    }
}
