//! The audit log: `GET /v1/audit`, every change made through the API — who
//! (token id, name, role), what (the command, secrets redacted), when,
//! from where, through which node, and the policy version it produced.

use axum::extract::{Query, RawQuery, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use stockade_policy::{AuditEntry, AuditFilter};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::auth::Caller;
use crate::api::error::{known_parameters, ApiError, ApiResult, ErrorBody};
use crate::api::openapi::doc;
use crate::api::{AppState, ReadParams};

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_audit))
}

/// The most entries one reply carries.
const MAX_LIMIT: usize = 10_000;
/// Entries a reply carries when `limit` is not given.
const DEFAULT_LIMIT: usize = 100;

/// Which entries `GET /v1/audit` returns.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only changes made at or after this time (ms since the Unix epoch).
    since_ms: Option<u64>,
    /// Only changes made with this token (its id or its name).
    token: Option<String>,
    /// Only changes of this kind (`upsert_rule`, `batch`,
    /// `rollback_policy`, `create_api_token`, …).
    kind: Option<String>,
    /// At most this many, the most recent (default 100, at most 10 000).
    limit: Option<usize>,
}

/// The reply of `GET /v1/audit`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditReply {
    /// The entries asked for, oldest first.
    pub entries: Vec<AuditEntry>,
    /// The sequence number of the newest entry (0 if none).
    pub last_seq: u64,
    /// Entries dropped from the log to stay within
    /// `settings.audit_retention`, in all.
    pub trimmed: u64,
}

/// Lists the changes made through the API, oldest first.
#[utoipa::path(
    get,
    path = "/v1/audit",
    tag = "audit",
    params(AuditQuery, ReadParams),
    responses(
        (status = 200, description = "Audit log entries, oldest first", body = AuditReply),
        (status = 400, description = doc::BAD_QUERY, content(
            (ErrorBody = "application/json"),
            (String = "text/plain"),
        )),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 503, description = doc::UNAVAILABLE_READ, body = ErrorBody),
    )
)]
async fn list_audit(
    State(app): State<AppState>,
    _: Caller,
    Query(query): Query<AuditQuery>,
    Query(read): Query<ReadParams>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<AuditReply>> {
    known_parameters(
        raw.as_deref(),
        &["since_ms", "token", "kind", "limit", "consistency"],
    )?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad_field(
            "limit",
            format!("{limit} is not within 1..={MAX_LIMIT}"),
        ));
    }
    let filter = AuditFilter {
        since_ms: query.since_ms,
        token: query.token,
        kind: query.kind,
        limit: Some(limit),
    };
    let reply = app
        .cluster
        .read(read.consistency, |state| AuditReply {
            entries: state.audit.query(&filter).into_iter().cloned().collect(),
            last_seq: state.audit.next_seq - 1,
            trimmed: state.audit.trimmed,
        })
        .await?;
    Ok(Json(reply))
}
