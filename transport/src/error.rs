//! The errors of the transport: what failed, named so a caller can decide
//! whether to retry (connect, timeout, connection lost) or give up (refused,
//! pin mismatch, configuration).

use std::net::SocketAddr;
use std::time::Duration;

use crate::frame::code;
use crate::pki::PkiError;

/// Why a transport operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The UDP socket could not be bound.
    #[error("cannot bind the QUIC endpoint on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// The endpoint was used outside a Tokio runtime.
    #[error("the transport must run inside a Tokio runtime")]
    NoRuntime,
    /// The TLS or QUIC configuration could not be built from the identity
    /// and the [`TransportConfig`](crate::TransportConfig).
    #[error("invalid transport configuration: {0}")]
    Config(String),
    /// A certificate, key or fingerprint was unusable.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// The connection attempt could not even start (bad address, endpoint closing).
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The peer's address.
        addr: SocketAddr,
        /// quinn's reason.
        #[source]
        source: quinn::ConnectError,
    },
    /// The TLS handshake failed or the peer refused us: wrong node id, a
    /// certificate from another CA, no client certificate.
    #[error("handshake with {addr} failed or was refused: {reason}")]
    Refused {
        /// The peer's address.
        addr: SocketAddr,
        /// What the TLS stack or the peer said.
        reason: String,
    },
    /// The join server's chain holds no certificate with the pinned fingerprint
    /// (or its leaf is not signed by it). Nothing was sent.
    #[error("the server at {addr} does not present the cluster CA pinned in the join token")]
    PinMismatch {
        /// The server's address.
        addr: SocketAddr,
    },
    /// An established connection broke (peer gone, restarted, idle timeout).
    #[error("connection to {addr} lost: {source}")]
    ConnectionLost {
        /// The peer's address.
        addr: SocketAddr,
        /// quinn's reason.
        #[source]
        source: quinn::ConnectionError,
    },
    /// The call did not finish within the configured time.
    #[error("call to {addr} timed out after {after:?}")]
    Timeout {
        /// The peer's address.
        addr: SocketAddr,
        /// The limit that was hit.
        after: Duration,
    },
    /// A frame announced more bytes than the configured limit.
    #[error("frame of {len} bytes exceeds the limit of {limit} bytes")]
    FrameTooLarge {
        /// The announced length.
        len: u64,
        /// The limit in force.
        limit: usize,
    },
    /// A frame or stream did not follow the wire format.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// The peer closed the stream with one of the transport's error codes.
    #[error("the peer rejected the stream: {}", code::describe(*.code))]
    Rejected {
        /// The QUIC application error code.
        code: u64,
    },
    /// The remote handler returned an error.
    #[error("remote error: {0}")]
    Remote(String),
    /// Reading the local body source failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// This endpoint was closed.
    #[error("the endpoint is closed")]
    Closed,
}

impl TransportError {
    /// Maps a connection-level failure: a peer's transport close during the
    /// handshake is a refusal (crypto alerts arrive that way), the rest is a lost connection.
    pub(crate) fn from_connection(addr: SocketAddr, err: quinn::ConnectionError) -> Self {
        use quinn::ConnectionError as E;
        match err {
            E::LocallyClosed => TransportError::Closed,
            E::TransportError(ref e) => TransportError::Refused {
                addr,
                reason: e.to_string(),
            },
            E::ConnectionClosed(ref c) => TransportError::Refused {
                addr,
                reason: c.to_string(),
            },
            E::ApplicationClosed(ref c) if c.error_code.into_inner() == code::UNAUTHENTICATED => {
                TransportError::Refused {
                    addr,
                    reason: String::from_utf8_lossy(&c.reason).into_owned(),
                }
            }
            other => TransportError::ConnectionLost {
                addr,
                source: other,
            },
        }
    }

    /// Maps a failed read of a reply.
    pub(crate) fn from_read(addr: SocketAddr, err: quinn::ReadError) -> Self {
        match err {
            quinn::ReadError::Reset(c) => TransportError::Rejected {
                code: c.into_inner(),
            },
            quinn::ReadError::ConnectionLost(e) => Self::from_connection(addr, e),
            other => TransportError::Malformed(other.to_string()),
        }
    }

    /// Maps a failed write of a request.
    pub(crate) fn from_write(addr: SocketAddr, err: quinn::WriteError) -> Self {
        match err {
            quinn::WriteError::Stopped(c) => TransportError::Rejected {
                code: c.into_inner(),
            },
            quinn::WriteError::ConnectionLost(e) => Self::from_connection(addr, e),
            other => TransportError::Malformed(other.to_string()),
        }
    }
}
