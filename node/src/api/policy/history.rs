//! Policy history and rollback: `GET /v1/policy/history`,
//! `GET /v1/policy/history/{version}`, `POST /v1/policy/rollback`.
//!
//! A version is the log index of a write that changed the policy document;
//! the cluster keeps the newest `settings.history_retention` of them as
//! reversible diffs. A rollback restores the document of a version as one
//! new write: nothing in the log is rewritten.

use axum::extract::{Path, Query, RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use stockade_policy::{
    AuditEntry, Author, ChangeCounts, Command, PolicyDiff, PolicyDocument, PolicyVersion, Role,
    Secrets,
};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{commit, WriteReply};
use crate::api::auth::Caller;
use crate::api::error::{known_parameters, ApiError, ApiResult, ErrorBody, JsonBody};
use crate::api::openapi::doc;
use crate::api::{AppState, ReadParams};

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_versions))
        .routes(routes!(show_version))
        .routes(routes!(rollback))
}

/// One version of the policy, in a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionSummary {
    /// The Raft log index that made it.
    pub version: u64,
    /// When it was asked for (ms since the Unix epoch); absent for changes
    /// nodes made on their own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_ms: Option<u64>,
    /// The tokens that made it; empty for changes nodes made on their own.
    pub authors: Vec<Author>,
    /// The version it rolled back to, for a rollback.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_to: Option<u64>,
    /// How many entries it added, removed and changed.
    pub counts: ChangeCounts,
}

impl From<&PolicyVersion> for VersionSummary {
    fn from(v: &PolicyVersion) -> Self {
        VersionSummary {
            version: v.version,
            at_ms: v.at_ms,
            authors: v.authors.clone(),
            rollback_to: v.rollback_to,
            counts: v.counts(),
        }
    }
}

/// The reply of `GET /v1/policy/history`.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryReply {
    /// The versions held, oldest first: a rollback can reach any of them.
    pub versions: Vec<VersionSummary>,
    /// How many versions the cluster keeps (`settings.history_retention`).
    pub retention: u32,
    /// Versions dropped to stay within the retention, in all.
    pub trimmed: u64,
}

/// Lists the policy versions held, oldest first.
#[utoipa::path(
    get,
    path = "/v1/policy/history",
    tag = "policy",
    params(ReadParams),
    responses(
        (status = 200, description = "The policy versions held, oldest first", body = HistoryReply),
        (status = 400, description = doc::BAD_QUERY, content(
            (ErrorBody = "application/json"),
            (String = "text/plain"),
        )),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 503, description = doc::UNAVAILABLE_READ, body = ErrorBody),
    )
)]
async fn list_versions(
    State(app): State<AppState>,
    _: Caller,
    Query(read): Query<ReadParams>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<HistoryReply>> {
    known_parameters(raw.as_deref(), &["consistency"])?;
    let reply = app
        .cluster
        .read(read.consistency, |state| HistoryReply {
            versions: state.history.versions.iter().map(Into::into).collect(),
            retention: state.settings.history_retention,
            trimmed: state.history.trimmed,
        })
        .await?;
    Ok(Json(reply))
}

/// `?document=` of `GET /v1/policy/history/{version}`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VersionQuery {
    /// Also return the whole policy as it was right after this version
    /// (TOML, secrets redacted).
    #[serde(default)]
    document: bool,
}

/// The reply of `GET /v1/policy/history/{version}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionReply {
    /// The version.
    #[serde(flatten)]
    pub summary: VersionSummary,
    /// What it changed against the version before, secrets redacted.
    pub diff: PolicyDiff,
    /// The audit entries of the writes that made it (empty for changes
    /// nodes made on their own, or once they left the audit log).
    pub audit: Vec<AuditEntry>,
    /// The whole policy right after it (TOML, secrets redacted), when asked
    /// for with `?document=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
}

/// One version of the policy: who made it, and its diff.
#[utoipa::path(
    get,
    path = "/v1/policy/history/{version}",
    tag = "policy",
    params(("version" = u64, Path, description = "The policy version (a log index)"), VersionQuery, ReadParams),
    responses(
        (status = 200, description = "The version with its diff", body = VersionReply),
        (status = 400, description = doc::BAD_PATH_OR_QUERY, content(
            (ErrorBody = "application/json"),
            (String = "text/plain"),
        )),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 404, description = "The history holds no such version (never a policy \
            version, or older than the oldest kept)", body = ErrorBody),
        (status = 503, description = doc::UNAVAILABLE_READ, body = ErrorBody),
    )
)]
async fn show_version(
    State(app): State<AppState>,
    _: Caller,
    Path(version): Path<u64>,
    Query(query): Query<VersionQuery>,
    Query(read): Query<ReadParams>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<VersionReply>> {
    known_parameters(raw.as_deref(), &["document", "consistency"])?;
    let found = app
        .cluster
        .read(read.consistency, |state| {
            let held = state.history.get(version)?;
            let document = query.document.then(|| {
                let current = PolicyDocument::export(state, Secrets::Reveal);
                state
                    .history
                    .document_at(&current, version)
                    .map(|doc| doc.redacted())
            });
            Some((
                VersionReply {
                    summary: held.into(),
                    diff: held.diff(),
                    audit: state.audit.at_version(version).cloned().collect(),
                    document: None,
                },
                document,
            ))
        })
        .await?;
    let Some((mut reply, document)) = found else {
        let oldest = app.cluster.with_state(|s| s.history.oldest());
        let held = match oldest {
            Some(oldest) => format!("the oldest version kept is {oldest}"),
            None => "no version is held yet".to_owned(),
        };
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("{version} is not a policy version the history holds; {held}"),
        ));
    };
    if let Some(document) = document {
        let text = document?
            .to_toml()
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        reply.document = Some(text);
    }
    Ok(Json(reply))
}

/// Body of `POST /v1/policy/rollback`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    /// The version whose policy to restore.
    pub to: u64,
}

/// Restores the policy as it was right after a version, as a new version.
///
/// Settings, zones, identities, identity rules, fingerprints, rules and
/// sinks (secrets included) become what they were; numbers handed out since
/// stay handed out. Every node applies it as one change. The audit log
/// records it as `rollback_policy` with the version restored.
#[utoipa::path(
    post,
    path = "/v1/policy/rollback",
    tag = "policy",
    request_body = RollbackBody,
    responses(
        (status = 200, description = doc::WRITTEN, body = WriteReply),
        (status = 400, description = "The version is older than the oldest kept (the message \
            names it), the policy has not changed since, or the old policy cannot be restored \
            over what the cluster holds now (`field` names the entry). Nothing was written",
            body = ErrorBody),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = doc::NEEDS_OPERATOR, body = ErrorBody),
        (status = 503, description = doc::UNAVAILABLE_WRITE, body = ErrorBody),
    )
)]
async fn rollback(
    State(app): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<RollbackBody>,
) -> ApiResult<Json<WriteReply>> {
    commit(
        &app,
        caller,
        Role::Operator,
        Command::RollbackPolicy { to: body.to },
    )
    .await
    .map(Json)
}
