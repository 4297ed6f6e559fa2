//! An active attacker on the wire between the two nodes: it replays,
//! injects and cuts transport frames. The session must drop and count what
//! it did, carry the real data on, and never let it through.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;

/// What the attacker does with the initiator's transport frame number `i`
/// (whole frames, header included): the frames to send instead, and
/// whether to cut the connection after them.
type Tamper = fn(usize, &[u8], &mut Vec<Vec<u8>>) -> bool;

/// Connections between the nodes that pass through `tamper`.
async fn tampered(tamper: Tamper) -> (TcpStream, TcpStream) {
    let (initiator, from_initiator) = pair().await;
    let (mut to_responder, responder) = pair().await;
    tokio::spawn(async move {
        let (mut up_in, mut down_out) = from_initiator.into_split();
        let (mut down_in, mut up_out) = to_responder.split();
        let down = tokio::io::copy(&mut down_in, &mut down_out);
        let up = async {
            let mut len = [0u8; 2];
            up_in.read_exact(&mut len).await?;
            let mut handshake = vec![0u8; usize::from(u16::from_be_bytes(len))];
            up_in.read_exact(&mut handshake).await?;
            up_out.write_all(&[&len[..], &handshake].concat()).await?;
            for i in 0.. {
                let mut header = [0u8; 10];
                up_in.read_exact(&mut header).await?;
                let mut frame = header.to_vec();
                frame.resize(
                    10 + usize::from(u16::from_be_bytes([header[0], header[1]])),
                    0,
                );
                up_in.read_exact(&mut frame[10..]).await?;
                let mut out = Vec::new();
                let cut = tamper(i, &frame, &mut out);
                for f in out {
                    up_out.write_all(&f).await?;
                }
                if cut {
                    // Reset, as a path that dies does, with no FIN frame.
                    let _ = up_out.shutdown().await;
                    return Ok::<_, std::io::Error>(());
                }
            }
            Ok(())
        };
        // Like a network path: when one direction breaks, the whole
        // connection goes, and each node sees it end.
        tokio::select! {
            _ = down => {}
            _ = up => {}
        }
    });
    (initiator, responder)
}

/// Sends `len` bytes from the application; returns what the destination
/// read, or its read error.
async fn transfer(t: &mut Tunnel, len: usize) -> std::io::Result<Vec<u8>> {
    let data = pattern(len);
    let mut got = Vec::new();
    let send = async {
        // The relay may reset the application's connection mid-way.
        let _ = t.app.write_all(&data).await;
        let _ = t.app.shutdown().await;
    };
    let (_, read) = tokio::join!(send, t.destination.read_to_end(&mut got));
    read.map(|_| got)
}

fn nonce(frame: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&frame[2..10]);
    u64::from_be_bytes(bytes)
}

#[tokio::test]
async fn replayed_frames_are_dropped_and_counted_and_the_stream_stays_whole() {
    fn replay(i: usize, frame: &[u8], out: &mut Vec<Vec<u8>>) -> bool {
        out.push(frame.to_vec());
        if i == 3 {
            // The frame just sent, and the first one, once more.
            out.push(frame.to_vec());
            out.push(first_frame(frame));
        }
        false
    }
    fn first_frame(frame: &[u8]) -> Vec<u8> {
        // A stale nonce with this frame's bytes: a replay of an old nonce.
        let mut old = frame.to_vec();
        old[2..10].copy_from_slice(&0u64.to_be_bytes());
        old
    }
    let mut t = tunnel(TunnelSettings::default(), tampered(replay).await).await;
    let got = transfer(&mut t, 1 << 20)
        .await
        .expect("the transfer completes");
    assert!(got == pattern(1 << 20), "exactly the application's bytes");
    let r = t.responder.snapshot();
    assert_eq!(r.frames_replayed, 2, "{r:?}");
    assert_eq!(r.frames_forged, 0);
}

#[tokio::test]
async fn an_injected_forgery_is_dropped_and_counted_and_the_stream_stays_whole() {
    fn inject(i: usize, frame: &[u8], out: &mut Vec<Vec<u8>>) -> bool {
        out.push(frame.to_vec());
        if i == 2 {
            // The next nonce, a plausible length, bytes nobody sealed.
            let mut forged = vec![0u8; 10 + 200];
            forged[..2].copy_from_slice(&200u16.to_be_bytes());
            forged[2..10].copy_from_slice(&(nonce(frame) + 1).to_be_bytes());
            forged[10..].fill(0x5a);
            out.push(forged);
        }
        false
    }
    let mut t = tunnel(TunnelSettings::default(), tampered(inject).await).await;
    let got = transfer(&mut t, 1 << 20)
        .await
        .expect("the transfer completes");
    assert!(got == pattern(1 << 20), "exactly the application's bytes");
    assert_eq!(t.responder.snapshot().frames_forged, 1);
}

#[tokio::test]
async fn a_stream_of_forgeries_ends_the_session_and_resets_the_destination() {
    fn corrupt(i: usize, frame: &[u8], out: &mut Vec<Vec<u8>>) -> bool {
        let mut frame = frame.to_vec();
        if i >= 1 {
            let last = frame.len() - 1;
            frame[last] ^= 1;
        }
        out.push(frame);
        false
    }
    let mut t = tunnel(TunnelSettings::default(), tampered(corrupt).await).await;
    let outcome = transfer(&mut t, 2 << 20).await;
    assert!(
        outcome.is_err(),
        "the destination sees a reset, not a clean end"
    );
    let (_, accepted) = t.relays.await.expect("relays");
    assert!(
        matches!(accepted, Err(TunnelError::TooManyBadFrames(8))),
        "{accepted:?}"
    );
    assert_eq!(t.responder.snapshot().frames_forged, 8);
}

#[tokio::test]
async fn a_cut_in_the_middle_of_a_frame_is_a_truncation_not_the_end_of_the_data() {
    fn cut(i: usize, frame: &[u8], out: &mut Vec<Vec<u8>>) -> bool {
        if i < 2 {
            out.push(frame.to_vec());
            return false;
        }
        out.push(frame[..frame.len() / 2].to_vec());
        true
    }
    let mut t = tunnel(TunnelSettings::default(), tampered(cut).await).await;
    let outcome = transfer(&mut t, 1 << 20).await;
    assert!(
        outcome.is_err(),
        "the destination sees a reset, not a clean end"
    );
    let (_, accepted) = t.relays.await.expect("relays");
    assert!(
        matches!(accepted, Err(TunnelError::Truncated)),
        "{accepted:?}"
    );
    assert_eq!(t.responder.snapshot().frames_truncated, 1);
}
