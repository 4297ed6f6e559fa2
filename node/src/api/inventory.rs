//! Inventory: `GET /v1/inventory`, what runs on every node as each node
//! last reported it, with unknown binaries marked.

use axum::extract::{Query, RawQuery, State};
use axum::Json;
use serde::Serialize;
use stockade_policy::{ClusterState, InventoryFilter, InventoryWorkload, NodeId};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::auth::Caller;
use crate::api::error::{known_parameters, ApiResult, ErrorBody};
use crate::api::openapi::doc;
use crate::api::{AppState, ReadParams};

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_inventory))
}

/// One workload on one node.
#[derive(Debug, Serialize, ToSchema)]
pub struct InventoryEntry {
    /// The node it runs on.
    pub node: NodeId,
    /// That node's name.
    pub node_name: String,
    /// When that node last reported (ms since the Unix epoch).
    pub reported_ms: u64,
    /// The workload.
    #[serde(flatten)]
    pub workload: InventoryWorkload,
}

/// Lists the workloads of every node, by node.
#[utoipa::path(
    get,
    path = "/v1/inventory",
    tag = "inventory",
    params(InventoryFilter, ReadParams),
    responses(
        (status = 200, description = "The workloads that match, by node", body = Vec<InventoryEntry>),
        (status = 400, description = doc::BAD_QUERY, content(
            (ErrorBody = "application/json"),
            (String = "text/plain"),
        )),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 503, description = doc::UNAVAILABLE_READ, body = ErrorBody),
    )
)]
async fn list_inventory(
    State(app): State<AppState>,
    _: Caller,
    Query(filter): Query<InventoryFilter>,
    Query(read): Query<ReadParams>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Vec<InventoryEntry>>> {
    known_parameters(
        raw.as_deref(),
        &["zone", "app", "node", "unknown", "consistency"],
    )?;
    let entries = app
        .cluster
        .read(read.consistency, |state| entries(state, &filter))
        .await?;
    Ok(Json(entries))
}

fn entries(state: &ClusterState, filter: &InventoryFilter) -> Vec<InventoryEntry> {
    state
        .inventory
        .values()
        .flat_map(|inventory| {
            let node_name = state
                .nodes
                .get(&inventory.node)
                .map_or_else(String::new, |n| n.name.clone());
            inventory
                .workloads
                .iter()
                .filter(|w| filter.matches(inventory.node, w))
                .map(move |w| InventoryEntry {
                    node: inventory.node,
                    node_name: node_name.clone(),
                    reported_ms: inventory.reported_ms,
                    workload: w.clone(),
                })
        })
        .collect()
}
