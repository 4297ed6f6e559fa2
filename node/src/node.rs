//! A node's life: `init` (a new one-node cluster), `join` (a new node of an
//! existing cluster) and `start` (run from the data directory).
//!
//! The data directory holds `node.toml` (the settings the node was created
//! with), `tls/` (the CA certificate, the node's certificate and its key)
//! and `raft/` (the log, the vote and the snapshot).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context as _, Result};
use stockade_policy::{
    AccessCommand, ApiToken, CertificateAuthority, Command, Node, NodeId, Role, Secret,
};
use stockade_raft::{NodeAddr, RaftSettings, StockadeRaft};
use stockade_transport::{
    install_crypto_provider, join_call, ClusterCa, Endpoint, NodeKey, TransportConfig,
};

use crate::certs::{load_identity, tls_path, Renewer, CA_FILE, CERT_FILE, KEY_FILE, TLS_DIR};
use crate::cluster::{ControlPlane, JoinReply, JoinRequest, NodeRpcHandler};
use crate::config::{NodeArgs, NodeConfig};
use crate::tokens::{ApiTokenText, JoinTokenText};
use crate::tunnel::TunnelIdentity;

const NODE_FILE: &str = "node.toml";

/// The settings `start` runs with: the data directory's `node.toml` unless
/// `--config` names another file, overridden by flags and environment.
pub fn start_config(args: &NodeArgs) -> Result<NodeConfig> {
    let mut args = args.clone();
    if args.config.is_none() {
        let data_dir = args
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("/var/lib/stockade"));
        let saved = data_dir.join(NODE_FILE);
        if !saved.exists() {
            bail!(
                "{} has no {NODE_FILE}: run `stockade init` or `stockade join` first",
                data_dir.display()
            );
        }
        args.config = Some(saved);
    }
    args.resolve()
}

fn tls(config: &NodeConfig, file: &str) -> PathBuf {
    tls_path(&config.data_dir, file)
}

/// Creates the data directory of a new node; refuses one that is in use.
fn create_data_dir(config: &NodeConfig) -> Result<()> {
    if config.data_dir.join(NODE_FILE).exists() {
        bail!(
            "{} already holds a node; start it with `stockade start --data-dir {}`",
            config.data_dir.display(),
            config.data_dir.display()
        );
    }
    fs::create_dir_all(config.data_dir.join(TLS_DIR))
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    // The state holds the CA key: only root may read the data directory.
    fs::set_permissions(&config.data_dir, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("restricting {}", config.data_dir.display()))?;
    Ok(())
}

fn write_private(path: &Path, contents: &str) -> Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// Writes the node's files; `node.toml` last, so a directory that has it is
/// complete.
fn save_node(config: &NodeConfig, ca_pem: &str, cert_pem: &str, key_pem: &str) -> Result<()> {
    write_private(&tls(config, CA_FILE), ca_pem)?;
    write_private(&tls(config, CERT_FILE), cert_pem)?;
    write_private(&tls(config, KEY_FILE), key_pem)?;
    let text = config.to_toml().context("writing node.toml")?;
    write_private(&config.data_dir.join(NODE_FILE), &text)
}

/// A running node's control plane, before the API is served.
struct Running {
    control: Arc<ControlPlane>,
    endpoint: Endpoint,
    /// The node's tunnel key and the CA, until the tunnel takes them.
    tunnel: Option<TunnelIdentity>,
}

/// Binds the endpoint, starts Raft and serves node-to-node calls.
async fn run_control_plane(config: &NodeConfig) -> Result<Running> {
    install_crypto_provider();
    let (ca, identity) = load_identity(&config.data_dir)?;
    crate::logging::set_node_id(identity.node_id());
    let tunnel = TunnelIdentity {
        keypair: identity.tunnel_keypair(),
        binding: identity
            .tunnel_key_binding()
            .context("signing the tunnel key with the node key")?,
        ca: ca.clone(),
    };
    let endpoint = Endpoint::bind(
        config.listen,
        identity.clone(),
        &ca,
        TransportConfig::default(),
    )
    .with_context(|| format!("binding QUIC on {}", config.listen))?;
    let renewer = Arc::new(Renewer::new(
        config.data_dir.clone(),
        endpoint.clone(),
        ca.clone(),
        &identity,
    ));
    let settings = RaftSettings {
        snapshot_every: config.snapshot_every,
        ..RaftSettings::default()
    };
    let raft = StockadeRaft::start(&config.data_dir, settings, endpoint.clone())
        .await
        .context("starting Raft")?;
    let control = Arc::new(ControlPlane::new(
        config.name.clone(),
        raft,
        endpoint.clone(),
        ca.fingerprint(),
    ));
    control.set_certs(renewer);
    endpoint.serve(Arc::new(NodeRpcHandler::new(Arc::clone(&control))));
    Ok(Running {
        control,
        endpoint,
        tunnel: Some(tunnel),
    })
}

impl Running {
    async fn stop(self) {
        self.control.raft().shutdown().await;
        self.endpoint.close().await;
    }
}

/// `stockade init`: a new CA, this node as node 1 of a one-node cluster, and
/// the first admin token, printed once.
pub async fn init(config: &NodeConfig) -> Result<()> {
    install_crypto_provider();
    create_data_dir(config)?;
    let ca = ClusterCa::generate("stockade").context("creating the cluster CA")?;
    let key = NodeKey::generate().context("creating the node key")?;
    let cert = ca
        .sign_node_csr(&key.csr_pem(1)?, 1)
        .context("signing the node certificate")?;
    save_node(config, &ca.cert_pem(), &cert, &key.key_pem())?;

    let running = run_control_plane(config).await?;
    let raft = running.control.raft();
    raft.initialize(NodeAddr::new(config.advertise.to_string()))
        .await
        .context("initialising the cluster")?;
    let token = ApiTokenText::generate();
    let setup = Command::batch(vec![
        Command::Access(AccessCommand::SetCertificateAuthority(
            CertificateAuthority {
                cert_pem: ca.cert_pem(),
                key_pem: Secret(ca.key_pem()),
            },
        )),
        Command::UpsertNode(Node {
            id: NodeId(1),
            name: config.name.clone(),
            address: config.advertise,
            labels: BTreeMap::new(),
        }),
        Command::Access(AccessCommand::CreateApiToken(ApiToken {
            id: token.id.clone(),
            name: "created by stockade init".into(),
            role: Role::Admin,
            secret_sha256: token.secret_digest(),
            expires_at_ms: None,
        })),
    ]);
    let written = running.control.write(setup).await;
    running.stop().await;
    written.context("recording the cluster's CA, first node and admin token")?;
    println!(
        "Initialised a one-node Stockade cluster in {}.",
        config.data_dir.display()
    );
    println!("CA fingerprint: {}", ca.fingerprint());
    println!("Admin API token (shown once, keep it safe):\n{token}");
    println!(
        "Start the node with: stockade start --data-dir {}",
        config.data_dir.display()
    );
    Ok(())
}

/// `stockade join --token T ADDR`: proves the token to a member, receives a
/// certificate, then runs as a new member.
pub async fn join(
    config: &NodeConfig,
    token: &JoinTokenText,
    member: std::net::SocketAddr,
) -> Result<()> {
    install_crypto_provider();
    create_data_dir(config)?;
    let key = NodeKey::generate().context("creating the node key")?;
    let request = JoinRequest {
        token_id: token.id.clone(),
        token_secret: token.secret().to_owned(),
        name: config.name.clone(),
        advertise: config.advertise,
        csr_pem: key.csr_pem(0)?,
    };
    let body = serde_json::to_vec(&request).context("encoding the join request")?;
    let (reply, ca_pem) = join_call(
        member,
        &token.ca_fingerprint,
        body.into(),
        &TransportConfig::default(),
    )
    .await
    .with_context(|| format!("joining through {member}"))?;
    let reply: JoinReply = serde_json::from_slice(&reply).context("reading the join reply")?;
    save_node(config, &ca_pem, &reply.cert_pem, &key.key_pem())?;
    println!("Joined the cluster as node {}.", reply.node_id);
    run(config).await
}

/// `stockade start`: runs the node until SIGINT or SIGTERM.
pub async fn run(config: &NodeConfig) -> Result<()> {
    let mut running = run_control_plane(config).await?;
    tokio::spawn(Arc::clone(&running.control).reconcile_voters());
    let raiser = crate::alerts::start(Arc::clone(&running.control));
    if let Some(backup) = config.backup.clone() {
        tokio::spawn(crate::backups::run(Arc::clone(&running.control), backup));
    }
    // Before the API socket is bound, so the kernel knows who owns it.
    let reconciler = match &config.dataplane {
        Some(dataplane) => Some(crate::dataplane::reconcile::start(
            Arc::clone(&running.control),
            dataplane,
            &config.data_dir,
            config.advertise,
            raiser,
            config.tunnel.map(|t| t.local_port),
        )?),
        None => None,
    };
    let tunnel = match (&config.dataplane, config.tunnel, running.tunnel.take()) {
        (Some(dataplane), Some(tunnel), Some(identity)) => Some(
            crate::tunnel::start(
                Arc::clone(&running.control),
                tunnel,
                config.listen.ip(),
                &dataplane.pin_dir,
                identity,
            )
            .await?,
        ),
        _ => None,
    };
    let listener = tokio::net::TcpListener::bind(config.api_listen)
        .await
        .with_context(|| format!("binding the admin API on {}", config.api_listen))?;
    tracing::info!(
        name = %config.name,
        quic = %config.listen,
        advertise = %config.advertise,
        api = %config.api_listen,
        "node running"
    );
    let app = crate::api::router(Arc::clone(&running.control));
    // With connection info: the audit log records each client's address.
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving the admin API")?;
    if let Some(tunnel) = tunnel {
        tunnel.stop();
    }
    if let Some(reconciler) = reconciler {
        reconciler.stop().await;
    }
    running.stop().await;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM; stopping on Ctrl-C only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    tracing::info!("stopping");
}
