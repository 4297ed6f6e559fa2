//! rustls and quinn configurations built from a node's identity and the
//! cluster CA. The ring provider is passed explicitly everywhere, so what other
//! crates in the process install as rustls' default cannot change our crypto.

use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;

use crate::identity::{CaCertificate, NodeIdentity};
use crate::TransportError;

/// ALPN of authenticated node-to-node RPC: a client certificate from the cluster CA is required.
pub(crate) const ALPN_RPC: &[u8] = b"stockade-rpc/1";
/// ALPN of join requests: no client certificate; only `join` may be called.
pub(crate) const ALPN_JOIN: &[u8] = b"stockade-join/1";

/// Concurrent calls a peer may have open on one connection; more wait for a slot.
const MAX_CONCURRENT_CALLS: u32 = 256;

/// The crypto provider the transport uses (ring: it builds without cmake).
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Installs ring as rustls' process-wide default provider, unless one is
/// installed already (then that one stays; the transport passes its own
/// provider explicitly anyway). Never panics; safe to call many times.
pub fn install_crypto_provider() {
    if CryptoProvider::get_default().is_none() {
        // Losing a race to another installer is fine: a default exists either way.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

fn config_err(e: impl std::fmt::Display) -> TransportError {
    TransportError::Config(e.to_string())
}

/// A root store holding only the cluster CA.
pub(crate) fn roots(ca: &CaCertificate) -> Result<Arc<RootCertStore>, TransportError> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.der().clone()).map_err(config_err)?;
    Ok(Arc::new(roots))
}

/// The server side: presents the node's chain; asks for a client certificate
/// chaining to the CA but lets a handshake without one through, because joiners
/// have none yet. The server then admits such a connection only on the join
/// ALPN (see `server.rs`); a certificate from another CA fails the handshake.
pub(crate) fn server_config(
    identity: &NodeIdentity,
    ca: &CaCertificate,
) -> Result<rustls::ServerConfig, TransportError> {
    let verifier = WebPkiClientVerifier::builder_with_provider(roots(ca)?, provider())
        .allow_unauthenticated()
        .build()
        .map_err(config_err)?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(config_err)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.cert_chain().to_vec(), identity.key())
        .map_err(config_err)?;
    config.alpn_protocols = vec![ALPN_RPC.to_vec(), ALPN_JOIN.to_vec()];
    Ok(config)
}

/// The client side of node-to-node RPC: presents the node's chain and checks
/// the server against the CA under the name of the node id it meant to reach.
pub(crate) fn client_config(
    identity: &NodeIdentity,
    ca: &CaCertificate,
) -> Result<rustls::ClientConfig, TransportError> {
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(config_err)?
        .with_root_certificates(roots(ca)?)
        .with_client_auth_cert(identity.cert_chain().to_vec(), identity.key())
        .map_err(config_err)?;
    config.alpn_protocols = vec![ALPN_RPC.to_vec()];
    Ok(config)
}

/// QUIC transport parameters shared by both sides.
pub(crate) fn transport(
    idle_timeout: Duration,
) -> Result<Arc<quinn::TransportConfig>, TransportError> {
    let mut t = quinn::TransportConfig::default();
    let idle = quinn::IdleTimeout::try_from(idle_timeout).map_err(config_err)?;
    t.max_idle_timeout(Some(idle));
    // Keep-alives keep a quiet but healthy connection from idling out.
    t.keep_alive_interval(Some(idle_timeout / 3));
    t.max_concurrent_bidi_streams(quinn::VarInt::from_u32(MAX_CONCURRENT_CALLS));
    t.max_concurrent_uni_streams(quinn::VarInt::from_u32(0));
    Ok(Arc::new(t))
}

/// Wraps a rustls server configuration for quinn.
pub(crate) fn quic_server(
    tls: rustls::ServerConfig,
    transport: Arc<quinn::TransportConfig>,
) -> Result<quinn::ServerConfig, TransportError> {
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls).map_err(config_err)?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(transport);
    Ok(config)
}

/// Wraps a rustls client configuration for quinn.
pub(crate) fn quic_client(
    tls: rustls::ClientConfig,
    transport: Arc<quinn::TransportConfig>,
) -> Result<quinn::ClientConfig, TransportError> {
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(config_err)?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(transport);
    Ok(config)
}

/// A UDP socket bound to `addr`, wrapped in a quinn endpoint on the current
/// Tokio runtime. `reset_secret` keys its stateless resets (see
/// [`crate::NodeIdentity`]); without one, a random key is used.
pub(crate) fn quic_endpoint(
    addr: std::net::SocketAddr,
    server: Option<quinn::ServerConfig>,
    reset_secret: Option<[u8; 32]>,
) -> Result<quinn::Endpoint, TransportError> {
    // quinn registers the socket with the current runtime and would panic without one.
    tokio::runtime::Handle::try_current().map_err(|_| TransportError::NoRuntime)?;
    let socket =
        std::net::UdpSocket::bind(addr).map_err(|source| TransportError::Bind { addr, source })?;
    let config = match reset_secret {
        Some(secret) => {
            let mut config = quinn::EndpointConfig::new(Arc::new(ring::hmac::Key::new(
                ring::hmac::HMAC_SHA256,
                &secret,
            )));
            // The connection ids carry a check keyed like the resets: the
            // restarted process must recognise its predecessor's ids as
            // its own to answer them with a reset, not drop them.
            let mut cid_key = [0; 8];
            cid_key.copy_from_slice(&secret[..8]);
            let cid_key = u64::from_le_bytes(cid_key);
            config.cid_generator(move || {
                Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key))
            });
            config
        }
        None => quinn::EndpointConfig::default(),
    };
    quinn::Endpoint::new(config, server, socket, Arc::new(quinn::TokioRuntime))
        .map_err(|source| TransportError::Bind { addr, source })
}
