//! Tests of the transport against real endpoints on 127.0.0.1, with shared
//! helpers: a cluster CA, node identities made the way `stockade join` makes
//! them (key and CSR on the node, signature by the CA), and a handler that
//! counts what reached it.

mod auth;
mod frames;
mod join;
mod pki;
mod renew;
mod rpc;
mod streaming;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::{
    CaCertificate, ClusterCa, Endpoint, NodeId, NodeIdentity, NodeKey, RemoteError, RpcHandler,
    StreamBody, TransportConfig,
};

/// Generous limits: the tests must pass on a loaded 2-core machine.
pub(crate) fn config() -> TransportConfig {
    TransportConfig {
        call_timeout: Duration::from_secs(60),
        ..TransportConfig::default()
    }
}

/// A node identity issued by `ca`, the way a joining node gets one.
pub(crate) fn identity(ca: &ClusterCa, node_id: NodeId) -> NodeIdentity {
    let key = NodeKey::generate().expect("key");
    let csr = key.csr_pem(node_id).expect("csr");
    let cert = ca.sign_node_csr(&csr, node_id).expect("sign");
    NodeIdentity::from_pem(&cert, &key.key_pem(), &ca.certificate()).expect("identity")
}

/// What reached a node's handler.
#[derive(Default)]
pub(crate) struct Counting {
    node_id: NodeId,
    pub(crate) calls: AtomicUsize,
    pub(crate) streams: AtomicUsize,
    pub(crate) joins: AtomicUsize,
    pub(crate) queries: AtomicUsize,
}

impl Counting {
    pub(crate) fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
    pub(crate) fn streams(&self) -> usize {
        self.streams.load(Ordering::SeqCst)
    }
    pub(crate) fn joins(&self) -> usize {
        self.joins.load(Ordering::SeqCst)
    }
    pub(crate) fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl RpcHandler for Counting {
    /// Replies `"{this node} from {peer}: {request}"`; `fail` returns an
    /// error, `panic` panics, `big:N` replies N bytes.
    async fn call(&self, peer: NodeId, request: Bytes) -> Result<Bytes, RemoteError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let text = String::from_utf8_lossy(&request).into_owned();
        if text == "fail" {
            return Err(RemoteError("asked to fail".into()));
        }
        if text == "panic" {
            panic!("asked to panic");
        }
        if let Some(n) = text.strip_prefix("big:") {
            let n: usize = n.parse().map_err(|_| RemoteError("bad size".into()))?;
            return Ok(Bytes::from(vec![b'x'; n]));
        }
        Ok(Bytes::from(format!("{} from {peer}: {text}", self.node_id)))
    }

    /// Hashes the body chunk by chunk; replies `"{sha256} {bytes} {largest
    /// chunk} {peer} {header}"`. Header `skip` replies at once, reading nothing.
    async fn call_streaming(
        &self,
        peer: NodeId,
        header: Bytes,
        body: &mut StreamBody,
    ) -> Result<Bytes, RemoteError> {
        self.streams.fetch_add(1, Ordering::SeqCst);
        if header.as_ref() == b"skip" {
            return Ok(Bytes::from_static(b"skipped"));
        }
        let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
        let mut largest = 0;
        while let Some(chunk) = body.next_chunk().await? {
            largest = largest.max(chunk.len());
            hash.update(&chunk);
        }
        Ok(Bytes::from(format!(
            "{} {} {largest} {peer} {}",
            hex::encode(hash.finish()),
            body.received(),
            String::from_utf8_lossy(&header)
        )))
    }

    /// Replies `"{this node} answers {peer}: {request}"`.
    async fn query(&self, peer: NodeId, request: Bytes) -> Result<Bytes, RemoteError> {
        self.queries.fetch_add(1, Ordering::SeqCst);
        Ok(Bytes::from(format!(
            "{} answers {peer}: {}",
            self.node_id,
            String::from_utf8_lossy(&request)
        )))
    }

    /// Replies `"welcome: {request}"`.
    async fn join(&self, request: Bytes) -> Result<Bytes, RemoteError> {
        self.joins.fetch_add(1, Ordering::SeqCst);
        Ok(Bytes::from(format!(
            "welcome: {}",
            String::from_utf8_lossy(&request)
        )))
    }
}

/// A serving node on 127.0.0.1.
pub(crate) struct Node {
    pub(crate) endpoint: Endpoint,
    pub(crate) addr: SocketAddr,
    pub(crate) handler: Arc<Counting>,
}

/// Binds and serves a node with `identity` on a free port, trusting `ca`.
pub(crate) fn node_with(identity: NodeIdentity, ca: &CaCertificate, cfg: TransportConfig) -> Node {
    let endpoint =
        Endpoint::bind("127.0.0.1:0".parse().expect("addr"), identity, ca, cfg).expect("bind");
    serve(endpoint)
}

/// Serves `endpoint` with a fresh counting handler.
pub(crate) fn serve(endpoint: Endpoint) -> Node {
    let node_id = endpoint.node_id();
    let addr = endpoint.local_addr().expect("local addr");
    let handler = Arc::new(Counting {
        node_id,
        ..Counting::default()
    });
    endpoint.serve(handler.clone());
    Node {
        endpoint,
        addr,
        handler,
    }
}

/// A serving node of `ca`'s cluster.
pub(crate) fn node(ca: &ClusterCa, node_id: NodeId) -> Node {
    node_with(identity(ca, node_id), &ca.certificate(), config())
}

/// A client config without a certificate, trusting `ca`, for `alpn`: what an
/// attacker without credentials, or a raw test client, can build.
pub(crate) fn anonymous_client(ca: &CaCertificate, alpn: &[u8]) -> quinn::ClientConfig {
    let mut tls = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("tls13")
        .with_root_certificates(crate::tls::roots(ca).expect("roots"))
        .with_no_client_auth();
    tls.alpn_protocols = vec![alpn.to_vec()];
    crate::tls::quic_client(
        tls,
        crate::tls::transport(Duration::from_secs(30)).expect("t"),
    )
    .expect("client config")
}

/// A bare client endpoint on 127.0.0.1.
pub(crate) fn client_endpoint() -> quinn::Endpoint {
    crate::tls::quic_endpoint("127.0.0.1:0".parse().expect("addr"), None, None)
        .expect("client endpoint")
}
