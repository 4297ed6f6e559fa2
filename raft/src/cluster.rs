//! [`StockadeRaft`]: a node's Raft member with its storage and its network.
//! How it routes writes and reads to the leader is in `routing.rs`.

use std::collections::BTreeMap;
use std::path::Path;

use openraft::error::{Fatal, InitializeError, RaftError};
use openraft::ConfigError;
use stockade_transport::Endpoint;

use crate::config::RaftSettings;
use crate::contacts::Contacts;
use crate::handle::StateHandle;
use crate::network::Network;
use crate::server::RaftRpcServer;
use crate::status::RaftStatus;
use crate::types::{NodeAddr, NodeId, Raft, RaftMetrics};

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
#[derive(Clone)]
pub struct StockadeRaft {
    pub(crate) id: NodeId,
    pub(crate) raft: Raft,
    pub(crate) state: StateHandle,
    pub(crate) endpoint: Endpoint,
    pub(crate) settings: RaftSettings,
    /// When each peer was last heard from.
    contacts: Contacts,
}

impl std::fmt::Debug for StockadeRaft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StockadeRaft")
            .field("id", &self.id)
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
        Ok(StockadeRaft {
            id,
            raft,
            state,
            endpoint,
            settings,
            contacts,
        })
    }

    /// This member's node id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The openraft handle, for anything this type does not wrap.
    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// The applied state, read locally.
    pub fn state(&self) -> &StateHandle {
        &self.state
    }

    /// The handler of Raft calls that reach this node.
    pub fn rpc_server(&self) -> RaftRpcServer {
        RaftRpcServer::new(self.raft.clone(), self.contacts.clone())
    }

    /// Makes this node a one-voter cluster reachable at `addr` (`stockade
    /// init`). Returns `false` if it already belongs to a cluster.
    pub async fn initialize(&self, addr: NodeAddr) -> Result<bool, StartError> {
        match self
            .raft
            .initialize(BTreeMap::from([(self.id, addr)]))
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
        self.raft.metrics().borrow().clone()
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
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft did not stop cleanly");
        }
    }
}
