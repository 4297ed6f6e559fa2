//! Stockade's dataplane: the kernel-side eBPF programs (built from `ebpf/` by
//! this crate's build script and embedded in it) and everything user space does
//! with them — loading and attaching, pinning in bpffs, updating maps, and
//! reading the event ring buffer.
//!
//! Most of that arrives later. Today the crate proves the toolchain end to end
//! with [`ExecProbe`], a counter on the exec tracepoint (plus an allow-all
//! `cgroup_skb` egress counter), and provides [`ensure_kernel_filesystems`],
//! which every loader needs first.

mod error;
mod fs;
mod probe;

pub use error::BpfError;
pub use fs::{ensure_kernel_filesystems, BPFFS_PATH, TRACEFS_PATH};
pub use probe::ExecProbe;
pub use stockade_bpf_common::ProbeCounters;
