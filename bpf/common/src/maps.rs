//! Keys and values of the enforcement maps, byte for byte as the kernel
//! programs read them.
//!
//! Multi-byte fields that take part in a longest-prefix match are byte
//! arrays in network order: an LPM trie compares key bytes from the first,
//! so big-endian is what makes "longer prefix" mean "more specific". Padding
//! is explicit and always zero, because the kernel compares whole keys.
//!
//! Map names are the kernel program's static names and at most 15 bytes,
//! the kernel's limit for an object name.

/// Identity of an address or workload nobody identified.
pub const IDENTITY_UNKNOWN: u32 = 0;
/// Identity of addresses outside the cluster that no CIDR rule names.
pub const IDENTITY_WORLD: u32 = 1;
/// Identity of Stockade's own processes and control-plane endpoints: their
/// traffic is always allowed.
pub const IDENTITY_CLUSTER: u32 = 2;
/// Identity of a node's address as a source: a workload on another Stockade
/// node, whose own node already checked the flow at egress.
pub const IDENTITY_NODE: u32 = 3;

/// Rule number of a verdict for Stockade's own traffic.
pub const RULE_CLUSTER_TRAFFIC: u32 = 1;
/// Rule number of a denial between two zones no rule connects.
pub const RULE_ZONE_ISOLATION: u32 = 2;
/// Rule number of a decision by the zone's mode.
pub const RULE_ZONE_DEFAULT: u32 = 3;
/// Rule number of an inbound flow from a node that checked it at egress.
pub const RULE_EGRESS_CHECKED: u32 = 4;
/// Rule number of a refusal of a flow a rule encrypts that the tunnel
/// cannot carry (no tunnel on this node, not TCP, or IPv6).
pub const RULE_TUNNEL_UNAVAILABLE: u32 = 5;

/// Name of the LPM trie of policy verdicts ([`PolicyKey`] → [`Verdict`]).
pub const POLICY_MAP: &str = "STK_POLICY";
/// Name of the LPM trie of address identities ([`IpcacheKey`] → [`Subject`]).
pub const IPCACHE_MAP: &str = "STK_IPCACHE";
/// Name of the hash of cgroup identities (`u64` cgroup id → [`Subject`]).
pub const CGROUP_MAP: &str = "STK_CGROUPS";
/// Name of the hash of process identities (`u32` pid → [`Subject`]; an LRU hash).
pub const PROCESS_MAP: &str = "STK_PROCS";
/// Name of the hash of executable identities ([`ExecKey`] → [`Subject`]).
pub const EXEC_MAP: &str = "STK_EXECS";
/// Name of the hash of zone modes (`u32` zone id → [`ZoneMode`]); the key
/// [`UNMANAGED_ZONE`] holds the mode of workloads in no zone.
pub const ZONE_MAP: &str = "STK_ZONES";

/// Name of the LRU hash of socket owners (`u64` socket cookie → `u32` thread
/// group id of the process that bound it), read by the ingress hook.
pub const SOCKET_OWNER_MAP: &str = "STK_SOCKETS";
/// Name of the per-CPU LRU hash of flow summaries ([`FlowKey`] → one
/// [`FlowStats`] per CPU, which the reader adds up).
pub const FLOW_MAP: &str = "STK_FLOWS";

/// The zone-map key of workloads that belong to no zone (zone ids start at 1).
pub const UNMANAGED_ZONE: u32 = 0;

/// Bits of a [`PolicyKey`] before the port: source and destination
/// identities (32 each) and the protocol (8).
pub const POLICY_PREFIX_BITS: u32 = 72;

/// A key of the policy trie: source identity, destination identity,
/// protocol, and a block of destination ports.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PolicyKey {
    /// Significant bits of `data`: [`POLICY_PREFIX_BITS`] plus the fixed
    /// bits of the port block.
    pub prefix_len: u32,
    /// Source identity (4 bytes), destination identity (4), IP protocol (1),
    /// first port of the block (2), padding (1); integers big-endian.
    pub data: [u8; 12],
}

impl PolicyKey {
    /// The key of a port block: `port_prefix_len` leading bits of `port`
    /// are fixed (16 for one port, 0 for all).
    pub const fn new(src: u32, dst: u32, protocol: u8, port: u16, port_prefix_len: u8) -> Self {
        let s = src.to_be_bytes();
        let d = dst.to_be_bytes();
        let p = port.to_be_bytes();
        PolicyKey {
            prefix_len: POLICY_PREFIX_BITS + port_prefix_len as u32,
            data: [
                s[0], s[1], s[2], s[3], d[0], d[1], d[2], d[3], protocol, p[0], p[1], 0,
            ],
        }
    }

    /// The key a hook looks up for one connection: every bit significant.
    pub const fn lookup(src: u32, dst: u32, protocol: u8, port: u16) -> Self {
        Self::new(src, dst, protocol, port, 16)
    }
}

/// Action of a [`Verdict`]: let the connection through.
pub const ACTION_ALLOW: u8 = 0;
/// Action of a [`Verdict`]: refuse it (`EPERM`).
pub const ACTION_DENY: u8 = 1;

/// What the policy says about the flows of one [`PolicyKey`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Verdict {
    /// The rule (or built-in reason) that produced it.
    pub rule: u32,
    /// [`ACTION_ALLOW`] or [`ACTION_DENY`].
    pub action: u8,
    /// 1 when the flow goes through the Noise tunnel.
    pub encrypt: u8,
    /// Zero.
    pub pad: [u8; 2],
}

/// Family byte of an [`IpcacheKey`] for IPv4 (addresses IPv4-mapped).
pub const FAMILY_IPV4: u8 = 4;
/// Family byte of an [`IpcacheKey`] for IPv6.
pub const FAMILY_IPV6: u8 = 6;
/// Bits of an [`IpcacheKey`] before the address bits: the family byte, so a
/// short IPv6 prefix such as `::/0` never matches an IPv4 address.
pub const IPCACHE_FAMILY_BITS: u32 = 8;
/// Bits a v4 address has before its own bits (`::ffff:0:0/96`).
pub const IPV4_MAPPED_PREFIX_BITS: u32 = 96;

/// A key of the address trie: the family, a prefix and, for endpoints that
/// own one port of a shared address, the port after the address bits, so an
/// exact (address, port) entry is longer than the address alone.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IpcacheKey {
    /// Significant bits of `data`.
    pub prefix_len: u32,
    /// Family (1 byte: [`FAMILY_IPV4`] or [`FAMILY_IPV6`]), IPv6 or
    /// IPv4-mapped address (16), port (2, big-endian), padding (1).
    pub data: [u8; 20],
}

impl IpcacheKey {
    /// The key of `addr` (16 bytes, IPv4-mapped for v4) of `family`, whose
    /// first `addr_bits` bits are significant, with a port when the entry
    /// owns one (then every address bit is significant).
    pub const fn new(family: u8, addr: [u8; 16], addr_bits: u32, port: Option<u16>) -> Self {
        let mut data = [0u8; 20];
        data[0] = family;
        let mut i = 0;
        while i < 16 {
            data[1 + i] = addr[i];
            i += 1;
        }
        let prefix_len = match port {
            Some(port) => {
                let p = port.to_be_bytes();
                data[17] = p[0];
                data[18] = p[1];
                IPCACHE_FAMILY_BITS + 128 + 16
            }
            None => IPCACHE_FAMILY_BITS + addr_bits,
        };
        IpcacheKey { prefix_len, data }
    }

    /// The key a hook looks up for a remote address and port.
    pub const fn lookup(family: u8, addr: [u8; 16], port: u16) -> Self {
        Self::new(family, addr, 128, Some(port))
    }
}

/// Who a workload or address is: its identity and zone.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subject {
    /// Identity number (0: unknown).
    pub identity: u32,
    /// Zone id (0: in no zone).
    pub zone: u32,
}

/// An executable file as the exec tracepoint sees it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExecKey {
    /// Device of the file system.
    pub dev: u64,
    /// Inode number.
    pub inode: u64,
    /// Inode change time, nanoseconds since the epoch.
    pub ctime_ns: i64,
}

/// Mode of a zone: allow and record.
pub const MODE_LEARN: u8 = 0;
/// Mode of a zone: allow and alert.
pub const MODE_ALERT: u8 = 1;
/// Mode of a zone: deny and alert.
pub const MODE_ENFORCE: u8 = 2;

/// A zone's mode, as the zone map holds it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ZoneMode {
    /// [`MODE_LEARN`], [`MODE_ALERT`] or [`MODE_ENFORCE`].
    pub mode: u8,
    /// Zero.
    pub pad: [u8; 3],
}

/// Which hook decided a flow: the caller's side.
pub const DIRECTION_EGRESS: u8 = 0;
/// Which hook decided a flow: the receiver's side.
pub const DIRECTION_INGRESS: u8 = 1;

/// A flow summary's key: which process talked to which address, who both
/// ends are, on which port, and what the dataplane decided. The kernel
/// aggregates every connection of one key into one summary, so the event
/// stream carries only what is new (and denials), however many connections
/// a workload makes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlowKey {
    /// Identity that opened the flow.
    pub src_identity: u32,
    /// Identity it was opened to.
    pub dst_identity: u32,
    /// Zone of the opening side (0: none).
    pub src_zone: u32,
    /// Zone of the receiving side (0: none).
    pub dst_zone: u32,
    /// The rule (or built-in reason) that decided.
    pub rule: u32,
    /// The local process: the caller at egress, the listening socket's owner
    /// at ingress (0 when not known).
    pub pid: u32,
    /// Destination port.
    pub port: u16,
    /// IP protocol.
    pub protocol: u8,
    /// [`DIRECTION_EGRESS`] or [`DIRECTION_INGRESS`].
    pub direction: u8,
    /// [`ACTION_ALLOW`] or [`ACTION_DENY`].
    pub action: u8,
    /// [`FAMILY_IPV4`] or [`FAMILY_IPV6`].
    pub family: u8,
    /// 1 when the flow went through the tunnel.
    pub encrypted: u8,
    /// Zero.
    pub pad: u8,
    /// The other end's address (IPv4-mapped for v4): the destination at
    /// egress, the source at ingress.
    pub remote: [u8; 16],
}

/// How often a flow summary's key was seen.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlowStats {
    /// Connections (TCP) or datagrams decided (UDP).
    pub count: u64,
    /// First decision, `CLOCK_BOOTTIME` nanoseconds.
    pub first_seen_ns: u64,
    /// Latest decision, `CLOCK_BOOTTIME` nanoseconds.
    pub last_seen_ns: u64,
}

// The layouts the kernel programs rely on; a change here is a change of a
// map's key or value size and must be deliberate.
const _: () = assert!(core::mem::size_of::<PolicyKey>() == 16);
const _: () = assert!(core::mem::size_of::<Verdict>() == 8);
const _: () = assert!(core::mem::size_of::<IpcacheKey>() == 24);
const _: () = assert!(core::mem::size_of::<Subject>() == 8);
const _: () = assert!(core::mem::size_of::<ExecKey>() == 24);
const _: () = assert!(core::mem::size_of::<ZoneMode>() == 4);
const _: () = assert!(core::mem::size_of::<FlowKey>() == 48);
const _: () = assert!(core::mem::size_of::<FlowStats>() == 24);

// SAFETY: each type is #[repr(C)], Copy, made only of integers and byte
// arrays with explicit padding fields, so it has no implicit padding and
// every bit pattern is a valid value.
#[cfg(feature = "user")]
mod pod {
    use super::*;
    unsafe impl aya::Pod for PolicyKey {}
    unsafe impl aya::Pod for Verdict {}
    unsafe impl aya::Pod for IpcacheKey {}
    unsafe impl aya::Pod for Subject {}
    unsafe impl aya::Pod for ExecKey {}
    unsafe impl aya::Pod for ZoneMode {}
    unsafe impl aya::Pod for FlowKey {}
    unsafe impl aya::Pod for FlowStats {}
}
