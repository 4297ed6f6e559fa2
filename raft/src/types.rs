//! The openraft type configuration of Stockade and the aliases built on it.
//!
//! Log entries, votes and snapshots are written with `serde_json`: the policy
//! types use internally tagged enums (`#[serde(tag = "op")]`), which compact
//! binary formats such as bincode or postcard cannot decode.

use std::fmt;
use std::io::Cursor;

use serde::{Deserialize, Serialize};
use stockade_policy::{Applied, Command, ValidationError};

/// A Raft member's id: the node id named in its certificate.
pub type NodeId = u64;

/// What the cluster knows about how to reach a member.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeAddr {
    /// The node's advertised QUIC address, `host:port`. Behind NAT this is
    /// the address its peers dial, which differs from the one it binds.
    pub addr: String,
}

impl NodeAddr {
    /// A node reachable at `addr` (`host:port`).
    pub fn new(addr: impl Into<String>) -> Self {
        NodeAddr { addr: addr.into() }
    }
}

impl fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.addr)
    }
}

/// What a client asks the cluster to commit: the application data of a log
/// entry.
///
/// One entry carries several independent commands, so that writes arriving
/// together share one append, one fsync and one round of replication (group
/// commit, see `batcher.rs`). Each command is validated and applied on its
/// own, in order: an invalid command is answered with its error and leaves
/// the state untouched, and its neighbours still take effect. Commands that
/// must take effect together or not at all go in one
/// [`Command::Batch`](stockade_policy::Command::Batch).
///
/// Further request kinds (alert records, delivery cursors) will be added as
/// fields with serde defaults or as commands of their own, so entries
/// already in a log stay readable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The changes to apply to the cluster state, one after the other.
    pub commands: Vec<Command>,
}

impl From<Command> for Request {
    fn from(command: Command) -> Self {
        Request {
            commands: vec![command],
        }
    }
}

impl From<Vec<Command>> for Request {
    fn from(commands: Vec<Command>) -> Self {
        Request { commands }
    }
}

/// What applying one log entry produced: one result per command of its
/// [`Request`], in the same order.
///
/// An invalid command is committed like any other (validation depends on the
/// state it meets, which only the log order decides) and answered with its
/// error; the state is left untouched by it. Blank and membership entries
/// carry no command and are answered with no results.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// What each command did, or why it was refused.
    pub results: Vec<Result<Applied, ValidationError>>,
}

impl Response {
    /// The answer to an entry that carries no command.
    pub fn done() -> Self {
        Response::default()
    }
}

openraft::declare_raft_types!(
    /// The openraft type configuration of Stockade.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = NodeId,
        Node = NodeAddr,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
        Responder = openraft::impls::OneshotResponder<TypeConfig>,
);

/// A Raft member of a Stockade cluster.
pub type Raft = openraft::Raft<TypeConfig>;
/// A log entry.
pub type Entry = openraft::Entry<TypeConfig>;
/// A log entry's id: the leader that proposed it and its index.
pub type LogId = openraft::LogId<NodeId>;
/// A vote (term, candidate, committed).
pub type Vote = openraft::Vote<NodeId>;
/// A membership configuration with the id of the log entry that set it.
pub type StoredMembership = openraft::StoredMembership<NodeId, NodeAddr>;
/// What a snapshot covers.
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, NodeAddr>;
/// A snapshot: its meta data and its bytes.
pub type Snapshot = openraft::Snapshot<TypeConfig>;
/// The error every storage method reports.
pub type StorageError = openraft::StorageError<NodeId>;
/// Everything openraft reports about a member, for `/v1/status`.
pub type RaftMetrics = openraft::RaftMetrics<NodeId, NodeAddr>;
/// The answer to a committed client write: its log id (the policy version),
/// the state machine's [`Response`] and, for membership changes, the new
/// membership.
pub type ClientWriteResponse = openraft::raft::ClientWriteResponse<TypeConfig>;
/// Why a client write failed: not the leader (with a hint where it is), or a
/// membership change that cannot be made, or a fatal error.
pub type ClientWriteError =
    openraft::error::RaftError<NodeId, openraft::error::ClientWriteError<NodeId, NodeAddr>>;

#[cfg(test)]
mod tests {
    use super::*;
    use stockade_policy::Mode;

    #[test]
    fn request_and_response_round_trip_through_json() {
        let zone = |name: &str| Command::UpsertZone {
            id: None,
            name: name.into(),
            mode: Mode::Enforce,
            description: String::new(),
        };
        for request in [
            Request::from(zone("prod")),
            Request::from(vec![zone("prod"), zone("dev")]),
            Request::from(Vec::new()),
        ] {
            let text = serde_json::to_string(&request).expect("encode request");
            assert_eq!(
                serde_json::from_str::<Request>(&text).expect("decode request"),
                request
            );
        }

        for response in [
            Response::done(),
            Response {
                results: vec![
                    Ok(Applied::Done),
                    Err(ValidationError::new("zone.name", "is empty")),
                ],
            },
        ] {
            let text = serde_json::to_string(&response).expect("encode response");
            assert_eq!(
                serde_json::from_str::<Response>(&text).expect("decode response"),
                response
            );
        }
    }
}
