//! Process tracepoints: at exec a process takes the identity of its binary
//! (found by device, inode and change time, so no user-space round trip can
//! be raced), or of its cgroup when the binary is unknown; forks inherit the
//! parent's identity; exits free the entry. Every exec in the node's subtree
//! is reported on the ring buffer.

use aya_ebpf::{
    helpers::{
        bpf_get_current_ancestor_cgroup_id, bpf_get_current_cgroup_id, bpf_get_current_comm,
        bpf_get_current_pid_tgid, bpf_get_current_task, bpf_ktime_get_boot_ns,
        bpf_probe_read_kernel, bpf_probe_read_kernel_str_bytes,
    },
    macros::tracepoint,
    programs::TracePointContext,
    EbpfContext,
};
use stockade_bpf_common::{
    config::DataplaneConfig,
    events::{Event, EVENT_EXEC, FLAG_UNKNOWN_BINARY},
    maps::{ExecKey, Subject},
};

use crate::maps::{bump, config, hash_get, lru_get, STK_CGROUPS, STK_EVENTS, STK_EXECS, STK_PROCS};

/// Whether the current task lives in the node's cgroup subtree.
#[inline(always)]
fn in_subtree(config: &DataplaneConfig) -> bool {
    // SAFETY: a kernel helper with no preconditions.
    let ancestor = unsafe { bpf_get_current_ancestor_cgroup_id(config.subtree_level as i32) };
    ancestor == config.subtree_cgroup_id
}

/// Reads a kernel pointer-sized or integer field at `base + offset`.
#[inline(always)]
fn read<T>(base: u64, offset: u32) -> Option<T> {
    if base == 0 {
        return None;
    }
    // SAFETY: bpf_probe_read_kernel validates the address and fails
    // instead of faulting.
    unsafe { bpf_probe_read_kernel((base + u64::from(offset)) as *const T).ok() }
}

/// The current task's executable as (device, inode, change time).
#[inline(always)]
fn exec_key(config: &DataplaneConfig) -> Option<ExecKey> {
    let o = &config.kernel;
    if o.mm_exe_file == 0 || o.file_inode == 0 {
        return None;
    }
    // SAFETY: a kernel helper with no preconditions.
    let task = unsafe { bpf_get_current_task() };
    let mm: u64 = read(task, o.task_mm)?;
    let file: u64 = read(mm, o.mm_exe_file)?;
    let inode: u64 = read(file, o.file_inode)?;
    let sb: u64 = read(inode, o.inode_sb)?;
    let dev: u32 = read(sb, o.sb_dev)?;
    let ino: u64 = read(inode, o.inode_ino)?;
    let sec: i64 = read(inode, o.inode_ctime_sec)?;
    // Since 6.13 the top bit of the nanoseconds flags a queried ctime
    // (multigrain timestamps); it is never part of the time.
    let nsec: u32 = read::<u32>(inode, o.inode_ctime_nsec)? & !(1 << 31);
    Some(ExecKey {
        dev: u64::from(dev),
        inode: ino,
        ctime_ns: sec
            .wrapping_mul(1_000_000_000)
            .wrapping_add(i64::from(nsec)),
    })
}

/// Gives the new image its identity and reports the exec.
#[tracepoint(category = "sched", name = "sched_process_exec")]
pub fn stockade_exec(ctx: TracePointContext) -> u32 {
    let Some(config) = config() else {
        return 0;
    };
    if !in_subtree(config) {
        return 0;
    }
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    let key = exec_key(config);
    let known = key.and_then(|k| hash_get(&STK_EXECS, &k));
    let subject = match known {
        Some(subject) => subject,
        None => {
            // SAFETY: a kernel helper with no preconditions.
            let cgroup = unsafe { bpf_get_current_cgroup_id() };
            hash_get(&STK_CGROUPS, &cgroup).unwrap_or_default()
        }
    };
    // Best effort: the LRU map makes room by evicting the stalest entry.
    let _ = STK_PROCS.insert(&tgid, &subject, 0);
    bump(|s| s.execs = s.execs.wrapping_add(1));
    report_exec(
        &ctx,
        config,
        tgid,
        subject,
        key.unwrap_or_default(),
        known.is_none(),
    );
    0
}

#[inline(always)]
fn report_exec(
    ctx: &TracePointContext,
    config: &DataplaneConfig,
    tgid: u32,
    subject: Subject,
    key: ExecKey,
    unknown: bool,
) {
    let Some(mut entry) = STK_EVENTS.reserve::<Event>(0) else {
        bump(|s| s.events_lost = s.events_lost.wrapping_add(1));
        return;
    };
    let event = entry.as_mut_ptr();
    // SAFETY: `event` points to reserved ring-buffer memory the size of an
    // Event and every field is written before submission; the filename is
    // read through its `__data_loc` word, whose low half is the offset from
    // the start of the record.
    unsafe {
        (*event).kind = EVENT_EXEC;
        (*event).flags = if unknown { FLAG_UNKNOWN_BINARY } else { 0 };
        (*event).protocol = 0;
        (*event).direction = 0;
        (*event).family = 0;
        (*event).action = 0;
        (*event).pad = [0; 2];
        (*event).pid = tgid;
        (*event).rule = 0;
        (*event).src = subject;
        (*event).dst = Subject::default();
        (*event).src_port = 0;
        (*event).dst_port = 0;
        (*event).pad2 = 0;
        (*event).src_addr = [0; 16];
        (*event).dst_addr = [0; 16];
        (*event).exec = key;
        (*event).time_ns = bpf_ktime_get_boot_ns();
        (*event).comm = bpf_get_current_comm().unwrap_or([0; 16]);
        (*event).path[0] = 0;
        let offset = config.tracepoints.exec_filename as usize;
        if let Ok(loc) = ctx.read_at::<u32>(offset) {
            let name = (ctx.as_ptr() as *const u8).add((loc & 0xffff) as usize);
            let _ = bpf_probe_read_kernel_str_bytes(name, &mut (*event).path);
        }
    }
    entry.submit(0);
}

/// A child starts with its parent's identity until it execs.
#[tracepoint(category = "sched", name = "sched_process_fork")]
pub fn stockade_fork(ctx: TracePointContext) -> u32 {
    let Some(config) = config() else {
        return 0;
    };
    if !in_subtree(config) {
        return 0;
    }
    let t = &config.tracepoints;
    // SAFETY: the offsets come from this kernel's tracepoint format.
    let (parent, child) = unsafe {
        (
            ctx.read_at::<i32>(t.fork_parent_pid as usize),
            ctx.read_at::<i32>(t.fork_child_pid as usize),
        )
    };
    let (Ok(parent), Ok(child)) = (parent, child) else {
        return 0;
    };
    if let Some(subject) = lru_get(&STK_PROCS, &(parent as u32)) {
        let _ = STK_PROCS.insert(&(child as u32), &subject, 0);
    }
    0
}

/// A task that exits frees its entry (a thread's, or the process's).
#[tracepoint(category = "sched", name = "sched_process_exit")]
pub fn stockade_exit(_ctx: TracePointContext) -> u32 {
    let tid = bpf_get_current_pid_tgid() as u32;
    let _ = STK_PROCS.remove(&tid);
    0
}
