//! Flow queries across the cluster: the node that serves `GET /v1/flows`
//! asks every node for its matching records over QUIC and merges them.
//! A node that does not answer is named in the reply, never silently
//! missing from it.

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use stockade_compliance::FlowTally;
use stockade_policy::{FlowFilter, FlowRecord, NodeId};
use stockade_transport::Bytes;
use tokio::task::JoinSet;
use utoipa::ToSchema;

use crate::cluster::ControlPlane;
use crate::flows::hits::local_rule_hits;
use crate::report::local_report;

/// Records one query returns at most, per node and merged.
pub const MAX_QUERY_LIMIT: usize = 10_000;

/// How long a node has to answer before it counts as missing.
const ANSWER_WITHIN: Duration = Duration::from_secs(3);

/// A question one node asks another about what it observed or runs.
///
/// A node that does not know a question (an older version) answers with an
/// error, and the asking node reports it as missing.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeQuery {
    /// Its flow records that match, newest first; replies
    /// `Result<Vec<FlowRecord>, String>`.
    Flows {
        /// Which records (boxed: the other questions are small).
        filter: Box<FlowFilter>,
        /// How many at most.
        limit: usize,
    },
    /// How often each rule decided in its flow log; replies
    /// `Result<Vec<RuleHits>, String>`.
    RuleHits {
        /// Only records last seen at or after this time (ms since the
        /// Unix epoch).
        since_ms: Option<u64>,
    },
    /// Its version and indexes; replies `Result<NodeReport, String>`.
    Report,
    /// Counts of its flow log for the compliance report; replies
    /// `Result<FlowTally, String>`.
    FlowTally {
        /// Only records last seen at or after this time (ms since the
        /// Unix epoch).
        since_ms: u64,
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
    let encoded = match query {
        NodeQuery::Flows { filter, limit } => {
            serde_json::to_vec(&local_flows(control, &filter, limit))
        }
        NodeQuery::RuleHits { since_ms } => serde_json::to_vec(&local_rule_hits(control, since_ms)),
        NodeQuery::Report => serde_json::to_vec(&Ok::<_, String>(local_report(control))),
        NodeQuery::FlowTally { since_ms } => {
            serde_json::to_vec(&local_flow_tally(control, since_ms))
        }
    };
    encoded
        .map(Bytes::from)
        .map_err(|e| format!("cannot encode the answer: {e}"))
}

/// What every node answered to one question, and who did not answer.
pub struct FanOut<T> {
    /// The answers, by node, in node order.
    pub answers: Vec<(NodeId, T)>,
    /// The nodes that did not answer, in node order.
    pub missing: Vec<MissingNode>,
}

/// Asks every node (or only `only`) `query` over QUIC, and this node
/// itself through `local`, all at once; a node that does not answer within
/// 3 s is missing.
pub async fn fan_out<T, L>(
    control: &Arc<ControlPlane>,
    only: Option<NodeId>,
    query: NodeQuery,
    local: L,
) -> FanOut<T>
where
    T: DeserializeOwned + Send + 'static,
    L: FnOnce(&ControlPlane) -> Result<T, String> + Send + 'static,
{
    let me = NodeId(control.raft().id());
    let nodes: Vec<_> = control.with_state(|state| {
        state
            .nodes
            .values()
            .filter(|n| only.is_none_or(|only| only == n.id))
            .map(|n| (n.id, n.name.clone(), n.address))
            .collect()
    });
    let mut asks = JoinSet::new();
    let mut local = Some(local);
    for (id, name, address) in nodes {
        let control = Arc::clone(control);
        if id == me {
            let Some(local) = local.take() else { continue };
            // Reading the log is file I/O: off the async workers.
            asks.spawn_blocking(move || (id, name, local(&control)));
        } else {
            let query = query.clone();
            asks.spawn(async move {
                let answer = ask(&control, id, address, &query).await;
                (id, name, answer)
            });
        }
    }
    let mut out = FanOut {
        answers: Vec::new(),
        missing: Vec::new(),
    };
    while let Some(done) = asks.join_next().await {
        let Ok((node, name, answer)) = done else {
            continue;
        };
        match answer {
            Ok(answer) => out.answers.push((node, answer)),
            Err(error) => out.missing.push(MissingNode { node, name, error }),
        }
    }
    out.answers.sort_by_key(|(node, _)| *node);
    out.missing.sort_by_key(|m| m.node);
    out
}

/// Asks every node (or the one `filter.node` names) for its records.
pub async fn cluster_flows(
    control: &Arc<ControlPlane>,
    filter: &FlowFilter,
    limit: usize,
) -> ClusterFlows {
    let limit = limit.clamp(1, MAX_QUERY_LIMIT);
    let query = NodeQuery::Flows {
        filter: Box::new(filter.clone()),
        limit,
    };
    let mine = filter.clone();
    let FanOut { answers, missing } = fan_out(control, filter.node, query, move |control| {
        local_flows(control, &mine, limit)
    })
    .await;
    let mut merged = ClusterFlows {
        records: Vec::new(),
        answered: Vec::new(),
        missing,
        truncated: false,
    };
    for (node, records) in answers {
        merged.truncated |= records.len() >= limit;
        merged.records.extend(records);
        merged.answered.push(node);
    }
    merged
        .records
        .sort_by(|a, b| b.last_ms.cmp(&a.last_ms).then(a.node.cmp(&b.node)));
    if merged.records.len() > limit {
        merged.records.truncate(limit);
        merged.truncated = true;
    }
    merged
}

async fn ask<T: DeserializeOwned>(
    control: &ControlPlane,
    node: NodeId,
    address: std::net::SocketAddr,
    query: &NodeQuery,
) -> Result<T, String> {
    let request = serde_json::to_vec(query).map_err(|e| format!("cannot encode the query: {e}"))?;
    let call = control.endpoint().query(node.0, address, request.into());
    let reply = match tokio::time::timeout(ANSWER_WITHIN, call).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => return Err(format!("no answer within {}s", ANSWER_WITHIN.as_secs())),
    };
    serde_json::from_slice::<Result<T, String>>(&reply)
        .map_err(|e| format!("an unreadable answer: {e}"))?
}

/// This node's own flow log counted for the compliance report, over the
/// records last seen at or after `since_ms`.
pub fn local_flow_tally(control: &ControlPlane, since_ms: u64) -> Result<FlowTally, String> {
    let mut tally = FlowTally::default();
    if let Some(store) = control.flows() {
        store
            .for_each(since_ms, |record| tally.add(record))
            .map_err(|e| e.to_string())?;
    }
    Ok(tally)
}
