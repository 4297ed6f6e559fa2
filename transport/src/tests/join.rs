//! Joining without a certificate, trusting the server by a pinned CA fingerprint.

use bytes::Bytes;

use super::{anonymous_client, client_endpoint, config, identity, node, node_with};
use crate::frame::{self, code};
use crate::identity::node_dns_name;
use crate::tls::ALPN_JOIN;
use crate::{
    client, join_call, ClusterCa, NodeIdentity, PkiError, TransportError, JOIN_MAX_FRAME_BYTES,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_with_the_right_pin_returns_the_reply_and_the_ca() {
    let ca = ClusterCa::generate("test").expect("ca");
    let two = node(&ca, 2);
    let (reply, ca_pem) = join_call(
        two.addr,
        &ca.fingerprint(),
        Bytes::from_static(b"token+csr"),
        &config(),
    )
    .await
    .expect("join");
    assert_eq!(reply, Bytes::from_static(b"welcome: token+csr"));
    assert_eq!(ca_pem, ca.cert_pem());
    assert_eq!(two.handler.joins(), 1);
    assert_eq!(two.handler.calls(), 0);

    // A pin as a person may copy it: upper case with colons.
    let typed: Vec<String> = ca
        .fingerprint()
        .to_uppercase()
        .as_bytes()
        .chunks(2)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    join_call(
        two.addr,
        &typed.join(":"),
        Bytes::from_static(b"again"),
        &config(),
    )
    .await
    .expect("join with a typed pin");
    assert_eq!(two.handler.joins(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_with_a_wrong_pin_fails_before_sending_anything() {
    let ca = ClusterCa::generate("test").expect("ca");
    let other = ClusterCa::generate("other").expect("other");
    let two = node(&ca, 2);
    let err = join_call(
        two.addr,
        &other.fingerprint(),
        Bytes::from_static(b"secret token"),
        &config(),
    )
    .await
    .expect_err("wrong pin");
    assert!(matches!(err, TransportError::PinMismatch { .. }), "{err}");
    assert_eq!(two.handler.joins(), 0);

    let err = join_call(two.addr, "abc", Bytes::new(), &config())
        .await
        .expect_err("malformed pin");
    assert!(
        matches!(err, TransportError::Pki(PkiError::BadFingerprint(_))),
        "{err}"
    );

    let err = join_call(
        two.addr,
        &ca.fingerprint(),
        Bytes::from(vec![0u8; JOIN_MAX_FRAME_BYTES + 1]),
        &config(),
    )
    .await
    .expect_err("oversized join request");
    assert!(matches!(err, TransportError::FrameTooLarge { .. }), "{err}");
    assert_eq!(two.handler.joins(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_showing_the_pinned_ca_beside_a_foreign_leaf_is_refused() {
    let ca = ClusterCa::generate("test").expect("ca");
    let other = ClusterCa::generate("impostor").expect("other");
    // The impostor sends the real CA certificate, but its leaf is not signed by it.
    let foreign = identity(&other, 2);
    let forged = NodeIdentity::from_parts_unchecked(
        2,
        vec![
            foreign.cert_chain()[0].clone(),
            ca.certificate().der().clone(),
        ],
        foreign.key(),
    );
    let impostor = node_with(forged, &other.certificate(), config());
    let err = join_call(
        impostor.addr,
        &ca.fingerprint(),
        Bytes::from_static(b"secret token"),
        &config(),
    )
    .await
    .expect_err("impostor");
    assert!(matches!(err, TransportError::PinMismatch { .. }), "{err}");
    assert_eq!(impostor.handler.joins(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_connection_may_only_join() {
    let ca = ClusterCa::generate("test").expect("ca");
    let two = node(&ca, 2);
    let raw = client_endpoint();
    let conn = raw
        .connect_with(
            anonymous_client(&ca.certificate(), ALPN_JOIN),
            two.addr,
            &node_dns_name(2),
        )
        .expect("connect")
        .await
        .expect("join handshake");
    for kind in [frame::KIND_CALL, frame::KIND_STREAM, frame::KIND_QUERY] {
        let stream = conn.open_bi().await.expect("stream");
        let err = client::single(two.addr, stream, kind, Bytes::from_static(b"sneaky"), 1024)
            .await
            .expect_err("not allowed");
        assert!(
            matches!(err, TransportError::Rejected { code } if code == code::NOT_ALLOWED),
            "{err}"
        );
    }
    // The same connection still serves joins.
    let stream = conn.open_bi().await.expect("stream");
    let reply = client::single(
        two.addr,
        stream,
        frame::KIND_JOIN,
        Bytes::from_static(b"hi"),
        1024,
    )
    .await
    .expect("join");
    assert_eq!(reply, Bytes::from_static(b"welcome: hi"));
    assert_eq!(two.handler.calls(), 0);
    assert_eq!(two.handler.streams(), 0);
    assert_eq!(two.handler.joins(), 1);
}
