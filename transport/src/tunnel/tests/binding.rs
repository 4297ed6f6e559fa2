//! Tunnel keys bound to node certificates.

use crate::tests::identity;
use crate::tunnel::{verify_tunnel_key, TunnelKeyError};
use crate::ClusterCa;

#[test]
fn a_nodes_key_is_stable_signed_and_checks_out_against_the_ca() {
    let ca = ClusterCa::generate("test").expect("ca");
    let node = identity(&ca, 4);
    assert_eq!(
        node.tunnel_keypair().public(),
        node.tunnel_keypair().public(),
        "derived, so the same after a restart"
    );
    let binding = node.tunnel_key_binding().expect("sign");
    assert_eq!(binding.node, 4);
    assert_eq!(&binding.public_key, node.tunnel_keypair().public());
    verify_tunnel_key(&binding, &ca.certificate()).expect("a genuine binding");
    let other = identity(&ca, 5);
    assert_ne!(
        other.tunnel_keypair().public(),
        node.tunnel_keypair().public()
    );
}

#[test]
fn a_forged_binding_is_refused_naming_what_is_wrong() {
    let ca = ClusterCa::generate("test").expect("ca");
    let genuine = identity(&ca, 4).tunnel_key_binding().expect("sign");

    let mut other_key = genuine.clone();
    other_key.public_key[0] ^= 1;
    assert!(matches!(
        verify_tunnel_key(&other_key, &ca.certificate()),
        Err(TunnelKeyError::BadSignature)
    ));

    let mut other_node = genuine.clone();
    other_node.node = 5;
    assert!(matches!(
        verify_tunnel_key(&other_node, &ca.certificate()),
        Err(TunnelKeyError::WrongNode {
            expected: 5,
            found: Some(4)
        })
    ));

    let rogue_ca = ClusterCa::generate("rogue").expect("rogue ca");
    let rogue = identity(&rogue_ca, 4).tunnel_key_binding().expect("sign");
    assert!(matches!(
        verify_tunnel_key(&rogue, &ca.certificate()),
        Err(TunnelKeyError::Certificate(_))
    ));

    let mut garbled = genuine;
    garbled.cert_pem = "not a certificate".into();
    assert!(matches!(
        verify_tunnel_key(&garbled, &ca.certificate()),
        Err(TunnelKeyError::Certificate(_))
    ));
}
