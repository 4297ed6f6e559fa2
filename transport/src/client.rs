//! The calling side of one call on an open stream, shared by node-to-node
//! calls and joins: write the request, read the reply, map failures.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use quinn::{RecvStream, SendStream};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::frame::{self, code, FrameError, WriteFrameError};
use crate::TransportError;

/// Size of the body chunks of a streaming call: small enough to bound memory
/// on both sides, large enough that framing costs nothing.
pub(crate) const BODY_CHUNK_BYTES: usize = 64 * 1024;

/// Runs `fut` under `limit`, naming the peer on timeout.
pub(crate) async fn within<T>(
    addr: SocketAddr,
    limit: Duration,
    fut: impl std::future::Future<Output = Result<T, TransportError>>,
) -> Result<T, TransportError> {
    tokio::time::timeout(limit, fut)
        .await
        .unwrap_or(Err(TransportError::Timeout { addr, after: limit }))
}

fn write_err(addr: SocketAddr, e: WriteFrameError) -> TransportError {
    match e {
        WriteFrameError::TooLong(len) => TransportError::FrameTooLarge {
            len: len as u64,
            limit: u32::MAX as usize,
        },
        WriteFrameError::Write(e) => TransportError::from_write(addr, e),
    }
}

/// Checks a request against the limit before anything is sent.
pub(crate) fn check_len(len: usize, limit: usize) -> Result<(), TransportError> {
    if len > limit {
        return Err(TransportError::FrameTooLarge {
            len: len as u64,
            limit,
        });
    }
    Ok(())
}

/// Sends a one-frame request of `kind` and reads the reply.
pub(crate) async fn single(
    addr: SocketAddr,
    (mut send, mut recv): (SendStream, RecvStream),
    kind: u8,
    request: Bytes,
    reply_limit: usize,
) -> Result<Bytes, TransportError> {
    if let Err(e) = frame::write_frame(&mut send, Some(kind), request).await {
        let err = write_err(addr, e);
        // A stopped stream may still carry the server's reason as a reset: prefer it.
        return match read_reply(addr, &mut recv, reply_limit).await {
            Err(reply_err @ TransportError::Rejected { .. }) => Err(reply_err),
            _ => Err(err),
        };
    }
    // Finishing tells the server the request is whole.
    let _ = send.finish();
    read_reply(addr, &mut recv, reply_limit).await
}

/// Sends a header frame, then `body` in bounded chunks, then reads the reply.
/// `step` bounds each step (a chunk read and written, the reply), not the whole
/// call, so a large body on a slow link is not cut off while it progresses.
pub(crate) async fn streaming(
    addr: SocketAddr,
    (mut send, mut recv): (SendStream, RecvStream),
    header: Bytes,
    mut body: impl AsyncRead + Unpin + Send,
    limit: usize,
    step: Duration,
) -> Result<Bytes, TransportError> {
    let chunk_size = BODY_CHUNK_BYTES.min(limit).max(1);
    let mut buf = BytesMut::with_capacity(chunk_size);
    let sent = within(addr, step, async {
        frame::write_frame(&mut send, Some(frame::KIND_STREAM), header)
            .await
            .map_err(|e| write_err(addr, e))
    })
    .await;
    let mut sent = sent.map(|()| true);
    while let Ok(true) = sent {
        sent = within(addr, step, async {
            buf.reserve(chunk_size);
            let n = (&mut body)
                .take(chunk_size as u64)
                .read_buf(&mut buf)
                .await?;
            if n == 0 {
                return Ok(false);
            }
            let chunk = buf.split().freeze();
            frame::write_frame(&mut send, None, chunk)
                .await
                .map_err(|e| write_err(addr, e))?;
            Ok(true)
        })
        .await;
    }
    match sent {
        Ok(_) => {
            let _ = send.finish();
        }
        // The server stopped reading: its reply (or reset) says why.
        Err(TransportError::Rejected { .. }) => {}
        Err(e) => {
            // Our side failed (body source, timeout): tell the server to drop the call.
            let _ = send.reset(code::varint(code::CANCELLED));
            return Err(e);
        }
    }
    within(addr, step, read_reply(addr, &mut recv, limit)).await
}

/// Reads a status byte and one frame: the reply or the remote error.
pub(crate) async fn read_reply(
    addr: SocketAddr,
    recv: &mut RecvStream,
    limit: usize,
) -> Result<Bytes, TransportError> {
    let map = |e: FrameError| match e {
        FrameError::TooLarge { len, limit } => TransportError::FrameTooLarge { len, limit },
        FrameError::Malformed(what) => TransportError::Malformed(format!("reply: {what}")),
        FrameError::Read(e) => TransportError::from_read(addr, e),
    };
    let status = frame::read_u8(recv).await.map_err(map)?.ok_or_else(|| {
        TransportError::Malformed("the peer closed the stream without a reply".into())
    })?;
    let payload = frame::read_required(recv, limit).await.map_err(map)?;
    // The reply is complete; nothing more is needed from this stream.
    let _ = recv.stop(code::varint(code::DONE));
    match status {
        frame::STATUS_OK => Ok(payload),
        frame::STATUS_ERR => Err(TransportError::Remote(
            String::from_utf8_lossy(&payload).into_owned(),
        )),
        other => Err(TransportError::Malformed(format!(
            "unknown reply status {other}"
        ))),
    }
}
