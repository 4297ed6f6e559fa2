//! Connections from other nodes' tunnels: the sender must prove a key a
//! member node published, and this node's policy must allow the claimed
//! source an encrypted connection to a destination of this node's.

use std::net::SocketAddr;
use std::sync::Arc;

use stockade_transport::tunnel::{accept_any, Refusal};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

use super::admission::admit;
use super::{Tunnel, CONNECT_TIMEOUT};

/// Accepts peers' tunnel connections, each in a task of its own.
pub(super) async fn serve(tunnel: Arc<Tunnel>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, from)) => {
                tokio::spawn(deliver(Arc::clone(&tunnel), stream, from));
            }
            Err(e) => {
                tracing::warn!(error = %e, "accepting a tunnel connection");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn deliver(tunnel: Arc<Tunnel>, stream: TcpStream, from: SocketAddr) {
    // More than one key only while this node's key is being renewed.
    let keys = tunnel.keys.inbound_keypairs();
    let incoming = match accept_any(
        stream,
        &keys.iter().collect::<Vec<_>>(),
        &tunnel.settings,
        Arc::clone(&tunnel.stats),
    )
    .await
    {
        Ok(incoming) => incoming,
        Err(e) => {
            tracing::warn!(%from, error = %e, "a tunnel handshake failed");
            return;
        }
    };
    let verdict = tunnel.control.with_state(|state| {
        let Some(sender) = tunnel.directory.node_of(state, incoming.peer_key()) else {
            return Err(None);
        };
        let entries = tunnel
            .policy
            .get(state, tunnel.me)
            .ok_or(Some(Refusal::Busy))?;
        admit(state, &entries, tunnel.me, incoming.opening())
            .map(|()| sender)
            .map_err(Some)
    });
    let opening = *incoming.opening();
    let sender = match verdict {
        Ok(sender) => sender,
        Err(None) => {
            // Not a member: it gets no answer it could learn from.
            tunnel.stats.count_unknown_peer();
            tracing::warn!(%from, "a tunnel handshake with a key no member node published; dropped");
            return;
        }
        Err(Some(why)) => {
            tracing::warn!(%from, destination = %opening.destination, source_identity = opening.source_identity, reason = %why, "refusing a tunnelled connection");
            let _ = incoming.refuse(why).await;
            return;
        }
    };
    let local = match timeout(CONNECT_TIMEOUT, TcpStream::connect(opening.destination)).await {
        Ok(Ok(local)) => local,
        _ => {
            let _ = incoming.refuse(Refusal::Unreachable).await;
            return;
        }
    };
    let session = match incoming.admit().await {
        Ok(session) => session,
        Err(e) => {
            tracing::warn!(%from, error = %e, "answering a tunnel handshake");
            return;
        }
    };
    if let Err(e) = session.relay(local).await {
        tracing::debug!(%sender, destination = %opening.destination, error = %e, "a tunnelled connection ended in error");
    }
}
