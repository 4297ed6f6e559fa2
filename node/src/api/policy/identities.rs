//! What gives workloads their identity: identities, identity rules and
//! registered binaries (`/v1/identities`, `/v1/identity-rules`,
//! `/v1/fingerprints`).

use axum::extract::{Path, Query, State};
use axum::Json;
use stockade_policy::{Command, Fingerprint, Identity, IdentityName, IdentityRule, Sha256};
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
        .routes(routes!(list_identities, create_identity))
        .routes(routes!(delete_identity))
        .routes(routes!(list_identity_rules))
        .routes(routes!(put_identity_rule, delete_identity_rule))
        .routes(routes!(list_fingerprints, register_fingerprint))
        .routes(routes!(delete_fingerprint))
}

/// Lists the identities.
#[utoipa::path(
    get,
    path = "/v1/identities",
    tag = "identities",
    params(ReadParams),
    responses(
        (status = 200, description = "Every identity", body = Vec<Identity>),
        (status = 400, description = doc::BAD_QUERY, body = String, content_type = "text/plain"),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 503, description = doc::UNAVAILABLE_READ, body = ErrorBody),
    )
)]
async fn list_identities(
    State(app): State<AppState>,
    _: Caller,
    Query(read): Query<ReadParams>,
) -> ApiResult<Json<Vec<Identity>>> {
    let items = app
        .cluster
        .read(read.consistency, |state| {
            state.identities.values().cloned().collect()
        })
        .await?;
    Ok(Json(items))
}

/// Defines an identity; the reply carries the number it was given.
#[utoipa::path(
    post,
    path = "/v1/identities",
    tag = "identities",
    request_body = IdentityName,
    responses(
        (status = 200, description = doc::WRITTEN, body = WriteReply),
        (status = 400, description = doc::INVALID, body = ErrorBody),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = doc::NEEDS_OPERATOR, body = ErrorBody),
        (status = 503, description = doc::UNAVAILABLE_WRITE, body = ErrorBody),
    )
)]
async fn create_identity(
    State(app): State<AppState>,
    caller: Caller,
    JsonBody(name): JsonBody<IdentityName>,
) -> ApiResult<Json<WriteReply>> {
    write(&app, caller, Command::DefineIdentity { id: None, name }).await
}

/// Removes an identity.
#[utoipa::path(
    delete,
    path = "/v1/identities/{zone}/{app}/{service}",
    tag = "identities",
    params(
        ("zone" = String, Path, description = "The identity's zone"),
        ("app" = String, Path, description = "The identity's app"),
        ("service" = String, Path, description = "The identity's service"),
    ),
    responses(
        (status = 200, description = doc::WRITTEN, body = WriteReply),
        (status = 400, description = doc::INVALID, body = ErrorBody),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = doc::NEEDS_OPERATOR, body = ErrorBody),
        (status = 503, description = doc::UNAVAILABLE_WRITE, body = ErrorBody),
    )
)]
async fn delete_identity(
    State(app): State<AppState>,
    caller: Caller,
    Path((zone, app_name, service)): Path<(String, String, String)>,
) -> ApiResult<Json<WriteReply>> {
    write(
        &app,
        caller,
        Command::RemoveIdentity {
            name: IdentityName {
                zone,
                app: app_name,
                service,
            },
        },
    )
    .await
}

/// Lists the identity rules, in the order they are tried.
#[utoipa::path(
    get,
    path = "/v1/identity-rules",
    tag = "identity rules",
    params(ReadParams),
    responses(
        (status = 200, description = "Every identity rule", body = Vec<IdentityRule>),
        (status = 400, description = doc::BAD_QUERY, body = String, content_type = "text/plain"),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 503, description = doc::UNAVAILABLE_READ, body = ErrorBody),
    )
)]
async fn list_identity_rules(
    State(app): State<AppState>,
    _: Caller,
    Query(read): Query<ReadParams>,
) -> ApiResult<Json<Vec<IdentityRule>>> {
    let items = app
        .cluster
        .read(read.consistency, |state| {
            state.identity_rules.values().cloned().collect()
        })
        .await?;
    Ok(Json(items))
}

/// Creates or replaces an identity rule; the body's `name` must be the path's.
#[utoipa::path(
    put,
    path = "/v1/identity-rules/{name}",
    tag = "identity rules",
    params(("name" = String, Path, description = "The rule's name")),
    request_body = IdentityRule,
    responses(
        (status = 200, description = doc::WRITTEN, body = WriteReply),
        (status = 400, description = doc::INVALID, body = ErrorBody),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = doc::NEEDS_OPERATOR, body = ErrorBody),
        (status = 503, description = doc::UNAVAILABLE_WRITE, body = ErrorBody),
    )
)]
async fn put_identity_rule(
    State(app): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(rule): JsonBody<IdentityRule>,
) -> ApiResult<Json<WriteReply>> {
    if rule.name != name {
        return Err(ApiError::bad_field(
            "name",
            format!("the body names `{}` but the path `{name}`", rule.name),
        ));
    }
    write(&app, caller, Command::UpsertIdentityRule(rule)).await
}

/// Removes an identity rule.
#[utoipa::path(
    delete,
    path = "/v1/identity-rules/{name}",
    tag = "identity rules",
    params(("name" = String, Path, description = "The rule's name")),
    responses(
        (status = 200, description = doc::WRITTEN, body = WriteReply),
        (status = 400, description = doc::INVALID, body = ErrorBody),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = doc::NEEDS_OPERATOR, body = ErrorBody),
        (status = 503, description = doc::UNAVAILABLE_WRITE, body = ErrorBody),
    )
)]
async fn delete_identity_rule(
    State(app): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<WriteReply>> {
    write(&app, caller, Command::RemoveIdentityRule { name }).await
}

/// Lists the registered binary fingerprints.
#[utoipa::path(
    get,
    path = "/v1/fingerprints",
    tag = "fingerprints",
    params(ReadParams),
    responses(
        (status = 200, description = "Every fingerprint", body = Vec<Fingerprint>),
        (status = 400, description = doc::BAD_QUERY, body = String, content_type = "text/plain"),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 503, description = doc::UNAVAILABLE_READ, body = ErrorBody),
    )
)]
async fn list_fingerprints(
    State(app): State<AppState>,
    _: Caller,
    Query(read): Query<ReadParams>,
) -> ApiResult<Json<Vec<Fingerprint>>> {
    let items = app
        .cluster
        .read(read.consistency, |state| {
            state.fingerprints.values().cloned().collect()
        })
        .await?;
    Ok(Json(items))
}

/// Registers a binary as belonging to an identity.
#[utoipa::path(
    post,
    path = "/v1/fingerprints",
    tag = "fingerprints",
    request_body = Fingerprint,
    responses(
        (status = 200, description = doc::WRITTEN, body = WriteReply),
        (status = 400, description = doc::INVALID, body = ErrorBody),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = doc::NEEDS_OPERATOR, body = ErrorBody),
        (status = 503, description = doc::UNAVAILABLE_WRITE, body = ErrorBody),
    )
)]
async fn register_fingerprint(
    State(app): State<AppState>,
    caller: Caller,
    JsonBody(fingerprint): JsonBody<Fingerprint>,
) -> ApiResult<Json<WriteReply>> {
    write(&app, caller, Command::RegisterFingerprint(fingerprint)).await
}

/// Removes a fingerprint.
#[utoipa::path(
    delete,
    path = "/v1/fingerprints/{sha256}",
    tag = "fingerprints",
    params((
        "sha256" = String,
        Path,
        description = "SHA-256 of the binary, 64 hex digits",
        pattern = "^[0-9a-fA-F]{64}$"
    )),
    responses(
        (status = 200, description = doc::WRITTEN, body = WriteReply),
        (status = 400, description = doc::INVALID, body = ErrorBody),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = doc::NEEDS_OPERATOR, body = ErrorBody),
        (status = 503, description = doc::UNAVAILABLE_WRITE, body = ErrorBody),
    )
)]
async fn delete_fingerprint(
    State(app): State<AppState>,
    caller: Caller,
    Path(sha256): Path<String>,
) -> ApiResult<Json<WriteReply>> {
    let sha256: Sha256 = sha256
        .parse()
        .map_err(|e: stockade_policy::ParseError| ApiError::bad_field("sha256", e.to_string()))?;
    write(&app, caller, Command::RemoveFingerprint { sha256 }).await
}
