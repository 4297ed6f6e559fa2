//! Opening a node's Raft storage: one sled database for the log and the
//! state machine.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::log_store::LogStore;
use crate::state_machine::StateMachineStore;

/// The folder, under a node's data directory, that holds its sled database.
pub const DB_DIR: &str = "raft";

/// The most memory sled may use as a page cache.
const CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// How long `open` waits for the database lock held by a closing instance.
const LOCK_WAIT: Duration = Duration::from_secs(5);

/// Opens (or creates) the Raft storage under `data_dir` (in `data_dir/raft`):
/// the log store and the state machine, which loads its persisted snapshot.
///
/// A database can be open in one process only. A database just closed in
/// this process stays locked for a moment while sled's background threads
/// finish, so a locked database is retried for a few seconds before the
/// error is returned. This blocks: from async code, call it on a blocking
/// thread (as [`crate::StockadeRaft::start`] does).
pub fn open(data_dir: &Path) -> Result<(LogStore, StateMachineStore)> {
    let config = sled::Config::new()
        .path(data_dir.join(DB_DIR))
        .cache_capacity(CACHE_BYTES);
    let deadline = Instant::now() + LOCK_WAIT;
    let db = loop {
        match config.open() {
            Err(sled::Error::Io(e)) if is_locked(&e) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            opened => break opened?,
        }
    };
    let (log, state_machine) = open_db(&db)?;
    // sled's flush ends in sync_file_range, which neither flushes the
    // disk's write cache nor the file's size: the log also fsyncs the file.
    let data_file = File::open(data_dir.join(DB_DIR).join(DATA_FILE))?;
    Ok((log.with_data_file(data_file), state_machine))
}

/// sled 0.34's data file, inside its folder.
const DATA_FILE: &str = "db";

/// Whether sled failed to take the database's file lock.
fn is_locked(e: &std::io::Error) -> bool {
    e.to_string().contains("could not acquire lock")
}

/// The log store and state machine kept in an already open database.
pub fn open_db(db: &sled::Db) -> Result<(LogStore, StateMachineStore)> {
    Ok((LogStore::open(db)?, StateMachineStore::open(db)?))
}

/// Writes everything written to `db` so far to disk; with `data_file`
/// (the database's data file), also fsyncs it.
///
/// sled's own flush writes its buffers and waits with `sync_file_range`,
/// which leaves the disk's write cache and the file's metadata (its size)
/// unflushed: an acknowledged write could be lost with the power. The
/// `fdatasync` of the data file afterwards closes that gap; fsync applies to
/// the file, whichever descriptor asks.
///
/// This is sled's blocking `flush` on tokio's blocking pool rather than
/// sled 0.34's `flush_async`, whose completion can be lost when several
/// flushes are awaited at once (sled issues #1241, #1308) — which is what a
/// node does when it saves a vote while a snapshot is being saved.
pub(crate) async fn flush(db: &sled::Db, data_file: Option<Arc<File>>) -> Result<()> {
    let db = db.clone();
    tokio::task::spawn_blocking(move || -> Result<()> {
        db.flush()?;
        if let Some(file) = data_file {
            file.sync_data()?;
        }
        Ok(())
    })
    .await??;
    Ok(())
}
