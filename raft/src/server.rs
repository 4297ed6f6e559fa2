//! The serving side of Raft calls: decode a [`RaftRpc`], hand it to the
//! local Raft member, encode its answer.
//!
//! [`RaftRpcServer`] implements the transport's `RpcHandler` for the Raft
//! calls (joins are refused: they belong to the node, whose own handler
//! serves them and delegates the rest to [`RaftRpcServer::handle`] and
//! [`RaftRpcServer::handle_streaming`]).

use serde::Serialize;
use stockade_transport::{Bytes, RemoteError, RpcHandler, StreamBody};

use crate::contacts::Contacts;
use crate::rpc::{RaftRpc, SnapshotChunkHeader, WriteReply};
use crate::types::{NodeId, Raft, Vote};

/// Serves the Raft calls that reach this node.
#[derive(Clone)]
pub struct RaftRpcServer {
    raft: Raft,
    contacts: Contacts,
}

impl std::fmt::Debug for RaftRpcServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftRpcServer").finish_non_exhaustive()
    }
}

fn refuse(reason: impl Into<String>) -> RemoteError {
    RemoteError(reason.into())
}

fn reply<T: Serialize>(value: &T) -> Result<Bytes, RemoteError> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| refuse(format!("cannot encode the reply: {e}")))
}

/// Checks that a vote (of a leader or a candidate) was sent by the node it
/// names: a node may speak for itself only.
fn own_vote(peer: NodeId, vote: &Vote) -> Result<(), RemoteError> {
    match vote.leader_id().voted_for() {
        Some(id) if id == peer => Ok(()),
        other => Err(refuse(format!(
            "node {peer} sent a call in the name of node {other:?}"
        ))),
    }
}

impl RaftRpcServer {
    /// Serves calls for `raft`, recording each caller in `contacts`.
    pub fn new(raft: Raft, contacts: Contacts) -> Self {
        RaftRpcServer { raft, contacts }
    }

    /// Answers a plain call from the authenticated node `peer`.
    pub async fn handle(&self, peer: NodeId, request: Bytes) -> Result<Bytes, RemoteError> {
        self.contacts.touch(peer);
        let rpc: RaftRpc = serde_json::from_slice(&request)
            .map_err(|e| refuse(format!("not a Raft call: {e}")))?;
        match rpc {
            RaftRpc::AppendEntries(rpc) => {
                own_vote(peer, &rpc.vote)?;
                reply(&self.raft.append_entries(rpc).await)
            }
            RaftRpc::Vote(rpc) => {
                own_vote(peer, &rpc.vote)?;
                reply(&self.raft.vote(rpc).await)
            }
            RaftRpc::InstallSnapshot(_) => Err(refuse("snapshot chunks come as streaming calls")),
            RaftRpc::ForwardWrite(request) => {
                let result: WriteReply = self.raft.client_write(request).await;
                reply(&result)
            }
            RaftRpc::AddLearner { id, node, blocking } => {
                let result: WriteReply = self.raft.add_learner(id, node, blocking).await;
                reply(&result)
            }
            RaftRpc::ChangeMembership { changes, retain } => {
                let result: WriteReply = self.raft.change_membership(changes, retain).await;
                reply(&result)
            }
            RaftRpc::ReadIndex => reply(&self.raft.ensure_linearizable().await),
        }
    }

    /// Answers a streaming call from `peer`: a snapshot chunk, whose bytes
    /// are the body.
    pub async fn handle_streaming(
        &self,
        peer: NodeId,
        header: Bytes,
        body: &mut StreamBody,
    ) -> Result<Bytes, RemoteError> {
        self.contacts.touch(peer);
        let rpc: RaftRpc =
            serde_json::from_slice(&header).map_err(|e| refuse(format!("not a Raft call: {e}")))?;
        let RaftRpc::InstallSnapshot(header) = rpc else {
            return Err(refuse("only snapshot chunks come as streaming calls"));
        };
        own_vote(peer, &header.vote)?;
        let data = read_body(body).await?;
        let result = self
            .raft
            .install_snapshot(SnapshotChunkHeader::join(header, data))
            .await;
        reply(&result)
    }
}

/// Reads a whole streaming body (one snapshot chunk, bounded by the
/// sender's chunk size).
async fn read_body(body: &mut StreamBody) -> Result<Vec<u8>, RemoteError> {
    let mut data = Vec::new();
    while let Some(chunk) = body.next_chunk().await? {
        data.extend_from_slice(&chunk);
    }
    Ok(data)
}

#[async_trait::async_trait]
impl RpcHandler for RaftRpcServer {
    async fn call(&self, peer: NodeId, request: Bytes) -> Result<Bytes, RemoteError> {
        self.handle(peer, request).await
    }

    async fn call_streaming(
        &self,
        peer: NodeId,
        header: Bytes,
        body: &mut StreamBody,
    ) -> Result<Bytes, RemoteError> {
        self.handle_streaming(peer, header, body).await
    }
}
