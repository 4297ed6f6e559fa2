//! The record of what the clients did and saw: every operation with its
//! call and its outcome, timed on a monotonic clock and stamped with the
//! wall clock, as the checkers and the report read it.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// What a client asked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "f", rename_all = "kebab-case")]
pub enum Op {
    /// Set register `key` to `value`.
    Write {
        /// The register.
        key: u32,
        /// The value, unique over the run.
        value: u64,
    },
    /// Read register `key`.
    Read {
        /// The register.
        key: u32,
        /// Whether the read asked for linearizability (otherwise it is the
        /// node's local state, which may lag).
        linearizable: bool,
    },
    /// Add `element` to set `key`.
    Add {
        /// The set.
        key: u32,
        /// The element, unique over the run.
        element: u64,
    },
    /// Read the whole of set `key`, linearizably.
    ReadSet {
        /// The set.
        key: u32,
    },
}

impl Op {
    /// A short name for reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Write { .. } => "write",
            Op::Read {
                linearizable: true, ..
            } => "lin-read",
            Op::Read { .. } => "read",
            Op::Add { .. } => "add",
            Op::ReadSet { .. } => "read-set",
        }
    }
}

/// What a read returned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Seen {
    /// A register's value (`None`: absent).
    Register(Option<u64>),
    /// A set's elements.
    Set(BTreeSet<u64>),
}

/// How an operation ended, as the client saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It took effect (a write) or returned a value (a read).
    Ok,
    /// It certainly did not take effect (refused, or never sent).
    Fail,
    /// The client cannot know (a timeout, a reply lost): it may have taken
    /// effect at any time after its call, or never.
    Info,
}

/// One operation, from call to outcome.
#[derive(Clone, Debug, Serialize)]
pub struct Entry {
    /// The client that ran it.
    pub client: usize,
    /// The host whose node it was sent to.
    pub host: usize,
    /// What was asked.
    #[serde(flatten)]
    pub op: Op,
    /// When it was called, in nanoseconds since the run started.
    pub call_ns: u64,
    /// When the client learned its outcome (or gave up), likewise.
    pub end_ns: u64,
    /// When it was called, in milliseconds since the Unix epoch.
    pub wall_ms: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// What a read returned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seen: Option<Seen>,
    /// The log index a write was committed at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// Why it failed or is unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a finished call reports to the history.
#[derive(Clone, Debug)]
pub struct Completion {
    /// How it ended.
    pub outcome: Outcome,
    /// What a read returned.
    pub seen: Option<Seen>,
    /// The log index a write was committed at.
    pub index: Option<u64>,
    /// Why it failed or is unknown.
    pub error: Option<String>,
}

/// The history of one run, shared by its clients.
#[derive(Debug)]
pub struct History {
    started: Instant,
    started_wall: SystemTime,
    entries: Mutex<Vec<Entry>>,
}

/// An operation called and not yet finished.
#[derive(Debug)]
pub struct Call {
    client: usize,
    host: usize,
    op: Op,
    call_ns: u64,
    wall_ms: u64,
}

impl Default for History {
    fn default() -> Self {
        History::new()
    }
}

impl History {
    /// An empty history whose clock starts now.
    pub fn new() -> History {
        History {
            started: Instant::now(),
            started_wall: SystemTime::now(),
            entries: Mutex::new(Vec::new()),
        }
    }

    /// Nanoseconds since the run started.
    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Seconds since the run started.
    pub fn now_s(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// When the run started, in milliseconds since the Unix epoch.
    pub fn started_wall_ms(&self) -> u64 {
        wall_ms(self.started_wall)
    }

    /// Records that `client` calls `op` on `host`'s node now.
    pub fn call(&self, client: usize, host: usize, op: Op) -> Call {
        Call {
            client,
            host,
            op,
            call_ns: self.now_ns(),
            wall_ms: wall_ms(SystemTime::now()),
        }
    }

    /// Records how `call` ended, now.
    pub fn finish(&self, call: Call, completion: Completion) -> Entry {
        let entry = Entry {
            client: call.client,
            host: call.host,
            op: call.op,
            call_ns: call.call_ns,
            end_ns: self.now_ns(),
            wall_ms: call.wall_ms,
            outcome: completion.outcome,
            seen: completion.seen,
            index: completion.index,
            error: completion.error,
        };
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(entry.clone());
        entry
    }

    /// Every finished operation so far, in the order they finished.
    pub fn entries(&self) -> Vec<Entry> {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Writes the history as JSON lines, Jepsen-style: an `invoke` event
    /// at each call and an `ok`, `fail` or `info` event at each outcome,
    /// in time order.
    pub fn write_jsonl(&self, path: &Path) -> std::io::Result<()> {
        let entries = self.entries();
        let mut events: Vec<(u64, serde_json::Value)> = Vec::with_capacity(entries.len() * 2);
        for (id, entry) in entries.iter().enumerate() {
            let mut invoke = serde_json::json!({
                "type": "invoke",
                "id": id,
                "client": entry.client,
                "host": entry.host,
                "time_ns": entry.call_ns,
                "wall_ms": entry.wall_ms,
            });
            merge(&mut invoke, serde_json::to_value(&entry.op)?);
            let mut done = serde_json::json!({
                "type": entry.outcome,
                "id": id,
                "client": entry.client,
                "host": entry.host,
                "time_ns": entry.end_ns,
                "wall_ms": entry.wall_ms + (entry.end_ns - entry.call_ns) / 1_000_000,
                "latency_ms": (entry.end_ns - entry.call_ns) as f64 / 1e6,
            });
            merge(&mut done, serde_json::to_value(&entry.op)?);
            for (name, value) in [
                ("seen", entry.seen.as_ref().map(serde_json::to_value)),
                ("index", entry.index.map(|i| Ok(i.into()))),
                ("error", entry.error.clone().map(|e| Ok(e.into()))),
            ] {
                if let Some(value) = value {
                    done[name] = value?;
                }
            }
            events.push((entry.call_ns, invoke));
            events.push((entry.end_ns, done));
        }
        events.sort_by_key(|(time, _)| *time);
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        for (_, event) in events {
            serde_json::to_writer(&mut out, &event)?;
            out.write_all(b"\n")?;
        }
        out.flush()
    }
}

fn merge(into: &mut serde_json::Value, from: serde_json::Value) {
    if let (Some(into), serde_json::Value::Object(from)) = (into.as_object_mut(), from) {
        into.extend(from);
    }
}

fn wall_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jsonl_history_has_an_invoke_and_an_outcome_per_operation_in_time_order() {
        let history = History::new();
        let first = history.call(0, 1, Op::Write { key: 3, value: 7 });
        let second = history.call(
            1,
            2,
            Op::Read {
                key: 3,
                linearizable: true,
            },
        );
        history.finish(
            second,
            Completion {
                outcome: Outcome::Ok,
                seen: Some(Seen::Register(None)),
                index: None,
                error: None,
            },
        );
        history.finish(
            first,
            Completion {
                outcome: Outcome::Info,
                seen: None,
                index: None,
                error: Some("timed out".into()),
            },
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("history.jsonl");
        history.write_jsonl(&path).expect("write");
        let lines: Vec<serde_json::Value> = std::fs::read_to_string(&path)
            .expect("read")
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        let shape: Vec<(String, String)> = lines
            .iter()
            .map(|l| {
                (
                    l["type"].as_str().unwrap_or("").to_owned(),
                    l["f"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            [
                ("invoke".into(), "write".into()),
                ("invoke".into(), "read".into()),
                ("ok".into(), "read".into()),
                ("info".into(), "write".into()),
            ]
        );
        assert_eq!(lines[2]["seen"], serde_json::Value::Null);
        assert_eq!(lines[2]["linearizable"], true);
        assert_eq!(lines[3]["error"], "timed out");
        let times: Vec<u64> = lines.iter().filter_map(|l| l["time_ns"].as_u64()).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    }
}
