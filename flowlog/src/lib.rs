//! The node-local flow log of Stockade: a durable, size-bounded, append-only
//! log of timestamped records.
//!
//! Each node keeps the flows it observed so that `GET /v1/flows` can answer
//! by time range and filter, and so that they survive a daemon restart. The
//! log lives in one folder as numbered segment files (`00000001.flog`, …);
//! the newest one is appended to, and when the folder exceeds its byte budget
//! the oldest whole segments are deleted. Each record is a checksummed frame,
//! so a crash mid-write or a damaged disk costs the damaged records, never
//! the node: [`FlowLog::open`] repairs or skips what it cannot read and counts
//! it in [`FlowLogStats`].
//!
//! The crate is generic over the record type ([`Record`]) so it does not
//! depend on the policy crate. One process at a time may use a folder.

mod codec;
mod error;
mod query;
mod segment;

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{Seek, SeekFrom, Write};
use std::iter;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;
use tracing::warn;

pub use codec::MAX_RECORD_BYTES;
pub use error::FlowLogError;

use codec::{EncodeError, HeaderCheck};
use segment::Segment;

/// A record the log can store and find again by time.
///
/// Records are encoded with `postcard`, which is compact but not
/// self-describing: the decoder must see exactly the fields the encoder
/// wrote. So the type must not use `#[serde(skip_serializing_if)]`,
/// `#[serde(flatten)]`, `#[serde(untagged)]` or anything else that makes the
/// encoded shape depend on the value, and a change of the type is a change
/// of format (old records then read as corrupt and are skipped).
pub trait Record: Serialize + DeserializeOwned {
    /// The record's time in milliseconds since the Unix epoch (for a flow,
    /// when it was last seen). Range queries and the per-segment bounds that
    /// let queries skip whole files use it; it need not grow monotonically.
    fn time_ms(&self) -> u64;
}

/// How much disk the log may use, so a busy node cannot fill its disk with
/// history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Budget for all segment files together; the oldest segments are
    /// deleted to stay within it (default 256 MiB).
    pub max_bytes: u64,
    /// Size at which the open segment is closed and a new one started; it is
    /// also the granularity of deletion (default 8 MiB).
    pub segment_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 256 << 20,
            segment_bytes: 8 << 20,
        }
    }
}

/// Figures about the log for the node's status page and metrics. The
/// `dropped_*`, `corrupt_records` and `truncated_bytes` counters count since
/// [`FlowLog::open`]; the others describe what is on disk now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FlowLogStats {
    /// Bytes of all segment files.
    pub bytes: u64,
    /// Readable records.
    pub records: u64,
    /// Segment files.
    pub segments: u64,
    /// Smallest record time, if there is a record.
    pub oldest_ms: Option<u64>,
    /// Largest record time, if there is a record.
    pub newest_ms: Option<u64>,
    /// Records deleted to stay within [`Limits::max_bytes`].
    pub dropped_records: u64,
    /// Segments deleted to stay within [`Limits::max_bytes`].
    pub dropped_segments: u64,
    /// Places where a damaged record ended the reading of a segment (at most
    /// one per segment: what follows it in that segment is not readable).
    pub corrupt_records: u64,
    /// Bytes cut from the end of the newest segment on open (a torn write).
    pub truncated_bytes: u64,
}

/// A flow log open for appending and querying. See the crate docs.
pub struct FlowLog<R: Record> {
    dir: PathBuf,
    limits: Limits,
    /// Closed segments, oldest first.
    sealed: VecDeque<Segment>,
    /// The segment appended to.
    active: Segment,
    file: File,
    /// Set when a failed write could not be rolled back: the next append
    /// starts a new segment rather than write after unknown bytes.
    broken: bool,
    scratch: Vec<u8>,
    /// End offset in `scratch` and time of each frame of the batch.
    frames: Vec<(usize, u64)>,
    dropped_records: u64,
    dropped_segments: u64,
    corrupt_records: u64,
    truncated_bytes: u64,
    _record: PhantomData<fn() -> R>,
}

impl<R: Record> FlowLog<R> {
    /// Opens the log in `dir` (created if missing) and rebuilds its in-memory
    /// index by reading every segment.
    ///
    /// Damage is repaired, not reported as an error, so that a node always
    /// starts: a torn or corrupt tail of the newest segment is cut away, and
    /// a damaged record in an older segment ends the reading of that segment;
    /// both are counted in [`FlowLogStats`]. Errors are reserved for what
    /// must not be touched or cannot be done: a `.flog` file that is not
    /// ours or of another version, invalid limits, and I/O failures.
    pub fn open(dir: &Path, limits: Limits) -> Result<Self, FlowLogError> {
        if limits.segment_bytes == 0 || limits.max_bytes < limits.segment_bytes {
            return Err(FlowLogError::InvalidLimits {
                path: dir.to_owned(),
                reason: format!(
                    "segment_bytes ({}) must be > 0 and <= max_bytes ({})",
                    limits.segment_bytes, limits.max_bytes
                ),
            });
        }
        fs::create_dir_all(dir).map_err(|e| FlowLogError::io(dir, e))?;
        let mut sealed = VecDeque::new();
        let mut corrupt_records = 0;
        for (seq, path) in segment::list(dir)? {
            let (seg, end) = segment::scan::<R>(seq, path, R::time_ms)?;
            if let Some(why) = end.bad {
                corrupt_records += 1;
                warn!(
                    file = %seg.path.display(),
                    offset = end.good_end,
                    ?why,
                    "flow log: damaged record; the rest of this segment is unreadable"
                );
            }
            if end.header == HeaderCheck::Torn {
                warn!(file = %seg.path.display(), "flow log: segment with a torn header");
            }
            sealed.push_back(seg);
        }
        let mut truncated_bytes = 0;
        let (active, file) = match sealed.pop_back() {
            Some(mut last) => {
                let before = last.disk;
                let file = segment::reopen_for_append(&mut last)?;
                truncated_bytes = before.saturating_sub(last.disk);
                if truncated_bytes > 0 {
                    warn!(
                        file = %last.path.display(),
                        bytes = truncated_bytes,
                        "flow log: cut a torn or corrupt tail"
                    );
                }
                (last, file)
            }
            None => segment::create(dir, 1)?,
        };
        let mut log = FlowLog {
            dir: dir.to_owned(),
            limits,
            sealed,
            active,
            file,
            broken: false,
            scratch: Vec::new(),
            frames: Vec::new(),
            dropped_records: 0,
            dropped_segments: 0,
            corrupt_records,
            truncated_bytes,
            _record: PhantomData,
        };
        log.enforce_budget()?;
        Ok(log)
    }

    /// Appends a batch in the given order with one write per segment it
    /// lands in, starting new segments at [`Limits::segment_bytes`], then
    /// deletes the oldest segments beyond [`Limits::max_bytes`].
    ///
    /// The batch is encoded before anything is written, so a record that
    /// cannot be encoded or is too large leaves the log unchanged. The data
    /// reaches the operating system before this returns, but the disk only
    /// on [`FlowLog::sync`] or when a segment is closed.
    pub fn append(&mut self, records: &[R]) -> Result<(), FlowLogError> {
        if records.is_empty() {
            return Ok(());
        }
        self.scratch.clear();
        self.frames.clear();
        for r in records {
            if let Err(e) = codec::encode_frame(&mut self.scratch, r) {
                let path = self.active.path.clone();
                return Err(match e {
                    EncodeError::TooLarge(size) => FlowLogError::RecordTooLarge {
                        path,
                        size,
                        max: MAX_RECORD_BYTES,
                    },
                    EncodeError::Postcard(source) => FlowLogError::Encode { path, source },
                });
            }
            self.frames.push((self.scratch.len(), r.time_ms()));
        }
        if self.broken {
            self.rotate()?;
        }
        let (mut chunk_start, mut chunk_first, mut frame_start) = (0, 0, 0);
        for i in 0..self.frames.len() {
            let end = self.frames[i].0;
            let pending = (frame_start - chunk_start) as u64;
            let nonempty = self.active.records > 0 || i > chunk_first;
            if nonempty
                && self.active.disk + pending + (end - frame_start) as u64
                    > self.limits.segment_bytes
            {
                self.write_chunk(chunk_start, chunk_first, i)?;
                self.rotate()?;
                (chunk_start, chunk_first) = (frame_start, i);
            }
            frame_start = end;
        }
        self.write_chunk(chunk_start, chunk_first, self.frames.len())?;
        self.enforce_budget()
    }

    /// Writes the frames `first..last` of the batch, which start at byte
    /// `start` of the scratch buffer, to the active segment.
    fn write_chunk(&mut self, start: usize, first: usize, last: usize) -> Result<(), FlowLogError> {
        if first == last {
            return Ok(());
        }
        let end = self.frames[last - 1].0;
        if let Err(e) = self.file.write_all(&self.scratch[start..end]) {
            // Undo a partial write so the next append does not follow garbage.
            let good = self.active.disk;
            let undone =
                self.file.set_len(good).is_ok() && self.file.seek(SeekFrom::Start(good)).is_ok();
            self.broken = !undone;
            return Err(FlowLogError::io(&self.active.path, e));
        }
        self.active.disk += (end - start) as u64;
        self.active.readable = self.active.disk;
        for &(_, t) in &self.frames[first..last] {
            self.active.note(t);
        }
        Ok(())
    }

    /// Closes the active segment (made durable first, so only the newest
    /// segment can ever have a torn tail) and starts the next one.
    fn rotate(&mut self) -> Result<(), FlowLogError> {
        if !self.broken {
            self.file
                .sync_data()
                .map_err(|e| FlowLogError::io(&self.active.path, e))?;
        }
        let (seg, file) = segment::create(&self.dir, self.active.seq + 1)?;
        self.sealed
            .push_back(std::mem::replace(&mut self.active, seg));
        self.file = file;
        self.broken = false;
        Ok(())
    }

    /// Deletes the oldest sealed segments while the log is over budget.
    fn enforce_budget(&mut self) -> Result<(), FlowLogError> {
        let mut total: u64 = self.segments().map(|s| s.disk).sum();
        while total > self.limits.max_bytes {
            let Some(oldest) = self.sealed.front() else {
                break;
            };
            match fs::remove_file(&oldest.path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(FlowLogError::io(&oldest.path, e)),
            }
            total -= oldest.disk;
            self.dropped_records += oldest.records;
            self.dropped_segments += 1;
            self.sealed.pop_front();
        }
        Ok(())
    }

    /// Makes everything appended so far durable (`fdatasync` of the open
    /// segment; closed segments were synced when closed). The node calls it
    /// every few seconds rather than per batch, trading the last seconds of
    /// flows on a power loss for throughput.
    pub fn sync(&mut self) -> Result<(), FlowLogError> {
        self.file
            .sync_data()
            .map_err(|e| FlowLogError::io(&self.active.path, e))
    }

    /// The records with `since_ms <= time <= until_ms` that `keep` accepts,
    /// newest first (by time, then latest appended), at most `limit`.
    ///
    /// Segments whose time range misses the query are not read, and once
    /// `limit` records are found, segments that hold only older records are
    /// not read either, so "the latest N" is cheap however long the log is.
    /// `keep` may not be called for records that could not make the result.
    /// A record damaged since open ends the reading of its segment (with a
    /// warning in the node's log) rather than failing the query.
    pub fn query(
        &self,
        since_ms: u64,
        until_ms: u64,
        mut keep: impl FnMut(&R) -> bool,
        limit: usize,
    ) -> Result<Vec<R>, FlowLogError> {
        if limit == 0 || since_ms > until_ms {
            return Ok(Vec::new());
        }
        let mut segs: Vec<&Segment> = self
            .segments()
            .filter(|s| s.overlaps(since_ms, until_ms))
            .collect();
        segs.sort_unstable_by_key(|s| std::cmp::Reverse((s.max_ms, s.seq)));
        let mut top = query::Top::new(limit);
        for seg in segs {
            if top.cannot_improve(seg.max_ms, seg.seq) {
                break;
            }
            let end = segment::read::<R>(&seg.path, Some(seg.readable), |index, r| {
                let t = r.time_ms();
                let key = (t, seg.seq, index);
                if t >= since_ms && t <= until_ms && top.would_take(key) && keep(&r) {
                    top.offer(key, r);
                }
            })?;
            if let Some(why) = end.bad {
                warn!(
                    file = %seg.path.display(),
                    offset = end.good_end,
                    ?why,
                    "flow log: record damaged since open; rest of segment skipped"
                );
            }
        }
        Ok(top.into_newest_first())
    }

    /// Current figures, cheap enough for every status request.
    pub fn stats(&self) -> FlowLogStats {
        let mut s = FlowLogStats {
            dropped_records: self.dropped_records,
            dropped_segments: self.dropped_segments,
            corrupt_records: self.corrupt_records,
            truncated_bytes: self.truncated_bytes,
            ..FlowLogStats::default()
        };
        for seg in self.segments() {
            s.bytes += seg.disk;
            s.records += seg.records;
            s.segments += 1;
            if seg.records > 0 {
                s.oldest_ms = Some(s.oldest_ms.map_or(seg.min_ms, |m| m.min(seg.min_ms)));
                s.newest_ms = Some(s.newest_ms.map_or(seg.max_ms, |m| m.max(seg.max_ms)));
            }
        }
        s
    }

    /// The folder the log lives in, for messages that point an operator at it.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// All segments, oldest first.
    fn segments(&self) -> impl Iterator<Item = &Segment> {
        self.sealed.iter().chain(iter::once(&self.active))
    }
}
