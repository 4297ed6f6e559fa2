//! The other nodes' tunnels as this node trusts them: each published key
//! checked against the cluster CA once, then looked up by node (to connect)
//! or by key (to name who connected).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Mutex;

use stockade_policy::{ClusterState, NodeId, TunnelKey};
use stockade_transport::tunnel::{verify_tunnel_key, TunnelKeyBinding};
use stockade_transport::CaCertificate;

/// Where a peer's tunnel is and the key it must prove.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Its Noise static public key.
    pub key: [u8; 32],
    /// Its tunnel's address: the node's address with the published port.
    pub address: SocketAddr,
}

/// The verified keys of the state's member nodes, refreshed when the
/// state's keys change.
pub struct Directory {
    ca: CaCertificate,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    /// The records the cache was built from.
    published: BTreeMap<NodeId, TunnelKey>,
    /// The addresses it was built with.
    addresses: BTreeMap<NodeId, SocketAddr>,
    peers: BTreeMap<NodeId, Peer>,
    by_key: HashMap<[u8; 32], NodeId>,
}

/// The binding a published record stands for, if it decodes.
pub fn binding(key: &TunnelKey) -> Option<TunnelKeyBinding> {
    Some(TunnelKeyBinding {
        node: key.node.0,
        public_key: hex::decode(&key.public_key).ok()?.try_into().ok()?,
        cert_pem: key.cert_pem.clone(),
        signature: hex::decode(&key.signature).ok()?,
    })
}

/// The record that publishes `binding` with the tunnel's `port`.
pub fn record(binding: &TunnelKeyBinding, port: u16) -> TunnelKey {
    TunnelKey {
        node: NodeId(binding.node),
        public_key: hex::encode(binding.public_key),
        port,
        cert_pem: binding.cert_pem.clone(),
        signature: hex::encode(&binding.signature),
    }
}

impl Directory {
    /// A directory that trusts keys signed under `ca`.
    pub fn new(ca: CaCertificate) -> Self {
        Directory {
            ca,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// The peer `node`, if it published a key that checks out.
    pub fn peer(&self, state: &ClusterState, node: NodeId) -> Option<Peer> {
        self.refreshed(state, |cache| cache.peers.get(&node).copied())
    }

    /// The member node that holds `key`, if any.
    pub fn node_of(&self, state: &ClusterState, key: &[u8; 32]) -> Option<NodeId> {
        self.refreshed(state, |cache| cache.by_key.get(key).copied())
    }

    fn refreshed<R>(&self, state: &ClusterState, f: impl FnOnce(&Cache) -> R) -> R {
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let addresses: BTreeMap<NodeId, SocketAddr> =
            state.nodes.values().map(|n| (n.id, n.address)).collect();
        if cache.published != state.tunnel_keys || cache.addresses != addresses {
            *cache = self.build(state, addresses);
        }
        f(&cache)
    }

    fn build(&self, state: &ClusterState, addresses: BTreeMap<NodeId, SocketAddr>) -> Cache {
        let mut cache = Cache {
            published: state.tunnel_keys.clone(),
            ..Cache::default()
        };
        for (node, published) in &state.tunnel_keys {
            let Some(address) = addresses.get(node) else {
                continue;
            };
            let checked = binding(published)
                .ok_or_else(|| "the record does not decode".to_string())
                .and_then(|b| {
                    verify_tunnel_key(&b, &self.ca)
                        .map(|()| b)
                        .map_err(|e| e.to_string())
                });
            match checked {
                Ok(b) => {
                    cache.by_key.insert(b.public_key, *node);
                    cache.peers.insert(
                        *node,
                        Peer {
                            key: b.public_key,
                            address: SocketAddr::new(address.ip(), published.port),
                        },
                    );
                }
                Err(reason) => {
                    tracing::warn!(%node, %reason, "ignoring a tunnel key that does not check out");
                }
            }
        }
        cache.addresses = addresses;
        cache
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_gives_back_the_binding_it_publishes_and_garbage_gives_none() {
        let published = TunnelKeyBinding {
            node: 3,
            public_key: [0xab; 32],
            cert_pem: "-----BEGIN CERTIFICATE-----\n".into(),
            signature: vec![0x30, 0x45, 0x02],
        };
        let key = record(&published, 7401);
        assert_eq!(key.port, 7401);
        assert_eq!(binding(&key), Some(published));
        let short = TunnelKey {
            public_key: "ab".repeat(31),
            ..key.clone()
        };
        assert_eq!(binding(&short), None, "31 bytes are not a key");
        let odd = TunnelKey {
            signature: "abc".into(),
            ..key
        };
        assert_eq!(binding(&odd), None, "odd hex");
    }
}
