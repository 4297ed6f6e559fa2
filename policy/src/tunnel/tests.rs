use std::net::IpAddr;

use proptest::prelude::*;

use super::*;
use crate::fixtures::{name, node, sample};
use crate::{Command, Endpoint};

fn key(node: u64) -> TunnelKey {
    TunnelKey {
        node: NodeId(node),
        public_key: "ab".repeat(32),
        port: 7500,
        cert_pem: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into(),
        signature: "3045".into(),
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test address")
}

#[test]
fn a_published_key_is_stored_without_changing_the_policy_revision() {
    let mut state = sample();
    let revision = state.policy_revision;
    Command::PublishTunnelKey(key(1))
        .apply(&mut state)
        .expect("a well-formed key of a member");
    assert_eq!(state.tunnel_keys.get(&NodeId(1)), Some(&key(1)));
    assert_eq!(state.policy_revision, revision);
}

#[test]
fn a_malformed_key_is_refused_naming_the_field_and_the_state_is_unchanged() {
    type Spoil = fn(&mut TunnelKey);
    let cases: [(&str, Spoil); 6] = [
        ("node", |k| k.node = NodeId(9)),
        ("public_key", |k| {
            k.public_key.pop();
        }),
        ("public_key", |k| k.public_key = "zz".repeat(32)),
        ("port", |k| k.port = 0),
        ("cert_pem", |k| k.cert_pem = "not a certificate".into()),
        ("signature", |k| k.signature = "abc".into()),
    ];
    for (field, spoil) in cases {
        let mut state = sample();
        let before = state.clone();
        let mut bad = key(1);
        spoil(&mut bad);
        let err = Command::PublishTunnelKey(bad)
            .apply(&mut state)
            .expect_err("a malformed key");
        assert_eq!(err.field, field, "{err}");
        assert_eq!(state, before);
    }
}

#[test]
fn removing_a_node_forgets_its_key() {
    let mut state = sample();
    Command::PublishTunnelKey(key(1))
        .apply(&mut state)
        .expect("publish");
    Command::RemoveNode { id: NodeId(1) }
        .apply(&mut state)
        .expect("remove the node");
    assert!(state.tunnel_keys.is_empty());
}

#[test]
fn the_destination_is_the_endpoints_node_else_the_node_with_that_address() {
    let mut state = sample();
    Command::UpsertNode(node(2, "10.0.0.2:7400"))
        .apply(&mut state)
        .expect("second node");
    for endpoint in [
        Endpoint {
            node: NodeId(2),
            ip: ip("10.0.0.9"),
            port: Some(5432),
            identity: name("prod", "db", "main"),
        },
        Endpoint {
            node: NodeId(1),
            ip: ip("10.0.0.9"),
            port: None,
            identity: name("prod", "web", "main"),
        },
    ] {
        Command::UpsertEndpoint(endpoint)
            .apply(&mut state)
            .expect("endpoint");
    }
    assert_eq!(
        tunnel_destination(&state, ip("10.0.0.9"), 5432),
        Some(NodeId(2))
    );
    assert_eq!(
        tunnel_destination(&state, ip("10.0.0.9"), 80),
        Some(NodeId(1))
    );
    assert_eq!(
        tunnel_destination(&state, ip("10.0.0.2"), 8080),
        Some(NodeId(2))
    );
    assert_eq!(tunnel_destination(&state, ip("192.0.2.1"), 80), None);
}

#[test]
fn an_encrypted_rule_must_be_able_to_use_the_tunnel() {
    let mut state = sample();
    let mut spec = crate::fixtures::allow(
        crate::fixtures::app("prod", "web"),
        crate::fixtures::app("prod", "db"),
        &["5432"],
    );
    spec.encrypt = true;
    spec.protocol = crate::Protocol::Udp;
    let err = Command::UpsertRule { id: None, spec }
        .apply(&mut state)
        .expect_err("UDP cannot be tunnelled");
    assert_eq!(err.field, "encrypt");
}

proptest! {
    #[test]
    fn a_key_survives_the_round_trip_through_json(
        node in 1u64..1000,
        public_key in "[0-9a-f]{64}",
        port in 1u16..,
        signature in "([0-9a-f]{2}){1,72}",
    ) {
        let key = TunnelKey { node: NodeId(node), public_key, port, cert_pem: key(1).cert_pem, signature };
        let text = serde_json::to_string(&key).expect("encode");
        prop_assert_eq!(serde_json::from_str::<TunnelKey>(&text).expect("decode"), key);
    }
}
