//! Stockade's dataplane: the kernel-side eBPF programs (built from `ebpf/` by
//! this crate's build script and embedded in it) and everything user space
//! does with them — loading, attaching at a node's cgroup subtree and pinning
//! in bpffs ([`Dataplane::open`]), adopting what an earlier run pinned,
//! writing map contents ([`Dataplane::write`]), reading counters, flow
//! summaries and events, reading a running node's maps from another process
//! ([`read_pinned`]), and removing it all ([`uninstall`]).
//!
//! The map keys and values are the `#[repr(C)]` types of
//! `stockade-bpf-common`, re-exported here as [`common`].

pub mod btf;
mod contents;
mod dataplane;
mod error;
mod events;
mod flows;
mod fs;
mod loader;
mod offsets;
mod programs;
mod tunnel;

pub use contents::{diff, MapContents, MapDiff};
pub use dataplane::{
    cgroup_id, exec_key, kernel_dev, process_exists, read_pinned, Dataplane, WriteSummary,
};
pub use error::BpfError;
pub use events::{decode as decode_event, Event, EventReader};
pub use flows::FlowSummaries;
pub use fs::{cgroup2_root, ensure_kernel_filesystems, BPFFS_PATH, TRACEFS_PATH};
pub use loader::{uninstall, Attachment, DataplaneSettings, Uninstalled};
pub use stockade_bpf_common as common;
pub use tunnel::{target_destination, TunnelTargets};

/// The default folder in bpffs for a node's pins.
pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf/stockade";
