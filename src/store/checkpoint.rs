//! WAL checkpoints on their own thread. Left to SQLite, the writer would copy the WAL
//! back into the database in the middle of a commit, and every request of that batch
//! would wait for it.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

/// How often the WAL is copied back into the database file.
const INTERVAL: Duration = Duration::from_millis(200);

/// The writer checkpoints by itself only if the WAL passes this many pages (about
/// 64 MiB): a safety net for when this thread falls behind.
pub const WRITER_AUTOCHECKPOINT_PAGES: i64 = 16_384;

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
