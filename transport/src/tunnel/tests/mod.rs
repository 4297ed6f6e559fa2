//! Tests of the tunnel over loopback TCP: key bindings, whole sessions,
//! refusals, and an active attacker between the two nodes.

mod attacker;
mod binding;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

/// Two ends of a loopback TCP connection.
pub(super) async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("listen");
    let addr = listener.local_addr().expect("addr");
    let (client, server) = tokio::join!(TcpStream::connect(addr), listener.accept());
    (client.expect("connect"), server.expect("accept").0)
}

pub(super) fn keypair(seed: u8) -> StaticKeypair {
    StaticKeypair::from_secret([seed; 32])
}

pub(super) fn opening() -> Opening {
    Opening {
        destination: "10.0.0.2:5432".parse().expect("addr"),
        source_identity: 300,
        source_zone: 2,
    }
}

/// A tunnel between an application connection and a destination
/// connection, through `network` (the TCP connection between the nodes as
/// the initiator sees it, and as the responder sees it).
pub(super) struct Tunnel {
    /// The application's end.
    pub app: TcpStream,
    /// The destination's end.
    pub destination: TcpStream,
    pub initiator: Arc<TunnelStats>,
    pub responder: Arc<TunnelStats>,
    pub relays: tokio::task::JoinHandle<(
        Result<RelayTotals, TunnelError>,
        Result<RelayTotals, TunnelError>,
    )>,
}

pub(super) async fn tunnel(settings: TunnelSettings, network: (TcpStream, TcpStream)) -> Tunnel {
    let (app, app_side) = pair().await;
    let (destination_side, destination) = pair().await;
    let initiator = Arc::new(TunnelStats::default());
    let responder = Arc::new(TunnelStats::default());
    let (i_key, r_key) = (keypair(1), keypair(2));
    let (to_responder, at_responder) = network;
    let connecting = connect(
        to_responder,
        &i_key,
        *r_key.public(),
        opening(),
        &settings,
        Arc::clone(&initiator),
    );
    let accepting = async {
        let incoming = accept(at_responder, &r_key, &settings, Arc::clone(&responder))
            .await
            .expect("accept");
        assert_eq!(incoming.peer_key(), i_key.public(), "the initiator's key");
        assert_eq!(*incoming.opening(), opening());
        incoming.admit().await.expect("admit")
    };
    let (initiated, accepted) = tokio::join!(connecting, accepting);
    let initiated = initiated.expect("connect");
    let relays = tokio::spawn(async move {
        tokio::join!(initiated.relay(app_side), accepted.relay(destination_side))
    });
    Tunnel {
        app,
        destination,
        initiator,
        responder,
        relays,
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[tokio::test]
async fn a_session_carries_both_directions_whole_and_closes_cleanly() {
    let mut t = tunnel(TunnelSettings::default(), pair().await).await;
    let up = pattern(5 << 20);
    let down = pattern(3 << 20);
    let (mut app_in, mut app_out) = t.app.split();
    let (mut dst_in, mut dst_out) = t.destination.split();
    let (mut got_up, mut got_down) = (Vec::new(), Vec::new());
    let send_up = async {
        app_out.write_all(&up).await.expect("send up");
        app_out.shutdown().await.expect("half-close");
    };
    let send_down = async {
        dst_out.write_all(&down).await.expect("send down");
        dst_out.shutdown().await.expect("half-close");
    };
    let read_up = dst_in.read_to_end(&mut got_up);
    let read_down = app_in.read_to_end(&mut got_down);
    let (_, _, r1, r2) = tokio::join!(send_up, send_down, read_up, read_down);
    r1.expect("read up");
    r2.expect("read down");
    assert!(got_up == up, "the destination got the application's bytes");
    assert!(got_down == down, "and the reverse");
    let (initiated, accepted) = t.relays.await.expect("relays");
    let initiated = initiated.expect("the initiator's relay ends cleanly");
    assert_eq!((initiated.sent, initiated.received), (5 << 20, 3 << 20));
    assert_eq!(accepted.expect("and the responder's").received, 5 << 20);
    let (i, r) = (t.initiator.snapshot(), t.responder.snapshot());
    assert_eq!((i.sessions_opened, r.sessions_accepted), (1, 1));
    assert_eq!((i.sessions_active, r.sessions_active), (0, 0));
    assert_eq!(r.frames_forged + r.frames_replayed + r.frames_truncated, 0);
}

#[tokio::test]
async fn sessions_rekey_on_their_byte_budget_without_losing_a_byte() {
    let settings = TunnelSettings {
        rekey_after_bytes: 100_000,
        ..TunnelSettings::default()
    };
    let mut t = tunnel(settings, pair().await).await;
    let data = pattern(2 << 20);
    let mut got = Vec::new();
    let send = async {
        t.app.write_all(&data).await.expect("send");
        t.app.shutdown().await.expect("half-close");
    };
    let (_, read) = tokio::join!(send, t.destination.read_to_end(&mut got));
    read.expect("read");
    assert!(got == data);
    let rekeys = t.initiator.snapshot().rekeys;
    // The budget is checked after each frame (up to 64 KiB), so a rekey
    // comes at most a frame past it: at least one per two budgets.
    assert!(
        rekeys >= (2 << 20) / 200_000,
        "the sender rekeyed: {rekeys}"
    );
    assert_eq!(
        t.responder.snapshot().rekeys,
        rekeys,
        "the receiver followed"
    );
}

#[tokio::test]
async fn a_refusal_reaches_the_initiator_with_its_reason() {
    let (to_responder, at_responder) = pair().await;
    let stats = Arc::new(TunnelStats::default());
    let settings = TunnelSettings::default();
    let (i_key, r_key) = (keypair(1), keypair(2));
    let connecting = connect(
        to_responder,
        &i_key,
        *r_key.public(),
        opening(),
        &settings,
        Arc::clone(&stats),
    );
    let refusing = async {
        let incoming = accept(at_responder, &r_key, &settings, Arc::default())
            .await
            .expect("accept");
        incoming.refuse(Refusal::Policy).await.expect("refuse");
    };
    let (outcome, ()) = tokio::join!(connecting, refusing);
    let err = outcome.expect_err("refused");
    assert!(
        matches!(err, TunnelError::Refused(Refusal::Policy)),
        "{err}"
    );
    assert_eq!(stats.snapshot().refusals_received, 1);
}

#[tokio::test]
async fn a_node_that_does_not_hold_the_expected_key_cannot_complete_a_handshake() {
    let (to_responder, at_responder) = pair().await;
    let settings = TunnelSettings::default();
    let responder = Arc::new(TunnelStats::default());
    // The initiator expects key 2, but the listener holds key 3: an
    // impostor at the destination's address learns nothing and answers
    // nothing the initiator accepts.
    let (initiator_key, impostor_key) = (keypair(1), keypair(3));
    let connecting = connect(
        to_responder,
        &initiator_key,
        *keypair(2).public(),
        opening(),
        &settings,
        Arc::default(),
    );
    let accepting = accept(
        at_responder,
        &impostor_key,
        &settings,
        Arc::clone(&responder),
    );
    let (connected, accepted) = tokio::join!(connecting, accepting);
    assert!(
        accepted.is_err(),
        "the impostor cannot read the first message"
    );
    assert!(connected.is_err());
    assert_eq!(responder.snapshot().handshake_failures, 1);
}

#[tokio::test]
async fn a_node_renewing_its_key_answers_to_both_keys_and_no_other() {
    let settings = TunnelSettings::default();
    let (me, old, new) = (keypair(1), keypair(2), keypair(3));
    for (dialled, answers) in [(2, true), (3, true), (4, false)] {
        let (to_responder, at_responder) = pair().await;
        let connecting = connect(
            to_responder,
            &me,
            *keypair(dialled).public(),
            opening(),
            &settings,
            Arc::default(),
        );
        let accepting = async {
            let incoming =
                accept_any(at_responder, &[&new, &old], &settings, Arc::default()).await?;
            assert_eq!(incoming.peer_key(), me.public());
            incoming.admit().await.map(drop)
        };
        let (connected, accepted) = tokio::join!(connecting, accepting);
        assert_eq!(accepted.is_ok(), answers, "key {dialled}: {accepted:?}");
        assert_eq!(connected.is_ok(), answers, "key {dialled}");
    }
}

#[tokio::test]
async fn garbage_instead_of_a_handshake_is_an_error_not_a_crash() {
    let settings = TunnelSettings {
        handshake_timeout: std::time::Duration::from_secs(2),
        ..TunnelSettings::default()
    };
    for garbage in [
        vec![],
        vec![0, 0],
        vec![0xff, 0xff, 1, 2, 3],
        pattern(600),
        [vec![0, 96], pattern(96)].concat(),
    ] {
        let (mut sender, at_responder) = pair().await;
        sender.write_all(&garbage).await.expect("send");
        sender.shutdown().await.expect("close");
        let outcome = accept(at_responder, &keypair(2), &settings, Arc::default()).await;
        assert!(outcome.is_err(), "{garbage:?} was accepted");
    }
}

#[test]
fn openings_round_trip_for_both_families() {
    for destination in ["10.1.2.3:80", "[2001:db8::7]:443"] {
        let opening = Opening {
            destination: destination.parse::<SocketAddr>().expect("addr"),
            source_identity: u32::MAX,
            source_zone: 0,
        };
        assert_eq!(Opening::decode(&opening.encode()).expect("decode"), opening);
    }
    assert!(Opening::decode(&[0; 27]).is_err());
    assert!(Opening::decode(&[9; 28]).is_err(), "an unknown version");
}
