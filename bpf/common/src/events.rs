//! The records the kernel programs put on the event ring buffer.

use crate::maps::{ExecKey, Subject};

/// Name of the ring buffer of [`Event`]s.
pub const EVENT_MAP: &str = "STK_EVENTS";

/// [`Event::kind`]: a connection or datagram was decided whose flow summary
/// is new (its repeats are only counted in the summary).
pub const EVENT_FLOW: u8 = 1;
/// [`Event::kind`]: a process in this node's subtree executed a binary.
pub const EVENT_EXEC: u8 = 2;

/// [`Event::flags`]: the flow was denied.
pub const FLAG_DENIED: u8 = 1;
/// [`Event::flags`]: the flow raises an alert (alert mode, or denied).
pub const FLAG_ALERT: u8 = 2;
/// [`Event::flags`]: the first flow of its summary key since the summary
/// entry was created.
pub const FLAG_FIRST_SEEN: u8 = 4;
/// [`Event::flags`]: the executed binary has no identity of its own.
pub const FLAG_UNKNOWN_BINARY: u8 = 8;
/// [`Event::flags`]: the flow was sent into the tunnel.
pub const FLAG_ENCRYPTED: u8 = 16;

/// Bytes of an executable path an event carries (longer paths are cut).
pub const EVENT_PATH_LEN: usize = 128;

/// One event. Addresses are IPv4-mapped for IPv4, in network order.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// [`EVENT_FLOW`] or [`EVENT_EXEC`].
    pub kind: u8,
    /// `FLAG_*` bits.
    pub flags: u8,
    /// IP protocol (flows).
    pub protocol: u8,
    /// `DIRECTION_*` (flows).
    pub direction: u8,
    /// `FAMILY_IPV4` or `FAMILY_IPV6` (flows).
    pub family: u8,
    /// `ACTION_*` (flows).
    pub action: u8,
    /// Zero.
    pub pad: [u8; 2],
    /// Process (thread group) id: the caller at egress, the listening
    /// socket's owner at ingress (0 when not known); the process for exec
    /// events.
    pub pid: u32,
    /// The rule (or built-in reason) that decided (flows).
    pub rule: u32,
    /// Source: the caller (egress) or the remote address (ingress); the
    /// process for exec events.
    pub src: Subject,
    /// Destination (flows).
    pub dst: Subject,
    /// Source port (flows; 0 when not yet bound).
    pub src_port: u16,
    /// Destination port (flows).
    pub dst_port: u16,
    /// Zero.
    pub pad2: u32,
    /// Source address (flows; zero when not yet bound).
    pub src_addr: [u8; 16],
    /// Destination address (flows).
    pub dst_addr: [u8; 16],
    /// The executable (exec events).
    pub exec: ExecKey,
    /// `CLOCK_BOOTTIME`-based kernel time of the event, nanoseconds.
    pub time_ns: u64,
    /// The task's command name.
    pub comm: [u8; 16],
    /// The executed path (exec events), NUL-terminated when shorter.
    pub path: [u8; EVENT_PATH_LEN],
}

const _: () = assert!(core::mem::size_of::<Event>() == 248);

// SAFETY: #[repr(C)], Copy, only integers and byte arrays with explicit
// padding fields: every bit pattern is valid.
#[cfg(feature = "user")]
unsafe impl aya::Pod for Event {}
