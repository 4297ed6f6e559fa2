//! The accepting side: admits connections by ALPN and certificate, then serves
//! each bidirectional stream as one call in a task of its own, so a bad stream
//! never disturbs its connection or the other calls.

use std::sync::Arc;

use bytes::Bytes;
use quinn::{Connection, RecvStream, SendStream};
use rustls::pki_types::CertificateDer;

use crate::frame::{self, code, FrameError, WriteFrameError};
use crate::handler::{RemoteError, RpcHandler, StreamBody};
use crate::identity::node_id_of;
use crate::tls::{ALPN_JOIN, ALPN_RPC};
use crate::NodeId;

/// Largest join request accepted. Joiners are unauthenticated, so they get a
/// small limit (a token and a CSR fit easily) rather than `max_frame_bytes`.
pub const JOIN_MAX_FRAME_BYTES: usize = 64 * 1024;
/// Calls an unauthenticated joiner may have open at once.
const JOIN_MAX_STREAMS: u32 = 2;

/// Who is on the other end of a connection.
#[derive(Clone, Copy, Debug)]
enum Peer {
    /// A node with a certificate from the cluster CA.
    Node(NodeId),
    /// A joiner without a certificate: may only call `join`.
    Joiner,
}

/// Accepts connections until the endpoint closes.
pub(crate) async fn accept_loop(
    endpoint: quinn::Endpoint,
    handler: Arc<dyn RpcHandler>,
    max_frame_bytes: usize,
) {
    while let Some(incoming) = endpoint.accept().await {
        let handler = handler.clone();
        tokio::spawn(async move {
            let remote = incoming.remote_address();
            match incoming.await {
                Ok(conn) => serve_connection(conn, handler, max_frame_bytes).await,
                // A refused certificate ends here; the TLS alert already told the peer.
                Err(e) => tracing::debug!(%remote, error = %e, "incoming handshake failed"),
            }
        });
    }
    tracing::debug!("endpoint closed; no longer accepting connections");
}

/// The negotiated ALPN of a connection.
fn alpn(conn: &Connection) -> Option<Vec<u8>> {
    conn.handshake_data()?
        .downcast::<quinn::crypto::rustls::HandshakeData>()
        .ok()?
        .protocol
}

/// The node id of the connection's verified client certificate, if it sent one.
fn peer_node_id(conn: &Connection) -> Option<NodeId> {
    let chain = conn
        .peer_identity()?
        .downcast::<Vec<CertificateDer<'static>>>()
        .ok()?;
    node_id_of(chain.first()?)
}

/// Classifies a connection, then serves its streams until it closes.
async fn serve_connection(conn: Connection, handler: Arc<dyn RpcHandler>, max_frame_bytes: usize) {
    let remote = conn.remote_address();
    let alpn = alpn(&conn);
    let peer = match alpn.as_deref() {
        Some(p) if p == ALPN_RPC => match peer_node_id(&conn) {
            Some(id) => Peer::Node(id),
            None => {
                // rustls let a certificate-less handshake through for joiners;
                // on the RPC protocol that is not enough.
                tracing::warn!(%remote, "RPC connection without a node certificate refused");
                conn.close(
                    code::varint(code::UNAUTHENTICATED),
                    b"a node certificate from the cluster CA is required",
                );
                return;
            }
        },
        Some(p) if p == ALPN_JOIN => {
            conn.set_max_concurrent_bi_streams(quinn::VarInt::from_u32(JOIN_MAX_STREAMS));
            Peer::Joiner
        }
        _ => {
            tracing::warn!(%remote, "connection with an unknown protocol refused");
            conn.close(code::varint(code::UNAUTHENTICATED), b"unknown protocol");
            return;
        }
    };
    tracing::debug!(%remote, ?peer, "connection accepted");
    loop {
        match conn.accept_bi().await {
            Ok((send, recv)) => {
                let handler = handler.clone();
                tokio::spawn(async move {
                    serve_stream(peer, send, recv, handler, max_frame_bytes).await;
                });
            }
            Err(e) => {
                tracing::debug!(%remote, ?peer, error = %e, "connection ended");
                return;
            }
        }
    }
}

/// Ends a stream whose request broke the rules, logging why.
fn refuse(send: &mut SendStream, recv: &mut RecvStream, peer: Peer, err: &FrameError) {
    match err.code() {
        Some(c) => {
            tracing::warn!(?peer, error = %err, "bad request stream closed");
            // Stop reading (the sender's writes fail) and reset our side (its read fails).
            let _ = recv.stop(code::varint(c));
            let _ = send.reset(code::varint(c));
        }
        // The stream or connection is already gone; nothing to answer.
        None => tracing::debug!(?peer, error = %err, "request stream failed"),
    }
}

/// Serves one call: reads the request per its kind, runs the handler, replies.
async fn serve_stream(
    peer: Peer,
    mut send: SendStream,
    mut recv: RecvStream,
    handler: Arc<dyn RpcHandler>,
    max_frame_bytes: usize,
) {
    let kind = match frame::read_u8(&mut recv).await {
        Ok(Some(k)) => k,
        Ok(None) => {
            return refuse(
                &mut send,
                &mut recv,
                peer,
                &FrameError::Malformed("empty stream"),
            )
        }
        Err(e) => return refuse(&mut send, &mut recv, peer, &e),
    };
    let reply = match (peer, kind) {
        (Peer::Node(id), frame::KIND_CALL) => match read_single(&mut recv, max_frame_bytes).await {
            Ok(request) => isolated(async move { handler.call(id, request).await })
                .await
                .and_then(|reply| reply),
            Err(e) => return refuse(&mut send, &mut recv, peer, &e),
        },
        (Peer::Node(id), frame::KIND_QUERY) => {
            match read_single(&mut recv, max_frame_bytes).await {
                Ok(request) => isolated(async move { handler.query(id, request).await })
                    .await
                    .and_then(|reply| reply),
                Err(e) => return refuse(&mut send, &mut recv, peer, &e),
            }
        }
        (Peer::Joiner, frame::KIND_JOIN) => {
            match read_single(&mut recv, JOIN_MAX_FRAME_BYTES).await {
                Ok(request) => isolated(async move { handler.join(request).await })
                    .await
                    .and_then(|reply| reply),
                Err(e) => return refuse(&mut send, &mut recv, peer, &e),
            }
        }
        (Peer::Node(id), frame::KIND_STREAM) => {
            let header = match frame::read_required(&mut recv, max_frame_bytes).await {
                Ok(h) => h,
                Err(e) => return refuse(&mut send, &mut recv, peer, &e),
            };
            let mut body = StreamBody::new(recv, max_frame_bytes);
            let outcome = isolated(async move {
                let reply = handler.call_streaming(id, header, &mut body).await;
                (body, reply)
            })
            .await;
            let (body, reply) = match outcome {
                Ok(done) => done,
                // The body went down with the handler; dropping it stopped the stream.
                Err(e) => return write_reply(&mut send, peer, Err(e), max_frame_bytes).await,
            };
            let (r, complete, fault) = body.finish();
            recv = r;
            if let Some(c) = fault {
                // The body was bad or the caller gave up: no reply, the stream ends in error.
                let _ = recv.stop(code::varint(c));
                let _ = send.reset(code::varint(c));
                return;
            }
            if !complete {
                // The handler answered without reading everything; the caller's
                // remaining writes fail and it goes on to read this reply.
                let _ = recv.stop(code::varint(code::DONE));
            }
            reply
        }
        (Peer::Joiner, _) | (Peer::Node(_), frame::KIND_JOIN) => {
            tracing::warn!(?peer, kind, "request kind not allowed on this connection");
            let _ = recv.stop(code::varint(code::NOT_ALLOWED));
            let _ = send.reset(code::varint(code::NOT_ALLOWED));
            return;
        }
        (Peer::Node(_), _) => {
            return refuse(
                &mut send,
                &mut recv,
                peer,
                &FrameError::Malformed("unknown request kind"),
            )
        }
    };
    write_reply(&mut send, peer, reply, max_frame_bytes).await;
}

/// Runs a handler in a task of its own, so that a panic in it becomes an
/// error reply instead of a stream that silently ends.
async fn isolated<T: Send + 'static>(
    fut: impl std::future::Future<Output = T> + Send + 'static,
) -> Result<T, RemoteError> {
    tokio::spawn(fut).await.map_err(|e| {
        tracing::error!(error = %e, "RPC handler failed");
        RemoteError(format!("the handler failed: {e}"))
    })
}

/// Reads the one frame of a plain call or a join, and the end of the stream after it.
async fn read_single(recv: &mut RecvStream, limit: usize) -> Result<Bytes, FrameError> {
    let request = frame::read_required(recv, limit).await?;
    frame::expect_end(recv).await?;
    Ok(request)
}

/// Sends the handler's answer. A reply the caller would refuse as too large
/// becomes an error reply instead, so the caller learns why.
async fn write_reply(
    send: &mut SendStream,
    peer: Peer,
    reply: Result<Bytes, RemoteError>,
    max_frame_bytes: usize,
) {
    let (status, payload) = match reply {
        Ok(bytes) if bytes.len() <= max_frame_bytes => (frame::STATUS_OK, bytes),
        Ok(bytes) => {
            tracing::warn!(
                ?peer,
                len = bytes.len(),
                max_frame_bytes,
                "reply too large; sending an error"
            );
            let msg = format!(
                "reply of {} bytes exceeds the limit of {max_frame_bytes} bytes",
                bytes.len()
            );
            (frame::STATUS_ERR, Bytes::from(msg))
        }
        Err(RemoteError(mut msg)) => {
            if msg.len() > max_frame_bytes {
                let mut cut = max_frame_bytes;
                while !msg.is_char_boundary(cut) {
                    cut -= 1;
                }
                msg.truncate(cut);
            }
            (frame::STATUS_ERR, Bytes::from(msg))
        }
    };
    match frame::write_frame(send, Some(status), payload).await {
        Ok(()) => {
            let _ = send.finish();
        }
        Err(WriteFrameError::TooLong(_)) => {
            let _ = send.reset(code::varint(code::FRAME_TOO_LARGE));
        }
        // The caller gave up (timeout) or the connection went away.
        Err(WriteFrameError::Write(e)) => tracing::debug!(?peer, error = %e, "reply not delivered"),
    }
}
