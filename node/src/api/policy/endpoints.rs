//! The endpoints nodes publish: where identified workloads listen.

use axum::extract::{Query, State};
use axum::Json;
use stockade_policy::Endpoint;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::auth::Caller;
use crate::api::error::{ApiResult, ErrorBody};
use crate::api::openapi::doc;
use crate::api::{AppState, ReadParams};

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_endpoints))
}

/// Lists the endpoints: the address, port and identity of every workload
/// the nodes found listening, and the node it runs on. Nodes publish them
/// as their workloads start and stop; every node's address cache is built
/// from them.
#[utoipa::path(
    get,
    path = "/v1/endpoints",
    tag = "endpoints",
    params(ReadParams),
    responses(
        (status = 200, description = "Every endpoint", body = Vec<Endpoint>),
        (status = 400, description = doc::BAD_QUERY, body = String, content_type = "text/plain"),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 503, description = doc::UNAVAILABLE_READ, body = ErrorBody),
    )
)]
async fn list_endpoints(
    State(app): State<AppState>,
    _: Caller,
    Query(read): Query<ReadParams>,
) -> ApiResult<Json<Vec<Endpoint>>> {
    let items = app
        .cluster
        .read(read.consistency, |state| {
            state.endpoints.values().cloned().collect()
        })
        .await?;
    Ok(Json(items))
}
