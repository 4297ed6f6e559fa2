//! Node-to-node transport of Stockade.
//!
//! This crate owns the QUIC endpoints (quinn + rustls, mutual TLS from the
//! cluster CA) that carry Raft RPCs and writes forwarded to the leader, and the
//! cluster's PKI: the CA, node keys and the certificates that name node ids.
//! It knows nothing of policy: it moves authenticated frames between nodes
//! whose certificates name their node ids.
//!
//! - PKI: [`ClusterCa`] (made by `stockade init`), [`NodeKey`] and CSRs
//!   (made on the joining node, so keys never travel), node certificates that
//!   carry the id as the DNS name `n{id}.node.stockade`.
//! - [`Endpoint`]: one UDP port per node, serving and calling. Every call is
//!   one bidirectional stream on a cached connection per peer; the peer id a
//!   handler sees comes from the verified certificate, never from the payload.
//! - [`join_call`]: how a node without a certificate reaches a member, on its
//!   own ALPN, trusting the server by the CA fingerprint of its join token.
//!
//! - [`tunnel`]: the Noise (snow) tunnel that carries workload connections
//!   between nodes, each node known by a static key its certificate signed.

mod client;
mod endpoint;
mod error;
mod frame;
mod handler;
mod identity;
mod join;
mod pki;
mod server;
mod tls;
pub mod tunnel;

#[cfg(test)]
mod tests;

pub use endpoint::{Endpoint, TransportConfig};
pub use error::TransportError;
pub use handler::{RemoteError, RpcHandler, StreamBody};
pub use identity::{
    node_dns_name, node_id_of, sha256_fingerprint, CaCertificate, CertificateInfo, NodeIdentity,
    NODE_NAME_SUFFIX,
};
pub use join::join_call;
pub use pki::{ClusterCa, NodeKey, PkiError};
pub use server::JOIN_MAX_FRAME_BYTES;
pub use tls::install_crypto_provider;

/// A node's id in the cluster, as its certificate names it.
pub type NodeId = u64;

/// Re-exported so callers need no direct dependency for request bytes.
pub use bytes::Bytes;
