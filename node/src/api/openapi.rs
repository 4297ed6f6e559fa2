//! The API's OpenAPI document, generated from the handlers' annotations and
//! the types they read and write, and served at `GET /v1/openapi.json`.
//!
//! The base document here holds what no handler says: the title, the bearer
//! security scheme (required by every operation unless it says otherwise),
//! the tags, and schema-only mirrors of the two reply and query types whose
//! Rust definitions live outside the API (`Status` flattens Raft's status,
//! and `Consistency` is the control plane's). Tests below check the mirrors
//! against the real types' JSON.

use axum::extract::State;
use axum::Json;
use std::collections::BTreeMap;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ErrorBody;
use super::AppState;

/// Name of the bearer-token security scheme in the document.
pub const BEARER: &str = "bearer";

/// Descriptions shared by many operations' responses.
pub mod doc {
    /// 200 of a write.
    pub const WRITTEN: &str =
        "Written: `index` is the Raft log index of the change, the policy version it created";
    /// 400 of a write.
    pub const INVALID: &str =
        "The request is invalid; `field` names the part at fault when one is. Nothing was written";
    /// 400 of a write whose path holds a number.
    pub const INVALID_OR_BAD_PATH: &str = "The request is invalid (JSON, `field` naming the part \
        at fault when one is), or a path segment is not a number (plain text). Nothing was written";
    /// 400 of a read with a malformed query string.
    pub const BAD_QUERY: &str =
        "The query string is malformed, e.g. an unknown `consistency` (plain text)";
    /// 400 of a read whose path holds a number.
    pub const BAD_PATH_OR_QUERY: &str =
        "A path segment is not a number, or the query string is malformed (plain text)";
    /// 401 of every operation but the document's.
    pub const UNAUTHORIZED: &str =
        "No valid bearer token: missing, malformed, unknown, revoked or expired";
    /// 403 of a policy write.
    pub const NEEDS_OPERATOR: &str = "The token's role is below `operator`";
    /// 403 of a cluster or token change.
    pub const NEEDS_ADMIN: &str = "The token's role is below `admin`";
    /// 503 of a read.
    pub const UNAVAILABLE_READ: &str =
        "A `linearizable` read could not be confirmed with the leader (no quorum, or the leader \
         is unreachable)";
    /// 503 of a write.
    pub const UNAVAILABLE_WRITE: &str =
        "The control plane could not commit the change (no quorum, or the leader is unreachable)";
}

/// The base of the document; the operations and the schemas they use are
/// added from the handlers by `utoipa_axum::routes!`.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Stockade admin API",
        description = "The HTTP admin API every Stockade node serves. Any node answers any call: \
            reads come from its local copy of the state (or, with `?consistency=linearizable`, \
            after confirming with the leader that the copy is current), and writes are \
            forwarded to the leader through Raft and answered as if local. Every write's reply \
            carries the Raft log index at which it took effect: the policy version."
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(ErrorBody)),
    tags(
        (name = "zones", description = "Zones and their modes"),
        (name = "identities", description = "Application identities, `zone/app/service`"),
        (name = "identity rules", description = "What gives workloads their identity"),
        (name = "fingerprints", description = "Binaries registered for an identity"),
        (name = "rules", description = "Rules between applications, or toward CIDRs"),
        (name = "sinks", description = "Where alerts are delivered"),
        (name = "alerts", description = "Alerts and their delivery to each sink"),
        (name = "audit", description = "Every change made through the API: who, what, when, from where"),
        (name = "policy", description = "The whole policy as a TOML document, its history and rollback"),
        (name = "cluster", description = "Status and membership"),
        (name = "tokens", description = "API tokens and join tokens"),
        (name = "certificates", description = "This node's certificate and its renewal"),
        (name = "metrics", description = "This node's metrics, for Prometheus"),
        (name = "backup", description = "Backups of the cluster state, and restores"),
        (name = "compliance", description = "The HIPAA / NIST CSF report of the live cluster"),
        (name = "openapi", description = "This document"),
    )
)]
pub struct ApiDoc;

/// Adds the bearer-token security scheme that `security(("bearer" = []))`
/// names.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "An API token, as `POST /v1/tokens` shows it once: `Authorization: Bearer <token>`",
            ))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(BEARER, SecurityScheme::Http(scheme));
    }
}

/// The route of this module: the document itself.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(document))
}

/// This document. It needs no token.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "openapi",
    security(()),
    responses(
        (status = 200, description = "The OpenAPI document of this API", body = Object),
    )
)]
async fn document(State(app): State<AppState>) -> Json<utoipa::openapi::OpenApi> {
    Json(app.openapi.as_ref().clone())
}

// Schema-only mirror of `crate::cluster::Consistency`; a test checks that
// they agree.
/// How fresh a read must be.
#[derive(ToSchema)]
#[schema(as = Consistency, rename_all = "snake_case")]
#[allow(dead_code)] // Schema only: never built.
pub enum ConsistencySchema {
    /// This node's applied state (may trail the leader by a heartbeat).
    Local,
    /// Reflects every write committed before the read began.
    Linearizable,
}

// Schema-only mirror of `crate::cluster::Status`, which flattens
// `stockade_raft::RaftStatus` (a type with no schema of its own) into it; a
// test checks that its fields are exactly those of the real reply.
/// This node's view of the cluster. Node ids are the numbers
/// `DELETE /v1/members/{id}` takes; the keys of the maps are node ids too,
/// written as strings as JSON keys are.
#[derive(ToSchema)]
#[schema(as = Status)]
#[allow(dead_code)] // Schema only: never built.
pub struct StatusSchema {
    /// This node's name.
    name: String,
    /// This node's id.
    node_id: u64,
    /// `leader`, `follower`, `candidate`, `learner` or `shutdown`.
    role: String,
    /// The current term.
    term: u64,
    /// The leader this node knows of.
    #[schema(required = true)]
    leader: Option<u64>,
    /// The index of the last entry in this node's log.
    #[schema(required = true)]
    last_log_index: Option<u64>,
    /// The index of the last entry applied to this node's state: the policy
    /// version in force here.
    #[schema(required = true)]
    applied_index: Option<u64>,
    /// The last index its snapshot covers.
    #[schema(required = true)]
    snapshot_index: Option<u64>,
    /// The last index purged from its log.
    #[schema(required = true)]
    purged_index: Option<u64>,
    /// The voters (by node id) and their advertised addresses.
    voters: BTreeMap<String, String>,
    /// The learners (by node id) and their advertised addresses.
    learners: BTreeMap<String, String>,
    /// On the leader only: the last index each other member (by node id) is
    /// known to hold.
    #[schema(required = true)]
    replication: Option<BTreeMap<String, Option<u64>>>,
    /// On the leader only: milliseconds since a quorum last acknowledged it.
    #[schema(required = true)]
    millis_since_quorum_ack: Option<u64>,
    /// Milliseconds since this node last heard from each peer (by node id).
    last_contact_ms: BTreeMap<String, u64>,
    /// The kernel dataplane, absent on a node that runs none: `index` is
    /// the applied index whose policy is in force in the kernel.
    dataplane: Option<crate::dataplane::DataplaneStatus>,
    /// The flow log, when this node runs a dataplane.
    flows: Option<crate::flows::FlowStatus>,
    /// The Noise tunnel, when this node runs one.
    tunnel: Option<crate::tunnel::TunnelStatus>,
}

#[cfg(test)]
mod tests;
