//! What a node plugs into its endpoint to serve calls: [`RpcHandler`], the
//! error it returns to callers, and the bounded body reader of streaming calls.

use bytes::Bytes;
use quinn::RecvStream;

use crate::frame::{self, FrameError};
use crate::{NodeId, TransportError};

/// An error a handler returns; the caller receives it as
/// [`TransportError::Remote`] with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RemoteError(pub String);

impl From<TransportError> for RemoteError {
    fn from(e: TransportError) -> Self {
        RemoteError(e.to_string())
    }
}

/// Serves the calls that reach an endpoint.
///
/// `peer` is always the node id from the caller's verified certificate, never
/// from the payload. Each call runs in a task of its own, so handlers may run
/// concurrently.
#[async_trait::async_trait]
pub trait RpcHandler: Send + Sync + 'static {
    /// A plain call from an authenticated node.
    async fn call(&self, peer: NodeId, request: Bytes) -> Result<Bytes, RemoteError>;

    /// A streaming call from an authenticated node (snapshots): a header, then
    /// a body of any size read chunk by chunk. The default refuses it.
    async fn call_streaming(
        &self,
        peer: NodeId,
        header: Bytes,
        body: &mut StreamBody,
    ) -> Result<Bytes, RemoteError> {
        let _ = (peer, header, body);
        Err(RemoteError("streaming calls are not served here".into()))
    }

    /// A query from an authenticated node about what this node observed
    /// (its flow log): node-level reads, apart from the control plane's
    /// calls. The default refuses it.
    async fn query(&self, peer: NodeId, request: Bytes) -> Result<Bytes, RemoteError> {
        let _ = (peer, request);
        Err(RemoteError("queries are not served here".into()))
    }

    /// A join request from a node that has no certificate yet: the only call
    /// unauthenticated peers can make. The default refuses it.
    async fn join(&self, request: Bytes) -> Result<Bytes, RemoteError> {
        let _ = request;
        Err(RemoteError("joins are not served here".into()))
    }
}

/// The body of a streaming call, read in chunks no larger than the
/// endpoint's `max_frame_bytes`, so a handler never holds more than one chunk
/// unless it chooses to.
pub struct StreamBody {
    recv: RecvStream,
    limit: usize,
    /// The end of the body was read.
    done: bool,
    /// The body broke the wire format; the server resets the stream with this code.
    fault: Option<u64>,
    received: u64,
}

impl StreamBody {
    pub(crate) fn new(recv: RecvStream, limit: usize) -> Self {
        StreamBody {
            recv,
            limit,
            done: false,
            fault: None,
            received: 0,
        }
    }

    /// The next chunk of the body, or `None` once the caller has sent it all.
    /// An error means the body is incomplete: the caller failed, or sent a
    /// malformed or oversized chunk; the handler should give up.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, TransportError> {
        if self.done {
            return Ok(None);
        }
        if let Some(code) = self.fault {
            return Err(TransportError::Rejected { code });
        }
        match frame::read_frame(&mut self.recv, self.limit).await {
            Ok(Some(chunk)) => {
                self.received += chunk.len() as u64;
                Ok(Some(chunk))
            }
            Ok(None) => {
                self.done = true;
                Ok(None)
            }
            Err(e) => {
                let err = match &e {
                    FrameError::TooLarge { len, limit } => TransportError::FrameTooLarge {
                        len: *len,
                        limit: *limit,
                    },
                    FrameError::Malformed(what) => TransportError::Malformed((*what).to_owned()),
                    FrameError::Read(quinn::ReadError::Reset(c)) => TransportError::Rejected {
                        code: c.into_inner(),
                    },
                    FrameError::Read(other) => TransportError::Malformed(other.to_string()),
                };
                // A read failure has no code of ours: the stream is already broken.
                self.fault = Some(e.code().unwrap_or(frame::code::CANCELLED));
                if e.code().is_some() {
                    tracing::warn!(error = %e, "bad body chunk in a streaming call");
                }
                Err(err)
            }
        }
    }

    /// Bytes of body received so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Whether the whole body was read.
    pub fn is_complete(&self) -> bool {
        self.done
    }

    /// Hands the stream back to the server once the handler is done.
    pub(crate) fn finish(self) -> (RecvStream, bool, Option<u64>) {
        (self.recv, self.done, self.fault)
    }
}

impl std::fmt::Debug for StreamBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamBody")
            .field("received", &self.received)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}
