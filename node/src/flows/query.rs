//! Flow queries across the cluster: the node that serves `GET /v1/flows`
//! asks every node for its matching records over QUIC and merges them.
//! A node that does not answer is named in the reply, never silently
//! missing from it.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use stockade_policy::{FlowFilter, FlowRecord, NodeId};
use stockade_transport::Bytes;
use tokio::task::JoinSet;
use utoipa::ToSchema;

use crate::cluster::ControlPlane;

/// Records one query returns at most, per node and merged.
pub const MAX_QUERY_LIMIT: usize = 10_000;

/// How long a node has to answer before it counts as missing.
const ANSWER_WITHIN: Duration = Duration::from_secs(3);

/// A question one node asks another about what it observed.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeQuery {
    /// Its flow records that match, newest first; replies
    /// `Result<Vec<FlowRecord>, String>`.
    Flows {
        /// Which records.
        filter: FlowFilter,
        /// How many at most.
        limit: usize,
    },
}

/// A node that did not answer a cluster-wide query.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct MissingNode {
    /// Its id.
    pub node: NodeId,
    /// Its name.
    pub name: String,
    /// Why its records are missing.
    pub error: String,
}

/// The merged answer of every node.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ClusterFlows {
    /// The records, newest first.
    pub records: Vec<FlowRecord>,
    /// The nodes whose records are included.
    pub answered: Vec<NodeId>,
    /// The nodes whose records are not: the result is partial when this is
    /// not empty.
    pub missing: Vec<MissingNode>,
    /// Whether more records matched than `limit`.
    pub truncated: bool,
}

/// This node's own answer to a flow query.
pub fn local_flows(
    control: &ControlPlane,
    filter: &FlowFilter,
    limit: usize,
) -> Result<Vec<FlowRecord>, String> {
    match control.flows() {
        Some(store) => store
            .query(filter, limit.min(MAX_QUERY_LIMIT))
            .map_err(|e| e.to_string()),
        // A node that enforces nothing has observed nothing.
        None => Ok(Vec::new()),
    }
}

/// Serves another node's query.
pub fn answer(control: &ControlPlane, request: &[u8]) -> Result<Bytes, String> {
    let query: NodeQuery =
        serde_json::from_slice(request).map_err(|e| format!("not a node query: {e}"))?;
    let reply = match query {
        NodeQuery::Flows { filter, limit } => local_flows(control, &filter, limit),
    };
    serde_json::to_vec(&reply)
        .map(Bytes::from)
        .map_err(|e| format!("cannot encode the flow records: {e}"))
}

/// Asks every node (or the one `filter.node` names) for its records.
pub async fn cluster_flows(
    control: &Arc<ControlPlane>,
    filter: &FlowFilter,
    limit: usize,
) -> ClusterFlows {
    let limit = limit.clamp(1, MAX_QUERY_LIMIT);
    let me = NodeId(control.raft().id());
    let nodes: Vec<_> = control.with_state(|state| {
        state
            .nodes
            .values()
            .filter(|n| filter.node.is_none_or(|only| only == n.id))
            .map(|n| (n.id, n.name.clone(), n.address))
            .collect()
    });
    let mut asks = JoinSet::new();
    for (id, name, address) in nodes {
        let control = Arc::clone(control);
        let filter = filter.clone();
        asks.spawn(async move {
            let answer = if id == me {
                local_flows(&control, &filter, limit)
            } else {
                ask(&control, id, address, filter, limit).await
            };
            (id, name, answer)
        });
    }
    let mut merged = ClusterFlows {
        records: Vec::new(),
        answered: Vec::new(),
        missing: Vec::new(),
        truncated: false,
    };
    while let Some(done) = asks.join_next().await {
        let Ok((node, name, answer)) = done else {
            continue;
        };
        match answer {
            Ok(records) => {
                merged.truncated |= records.len() >= limit;
                merged.records.extend(records);
                merged.answered.push(node);
            }
            Err(error) => merged.missing.push(MissingNode { node, name, error }),
        }
    }
    merged
        .records
        .sort_by(|a, b| b.last_ms.cmp(&a.last_ms).then(a.node.cmp(&b.node)));
    if merged.records.len() > limit {
        merged.records.truncate(limit);
        merged.truncated = true;
    }
    merged.answered.sort();
    merged.missing.sort_by_key(|m| m.node);
    merged
}

async fn ask(
    control: &ControlPlane,
    node: NodeId,
    address: std::net::SocketAddr,
    filter: FlowFilter,
    limit: usize,
) -> Result<Vec<FlowRecord>, String> {
    let request = serde_json::to_vec(&NodeQuery::Flows { filter, limit })
        .map_err(|e| format!("cannot encode the query: {e}"))?;
    let call = control.endpoint().query(node.0, address, request.into());
    let reply = match tokio::time::timeout(ANSWER_WITHIN, call).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => return Err(format!("no answer within {}s", ANSWER_WITHIN.as_secs())),
    };
    serde_json::from_slice::<Result<Vec<FlowRecord>, String>>(&reply)
        .map_err(|e| format!("an unreadable answer: {e}"))?
}
