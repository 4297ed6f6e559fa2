//! [`StockadeRaft`]: a node's Raft member with its storage and its network.
//! How it routes writes and reads to the leader is in `routing.rs`; how it
//! gathers concurrent writes into shared log entries, in `batcher.rs`.

use std::collections::BTreeMap;
use std::path::Path;

use openraft::error::{Fatal, InitializeError, RaftError};
use openraft::{ChangeMembers, ConfigError};
use stockade_policy::{ClusterState, Command};
use stockade_transport::Endpoint;

use crate::batcher::{Batcher, Committed};
use crate::config::RaftSettings;
use crate::contacts::Contacts;
use crate::handle::StateHandle;
use crate::network::Network;
use crate::routing::{ReadError, Router, WriteError};
use crate::server::RaftRpcServer;
use crate::status::RaftStatus;
use crate::types::{ClientWriteResponse, LogId, NodeAddr, NodeId, Raft, RaftMetrics, Request};

/// Why a node's Raft member could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The storage could not be opened.
    #[error(transparent)]
    Storage(#[from] crate::Error),
    /// The settings are inconsistent.
    #[error("raft settings: {0}")]
    Config(#[from] Box<ConfigError>),
    /// openraft could not start.
    #[error("raft: {0}")]
    Raft(#[from] Fatal<NodeId>),
}

/// A node's Raft member: openraft with Stockade's storage and network.
///
/// Cheap to clone; clones share the member and its write batcher.
#[derive(Clone)]
pub struct StockadeRaft {
    /// Routes calls to the leader; holds the openraft handle and the state.
    router: Router,
    /// Gathers concurrent [`StockadeRaft::write`]s into shared entries.
    batcher: Batcher,
    /// When each peer was last heard from.
    contacts: Contacts,
}

impl std::fmt::Debug for StockadeRaft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StockadeRaft")
            .field("id", &self.router.id)
            .finish_non_exhaustive()
    }
}

impl StockadeRaft {
    /// Opens the storage under `data_dir` and starts the Raft member of the
    /// node that owns `endpoint` (its id is the one its certificate names).
    ///
    /// Serve its calls with `endpoint.serve(...)`, passing
    /// [`StockadeRaft::rpc_server`] or a node handler that delegates to it.
    pub async fn start(
        data_dir: &Path,
        settings: RaftSettings,
        endpoint: Endpoint,
    ) -> Result<Self, StartError> {
        let id = endpoint.node_id();
        let dir = data_dir.to_owned();
        let (log, state_machine) = tokio::task::spawn_blocking(move || crate::store::open(&dir))
            .await
            .map_err(crate::Error::from)??;
        let state = state_machine.handle();
        let config = settings.to_config()?;
        let contacts = Contacts::default();
        let network = Network::new(endpoint.clone(), contacts.clone());
        let raft = Raft::new(id, config, network, log, state_machine).await?;
        let router = Router {
            id,
            raft,
            state,
            endpoint,
            settings,
        };
        let batching = router.clone();
        let batcher = Batcher::spawn(move |request| {
            let router = batching.clone();
            async move {
                let response = router.write(request).await?;
                Ok((response.log_id, response.data))
            }
        });
        Ok(StockadeRaft {
            router,
            batcher,
            contacts,
        })
    }

    /// This member's node id.
    pub fn id(&self) -> NodeId {
        self.router.id
    }

    /// The openraft handle, for anything this type does not wrap.
    pub fn raft(&self) -> &Raft {
        &self.router.raft
    }

    /// The applied state, read locally.
    pub fn state(&self) -> &StateHandle {
        &self.router.state
    }

    /// The handler of Raft calls that reach this node.
    pub fn rpc_server(&self) -> RaftRpcServer {
        RaftRpcServer::new(self.router.raft.clone(), self.contacts.clone())
    }

    /// Commits `command` through the leader, from any member, and returns
    /// once the leader has applied it: the reply's `log_id.index` is the
    /// policy version and `result` what the command did. This member may
    /// apply it a little later; [`StateHandle::wait_applied`] waits for
    /// that.
    ///
    /// Concurrent writes share log entries (group commit): the command may
    /// be committed in one entry with others, each validated and applied on
    /// its own, in order. A write that finds no other queued goes at once.
    /// When the entry as a whole fails (no leader, the leader could not be
    /// reached), every write in it gets the same error.
    pub async fn write(&self, command: Command) -> Result<Committed, WriteError> {
        self.batcher.write(command).await
    }

    /// Commits `request` as one log entry of its own through the leader,
    /// from any member, bypassing the batcher. The reply's `data.results`
    /// has one result per command, in order.
    pub async fn write_request(&self, request: Request) -> Result<ClientWriteResponse, WriteError> {
        self.router.write(request).await
    }

    /// Adds a node as a learner, through the leader. With `blocking`, it
    /// returns once the learner has caught up with the log (when forwarded,
    /// within the transport's call timeout: a learner that needs a large
    /// snapshot is better added without blocking, and then waited for on its
    /// own applied index).
    pub async fn add_learner(
        &self,
        id: NodeId,
        node: NodeAddr,
        blocking: bool,
    ) -> Result<ClientWriteResponse, WriteError> {
        self.router.add_learner(id, node, blocking).await
    }

    /// Changes the membership through the leader, e.g.
    /// `ChangeMembers::AddVoterIds` to promote learners to voters.
    pub async fn change_membership(
        &self,
        changes: ChangeMembers<NodeId, NodeAddr>,
        retain: bool,
    ) -> Result<ClientWriteResponse, WriteError> {
        self.router.change_membership(changes, retain).await
    }

    /// The log id a linearizable read must see, once this member has
    /// applied it: after this returns, [`StateHandle`] reads are
    /// linearizable. On a follower the leader is asked for it (ReadIndex).
    pub async fn read_index(&self) -> Result<Option<LogId>, ReadError> {
        self.router.read_index().await
    }

    /// Runs `read` on a linearizable view of the state: one that reflects
    /// every write committed before this call began.
    pub async fn read_linearizable<R>(
        &self,
        read: impl FnOnce(&ClusterState) -> R,
    ) -> Result<R, ReadError> {
        self.read_index().await?;
        Ok(self.state().read(read))
    }

    /// Makes this node a one-voter cluster reachable at `addr` (`stockade
    /// init`). Returns `false` if it already belongs to a cluster.
    pub async fn initialize(&self, addr: NodeAddr) -> Result<bool, StartError> {
        match self
            .router
            .raft
            .initialize(BTreeMap::from([(self.id(), addr)]))
            .await
        {
            Ok(()) => Ok(true),
            Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(false),
            Err(RaftError::APIError(e @ InitializeError::NotInMembers(_))) => {
                unreachable!("this node is the only member: {e}")
            }
            Err(RaftError::Fatal(e)) => Err(StartError::Raft(e)),
        }
    }

    /// openraft's metrics of this member.
    pub fn metrics(&self) -> RaftMetrics {
        self.router.raft.metrics().borrow().clone()
    }

    /// This member's status, for `/v1/status`.
    pub fn status(&self) -> RaftStatus {
        let mut status = RaftStatus::from(&self.metrics());
        status.last_contact_ms = self.contacts.millis_since();
        status
    }

    /// Stops the Raft member. The endpoint is the node's: close it
    /// separately.
    pub async fn shutdown(&self) {
        if let Err(e) = self.router.raft.shutdown().await {
            tracing::warn!(error = %e, "raft did not stop cleanly");
        }
    }
}
