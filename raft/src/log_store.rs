//! The Raft log, the vote and the committed log id, on sled.
//!
//! Two trees of the node's sled database hold them:
//!
//! - `log`: one entry per key, the key its index in big-endian bytes (so
//!   sled's byte order is index order), the value the entry as JSON;
//! - `meta`: the vote, the committed log id and the last purged log id.
//!
//! Durability: an entry is on disk before openraft hears it was written —
//! [`append`](RaftLogStorage::append) writes the whole batch, fsyncs once, and
//! only then calls the callback. A vote is fsynced before `save_vote`
//! returns. Truncation is fsynced too; purging and the committed id need not
//! be (losing them on a crash only leaves more log than necessary).

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, LogState, OptionalSend, RaftLogId, RaftLogReader};

use crate::error::{decode, encode, Error, Result};
use std::fs::File;
use std::sync::Arc;

use crate::store::flush;
use crate::types::{Entry, LogId, StorageError, TypeConfig, Vote};

const VOTE: &[u8] = b"vote";
const COMMITTED: &[u8] = b"committed";
const LAST_PURGED: &[u8] = b"last_purged";

/// The Raft log of one node, on its sled database.
///
/// Cheap to clone: clones share the same trees. A clone is also the log
/// reader openraft's replication tasks use.
#[derive(Clone, Debug)]
pub struct LogStore {
    db: sled::Db,
    /// The database's data file, fsynced after sled's own flush (see
    /// [`crate::store::flush`]); absent for databases opened by the caller.
    data_file: Option<Arc<File>>,
    log: sled::Tree,
    meta: sled::Tree,
}

impl LogStore {
    /// The log kept in `db`.
    ///
    /// Entries left at or below the last purged index by a crash in the
    /// middle of a purge are removed, so the log never has a hole.
    pub fn open(db: &sled::Db) -> Result<Self> {
        let store = LogStore {
            db: db.clone(),
            data_file: None,
            log: db.open_tree("log")?,
            meta: db.open_tree("meta")?,
        };
        if let Some(purged) = store.last_purged()? {
            store.remove_upto(purged.index)?;
        }
        Ok(store)
    }

    /// The same log, fsyncing `data_file` — the database's data file —
    /// whenever it makes something durable.
    pub(crate) fn with_data_file(mut self, data_file: File) -> Self {
        self.data_file = Some(Arc::new(data_file));
        self
    }

    /// Makes everything written so far durable.
    async fn sync(&self) -> Result<()> {
        flush(&self.db, self.data_file.clone()).await
    }

    fn read_meta<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>> {
        self.meta.get(key)?.map(|v| decode(&v)).transpose()
    }

    fn write_meta<T: serde::Serialize>(&self, key: &[u8], value: &T) -> Result<()> {
        self.meta.insert(key, encode(value)?)?;
        Ok(())
    }

    fn last_purged(&self) -> Result<Option<LogId>> {
        self.read_meta(LAST_PURGED)
    }

    /// Removes every entry with an index at most `index`, in one atomic batch.
    fn remove_upto(&self, index: u64) -> Result<()> {
        let mut batch = sled::Batch::default();
        for key in self.log.range(..=key(index)).keys() {
            batch.remove(key?);
        }
        self.log.apply_batch(batch)?;
        Ok(())
    }

    fn entries(&self, range: impl RangeBounds<u64>) -> Result<Vec<Entry>> {
        let start = match range.start_bound() {
            Bound::Included(&i) => Some(i),
            Bound::Excluded(&i) => i.checked_add(1),
            Bound::Unbounded => Some(0),
        };
        let Some(start) = start else {
            return Ok(Vec::new());
        };
        let end = match range.end_bound() {
            Bound::Included(&i) => Bound::Included(key(i)),
            Bound::Excluded(&i) => Bound::Excluded(key(i)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let mut entries = Vec::new();
        for item in self.log.range((Bound::Included(key(start)), end)) {
            let (_, value) = item?;
            entries.push(decode(&value)?);
        }
        Ok(entries)
    }

    fn log_state(&self) -> Result<LogState<TypeConfig>> {
        let last_purged_log_id = self.last_purged()?;
        let last_log_id = match self.log.last()? {
            Some((_, value)) => Some(*decode::<Entry>(&value)?.get_log_id()),
            None => last_purged_log_id,
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    fn write_entries(&self, entries: impl IntoIterator<Item = Entry>) -> Result<()> {
        let mut batch = sled::Batch::default();
        for entry in entries {
            batch.insert(&key(entry.get_log_id().index), encode(&entry)?);
        }
        self.log.apply_batch(batch)?;
        Ok(())
    }

    fn remove_from(&self, index: u64) -> Result<()> {
        let mut batch = sled::Batch::default();
        for k in self.log.range(key(index)..).keys() {
            batch.remove(k?);
        }
        self.log.apply_batch(batch)?;
        Ok(())
    }
}

/// The key of the entry at `index`.
fn key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn logs_error(verb: ErrorVerb) -> impl FnOnce(Error) -> StorageError {
    move |e| e.storage(ErrorSubject::Logs, verb)
}

fn vote_error(verb: ErrorVerb) -> impl FnOnce(Error) -> StorageError {
    move |e| e.storage(ErrorSubject::Vote, verb)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        self.entries(range).map_err(logs_error(ErrorVerb::Read))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        self.log_state().map_err(logs_error(ErrorVerb::Read))
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.write_meta(VOTE, vote)
            .map_err(vote_error(ErrorVerb::Write))?;
        self.sync().await.map_err(vote_error(ErrorVerb::Write))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.read_meta(VOTE).map_err(vote_error(ErrorVerb::Read))
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // Not fsynced: a committed id lost in a crash is only re-learnt from
        // the leader; the state machine then replays a little less at start.
        self.write_meta(COMMITTED, &committed)
            .map_err(logs_error(ErrorVerb::Write))
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        self.read_meta::<Option<LogId>>(COMMITTED)
            .map(Option::flatten)
            .map_err(logs_error(ErrorVerb::Read))
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        self.write_entries(entries)
            .map_err(logs_error(ErrorVerb::Write))?;
        // One fsync for the whole batch; openraft learns of the entries only
        // once they are on disk. (openraft 0.9 waits for this callback before
        // it goes on, so flushing in a task of its own would gain nothing.)
        match self.sync().await {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(logs_error(ErrorVerb::Write)(e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.remove_from(log_id.index)
            .map_err(logs_error(ErrorVerb::Delete))?;
        self.sync().await.map_err(logs_error(ErrorVerb::Delete))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // The mark first, then the entries: a crash in between leaves entries
        // below the mark, which `open` removes; never a hole above it.
        self.write_meta(LAST_PURGED, &log_id)
            .map_err(logs_error(ErrorVerb::Delete))?;
        self.remove_upto(log_id.index)
            .map_err(logs_error(ErrorVerb::Delete))
    }
}
