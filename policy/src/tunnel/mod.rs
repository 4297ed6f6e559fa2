//! The Noise tunnel as the cluster state knows it: each node's published
//! static key, and which node a tunnelled connection must reach.
//!
//! A [`TunnelKey`] is bound to its node's certificate by a signature the
//! state cannot check (this crate does no cryptography): nodes verify it
//! against the cluster CA before they trust it. What the state checks is
//! the form of the record, so a bad one is refused with the field at fault.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::ids::NodeId;
use crate::state::ClusterState;
use crate::EndpointKey;

#[cfg(test)]
mod tests;

/// A node's Noise static public key, published through Raft.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TunnelKey {
    /// The node whose key it is.
    pub node: NodeId,
    /// The X25519 public key, 64 hex digits.
    pub public_key: String,
    /// The TCP port the node's tunnel listens on, at its address's IP.
    pub port: u16,
    /// The node's certificate (PEM), which signed the key.
    pub cert_pem: String,
    /// The certificate key's signature over the node id and the public key
    /// (DER, hex).
    pub signature: String,
}

/// Length in hex digits of an X25519 public key.
pub const TUNNEL_PUBLIC_KEY_HEX_LEN: usize = 64;
/// The longest certificate accepted in a [`TunnelKey`].
pub const MAX_TUNNEL_CERT_LEN: usize = 8 * 1024;
/// The longest signature accepted, in hex digits (an ECDSA P-256 DER
/// signature is at most 72 bytes).
pub const MAX_TUNNEL_SIGNATURE_HEX_LEN: usize = 2 * 256;

/// The node a connection to `ip:port` must be tunnelled to: the node of the
/// endpoint published at that address and port, else of the endpoint that
/// owns the whole address, else the node whose own address it is.
pub fn tunnel_destination(state: &ClusterState, ip: IpAddr, port: u16) -> Option<NodeId> {
    let endpoint = |port| {
        state
            .endpoints
            .get(&EndpointKey { ip, port })
            .map(|e| e.node)
    };
    endpoint(Some(port)).or_else(|| endpoint(None)).or_else(|| {
        state
            .nodes
            .values()
            .find(|n| n.address.ip() == ip)
            .map(|n| n.id)
    })
}
