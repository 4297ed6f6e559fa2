//! Routing writes, membership changes and linearizable reads to the leader.
//!
//! A [`Router`] tries locally first; when openraft answers that another node
//! leads, the call is forwarded there over the transport. When no leader is
//! known (an election is under way) or the leader cannot be reached at all,
//! the member waits for one and tries again, a few times. A forwarded write
//! whose answer is lost is reported as such: it may have committed.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{
    CheckIsLeaderError, ClientWriteError as WriteApiError, ForwardToLeader, RaftError,
};
use openraft::ChangeMembers;
use stockade_transport::{Endpoint, TransportError};

use crate::call::{self, resolve, CallError};
use crate::config::RaftSettings;
use crate::handle::StateHandle;
use crate::rpc::{RaftRpc, ReadIndexReply, WriteReply};
use crate::types::{ClientWriteError, ClientWriteResponse, LogId, NodeAddr, NodeId, Raft, Request};

/// How many times a write or read is routed before giving up.
const ATTEMPTS: usize = 3;
/// How long a follower may take to apply the log up to a read index.
const READ_WAIT: Duration = Duration::from_secs(10);

/// Why a write (or a membership change) did not commit.
///
/// It is `Clone`: when a batch of writes fails, every writer of the batch
/// gets the same error.
#[derive(Clone, Debug, thiserror::Error)]
pub enum WriteError {
    /// No leader is known, even after waiting for an election.
    #[error("no leader is known; the cluster may have lost its quorum")]
    NoLeader,
    /// The leader refused it (a membership change that cannot be made), or
    /// this member has stopped.
    #[error(transparent)]
    Raft(Box<ClientWriteError>),
    /// The write was sent to the leader but no answer came back: it may or
    /// may not have been committed.
    #[error("forwarding to leader {leader}: {source}; the write may or may not have committed")]
    Forward {
        /// The leader it was sent to.
        leader: NodeId,
        /// What failed.
        #[source]
        source: Arc<CallError>,
    },
    /// The write was queued but no answer came for its batch (the member
    /// is going away, or the task committing the batch failed): it may or
    /// may not have committed.
    #[error("the write was abandoned before an answer came; it may or may not have committed")]
    Abandoned,
}

impl WriteError {
    fn raft(e: ClientWriteError) -> Self {
        WriteError::Raft(Box::new(e))
    }
}

/// Why a linearizable read could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// No leader is known, even after waiting for an election.
    #[error("no leader is known; the cluster may have lost its quorum")]
    NoLeader,
    /// The leader could not confirm its leadership with a quorum.
    #[error(transparent)]
    Raft(RaftError<NodeId, CheckIsLeaderError<NodeId, NodeAddr>>),
    /// The leader could not be asked.
    #[error("asking leader {leader} for a read index: {source}")]
    Forward {
        /// The leader.
        leader: NodeId,
        /// What failed.
        #[source]
        source: CallError,
    },
    /// This node did not apply the log up to the read index in time.
    #[error("this node has not applied the log up to index {index} in time")]
    Lagging {
        /// The index the read must see.
        index: u64,
    },
}

/// What routing a call to the leader did.
enum Routed<T, E> {
    Done(Result<T, E>),
    Retry,
}

/// Routes calls to the leader: everything of a node's Raft member that a
/// write or a read needs, and nothing that would keep the member's batcher
/// alive (the batcher holds a `Router`).
#[derive(Clone)]
pub(crate) struct Router {
    pub(crate) id: NodeId,
    pub(crate) raft: Raft,
    pub(crate) state: StateHandle,
    pub(crate) endpoint: Endpoint,
    pub(crate) settings: RaftSettings,
}

impl Router {
    /// Commits `request` as one log entry through the leader, from any
    /// member; see [`crate::StockadeRaft::write_request`].
    pub(crate) async fn write(&self, request: Request) -> Result<ClientWriteResponse, WriteError> {
        let rpc = RaftRpc::ForwardWrite(request.clone());
        self.write_on_leader(rpc, || self.raft.client_write(request.clone()))
            .await
    }

    /// Adds a learner through the leader; see
    /// [`crate::StockadeRaft::add_learner`].
    pub(crate) async fn add_learner(
        &self,
        id: NodeId,
        node: NodeAddr,
        blocking: bool,
    ) -> Result<ClientWriteResponse, WriteError> {
        let rpc = RaftRpc::AddLearner {
            id,
            node: node.clone(),
            blocking,
        };
        self.write_on_leader(rpc, || self.raft.add_learner(id, node.clone(), blocking))
            .await
    }

    /// Changes the membership through the leader; see
    /// [`crate::StockadeRaft::change_membership`].
    pub(crate) async fn change_membership(
        &self,
        changes: ChangeMembers<NodeId, NodeAddr>,
        retain: bool,
    ) -> Result<ClientWriteResponse, WriteError> {
        let rpc = RaftRpc::ChangeMembership {
            changes: changes.clone(),
            retain,
        };
        self.write_on_leader(rpc, || self.raft.change_membership(changes.clone(), retain))
            .await
    }

    /// Runs `local` here, or sends `rpc` to the leader it names.
    async fn write_on_leader<F, Fut>(
        &self,
        rpc: RaftRpc,
        local: F,
    ) -> Result<ClientWriteResponse, WriteError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = WriteReply>,
    {
        for _ in 0..ATTEMPTS {
            let forward = match local().await {
                Err(RaftError::APIError(WriteApiError::ForwardToLeader(f))) => f,
                done => return done.map_err(WriteError::raft),
            };
            let routed = self
                .forward(forward, &rpc, |reply: WriteReply| match reply {
                    Err(RaftError::APIError(WriteApiError::ForwardToLeader(_))) => Routed::Retry,
                    done => Routed::Done(done.map_err(WriteError::raft)),
                })
                .await;
            match routed {
                Ok(Routed::Done(done)) => return done,
                Ok(Routed::Retry) => {}
                Err((leader, source)) => {
                    return Err(WriteError::Forward {
                        leader,
                        source: Arc::new(source),
                    })
                }
            }
        }
        Err(WriteError::NoLeader)
    }

    /// The log id a linearizable read must see, once this member has
    /// applied it; see [`crate::StockadeRaft::read_index`].
    pub(crate) async fn read_index(&self) -> Result<Option<LogId>, ReadError> {
        for _ in 0..ATTEMPTS {
            let forward = match self.raft.ensure_linearizable().await {
                Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => f,
                // The leader waited for its own state machine already.
                done => return done.map_err(ReadError::Raft),
            };
            let routed = self
                .forward(
                    forward,
                    &RaftRpc::ReadIndex,
                    |reply: ReadIndexReply| match reply {
                        Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(_))) => {
                            Routed::Retry
                        }
                        done => Routed::Done(done.map_err(ReadError::Raft)),
                    },
                )
                .await;
            match routed {
                Ok(Routed::Done(Ok(read))) => {
                    let Some(index) = read.map(|l| l.index) else {
                        return Ok(read); // nothing was ever committed
                    };
                    return tokio::time::timeout(READ_WAIT, self.state.wait_applied(index))
                        .await
                        .map(|()| read)
                        .map_err(|_| ReadError::Lagging { index });
                }
                Ok(Routed::Done(Err(e))) => return Err(e),
                Ok(Routed::Retry) => {}
                Err((leader, source)) => return Err(ReadError::Forward { leader, source }),
            }
        }
        Err(ReadError::NoLeader)
    }

    /// Sends `rpc` to the leader `forward` names and sorts its reply with
    /// `sort`. When no leader is known (or this node is named, which happens
    /// while it steps down), waits for an election and asks for a retry.
    async fn forward<R, T, E>(
        &self,
        forward: ForwardToLeader<NodeId, NodeAddr>,
        rpc: &RaftRpc,
        sort: impl FnOnce(R) -> Routed<T, E>,
    ) -> Result<Routed<T, E>, (NodeId, CallError)>
    where
        R: serde::de::DeserializeOwned,
    {
        let (Some(leader), Some(node)) = (forward.leader_id, forward.leader_node) else {
            self.wait_for_leader(None).await;
            return Ok(Routed::Retry);
        };
        if leader == self.id {
            self.wait_for_leader(Some(leader)).await;
            return Ok(Routed::Retry);
        }
        let sent = async {
            let addr = resolve(&node.addr).await?;
            call::call::<R>(&self.endpoint, leader, addr, rpc).await
        };
        // A leader killed mid-call never answers: stop waiting as soon as
        // this node knows it is not the leader any more, rather than after
        // the transport's timeout, so writes move on to its successor.
        let deposed = async {
            let _ = self
                .raft
                .wait(None)
                .metrics(|m| m.current_leader != Some(leader), "the leader changes")
                .await;
            Err(CallError::NotLeaderAnyMore(leader))
        };
        let outcome = tokio::select! {
            outcome = sent => outcome,
            outcome = deposed => outcome,
        };
        match outcome {
            Ok(reply) => Ok(sort(reply)),
            // Nothing reached the leader: safe to try again once the
            // cluster has settled on a leader.
            Err(e) if never_delivered(&e) => {
                tracing::debug!(leader, error = %e, "leader unreachable; waiting for a new one");
                self.wait_for_leader(Some(leader)).await;
                Ok(Routed::Retry)
            }
            Err(e) => Err((leader, e)),
        }
    }

    /// Waits (up to a few election timeouts) until a leader other than
    /// `not` is known.
    async fn wait_for_leader(&self, not: Option<NodeId>) {
        let timeout = Duration::from_millis(self.settings.election_timeout_max_ms * 3);
        let _ = self
            .raft
            .wait(Some(timeout))
            .metrics(
                |m| m.current_leader.is_some() && m.current_leader != not,
                "a leader is known",
            )
            .await;
    }
}

/// Whether a failed call certainly never reached the peer's handler.
fn never_delivered(e: &CallError) -> bool {
    matches!(
        e,
        CallError::Resolve { .. }
            | CallError::Transport(
                TransportError::Connect { .. }
                    | TransportError::Refused { .. }
                    | TransportError::PinMismatch { .. }
            )
    )
}
