//! A cluster of Raft members in this process, each on its own real QUIC
//! endpoint on 127.0.0.1 with a certificate from a test cluster CA.

#![allow(dead_code)] // each test binary uses part of it

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openraft::ChangeMembers;
use stockade_policy::{Command, Mode};
use stockade_raft::{NodeAddr, NodeId, RaftSettings, StockadeRaft};
use stockade_transport::{ClusterCa, Endpoint, NodeIdentity, NodeKey, TransportConfig};
use tempfile::TempDir;

/// Generous: the tests must pass on a loaded 2-core machine.
pub const WAIT: Duration = Duration::from_secs(60);

/// One running member.
pub struct Member {
    pub raft: StockadeRaft,
    pub endpoint: Endpoint,
    pub addr: SocketAddr,
}

/// A cluster whose members keep their data folders across restarts.
pub struct Cluster {
    pub ca: ClusterCa,
    pub root: TempDir,
    pub settings: RaftSettings,
    pub members: BTreeMap<NodeId, Member>,
    /// Every member's address, also while it is stopped.
    pub addrs: BTreeMap<NodeId, SocketAddr>,
}

fn identity(ca: &ClusterCa, id: NodeId) -> NodeIdentity {
    let key = NodeKey::generate().expect("node key");
    let csr = key.csr_pem(id).expect("csr");
    let cert = ca.sign_node_csr(&csr, id).expect("signed certificate");
    NodeIdentity::from_pem(&cert, &key.key_pem(), &ca.certificate()).expect("identity")
}

fn transport_config() -> TransportConfig {
    TransportConfig {
        call_timeout: Duration::from_secs(5),
        ..TransportConfig::default()
    }
}

pub fn zone(name: &str) -> Command {
    Command::UpsertZone {
        id: None,
        name: name.into(),
        mode: Mode::Enforce,
        description: String::new(),
    }
}

impl Cluster {
    /// A cluster of the given members, none started.
    pub fn new(settings: RaftSettings) -> Self {
        Cluster {
            ca: ClusterCa::generate("raft-tests").expect("cluster CA"),
            root: tempfile::tempdir().expect("temporary folder"),
            settings,
            members: BTreeMap::new(),
            addrs: BTreeMap::new(),
        }
    }

    pub fn data_dir(&self, id: NodeId) -> PathBuf {
        self.root.path().join(format!("node-{id}"))
    }

    /// Starts member `id`, on its former address if it had one. Rebinding
    /// a port just released is retried for a while.
    pub async fn start(&mut self, id: NodeId) {
        let bind = self
            .addrs
            .get(&id)
            .copied()
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        let mut tries = 0;
        let endpoint = loop {
            match Endpoint::bind(
                bind,
                identity(&self.ca, id),
                &self.ca.certificate(),
                transport_config(),
            ) {
                Ok(endpoint) => break endpoint,
                Err(e) if tries < 100 => {
                    tries += 1;
                    eprintln!("bind {bind}: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("cannot bind {bind}: {e}"),
            }
        };
        let addr = endpoint.local_addr().expect("local address");
        let raft = StockadeRaft::start(&self.data_dir(id), self.settings.clone(), endpoint.clone())
            .await
            .expect("raft starts");
        endpoint.serve(Arc::new(raft.rpc_server()));
        self.addrs.insert(id, addr);
        self.members.insert(
            id,
            Member {
                raft,
                endpoint,
                addr,
            },
        );
    }

    /// Stops member `id`: its Raft and its endpoint, as a crash would.
    pub async fn stop(&mut self, id: NodeId) {
        let member = self.members.remove(&id).expect("a running member");
        member.raft.shutdown().await;
        member.endpoint.close().await;
    }

    pub fn member(&self, id: NodeId) -> &StockadeRaft {
        &self.members.get(&id).expect("a running member").raft
    }

    pub fn node_addr(&self, id: NodeId) -> NodeAddr {
        NodeAddr::new(self.addrs[&id].to_string())
    }

    /// Starts members 1, 2 and 3; initializes 1, adds 2 and 3 as learners
    /// and promotes them to voters.
    pub async fn form(settings: RaftSettings) -> Self {
        let mut cluster = Cluster::new(settings);
        for id in 1..=3 {
            cluster.start(id).await;
        }
        let first = cluster.member(1);
        assert!(first
            .initialize(cluster.node_addr(1))
            .await
            .expect("initialize"));
        first
            .raft()
            .wait(Some(WAIT))
            .current_leader(1, "node 1 leads")
            .await
            .expect("node 1 leads");
        for id in [2, 3] {
            first
                .add_learner(id, cluster.node_addr(id), true)
                .await
                .expect("add learner");
        }
        first
            .change_membership(ChangeMembers::AddVoterIds([2, 3].into()), false)
            .await
            .expect("promote voters");
        cluster
    }

    /// Waits until every running member has applied the entry at `index`.
    pub async fn converge(&self, index: u64) {
        for (id, member) in &self.members {
            member
                .raft
                .raft()
                .wait(Some(WAIT))
                .applied_index_at_least(Some(index), format!("node {id} applies {index}"))
                .await
                .expect("member applies");
        }
    }

    /// Waits until a running member knows a leader other than `not`, and
    /// returns it.
    pub async fn leader_other_than(&self, not: NodeId) -> NodeId {
        let (_, any) = self.members.iter().next().expect("a running member");
        let metrics = any
            .raft
            .raft()
            .wait(Some(WAIT))
            .metrics(
                |m| m.current_leader.is_some_and(|l| l != not),
                "a new leader",
            )
            .await
            .expect("a new leader is elected");
        metrics.current_leader.expect("checked above")
    }
}
