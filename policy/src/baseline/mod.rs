//! The baseline: the flows a zone in `learn` mode was seen to make, and the
//! operator's decisions about them.
//!
//! Nodes report the edges they observe ([`ObservedEdge`]) through
//! [`Command::LearnEdges`](crate::Command::LearnEdges); the cluster merges
//! them into one [`Baseline`], replicated like everything else. From it,
//! [`propose`] derives the narrowest allow rules that cover what was seen,
//! and [`Command::DecideLinks`](crate::Command::DecideLinks) accepts
//! (turns into rules), snoozes or denies the proposed links. Once a zone
//! enforces, [`Baseline::deviates`] tells a node whether a denied flow is
//! new behaviour (a baseline deviation) rather than a known one the policy
//! refuses.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::ids::NodeId;
use crate::state::ClusterState;
use crate::{IdentityName, L4Protocol, Mode};

mod propose;
#[cfg(test)]
mod tests;

pub(crate) use propose::learned_rules;
pub use propose::{propose, Proposal, ProposedLink, ProposedRule, LEARNED_RULE_OWNER};

/// The most edges one [`Command::LearnEdges`](crate::Command::LearnEdges)
/// may carry, so one command stays a modest Raft entry.
pub const MAX_EDGES_PER_COMMAND: usize = 10_000;

/// Where an observed flow went.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EdgeTarget {
    /// A workload of the cluster.
    Identity(IdentityName),
    /// An address outside the cluster. The exact address is kept, so a rule
    /// learned from it never reaches further than what was seen.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    Address(IpAddr),
}

impl EdgeTarget {
    /// The zone of the target, when it is a workload of the cluster.
    pub fn zone(&self) -> Option<&str> {
        match self {
            EdgeTarget::Identity(name) => Some(&name.zone),
            EdgeTarget::Address(_) => None,
        }
    }
}

impl fmt::Display for EdgeTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EdgeTarget::Identity(name) => name.fmt(f),
            EdgeTarget::Address(ip) => ip.fmt(f),
        }
    }
}

/// One edge of the flow graph: who connected to what, how and on which
/// destination port. It names a link of a proposal too.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EdgeKey {
    /// The identity that opened the connection.
    pub from: IdentityName,
    /// Where it went.
    pub to: EdgeTarget,
    /// TCP or UDP.
    pub protocol: L4Protocol,
    /// The destination port.
    pub port: u16,
}

impl EdgeKey {
    /// Whether either side of the edge belongs to `zone`.
    pub fn touches_zone(&self, zone: &str) -> bool {
        self.from.zone == zone || self.to.zone() == Some(zone)
    }

    /// Whether either side of the edge is the identity `name`.
    fn names(&self, name: &IdentityName) -> bool {
        self.from == *name || self.to == EdgeTarget::Identity(name.clone())
    }
}

impl fmt::Display for EdgeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let protocol = match self.protocol {
            L4Protocol::Tcp => "tcp",
            L4Protocol::Udp => "udp",
        };
        write!(f, "{} -> {} {protocol}/{}", self.from, self.to, self.port)
    }
}

/// An edge as one node saw it over some period, as it reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ObservedEdge {
    /// The edge.
    pub key: EdgeKey,
    /// How many connections the node saw on it.
    pub connections: u64,
    /// When the first of them was opened (ms since the Unix epoch).
    pub first_ms: u64,
    /// When the last of them was opened (ms since the Unix epoch).
    pub last_ms: u64,
}

/// An edge as the whole cluster has seen it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BaselineEdge {
    /// Connections seen, summed over nodes (saturating).
    pub connections: u64,
    /// When it was first seen anywhere (ms since the Unix epoch).
    pub first_ms: u64,
    /// When it was last seen anywhere (ms since the Unix epoch): a snoozed
    /// link seen after its snooze is proposed again.
    pub last_ms: u64,
    /// The nodes that saw it.
    pub nodes: BTreeSet<NodeId>,
}

/// What the operator chose to do with a proposed link. Accepted links
/// become rules and need no record here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum LinkDecision {
    /// Hidden from proposals until the edge is seen again after `at_ms`.
    Snoozed {
        /// When it was snoozed (ms since the Unix epoch).
        at_ms: u64,
    },
    /// Never proposed again; kept as a record of the decision.
    Denied {
        /// When it was denied (ms since the Unix epoch).
        at_ms: u64,
    },
}

/// What an operator does with proposed links.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum LinkChoice {
    /// Allow them: rules are created, exactly as the proposal showed.
    Accept,
    /// Hide them until they are seen again.
    Snooze,
    /// Never propose them again.
    Deny,
}

/// The flows learned across the cluster, and the decisions taken on them.
///
/// Maps keyed by [`EdgeKey`] are written as lists of `[key, value]` pairs:
/// JSON object keys must be strings, and the state is JSON in Raft
/// snapshots.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Baseline {
    /// Every edge seen in a zone while it learned.
    #[serde(with = "pairs")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<(EdgeKey, BaselineEdge)>, default = json!([])))]
    pub edges: BTreeMap<EdgeKey, BaselineEdge>,
    /// Snoozed and denied links.
    #[serde(with = "pairs")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<(EdgeKey, LinkDecision)>, default = json!([])))]
    pub decisions: BTreeMap<EdgeKey, LinkDecision>,
    /// Edges not recorded because the baseline was full (see
    /// `Settings::baseline_max_edges`): a non-zero count means the baseline
    /// is incomplete and proposals miss flows.
    pub dropped_edges: u64,
}

impl Baseline {
    /// Whether a flow is new behaviour: some zone it involves (the caller's,
    /// or the target's when that is a workload) has learned a baseline, and
    /// the flow is not in it. A node uses this to report a denied flow as a
    /// baseline deviation rather than a plain policy violation. A caller
    /// without an identity is not an edge at all, and so never a deviation.
    pub fn deviates(&self, flow: &EdgeKey) -> bool {
        if self.edges.contains_key(flow) {
            return false;
        }
        // Edges are ordered by their caller first, so whether the caller's
        // zone has any is one range lookup; the target's zone needs a scan.
        let zone_start = EdgeKey {
            from: IdentityName {
                zone: flow.from.zone.clone(),
                app: String::new(),
                service: String::new(),
            },
            to: EdgeTarget::Identity(IdentityName {
                zone: String::new(),
                app: String::new(),
                service: String::new(),
            }),
            protocol: L4Protocol::Tcp,
            port: 0,
        };
        let caller_zone_learned = self
            .edges
            .range(zone_start..)
            .next()
            .is_some_and(|(key, _)| key.from.zone == flow.from.zone);
        caller_zone_learned
            || flow
                .to
                .zone()
                .is_some_and(|zone| self.edges.keys().any(|key| key.touches_zone(zone)))
    }

    /// Merges what a node saw: only edges of identities `state` defines,
    /// where a side's zone is learning, are kept (a node may report an edge
    /// just before its zone left `learn` or its identity was removed), and
    /// when the baseline holds `max` edges new ones are counted in
    /// `dropped_edges` instead. `state` is the rest of the cluster state:
    /// its own `baseline` is not read.
    pub(crate) fn learn(
        &mut self,
        state: &ClusterState,
        node: NodeId,
        edges: &[ObservedEdge],
        max: usize,
    ) {
        let defined: BTreeSet<&IdentityName> = state.identities.values().map(|i| &i.name).collect();
        for observed in edges {
            if !is_learning(state, &defined, &observed.key) {
                continue;
            }
            if let Some(edge) = self.edges.get_mut(&observed.key) {
                edge.connections = edge.connections.saturating_add(observed.connections);
                edge.first_ms = edge.first_ms.min(observed.first_ms);
                edge.last_ms = edge.last_ms.max(observed.last_ms);
                edge.nodes.insert(node);
            } else if self.edges.len() >= max {
                self.dropped_edges = self.dropped_edges.saturating_add(1);
            } else {
                self.edges.insert(
                    observed.key.clone(),
                    BaselineEdge {
                        connections: observed.connections,
                        first_ms: observed.first_ms,
                        last_ms: observed.last_ms,
                        nodes: BTreeSet::from([node]),
                    },
                );
            }
        }
    }

    /// Records a snooze or a denial of `links`; an acceptance clears their
    /// records (the rules it creates are the record).
    pub(crate) fn decide(&mut self, links: &[EdgeKey], choice: LinkChoice, at_ms: u64) {
        for link in links {
            let decision = match choice {
                LinkChoice::Accept => {
                    self.decisions.remove(link);
                    continue;
                }
                LinkChoice::Snooze => LinkDecision::Snoozed { at_ms },
                LinkChoice::Deny => LinkDecision::Denied { at_ms },
            };
            self.decisions.insert(link.clone(), decision);
        }
    }

    /// Forgets every edge and decision that names `identity`, which is
    /// being removed: the baseline never keeps a removal from happening.
    pub(crate) fn forget_identity(&mut self, identity: &IdentityName) {
        self.edges.retain(|key, _| !key.names(identity));
        self.decisions.retain(|key, _| !key.names(identity));
    }

    /// Forgets every edge and decision that touches `zone`, which is being
    /// removed.
    pub(crate) fn forget_zone(&mut self, zone: &str) {
        self.edges.retain(|key, _| !key.touches_zone(zone));
        self.decisions.retain(|key, _| !key.touches_zone(zone));
    }
}

/// Whether the cluster records this edge: both identities are defined, and
/// the caller's zone or the target's zone is learning.
fn is_learning(state: &ClusterState, defined: &BTreeSet<&IdentityName>, key: &EdgeKey) -> bool {
    let learning = |zone: &str| state.zones.get(zone).is_some_and(|z| z.mode == Mode::Learn);
    let target_defined = match &key.to {
        EdgeTarget::Identity(name) => defined.contains(name),
        EdgeTarget::Address(_) => true,
    };
    defined.contains(&key.from)
        && target_defined
        && (learning(&key.from.zone) || key.to.zone().is_some_and(learning))
}

/// Serde of a map with structured keys as a list of `[key, value]` pairs.
mod pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<K, V, S>(map: &BTreeMap<K, V>, serializer: S) -> Result<S::Ok, S::Error>
    where
        K: Serialize,
        V: Serialize,
        S: Serializer,
    {
        serializer.collect_seq(map.iter())
    }

    pub(super) fn deserialize<'de, K, V, D>(deserializer: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(deserializer)?
            .into_iter()
            .collect())
    }
}
