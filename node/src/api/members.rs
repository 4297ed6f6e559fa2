//! The cluster itself: status, members, API tokens and join tokens.

use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use stockade_policy::{AccessCommand, ApiToken, Command, JoinToken, NodeId, Role, MAX_VOTERS};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::error::{known_parameters, ApiError, ApiResult, ErrorBody, JsonBody};
use super::openapi::{doc, StatusSchema};
use super::policy::{audited, commit, WriteReply};
use super::AppState;
use crate::cluster::Status;
use crate::flows::query::{fan_out, FanOut, MissingNode, NodeQuery};
use crate::report::{local_report, NodeReport};
use crate::tokens::{ApiTokenText, JoinTokenText};

/// The routes of this module. Each handler's `#[utoipa::path]` gives its
/// method and path, to the router and to the OpenAPI document alike.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(status))
        .routes(routes!(list_members))
        .routes(routes!(remove_member))
        .routes(routes!(set_voters))
        .routes(routes!(create_api_token))
        .routes(routes!(revoke_api_token))
        .routes(routes!(create_join_token))
}

/// This node's view of the cluster: its Raft role, term, leader, log and
/// applied indexes, and the members.
#[utoipa::path(
    get,
    path = "/v1/status",
    tag = "cluster",
    responses(
        (status = 200, description = "This node's status", body = StatusSchema),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
    )
)]
async fn status(State(app): State<AppState>, _: Caller) -> Json<Status> {
    Json(app.cluster.status())
}

/// One member as the cluster sees it, with its own report when it
/// answered.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberEntry {
    /// Its node id.
    pub id: NodeId,
    /// Its name.
    pub name: String,
    /// Its advertised control-plane (QUIC) address.
    pub address: String,
    /// `voter` or `learner` in the Raft membership this node knows, or
    /// `none` while it is recorded but not (or no longer) a member.
    pub membership: String,
    /// Whether it is the leader this node knows of.
    pub leader: bool,
    /// Milliseconds since this node last heard from it over Raft (absent
    /// for this node itself, and until it has heard from it).
    pub last_contact_ms: Option<u64>,
    /// What it said about itself; absent when it did not answer (see
    /// `missing`).
    pub report: Option<NodeReport>,
    /// How many log entries the policy in force in its kernel trails the
    /// newest applied index of the cluster (`cluster_index`): 0 when the
    /// latest policy is enforced there. Absent when it runs no dataplane
    /// or did not answer.
    pub dataplane_lag: Option<u64>,
}

/// The reply of `GET /v1/members`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MembersReply {
    /// The node that answered.
    pub node_id: NodeId,
    /// The leader it knows of.
    pub leader: Option<NodeId>,
    /// The newest applied index any member reported: what lags are
    /// measured against.
    pub cluster_index: u64,
    /// Every node recorded in the cluster state, by id.
    pub members: Vec<MemberEntry>,
    /// The members that did not answer within 3 s.
    pub missing: Vec<MissingNode>,
}

/// Every member with its role, its `stockade` version, its applied index
/// and the lag of its kernel dataplane behind the cluster, each node asked
/// over QUIC. Nodes that do not answer within 3 s are listed in `missing`
/// (their version and indexes are then unknown). Takes no query parameters.
#[utoipa::path(
    get,
    path = "/v1/members",
    tag = "cluster",
    responses(
        (status = 200, description = "The members and what each reported", body = MembersReply),
        (status = 400, description = "A query parameter was given; there are none", body = ErrorBody),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
    )
)]
async fn list_members(
    State(app): State<AppState>,
    _: Caller,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<MembersReply>> {
    known_parameters(raw.as_deref(), &[])?;
    let FanOut { answers, missing } = fan_out(&app.cluster, None, NodeQuery::Report, |control| {
        Ok::<_, String>(local_report(control))
    })
    .await;
    let raft = app.cluster.raft().status();
    let cluster_index = answers
        .iter()
        .filter_map(|(_, r): &(NodeId, NodeReport)| r.applied_index)
        .chain(raft.applied_index)
        .max()
        .unwrap_or(0);
    let mut reports: std::collections::BTreeMap<NodeId, NodeReport> = answers.into_iter().collect();
    let nodes: Vec<_> = app
        .cluster
        .with_state(|state| state.nodes.values().cloned().collect());
    let members = nodes
        .into_iter()
        .map(|node| {
            let membership = if raft.voters.contains_key(&node.id.0) {
                "voter"
            } else if raft.learners.contains_key(&node.id.0) {
                "learner"
            } else {
                "none"
            };
            let report = reports.remove(&node.id);
            MemberEntry {
                id: node.id,
                name: node.name,
                address: node.address.to_string(),
                membership: membership.to_owned(),
                leader: raft.leader == Some(node.id.0),
                last_contact_ms: raft.last_contact_ms.get(&node.id.0).copied(),
                dataplane_lag: report
                    .as_ref()
                    .and_then(|r| r.dataplane_index)
                    .map(|index| cluster_index.saturating_sub(index)),
                report,
            }
        })
        .collect();
    Ok(Json(MembersReply {
        node_id: NodeId(raft.node_id),
        leader: raft.leader.map(NodeId),
        cluster_index,
        members,
        missing,
    }))
}

/// Removes a node from the cluster: from the Raft membership, then from the
/// state. Removing a node that is not a member does nothing.
#[utoipa::path(
    delete,
    path = "/v1/members/{id}",
    tag = "cluster",
    params(("id" = u64, Path, description = "The node's id")),
    responses(
        (status = 200, description = doc::WRITTEN, body = WriteReply),
        (status = 400, description = doc::INVALID_OR_BAD_PATH, content(
            (ErrorBody = "application/json"),
            (String = "text/plain"),
        )),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = doc::NEEDS_ADMIN, body = ErrorBody),
        (status = 503, description = doc::UNAVAILABLE_WRITE, body = ErrorBody),
    )
)]
async fn remove_member(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> ApiResult<Json<WriteReply>> {
    caller.require(Role::Admin)?;
    let index = app
        .cluster
        .remove_member(NodeId(id), |c| audited(&app, &caller, c))
        .await?;
    Ok(Json(WriteReply {
        index,
        applied: stockade_policy::Applied::Done,
    }))
}

/// Body of `PUT /v1/members/voters`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VotersBody {
    /// How many voters the control plane keeps: an odd number from 1 to 7.
    #[schema(minimum = 1, maximum = 7)]
    voters: u64,
}

/// Sets how many voters the control plane keeps. The leader then promotes
/// caught-up learners, or demotes voters (never itself), until the voters
/// are the largest odd number no larger than this and the member count.
/// The reply comes once the target is committed, not once the membership
/// has changed: watch `voters` in `GET /v1/status` for that.
#[utoipa::path(
    put,
    path = "/v1/members/voters",
    tag = "cluster",
    request_body = VotersBody,
    responses(
        (status = 200, description = doc::WRITTEN, body = WriteReply),
        (status = 400, description = doc::INVALID, body = ErrorBody),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = doc::NEEDS_ADMIN, body = ErrorBody),
        (status = 503, description = doc::UNAVAILABLE_WRITE, body = ErrorBody),
    )
)]
async fn set_voters(
    State(app): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<VotersBody>,
) -> ApiResult<Json<WriteReply>> {
    // The role first, so a caller without it learns nothing from the body.
    caller.require(Role::Admin)?;
    // The policy validates the number (odd, at most MAX_VOTERS); a number
    // too large for its type must get the same answer, not a parse error.
    let voters = u8::try_from(body.voters).map_err(|_| {
        ApiError::bad_field(
            "voters",
            format!(
                "{} is not an odd number from 1 to {MAX_VOTERS}",
                body.voters
            ),
        )
    })?;
    let command = Command::Access(AccessCommand::SetTargetVoters { voters });
    commit(&app, caller, Role::Admin, command).await.map(Json)
}

/// Body of `POST /v1/tokens`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiToken {
    /// What the token is for, for people.
    name: String,
    /// What it may do.
    role: Role,
    /// Lifetime in seconds; the token never expires when absent.
    #[serde(default)]
    ttl_seconds: Option<u64>,
}

/// A token, shown once when it is created.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    /// The whole token: keep it, it is not shown again.
    pub token: String,
    /// Raft log index of its creation.
    pub index: u64,
}

/// Creates an API token. Its whole text is in this reply only.
#[utoipa::path(
    post,
    path = "/v1/tokens",
    tag = "tokens",
    request_body = NewApiToken,
    responses(
        (status = 200, description = "The new token", body = CreatedToken),
        (status = 400, description = doc::INVALID, body = ErrorBody),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = doc::NEEDS_ADMIN, body = ErrorBody),
        (status = 503, description = doc::UNAVAILABLE_WRITE, body = ErrorBody),
    )
)]
async fn create_api_token(
    State(app): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewApiToken>,
) -> ApiResult<Json<CreatedToken>> {
    let text = ApiTokenText::generate();
    let command = Command::Access(AccessCommand::CreateApiToken(ApiToken {
        id: text.id.clone(),
        name: body.name,
        role: body.role,
        secret_sha256: text.secret_digest(),
        expires_at_ms: body.ttl_seconds.map(expiry_after),
    }));
    let written = commit(&app, caller, Role::Admin, command).await?;
    Ok(Json(CreatedToken {
        token: text.to_string(),
        index: written.index,
    }))
}

/// Revokes an API token.
#[utoipa::path(
    delete,
    path = "/v1/tokens/{id}",
    tag = "tokens",
    params(("id" = String, Path, description = "The token's public id")),
    responses(
        (status = 200, description = doc::WRITTEN, body = WriteReply),
        (status = 400, description = doc::INVALID, body = ErrorBody),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = doc::NEEDS_ADMIN, body = ErrorBody),
        (status = 503, description = doc::UNAVAILABLE_WRITE, body = ErrorBody),
    )
)]
async fn revoke_api_token(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<WriteReply>> {
    let command = Command::Access(AccessCommand::RevokeApiToken { id });
    commit(&app, caller, Role::Admin, command).await.map(Json)
}

/// Body of `POST /v1/join-tokens`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewJoinToken {
    /// Lifetime in seconds.
    ttl_seconds: u64,
}

/// Creates a single-use token that lets one new node join. Its whole text
/// is in this reply only.
#[utoipa::path(
    post,
    path = "/v1/join-tokens",
    tag = "tokens",
    request_body = NewJoinToken,
    responses(
        (status = 200, description = "The new join token", body = CreatedToken),
        (status = 400, description = doc::INVALID, body = ErrorBody),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = doc::NEEDS_ADMIN, body = ErrorBody),
        (status = 503, description = doc::UNAVAILABLE_WRITE, body = ErrorBody),
    )
)]
async fn create_join_token(
    State(app): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewJoinToken>,
) -> ApiResult<Json<CreatedToken>> {
    let fingerprint = app.cluster.ca_fingerprint();
    let text = JoinTokenText::generate(&fingerprint);
    let command = Command::Access(AccessCommand::CreateJoinToken(JoinToken {
        id: text.id.clone(),
        secret_sha256: text.secret_digest(),
        expires_at_ms: expiry_after(body.ttl_seconds),
        used_by: None,
    }));
    let written = commit(&app, caller, Role::Admin, command).await?;
    Ok(Json(CreatedToken {
        token: text.to_string(),
        index: written.index,
    }))
}

/// The time, in ms since the epoch, `seconds` from now.
fn expiry_after(seconds: u64) -> u64 {
    crate::clock::now_ms().saturating_add(seconds.saturating_mul(1000))
}
