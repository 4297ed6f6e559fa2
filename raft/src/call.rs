//! One Raft call to a peer over the transport: resolve its advertised
//! address, send the JSON of a [`RaftRpc`], decode the JSON reply.

use std::io::Cursor;
use std::net::SocketAddr;

use serde::de::DeserializeOwned;
use stockade_transport::{Bytes, Endpoint, TransportError};

use crate::rpc::RaftRpc;
use crate::types::NodeId;

/// Why a call to a peer produced no reply.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The peer's advertised address does not resolve.
    #[error("cannot resolve `{addr}`: {source}")]
    Resolve {
        /// The advertised address.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The transport failed (unreachable, timed out, refused, lost), or the
    /// peer's handler refused the call.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The request could not be encoded, or the reply decoded.
    #[error("bad message: {0}")]
    Codec(#[from] serde_json::Error),
    /// The caller stopped waiting: the peer it called is no longer the
    /// leader it knows (it died or was deposed while the call was out).
    #[error("node {0} stopped being the leader before it answered")]
    NotLeaderAnyMore(NodeId),
}

impl CallError {
    /// Whether the peer could not be reached at all (as opposed to a call
    /// that failed on its way or was refused): openraft backs off from such
    /// peers.
    pub fn is_unreachable(&self) -> bool {
        match self {
            CallError::Resolve { .. } => true,
            CallError::Transport(e) => matches!(
                e,
                TransportError::Connect { .. }
                    | TransportError::Refused { .. }
                    | TransportError::PinMismatch { .. }
                    | TransportError::ConnectionLost { .. }
                    | TransportError::Closed
            ),
            CallError::Codec(_) | CallError::NotLeaderAnyMore(_) => false,
        }
    }

    /// Whether the call ran out of time.
    pub fn is_timeout(&self) -> bool {
        matches!(self, CallError::Transport(TransportError::Timeout { .. }))
    }
}

/// Resolves an advertised `host:port` (an IP literal needs no lookup).
pub(crate) async fn resolve(addr: &str) -> Result<SocketAddr, CallError> {
    if let Ok(socket) = addr.parse() {
        return Ok(socket);
    }
    let failed = |source| CallError::Resolve {
        addr: addr.to_owned(),
        source,
    };
    tokio::net::lookup_host(addr)
        .await
        .map_err(failed)?
        .next()
        .ok_or_else(|| failed(std::io::Error::other("no address")))
}

/// Calls `peer` at `addr` with `rpc` and decodes its reply.
pub(crate) async fn call<R: DeserializeOwned>(
    endpoint: &Endpoint,
    peer: NodeId,
    addr: SocketAddr,
    rpc: &RaftRpc,
) -> Result<R, CallError> {
    let request = Bytes::from(serde_json::to_vec(rpc)?);
    let reply = endpoint.call(peer, addr, request).await?;
    Ok(serde_json::from_slice(&reply)?)
}

/// Calls `peer` at `addr` with `header` and a body of raw bytes, and decodes
/// its reply.
pub(crate) async fn call_streaming<R: DeserializeOwned>(
    endpoint: &Endpoint,
    peer: NodeId,
    addr: SocketAddr,
    header: &RaftRpc,
    body: Vec<u8>,
) -> Result<R, CallError> {
    let header = Bytes::from(serde_json::to_vec(header)?);
    let reply = endpoint
        .call_streaming(peer, addr, header, Cursor::new(body))
        .await?;
    Ok(serde_json::from_slice(&reply)?)
}
