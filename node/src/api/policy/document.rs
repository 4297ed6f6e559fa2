//! The whole policy as a TOML document: `/v1/policy`.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use stockade_policy::{PolicyDocument, Role, Secrets};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{write, WriteReply};
use crate::api::auth::Caller;
use crate::api::error::{ApiError, ApiResult, ErrorBody};
use crate::api::openapi::doc;
use crate::api::{AppState, ReadParams};

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(export_policy, import_policy))
}

/// Exports the whole policy as a TOML document, secrets redacted.
#[utoipa::path(
    get,
    path = "/v1/policy",
    tag = "policy",
    params(ReadParams),
    responses(
        (status = 200, description = "The policy as a TOML document", body = String, content_type = "text/plain"),
        (status = 400, description = doc::BAD_QUERY, body = String, content_type = "text/plain"),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 500, description = "The policy could not be written as TOML", body = ErrorBody),
        (status = 503, description = doc::UNAVAILABLE_READ, body = ErrorBody),
    )
)]
async fn export_policy(
    State(app): State<AppState>,
    _: Caller,
    Query(read): Query<ReadParams>,
) -> ApiResult<String> {
    let doc = app
        .cluster
        .read(read.consistency, |state| {
            PolicyDocument::export(state, Secrets::Redact)
        })
        .await?;
    doc.to_toml()
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// Imports a TOML policy document as one all-or-nothing batch.
///
/// A secret written `<redacted>` keeps the one the cluster holds for the
/// sink of that name, when the sink's kind of target is unchanged.
#[utoipa::path(
    put,
    path = "/v1/policy",
    tag = "policy",
    request_body(
        content = String,
        content_type = "text/plain",
        description = "A policy document (TOML), as `GET /v1/policy` writes it"
    ),
    responses(
        (status = 200, description = doc::WRITTEN, body = WriteReply),
        (status = 400, description = doc::INVALID, body = ErrorBody),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = doc::NEEDS_OPERATOR, body = ErrorBody),
        (status = 503, description = doc::UNAVAILABLE_WRITE, body = ErrorBody),
    )
)]
async fn import_policy(
    State(app): State<AppState>,
    caller: Caller,
    body: String,
) -> ApiResult<Json<WriteReply>> {
    caller.require(Role::Operator)?;
    let doc = PolicyDocument::parse(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    let batch = app.cluster.with_state(|state| doc.import(state))?;
    write(&app, caller, batch).await
}
