//! The replicated control plane of Stockade.
//!
//! This crate owns the openraft type configuration ([`TypeConfig`]), the
//! sled-backed log store ([`LogStore`]) and state machine
//! ([`StateMachineStore`], which holds [`stockade_policy::ClusterState`] and
//! applies [`stockade_policy::Command`]s to it), snapshots, the Raft network
//! over Stockade's QUIC transport, and linearizable reads. Every node of a
//! cluster runs one Raft member; what it commits is the single source of
//! truth for policy, identities, endpoints and alert delivery.
//!
//! # Storage
//!
//! One sled database per node ([`open`], in `DATA_DIR/raft`) holds the log,
//! the vote and the current snapshot. Entries and votes are fsynced before
//! openraft relies on them; the state machine lives in memory and reaches the
//! disk through snapshots, and on start openraft replays the log after the
//! snapshot up to the last committed entry.
//!
//! # Driving a member
//!
//! [`StockadeRaft`] bundles the pieces a node needs:
//!
//! - [`StockadeRaft::start`] opens the storage and starts the member on the
//!   node's transport endpoint; serve its calls with
//!   `endpoint.serve(Arc::new(raft.rpc_server()))`, or from the node's own
//!   `RpcHandler` by delegating `call`/`call_streaming` to
//!   [`RaftRpcServer::handle`]/[`RaftRpcServer::handle_streaming`] (joins are
//!   the node's).
//! - `stockade init`: [`StockadeRaft::initialize`] with the node's advertised
//!   address makes a one-voter cluster.
//! - `stockade join`: once the new node runs (and serves), any member calls
//!   [`StockadeRaft::add_learner`] (with `blocking`, it answers once the
//!   learner caught up), then [`StockadeRaft::change_membership`] with
//!   `ChangeMembers::AddVoterIds` to promote it. Both are routed to the
//!   leader.
//! - Writes: [`StockadeRaft::write`] from any member; a follower forwards to
//!   the leader. Concurrent writes are gathered into shared log entries
//!   (group commit), each command still validated and applied on its own.
//!   The reply's `log_id.index` is the policy version.
//! - Reads: [`StateHandle`] reads the local applied state without Raft;
//!   [`StockadeRaft::read_linearizable`] first makes sure it reflects every
//!   write committed before the read began.
//! - `/v1/status`: [`StockadeRaft::status`] (or the full
//!   [`StockadeRaft::metrics`]).

mod batcher;
mod call;
mod cluster;
mod config;
mod contacts;
mod error;
mod handle;
mod log_store;
mod network;
mod routing;
pub mod rpc;
mod server;
mod snapshot;
mod state_machine;
mod status;
mod store;
mod types;

pub use batcher::Committed;
pub use call::CallError;
pub use cluster::{StartError, StockadeRaft};
pub use config::RaftSettings;
pub use contacts::Contacts;
pub use error::Error;
pub use handle::{Machine, StateHandle};
pub use log_store::LogStore;
pub use network::{Network, PeerClient};
pub use routing::{ReadError, WriteError};
pub use server::RaftRpcServer;
pub use state_machine::{SnapshotBuilder, StateMachineStore};
pub use status::RaftStatus;
pub use store::{open, open_db, DB_DIR};
pub use types::{
    ClientWriteError, ClientWriteResponse, Entry, LogId, NodeAddr, NodeId, Raft, RaftMetrics,
    Request, Response, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig, Vote,
};

/// openraft itself, at the version this crate is built on.
pub use openraft;
