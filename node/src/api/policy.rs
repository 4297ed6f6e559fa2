//! Policy resources: zones, identities, identity rules, fingerprints, rules,
//! alert sinks, and the whole policy as a document.
//!
//! Every write is validated here against the local state first (a quick 400
//! that names the field), then goes through Raft; the reply carries the log
//! index at which it took effect — the policy version.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use stockade_policy::{
    AlertSink, Applied, Command, Fingerprint, Identity, IdentityName, IdentityRule, Mode,
    PolicyDocument, Role, Rule, RuleId, RuleSpec, Secret, Secrets, Sha256, Zone,
};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::error::{ApiError, ApiResult, ErrorBody, JsonBody};
use super::openapi::doc;
use super::{AppState, ReadParams};

/// The reply to every write.
#[derive(Debug, Serialize, ToSchema)]
pub struct WriteReply {
    /// Raft log index of the write: the policy version it created.
    pub index: u64,
    /// What the write did (with any number it allocated).
    pub applied: Applied,
}

/// The routes of this module. Each handler's `#[utoipa::path]` gives its
/// method and path, to the router and to the OpenAPI document alike.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_zones))
        .routes(routes!(put_zone, get_zone, delete_zone))
        .routes(routes!(list_identities, create_identity))
        .routes(routes!(delete_identity))
        .routes(routes!(list_identity_rules))
        .routes(routes!(put_identity_rule, delete_identity_rule))
        .routes(routes!(list_fingerprints, register_fingerprint))
        .routes(routes!(delete_fingerprint))
        .routes(routes!(list_rules, create_rule))
        .routes(routes!(put_rule, get_rule, delete_rule))
        .routes(routes!(list_sinks))
        .routes(routes!(put_sink, delete_sink))
        .routes(routes!(export_policy, import_policy))
}

async fn write(app: &AppState, caller: Caller, command: Command) -> ApiResult<Json<WriteReply>> {
    caller.require(Role::Operator)?;
    app.cluster.with_state(|state| command.validate(state))?;
    let written = app.cluster.write(command).await?;
    Ok(Json(WriteReply {
        index: written.index,
        applied: written.applied,
    }))
}

// ---- zones

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

// ---- identities

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

// ---- identity rules

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

// ---- fingerprints

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

// ---- rules

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

// ---- alert sinks (secrets never leave in clear)

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

// ---- policy as code

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
