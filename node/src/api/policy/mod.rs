//! Policy resources: zones, identities, identity rules, fingerprints, rules,
//! alert sinks, and the whole policy as a document.
//!
//! Every write is validated here against the local state first (a quick 400
//! that names the field), then goes through Raft; the reply carries the log
//! index at which it took effect — the policy version.

mod document;
mod endpoints;
mod history;
mod identities;
mod rules;
mod sinks;
pub(super) mod zones;

use axum::Json;
use serde::Serialize;
use stockade_policy::{Applied, Command, NodeId, Provenance, Role};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

use crate::api::auth::Caller;
use crate::api::error::ApiResult;
use crate::api::AppState;

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
        .merge(zones::routes())
        .merge(identities::routes())
        .merge(rules::routes())
        .merge(sinks::routes())
        .merge(endpoints::routes())
        .merge(document::routes())
        .merge(history::routes())
}

/// `command` with the provenance of `caller`'s request to this node: the
/// token, the client's address and the time it arrived.
pub(crate) fn audited(app: &AppState, caller: &Caller, command: Command) -> Command {
    Command::Audited {
        by: Provenance {
            author: caller.author(),
            address: caller.address,
            node: NodeId(app.cluster.raft().id()),
            at_ms: crate::clock::now_ms(),
        },
        command: Box::new(command),
    }
}

/// Commits a policy change: needs the operator role (see [`commit`]).
async fn write(app: &AppState, caller: Caller, command: Command) -> ApiResult<Json<WriteReply>> {
    commit(app, caller, Role::Operator, command).await.map(Json)
}

/// Checks the caller has `needed`, validates `command` against the local
/// state (a quick 400 naming the field), commits it through Raft with the
/// caller's provenance (so it is in the audit log, in the same log entry)
/// and replies with the log index it took effect at.
pub(crate) async fn commit(
    app: &AppState,
    caller: Caller,
    needed: Role,
    command: Command,
) -> ApiResult<WriteReply> {
    caller.require(needed)?;
    app.cluster.with_state(|state| command.validate(state))?;
    let written = app.cluster.write(audited(app, &caller, command)).await?;
    Ok(WriteReply {
        index: written.index,
        applied: written.applied,
    })
}
