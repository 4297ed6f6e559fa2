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
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use anyhow::{Context as _, Result};
use serde::Serialize;
use stockade_bpf::TunnelTargets;
use stockade_policy::{Command, NodeId, TunnelKey};
use stockade_transport::tunnel::{
    StaticKeypair, TunnelCounters, TunnelKeyBinding, TunnelSettings, TunnelStats,
};
use stockade_transport::{CaCertificate, NodeIdentity};
use tokio::net::TcpListener;
use tokio::sync::watch;
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

/// This node's tunnel key: the one in use, and the one it should use.
///
/// The key is derived from the node's private key, so a renewed
/// certificate (`stockade certs rotate`) brings a new tunnel key: the old
/// one must not outlive the key it came from. Peers only trust a key the
/// state publishes, so the switch goes in two steps: the publication task
/// commits the wanted key's record, and only once this node has applied it
/// does the tunnel start using the new key pair.
///
/// Peers switch when they apply the new record, a moment before or after
/// this node: until [`PREVIOUS_KEY_GRACE`] after the switch, inbound
/// handshakes may use the old key, the new key or the key in use.
pub struct TunnelKeys {
    in_use: RwLock<(StaticKeypair, TunnelKey)>,
    wanted: watch::Sender<(StaticKeypair, TunnelKey)>,
    /// The key replaced last, and when.
    previous: RwLock<Option<(StaticKeypair, std::time::Instant)>>,
}

/// How long after a switch inbound handshakes may still use the old key.
const PREVIOUS_KEY_GRACE: Duration = Duration::from_secs(60);

impl TunnelKeys {
    fn new(keypair: StaticKeypair, record: TunnelKey) -> Self {
        TunnelKeys {
            in_use: RwLock::new((keypair.clone(), record.clone())),
            wanted: watch::Sender::new((keypair, record)),
            previous: RwLock::new(None),
        }
    }

    /// The keys an inbound handshake may use: the one in use first, then
    /// one being switched to, then the one replaced within the grace.
    fn inbound_keypairs(&self) -> Vec<StaticKeypair> {
        let mut keys = vec![self.keypair()];
        let wanted = self.wanted.borrow().0.clone();
        if wanted.public() != keys[0].public() {
            keys.push(wanted);
        }
        let previous = self.previous.read().unwrap_or_else(PoisonError::into_inner);
        if let Some((old, since)) = previous.as_ref() {
            if since.elapsed() < PREVIOUS_KEY_GRACE
                && keys.iter().all(|k| k.public() != old.public())
            {
                keys.push(old.clone());
            }
        }
        keys
    }

    /// Puts `keypair` and its `record` in use, keeping the replaced key for
    /// the grace period.
    fn switch(&self, keypair: StaticKeypair, record: TunnelKey) {
        let mut in_use = self.in_use.write().unwrap_or_else(PoisonError::into_inner);
        let old = std::mem::replace(&mut *in_use, (keypair, record)).0;
        *self
            .previous
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some((old, std::time::Instant::now()));
    }

    /// The key pair sessions use now.
    fn keypair(&self) -> StaticKeypair {
        self.in_use
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .0
            .clone()
    }

    /// The published record of the key in use.
    fn record(&self) -> TunnelKey {
        self.in_use
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .1
            .clone()
    }
}

/// What the tunnel's tasks share.
struct Tunnel {
    control: Arc<ControlPlane>,
    me: NodeId,
    keys: Arc<TunnelKeys>,
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
    let public_key = record.public_key.clone();
    let keys = Arc::new(TunnelKeys::new(identity.keypair, record));
    let stats = Arc::new(TunnelStats::default());
    control.set_tunnel(TunnelInfo {
        port: config.port,
        local_port: config.local_port,
        keys: Arc::clone(&keys),
        stats: Arc::clone(&stats),
    });
    let tunnel = Arc::new(Tunnel {
        control: Arc::clone(&control),
        me,
        keys: Arc::clone(&keys),
        settings: TunnelSettings::default(),
        stats,
        directory: Directory::new(identity.ca),
        policy: CompiledPolicy::default(),
    });
    tracing::info!(%peer_addr, %local_addr, %public_key, "tunnel ready");
    Ok(Running {
        tasks: vec![
            tokio::spawn(outbound::serve(Arc::clone(&tunnel), local, targets)),
            tokio::spawn(inbound::serve(tunnel, peers)),
            tokio::spawn(publish(control, keys)),
        ],
    })
}

/// What the control plane keeps of the tunnel for its status.
pub struct TunnelInfo {
    port: u16,
    local_port: u16,
    keys: Arc<TunnelKeys>,
    stats: Arc<TunnelStats>,
}

impl TunnelInfo {
    /// The status now.
    pub fn status(&self) -> TunnelStatus {
        TunnelStatus {
            port: self.port,
            local_port: self.local_port,
            public_key: self.keys.record().public_key,
            counters: self.stats.snapshot(),
        }
    }

    /// Moves the tunnel to the key of a renewed node `identity`: asks the
    /// publication task to publish it, then waits up to `limit` for the
    /// tunnel to use it. `Ok(true)` once it does, `Ok(false)` when the
    /// publication is still pending (it goes on in the background: the
    /// tunnel keeps the old key, whose binding stays valid until the old
    /// certificate expires).
    pub async fn renew(&self, identity: &NodeIdentity, limit: Duration) -> Result<bool> {
        let keypair = identity.tunnel_keypair();
        let binding = identity
            .tunnel_key_binding()
            .context("signing the new tunnel key with the new node key")?;
        let record = peers::record(&binding, self.port);
        let public_key = record.public_key.clone();
        self.keys.wanted.send_replace((keypair, record));
        let switched = tokio::time::timeout(limit, async {
            while self.keys.record().public_key != public_key {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        Ok(switched.is_ok())
    }
}

/// Whether the state publishes `record` (the signature may differ: ECDSA
/// signatures are randomised, and any valid one will do).
fn published(control: &ControlPlane, record: &TunnelKey) -> bool {
    control.with_state(|s| {
        s.tunnel_keys.get(&record.node).is_some_and(|k| {
            k.public_key == record.public_key
                && k.port == record.port
                && k.cert_pem == record.cert_pem
        })
    })
}

/// Keeps this node's wanted key published, and switches the tunnel to it
/// once this node has applied its record. Runs until the tunnel stops.
async fn publish(control: Arc<ControlPlane>, keys: Arc<TunnelKeys>) {
    let mut wanted = keys.wanted.subscribe();
    loop {
        let (keypair, record) = wanted.borrow_and_update().clone();
        if published(&control, &record) {
            if keys.record().public_key != record.public_key {
                keys.switch(keypair, record.clone());
                tracing::info!(public_key = %record.public_key, "the tunnel uses its renewed key");
            }
            if wanted.changed().await.is_err() {
                return;
            }
            continue;
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
