//! Alert sinks: `/v1/sinks`. Secrets never leave in clear.

use axum::extract::{Path, Query, State};
use axum::Json;
use stockade_policy::{AlertSink, Command, Secret};
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
        .routes(routes!(list_sinks))
        .routes(routes!(put_sink, delete_sink))
}

fn redacted(mut sink: AlertSink) -> AlertSink {
    for secret in sink.target.secrets_mut() {
        *secret = Secret(Secret::REDACTED.into());
    }
    sink
}

/// Lists the alert sinks, their secrets redacted.
#[utoipa::path(
    get,
    path = "/v1/sinks",
    tag = "sinks",
    params(ReadParams),
    responses(
        (status = 200, description = "Every alert sink, secrets shown as `<redacted>`", body = Vec<AlertSink>),
        (status = 400, description = doc::BAD_QUERY, body = String, content_type = "text/plain"),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 503, description = doc::UNAVAILABLE_READ, body = ErrorBody),
    )
)]
async fn list_sinks(
    State(app): State<AppState>,
    _: Caller,
    Query(read): Query<ReadParams>,
) -> ApiResult<Json<Vec<AlertSink>>> {
    let items = app
        .cluster
        .read(read.consistency, |state| {
            state.sinks.values().cloned().map(redacted).collect()
        })
        .await?;
    Ok(Json(items))
}

/// Creates or replaces an alert sink; the body's `name` must be the path's.
#[utoipa::path(
    put,
    path = "/v1/sinks/{name}",
    tag = "sinks",
    params(("name" = String, Path, description = "The sink's name")),
    request_body = AlertSink,
    responses(
        (status = 200, description = doc::WRITTEN, body = WriteReply),
        (status = 400, description = doc::INVALID, body = ErrorBody),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = doc::NEEDS_OPERATOR, body = ErrorBody),
        (status = 503, description = doc::UNAVAILABLE_WRITE, body = ErrorBody),
    )
)]
async fn put_sink(
    State(app): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(sink): JsonBody<AlertSink>,
) -> ApiResult<Json<WriteReply>> {
    if sink.name != name {
        return Err(ApiError::bad_field(
            "name",
            format!("the body names `{}` but the path `{name}`", sink.name),
        ));
    }
    write(&app, caller, Command::UpsertSink(sink)).await
}

/// Removes an alert sink.
#[utoipa::path(
    delete,
    path = "/v1/sinks/{name}",
    tag = "sinks",
    params(("name" = String, Path, description = "The sink's name")),
    responses(
        (status = 200, description = doc::WRITTEN, body = WriteReply),
        (status = 400, description = doc::INVALID, body = ErrorBody),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = doc::NEEDS_OPERATOR, body = ErrorBody),
        (status = 503, description = doc::UNAVAILABLE_WRITE, body = ErrorBody),
    )
)]
async fn delete_sink(
    State(app): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<WriteReply>> {
    write(&app, caller, Command::RemoveSink { name }).await
}
