//! A renewed certificate replaces the old one for new connections while
//! the connections already open go on.

use bytes::Bytes;

use super::{config, identity, node, node_with};
use crate::{tls, ClusterCa};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_identity_serves_new_connections_and_keeps_the_open_ones() {
    let ca = ClusterCa::generate("test").expect("ca");
    let one = node(&ca, 1);
    let old = identity(&ca, 2);
    let two = node_with(old.clone(), &ca.certificate(), config());
    one.endpoint
        .call(2, two.addr, Bytes::from_static(b"before"))
        .await
        .expect("call before the renewal");

    let renewed = identity(&ca, 2);
    assert_ne!(renewed.cert_chain()[0], old.cert_chain()[0]);
    two.endpoint.set_identity(&renewed).expect("renew");

    // The open connection is untouched: it still works and still shows the
    // certificate it was made with.
    let reply = one
        .endpoint
        .call(2, two.addr, Bytes::from_static(b"after"))
        .await
        .expect("call on the open connection");
    assert_eq!(reply, Bytes::from_static(b"2 from 1: after"));
    let chain = one.endpoint.peer_chain(2).await.expect("cached connection");
    assert_eq!(
        chain[0],
        old.cert_chain()[0],
        "the open connection kept its certificate"
    );

    // A new connection to node 2 meets the new certificate.
    let three = node(&ca, 3);
    three
        .endpoint
        .call(2, two.addr, Bytes::from_static(b"fresh"))
        .await
        .expect("call on a new connection");
    let chain = three
        .endpoint
        .peer_chain(2)
        .await
        .expect("cached connection");
    assert_eq!(
        chain[0],
        renewed.cert_chain()[0],
        "a new connection meets the new certificate"
    );

    // Node 2's new outgoing connections present the new certificate too.
    let four = identity(&ca, 4);
    let server = tls::quic_server(
        tls::server_config(&four, &ca.certificate()).expect("server tls"),
        tls::transport(std::time::Duration::from_secs(30)).expect("transport"),
    )
    .expect("server");
    let listener =
        tls::quic_endpoint("127.0.0.1:0".parse().expect("addr"), Some(server), None).expect("bind");
    let addr = listener.local_addr().expect("addr");
    let caller = two.endpoint.clone();
    let call = tokio::spawn(async move { caller.call(4, addr, Bytes::from_static(b"hi")).await });
    let incoming = listener.accept().await.expect("a connection");
    let conn = incoming.await.expect("handshake");
    let chain = conn
        .peer_identity()
        .expect("a client certificate")
        .downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
        .expect("rustls chain");
    assert_eq!(
        chain[0],
        renewed.cert_chain()[0],
        "node 2 presents its new certificate"
    );
    call.abort();
    listener.close(0u32.into(), b"done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_for_another_node_is_refused_and_changes_nothing() {
    let ca = ClusterCa::generate("test").expect("ca");
    let one = node(&ca, 1);
    let two = node(&ca, 2);
    let err = two
        .endpoint
        .set_identity(&identity(&ca, 5))
        .expect_err("another node's certificate");
    assert!(err.to_string().contains("node 5"), "{err}");
    let three = node(&ca, 3);
    three
        .endpoint
        .call(2, two.addr, Bytes::from_static(b"still node 2"))
        .await
        .expect("node 2 still answers as node 2");
    one.endpoint
        .call(2, two.addr, Bytes::from_static(b"x"))
        .await
        .expect("call");
}
