//! The HTTP admin API every node serves (axum).
//!
//! Any node answers any call: reads come from its local copy of the state
//! (or, with `?consistency=linearizable`, after confirming with the leader
//! that the copy is current), and writes are forwarded to the leader through
//! Raft and answered as if local.
//!
//! Every route is registered with `utoipa_axum::routes!`, which takes the
//! method and path from the handler's `#[utoipa::path]` annotation: the
//! routes the router serves and the operations of its OpenAPI document
//! (`GET /v1/openapi.json`) come from the same place.

mod alerts;
mod audit;
mod auth;
mod backup;
mod baseline;
mod certs;
mod compliance;
mod error;
mod flows;
mod inventory;
mod members;
mod metrics;
mod openapi;
mod policy;
mod state;

use std::sync::Arc;

use axum::Router;
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi as _};
use utoipa_axum::router::OpenApiRouter;

use crate::cluster::{Consistency, ControlPlane};

/// What every handler gets.
#[derive(Clone)]
pub struct AppState {
    /// This node's view of, and access to, the control plane.
    pub cluster: Arc<ControlPlane>,
    /// The API's OpenAPI document, served at `GET /v1/openapi.json`.
    pub openapi: Arc<utoipa::openapi::OpenApi>,
}

/// `?consistency=` of read requests.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReadParams {
    /// `local` (default): this node's applied state, which may trail the
    /// leader by a heartbeat; `linearizable`: reflects every write committed
    /// before the read began.
    #[serde(default)]
    #[param(inline, value_type = openapi::ConsistencySchema)]
    pub consistency: Consistency,
}

/// Every route of the API, each with its OpenAPI operation.
fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(policy::routes())
        .merge(alerts::routes())
        .merge(audit::routes())
        .merge(inventory::routes())
        .merge(flows::routes())
        .merge(baseline::routes())
        .merge(members::routes())
        .merge(certs::routes())
        .merge(state::routes())
        .merge(metrics::routes())
        .merge(backup::routes())
        .merge(compliance::routes())
        .merge(openapi::routes())
}

/// The whole API, and the web console that uses it (its static assets
/// need no token; the data they show comes from the API, which does).
pub fn router(cluster: Arc<ControlPlane>) -> Router {
    let (router, openapi) = api().split_for_parts();
    router
        .with_state(AppState {
            cluster,
            openapi: Arc::new(openapi),
        })
        .merge(crate::console::routes())
}
