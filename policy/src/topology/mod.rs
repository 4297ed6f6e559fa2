//! The topology graph: who talks to whom, drawn from flow records.
//!
//! People read a firewall's traffic as a map before they read it as a log:
//! which zones and apps talk, over which ports, what was denied, what is
//! encrypted. [`topology()`] folds [`FlowRecord`]s into such a graph at one
//! [`Level`] of detail, and [`to_dot`] writes it for Graphviz.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::flow::{FlowPeer, FlowProcess, FlowRecord, PeerClass};
use crate::ids::{NodeId, RuleRef};
use crate::{Action, Direction, IdentityName, L4Protocol, ParseError};

mod dot;
mod receivers;

pub use dot::to_dot;
use receivers::Receivers;

#[cfg(test)]
mod tests;

/// How finely the graph splits the cluster into vertices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Level {
    /// One vertex per zone: how zones depend on each other.
    Zone,
    /// One vertex per app (`zone/app`).
    App,
    /// One vertex per identity (`zone/app/service`), and per outside address.
    Service,
    /// One vertex per executable, identity and node: what to look at when a
    /// flow is unexpected.
    Process,
}

impl Level {
    /// Every level, coarsest first.
    pub const ALL: [Level; 4] = [Level::Zone, Level::App, Level::Service, Level::Process];

    /// The level's name as the API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Zone => "zone",
            Level::App => "app",
            Level::Service => "service",
            Level::Process => "process",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Level::ALL
            .into_iter()
            .find(|level| level.as_str() == s)
            .ok_or_else(|| {
                ParseError::new(format!(
                    "`{s}` is not a topology level (zone, app, service or process)"
                ))
            })
    }
}

/// The graph of flows at one level, in a deterministic order (vertices by
/// id, edges by ends and protocol) so that two nodes given the same records
/// draw the same picture.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Topology {
    /// The level it was drawn at.
    pub level: Level,
    /// Its vertices.
    pub nodes: Vec<TopologyNode>,
    /// Its edges.
    pub edges: Vec<TopologyEdge>,
}

/// A vertex: a zone, app, service or process, or a peer without identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TopologyNode {
    /// Stable id, unique in the graph, that edges refer to. Ids of peers
    /// without identity hold a `:`, which names never do, so they cannot
    /// collide with a zone or app of the same name.
    pub id: String,
    /// What to show people.
    pub label: String,
    /// What kind of peer it stands for.
    pub kind: PeerClass,
    /// The zone it belongs to, so that a drawing can group by zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
}

/// An edge: every flow from one vertex to another over one protocol.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TopologyEdge {
    /// The id of the calling vertex.
    pub from: String,
    /// The id of the called vertex.
    pub to: String,
    /// `tcp` or `udp`.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "tcp"))]
    pub protocol: L4Protocol,
    /// Destination ports seen, sorted, without repeats (0, unknown, left out).
    pub ports: Vec<u16>,
    /// Connections (or UDP datagrams) in all.
    pub connections: u64,
    /// How many of them were allowed.
    pub allowed: u64,
    /// How many of them were denied.
    pub denied: u64,
    /// Whether any went through the Noise tunnel.
    pub encrypted: bool,
    /// The rules and built-in reasons that decided, sorted, without repeats.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::flow::rule_refs_schema))]
    pub rules: Vec<RuleRef>,
    /// When the last of them was seen (ms since the Unix epoch).
    pub last_seen_ms: u64,
}

/// Draws the graph of `records` at `level`.
///
/// Each connection counts once, although two nodes may have recorded it:
/// an `egress` record always counts (the caller's hook sees every flow a
/// workload opens), and an `ingress` record counts only when no egress hook
/// can have seen the flow — its source is `world`, or `unknown` and on no
/// known node. Other ingress records (from a `node` address, typically)
/// still teach who received a flow: at the process level, an egress record
/// whose destination has no process takes the process, node (and, lacking
/// its own, identity) of the receiving end an ingress record saw at the same
/// address, port and protocol.
pub fn topology(records: &[FlowRecord], level: Level) -> Topology {
    let receivers = match level {
        Level::Process => Receivers::learn(records),
        _ => Receivers::default(),
    };
    let mut nodes = BTreeMap::new();
    let mut edges: BTreeMap<(String, String, L4Protocol), Tally> = BTreeMap::new();
    for record in records.iter().filter(|r| counts(r)) {
        let src = End::of(
            &record.src,
            (record.direction == Direction::Egress).then_some(record.node),
        );
        let mut dst = End::of(
            &record.dst,
            (record.direction == Direction::Ingress).then_some(record.node),
        );
        if record.direction == Direction::Egress && record.dst.process.is_none() {
            if let Some(receiver) = receivers.find(record) {
                dst.receive(receiver);
            }
        }
        let (from, to) = (src.vertex(level), dst.vertex(level));
        let key = (from.id.clone(), to.id.clone(), record.protocol);
        for vertex in [from, to] {
            match nodes.entry(vertex.id.clone()) {
                Entry::Vacant(entry) => {
                    entry.insert(vertex);
                }
                // Ends of the same id differ at most in what is known of
                // their zone: keep the greatest, whatever the record order.
                Entry::Occupied(mut entry) => {
                    let known: &mut TopologyNode = entry.get_mut();
                    known.zone = known.zone.take().max(vertex.zone);
                }
            }
        }
        edges.entry(key).or_default().add(record);
    }
    Topology {
        level,
        nodes: nodes.into_values().collect(),
        edges: edges
            .into_iter()
            .map(|((from, to, protocol), tally)| tally.into_edge(from, to, protocol))
            .collect(),
    }
}

/// Whether a record counts toward the edges (see [`topology()`]).
fn counts(record: &FlowRecord) -> bool {
    match record.direction {
        Direction::Egress => true,
        Direction::Ingress => {
            matches!(record.src.class, PeerClass::World | PeerClass::Unknown)
                && record.src.node.is_none()
        }
    }
}

/// One end of a flow, with what the record around it adds.
struct End<'a> {
    peer: &'a FlowPeer,
    class: PeerClass,
    identity: Option<&'a IdentityName>,
    zone: Option<&'a str>,
    node: Option<NodeId>,
    process: Option<&'a FlowProcess>,
}

impl<'a> End<'a> {
    /// `peer`, on `recorder` when the recording node is known to run it.
    fn of(peer: &'a FlowPeer, recorder: Option<NodeId>) -> Self {
        End {
            peer,
            class: peer.class,
            identity: peer.identity.as_ref(),
            zone: peer.zone(),
            node: peer.node.or(recorder),
            process: peer.process.as_ref(),
        }
    }

    /// Takes the process (and node, and identity if it has none) of the
    /// receiving end another node recorded.
    fn receive(&mut self, (node, receiver): (NodeId, &'a FlowPeer)) {
        self.node = Some(node);
        self.process = receiver.process.as_ref();
        if self.identity.is_none() && receiver.identity.is_some() {
            self.identity = receiver.identity.as_ref();
            self.zone = receiver.zone();
            self.class = receiver.class;
        }
    }

    fn vertex(&self, level: Level) -> TopologyNode {
        let special = |id: String, label: String| TopologyNode {
            id,
            label,
            kind: self.class,
            zone: None,
        };
        let ip = self.peer.ip;
        let coarse = matches!(level, Level::Zone | Level::App);
        match (self.class, self.node) {
            (PeerClass::World, _) if coarse => special("world:*".into(), "world".into()),
            (PeerClass::World, _) => special(format!("world:{ip}"), format!("world {ip}")),
            (PeerClass::Node, Some(n)) => special(format!("node:{n}"), format!("node {n}")),
            (PeerClass::Node, None) => special(format!("node:{ip}"), format!("node {ip}")),
            (PeerClass::Cluster, Some(n)) if !coarse => {
                special(format!("cluster:n{n}"), format!("cluster on node {n}"))
            }
            (PeerClass::Cluster, _) => special("cluster:*".into(), "cluster".into()),
            (PeerClass::Workload | PeerClass::Unknown, _) => self.workload_vertex(level),
        }
    }

    fn workload_vertex(&self, level: Level) -> TopologyNode {
        let kind = match self.identity {
            Some(_) => PeerClass::Workload,
            None => PeerClass::Unknown,
        };
        // A workload belongs to its identity's zone, whatever its cgroup says.
        let zone = self
            .identity
            .map(|i| i.zone.as_str())
            .or(self.zone)
            .map(str::to_string);
        let vertex = |id: String, label: String| TopologyNode {
            id,
            label,
            kind,
            zone: zone.clone(),
        };
        if let (Level::Process, Some(process)) = (level, self.process) {
            let who = self
                .identity
                .map_or_else(|| "unknown".to_string(), ToString::to_string);
            let exe = &process.exe;
            return match self.node {
                Some(n) => vertex(
                    format!("n{n}:{exe}:{who}"),
                    format!("{exe} ({who}) on node {n}"),
                ),
                None => vertex(format!("n?:{exe}:{who}"), format!("{exe} ({who})")),
            };
        }
        match (self.identity, &zone) {
            (Some(name), _) => {
                let id = match level {
                    Level::Zone => name.zone.clone(),
                    Level::App => format!("{}/{}", name.zone, name.app),
                    Level::Service | Level::Process => name.to_string(),
                };
                vertex(id.clone(), id)
            }
            (None, Some(z)) => vertex(format!("unknown:{z}"), format!("{z}/unknown")),
            (None, None) => vertex("unknown:*".into(), "unknown".into()),
        }
    }
}

/// The sums of one edge, as records arrive.
#[derive(Default)]
struct Tally {
    ports: BTreeSet<u16>,
    connections: u64,
    allowed: u64,
    denied: u64,
    encrypted: bool,
    rules: BTreeSet<RuleRef>,
    last_seen_ms: u64,
}

impl Tally {
    fn add(&mut self, record: &FlowRecord) {
        if record.dst.port != 0 {
            self.ports.insert(record.dst.port);
        }
        self.connections = self.connections.saturating_add(record.connections);
        let verdict = match record.action {
            Action::Allow => &mut self.allowed,
            Action::Deny => &mut self.denied,
        };
        *verdict = verdict.saturating_add(record.connections);
        self.encrypted |= record.encrypted;
        self.rules.insert(record.rule);
        self.last_seen_ms = self.last_seen_ms.max(record.last_ms);
    }

    fn into_edge(self, from: String, to: String, protocol: L4Protocol) -> TopologyEdge {
        TopologyEdge {
            from,
            to,
            protocol,
            ports: self.ports.into_iter().collect(),
            connections: self.connections,
            allowed: self.allowed,
            denied: self.denied,
            encrypted: self.encrypted,
            rules: self.rules.into_iter().collect(),
            last_seen_ms: self.last_seen_ms,
        }
    }
}
