//! What travels in a tunnel: the handshake's payloads and the framing of
//! messages on the TCP stream.
//!
//! Handshake messages are a big-endian `u16` length and the Noise message.
//! Transport frames are a `u16` length, the sending nonce (`u64`), and the
//! Noise message, whose plaintext is the data and then a kind byte (last,
//! so frames open back to back into one buffer of data).

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::TunnelError;

/// The largest Noise message.
pub(crate) const MAX_MESSAGE: usize = 65_535;
/// Bytes of the AEAD tag on every transport message.
pub(crate) const TAG_LEN: usize = 16;
/// Bytes before a transport message: its length and its nonce.
pub(crate) const FRAME_HEADER: usize = 2 + 8;
/// Application bytes one transport frame carries at most.
pub(crate) const MAX_DATA: usize = MAX_MESSAGE - TAG_LEN - 1;

/// Transport frame kind: application data.
pub(crate) const KIND_DATA: u8 = 0;
/// Transport frame kind: the sender will send no more data (a TCP FIN).
pub(crate) const KIND_FIN: u8 = 1;
/// Transport frame kind: the sender rekeys its direction after this frame.
pub(crate) const KIND_REKEY: u8 = 2;

/// Version of the [`Opening`] layout.
const OPENING_VERSION: u8 = 1;
/// Bytes of an encoded [`Opening`].
const OPENING_LEN: usize = 28;

/// What the initiator asks for: where the connection goes and who opened
/// it, as the initiator's node identified the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opening {
    /// The connection's original destination.
    pub destination: SocketAddr,
    /// The caller's identity number.
    pub source_identity: u32,
    /// The caller's zone number (0: none).
    pub source_zone: u32,
}

impl Opening {
    pub(crate) fn encode(&self) -> [u8; OPENING_LEN] {
        let mut out = [0u8; OPENING_LEN];
        out[0] = OPENING_VERSION;
        out[2..4].copy_from_slice(&self.destination.port().to_be_bytes());
        let ip = match self.destination.ip() {
            IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            IpAddr::V6(v6) => v6,
        };
        out[4..20].copy_from_slice(&ip.octets());
        out[20..24].copy_from_slice(&self.source_identity.to_be_bytes());
        out[24..28].copy_from_slice(&self.source_zone.to_be_bytes());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Opening, TunnelError> {
        if bytes.len() != OPENING_LEN {
            return Err(TunnelError::Malformed("an opening is 28 bytes"));
        }
        if bytes[0] != OPENING_VERSION {
            return Err(TunnelError::Malformed("unknown opening version"));
        }
        let word = |at: usize| {
            u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let mut octets = [0u8; 16];
        octets.copy_from_slice(&bytes[4..20]);
        let v6 = Ipv6Addr::from(octets);
        let ip = v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4);
        Ok(Opening {
            destination: SocketAddr::new(ip, u16::from_be_bytes([bytes[2], bytes[3]])),
            source_identity: word(20),
            source_zone: word(24),
        })
    }
}

/// Why a responder refused a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The policy does not allow this source an encrypted connection there.
    Policy,
    /// The destination is not on the responder's node.
    NotHere,
    /// The destination did not accept the connection.
    Unreachable,
    /// The responder is shedding load.
    Busy,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::Policy => "the policy does not allow it",
            Refusal::NotHere => "the destination is not on that node",
            Refusal::Unreachable => "the destination does not accept connections",
            Refusal::Busy => "the node is busy",
        })
    }
}

/// The responder's answer, sent in the second handshake message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// The connection is made; relay.
    Admitted,
    /// Refused, for this reason.
    Refused(Refusal),
}

impl Admission {
    pub(crate) fn encode(self) -> [u8; 1] {
        [match self {
            Admission::Admitted => 0,
            Admission::Refused(Refusal::Policy) => 1,
            Admission::Refused(Refusal::NotHere) => 2,
            Admission::Refused(Refusal::Unreachable) => 3,
            Admission::Refused(Refusal::Busy) => 4,
        }]
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Admission, TunnelError> {
        match bytes {
            [0] => Ok(Admission::Admitted),
            [1] => Ok(Admission::Refused(Refusal::Policy)),
            [2] => Ok(Admission::Refused(Refusal::NotHere)),
            [3] => Ok(Admission::Refused(Refusal::Unreachable)),
            [4] => Ok(Admission::Refused(Refusal::Busy)),
            _ => Err(TunnelError::Malformed("unknown admission")),
        }
    }
}

/// Writes one handshake message.
pub(crate) async fn write_handshake<W: AsyncWrite + Unpin>(
    writer: &mut W,
    message: &[u8],
) -> Result<(), TunnelError> {
    let len = u16::try_from(message.len())
        .map_err(|_| TunnelError::Malformed("handshake message too long"))?;
    let mut out = Vec::with_capacity(2 + message.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(message);
    writer.write_all(&out).await?;
    Ok(())
}

/// Reads one handshake message into `buf`; returns its length.
pub(crate) async fn read_handshake<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut [u8],
) -> Result<usize, TunnelError> {
    let mut len = [0u8; 2];
    reader.read_exact(&mut len).await?;
    let len = usize::from(u16::from_be_bytes(len));
    if len > buf.len() {
        return Err(TunnelError::Malformed("handshake message too long"));
    }
    reader.read_exact(&mut buf[..len]).await?;
    Ok(len)
}
