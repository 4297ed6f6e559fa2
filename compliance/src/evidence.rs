//! What a report is evaluated from: the cluster's applied state, and what
//! its nodes answered about themselves and their flow logs. The node
//! gathers these (that is I/O); everything after is pure.

use serde::{Deserialize, Serialize};
use stockade_policy::{ClusterState, Direction, FlowRecord, NodeId, PeerClass};

/// Everything one report is evaluated from.
pub struct Evidence<'a> {
    /// The cluster state, as the answering node has applied it.
    pub state: &'a ClusterState,
    /// The log index of that state.
    pub applied_index: u64,
    /// When the report is made (ms since the Unix epoch).
    pub now_ms: u64,
    /// The node that makes it.
    pub node: NodeId,
    /// Every member, and what it said about its dataplane.
    pub members: Vec<MemberEvidence>,
    /// The flow logs' counts over the report's window.
    pub flows: FlowEvidence,
}

/// One member as it answered, or did not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberEvidence {
    /// Its id.
    pub node: NodeId,
    /// Its name.
    pub name: String,
    /// What it answered; `None` when it did not answer.
    pub answer: Option<MemberAnswer>,
}

/// What a member said about its dataplane.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberAnswer {
    /// The index of the last entry it applied.
    pub applied_index: Option<u64>,
    /// The policy version in force in its kernel; `None` when it runs no
    /// dataplane.
    pub dataplane_index: Option<u64>,
    /// The dataplane's last error.
    pub dataplane_error: Option<String>,
}

impl MemberEvidence {
    /// Whether its kernel enforces a policy, without a pending error.
    pub fn enforces(&self) -> bool {
        self.answer
            .as_ref()
            .is_some_and(|a| a.dataplane_index.is_some() && a.dataplane_error.is_none())
    }
}

/// The flow logs of the cluster over the report's window.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowEvidence {
    /// How far back the logs were read (ms).
    pub window_ms: u64,
    /// The nodes whose logs were read.
    pub answered: Vec<NodeId>,
    /// The nodes whose logs could not be read.
    pub missing: Vec<NodeId>,
    /// Their counts, summed.
    pub tally: FlowTally,
}

/// Counts of one or more flow logs, in connections (TCP) or datagrams (UDP).
///
/// Each flow is counted once, where its caller's hook decided (`egress`),
/// except flows from outside the cluster, which only the receiver sees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowTally {
    /// Flows decided at egress.
    pub flows: u64,
    /// Of those, refused.
    pub denied: u64,
    /// Allowed flows from a workload to a workload of another node.
    pub cross_node: u64,
    /// Of those, carried through the Noise tunnel.
    pub cross_node_encrypted: u64,
    /// Allowed flows to addresses outside the cluster.
    pub to_world: u64,
    /// Flows from outside the cluster into a workload, as received.
    pub from_world: u64,
    /// Of those, refused.
    pub from_world_denied: u64,
    /// Flows whose caller is an unknown or modified binary.
    pub from_unknown: u64,
    /// Of those, refused.
    pub from_unknown_denied: u64,
}

impl FlowTally {
    /// Counts one flow record.
    pub fn add(&mut self, record: &FlowRecord) {
        let n = record.connections;
        let denied = record.action == stockade_policy::Action::Deny;
        match record.direction {
            Direction::Egress => {
                self.flows += n;
                if denied {
                    self.denied += n;
                }
                if record.src.class == PeerClass::Unknown {
                    self.from_unknown += n;
                    if denied {
                        self.from_unknown_denied += n;
                    }
                }
                let far_node = record.dst.node.is_some_and(|node| node != record.node);
                let workloads = record.src.class == PeerClass::Workload
                    && record.dst.class == PeerClass::Workload;
                if !denied && workloads && far_node {
                    self.cross_node += n;
                    if record.encrypted {
                        self.cross_node_encrypted += n;
                    }
                }
                if !denied && record.dst.class == PeerClass::World {
                    self.to_world += n;
                }
            }
            Direction::Ingress => {
                if record.src.class == PeerClass::World {
                    self.from_world += n;
                    if denied {
                        self.from_world_denied += n;
                    }
                }
            }
        }
    }

    /// Adds another log's counts.
    pub fn merge(&mut self, other: &FlowTally) {
        self.flows += other.flows;
        self.denied += other.denied;
        self.cross_node += other.cross_node;
        self.cross_node_encrypted += other.cross_node_encrypted;
        self.to_world += other.to_world;
        self.from_world += other.from_world;
        self.from_world_denied += other.from_world_denied;
        self.from_unknown += other.from_unknown;
        self.from_unknown_denied += other.from_unknown_denied;
    }
}
