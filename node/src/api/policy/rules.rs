//! Rules: `/v1/rules`.

use axum::extract::{Path, Query, State};
use axum::Json;
use stockade_policy::{Command, Rule, RuleId, RuleSpec};
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
        .routes(routes!(list_rules, create_rule))
        .routes(routes!(put_rule, get_rule, delete_rule))
}

/// Lists the rules.
#[utoipa::path(
    get,
    path = "/v1/rules",
    tag = "rules",
    params(ReadParams),
    responses(
        (status = 200, description = "Every rule", body = Vec<Rule>),
        (status = 400, description = doc::BAD_QUERY, body = String, content_type = "text/plain"),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 503, description = doc::UNAVAILABLE_READ, body = ErrorBody),
    )
)]
async fn list_rules(
    State(app): State<AppState>,
    _: Caller,
    Query(read): Query<ReadParams>,
) -> ApiResult<Json<Vec<Rule>>> {
    let items = app
        .cluster
        .read(read.consistency, |state| {
            state.rules.values().cloned().collect()
        })
        .await?;
    Ok(Json(items))
}

/// Reads one rule.
#[utoipa::path(
    get,
    path = "/v1/rules/{id}",
    tag = "rules",
    params(("id" = u32, Path, description = "The rule's number"), ReadParams),
    responses(
        (status = 200, description = "The rule", body = Rule),
        (status = 400, description = doc::BAD_PATH_OR_QUERY, body = String, content_type = "text/plain"),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 404, description = "No rule has this number", body = ErrorBody),
        (status = 503, description = doc::UNAVAILABLE_READ, body = ErrorBody),
    )
)]
async fn get_rule(
    State(app): State<AppState>,
    _: Caller,
    Path(id): Path<u32>,
    Query(read): Query<ReadParams>,
) -> ApiResult<Json<Rule>> {
    let rule = app
        .cluster
        .read(read.consistency, |state| {
            state.rules.get(&RuleId(id)).cloned()
        })
        .await?;
    rule.map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no rule {id}")))
}

/// Creates a rule; the reply carries the number it was given.
#[utoipa::path(
    post,
    path = "/v1/rules",
    tag = "rules",
    request_body = RuleSpec,
    responses(
        (status = 200, description = doc::WRITTEN, body = WriteReply),
        (status = 400, description = doc::INVALID, body = ErrorBody),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = doc::NEEDS_OPERATOR, body = ErrorBody),
        (status = 503, description = doc::UNAVAILABLE_WRITE, body = ErrorBody),
    )
)]
async fn create_rule(
    State(app): State<AppState>,
    caller: Caller,
    JsonBody(spec): JsonBody<RuleSpec>,
) -> ApiResult<Json<WriteReply>> {
    write(&app, caller, Command::UpsertRule { id: None, spec }).await
}

/// Creates or replaces the rule with this number.
#[utoipa::path(
    put,
    path = "/v1/rules/{id}",
    tag = "rules",
    params(("id" = u32, Path, description = "The rule's number")),
    request_body = RuleSpec,
    responses(
        (status = 200, description = doc::WRITTEN, body = WriteReply),
        (status = 400, description = doc::INVALID_OR_BAD_PATH, content(
            (ErrorBody = "application/json"),
            (String = "text/plain"),
        )),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = doc::NEEDS_OPERATOR, body = ErrorBody),
        (status = 503, description = doc::UNAVAILABLE_WRITE, body = ErrorBody),
    )
)]
async fn put_rule(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<u32>,
    JsonBody(spec): JsonBody<RuleSpec>,
) -> ApiResult<Json<WriteReply>> {
    write(
        &app,
        caller,
        Command::UpsertRule {
            id: Some(RuleId(id)),
            spec,
        },
    )
    .await
}

/// Removes a rule.
#[utoipa::path(
    delete,
    path = "/v1/rules/{id}",
    tag = "rules",
    params(("id" = u32, Path, description = "The rule's number")),
    responses(
        (status = 200, description = doc::WRITTEN, body = WriteReply),
        (status = 400, description = doc::INVALID_OR_BAD_PATH, content(
            (ErrorBody = "application/json"),
            (String = "text/plain"),
        )),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = doc::NEEDS_OPERATOR, body = ErrorBody),
        (status = 503, description = doc::UNAVAILABLE_WRITE, body = ErrorBody),
    )
)]
async fn delete_rule(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<u32>,
) -> ApiResult<Json<WriteReply>> {
    write(&app, caller, Command::RemoveRule { id: RuleId(id) }).await
}
