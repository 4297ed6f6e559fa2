//! This node's flow log: the durable, size-bounded record of what its
//! dataplane decided, with live subscribers for streaming to a SIEM.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde::{Deserialize, Serialize};
use stockade_flowlog::{FlowLog, FlowLogError, FlowLogStats, Limits, Record};
use stockade_policy::{FlowFilter, FlowRecord};
use tokio::sync::broadcast;
use utoipa::ToSchema;

/// Records a slow stream subscriber may fall behind by before it misses
/// some (it is told how many).
const LIVE_BACKLOG: usize = 4096;

/// A flow record as the log keeps it (the log's trait is not the policy
/// crate's to implement).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent)]
struct Stored(FlowRecord);

impl Record for Stored {
    fn time_ms(&self) -> u64 {
        self.0.last_ms
    }
}

/// The flow log and its live feed.
pub struct FlowStore {
    /// Queries read side by side; an append waits for them.
    log: RwLock<FlowLog<Stored>>,
    live: broadcast::Sender<Arc<FlowRecord>>,
    counters: Counters,
}

/// What the collector has done, for status and metrics.
#[derive(Debug, Default)]
struct Counters {
    events_read: AtomicU64,
    records: AtomicU64,
    connections: AtomicU64,
    write_errors: AtomicU64,
    summaries: AtomicU64,
}

/// The flow part of `GET /v1/status`.
#[derive(Clone, Debug, Default, Serialize, ToSchema)]
pub struct FlowStatus {
    /// Events read from the kernel's ring buffer since the daemon started.
    pub events_read: u64,
    /// Flow records written since the daemon started.
    pub records_written: u64,
    /// Connections (and UDP datagrams) those records count.
    pub connections: u64,
    /// Writes of the log that failed (the records were lost).
    pub write_errors: u64,
    /// Bytes the log holds on disk.
    pub log_bytes: u64,
    /// Records the log holds.
    pub log_records: u64,
    /// Oldest record's time (ms since the Unix epoch), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest_ms: Option<u64>,
    /// Records dropped to keep the log within its size.
    pub dropped_records: u64,
    /// Records found damaged on disk and skipped.
    pub corrupt_records: u64,
    /// Flow summaries the kernel's map held at the last collection.
    pub summaries: u64,
}

impl FlowStore {
    /// Opens (or creates) the log in `dir`.
    pub fn open(dir: &Path, limits: Limits) -> Result<Self, FlowLogError> {
        Ok(FlowStore {
            log: RwLock::new(FlowLog::open(dir, limits)?),
            live: broadcast::channel(LIVE_BACKLOG).0,
            counters: Counters::default(),
        })
    }

    fn read(&self) -> RwLockReadGuard<'_, FlowLog<Stored>> {
        self.log.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, FlowLog<Stored>> {
        self.log.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends `records` and hands them to live subscribers.
    pub fn append(&self, records: Vec<FlowRecord>) {
        if records.is_empty() {
            return;
        }
        let connections: u64 = records.iter().map(|r| r.connections).sum();
        let stored: Vec<Stored> = records.into_iter().map(Stored).collect();
        match self.write().append(&stored) {
            Ok(()) => {
                self.counters
                    .records
                    .fetch_add(stored.len() as u64, Ordering::Relaxed);
                self.counters
                    .connections
                    .fetch_add(connections, Ordering::Relaxed);
            }
            Err(e) => {
                self.counters.write_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, records = stored.len(), "cannot write the flow log");
            }
        }
        for Stored(record) in stored {
            // No subscriber is no error.
            let _ = self.live.send(Arc::new(record));
        }
    }

    /// Makes what was appended durable.
    pub fn sync(&self) {
        if let Err(e) = self.write().sync() {
            tracing::warn!(error = %e, "cannot sync the flow log");
        }
    }

    /// Counts events read from the ring buffer.
    pub fn count_events(&self, events: u64) {
        self.counters
            .events_read
            .fetch_add(events, Ordering::Relaxed);
    }

    /// Records how many flow summaries the kernel's map held when last
    /// read.
    pub fn set_summaries(&self, summaries: usize) {
        self.counters
            .summaries
            .store(summaries as u64, Ordering::Relaxed);
    }

    /// The records that match `filter`, newest first, at most `limit`.
    pub fn query(
        &self,
        filter: &FlowFilter,
        limit: usize,
    ) -> Result<Vec<FlowRecord>, FlowLogError> {
        let since = filter.since_ms.unwrap_or(0);
        let until = filter.until_ms.unwrap_or(u64::MAX);
        let found = self
            .read()
            .query(since, until, |stored| filter.matches(&stored.0), limit)?;
        Ok(found.into_iter().map(|Stored(record)| record).collect())
    }

    /// Calls `each` with every record last seen at or after `since_ms`,
    /// newest segments first (for counts, which do not care about order).
    pub fn for_each(
        &self,
        since_ms: u64,
        mut each: impl FnMut(&FlowRecord),
    ) -> Result<(), FlowLogError> {
        // Nothing is kept: `keep` sees every record in the range and
        // refuses it, so the result stays empty however long the log is.
        self.read().query(
            since_ms,
            u64::MAX,
            |stored| {
                each(&stored.0);
                false
            },
            usize::MAX,
        )?;
        Ok(())
    }

    /// A feed of the records appended from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<FlowRecord>> {
        self.live.subscribe()
    }

    /// Counters and the log's size.
    pub fn status(&self) -> FlowStatus {
        let FlowLogStats {
            bytes,
            records,
            oldest_ms,
            dropped_records,
            corrupt_records,
            ..
        } = self.read().stats();
        let c = &self.counters;
        FlowStatus {
            events_read: c.events_read.load(Ordering::Relaxed),
            records_written: c.records.load(Ordering::Relaxed),
            connections: c.connections.load(Ordering::Relaxed),
            write_errors: c.write_errors.load(Ordering::Relaxed),
            log_bytes: bytes,
            log_records: records,
            oldest_ms,
            dropped_records,
            corrupt_records,
            summaries: c.summaries.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use stockade_policy::{
        Action, Direction, FlowPeer, FlowProcess, IdentityName, L4Protocol, NodeId, PeerClass,
        RuleRef,
    };

    use super::*;

    fn record(port: u16, last_ms: u64) -> FlowRecord {
        let end = |ip: [u8; 4], identity: Option<IdentityName>| FlowPeer {
            ip: ip.into(),
            port,
            class: PeerClass::Workload,
            zone: identity.as_ref().map(|i| i.zone.clone()),
            identity,
            node: Some(NodeId(1)),
            process: None,
        };
        let web = IdentityName {
            zone: "prod".into(),
            app: "web".into(),
            service: "main".into(),
        };
        FlowRecord {
            node: NodeId(1),
            first_ms: last_ms - 5,
            last_ms,
            direction: Direction::Egress,
            protocol: L4Protocol::Tcp,
            src: FlowPeer {
                process: Some(FlowProcess {
                    pid: 7,
                    exe: "/usr/bin/web".into(),
                    user: None,
                }),
                ..end([10, 0, 0, 1], Some(web))
            },
            dst: end([10, 0, 0, 2], None),
            action: Action::Allow,
            rule: RuleRef::Rule(stockade_policy::RuleId(17)),
            connections: 3,
            encrypted: false,
        }
    }

    #[test]
    fn records_come_back_whole_after_a_reopen_and_filters_apply() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = FlowStore::open(dir.path(), Limits::default()).expect("open");
        let mut live = store.subscribe();
        let written = vec![record(80, 100), record(5432, 200)];
        store.append(written.clone());
        assert_eq!(live.try_recv().expect("live").as_ref(), &written[0]);
        store.sync();
        drop(store);

        let store = FlowStore::open(dir.path(), Limits::default()).expect("reopen");
        let all = store.query(&FlowFilter::default(), 10).expect("query");
        assert_eq!(
            all,
            vec![written[1].clone(), written[0].clone()],
            "newest first"
        );
        let db = FlowFilter {
            port: Some(5432),
            ..FlowFilter::default()
        };
        assert_eq!(
            store.query(&db, 10).expect("query"),
            vec![written[1].clone()]
        );
        let mut ports = vec![];
        store
            .for_each(150, |r| ports.push(r.dst.port))
            .expect("scan");
        assert_eq!(ports, vec![5432], "only the records since 150");
        let status = store.status();
        assert_eq!(status.log_records, 2);
        assert!(status.log_bytes > 0);
    }
}
