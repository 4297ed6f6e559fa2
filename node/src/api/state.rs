//! `GET /v1/state/digest`: a fingerprint of this node's applied cluster
//! state, so that whoever checks the cluster (the chaos harness, an
//! operator) can tell whether nodes at the same log index hold the same
//! state without downloading it.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use sha2::Digest as _;
use stockade_policy::{ClusterState, Sha256};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::error::{known_parameters, ApiError, ApiResult, ErrorBody};
use super::openapi::doc;
use super::AppState;

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(state_digest))
}

/// A fingerprint of one node's applied state.
#[derive(Debug, Serialize, ToSchema)]
pub struct StateDigest {
    /// The log index of the last entry applied to the state (0 before
    /// any).
    pub applied_index: u64,
    /// SHA-256 of the state at `applied_index`, encoded as the Raft
    /// snapshots encode it. Nodes at the same index must agree.
    pub digest: Sha256,
    /// SHA-256 of the durable part of the state at `applied_index`: what
    /// a backup holds and a restore puts back
    /// (`stockade_policy::DurableState`). Equal before a backup and after
    /// its restore.
    pub durable_digest: Sha256,
}

/// A digest of this node's applied cluster state with the index it
/// reflects, read together. Two nodes that report the same
/// `applied_index` with different digests have diverged. Takes no query
/// parameters: it always describes this node's own applied state.
#[utoipa::path(
    get,
    path = "/v1/state/digest",
    tag = "cluster",
    responses(
        (status = 200, description = "The digest of this node's applied state", body = StateDigest),
        (status = 400, description = "A query parameter was given; there are none", body = ErrorBody),
        (status = 401, description = doc::UNAUTHORIZED, body = ErrorBody),
        (status = 500, description = "The state could not be encoded (a bug)", body = ErrorBody),
    )
)]
async fn state_digest(
    State(app): State<AppState>,
    _: Caller,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<StateDigest>> {
    known_parameters(raw.as_deref(), &[])?;
    // One lock for both, so the index is the one the state reflects; the
    // state is copied and hashed off the async workers, so applying entries
    // waits only for the copy (as when a snapshot is built).
    let (applied_index, state) = app.cluster.applied_state();
    let (digest, durable_digest) = tokio::task::spawn_blocking(move || {
        digest(&state).map(|d| (d, stockade_policy::durable_digest(&state)))
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|encoded| encoded.map_err(|e| e.to_string()))
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode the state: {e}"),
        )
    })?;
    Ok(Json(StateDigest {
        applied_index,
        digest,
        durable_digest,
    }))
}

/// SHA-256 of the state's JSON, the encoding of the Raft snapshots (see
/// `stockade_raft`'s state machine), streamed into the hash.
///
/// It is deterministic: every collection in `ClusterState` is a `BTreeMap`
/// or a `Vec`, so entries come out in key order or in the order the
/// replicated commands built them, never in a hash map's; struct fields
/// come out in declaration order; no type in `stockade-policy` has a
/// hand-written `Serialize` (the few string forms, such as `EndpointKey`'s,
/// are conversions of the value alone), holds a float, or skips a field for
/// any reason but its value. So equal states give equal bytes.
fn digest(state: &ClusterState) -> Result<Sha256, serde_json::Error> {
    let mut hasher = sha2::Sha256::new();
    serde_json::to_writer(&mut hasher, state)?;
    Ok(Sha256(hasher.finalize().into()))
}

#[cfg(test)]
mod tests {
    use stockade_policy::{Command, Mode};

    use super::*;

    #[test]
    fn equal_states_have_equal_digests_and_a_change_shows() {
        let mut state = ClusterState::new();
        let empty = digest(&state).expect("encodes");
        assert_eq!(digest(&state.clone()).expect("encodes"), empty);
        // A copy that went through a snapshot's encoding digests the same.
        let bytes = serde_json::to_vec(&state).expect("encodes");
        let restored: ClusterState = serde_json::from_slice(&bytes).expect("decodes");
        assert_eq!(digest(&restored).expect("encodes"), empty);

        Command::UpsertZone {
            id: None,
            name: "prod".into(),
            mode: Mode::Learn,
            description: String::new(),
        }
        .apply(&mut state)
        .expect("a zone");
        assert_ne!(digest(&state).expect("encodes"), empty);
    }
}
