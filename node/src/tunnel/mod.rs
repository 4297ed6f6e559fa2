//! The node's Noise tunnel service: connections the connect hook sends to
//! the loopback port go out to the destination's node ([`outbound`]);
//! connections from other nodes' tunnels are checked and delivered
//! ([`inbound`]). The node's key is published through Raft, signed by its
//! certificate, so peers know it.

mod admission;
mod inbound;
mod outbound;
mod peers;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use serde::Serialize;
use stockade_bpf::TunnelTargets;
use stockade_policy::{Command, NodeId, TunnelKey};
use stockade_transport::tunnel::{
    StaticKeypair, TunnelCounters, TunnelKeyBinding, TunnelSettings, TunnelStats,
};
use stockade_transport::CaCertificate;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use utoipa::ToSchema;

use crate::cluster::ControlPlane;
use crate::config::TunnelConfig;
use admission::CompiledPolicy;
use peers::Directory;

/// How long a node waits for a TCP connection to a peer's tunnel or to a
/// local destination.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How often publishing the key is retried while it fails (before the node
/// is a member, or without a quorum).
const PUBLISH_RETRY: Duration = Duration::from_secs(2);

/// The tunnel part of `GET /v1/status`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TunnelStatus {
    /// TCP port other nodes' tunnels connect to.
    pub port: u16,
    /// Loopback port the connect hook sends encrypted connections to.
    pub local_port: u16,
    /// This node's Noise static public key (hex).
    pub public_key: String,
    /// The tunnel's counters.
    #[schema(value_type = Object)]
    pub counters: TunnelCounters,
}

/// What the tunnel's tasks share.
struct Tunnel {
    control: Arc<ControlPlane>,
    me: NodeId,
    keypair: StaticKeypair,
    settings: TunnelSettings,
    stats: Arc<TunnelStats>,
    directory: Directory,
    policy: CompiledPolicy,
}

/// This node's tunnel identity: its key pair and the binding it publishes.
pub struct TunnelIdentity {
    /// The Noise static key pair.
    pub keypair: StaticKeypair,
    /// The public key, signed by the node's certificate.
    pub binding: TunnelKeyBinding,
    /// The cluster CA, which peers' bindings must chain to.
    pub ca: CaCertificate,
}

/// The running tunnel.
pub struct Running {
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops accepting; sessions in flight end with the process.
    pub fn stop(self) {
        for task in self.tasks {
            task.abort();
        }
    }
}

/// Binds both listeners and starts the tunnel; the dataplane must already
/// be open under `pin_dir` (its connect hook files the destinations read
/// here).
pub async fn start(
    control: Arc<ControlPlane>,
    config: TunnelConfig,
    listen_ip: IpAddr,
    pin_dir: &Path,
    identity: TunnelIdentity,
) -> Result<Running> {
    let peer_addr = SocketAddr::new(listen_ip, config.port);
    let peers = TcpListener::bind(peer_addr)
        .await
        .with_context(|| format!("binding the tunnel on {peer_addr}; set --tunnel-port"))?;
    let local_addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), config.local_port);
    let local = TcpListener::bind(local_addr)
        .await
        .with_context(|| format!("binding the tunnel on {local_addr}; set --tunnel-local-port"))?;
    let targets = TunnelTargets::open_pinned(pin_dir)
        .context("opening the dataplane's map of tunnelled connections")?;
    let me = NodeId(control.raft().id());
    let record = peers::record(&identity.binding, config.port);
    let stats = Arc::new(TunnelStats::default());
    control.set_tunnel(TunnelInfo {
        port: config.port,
        local_port: config.local_port,
        public_key: record.public_key.clone(),
        stats: Arc::clone(&stats),
    });
    let tunnel = Arc::new(Tunnel {
        control: Arc::clone(&control),
        me,
        keypair: identity.keypair,
        settings: TunnelSettings::default(),
        stats,
        directory: Directory::new(identity.ca),
        policy: CompiledPolicy::default(),
    });
    tracing::info!(%peer_addr, %local_addr, public_key = %record.public_key, "tunnel ready");
    Ok(Running {
        tasks: vec![
            tokio::spawn(outbound::serve(Arc::clone(&tunnel), local, targets)),
            tokio::spawn(inbound::serve(tunnel, peers)),
            tokio::spawn(publish(control, record)),
        ],
    })
}

/// What the control plane keeps of the tunnel for its status.
pub struct TunnelInfo {
    port: u16,
    local_port: u16,
    public_key: String,
    stats: Arc<TunnelStats>,
}

impl TunnelInfo {
    /// The status now.
    pub fn status(&self) -> TunnelStatus {
        TunnelStatus {
            port: self.port,
            local_port: self.local_port,
            public_key: self.public_key.clone(),
            counters: self.stats.snapshot(),
        }
    }
}

/// Publishes this node's key until the state holds it (the signature may
/// differ: ECDSA signatures are randomised, and any valid one will do).
async fn publish(control: Arc<ControlPlane>, record: TunnelKey) {
    loop {
        let published = control.with_state(|s| {
            s.tunnel_keys.get(&record.node).is_some_and(|k| {
                k.public_key == record.public_key
                    && k.port == record.port
                    && k.cert_pem == record.cert_pem
            })
        });
        if published {
            return;
        }
        if let Err(e) = control
            .write(Command::PublishTunnelKey(record.clone()))
            .await
        {
            tracing::debug!(error = %e, "publishing the tunnel key; retrying");
            tokio::time::sleep(PUBLISH_RETRY).await;
        }
    }
}
