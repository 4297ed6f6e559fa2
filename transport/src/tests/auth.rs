//! Who may call: certificates from the cluster CA, for the node id expected.

use bytes::Bytes;

use super::{anonymous_client, client_endpoint, config, identity, node, node_with};
use crate::identity::node_dns_name;
use crate::tls::ALPN_RPC;
use crate::{client, frame, ClusterCa, Endpoint, NodeIdentity, TransportError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_from_another_ca_is_refused() {
    let ca = ClusterCa::generate("ours").expect("ca");
    let other = ClusterCa::generate("theirs").expect("other ca");
    let two = node(&ca, 2);

    // Trusts our CA for the server, but presents a certificate from another CA.
    let rogue = Endpoint::bind(
        "127.0.0.1:0".parse().expect("addr"),
        identity(&other, 1),
        &ca.certificate(),
        config(),
    )
    .expect("bind");
    let err = rogue
        .call(2, two.addr, Bytes::from_static(b"let me in"))
        .await
        .expect_err("foreign client certificate");
    assert!(
        matches!(
            err,
            TransportError::Refused { .. } | TransportError::ConnectionLost { .. }
        ),
        "{err}"
    );

    // A foreign leaf with our CA certificate appended does not chain either.
    let foreign = identity(&other, 1);
    let forged = NodeIdentity::from_parts_unchecked(
        1,
        vec![
            foreign.cert_chain()[0].clone(),
            ca.certificate().der().clone(),
        ],
        foreign.key(),
    );
    let forger = Endpoint::bind(
        "127.0.0.1:0".parse().expect("addr"),
        forged,
        &ca.certificate(),
        config(),
    )
    .expect("bind");
    forger
        .call(2, two.addr, Bytes::from_static(b"let me in"))
        .await
        .expect_err("forged chain");

    // A whole other cluster's node refuses our server before sending anything.
    let stranger = node(&other, 1);
    let err = stranger
        .endpoint
        .call(2, two.addr, Bytes::from_static(b"hello?"))
        .await
        .expect_err("server of another CA");
    assert!(matches!(err, TransportError::Refused { .. }), "{err}");

    assert_eq!(two.handler.calls(), 0, "the handler must never run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_with_another_node_id_is_refused() {
    let ca = ClusterCa::generate("test").expect("ca");
    let one = node(&ca, 1);
    let three = node(&ca, 3);

    // Node 1 believes node 2 lives at node 3's address.
    let err = one
        .endpoint
        .call(2, three.addr, Bytes::from_static(b"for node 2 only"))
        .await
        .expect_err("wrong node");
    assert!(matches!(err, TransportError::Refused { .. }), "{err}");
    assert_eq!(three.handler.calls(), 0);

    // Asked for by its own id, node 3 is reachable.
    let reply = one
        .endpoint
        .call(3, three.addr, Bytes::from_static(b"hi"))
        .await
        .expect("right node");
    assert_eq!(reply, Bytes::from_static(b"3 from 1: hi"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rpc_protocol_without_a_client_certificate_cannot_call() {
    let ca = ClusterCa::generate("test").expect("ca");
    let two = node(&ca, 2);
    let raw = client_endpoint();
    let connecting = raw
        .connect_with(
            anonymous_client(&ca.certificate(), ALPN_RPC),
            two.addr,
            &node_dns_name(2),
        )
        .expect("connect");
    // TLS 1.3 lets the client finish its handshake before the server judges
    // it, so the refusal may arrive at the handshake or at the call.
    let result = match connecting.await {
        Err(e) => Err(TransportError::from_connection(two.addr, e)),
        Ok(conn) => match conn.open_bi().await {
            Err(e) => Err(TransportError::from_connection(two.addr, e)),
            Ok(stream) => {
                client::single(
                    two.addr,
                    stream,
                    frame::KIND_CALL,
                    Bytes::from_static(b"anonymous"),
                    1024,
                )
                .await
            }
        },
    };
    let err = result.expect_err("anonymous call");
    assert!(matches!(err, TransportError::Refused { .. }), "{err}");
    assert_eq!(two.handler.calls(), 0);

    // Authenticated nodes are still served.
    let one = node_with(identity(&ca, 1), &ca.certificate(), config());
    one.endpoint
        .call(2, two.addr, Bytes::from_static(b"ok"))
        .await
        .expect("authenticated call");
    assert_eq!(two.handler.calls(), 1);
}
