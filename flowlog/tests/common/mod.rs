//! What the flow-log integration tests share: a record type and a way to look
//! at segment files frame by frame.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use stockade_flowlog::{FlowLog, Limits, Record};

/// A record as postcard likes it: plain fields, nothing skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rec {
    pub t: u64,
    pub id: u64,
    pub name: String,
}

impl Record for Rec {
    fn time_ms(&self) -> u64 {
        self.t
    }
}

/// Record `id` at time `t` with a name of a few bytes.
pub fn rec(id: u64, t: u64) -> Rec {
    Rec {
        t,
        id,
        name: format!("prod/web/{id}"),
    }
}

/// Limits small enough to make many segments from a few records.
pub fn small(segment_bytes: u64, segments: u64) -> Limits {
    Limits {
        max_bytes: segment_bytes * segments,
        segment_bytes,
    }
}

pub fn open(dir: &Path, limits: Limits) -> FlowLog<Rec> {
    FlowLog::open(dir, limits).expect("opens")
}

/// Every record, newest first.
pub fn all(log: &FlowLog<Rec>) -> Vec<Rec> {
    log.query(0, u64::MAX, |_| true, usize::MAX)
        .expect("queries")
}

/// `records` in the order a full query must return them: by time, newest
/// first, and among equal times the later appended first.
pub fn newest_first(records: &[Rec]) -> Vec<Rec> {
    let mut v: Vec<Rec> = records.iter().rev().cloned().collect();
    v.sort_by_key(|r| std::cmp::Reverse(r.t));
    v
}

/// Segment files of `dir`, oldest first.
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .expect("lists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "flog"))
        .collect();
    v.sort();
    v
}

/// `(offset, length)` of each frame's payload in a segment file, read from
/// the format documented in the crate (12-byte header, 8-byte frame header).
pub fn payloads(path: &Path) -> Vec<(usize, usize)> {
    let bytes = fs::read(path).expect("reads");
    let mut at = 12;
    let mut out = Vec::new();
    while at + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        if at + 8 + len > bytes.len() {
            break;
        }
        out.push((at + 8, len));
        at += 8 + len;
    }
    out
}
