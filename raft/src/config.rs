//! Raft timing and snapshot settings suited to a cluster spread over a WAN.

use std::sync::Arc;

use openraft::{Config, ConfigError, SnapshotPolicy};

/// The knobs of a node's Raft member. The defaults suit voters in different
/// regions or clouds: round trips of tens of milliseconds, occasional loss.
///
/// How long a dead leader goes unnoticed follows from them: openraft's
/// followers honour the leader's lease (the longest election timeout) and
/// then wait a random election timeout, so a new leader is elected 0.9 to
/// 1.2 s after the last heartbeat with the defaults, plus a vote's round
/// trip. Alerts must reach their sinks within 3 s across a failover, and
/// writes resume within 1.5 s (the chaos harness measured 1.5 to 1.7 s,
/// and 3.3 s after a split vote, with 400 to 800 ms; hence 300 to 600).
/// The shortest election timeout is still three heartbeats.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftSettings {
    /// The cluster's name (informational, in openraft's logs).
    pub cluster_name: String,
    /// How often the leader sends heartbeats, in milliseconds. It is also
    /// the time limit of one AppendEntries call.
    pub heartbeat_ms: u64,
    /// The shortest time, in milliseconds, a follower waits without hearing
    /// from a leader before it stands for election.
    pub election_timeout_min_ms: u64,
    /// The longest such time, in milliseconds.
    pub election_timeout_max_ms: u64,
    /// Build a snapshot after this many entries were applied since the last.
    pub snapshot_every: u64,
    /// Entries a snapshot covers that are kept nevertheless, so a follower
    /// that is slightly behind catches up from the log, not a snapshot.
    pub keep_logs_after_snapshot: u64,
    /// The largest piece of a snapshot sent in one InstallSnapshot call.
    pub snapshot_chunk_bytes: u64,
    /// The time limit of one InstallSnapshot call, in milliseconds.
    pub install_snapshot_timeout_ms: u64,
    /// The most entries sent in one AppendEntries call.
    pub max_payload_entries: u64,
}

impl Default for RaftSettings {
    fn default() -> Self {
        RaftSettings {
            cluster_name: "stockade".into(),
            heartbeat_ms: 100,
            election_timeout_min_ms: 300,
            election_timeout_max_ms: 600,
            snapshot_every: 1000,
            keep_logs_after_snapshot: 64,
            snapshot_chunk_bytes: 1024 * 1024,
            install_snapshot_timeout_ms: 10_000,
            max_payload_entries: 300,
        }
    }
}

impl RaftSettings {
    /// The openraft configuration, validated.
    pub fn to_config(&self) -> Result<Arc<Config>, Box<ConfigError>> {
        let config = Config {
            cluster_name: self.cluster_name.clone(),
            heartbeat_interval: self.heartbeat_ms,
            election_timeout_min: self.election_timeout_min_ms,
            election_timeout_max: self.election_timeout_max_ms,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_every),
            max_in_snapshot_log_to_keep: self.keep_logs_after_snapshot,
            snapshot_max_chunk_size: self.snapshot_chunk_bytes,
            install_snapshot_timeout: self.install_snapshot_timeout_ms,
            max_payload_entries: self.max_payload_entries,
            // A follower further behind than this is sent a snapshot; it
            // must exceed the snapshot interval or snapshots cannot help.
            replication_lag_threshold: self.snapshot_every.saturating_mul(2).max(5000),
            ..Config::default()
        };
        Ok(Arc::new(config.validate().map_err(Box::new)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        let config = RaftSettings::default().to_config().expect("valid defaults");
        assert_eq!(config.heartbeat_interval, 100);
        assert_eq!(config.snapshot_policy, SnapshotPolicy::LogsSinceLast(1000));
    }

    #[test]
    fn an_election_timeout_below_the_heartbeat_is_refused() {
        let settings = RaftSettings {
            election_timeout_min_ms: 50,
            election_timeout_max_ms: 90,
            ..RaftSettings::default()
        };
        assert!(settings.to_config().is_err());
    }
}
