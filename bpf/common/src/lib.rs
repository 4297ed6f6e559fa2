//! Types shared by Stockade's kernel-side eBPF programs and their user-space
//! loader: map names and keys and values laid out `#[repr(C)]` so both sides
//! agree on every byte. The crate is `no_std` and has no dependencies so that
//! the kernel side can use it; the `user` feature adds the `aya::Pod` impls
//! the loader needs.
#![no_std]

pub mod config;
pub mod events;
pub mod maps;
pub mod tunnel;

/// Maximum entries of each map, shared so the loader can report pressure.
pub mod capacity {
    /// Policy trie entries (one per identity pair, protocol and port block).
    pub const POLICY: u32 = 1 << 19;
    /// Address trie entries.
    pub const IPCACHE: u32 = 1 << 17;
    /// Cgroup identities.
    pub const CGROUPS: u32 = 1 << 15;
    /// Process identities (LRU: threads and stale pids age out).
    pub const PROCESSES: u32 = 1 << 16;
    /// Executable identities.
    pub const EXECUTABLES: u32 = 1 << 16;
    /// Zones.
    pub const ZONES: u32 = 1 << 12;
    /// Socket owners (LRU).
    pub const SOCKETS: u32 = 1 << 16;
    /// Flow summaries (LRU).
    pub const FLOWS: u32 = 1 << 16;
    /// Connections on their way into the tunnel (LRU, per map).
    pub const TUNNELED: u32 = 1 << 14;
    /// Bytes of the event ring buffer (a power of two, at least a page).
    pub const EVENT_BYTES: u32 = 1 << 22;
}
