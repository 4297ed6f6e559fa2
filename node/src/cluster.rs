//! This node's access to the control plane: writes and reads for the API,
//! the status, joining nodes, and keeping the voter count odd and bounded.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use stockade_policy::{AccessCommand, Applied, ClusterState, Command, NodeId, ValidationError};
use stockade_raft::openraft::ChangeMembers;
use stockade_raft::{NodeAddr, RaftRpcServer, RaftStatus, StockadeRaft};
use stockade_transport::{Bytes, ClusterCa, Endpoint, RemoteError, RpcHandler, StreamBody};

use crate::alerts::Telemetry;
use crate::certs::Renewer;
use crate::clock;
use crate::dataplane::DataplaneStatus;
use crate::flows::{FlowStatus, FlowStore};
use crate::tokens::secret_digest;
use crate::tunnel::{TunnelInfo, TunnelStatus};

pub use stockade_raft::ReadError;

/// How fresh a read must be.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Consistency {
    /// This node's applied state (may trail the leader by a heartbeat).
    #[default]
    Local,
    /// Reflects every write committed before the read began.
    Linearizable,
}

/// A committed write.
#[derive(Clone, Debug)]
pub struct Written {
    /// Its Raft log index: the policy version.
    pub index: u64,
    /// What it did.
    pub applied: Applied,
}

/// Why a write did not take effect.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The command is invalid against the state it met.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The control plane could not commit it.
    #[error(transparent)]
    Raft(#[from] stockade_raft::WriteError),
}

/// What `GET /v1/status` shows.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    /// This node's name.
    pub name: String,
    /// Raft's view from this node.
    #[serde(flatten)]
    pub raft: RaftStatus,
    /// The kernel dataplane, when this node runs one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataplane: Option<DataplaneStatus>,
    /// The flow log, when this node runs a dataplane.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flows: Option<FlowStatus>,
    /// The Noise tunnel, when this node runs one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<TunnelStatus>,
}

/// A joining node's request: its token, name, address and CSR.
#[derive(Debug, Serialize, Deserialize)]
pub struct JoinRequest {
    /// The token's public id.
    pub token_id: String,
    /// The token's secret.
    pub token_secret: String,
    /// The new node's name.
    pub name: String,
    /// Its advertised QUIC address.
    pub advertise: std::net::SocketAddr,
    /// Its certificate signing request (PEM); its key stays with it.
    pub csr_pem: String,
}

/// What a joining node receives.
#[derive(Debug, Serialize, Deserialize)]
pub struct JoinReply {
    /// The id the cluster gave it.
    pub node_id: u64,
    /// Its certificate, signed by the cluster CA.
    pub cert_pem: String,
}

/// This node's handle on the control plane.
pub struct ControlPlane {
    name: String,
    raft: StockadeRaft,
    endpoint: Endpoint,
    ca_fingerprint: String,
    dataplane: Mutex<Option<DataplaneStatus>>,
    alerting: Telemetry,
    /// The flow log, once the dataplane runs.
    flows: OnceLock<Arc<FlowStore>>,
    /// The tunnel, once it runs.
    tunnel: OnceLock<TunnelInfo>,
    /// What renews this node's certificate, once the node runs.
    certs: OnceLock<Arc<Renewer>>,
}

impl ControlPlane {
    /// Wraps a started Raft member and the endpoint it talks through.
    pub fn new(
        name: String,
        raft: StockadeRaft,
        endpoint: Endpoint,
        ca_fingerprint: String,
    ) -> Self {
        ControlPlane {
            name,
            raft,
            endpoint,
            ca_fingerprint,
            dataplane: Mutex::new(None),
            alerting: Telemetry::default(),
            flows: OnceLock::new(),
            tunnel: OnceLock::new(),
            certs: OnceLock::new(),
        }
    }

    /// The QUIC endpoint, for node-to-node queries.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// This node's flow log, when its dataplane runs.
    pub fn flows(&self) -> Option<&Arc<FlowStore>> {
        self.flows.get()
    }

    /// Records this node's tunnel (once).
    pub fn set_tunnel(&self, tunnel: TunnelInfo) {
        if self.tunnel.set(tunnel).is_err() {
            tracing::warn!("the tunnel was already set; keeping the first");
        }
    }

    /// This node's tunnel, when it runs one.
    pub fn tunnel(&self) -> Option<&TunnelInfo> {
        self.tunnel.get()
    }

    /// Records what renews this node's certificate (once).
    pub fn set_certs(&self, renewer: Arc<Renewer>) {
        if self.certs.set(renewer).is_err() {
            tracing::warn!("the certificate renewer was already set; keeping the first");
        }
    }

    /// What renews this node's certificate, once the node runs.
    pub fn certs(&self) -> Option<&Arc<Renewer>> {
        self.certs.get()
    }

    /// Records where this node's flow log is (once).
    pub fn set_flows(&self, store: Arc<FlowStore>) {
        if self.flows.set(store).is_err() {
            tracing::warn!("the flow log was already set; keeping the first");
        }
    }

    /// The Raft member.
    pub fn raft(&self) -> &StockadeRaft {
        &self.raft
    }

    /// Runs `f` on this node's applied state.
    pub fn with_state<R>(&self, f: impl FnOnce(&ClusterState) -> R) -> R {
        self.raft.state().read(f)
    }

    /// A copy of this node's applied state and the log index it reflects
    /// (0 before any entry), taken under one lock so the two agree.
    pub fn applied_state(&self) -> (u64, ClusterState) {
        let (applied, state) = self.raft.state().versioned();
        (applied.map_or(0, |l| l.index), state)
    }

    /// Runs `f` on the state, as fresh as `consistency` asks.
    pub async fn read<R>(
        &self,
        consistency: Consistency,
        f: impl FnOnce(&ClusterState) -> R,
    ) -> Result<R, ReadError> {
        match consistency {
            Consistency::Local => Ok(self.with_state(f)),
            Consistency::Linearizable => self.raft.read_linearizable(f).await,
        }
    }

    /// Commits a command through the leader and returns once it is applied
    /// on this node too, so a read here right after sees it.
    ///
    /// Concurrent writes share log entries (see [`StockadeRaft::write`]):
    /// several writes may answer the same index, each with its own result.
    pub async fn write(&self, command: Command) -> Result<Written, WriteError> {
        let committed = self.raft.write(command).await?;
        let index = committed.log_id.index;
        self.raft.state().wait_applied(index).await;
        Ok(Written {
            index,
            applied: committed.result?,
        })
    }

    /// This node's status.
    pub fn status(&self) -> Status {
        Status {
            name: self.name.clone(),
            raft: self.raft.status(),
            dataplane: self.dataplane_status(),
            flows: self.flows().map(|f| f.status()),
            tunnel: self.tunnel.get().map(TunnelInfo::status),
        }
    }

    /// What the reconciler last reported.
    pub fn dataplane_status(&self) -> Option<DataplaneStatus> {
        self.dataplane
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Records the reconciler's latest report.
    pub fn set_dataplane_status(&self, status: DataplaneStatus) {
        *self
            .dataplane
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(status);
    }

    /// This node's alert delivery counters.
    pub fn alerting(&self) -> &Telemetry {
        &self.alerting
    }

    /// Fingerprint of the cluster CA, pinned in join tokens.
    pub fn ca_fingerprint(&self) -> String {
        self.ca_fingerprint.clone()
    }

    /// Removes a node from the Raft membership and the state. Returns the
    /// log index of the last change. `audit` wraps the state change (see
    /// [`Command::Audited`]) when an API call asked for it.
    pub async fn remove_member(
        &self,
        id: NodeId,
        audit: impl FnOnce(Command) -> Command,
    ) -> Result<u64, WriteError> {
        let status = self.raft.status();
        let mut index = 0;
        if status.voters.contains_key(&id.0) {
            let removed = BTreeSet::from([id.0]);
            index = self
                .raft
                .change_membership(ChangeMembers::RemoveVoters(removed), false)
                .await?
                .log_id
                .index;
        }
        if self.raft.status().learners.contains_key(&id.0) {
            let removed = BTreeSet::from([id.0]);
            index = self
                .raft
                .change_membership(ChangeMembers::RemoveNodes(removed), false)
                .await?
                .log_id
                .index;
        }
        if self.with_state(|s| s.nodes.contains_key(&id)) {
            index = self.write(audit(Command::RemoveNode { id })).await?.index;
        }
        Ok(index)
    }

    /// Admits a joining node: redeems its token, signs its CSR with the
    /// cluster CA, and (in the background) adds it as a learner once it runs.
    pub async fn admit(self: &Arc<Self>, request: JoinRequest) -> Result<JoinReply, String> {
        let redeem = Command::Access(AccessCommand::RedeemJoinToken {
            id: request.token_id.clone(),
            secret_sha256: secret_digest(&request.token_secret),
            now_ms: clock::now_ms(),
            node_name: request.name.clone(),
            address: request.advertise,
        });
        let written = self.write(redeem).await.map_err(|e| e.to_string())?;
        let Applied::Node(node) = written.applied else {
            return Err("the join token was redeemed but no node id came back".into());
        };
        let ca = self
            .with_state(|s| s.access.ca.clone())
            .ok_or("the cluster has no certificate authority")?;
        let ca = ClusterCa::from_pem(&ca.cert_pem, &ca.key_pem.0).map_err(|e| e.to_string())?;
        let cert_pem = ca
            .sign_node_csr(&request.csr_pem, node.0)
            .map_err(|e| format!("signing the node's CSR: {e}"))?;
        // The learner is added once the new node runs; the leader then
        // replicates everything to it, and the voter reconciler may promote it.
        let this = Arc::clone(self);
        let addr = NodeAddr::new(request.advertise.to_string());
        tokio::spawn(async move {
            if let Err(e) = this.raft.add_learner(node.0, addr, false).await {
                tracing::warn!(node = node.0, error = %e, "adding the joined node as a learner failed");
            }
        });
        tracing::info!(node = node.0, name = %request.name, "admitted a joining node");
        Ok(JoinReply {
            node_id: node.0,
            cert_pem,
        })
    }

    /// On the leader, keeps the voters an odd number no larger than the
    /// cluster's target: promotes caught-up learners, demotes extra voters.
    /// Runs until the process ends.
    pub async fn reconcile_voters(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let status = self.raft.status();
            if status.role != "leader" {
                continue;
            }
            let target = usize::from(self.with_state(|s| s.access.target_voters));
            if let Some(change) = voter_change(&status, target) {
                if let Err(e) = self.raft.change_membership(change, true).await {
                    tracing::warn!(error = %e, "changing the voters failed");
                }
            }
        }
    }
}

/// How far behind the leader's log a learner may be and still be promoted.
const PROMOTION_LAG: u64 = 16;

/// The membership change that brings the voter count to the largest odd
/// number no larger than `target` and the number of members, if any.
fn voter_change(status: &RaftStatus, target: usize) -> Option<ChangeMembers<u64, NodeAddr>> {
    let members = status.voters.len() + status.learners.len();
    let mut want = target.min(members).max(1);
    if want.is_multiple_of(2) {
        want -= 1;
    }
    let voters = status.voters.len();
    if voters < want {
        let last = status.last_log_index.unwrap_or(0);
        let replication = status.replication.as_ref()?;
        let ready: BTreeSet<u64> = status
            .learners
            .keys()
            .filter(|id| {
                replication
                    .get(*id)
                    .copied()
                    .flatten()
                    .is_some_and(|m| m + PROMOTION_LAG >= last)
            })
            .take(want - voters)
            .copied()
            .collect();
        // Promote only enough to keep the count odd.
        let usable = if (voters + ready.len()).is_multiple_of(2) {
            ready.len().saturating_sub(1)
        } else {
            ready.len()
        };
        let promote: BTreeSet<u64> = ready.into_iter().take(usable).collect();
        return (!promote.is_empty()).then_some(ChangeMembers::AddVoterIds(promote));
    }
    if voters > want || voters.is_multiple_of(2) {
        let keep = if voters > want { want } else { voters - 1 };
        let leader = status.node_id;
        let demote: BTreeSet<u64> = status
            .voters
            .keys()
            .filter(|id| **id != leader)
            .take(voters - keep)
            .copied()
            .collect();
        return (!demote.is_empty()).then_some(ChangeMembers::RemoveVoters(demote));
    }
    None
}

/// Serves what reaches this node over QUIC: Raft calls, and joins.
pub struct NodeRpcHandler {
    raft: RaftRpcServer,
    control: Arc<ControlPlane>,
}

impl NodeRpcHandler {
    /// A handler for this node's control plane.
    pub fn new(control: Arc<ControlPlane>) -> Self {
        NodeRpcHandler {
            raft: control.raft.rpc_server(),
            control,
        }
    }
}

#[async_trait::async_trait]
impl RpcHandler for NodeRpcHandler {
    async fn call(&self, peer: u64, request: Bytes) -> Result<Bytes, RemoteError> {
        self.raft.handle(peer, request).await
    }

    async fn call_streaming(
        &self,
        peer: u64,
        header: Bytes,
        body: &mut StreamBody,
    ) -> Result<Bytes, RemoteError> {
        self.raft.handle_streaming(peer, header, body).await
    }

    async fn query(&self, _peer: u64, request: Bytes) -> Result<Bytes, RemoteError> {
        let control = Arc::clone(&self.control);
        // Reading the log is file I/O: off the async workers.
        tokio::task::spawn_blocking(move || crate::flows::query::answer(&control, &request))
            .await
            .map_err(|e| RemoteError(format!("the query failed: {e}")))?
            .map_err(RemoteError)
    }

    async fn join(&self, request: Bytes) -> Result<Bytes, RemoteError> {
        let request: JoinRequest = serde_json::from_slice(&request)
            .map_err(|e| RemoteError(format!("not a join request: {e}")))?;
        let reply = self.control.admit(request).await.map_err(RemoteError)?;
        serde_json::to_vec(&reply)
            .map(Bytes::from)
            .map_err(|e| RemoteError(format!("cannot encode the join reply: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn status(voters: &[u64], learners: &[u64], caught_up: bool) -> RaftStatus {
        let addrs = |ids: &[u64]| ids.iter().map(|id| (*id, format!("n{id}:7400"))).collect();
        RaftStatus {
            node_id: 1,
            role: "leader".into(),
            term: 1,
            leader: Some(1),
            last_log_index: Some(100),
            applied_index: Some(100),
            snapshot_index: None,
            purged_index: None,
            voters: addrs(voters),
            learners: addrs(learners),
            replication: Some(
                voters
                    .iter()
                    .chain(learners)
                    .map(|id| (*id, Some(if caught_up { 100 } else { 10 })))
                    .collect::<BTreeMap<_, _>>(),
            ),
            millis_since_quorum_ack: Some(0),
            last_contact_ms: BTreeMap::new(),
        }
    }

    #[test]
    fn learners_are_promoted_in_pairs_to_keep_the_count_odd() {
        let promote = |ids: &[u64]| Some(ChangeMembers::AddVoterIds(ids.iter().copied().collect()));
        assert_eq!(voter_change(&status(&[1], &[2], true), 3), None);
        assert_eq!(
            voter_change(&status(&[1], &[2, 3], true), 3),
            promote(&[2, 3])
        );
        assert_eq!(voter_change(&status(&[1], &[2, 3], false), 3), None);
        assert_eq!(voter_change(&status(&[1, 2, 3], &[4, 5], true), 3), None);
        assert_eq!(
            voter_change(&status(&[1, 2, 3], &[4, 5], true), 5),
            promote(&[4, 5])
        );
    }

    #[test]
    fn an_even_voter_count_is_made_odd() {
        let change = voter_change(&status(&[1, 2], &[], true), 3);
        assert_eq!(
            change,
            Some(ChangeMembers::RemoveVoters(BTreeSet::from([2])))
        );
    }
}
