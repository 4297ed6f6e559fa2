//! The settings user space gives the kernel programs at load time: which
//! cgroup subtree is this node's, and where in kernel structures the facts
//! the exec tracepoint reads are (offsets from the running kernel's BTF,
//! because the programs cannot carry CO-RE relocations).

/// Name of the one-slot array holding the [`DataplaneConfig`].
pub const CONFIG_MAP: &str = "STK_CONFIG";

/// The only slot of [`CONFIG_MAP`].
pub const CONFIG_INDEX: u32 = 0;

/// Byte offsets inside kernel structures, from BTF. Zero where unknown: the
/// exec tracepoint then treats every new binary as unknown (fail closed).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelOffsets {
    /// `task_struct.mm`.
    pub task_mm: u32,
    /// `mm_struct.exe_file`.
    pub mm_exe_file: u32,
    /// `file.f_inode`.
    pub file_inode: u32,
    /// `inode.i_sb`.
    pub inode_sb: u32,
    /// `super_block.s_dev`.
    pub sb_dev: u32,
    /// `inode.i_ino`.
    pub inode_ino: u32,
    /// Seconds of the inode change time (`i_ctime_sec`, or `__i_ctime.tv_sec`).
    pub inode_ctime_sec: u32,
    /// Nanoseconds of the inode change time.
    pub inode_ctime_nsec: u32,
}

/// Byte offsets of tracepoint fields, from tracefs `format` files (their
/// layout changes between kernel versions).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TracepointOffsets {
    /// `sched_process_exec`: the `__data_loc` word of `filename`.
    pub exec_filename: u32,
    /// `sched_process_fork`: `parent_pid`.
    pub fork_parent_pid: u32,
    /// `sched_process_fork`: `child_pid`.
    pub fork_child_pid: u32,
}

/// Everything the programs need to know about this node and this kernel.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DataplaneConfig {
    /// Id (inode number) of the cgroup v2 directory the hooks are attached
    /// to; the tracepoints ignore processes outside it.
    pub subtree_cgroup_id: u64,
    /// Depth of that cgroup below the cgroup v2 root (the root is 0).
    pub subtree_level: u32,
    /// 1 once user space has written this structure.
    pub ready: u32,
    /// Kernel structure offsets.
    pub kernel: KernelOffsets,
    /// Tracepoint field offsets.
    pub tracepoints: TracepointOffsets,
    /// The loopback port of this node's tunnel, where the connect hook
    /// sends connections a rule encrypts; 0 when the node has no tunnel,
    /// and then those connections are refused.
    pub tunnel_port: u16,
    /// Zero.
    pub pad: u16,
}

/// Name of the per-CPU array of [`DataplaneStats`].
pub const STATS_MAP: &str = "STK_STATS";

/// The only slot of [`STATS_MAP`].
pub const STATS_INDEX: u32 = 0;

/// Counters of the kernel programs, one copy per CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DataplaneStats {
    /// Flows allowed.
    pub allowed: u64,
    /// Flows denied.
    pub denied: u64,
    /// Execs seen in this node's subtree.
    pub execs: u64,
    /// Events that did not fit in the ring buffer.
    pub events_lost: u64,
}

impl DataplaneStats {
    /// Field-wise sum, saturating so a corrupt value cannot panic the reader.
    #[must_use]
    pub const fn saturating_add(self, other: Self) -> Self {
        Self {
            allowed: self.allowed.saturating_add(other.allowed),
            denied: self.denied.saturating_add(other.denied),
            execs: self.execs.saturating_add(other.execs),
            events_lost: self.events_lost.saturating_add(other.events_lost),
        }
    }
}

const _: () = assert!(core::mem::size_of::<KernelOffsets>() == 32);
const _: () = assert!(core::mem::size_of::<TracepointOffsets>() == 12);
const _: () = assert!(core::mem::size_of::<DataplaneConfig>() == 64);
const _: () = assert!(core::mem::size_of::<DataplaneStats>() == 32);

// SAFETY: #[repr(C)], Copy, only integers, explicit padding: no implicit
// padding and every bit pattern is valid.
#[cfg(feature = "user")]
mod pod {
    use super::*;
    unsafe impl aya::Pod for DataplaneConfig {}
    unsafe impl aya::Pod for DataplaneStats {}
}
