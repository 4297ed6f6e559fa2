//! The messages of node-to-node Raft calls, as they travel over the
//! transport.
//!
//! A call carries one [`RaftRpc`] as JSON; the reply is the JSON of the
//! matching `Result` named on each variant. Snapshot chunks travel as a
//! streaming call: the header is [`RaftRpc::InstallSnapshot`], the body the
//! chunk's raw bytes (not a JSON array of numbers).

use openraft::error::{CheckIsLeaderError, InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::ChangeMembers;
use serde::{Deserialize, Serialize};

use crate::types::{
    ClientWriteError, ClientWriteResponse, LogId, NodeAddr, NodeId, Request, SnapshotMeta,
    TypeConfig, Vote,
};

/// A Raft call from one node to another.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RaftRpc {
    /// Replicate entries or heartbeat; replies [`AppendEntriesReply`].
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    /// Ask for a vote; replies [`VoteReply`].
    Vote(VoteRequest<NodeId>),
    /// One chunk of a snapshot (the header of a streaming call whose body is
    /// the chunk); replies [`InstallSnapshotReply`].
    InstallSnapshot(SnapshotChunkHeader),
    /// A client write a follower forwards to the leader: one log entry's
    /// commands (a whole batch of its writers); replies [`WriteReply`],
    /// whose `data.results` has one result per command.
    ForwardWrite(Request),
    /// Add a learner, forwarded to the leader; replies [`WriteReply`].
    AddLearner {
        /// The new node's id.
        id: NodeId,
        /// Where it is reached.
        node: NodeAddr,
        /// Whether to answer only once the learner has caught up.
        blocking: bool,
    },
    /// Change the membership, forwarded to the leader; replies
    /// [`WriteReply`].
    ChangeMembership {
        /// What to change.
        changes: ChangeMembers<NodeId, NodeAddr>,
        /// Whether removed voters stay on as learners.
        retain: bool,
    },
    /// Ask the leader for the log id a linearizable read must wait for;
    /// replies [`ReadIndexReply`].
    ReadIndex,
}

/// Everything of an `InstallSnapshotRequest` but its bytes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SnapshotChunkHeader {
    /// The leader's vote.
    pub vote: Vote,
    /// The snapshot the chunk belongs to.
    pub meta: SnapshotMeta,
    /// Where the chunk starts in the snapshot.
    pub offset: u64,
    /// Whether it is the last chunk.
    pub done: bool,
}

impl SnapshotChunkHeader {
    /// Splits a request into its header and its bytes.
    pub fn split(request: InstallSnapshotRequest<TypeConfig>) -> (Self, Vec<u8>) {
        let header = SnapshotChunkHeader {
            vote: request.vote,
            meta: request.meta,
            offset: request.offset,
            done: request.done,
        };
        (header, request.data)
    }

    /// The request this header and these bytes make.
    pub fn join(self, data: Vec<u8>) -> InstallSnapshotRequest<TypeConfig> {
        InstallSnapshotRequest {
            vote: self.vote,
            meta: self.meta,
            offset: self.offset,
            data,
            done: self.done,
        }
    }
}

/// The reply to [`RaftRpc::AppendEntries`].
pub type AppendEntriesReply = Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>;
/// The reply to [`RaftRpc::Vote`].
pub type VoteReply = Result<VoteResponse<NodeId>, RaftError<NodeId>>;
/// The reply to [`RaftRpc::InstallSnapshot`].
pub type InstallSnapshotReply =
    Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>;
/// The reply to the forwarded writes: [`RaftRpc::ForwardWrite`],
/// [`RaftRpc::AddLearner`] and [`RaftRpc::ChangeMembership`].
pub type WriteReply = Result<ClientWriteResponse, ClientWriteError>;
/// The reply to [`RaftRpc::ReadIndex`].
pub type ReadIndexReply =
    Result<Option<LogId>, RaftError<NodeId, CheckIsLeaderError<NodeId, NodeAddr>>>;
