//! A member's Raft status in a form fit for `GET /v1/status`.

use std::collections::BTreeMap;

use openraft::ServerState;
use serde::{Deserialize, Serialize};

use crate::types::{NodeAddr, NodeId, RaftMetrics};

/// One member's view of the cluster, taken from openraft's metrics.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftStatus {
    /// This node's id.
    pub node_id: NodeId,
    /// `leader`, `follower`, `candidate`, `learner` or `shutdown`.
    pub role: String,
    /// The current term.
    pub term: u64,
    /// The leader this node knows of.
    pub leader: Option<NodeId>,
    /// The index of the last entry in this node's log.
    pub last_log_index: Option<u64>,
    /// The index of the last entry applied to this node's state: the policy
    /// version in force here.
    pub applied_index: Option<u64>,
    /// The last index its snapshot covers.
    pub snapshot_index: Option<u64>,
    /// The last index purged from its log.
    pub purged_index: Option<u64>,
    /// The voters and their advertised addresses.
    pub voters: BTreeMap<NodeId, String>,
    /// The learners and their advertised addresses.
    pub learners: BTreeMap<NodeId, String>,
    /// On the leader only: the last index each other member is known to
    /// hold.
    pub replication: Option<BTreeMap<NodeId, Option<u64>>>,
    /// On the leader only: milliseconds since a quorum last acknowledged it.
    pub millis_since_quorum_ack: Option<u64>,
    /// Milliseconds since this node last heard from each peer (a reply to
    /// its call, or a call from it).
    pub last_contact_ms: BTreeMap<NodeId, u64>,
}

fn role(state: ServerState) -> &'static str {
    match state {
        ServerState::Leader => "leader",
        ServerState::Follower => "follower",
        ServerState::Candidate => "candidate",
        ServerState::Learner => "learner",
        ServerState::Shutdown => "shutdown",
    }
}

impl From<&RaftMetrics> for RaftStatus {
    fn from(m: &RaftMetrics) -> Self {
        let membership = m.membership_config.membership();
        let addr = |id: &NodeId| {
            membership
                .get_node(id)
                .map(|n: &NodeAddr| n.addr.clone())
                .unwrap_or_default()
        };
        let voters = membership.voter_ids().map(|id| (id, addr(&id))).collect();
        let learners = membership.learner_ids().map(|id| (id, addr(&id))).collect();
        RaftStatus {
            node_id: m.id,
            role: role(m.state).to_owned(),
            term: m.current_term,
            leader: m.current_leader,
            last_log_index: m.last_log_index,
            applied_index: m.last_applied.map(|l| l.index),
            snapshot_index: m.snapshot.map(|l| l.index),
            purged_index: m.purged.map(|l| l.index),
            voters,
            learners,
            replication: m.replication.as_ref().map(|r| {
                r.iter()
                    .map(|(id, matched)| (*id, matched.map(|l| l.index)))
                    .collect()
            }),
            millis_since_quorum_ack: m.millis_since_quorum_ack,
            last_contact_ms: BTreeMap::new(),
        }
    }
}
