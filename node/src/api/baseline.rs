//! Learning and pre-canned policy: `GET /v1/baseline` (what learning zones
//! were seen to do), `POST /v1/baseline/proposal` (the narrowest allow rules
//! that cover it, as a diff against the policy), `POST
//! /v1/baseline/decisions` (accept, snooze or deny proposed links), and
//! `/v1/templates` (rules for common servers, from day one).

use axum::extract::{Path, Query, RawQuery, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use stockade_policy::{
    apply_template, propose, templates, Applied, BaselineEdge, ClusterState, Command, EdgeKey,
    LinkChoice, LinkDecision, Proposal, Role, Template, TemplateParams,
};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::auth::Caller;
use crate::api::error::{known_parameters, ApiResult, ErrorBody, JsonBody};
use crate::api::openapi::doc;
use crate::api::policy::{commit, WriteReply};
use crate::api::{AppState, ReadParams};
use crate::clock::now_ms;

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_baseline))
        .routes(routes!(post_proposal))
        .routes(routes!(post_decisions))
        .routes(routes!(list_templates))
        .routes(routes!(apply))
}

/// Which part of the baseline.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ZoneParams {
    /// Only edges from or to this zone.
    zone: Option<String>,
}

/// One learned edge with what was decided about it.
#[derive(Debug, Serialize, ToSchema)]
pub struct BaselineEntry {
    /// Who talked to whom, on which protocol and port.
    pub key: EdgeKey,
    /// How often and when, and which nodes saw it.
    #[serde(flatten)]
    pub seen: BaselineEdge,
    /// A snooze or denial, if one stands.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<LinkDecision>,
}

/// The reply of `GET /v1/baseline`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BaselineReply {
    /// The learned edges.
    pub edges: Vec<BaselineEntry>,
    /// Edges not recorded because the baseline was full.
    pub dropped_edges: u64,
}

/// The learned edges of every learning zone (or of one).
#[utoipa::path(
    get,
    path = "/v1/baseline",
    tag = "baseline",
    params(ZoneParams, ReadParams),
    responses(
        (status = 200, description = "The learned edges", body = BaselineReply),
        (status = 400, description = doc::BAD_QUERY, content(
            (ErrorBody = "application/json"),
            (String = "text/plain"),
        )),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 503, description = doc::UNAVAILABLE_READ, body = ErrorBody),
    )
)]
async fn get_baseline(
    State(app): State<AppState>,
    _: Caller,
    Query(params): Query<ZoneParams>,
    Query(read): Query<ReadParams>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<BaselineReply>> {
    known_parameters(raw.as_deref(), &["zone", "consistency"])?;
    let reply = app
        .cluster
        .read(read.consistency, |state| {
            baseline(state, params.zone.as_deref())
        })
        .await?;
    Ok(Json(reply))
}

fn baseline(state: &ClusterState, zone: Option<&str>) -> BaselineReply {
    let baseline = &state.baseline;
    BaselineReply {
        edges: baseline
            .edges
            .iter()
            .filter(|(key, _)| zone.is_none_or(|z| key.touches_zone(z)))
            .map(|(key, seen)| BaselineEntry {
                key: key.clone(),
                seen: seen.clone(),
                decision: baseline.decisions.get(key).copied(),
            })
            .collect(),
        dropped_edges: baseline.dropped_edges,
    }
}

/// What a proposal covers.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProposalParams {
    /// The zone whose flows the rules should allow.
    zone: String,
    /// Also propose snoozed links that were not seen again.
    #[serde(default)]
    include_snoozed: bool,
}

/// The narrowest allow rules that cover what a zone was seen to do and the
/// policy does not allow yet: grouped by identity pair and protocol, never
/// wider than the observed ports, with the diff they would make.
#[utoipa::path(
    post,
    path = "/v1/baseline/proposal",
    tag = "baseline",
    params(ProposalParams, ReadParams),
    responses(
        (status = 200, description = "The proposed rules and their diff", body = Proposal),
        (status = 400, description = "The zone is unknown or a parameter is bad", content(
            (ErrorBody = "application/json"),
            (String = "text/plain"),
        )),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = doc::NEEDS_OPERATOR, body = ErrorBody),
        (status = 503, description = doc::UNAVAILABLE_READ, body = ErrorBody),
    )
)]
async fn post_proposal(
    State(app): State<AppState>,
    caller: Caller,
    Query(params): Query<ProposalParams>,
    Query(read): Query<ReadParams>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Proposal>> {
    // Those who may accept a proposal are those who ask for one.
    caller.require(Role::Operator)?;
    known_parameters(raw.as_deref(), &["zone", "include_snoozed", "consistency"])?;
    let proposal = app
        .cluster
        .read(read.consistency, |state| {
            propose(state, &params.zone, params.include_snoozed)
        })
        .await??;
    Ok(Json(proposal))
}

/// What to do with some proposed links.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decisions {
    /// The links (as the proposal's `links[].key` gives them).
    pub links: Vec<EdgeKey>,
    /// `accept` (the allow rules are created), `snooze` (hidden until seen
    /// again) or `deny` (never proposed again).
    pub decision: LinkChoice,
}

/// Accepts, snoozes or denies proposed links. Accepting creates the rules
/// the proposal showed, through Raft.
#[utoipa::path(
    post,
    path = "/v1/baseline/decisions",
    tag = "baseline",
    request_body = Decisions,
    responses(
        (status = 200, description = doc::WRITTEN, body = WriteReply),
        (status = 400, description = doc::INVALID, body = ErrorBody),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = doc::NEEDS_OPERATOR, body = ErrorBody),
        (status = 503, description = doc::UNAVAILABLE_WRITE, body = ErrorBody),
    )
)]
async fn post_decisions(
    State(app): State<AppState>,
    caller: Caller,
    JsonBody(decisions): JsonBody<Decisions>,
) -> ApiResult<Json<WriteReply>> {
    let command = Command::DecideLinks {
        links: decisions.links,
        decision: decisions.decision,
        at_ms: now_ms(),
    };
    commit(&app, caller, Role::Operator, command)
        .await
        .map(Json)
}

/// The pre-canned policies for common servers.
#[utoipa::path(
    get,
    path = "/v1/templates",
    tag = "baseline",
    responses(
        (status = 200, description = "Every template", body = Vec<Template>),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
    )
)]
async fn list_templates(_: Caller) -> Json<&'static [Template]> {
    Json(templates())
}

/// Applies a template: the allow rule its server needs from its clients
/// (nothing when an identical rule exists).
#[utoipa::path(
    post,
    path = "/v1/templates/{name}",
    tag = "baseline",
    params(("name" = String, Path, description = "The template: dns, ntp, postgresql, redis or http")),
    request_body = TemplateParams,
    responses(
        (status = 200, description = doc::WRITTEN, body = WriteReply),
        (status = 400, description = doc::INVALID, body = ErrorBody),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = doc::NEEDS_OPERATOR, body = ErrorBody),
        (status = 503, description = doc::UNAVAILABLE_WRITE, body = ErrorBody),
    )
)]
async fn apply(
    State(app): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(params): JsonBody<TemplateParams>,
) -> ApiResult<Json<WriteReply>> {
    caller.require(Role::Operator)?;
    let commands = app
        .cluster
        .with_state(|state| apply_template(state, &name, &params))?;
    if commands.is_empty() {
        let index = app
            .cluster
            .raft()
            .state()
            .last_applied()
            .map_or(0, |l| l.index);
        return Ok(Json(WriteReply {
            index,
            applied: Applied::Batch(Vec::new()),
        }));
    }
    commit(&app, caller, Role::Operator, Command::batch(commands))
        .await
        .map(Json)
}
