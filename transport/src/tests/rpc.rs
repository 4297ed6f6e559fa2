//! Calls between authenticated nodes.

use std::time::Duration;

use bytes::Bytes;

use super::{config, identity, node, node_with, serve};
use crate::{ClusterCa, Endpoint, TransportConfig, TransportError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_in_both_directions() {
    let ca = ClusterCa::generate("test").expect("ca");
    let one = node(&ca, 1);
    let two = node(&ca, 2);

    let reply = one
        .endpoint
        .call(2, two.addr, Bytes::from_static(b"ping"))
        .await
        .expect("1 -> 2");
    // The handler saw the caller's id from its certificate.
    assert_eq!(reply, Bytes::from_static(b"2 from 1: ping"));

    let reply = two
        .endpoint
        .call(1, one.addr, Bytes::from_static(b"pong"))
        .await
        .expect("2 -> 1");
    assert_eq!(reply, Bytes::from_static(b"1 from 2: pong"));
    assert_eq!(one.endpoint.node_id(), 1);
    assert_eq!(two.handler.calls(), 1);
    assert_eq!(one.handler.calls(), 1);

    // An empty request is a valid request.
    let reply = one
        .endpoint
        .call(2, two.addr, Bytes::new())
        .await
        .expect("empty");
    assert_eq!(reply, Bytes::from_static(b"2 from 1: "));

    one.endpoint.close().await;
    two.endpoint.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_reach_the_query_handler_not_the_call_handler() {
    let ca = ClusterCa::generate("test").expect("ca");
    let one = node(&ca, 1);
    let two = node(&ca, 2);
    let reply = one
        .endpoint
        .query(2, two.addr, Bytes::from_static(b"flows?"))
        .await
        .expect("1 asks 2");
    assert_eq!(reply, Bytes::from_static(b"2 answers 1: flows?"));
    assert_eq!((two.handler.queries(), two.handler.calls()), (1, 0));
    one.endpoint.close().await;
    two.endpoint.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_calls_share_one_connection() {
    let ca = ClusterCa::generate("test").expect("ca");
    let one = node(&ca, 1);
    let two = node(&ca, 2);

    let calls = (0..300).map(|i| {
        let endpoint = one.endpoint.clone();
        let addr = two.addr;
        tokio::spawn(async move {
            let reply = endpoint
                .call(2, addr, Bytes::from(format!("call {i}")))
                .await
                .expect("call");
            assert_eq!(reply, Bytes::from(format!("2 from 1: call {i}")));
        })
    });
    for call in calls.collect::<Vec<_>>() {
        call.await.expect("task");
    }
    assert_eq!(two.handler.calls(), 300);
    // Every call rode the one connection node 1 opened to node 2.
    assert_eq!(one.endpoint.open_connections(), 1);
    assert_eq!(two.endpoint.open_connections(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_errors_and_oversized_replies_reach_the_caller_as_remote_errors() {
    let ca = ClusterCa::generate("test").expect("ca");
    let cfg = TransportConfig {
        max_frame_bytes: 1024,
        ..config()
    };
    let one = node_with(identity(&ca, 1), &ca.certificate(), cfg.clone());
    let two = node_with(identity(&ca, 2), &ca.certificate(), cfg);

    let err = one
        .endpoint
        .call(2, two.addr, Bytes::from_static(b"fail"))
        .await
        .expect_err("handler failed");
    assert!(
        matches!(&err, TransportError::Remote(m) if m == "asked to fail"),
        "{err}"
    );

    // A reply over the limit becomes an error reply rather than a broken stream.
    let err = one
        .endpoint
        .call(2, two.addr, Bytes::from_static(b"big:2048"))
        .await
        .expect_err("reply too large");
    assert!(
        matches!(&err, TransportError::Remote(m) if m.contains("exceeds")),
        "{err}"
    );

    // A request over the limit is refused before anything is sent.
    let before = two.handler.calls();
    let err = one
        .endpoint
        .call(2, two.addr, Bytes::from(vec![0u8; 1025]))
        .await
        .expect_err("request too large");
    assert!(
        matches!(
            err,
            TransportError::FrameTooLarge {
                len: 1025,
                limit: 1024
            }
        ),
        "{err}"
    );
    assert_eq!(two.handler.calls(), before);

    let reply = one
        .endpoint
        .call(2, two.addr, Bytes::from_static(b"still fine"))
        .await
        .expect("call");
    assert_eq!(reply, Bytes::from_static(b"2 from 1: still fine"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_peer_is_reached_on_a_new_connection() {
    let ca = ClusterCa::generate("test").expect("ca");
    let one = node(&ca, 1);
    let two = node(&ca, 2);
    let addr = two.addr;
    one.endpoint
        .call(2, addr, Bytes::from_static(b"first"))
        .await
        .expect("first call");
    two.endpoint.close().await;
    drop(two);

    // Node 2 comes back on the same port with a fresh endpoint. The old
    // socket is released when quinn's tasks end, so binding may need a moment.
    let mut bound = None;
    for _ in 0..100 {
        match Endpoint::bind(addr, identity(&ca, 2), &ca.certificate(), config()) {
            Ok(endpoint) => {
                bound = Some(endpoint);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let again = serve(bound.expect("rebind on the old port"));
    // The cached connection is dead; a call may fail while node 1 learns that,
    // but the next ones must go through a new connection.
    let mut reached = false;
    for _ in 0..10 {
        match one
            .endpoint
            .call(2, addr, Bytes::from_static(b"again"))
            .await
        {
            Ok(reply) => {
                assert_eq!(reply, Bytes::from_static(b"2 from 1: again"));
                reached = true;
                break;
            }
            Err(e) => tracing::debug!(error = %e, "call during reconnection"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reached, "node 1 never reconnected to the restarted node 2");
    assert_eq!(again.handler.calls(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_is_a_remote_error_and_the_node_goes_on() {
    let ca = ClusterCa::generate("test").expect("ca");
    let one = node(&ca, 1);
    let two = node(&ca, 2);
    let err = one
        .endpoint
        .call(2, two.addr, Bytes::from_static(b"panic"))
        .await
        .expect_err("the handler panicked");
    assert!(
        matches!(&err, TransportError::Remote(m) if m.contains("handler failed")),
        "{err}"
    );
    let reply = one
        .endpoint
        .call(2, two.addr, Bytes::from_static(b"after"))
        .await
        .expect("next call");
    assert_eq!(reply, Bytes::from_static(b"2 from 1: after"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_limits_are_refused_at_bind() {
    let ca = ClusterCa::generate("test").expect("ca");
    for cfg in [
        TransportConfig {
            max_frame_bytes: 0,
            ..config()
        },
        TransportConfig {
            call_timeout: Duration::ZERO,
            ..config()
        },
        TransportConfig {
            idle_timeout: Duration::ZERO,
            ..config()
        },
    ] {
        let err = Endpoint::bind(
            "127.0.0.1:0".parse().expect("addr"),
            identity(&ca, 1),
            &ca.certificate(),
            cfg,
        )
        .expect_err("zero limit");
        assert!(matches!(err, TransportError::Config(_)), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_outlives_the_call_that_started_it() {
    let ca = ClusterCa::generate("test").expect("ca");
    // Every call gives up long before a handshake can finish.
    let hasty = TransportConfig {
        call_timeout: Duration::from_nanos(1),
        ..config()
    };
    let one = node_with(identity(&ca, 1), &ca.certificate(), hasty);
    let two = node(&ca, 2);

    let err = one
        .endpoint
        .call(2, two.addr, Bytes::from_static(b"hello"))
        .await
        .expect_err("the call times out");
    assert!(matches!(err, TransportError::Timeout { .. }), "{err}");
    // The handshake it started goes on and leaves a connection for the
    // next call, instead of being abandoned with the call.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while one.endpoint.cached_connections().await == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the handshake was abandoned with the call"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Node 2 of the crash test below, run as a child process so that it can
/// die by SIGKILL: it serves on the address and with the identity the
/// parent gives it, and says `ready`.
#[test]
#[ignore = "a child process of a_peer_drops_its_connection_to_a_crashed_node_as_soon_as_it_is_back"]
fn crashing_node_child() {
    let Ok(dir) = std::env::var("STOCKADE_CRASHING_NODE") else {
        return;
    };
    let dir = std::path::Path::new(&dir);
    let read =
        |name: &str| std::fs::read_to_string(dir.join(name)).expect("read a file of the parent");
    let ca = crate::CaCertificate::from_pem(&read("ca.pem")).expect("ca");
    let identity =
        crate::NodeIdentity::from_pem(&read("cert.pem"), &read("key.pem"), &ca).expect("identity");
    let addr: std::net::SocketAddr = read("addr").parse().expect("addr");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let endpoint = Endpoint::bind(addr, identity, &ca, crash_test_config()).expect("bind");
        let _node = serve(endpoint);
        println!("ready");
        std::future::pending::<()>().await;
    });
}

/// Idle connections live long: only a reset can end a stale one soon.
fn crash_test_config() -> TransportConfig {
    TransportConfig {
        call_timeout: Duration::from_millis(500),
        idle_timeout: Duration::from_secs(120),
        ..config()
    }
}

/// Starts [`crashing_node_child`] with the files in `dir`; returns once it
/// serves.
fn start_crashing_node(dir: &std::path::Path) -> std::process::Child {
    use std::io::BufRead;
    let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "tests::rpc::crashing_node_child",
            "--ignored",
            "--nocapture",
        ])
        .env("STOCKADE_CRASHING_NODE", dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the child node");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = std::io::BufReader::new(stdout).lines();
    assert!(
        lines.any(|l| l.is_ok_and(|l| l.trim() == "ready")),
        "the child node did not start"
    );
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_drops_its_connection_to_a_crashed_node_as_soon_as_it_is_back() {
    let ca = ClusterCa::generate("test").expect("ca");
    let key = crate::NodeKey::generate().expect("key");
    let cert = ca
        .sign_node_csr(&key.csr_pem(2).expect("csr"), 2)
        .expect("sign");
    let dir = tempfile::tempdir().expect("temp dir");
    let addr = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free port");
    for (name, text) in [
        ("ca.pem", ca.certificate().pem().to_owned()),
        ("cert.pem", cert),
        ("key.pem", key.key_pem()),
        ("addr", addr.to_string()),
    ] {
        std::fs::write(dir.path().join(name), text).expect("write");
    }
    let one = node_with(identity(&ca, 1), &ca.certificate(), crash_test_config());

    let mut first = start_crashing_node(dir.path());
    one.endpoint
        .call(2, addr, Bytes::from_static(b"before"))
        .await
        .expect("node 2 answers");
    // kill -9: the connection is never closed.
    first.kill().expect("kill");
    first.wait().expect("reap");
    let mut second = start_crashing_node(dir.path());
    let started = std::time::Instant::now();
    let outcome = loop {
        match one
            .endpoint
            .call(2, addr, Bytes::from_static(b"after"))
            .await
        {
            Ok(reply) => break Ok(reply),
            // Well short of the 120 s idle timeout.
            Err(e) if started.elapsed() > Duration::from_secs(40) => break Err(e),
            Err(_) => {}
        }
    };
    let _ = second.kill();
    let _ = second.wait();
    match outcome {
        Ok(reply) => assert_eq!(reply, Bytes::from_static(b"2 from 1: after")),
        Err(e) => panic!("node 1 still calls into its dead connection: {e}"),
    }
}
