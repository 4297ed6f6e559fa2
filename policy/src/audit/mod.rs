//! The audit log: who changed what through the admin API, when, from where,
//! and the policy version it produced.
//!
//! The node that receives an API write stamps it with its [`Provenance`]
//! (the authenticated token, the client's address, the time) and commits it
//! wrapped in [`Command::Audited`](crate::Command::Audited), in the same log
//! entry as the change itself. Applying that entry appends an
//! [`AuditEntry`] to the replicated [`AuditLog`]: every node holds the same
//! log, it survives snapshots, and no clock is read while applying. Writes
//! nodes make on their own (inventories, alerts, tunnel keys, endpoints) are
//! not API changes and are not audited.

use std::collections::VecDeque;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::access::Role;
use crate::alert::{AlertClass, AlertId, AlertKind, NewAlert};
use crate::command::{Applied, Command};
use crate::error::ValidationError;
use crate::ids::NodeId;
use crate::state::ClusterState;
use crate::Severity;

mod redact;

pub use redact::{command_kind, redacted_detail, MAX_DETAIL_CHARS};

/// The token that made a change.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Author {
    /// The token's public id.
    pub token_id: String,
    /// The token's name, as it was when the change was made.
    pub token_name: String,
    /// The token's role.
    pub role: Role,
}

/// Where an API write came from: recorded with it, in the same log entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Provenance {
    /// The token the request was authenticated with.
    pub author: Author,
    /// The client's address, as the receiving node saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub address: Option<SocketAddr>,
    /// The node whose API received the request.
    pub node: NodeId,
    /// When the request arrived (ms since the Unix epoch, the receiving
    /// node's clock).
    pub at_ms: u64,
}

/// What became of an audited command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Outcome {
    /// It took effect.
    Applied,
    /// It was committed but refused against the state it met (a concurrent
    /// change got there first); it changed nothing.
    Refused {
        /// Why, naming the field at fault.
        reason: String,
    },
}

/// One change made through the API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    /// Its position in the audit log (1, 2, …), never reused.
    pub seq: u64,
    /// The Raft log index of the write: the policy version it produced
    /// (writes that arrive together may share one).
    pub version: u64,
    /// When the request arrived (ms since the Unix epoch).
    pub at_ms: u64,
    /// Who made it.
    pub author: Author,
    /// The client's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub address: Option<SocketAddr>,
    /// The node whose API received it.
    pub node: NodeId,
    /// The command's kind (`upsert_rule`, `batch`, `rollback_policy`,
    /// `create_api_token`, …).
    pub kind: String,
    /// The command as compact JSON, secrets redacted, cut to
    /// [`MAX_DETAIL_CHARS`] characters.
    pub detail: String,
    /// Whether it took effect.
    pub outcome: Outcome,
    /// Whether it changed the policy document (then `version` is listed in
    /// the policy history).
    #[serde(default)]
    pub policy_changed: bool,
}

/// Which audit entries a query wants.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditFilter {
    /// Only entries at or after this time (ms since the Unix epoch).
    #[serde(default)]
    pub since_ms: Option<u64>,
    /// Only entries of the token with this id or name.
    #[serde(default)]
    pub token: Option<String>,
    /// Only entries of this kind.
    #[serde(default)]
    pub kind: Option<String>,
    /// At most this many entries, the most recent ones.
    #[serde(default)]
    pub limit: Option<usize>,
}

impl AuditFilter {
    /// Whether `entry` passes the filter (all but `limit`).
    pub fn matches(&self, entry: &AuditEntry) -> bool {
        self.since_ms.is_none_or(|t| entry.at_ms >= t)
            && self
                .token
                .as_ref()
                .is_none_or(|t| entry.author.token_id == *t || entry.author.token_name == *t)
            && self.kind.as_ref().is_none_or(|k| entry.kind == *k)
    }
}

/// The replicated audit log, oldest first, bounded by
/// [`Settings::audit_retention`](crate::Settings::audit_retention).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditLog {
    /// The entries still held.
    pub entries: VecDeque<AuditEntry>,
    /// The sequence number of the next entry.
    pub next_seq: u64,
    /// Entries dropped to stay within the retention, in all.
    pub trimmed: u64,
}

impl Default for AuditLog {
    fn default() -> Self {
        AuditLog {
            entries: VecDeque::new(),
            next_seq: 1,
            trimmed: 0,
        }
    }
}

impl AuditLog {
    /// Appends an entry (its `seq` is assigned here) and drops the oldest
    /// past `retention` (at least the new one is kept). Returns the entry.
    pub fn append(&mut self, mut entry: AuditEntry, retention: usize) -> &AuditEntry {
        entry.seq = self.next_seq;
        self.next_seq += 1;
        self.entries.push_back(entry);
        while self.entries.len() > retention.max(1) {
            self.entries.pop_front();
            self.trimmed += 1;
        }
        // Just pushed: the deque is not empty.
        &self.entries[self.entries.len() - 1]
    }

    /// Adds a restored backup's entries that this log does not hold (the
    /// same change, whatever its `seq`), each under a new `seq`, and keeps
    /// the log in time order; then drops the oldest past `retention`.
    /// Nothing the log held is removed or changed: a restore cannot erase
    /// the record of what came after the backup.
    pub fn add_restored(&mut self, restored: Vec<AuditEntry>, retention: usize) {
        let mut held: std::collections::BTreeSet<String> =
            self.entries.iter().map(AuditEntry::change_key).collect();
        let mut added = false;
        for mut entry in restored {
            if !held.insert(entry.change_key()) {
                continue;
            }
            entry.seq = self.next_seq;
            self.next_seq += 1;
            self.entries.push_back(entry);
            added = true;
        }
        if !added {
            return;
        }
        self.entries
            .make_contiguous()
            .sort_by_key(|e| (e.at_ms, e.seq));
        while self.entries.len() > retention.max(1) {
            self.entries.pop_front();
            self.trimmed += 1;
        }
    }

    /// The entries `filter` wants, oldest first: the last `limit` of them.
    pub fn query(&self, filter: &AuditFilter) -> Vec<&AuditEntry> {
        let mut found: Vec<&AuditEntry> =
            self.entries.iter().filter(|e| filter.matches(e)).collect();
        if let Some(limit) = filter.limit {
            let skip = found.len().saturating_sub(limit);
            found.drain(..skip);
        }
        found
    }

    /// The entries that produced policy version `version`.
    pub fn at_version(&self, version: u64) -> impl Iterator<Item = &AuditEntry> {
        self.entries.iter().filter(move |e| e.version == version)
    }
}

/// Records the audited `command` applied at `version` with `result`, and,
/// when a sink asked for configuration changes, raises the entry as a
/// `config_change` alert for it.
pub(crate) fn record(
    state: &mut ClusterState,
    version: u64,
    by: &Provenance,
    command: &Command,
    result: &Result<Applied, ValidationError>,
    policy_changed: bool,
) {
    let entry = AuditEntry {
        seq: 0,
        version,
        at_ms: by.at_ms,
        author: by.author.clone(),
        address: by.address,
        node: by.node,
        kind: command_kind(command),
        detail: redacted_detail(command),
        outcome: match result {
            Ok(_) => Outcome::Applied,
            Err(e) => Outcome::Refused {
                reason: e.to_string(),
            },
        },
        policy_changed,
    };
    let retention = state.settings.audit_retention as usize;
    let entry = state.audit.append(entry, retention).clone();
    if state.sinks.values().any(|s| s.audit) {
        let retention = state.settings.alert_retention as usize;
        state.alerts.append(&[entry.to_alert()], retention);
    }
}

impl AuditEntry {
    /// Everything about the change but its `seq`: equal for the same change
    /// recorded in two logs.
    fn change_key(&self) -> String {
        let mut key = self.clone();
        key.seq = 0;
        // Entries are plain data with string keys: encoding cannot fail.
        serde_json::to_string(&key)
            .unwrap_or_else(|e| unreachable!("an audit entry is always valid JSON: {e}"))
    }

    /// One line for people: `upsert_rule by ci-bot (operator) from
    /// 10.0.0.5:41234 at version 42`.
    pub fn summary(&self) -> String {
        let from = self
            .address
            .map(|a| format!(" from {a}"))
            .unwrap_or_default();
        let outcome = match &self.outcome {
            Outcome::Applied => String::new(),
            Outcome::Refused { reason } => format!(" (refused: {reason})"),
        };
        format!(
            "{} by token `{}` ({}){from} at version {}{outcome}",
            self.kind, self.author.token_name, self.author.role, self.version
        )
    }

    /// The entry as a `config_change` alert, for sinks that take the audit
    /// log: its id (`audit-SEQ`) is stable, so repeats can be dropped.
    pub fn to_alert(&self) -> NewAlert {
        NewAlert {
            id: AlertId(format!("audit-{}", self.seq)),
            kind: AlertKind::ConfigChange,
            severity: Severity::Info,
            class: AlertClass::FirstSeen,
            node: self.node,
            subject_node: None,
            sink: None,
            workload: None,
            flow: None,
            count: 1,
            first_seen_ms: self.at_ms,
            last_seen_ms: self.at_ms,
            summary: self.summary(),
            change: Some(Box::new(self.clone())),
        }
    }
}

#[cfg(test)]
mod tests;
