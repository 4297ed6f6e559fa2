//! This node's certificate: its status, and its renewal.
//!
//! Both act on the node that serves the call (a certificate belongs to one
//! node): to renew every node's, call each node's API in turn.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use stockade_policy::Role;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::openapi::doc;
use super::AppState;
use crate::certs::{CertStatus, Renewer, Rotated};

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(status))
        .routes(routes!(rotate))
}

/// 503 of both operations.
const NOT_LOADED: &str = "The node is starting: its certificate is not loaded yet";

fn renewer(app: &AppState) -> ApiResult<std::sync::Arc<Renewer>> {
    app.cluster
        .certs()
        .cloned()
        .ok_or_else(|| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, NOT_LOADED))
}

fn internal(e: anyhow::Error) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"))
}

/// The certificate this node presents to its peers: serial, validity, and
/// `expires_soon` when fewer than 30 days are left.
#[utoipa::path(
    get,
    path = "/v1/certs",
    tag = "certificates",
    responses(
        (status = 200, description = "This node's certificate", body = CertStatus),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 503, description = NOT_LOADED, body = ErrorBody),
    )
)]
async fn status(State(app): State<AppState>, _: Caller) -> ApiResult<Json<CertStatus>> {
    renewer(&app)?.status().map(Json).map_err(internal)
}

/// Renews this node's certificate without a restart: a new key (made here,
/// never sent), signed by the cluster CA for this node, written to the data
/// directory and presented on new connections; open connections go on.
/// The tunnel key, derived from the node key, is republished and follows.
#[utoipa::path(
    post,
    path = "/v1/certs/rotate",
    tag = "certificates",
    responses(
        (status = 200, description = "Renewed: the new certificate is in use", body = Rotated),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = doc::NEEDS_ADMIN, body = ErrorBody),
        (status = 500, description = "The renewal failed; the old certificate stays in use", body = ErrorBody),
        (status = 503, description = NOT_LOADED, body = ErrorBody),
    )
)]
async fn rotate(State(app): State<AppState>, caller: Caller) -> ApiResult<Json<Rotated>> {
    caller.require(Role::Admin)?;
    let renewer = renewer(&app)?;
    renewer
        .rotate(&app.cluster)
        .await
        .map(Json)
        .map_err(internal)
}
