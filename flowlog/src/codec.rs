//! On-disk encoding: the segment header and the record frames.
//!
//! A segment is `MAGIC (8 bytes) | VERSION (u32 LE)` followed by frames
//! `len (u32 LE) | crc32 (u32 LE) | payload (len bytes)`, where the payload is
//! the postcard encoding of one record and the checksum covers the length
//! bytes and the payload, so a flipped bit in either is caught.

use std::io::{self, Read};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// First bytes of every segment.
pub(crate) const MAGIC: &[u8; 8] = b"STKFLOG1";
/// The format version this build writes and reads.
pub(crate) const VERSION: u32 = 1;
/// Bytes of the segment header.
pub(crate) const HEADER_LEN: u64 = 12;
/// Bytes of a frame before its payload.
pub(crate) const FRAME_HEADER_LEN: usize = 8;
/// The largest encoded record the log accepts (1 MiB).
pub const MAX_RECORD_BYTES: usize = 1 << 20;

/// The header every segment starts with.
pub(crate) fn header() -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..8].copy_from_slice(MAGIC);
    h[8..].copy_from_slice(&VERSION.to_le_bytes());
    h
}

/// What the first bytes of a file say about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderCheck {
    /// Our magic and version.
    Ok,
    /// Shorter than a header but a prefix of ours: a segment whose creation
    /// was cut short by a crash.
    Torn,
    /// Not ours.
    Foreign,
    /// Ours, another version.
    Version(u32),
}

/// Classifies the first (at most [`HEADER_LEN`]) bytes of a file.
pub(crate) fn check_header(bytes: &[u8]) -> HeaderCheck {
    let ours = header();
    if bytes.len() < ours.len() {
        return if ours.starts_with(bytes) {
            HeaderCheck::Torn
        } else {
            HeaderCheck::Foreign
        };
    }
    if &bytes[..8] != MAGIC {
        return HeaderCheck::Foreign;
    }
    let mut v = [0u8; 4];
    v.copy_from_slice(&bytes[8..12]);
    match u32::from_le_bytes(v) {
        VERSION => HeaderCheck::Ok,
        other => HeaderCheck::Version(other),
    }
}

fn checksum(len: [u8; 4], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&len);
    h.update(payload);
    h.finalize()
}

/// Why a record could not be appended to a buffer.
#[derive(Debug)]
pub(crate) enum EncodeError {
    TooLarge(usize),
    Postcard(postcard::Error),
}

/// Appends one framed record to `buf`; on error `buf` is left as it was.
pub(crate) fn encode_frame<R: Serialize>(buf: &mut Vec<u8>, record: &R) -> Result<(), EncodeError> {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; FRAME_HEADER_LEN]);
    if let Err(e) = postcard::to_io(record, &mut *buf) {
        buf.truncate(start);
        return Err(EncodeError::Postcard(e));
    }
    let len = buf.len() - start - FRAME_HEADER_LEN;
    if len > MAX_RECORD_BYTES {
        buf.truncate(start);
        return Err(EncodeError::TooLarge(len));
    }
    // `len` ≤ 1 MiB, so it fits a u32.
    let len_bytes = (len as u32).to_le_bytes();
    let crc = checksum(len_bytes, &buf[start + FRAME_HEADER_LEN..]);
    buf[start..start + 4].copy_from_slice(&len_bytes);
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// Decodes one payload.
pub(crate) fn decode<R: DeserializeOwned>(payload: &[u8]) -> Result<R, postcard::Error> {
    postcard::from_bytes(payload)
}

/// Why reading frames stopped before the end of the readable bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadFrame {
    /// Fewer bytes left than the frame announces: a write cut short.
    Torn,
    /// A length above [`MAX_RECORD_BYTES`].
    BadLength(u32),
    /// The checksum does not match.
    Checksum,
    /// The checksum matches but the payload is not a record of this type.
    Decode,
}

/// One step of a [`FrameReader`].
pub(crate) enum Frame<'a> {
    /// A frame whose checksum matched.
    Payload(&'a [u8]),
    /// Exactly at the end of the readable bytes.
    End,
    /// A frame that cannot be trusted; nothing after it can be either.
    Bad(BadFrame),
}

/// Reads frames from the bytes after a segment header, up to a known length.
pub(crate) struct FrameReader<T> {
    inner: T,
    remaining: u64,
    payload: Vec<u8>,
}

impl<T: Read> FrameReader<T> {
    /// Reads at most `limit` bytes of frames from `inner`.
    pub(crate) fn new(inner: T, limit: u64) -> Self {
        FrameReader {
            inner,
            remaining: limit,
            payload: Vec::new(),
        }
    }

    /// The next frame; the returned slice lives until the next call.
    pub(crate) fn next_frame(&mut self) -> io::Result<Frame<'_>> {
        if self.remaining == 0 {
            return Ok(Frame::End);
        }
        if self.remaining < FRAME_HEADER_LEN as u64 {
            return Ok(Frame::Bad(BadFrame::Torn));
        }
        let mut head = [0u8; FRAME_HEADER_LEN];
        self.inner.read_exact(&mut head)?;
        let mut len_bytes = [0u8; 4];
        len_bytes.copy_from_slice(&head[..4]);
        let mut crc_bytes = [0u8; 4];
        crc_bytes.copy_from_slice(&head[4..]);
        let len = u32::from_le_bytes(len_bytes);
        if len as usize > MAX_RECORD_BYTES {
            return Ok(Frame::Bad(BadFrame::BadLength(len)));
        }
        let after_head = self.remaining - FRAME_HEADER_LEN as u64;
        if u64::from(len) > after_head {
            return Ok(Frame::Bad(BadFrame::Torn));
        }
        self.payload.resize(len as usize, 0);
        self.inner.read_exact(&mut self.payload)?;
        if checksum(len_bytes, &self.payload) != u32::from_le_bytes(crc_bytes) {
            return Ok(Frame::Bad(BadFrame::Checksum));
        }
        self.remaining = after_head - u64::from(len);
        Ok(Frame::Payload(&self.payload))
    }

    /// Bytes not yet consumed by a good frame.
    pub(crate) fn remaining(&self) -> u64 {
        self.remaining
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(records: &[(u64, String)]) -> Vec<u8> {
        let mut buf = Vec::new();
        for r in records {
            encode_frame(&mut buf, r).expect("encodes");
        }
        buf
    }

    #[test]
    fn frames_round_trip() {
        let recs = vec![(1u64, "a".to_string()), (u64::MAX, "prod/web".to_string())];
        let buf = frames(&recs);
        let mut r = FrameReader::new(&buf[..], buf.len() as u64);
        let mut out = Vec::new();
        while let Frame::Payload(p) = r.next_frame().expect("reads") {
            out.push(decode::<(u64, String)>(p).expect("decodes"));
        }
        assert_eq!(out, recs);
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn flipped_byte_and_short_tail_are_caught() {
        let buf = frames(&[(7, "x".repeat(20))]);
        for i in 0..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x40;
            let mut r = FrameReader::new(&bad[..], bad.len() as u64);
            assert!(
                matches!(r.next_frame().expect("reads"), Frame::Bad(_)),
                "flip at {i} undetected"
            );
        }
        let mut r = FrameReader::new(&buf[..buf.len() - 1], buf.len() as u64 - 1);
        assert!(matches!(
            r.next_frame().expect("reads"),
            Frame::Bad(BadFrame::Torn)
        ));
    }

    #[test]
    fn oversized_record_is_refused_and_buffer_kept() {
        let mut buf = frames(&[(1, "ok".to_string())]);
        let before = buf.clone();
        let big = vec![0u8; MAX_RECORD_BYTES + 1];
        assert!(matches!(
            encode_frame(&mut buf, &big),
            Err(EncodeError::TooLarge(_))
        ));
        assert_eq!(buf, before);
    }

    #[test]
    fn headers_are_classified() {
        assert_eq!(check_header(&header()), HeaderCheck::Ok);
        assert_eq!(check_header(b""), HeaderCheck::Torn);
        assert_eq!(check_header(b"STKF"), HeaderCheck::Torn);
        assert_eq!(check_header(b"hello world!"), HeaderCheck::Foreign);
        assert_eq!(check_header(b"{\"a\""), HeaderCheck::Foreign);
        let mut v2 = header();
        v2[8] = 2;
        assert_eq!(check_header(&v2), HeaderCheck::Version(2));
    }
}
