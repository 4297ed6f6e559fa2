//! What the connect hook leaves behind when it sends a connection into the
//! node's tunnel instead of to its destination: where the connection was
//! going and who made it, for the tunnel to carry it on.
//!
//! The connect hook only knows the socket's cookie (its local port is not
//! chosen yet), so it files the target under the cookie; the `sock_ops`
//! hook, called once the port is chosen, refiles it under the local port,
//! which is what the tunnel sees of the accepted connection.

/// Name of the LRU hash of targets by socket cookie (`u64` → [`TunnelTarget`]).
pub const REDIRECT_MAP: &str = "STK_REDIRECTS";
/// Name of the LRU hash of targets by the client socket's local port
/// (`u32` → [`TunnelTarget`]), which the tunnel reads and deletes.
pub const TUNNELED_MAP: &str = "STK_TUNNELED";

/// Where a redirected connection was going, and who opened it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TunnelTarget {
    /// The original destination address (IPv4-mapped).
    pub dst_addr: [u8; 16],
    /// The original destination port.
    pub dst_port: u16,
    /// The family (`FAMILY_IPV4`).
    pub family: u8,
    /// Zero.
    pub pad: u8,
    /// The caller's identity.
    pub src_identity: u32,
    /// The caller's zone (0: none).
    pub src_zone: u32,
    /// The destination's identity, as the caller's node knew it.
    pub dst_identity: u32,
    /// The destination's zone (0: none).
    pub dst_zone: u32,
    /// The rule that asked for encryption.
    pub rule: u32,
    /// The caller's thread group id.
    pub pid: u32,
    /// Zero.
    pub pad2: u32,
}

const _: () = assert!(core::mem::size_of::<TunnelTarget>() == 48);

// SAFETY: #[repr(C)], Copy, only integers and byte arrays with explicit
// padding: no implicit padding, every bit pattern valid.
#[cfg(feature = "user")]
unsafe impl aya::Pod for TunnelTarget {}
