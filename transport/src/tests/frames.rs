//! Hostile or broken frames: each closes its own stream with an error code;
//! the connection and the next calls go on.

use bytes::Bytes;
use quinn::{RecvStream, SendStream};

use super::{config, identity, node, node_with, Node};
use crate::frame::{self, code};
use crate::{client, ClusterCa, TransportConfig, TransportError};

/// Writes `bytes` raw on a fresh stream from `from` to node 2, optionally
/// finishing, and returns how the server answered.
async fn raw_call(from: &Node, to: &Node, bytes: &[u8], finish: bool) -> TransportError {
    let (mut send, mut recv): (SendStream, RecvStream) =
        from.endpoint.open(2, to.addr).await.expect("stream");
    send.write_all(bytes).await.expect("write");
    if finish {
        send.finish().expect("finish");
    }
    let err = client::read_reply(to.addr, &mut recv, 1 << 20)
        .await
        .expect_err("a broken request has no reply");
    // The server also stopped reading: further writes fail.
    if !finish {
        let _ = send.write_all(&[0; 16]).await;
    }
    err
}

fn assert_code(err: &TransportError, expected: u64) {
    assert!(
        matches!(err, TransportError::Rejected { code } if *code == expected),
        "expected code {expected}, got {err}"
    );
}

/// A well-formed call still works, on the same single connection.
async fn assert_still_serving(from: &Node, to: &Node) {
    let reply = from
        .endpoint
        .call(2, to.addr, Bytes::from_static(b"next"))
        .await
        .expect("the next call");
    assert_eq!(reply, Bytes::from_static(b"2 from 1: next"));
    assert_eq!(from.endpoint.open_connections(), 1);
}

fn call_frame(len: u32, payload: &[u8]) -> Vec<u8> {
    let mut bytes = vec![frame::KIND_CALL];
    bytes.extend_from_slice(&len.to_be_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_frame_closes_its_stream_and_the_server_keeps_serving() {
    let ca = ClusterCa::generate("test").expect("ca");
    let one = node(&ca, 1);
    let two = node(&ca, 2);
    assert_still_serving(&one, &two).await;

    // 4 GiB announced, nothing sent: the server must refuse without allocating.
    let err = raw_call(&one, &two, &call_frame(u32::MAX, b""), false).await;
    assert_code(&err, code::FRAME_TOO_LARGE);
    assert_still_serving(&one, &two).await;
    assert_eq!(two.handler.calls(), 2, "only the well-formed calls ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_frame_limit_is_exact() {
    let ca = ClusterCa::generate("test").expect("ca");
    let cfg = TransportConfig {
        max_frame_bytes: 1024,
        ..config()
    };
    let one = node_with(identity(&ca, 1), &ca.certificate(), cfg.clone());
    let two = node_with(identity(&ca, 2), &ca.certificate(), cfg);

    let err = raw_call(&one, &two, &call_frame(1025, &[b'a'; 1025]), true).await;
    assert_code(&err, code::FRAME_TOO_LARGE);
    // A request of exactly the limit reaches the handler (whose echo is then
    // too long to send back, which the caller learns as a remote error).
    let err = one
        .endpoint
        .call(2, two.addr, Bytes::from(vec![b'a'; 1024]))
        .await
        .expect_err("the echo exceeds the limit");
    assert!(
        matches!(&err, TransportError::Remote(m) if m.contains("exceeds")),
        "{err}"
    );
    // A reply of exactly the limit arrives.
    let reply = one
        .endpoint
        .call(2, two.addr, Bytes::from_static(b"big:1024"))
        .await
        .expect("a reply of exactly the limit");
    assert_eq!(reply.len(), 1024);
    assert_eq!(two.handler.calls(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_frames_close_their_streams_and_the_server_keeps_serving() {
    let ca = ClusterCa::generate("test").expect("ca");
    let one = node(&ca, 1);
    let two = node(&ca, 2);

    // An unknown request kind.
    let err = raw_call(&one, &two, &[0xee, 0x13, 0x37, 0x00, 0xff], true).await;
    assert_code(&err, code::MALFORMED);
    // A frame cut short by the end of the stream.
    let err = raw_call(&one, &two, &call_frame(100, b"only ten b"), true).await;
    assert_code(&err, code::MALFORMED);
    // Bytes after the one request frame.
    let mut trailing = call_frame(2, b"hi");
    trailing.extend_from_slice(b"zz");
    let err = raw_call(&one, &two, &trailing, true).await;
    assert_code(&err, code::MALFORMED);
    // A length prefix cut short.
    let err = raw_call(&one, &two, &[frame::KIND_CALL, 0, 0], true).await;
    assert_code(&err, code::MALFORMED);
    // An empty stream.
    let err = raw_call(&one, &two, &[], true).await;
    assert_code(&err, code::MALFORMED);
    // A join request on an authenticated connection.
    let mut join = vec![frame::KIND_JOIN];
    join.extend_from_slice(&call_frame(2, b"hi")[1..]);
    let err = raw_call(&one, &two, &join, true).await;
    assert_code(&err, code::NOT_ALLOWED);

    assert_still_serving(&one, &two).await;
    assert_eq!(two.handler.calls(), 1);
    assert_eq!(two.handler.joins(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_chunk_fails_the_streaming_call_only() {
    let ca = ClusterCa::generate("test").expect("ca");
    let one = node(&ca, 1);
    let two = node(&ca, 2);

    let mut bytes = vec![frame::KIND_STREAM];
    bytes.extend_from_slice(&4u32.to_be_bytes());
    bytes.extend_from_slice(b"head");
    bytes.extend_from_slice(&5u32.to_be_bytes());
    bytes.extend_from_slice(b"chunk");
    bytes.extend_from_slice(&u32::MAX.to_be_bytes());
    let err = raw_call(&one, &two, &bytes, false).await;
    assert_code(&err, code::FRAME_TOO_LARGE);
    assert_eq!(two.handler.streams(), 1, "the handler saw the body fail");
    assert_still_serving(&one, &two).await;
}
