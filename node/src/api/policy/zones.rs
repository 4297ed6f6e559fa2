//! Zones: `/v1/zones`.

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use stockade_policy::{Command, Mode, Zone};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{write, WriteReply};
use crate::api::auth::Caller;
use crate::api::error::{ApiError, ApiResult, ErrorBody, JsonBody};
use crate::api::openapi::doc;
use crate::api::{AppState, ReadParams};

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_zones))
        .routes(routes!(put_zone, get_zone, delete_zone))
}

/// Body of `PUT /v1/zones/{name}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ZoneBody {
    /// What happens to flows no rule decides.
    mode: Mode,
    /// Free text for people.
    #[serde(default)]
    description: String,
}

/// Lists the zones.
#[utoipa::path(
    get,
    path = "/v1/zones",
    tag = "zones",
    params(ReadParams),
    responses(
        (status = 200, description = "Every zone", body = Vec<Zone>),
        (status = 400, description = doc::BAD_QUERY, body = String, content_type = "text/plain"),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 503, description = doc::UNAVAILABLE_READ, body = ErrorBody),
    )
)]
async fn list_zones(
    State(app): State<AppState>,
    _: Caller,
    Query(read): Query<ReadParams>,
) -> ApiResult<Json<Vec<Zone>>> {
    let items = app
        .cluster
        .read(read.consistency, |state| {
            state.zones.values().cloned().collect()
        })
        .await?;
    Ok(Json(items))
}

/// Reads one zone.
#[utoipa::path(
    get,
    path = "/v1/zones/{name}",
    tag = "zones",
    params(("name" = String, Path, description = "The zone's name"), ReadParams),
    responses(
        (status = 200, description = "The zone", body = Zone),
        (status = 400, description = doc::BAD_QUERY, body = String, content_type = "text/plain"),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 404, description = "No zone has this name", body = ErrorBody),
        (status = 503, description = doc::UNAVAILABLE_READ, body = ErrorBody),
    )
)]
async fn get_zone(
    State(app): State<AppState>,
    _: Caller,
    Path(name): Path<String>,
    Query(read): Query<ReadParams>,
) -> ApiResult<Json<Zone>> {
    let zone = app
        .cluster
        .read(read.consistency, |state| state.zones.get(&name).cloned())
        .await?;
    zone.map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no zone `{name}`")))
}

/// Creates a zone, or changes its mode and description.
#[utoipa::path(
    put,
    path = "/v1/zones/{name}",
    tag = "zones",
    params(("name" = String, Path, description = "The zone's name")),
    request_body = ZoneBody,
    responses(
        (status = 200, description = doc::WRITTEN, body = WriteReply),
        (status = 400, description = doc::INVALID, body = ErrorBody),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = doc::NEEDS_OPERATOR, body = ErrorBody),
        (status = 503, description = doc::UNAVAILABLE_WRITE, body = ErrorBody),
    )
)]
async fn put_zone(
    State(app): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<ZoneBody>,
) -> ApiResult<Json<WriteReply>> {
    write(
        &app,
        caller,
        Command::UpsertZone {
            id: None,
            name,
            mode: body.mode,
            description: body.description,
        },
    )
    .await
}

/// Removes a zone.
#[utoipa::path(
    delete,
    path = "/v1/zones/{name}",
    tag = "zones",
    params(("name" = String, Path, description = "The zone's name")),
    responses(
        (status = 200, description = doc::WRITTEN, body = WriteReply),
        (status = 400, description = doc::INVALID, body = ErrorBody),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = doc::NEEDS_OPERATOR, body = ErrorBody),
        (status = 503, description = doc::UNAVAILABLE_WRITE, body = ErrorBody),
    )
)]
async fn delete_zone(
    State(app): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<WriteReply>> {
    write(&app, caller, Command::RemoveZone { name }).await
}
