//! The replicated alert log: records in raise order, each sink's delivery
//! cursor, and the bound that keeps the backlog from growing without end.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{Alert, AlertClass, AlertFlow, AlertId, AlertKind, AlertWorkload};
use crate::audit::AuditEntry;
use crate::ids::NodeId;
use crate::Severity;

/// At most this many alerts in one `RaiseAlerts` command.
pub const MAX_ALERTS_PER_COMMAND: usize = 1000;

/// An alert as a node raises it: everything but its place in the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewAlert {
    /// Its stable id.
    pub id: AlertId,
    /// What it is about.
    pub kind: AlertKind,
    /// How serious it is.
    pub severity: Severity,
    /// How often its cause was seen.
    pub class: AlertClass,
    /// The node that raised it.
    pub node: NodeId,
    /// The node it is about, for node alerts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_node: Option<NodeId>,
    /// The sink it is about, for sink alerts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sink: Option<String>,
    /// The workload it concerns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<AlertWorkload>,
    /// The flow it concerns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow: Option<AlertFlow>,
    /// How many occurrences it stands for (at least one).
    pub count: u64,
    /// When the first happened (ms since the Unix epoch).
    pub first_seen_ms: u64,
    /// When the last happened (ms since the Unix epoch).
    pub last_seen_ms: u64,
    /// One line for people.
    pub summary: String,
    /// The audit log entry, for a `config_change` alert (raised by the
    /// state machine itself, never by a node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<Box<AuditEntry>>,
}

impl NewAlert {
    /// The alert as the log holds it at sequence number `seq`.
    pub fn into_alert(self, seq: u64) -> Alert {
        Alert {
            id: self.id,
            seq,
            kind: self.kind,
            severity: self.severity,
            class: self.class,
            node: self.node,
            subject_node: self.subject_node,
            sink: self.sink,
            workload: self.workload,
            flow: self.flow,
            count: self.count,
            first_seen_ms: self.first_seen_ms,
            last_seen_ms: self.last_seen_ms,
            summary: self.summary,
            change: self.change,
        }
    }
}

/// How far a sink has been delivered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Cursor {
    /// Every alert with a sequence number up to this one has been delivered
    /// (or was not for this sink).
    pub through: u64,
    /// When the leader last recorded progress (ms since the Unix epoch).
    pub at_ms: u64,
}

/// The alerts the cluster holds and how far each sink has received them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AlertLog {
    /// The records still held, by sequence number.
    pub records: BTreeMap<u64, Alert>,
    /// The sequence number of the next record.
    pub next_seq: u64,
    /// Each sink's delivery cursor, by sink name.
    pub cursors: BTreeMap<String, Cursor>,
    /// Nodes a `node_down` alert reported and no `node_up` has since.
    pub nodes_down: BTreeSet<NodeId>,
    /// Sinks a `sink_failing` alert reported and no `sink_recovered` has since.
    pub sinks_failing: BTreeSet<String>,
    /// Undelivered alerts dropped because the backlog was full, in all
    /// (each drop is also told by a `backlog_overflow` alert).
    pub dropped: u64,
}

impl Default for AlertLog {
    fn default() -> Self {
        AlertLog {
            records: BTreeMap::new(),
            next_seq: 1,
            cursors: BTreeMap::new(),
            nodes_down: BTreeSet::new(),
            sinks_failing: BTreeSet::new(),
            dropped: 0,
        }
    }
}

impl AlertLog {
    /// The sequence number of the last record ever appended (0 if none).
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// Whether a record with this id is held.
    pub fn contains(&self, id: &AlertId) -> bool {
        // Ids repeat only when a node retries a write that did commit; the
        // retry comes soon after, so looking at the newest records suffices.
        self.records
            .values()
            .rev()
            .take(4 * MAX_ALERTS_PER_COMMAND)
            .any(|a| a.id == *id)
    }

    /// The lowest cursor over all sinks: records after it are still owed to
    /// some sink. With no sink, nothing is owed.
    pub fn delivered_to_all(&self) -> u64 {
        self.cursors
            .values()
            .map(|c| c.through)
            .min()
            .unwrap_or(self.last_seq())
    }

    /// Appends alerts (skipping ids already held: a retried write), keeps
    /// the node and sink health sets current, then trims to `retention`.
    pub(crate) fn append(&mut self, alerts: &[NewAlert], retention: usize) {
        for alert in alerts {
            if self.contains(&alert.id) {
                continue;
            }
            match alert.kind {
                AlertKind::NodeDown => self.nodes_down.extend(alert.subject_node),
                AlertKind::NodeUp => {
                    if let Some(node) = alert.subject_node {
                        self.nodes_down.remove(&node);
                    }
                }
                AlertKind::SinkFailing => self.sinks_failing.extend(alert.sink.clone()),
                AlertKind::SinkRecovered => {
                    if let Some(sink) = &alert.sink {
                        self.sinks_failing.remove(sink);
                    }
                }
                _ => {}
            }
            let seq = self.next_seq;
            self.next_seq += 1;
            self.records.insert(seq, alert.clone().into_alert(seq));
        }
        self.trim(retention);
    }

    /// Moves a sink's cursor forward (never back: a late acknowledgement
    /// from a deposed leader changes nothing).
    pub(crate) fn acknowledge(&mut self, sink: &str, through: u64, at_ms: u64) {
        let cursor = self.cursors.entry(sink.to_owned()).or_default();
        if through > cursor.through {
            cursor.through = through;
        }
        cursor.at_ms = cursor.at_ms.max(at_ms);
    }

    /// A new sink starts at the end of the log: it is told what happens from
    /// now on, not the history.
    pub(crate) fn add_sink(&mut self, sink: &str) {
        let through = self.last_seq();
        self.cursors
            .entry(sink.to_owned())
            .or_insert(Cursor { through, at_ms: 0 });
    }

    /// Forgets a removed sink's cursor and health.
    pub(crate) fn remove_sink(&mut self, sink: &str) {
        self.cursors.remove(sink);
        self.sinks_failing.remove(sink);
    }

    /// Keeps at most `retention` records. Records every sink has received go
    /// first; if undelivered ones must go too, they are folded into one
    /// `backlog_overflow` alert, so what was dropped is still told.
    fn trim(&mut self, retention: usize) {
        let retention = retention.max(2);
        if self.records.len() <= retention {
            return;
        }
        let delivered = self.delivered_to_all();
        while self.records.len() > retention {
            match self.records.first_key_value() {
                Some((&seq, _)) if seq <= delivered => {
                    self.records.remove(&seq);
                }
                _ => break,
            }
        }
        if self.records.len() <= retention {
            return;
        }
        // One slot for the summary: drop the oldest undelivered records.
        let excess = self.records.len() - retention + 1;
        let mut dropped = 0;
        let mut kinds: BTreeMap<AlertKind, u64> = BTreeMap::new();
        let (mut first_ms, mut last_ms) = (u64::MAX, 0);
        let mut raised_by = NodeId(0);
        for _ in 0..excess {
            let Some((_, alert)) = self.records.pop_first() else {
                break;
            };
            // An earlier summary is folded in by what it stood for.
            let stands_for = match alert.kind {
                AlertKind::BacklogOverflow => alert.count,
                _ => 1,
            };
            dropped += stands_for;
            *kinds.entry(alert.kind).or_default() += stands_for;
            first_ms = first_ms.min(alert.first_seen_ms);
            last_ms = last_ms.max(alert.last_seen_ms);
            raised_by = alert.node;
        }
        // Summaries stand for alerts already counted by an earlier trim.
        let newly = kinds
            .iter()
            .filter(|(k, _)| **k != AlertKind::BacklogOverflow)
            .map(|(_, n)| n)
            .sum::<u64>();
        self.dropped += newly;
        let breakdown = kinds
            .iter()
            .map(|(kind, n)| format!("{n} {kind}"))
            .collect::<Vec<_>>()
            .join(", ");
        let seq = self.next_seq;
        self.next_seq += 1;
        let summary = NewAlert {
            id: AlertId(format!("overflow-{seq}")),
            kind: AlertKind::BacklogOverflow,
            severity: Severity::Critical,
            class: AlertClass::Burst,
            node: raised_by,
            subject_node: None,
            sink: None,
            workload: None,
            flow: None,
            count: dropped,
            first_seen_ms: first_ms.min(last_ms),
            last_seen_ms: last_ms,
            summary: format!(
                "{dropped} undelivered alerts were dropped because the backlog holds {retention} ({breakdown})"
            ),
            change: None,
        };
        self.records.insert(seq, summary.into_alert(seq));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(id: u64, kind: AlertKind) -> NewAlert {
        NewAlert {
            id: AlertId(format!("n1.{id}")),
            kind,
            severity: Severity::Warning,
            class: AlertClass::FirstSeen,
            node: NodeId(1),
            subject_node: None,
            sink: None,
            workload: None,
            flow: None,
            count: 1,
            first_seen_ms: id,
            last_seen_ms: id,
            summary: format!("alert {id}"),
            change: None,
        }
    }

    fn raise(log: &mut AlertLog, ids: std::ops::Range<u64>, retention: usize) {
        let alerts: Vec<_> = ids.map(|i| alert(i, AlertKind::PolicyViolation)).collect();
        log.append(&alerts, retention);
    }

    #[test]
    fn a_retried_write_appends_nothing() {
        let mut log = AlertLog::default();
        raise(&mut log, 0..3, 100);
        raise(&mut log, 0..3, 100);
        assert_eq!(log.records.len(), 3);
        assert_eq!(log.last_seq(), 3);
    }

    #[test]
    fn cursors_only_move_forward_and_new_sinks_start_at_the_end() {
        let mut log = AlertLog::default();
        raise(&mut log, 0..5, 100);
        log.add_sink("siem");
        assert_eq!(log.cursors["siem"].through, 5);
        log.acknowledge("siem", 3, 7);
        assert_eq!(log.cursors["siem"].through, 5, "a late ack does not rewind");
        raise(&mut log, 5..8, 100);
        log.acknowledge("siem", 8, 9);
        assert_eq!(
            log.cursors["siem"],
            Cursor {
                through: 8,
                at_ms: 9
            }
        );
    }

    #[test]
    fn delivered_alerts_are_trimmed_before_undelivered_ones() {
        let mut log = AlertLog::default();
        log.add_sink("siem");
        raise(&mut log, 0..10, 10);
        log.acknowledge("siem", 4, 0);
        raise(&mut log, 10..14, 10);
        assert_eq!(log.records.len(), 10);
        assert_eq!(
            log.records.keys().next(),
            Some(&5),
            "the four delivered went"
        );
        assert_eq!(log.dropped, 0);
    }

    #[test]
    fn an_overflowing_backlog_is_summarised_never_silently_dropped() {
        let mut log = AlertLog::default();
        log.add_sink("siem");
        raise(&mut log, 0..10, 10);
        raise(&mut log, 10..15, 10);
        assert_eq!(log.records.len(), 10);
        let summary = log.records.values().last().expect("a summary");
        assert_eq!(summary.kind, AlertKind::BacklogOverflow);
        assert_eq!(summary.count, 6, "five new ones plus the summary's slot");
        assert_eq!(log.dropped, 6);
        // A second overflow folds the first summary in rather than chaining.
        raise(&mut log, 15..25, 10);
        let summaries: Vec<_> = log
            .records
            .values()
            .filter(|a| a.kind == AlertKind::BacklogOverflow)
            .collect();
        assert_eq!(summaries.len(), 1, "{summaries:?}");
        let held = log
            .records
            .values()
            .filter(|a| a.kind != AlertKind::BacklogOverflow)
            .count() as u64;
        assert_eq!(
            summaries[0].count + held,
            25,
            "every alert is held or counted"
        );
        assert_eq!(log.dropped, summaries[0].count);
    }

    #[test]
    fn node_and_sink_health_follow_their_alerts() {
        let mut log = AlertLog::default();
        let mut down = alert(1, AlertKind::NodeDown);
        down.subject_node = Some(NodeId(3));
        log.append(&[down], 100);
        assert!(log.nodes_down.contains(&NodeId(3)));
        let mut up = alert(2, AlertKind::NodeUp);
        up.subject_node = Some(NodeId(3));
        log.append(&[up], 100);
        assert!(log.nodes_down.is_empty());
        let mut failing = alert(3, AlertKind::SinkFailing);
        failing.sink = Some("siem".into());
        log.append(&[failing], 100);
        assert!(log.sinks_failing.contains("siem"));
        log.remove_sink("siem");
        assert!(log.sinks_failing.is_empty());
    }
}
