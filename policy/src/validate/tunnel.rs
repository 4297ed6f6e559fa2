//! Checks of a node's published tunnel key. The signature that binds it to
//! the node's certificate is checked by the nodes that use it; here only
//! its form, so a malformed record is refused with the field at fault.

use super::{fail, Result};
use crate::state::ClusterState;
use crate::{
    TunnelKey, MAX_TUNNEL_CERT_LEN, MAX_TUNNEL_SIGNATURE_HEX_LEN, TUNNEL_PUBLIC_KEY_HEX_LEN,
};

pub(super) fn key(key: &TunnelKey, state: &ClusterState) -> Result {
    if !state.nodes.contains_key(&key.node) {
        return fail("node", format!("there is no node {}", key.node));
    }
    let hex = |s: &str| s.chars().all(|c| c.is_ascii_hexdigit());
    if key.public_key.len() != TUNNEL_PUBLIC_KEY_HEX_LEN || !hex(&key.public_key) {
        return fail(
            "public_key",
            format!("an X25519 public key is {TUNNEL_PUBLIC_KEY_HEX_LEN} hex digits"),
        );
    }
    if key.port == 0 {
        return fail("port", "the tunnel listens on a port other than 0");
    }
    if key.cert_pem.is_empty()
        || key.cert_pem.len() > MAX_TUNNEL_CERT_LEN
        || !key.cert_pem.contains("-----BEGIN CERTIFICATE-----")
    {
        return fail(
            "cert_pem",
            format!("one PEM certificate of at most {MAX_TUNNEL_CERT_LEN} bytes"),
        );
    }
    if key.signature.is_empty()
        || key.signature.len() > MAX_TUNNEL_SIGNATURE_HEX_LEN
        || !key.signature.len().is_multiple_of(2)
        || !hex(&key.signature)
    {
        return fail(
            "signature",
            format!("a DER signature in at most {MAX_TUNNEL_SIGNATURE_HEX_LEN} hex digits"),
        );
    }
    Ok(())
}
