//! Segment files: naming, creation, and reading their records back.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::codec::{self, BadFrame, Frame, FrameReader, HeaderCheck, HEADER_LEN};
use crate::FlowLogError;

/// Extension of segment files; files without it are not looked at.
const EXTENSION: &str = "flog";

/// What the log keeps in memory about one segment file, so that queries can
/// skip it by time and the size budget can be enforced without `stat` calls.
#[derive(Debug, Clone)]
pub(crate) struct Segment {
    /// Its sequence number; larger is newer.
    pub seq: u64,
    /// Its file.
    pub path: PathBuf,
    /// Bytes from the start of the file that hold the header and good frames;
    /// readers stop there (0 when even the header is missing).
    pub readable: u64,
    /// Bytes the file occupies, counted against the budget.
    pub disk: u64,
    /// Good records in it.
    pub records: u64,
    /// Smallest record time, `u64::MAX` while empty.
    pub min_ms: u64,
    /// Largest record time, 0 while empty.
    pub max_ms: u64,
}

impl Segment {
    fn new(seq: u64, path: PathBuf, len: u64) -> Self {
        Segment {
            seq,
            path,
            readable: len,
            disk: len,
            records: 0,
            min_ms: u64::MAX,
            max_ms: 0,
        }
    }

    /// Records one more good record of time `t`.
    pub(crate) fn note(&mut self, t: u64) {
        self.records += 1;
        self.min_ms = self.min_ms.min(t);
        self.max_ms = self.max_ms.max(t);
    }

    /// Whether any of its records can fall in `[since, until]`.
    pub(crate) fn overlaps(&self, since: u64, until: u64) -> bool {
        self.records > 0 && self.max_ms >= since && self.min_ms <= until
    }
}

/// The file name of segment `seq`: zero-padded so that names sort like numbers.
pub(crate) fn file_name(seq: u64) -> String {
    format!("{seq:08}.{EXTENSION}")
}

/// The sequence number in a segment file name, if it is one.
fn parse_name(name: &OsStr) -> Option<u64> {
    let name = name.to_str()?;
    let digits = name.strip_suffix(EXTENSION)?.strip_suffix('.')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The segment files in `dir`, oldest first.
pub(crate) fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, FlowLogError> {
    let mut found = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| FlowLogError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| FlowLogError::io(dir, e))?;
        if let Some(seq) = parse_name(&entry.file_name()) {
            found.push((seq, entry.path()));
        }
    }
    found.sort_unstable_by_key(|(seq, _)| *seq);
    Ok(found)
}

/// Makes the directory entry changes (create, delete) survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), FlowLogError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| FlowLogError::io(dir, e))
}

/// Creates segment `seq` in `dir` with its header, returning it and a handle
/// positioned for appending.
pub(crate) fn create(dir: &Path, seq: u64) -> Result<(Segment, File), FlowLogError> {
    let path = dir.join(file_name(seq));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| FlowLogError::io(&path, e))?;
    file.write_all(&codec::header())
        .map_err(|e| FlowLogError::io(&path, e))?;
    sync_dir(dir)?;
    Ok((Segment::new(seq, path, HEADER_LEN), file))
}

/// Opens an existing segment for appending after its first `len` bytes,
/// cutting away anything beyond them (a torn or corrupt tail) and writing the
/// header again when it was torn (`len` is then 0).
pub(crate) fn reopen_for_append(seg: &mut Segment) -> Result<File, FlowLogError> {
    let path = &seg.path;
    let mut file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| FlowLogError::io(path, e))?;
    let keep = if seg.readable < HEADER_LEN {
        0
    } else {
        seg.readable
    };
    let io = |e| FlowLogError::io(path, e);
    file.set_len(keep).map_err(io)?;
    use std::io::Seek;
    file.seek(std::io::SeekFrom::Start(keep)).map_err(io)?;
    if keep == 0 {
        file.write_all(&codec::header()).map_err(io)?;
    }
    let len = keep.max(HEADER_LEN);
    seg.readable = len;
    seg.disk = len;
    Ok(file)
}

/// How reading a segment ended.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadEnd {
    /// What the header said.
    pub header: HeaderCheck,
    /// End of the last good record (the header length if none, 0 if the
    /// header is torn).
    pub good_end: u64,
    /// The frame that stopped the reading early, if one did.
    pub bad: Option<BadFrame>,
}

/// Reads the records in the first `limit` bytes of `path` (the whole file for
/// `None`), passing each with its index in the segment to `f`.
///
/// A foreign header or an unknown version is an error; a damaged frame ends
/// the reading and is reported in the returned [`ReadEnd`], never as an error.
pub(crate) fn read<R: DeserializeOwned>(
    path: &Path,
    limit: Option<u64>,
    mut f: impl FnMut(u64, R),
) -> Result<ReadEnd, FlowLogError> {
    let file = File::open(path).map_err(|e| FlowLogError::io(path, e))?;
    let io = |e| FlowLogError::io(path, e);
    let limit = match limit {
        Some(l) => l,
        None => file.metadata().map_err(io)?.len(),
    };
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let mut head = Vec::with_capacity(HEADER_LEN as usize);
    (&mut reader)
        .take(HEADER_LEN.min(limit))
        .read_to_end(&mut head)
        .map_err(io)?;
    let header = codec::check_header(&head);
    match header {
        HeaderCheck::Ok => {}
        HeaderCheck::Torn => {
            return Ok(ReadEnd {
                header,
                good_end: 0,
                bad: None,
            })
        }
        HeaderCheck::Foreign => {
            return Err(FlowLogError::Foreign {
                path: path.to_owned(),
            })
        }
        HeaderCheck::Version(found) => {
            return Err(FlowLogError::UnsupportedVersion {
                path: path.to_owned(),
                found,
                supported: codec::VERSION,
            })
        }
    }
    let body = limit - HEADER_LEN;
    let mut frames = FrameReader::new(reader, body);
    let mut good_end = HEADER_LEN;
    let mut index = 0u64;
    let bad = loop {
        match frames.next_frame().map_err(io)? {
            Frame::End => break None,
            Frame::Bad(why) => break Some(why),
            Frame::Payload(p) => match codec::decode::<R>(p) {
                Ok(record) => {
                    f(index, record);
                    index += 1;
                    good_end = HEADER_LEN + body - frames.remaining();
                }
                Err(_) => break Some(BadFrame::Decode),
            },
        }
    };
    Ok(ReadEnd {
        header,
        good_end,
        bad,
    })
}

/// Reads a whole segment file found on open and builds what the log keeps
/// in memory about it.
pub(crate) fn scan<R: DeserializeOwned>(
    seq: u64,
    path: PathBuf,
    time_ms: impl Fn(&R) -> u64,
) -> Result<(Segment, ReadEnd), FlowLogError> {
    let disk = fs::metadata(&path)
        .map_err(|e| FlowLogError::io(&path, e))?
        .len();
    let mut seg = Segment::new(seq, path.clone(), disk);
    let end = read::<R>(&path, Some(disk), |_, r| seg.note(time_ms(&r)))?;
    seg.readable = end.good_end;
    Ok((seg, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort() {
        assert_eq!(file_name(1), "00000001.flog");
        assert_eq!(file_name(123_456_789), "123456789.flog");
        assert_eq!(parse_name(OsStr::new("00000042.flog")), Some(42));
        assert_eq!(parse_name(OsStr::new("123456789.flog")), Some(123_456_789));
        for bad in [
            "x.flog",
            ".flog",
            "0001.flog.tmp",
            "00000001.log",
            "-1.flog",
        ] {
            assert_eq!(parse_name(OsStr::new(bad)), None, "{bad}");
        }
    }

    #[test]
    fn overlap_uses_min_and_max() {
        let mut s = Segment::new(1, PathBuf::from("x"), HEADER_LEN);
        assert!(
            !s.overlaps(0, u64::MAX),
            "an empty segment overlaps nothing"
        );
        s.note(50);
        s.note(10);
        assert!(s.overlaps(0, 10));
        assert!(s.overlaps(50, 60));
        assert!(s.overlaps(20, 30));
        assert!(!s.overlaps(0, 9));
        assert!(!s.overlaps(51, 100));
    }
}
