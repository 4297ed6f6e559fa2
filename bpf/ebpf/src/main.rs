//! Stockade's kernel-side eBPF programs. For now only the toolchain probes:
//! an exec tracepoint and an allow-all `cgroup_skb` egress hook, both of which
//! bump a per-CPU counter so the loader's tests can see that they ran.
#![no_std]
#![no_main]

use aya_ebpf::{
    macros::{cgroup_skb, map, tracepoint},
    maps::PerCpuArray,
    programs::{SkBuffContext, TracePointContext},
};
use stockade_bpf_common::{ProbeCounters, PROBE_COUNTERS_ENTRIES, PROBE_COUNTERS_INDEX};

/// Verdict a `cgroup_skb` program returns to let the packet through.
const SKB_PASS: i32 = 1;

/// Probe counters, one [`ProbeCounters`] per CPU. The static's name is the map
/// name the loader looks up (`stockade_bpf_common::PROBE_COUNTERS_MAP`).
#[map]
static PROBE_COUNTERS: PerCpuArray<ProbeCounters> =
    PerCpuArray::with_max_entries(PROBE_COUNTERS_ENTRIES, 0);

/// Applies `update` to this CPU's copy of the probe counters.
#[inline(always)]
fn bump(update: impl FnOnce(&mut ProbeCounters)) {
    if let Some(counters) = PROBE_COUNTERS.get_ptr_mut(PROBE_COUNTERS_INDEX) {
        // SAFETY: the pointer comes from a successful map lookup, so it is valid
        // and aligned; it is this CPU's copy and BPF programs do not migrate
        // between CPUs, so nothing else writes it concurrently (a rare lost
        // increment under same-CPU preemption is acceptable for a counter).
        update(unsafe { &mut *counters });
    }
}

/// Runs on every successful `execve`; counts it.
#[tracepoint(category = "sched", name = "sched_process_exec")]
pub fn stockade_exec_probe(_ctx: TracePointContext) -> u32 {
    bump(|c| c.execs = c.execs.wrapping_add(1));
    0
}

/// Runs on every packet leaving the cgroup it is attached to; counts it and
/// lets it pass.
#[cgroup_skb(egress)]
pub fn stockade_egress_probe(_ctx: SkBuffContext) -> i32 {
    bump(|c| c.egress_packets = c.egress_packets.wrapping_add(1));
    SKB_PASS
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects any program that could reach this, so it is never
    // executed; an endless loop satisfies the `!` return type.
    loop {}
}
