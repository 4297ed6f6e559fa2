//! Connections the connect hook sent to the loopback port: each is carried
//! to the node of its original destination, or refused (reset) when that
//! cannot be done securely. Nothing ever leaves in the clear.

use std::sync::Arc;

use stockade_bpf::common::tunnel::TunnelTarget;
use stockade_bpf::{target_destination, TunnelTargets};
use stockade_policy::tunnel_destination;
use stockade_transport::tunnel::{connect, Opening};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

use super::{Tunnel, CONNECT_TIMEOUT};

/// Accepts redirected connections; the destination of each is taken from
/// the kernel's map here, in accept order, before the connection's task.
pub(super) async fn serve(tunnel: Arc<Tunnel>, listener: TcpListener, mut targets: TunnelTargets) {
    loop {
        let (app, from) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a connection into the tunnel");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let target = match targets.take(from.port()) {
            Ok(Some(target)) => target,
            Ok(None) => {
                // Not redirected by the hook: someone dialled the port.
                tunnel.stats.count_unroutable();
                tracing::debug!(%from, "a connection to the tunnel's port that the dataplane did not send");
                reset(app);
                continue;
            }
            Err(e) => {
                tunnel.stats.count_unroutable();
                tracing::warn!(error = %e, "reading where a tunnelled connection goes");
                reset(app);
                continue;
            }
        };
        tokio::spawn(carry(Arc::clone(&tunnel), app, target));
    }
}

/// Drops a connection with a reset, so the application sees a failure, not
/// an empty answer.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
}

async fn carry(tunnel: Arc<Tunnel>, app: TcpStream, target: TunnelTarget) {
    let Some(destination) = target_destination(&target) else {
        tunnel.stats.count_unroutable();
        reset(app);
        return;
    };
    let peer = tunnel.control.with_state(|state| {
        let node = tunnel_destination(state, destination.ip(), destination.port())?;
        Some((node, tunnel.directory.peer(state, node)))
    });
    let peer = match peer {
        Some((node, _)) if node == tunnel.me => {
            // The destination is on this node: the traffic never leaves
            // this kernel, so there is nothing to encrypt.
            return deliver_here(app, destination).await;
        }
        Some((_, Some(peer))) => peer,
        Some((node, None)) => {
            tunnel.stats.count_unroutable();
            tracing::warn!(%destination, %node, "the destination's node published no valid tunnel key; refusing");
            reset(app);
            return;
        }
        None => {
            tunnel.stats.count_unroutable();
            tracing::warn!(%destination, "no node holds the destination of an encrypted connection; refusing");
            reset(app);
            return;
        }
    };
    let opening = Opening {
        destination,
        source_identity: target.src_identity,
        source_zone: target.src_zone,
    };
    let stream = match timeout(CONNECT_TIMEOUT, TcpStream::connect(peer.address)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::warn!(peer = %peer.address, %destination, error = %e, "the peer's tunnel is unreachable; refusing");
            reset(app);
            return;
        }
        Err(_) => {
            tracing::warn!(peer = %peer.address, %destination, "the peer's tunnel did not answer in time; refusing");
            reset(app);
            return;
        }
    };
    let session = match connect(
        stream,
        &tunnel.keys.keypair(),
        peer.key,
        opening,
        &tunnel.settings,
        Arc::clone(&tunnel.stats),
    )
    .await
    {
        Ok(session) => session,
        Err(e) => {
            tracing::warn!(peer = %peer.address, %destination, error = %e, "no tunnel session; refusing");
            reset(app);
            return;
        }
    };
    if let Err(e) = session.relay(app).await {
        tracing::debug!(%destination, error = %e, "a tunnelled connection ended in error");
    }
}

async fn deliver_here(app: TcpStream, destination: std::net::SocketAddr) {
    let Ok(Ok(mut local)) = timeout(CONNECT_TIMEOUT, TcpStream::connect(destination)).await else {
        reset(app);
        return;
    };
    let mut app = app;
    let _ = tokio::io::copy_bidirectional(&mut app, &mut local).await;
}
