//! Backups and restores of the cluster state: `GET /v1/backup`,
//! `POST /v1/restore` and `GET /v1/backup/last`.
//!
//! The file format, its integrity checks and what a restore replaces are
//! `stockade_policy::backup`'s; this module reads the applied state, signs
//! the file with the cluster's key and commits a restore as one Raft
//! command, so every node changes at one log index.

use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use stockade_policy::{Backup, BackupRecord, ClusterState, Command, Role};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::openapi::doc;
use super::policy::{commit, WriteReply};
use super::{AppState, ReadParams};
use crate::cluster::Consistency;

/// The largest backup `POST /v1/restore` takes: a restore is one Raft
/// command, and node-to-node frames are at most 16 MiB.
pub const MAX_RESTORE_BYTES: usize = 15 * 1024 * 1024;

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(take_backup))
        .routes(routes!(last_backup))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(restore))
                .layer(DefaultBodyLimit::max(MAX_RESTORE_BYTES)),
        )
}

/// Writes a backup of `state` at `index`, now.
pub fn backup_file(state: &ClusterState, index: u64) -> Result<Vec<u8>, ApiError> {
    Backup::write(state, index, crate::clock::now_ms())
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// A backup of the whole durable state (policy, identities, fingerprints,
/// sinks with their secrets, API tokens, the baseline) and the audit log, versioned,
/// checksummed and signed with the cluster's key. The file holds secrets:
/// keep it like the nodes' data directories. Admin only.
#[utoipa::path(
    get,
    path = "/v1/backup",
    tag = "backup",
    params(ReadParams),
    responses(
        (status = 200, description = "The backup file", body = String, content_type = "application/octet-stream"),
        (status = 400, description = doc::BAD_QUERY, body = String, content_type = "text/plain"),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = doc::NEEDS_ADMIN, body = ErrorBody),
        (status = 500, description = "The cluster has no CA yet, or the state cannot be encoded", body = ErrorBody),
        (status = 503, description = doc::UNAVAILABLE_READ, body = ErrorBody),
    )
)]
async fn take_backup(
    State(app): State<AppState>,
    caller: Caller,
    Query(read): Query<ReadParams>,
) -> ApiResult<impl IntoResponse> {
    caller.require(Role::Admin)?;
    if read.consistency == Consistency::Linearizable {
        // Once confirmed, the applied state holds every earlier write.
        app.cluster.read(Consistency::Linearizable, |_| ()).await?;
    }
    let (index, state) = app.cluster.applied_state();
    let file = tokio::task::spawn_blocking(move || backup_file(&state, index))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], file))
}

/// The last backup the cluster recorded (periodic backups record theirs),
/// or `null` when none was.
#[utoipa::path(
    get,
    path = "/v1/backup/last",
    tag = "backup",
    params(ReadParams),
    responses(
        (status = 200, description = "The last backup taken, or null", body = Option<BackupRecord>),
        (status = 400, description = doc::BAD_QUERY, body = String, content_type = "text/plain"),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 503, description = doc::UNAVAILABLE_READ, body = ErrorBody),
    )
)]
async fn last_backup(
    State(app): State<AppState>,
    _: Caller,
    Query(read): Query<ReadParams>,
) -> ApiResult<Json<Option<BackupRecord>>> {
    let last = app
        .cluster
        .read(read.consistency, |state| state.last_backup.clone())
        .await?;
    Ok(Json(last))
}

/// `?allow_foreign=` of `POST /v1/restore`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RestoreParams {
    /// Accept another cluster's backup (a disaster restore into a newly
    /// initialised cluster). Its signature cannot be checked, only its
    /// checksum: ask for it only for a file you trust.
    #[serde(default)]
    pub allow_foreign: bool,
}

/// Restores a backup: its durable state replaces this cluster's, on every
/// node at one log index, as one command. The file is checked first
/// (format, version, checksum, cluster, signature); a refused file changes
/// nothing. Membership, node certificates, the CA, endpoints and the alert
/// log stay as they are. The caller's own token is kept even when the
/// backup lacks it. Admin only.
#[utoipa::path(
    post,
    path = "/v1/restore",
    tag = "backup",
    params(RestoreParams),
    request_body(
        content = String,
        content_type = "application/octet-stream",
        description = "A backup file, as `GET /v1/backup` wrote it"
    ),
    responses(
        (status = 200, description = doc::WRITTEN, body = WriteReply),
        (status = 400, description = "The backup is refused (corrupt, truncated, foreign, of a newer format, not signed by this cluster); `reason` says why. Nothing was written", body = ErrorBody),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = doc::NEEDS_ADMIN, body = ErrorBody),
        (status = 413, description = "The backup is larger than a restore takes (15 MiB)", body = String, content_type = "text/plain"),
        (status = 503, description = doc::UNAVAILABLE_WRITE, body = ErrorBody),
    )
)]
async fn restore(
    State(app): State<AppState>,
    caller: Caller,
    Query(params): Query<RestoreParams>,
    body: axum::body::Bytes,
) -> ApiResult<Json<WriteReply>> {
    caller.require(Role::Admin)?;
    let backup = String::from_utf8(body.to_vec()).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "not a Stockade backup: the file is not text",
        )
    })?;
    let command = Command::Restore {
        backup,
        allow_foreign: params.allow_foreign,
        keep_token: Some(caller.token_id.clone()),
    };
    commit(&app, caller, Role::Admin, command).await.map(Json)
}
