//! Types shared by Stockade's kernel-side eBPF programs and their user-space
//! loader: map names, map indices, and map values laid out `#[repr(C)]` so both
//! sides agree on every byte. The crate is `no_std` and has no dependencies so
//! that the kernel side can use it; the `user` feature adds the `aya::Pod`
//! impls the loader needs.
#![no_std]

/// Name of the per-CPU array holding the probe counters. The kernel side's map
/// static must carry exactly this name, since the loader looks maps up by it.
pub const PROBE_COUNTERS_MAP: &str = "PROBE_COUNTERS";

/// The only slot of [`PROBE_COUNTERS_MAP`]: the map holds one [`ProbeCounters`]
/// per CPU, which the loader sums.
pub const PROBE_COUNTERS_INDEX: u32 = 0;

/// Number of entries in [`PROBE_COUNTERS_MAP`].
pub const PROBE_COUNTERS_ENTRIES: u32 = 1;

/// Counters bumped by the toolchain probe programs, one copy per CPU.
///
/// Per-CPU values need no atomics in the kernel: each CPU only writes its own
/// copy, and the loader adds the copies up.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProbeCounters {
    /// Times the `sched/sched_process_exec` tracepoint program ran.
    pub execs: u64,
    /// Packets seen by the `cgroup_skb/egress` program.
    pub egress_packets: u64,
}

impl ProbeCounters {
    /// Field-wise sum, saturating so a corrupt value cannot panic the loader.
    #[must_use]
    pub const fn saturating_add(self, other: Self) -> Self {
        Self {
            execs: self.execs.saturating_add(other.execs),
            egress_packets: self.egress_packets.saturating_add(other.egress_packets),
        }
    }
}

// The kernel and the loader must agree on this layout byte for byte; a change
// here is a change of the map's value size and must be deliberate.
const _: () = assert!(core::mem::size_of::<ProbeCounters>() == 16);
const _: () = assert!(core::mem::align_of::<ProbeCounters>() == 8);

// SAFETY: `ProbeCounters` is `#[repr(C)]`, `Copy`, and made only of `u64`s, so
// it has no padding and every bit pattern is a valid value.
#[cfg(feature = "user")]
unsafe impl aya::Pod for ProbeCounters {}

pub mod maps;
