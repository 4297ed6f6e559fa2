//! Learning: the flows of workloads in `learn` zones become baseline
//! edges, reported through Raft every few seconds — only the edges seen
//! since the last report, with their new connections.

use std::collections::BTreeMap;
use std::sync::Arc;

use stockade_policy::{
    ClusterState, Command, Direction, EdgeKey, EdgeTarget, FlowRecord, Mode, NodeId, ObservedEdge,
    PeerClass,
};

use crate::cluster::{ControlPlane, WriteError};

/// Edges one report carries at most (the command's limit).
const MAX_EDGES_PER_REPORT: usize = 10_000;

/// Edges observed since the last report.
#[derive(Debug, Default)]
pub struct Learner {
    pending: BTreeMap<EdgeKey, ObservedEdge>,
}

impl Learner {
    /// Notes the edges of `records` that a learning zone takes part in.
    pub fn observe(&mut self, records: &[FlowRecord], state: &ClusterState) {
        for record in records {
            let Some(key) = edge(record) else {
                continue;
            };
            let learning =
                |zone: &str| state.zones.get(zone).is_some_and(|z| z.mode == Mode::Learn);
            let to_zone = match &key.to {
                EdgeTarget::Identity(name) => Some(name.zone.as_str()),
                EdgeTarget::Address(_) => None,
            };
            if !learning(&key.from.zone) && !to_zone.is_some_and(learning) {
                continue;
            }
            let edge = self.pending.entry(key.clone()).or_insert(ObservedEdge {
                key,
                connections: 0,
                first_ms: record.first_ms,
                last_ms: record.last_ms,
            });
            edge.connections = edge.connections.saturating_add(record.connections);
            edge.first_ms = edge.first_ms.min(record.first_ms);
            edge.last_ms = edge.last_ms.max(record.last_ms);
        }
    }

    /// Reports what is pending. What a write that failed to commit carried
    /// is kept for the next report; a batch the state refuses (which
    /// skips stale edges itself, so this is a bug) is dropped and logged
    /// rather than retried forever.
    pub async fn report(&mut self, control: &Arc<ControlPlane>, node: NodeId) {
        while !self.pending.is_empty() {
            let batch: Vec<ObservedEdge> = self
                .pending
                .values()
                .take(MAX_EDGES_PER_REPORT)
                .cloned()
                .collect();
            let command = Command::LearnEdges {
                node,
                edges: batch.clone(),
            };
            match control.write(command).await {
                Ok(_) => {}
                Err(WriteError::Invalid(e)) => {
                    tracing::error!(error = %e, edges = batch.len(), "learned edges refused; dropped");
                }
                Err(e) => {
                    tracing::warn!(error = %e, edges = batch.len(), "cannot report learned edges; retrying later");
                    return;
                }
            }
            for edge in batch {
                self.pending.remove(&edge.key);
            }
        }
    }
}

/// The baseline edge a flow stands for: from the identity that opened it
/// to the identity (or, outside the cluster, the address) it reached.
/// Flows this node saw arrive from another node were learned at egress by
/// that node; flows from or to something without identity teach nothing.
fn edge(record: &FlowRecord) -> Option<EdgeKey> {
    if record.direction == Direction::Ingress && record.src.class == PeerClass::Node {
        return None;
    }
    let from = record.src.identity.clone()?;
    let to = match record.dst.class {
        PeerClass::Workload => EdgeTarget::Identity(record.dst.identity.clone()?),
        PeerClass::World => EdgeTarget::Address(record.dst.ip),
        _ => return None,
    };
    Some(EdgeKey {
        from,
        to,
        protocol: record.protocol,
        port: record.dst.port,
    })
}
