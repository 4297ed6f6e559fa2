//! The wire format of one call on one bidirectional QUIC stream.
//!
//! Request: a kind byte (`KIND_*`), then frames; a frame is a u32 big-endian
//! length and that many bytes. A plain call and a join carry one frame; a
//! streaming call carries a header frame, then body chunks, and the sender
//! finishes its side to end the body. Reply: a status byte (`STATUS_*`) and one
//! frame (the reply, or an error message). A stream that breaks the format, or
//! announces a frame longer than the limit, is reset/stopped with a `code::*`.

use bytes::Bytes;
use quinn::{RecvStream, SendStream};

/// A plain call from an authenticated node: one request frame.
pub(crate) const KIND_CALL: u8 = 1;
/// A streaming call: a header frame, then body chunks until the stream ends.
pub(crate) const KIND_STREAM: u8 = 2;
/// A join request from a node without a certificate: one request frame.
pub(crate) const KIND_JOIN: u8 = 3;
/// A node's question to another node about what it observed (flow queries):
/// apart from Raft's calls so neither can be mistaken for the other.
pub(crate) const KIND_QUERY: u8 = 4;

/// The handler succeeded; the frame is its reply.
pub(crate) const STATUS_OK: u8 = 0;
/// The handler failed; the frame is its UTF-8 message.
pub(crate) const STATUS_ERR: u8 = 1;

/// QUIC application error codes, for stream resets/stops and connection closes.
pub(crate) mod code {
    /// The stream ended normally or the reader no longer needs it.
    pub(crate) const DONE: u64 = 0;
    /// A frame announced more bytes than the limit.
    pub(crate) const FRAME_TOO_LARGE: u64 = 1;
    /// The stream broke the wire format.
    pub(crate) const MALFORMED: u64 = 2;
    /// This kind of request is not allowed on this connection.
    pub(crate) const NOT_ALLOWED: u64 = 3;
    /// Connection close: an RPC connection came without a valid client certificate.
    pub(crate) const UNAUTHENTICATED: u64 = 4;
    /// Connection close: the endpoint is shutting down.
    pub(crate) const SHUTDOWN: u64 = 5;
    /// The caller gave up on the request (its body source failed).
    pub(crate) const CANCELLED: u64 = 6;

    /// A human reading of a code, for error messages.
    pub(crate) fn describe(code: u64) -> &'static str {
        match code {
            DONE => "stream closed",
            FRAME_TOO_LARGE => "frame too large",
            MALFORMED => "malformed frame",
            NOT_ALLOWED => "request not allowed on this connection",
            UNAUTHENTICATED => "unauthenticated",
            SHUTDOWN => "endpoint shutting down",
            CANCELLED => "cancelled by the caller",
            _ => "unknown error code",
        }
    }

    /// The code as a QUIC variable-length integer (all codes are small).
    pub(crate) fn varint(code: u64) -> quinn::VarInt {
        quinn::VarInt::from_u32(u32::try_from(code).unwrap_or(u32::MAX))
    }
}

/// What a frame buffer starts with; it grows as bytes arrive.
const INITIAL_FRAME_BUFFER: usize = 64 * 1024;

/// Why a frame could not be read.
#[derive(Debug)]
pub(crate) enum FrameError {
    /// The announced length is over the limit; nothing was allocated.
    TooLarge { len: u64, limit: usize },
    /// The stream ended inside a frame, or held an unexpected byte.
    Malformed(&'static str),
    /// The stream failed underneath (reset by the peer, connection lost).
    Read(quinn::ReadError),
}

impl FrameError {
    /// The code to reset the stream with, if the fault is the peer's.
    pub(crate) fn code(&self) -> Option<u64> {
        match self {
            FrameError::TooLarge { .. } => Some(code::FRAME_TOO_LARGE),
            FrameError::Malformed(_) => Some(code::MALFORMED),
            FrameError::Read(_) => None,
        }
    }
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::TooLarge { len, limit } => {
                write!(f, "frame of {len} bytes exceeds the limit of {limit} bytes")
            }
            FrameError::Malformed(what) => f.write_str(what),
            FrameError::Read(e) => write!(f, "{e}"),
        }
    }
}

/// Reads exactly `buf.len()` bytes; `Ok(false)` if the stream ended before the first byte.
async fn fill(recv: &mut RecvStream, buf: &mut [u8]) -> Result<bool, FrameError> {
    match recv.read_exact(buf).await {
        Ok(()) => Ok(true),
        Err(quinn::ReadExactError::FinishedEarly(0)) => Ok(false),
        Err(quinn::ReadExactError::FinishedEarly(_)) => {
            Err(FrameError::Malformed("stream ended inside a frame"))
        }
        Err(quinn::ReadExactError::ReadError(e)) => Err(FrameError::Read(e)),
    }
}

/// Reads one byte (a kind or a status); `None` at a clean end of stream.
pub(crate) async fn read_u8(recv: &mut RecvStream) -> Result<Option<u8>, FrameError> {
    let mut b = [0u8; 1];
    Ok(fill(recv, &mut b).await?.then_some(b[0]))
}

/// Reads one frame of at most `limit` bytes; `None` at a clean end of stream
/// (between frames). The length is checked before anything is allocated, so a
/// hostile prefix costs nothing.
pub(crate) async fn read_frame(
    recv: &mut RecvStream,
    limit: usize,
) -> Result<Option<Bytes>, FrameError> {
    let mut prefix = [0u8; 4];
    if !fill(recv, &mut prefix).await? {
        return Ok(None);
    }
    let len = u32::from_be_bytes(prefix);
    let len_usize = usize::try_from(len).unwrap_or(usize::MAX);
    if len_usize > limit {
        return Err(FrameError::TooLarge {
            len: u64::from(len),
            limit,
        });
    }
    // The buffer grows with what actually arrives (never past `len`), so a
    // prefix that announces much and sends little costs little.
    let mut buf: Vec<u8> = Vec::with_capacity(len_usize.min(INITIAL_FRAME_BUFFER));
    while buf.len() < len_usize {
        let chunk = match recv.read_chunk(len_usize - buf.len(), true).await {
            Ok(Some(chunk)) => chunk.bytes,
            Ok(None) => return Err(FrameError::Malformed("stream ended inside a frame")),
            Err(e) => return Err(FrameError::Read(e)),
        };
        let need = buf.len() + chunk.len();
        if need > buf.capacity() {
            let target = (buf.capacity() * 2).max(need).min(len_usize);
            buf.reserve_exact(target - buf.len());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Some(Bytes::from(buf)))
}

/// Reads one frame that must be there.
pub(crate) async fn read_required(
    recv: &mut RecvStream,
    limit: usize,
) -> Result<Bytes, FrameError> {
    read_frame(recv, limit)
        .await?
        .ok_or(FrameError::Malformed("stream ended before its frame"))
}

/// Checks that the peer finished its side right after the last frame.
pub(crate) async fn expect_end(recv: &mut RecvStream) -> Result<(), FrameError> {
    match read_u8(recv).await? {
        None => Ok(()),
        Some(_) => Err(FrameError::Malformed("trailing bytes after the request")),
    }
}

/// The 4-byte length prefix of a payload; `None` if it does not fit a u32.
fn prefix(len: usize) -> Option<Bytes> {
    let len = u32::try_from(len).ok()?;
    Some(Bytes::copy_from_slice(&len.to_be_bytes()))
}

/// Writes `lead` (a kind or status byte, if any), then `payload` as one frame,
/// without copying the payload.
pub(crate) async fn write_frame(
    send: &mut SendStream,
    lead: Option<u8>,
    payload: Bytes,
) -> Result<(), WriteFrameError> {
    let prefix = prefix(payload.len()).ok_or(WriteFrameError::TooLong(payload.len()))?;
    let mut chunks = Vec::with_capacity(3);
    if let Some(b) = lead {
        chunks.push(Bytes::copy_from_slice(&[b]));
    }
    chunks.push(prefix);
    chunks.push(payload);
    send.write_all_chunks(&mut chunks)
        .await
        .map_err(WriteFrameError::Write)
}

/// Why a frame could not be written.
#[derive(Debug)]
pub(crate) enum WriteFrameError {
    /// The payload does not fit a u32 length.
    TooLong(usize),
    /// The stream failed underneath.
    Write(quinn::WriteError),
}
