//! Alert records: what the cluster tells security teams about.
//!
//! A node that sees something worth telling — a denied flow, a flow its
//! policy did not expect, a binary with no identity — aggregates it on its
//! side and appends the result through Raft as an [`Alert`]. The records live
//! in the replicated [`AlertLog`] together with each sink's delivery cursor,
//! so they are durable before anyone is told and a new leader knows exactly
//! where the previous one stopped.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::audit::AuditEntry;
use crate::ids::{NodeId, RuleRef};
use crate::{Direction, IdentityName, L4Protocol, Severity, Sha256};

mod log;

pub use log::{AlertLog, Cursor, NewAlert, MAX_ALERTS_PER_COMMAND};

/// An alert's stable id, chosen by the node that raised it. Sinks may use it
/// to drop the repeats that at-least-once delivery can produce.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertId(pub String);

impl fmt::Display for AlertId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What an alert is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AlertKind {
    /// A flow the policy denied.
    PolicyViolation,
    /// A flow outside what was learned: a denied flow no rule covers in a
    /// zone that has a baseline, or a flow no rule covers allowed because
    /// its zone only alerts.
    BaselineDeviation,
    /// A process runs a binary no fingerprint or identity rule names.
    UnknownBinary,
    /// A process runs a binary at a registered binary's path whose digest
    /// is not the registered one.
    ModifiedBinary,
    /// A node stopped answering the leader.
    NodeDown,
    /// A node that was down answers again.
    NodeUp,
    /// A sink has refused or not answered deliveries for a while.
    SinkFailing,
    /// A failing sink accepts deliveries again.
    SinkRecovered,
    /// More alerts waited for delivery than the backlog may hold; this one
    /// stands for those that had to be dropped.
    BacklogOverflow,
    /// A node's kernel produced events faster than the node read them:
    /// this many flow or exec events were lost.
    EventsLost,
    /// A change was made through the admin API (an audit log entry); only
    /// sinks with `audit = true` receive these.
    ConfigChange,
}

impl AlertKind {
    /// Every kind, for documentation and tests.
    pub const ALL: [AlertKind; 11] = [
        AlertKind::PolicyViolation,
        AlertKind::BaselineDeviation,
        AlertKind::UnknownBinary,
        AlertKind::ModifiedBinary,
        AlertKind::NodeDown,
        AlertKind::NodeUp,
        AlertKind::SinkFailing,
        AlertKind::SinkRecovered,
        AlertKind::BacklogOverflow,
        AlertKind::EventsLost,
        AlertKind::ConfigChange,
    ];

    /// The kind's name as the API writes it (`policy_violation`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::PolicyViolation => "policy_violation",
            AlertKind::BaselineDeviation => "baseline_deviation",
            AlertKind::UnknownBinary => "unknown_binary",
            AlertKind::ModifiedBinary => "modified_binary",
            AlertKind::NodeDown => "node_down",
            AlertKind::NodeUp => "node_up",
            AlertKind::SinkFailing => "sink_failing",
            AlertKind::SinkRecovered => "sink_recovered",
            AlertKind::BacklogOverflow => "backlog_overflow",
            AlertKind::EventsLost => "events_lost",
            AlertKind::ConfigChange => "config_change",
        }
    }

    /// A short title for people.
    pub fn title(self) -> &'static str {
        match self {
            AlertKind::PolicyViolation => "Flow blocked by policy",
            AlertKind::BaselineDeviation => "Flow outside the baseline",
            AlertKind::UnknownBinary => "Unknown binary running",
            AlertKind::ModifiedBinary => "Modified binary running",
            AlertKind::NodeDown => "Node down",
            AlertKind::NodeUp => "Node back up",
            AlertKind::SinkFailing => "Alert sink failing",
            AlertKind::SinkRecovered => "Alert sink recovered",
            AlertKind::BacklogOverflow => "Alert backlog overflowed",
            AlertKind::EventsLost => "Kernel events lost",
            AlertKind::ConfigChange => "Configuration changed",
        }
    }
}

impl fmt::Display for AlertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How often an alert's cause has been seen (NIST DE.AE-5): sinks choose
/// which classes they want.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AlertClass {
    /// The first time the raising node has seen this cause.
    FirstSeen,
    /// Seen before, at a modest rate.
    Recurring,
    /// Arriving faster than the burst threshold; one record stands for many.
    Burst,
}

impl AlertClass {
    /// The class's name as the API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertClass::FirstSeen => "first_seen",
            AlertClass::Recurring => "recurring",
            AlertClass::Burst => "burst",
        }
    }
}

/// The workload an alert concerns, as far as it is known.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertWorkload {
    /// Its identity; absent when the workload has none (unknown binary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<IdentityName>,
    /// Its zone, also when it has no identity but its cgroup is in a zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// The process id on its node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// The executable's path.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub executable: String,
    /// The executable's SHA-256, when it could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Sha256>,
}

/// One end of a flow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FlowEnd {
    /// Its address.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub ip: IpAddr,
    /// Its port (0 when not known, e.g. an unbound client).
    pub port: u16,
    /// Its identity, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<IdentityName>,
    /// Its zone, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
}

/// The flow an alert is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertFlow {
    /// The side that opened it.
    pub src: FlowEnd,
    /// The side it went to.
    pub dst: FlowEnd,
    /// TCP or UDP.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub protocol: L4Protocol,
    /// Which side's check decided.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub direction: Direction,
    /// The rule (or built-in reason) that decided.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub rule: RuleRef,
}

/// An alert as the log holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Alert {
    /// Its stable id.
    pub id: AlertId,
    /// Its position in the log: sinks receive alerts in this order.
    pub seq: u64,
    /// What it is about.
    pub kind: AlertKind,
    /// How serious it is.
    pub severity: Severity,
    /// How often its cause was seen.
    pub class: AlertClass,
    /// The node that raised it.
    pub node: NodeId,
    /// The node it is about, for node and sink alerts raised by the leader.
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
    /// How many occurrences it stands for.
    pub count: u64,
    /// When the first of them happened (ms since the Unix epoch).
    pub first_seen_ms: u64,
    /// When the last of them happened (ms since the Unix epoch).
    pub last_seen_ms: u64,
    /// One line for people.
    pub summary: String,
    /// The audit log entry, for a `config_change` alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<Box<AuditEntry>>,
}

impl Alert {
    /// The zones the alert concerns: its workload's and both ends of its
    /// flow (by their zone, or their identity's). Empty for cluster-wide
    /// alerts (nodes, sinks, overflow).
    pub fn zones(&self) -> Vec<&str> {
        let workload = self.workload.iter().flat_map(|w| {
            [
                w.zone.as_deref(),
                w.identity.as_ref().map(|i| i.zone.as_str()),
            ]
        });
        let flow = self.flow.iter().flat_map(|f| {
            [&f.src, &f.dst].into_iter().flat_map(|end| {
                [
                    end.zone.as_deref(),
                    end.identity.as_ref().map(|i| i.zone.as_str()),
                ]
            })
        });
        let mut zones: Vec<&str> = workload.chain(flow).flatten().collect();
        zones.sort_unstable();
        zones.dedup();
        zones
    }

    /// The apps (`zone/app`) the alert concerns, like [`Alert::zones`].
    pub fn apps(&self) -> Vec<String> {
        let mut apps: Vec<String> = self
            .workload
            .iter()
            .filter_map(|w| w.identity.as_ref())
            .chain(
                self.flow
                    .iter()
                    .flat_map(|f| [f.src.identity.as_ref(), f.dst.identity.as_ref()])
                    .flatten(),
            )
            .map(|name| format!("{}/{}", name.zone, name.app))
            .collect();
        apps.sort_unstable();
        apps.dedup();
        apps
    }
}
