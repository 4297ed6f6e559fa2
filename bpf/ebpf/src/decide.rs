//! The decision procedure and what every decision leaves behind: a flow
//! summary, counters, and an event when the summary is new.
//!
//! Repeats of a flow — however many a second, allowed or denied — only
//! count in its summary, which user space reads on its own schedule: the
//! ring buffer carries what is new, so an attacker's flood of denied
//! connects costs the node a counter increment each, not an event.

use aya_ebpf::helpers::{bpf_get_current_comm, bpf_ktime_get_boot_ns};
use stockade_bpf_common::{
    events::{Event, EVENT_FLOW, FLAG_ALERT, FLAG_DENIED, FLAG_ENCRYPTED, FLAG_FIRST_SEEN},
    maps::{
        ExecKey, FlowKey, FlowStats, Subject, ACTION_ALLOW, ACTION_DENY, DIRECTION_EGRESS,
        DIRECTION_INGRESS, FAMILY_IPV4, IDENTITY_CLUSTER, IDENTITY_NODE, MODE_ALERT, MODE_ENFORCE,
        MODE_LEARN, RULE_CLUSTER_TRAFFIC, RULE_EGRESS_CHECKED, RULE_TUNNEL_UNAVAILABLE,
        RULE_ZONE_DEFAULT, RULE_ZONE_ISOLATION, UNMANAGED_ZONE,
    },
};

use crate::maps::{bump, hash_get, policy_verdict, STK_EVENTS, STK_FLOWS, STK_ZONES};

/// IP protocol number of TCP.
const IPPROTO_TCP: u8 = 6;

/// One flow as a hook sees it.
pub struct Flow {
    pub src: Subject,
    pub dst: Subject,
    pub protocol: u8,
    pub direction: u8,
    pub family: u8,
    pub src_addr: [u8; 16],
    pub dst_addr: [u8; 16],
    pub src_port: u16,
    pub dst_port: u16,
    /// Thread group id of the caller; 0 outside process context.
    pub pid: u32,
    /// The local process the flow is counted for: the caller at egress,
    /// the listening socket's owner at ingress (0 when not known).
    pub owner: u32,
}

/// What the dataplane does with a flow.
pub struct Decision {
    pub action: u8,
    /// The flow goes through the tunnel (only ever with allow).
    pub encrypt: bool,
    pub alert: bool,
    pub rule: u32,
}

const fn allow(rule: u32) -> Decision {
    Decision {
        action: ACTION_ALLOW,
        encrypt: false,
        alert: false,
        rule,
    }
}

const fn deny(rule: u32) -> Decision {
    Decision {
        action: ACTION_DENY,
        encrypt: false,
        alert: true,
        rule,
    }
}

/// Decides `flow`: Stockade's own traffic; inbound flows a node already
/// checked; the rules; zone isolation; the deciding side's zone mode.
#[inline(always)]
pub fn decide(flow: &Flow) -> Decision {
    if flow.src.identity == IDENTITY_CLUSTER || flow.dst.identity == IDENTITY_CLUSTER {
        return allow(RULE_CLUSTER_TRAFFIC);
    }
    if flow.direction == DIRECTION_INGRESS && flow.src.identity == IDENTITY_NODE {
        return allow(RULE_EGRESS_CHECKED);
    }
    if let Some(v) = policy_verdict(
        flow.src.identity,
        flow.dst.identity,
        flow.protocol,
        flow.dst_port,
    ) {
        return Decision {
            action: v.action,
            encrypt: v.action == ACTION_ALLOW && v.encrypt != 0,
            alert: v.action == ACTION_DENY,
            rule: v.rule,
        };
    }
    if flow.src.zone != UNMANAGED_ZONE
        && flow.dst.zone != UNMANAGED_ZONE
        && flow.src.zone != flow.dst.zone
    {
        return deny(RULE_ZONE_ISOLATION);
    }
    // At egress the destination zone's default applies too, the stricter
    // winning: the far node's ingress passes what a node sends.
    let mode = if flow.direction == DIRECTION_EGRESS {
        let source = zone_mode(flow.src.zone);
        if flow.dst.zone == UNMANAGED_ZONE {
            source
        } else {
            source.max(zone_mode(flow.dst.zone))
        }
    } else {
        zone_mode(flow.dst.zone)
    };
    match mode {
        MODE_ENFORCE => deny(RULE_ZONE_DEFAULT),
        MODE_ALERT => Decision {
            alert: true,
            ..allow(RULE_ZONE_DEFAULT)
        },
        _ => allow(RULE_ZONE_DEFAULT),
    }
}

/// The mode of `zone` (`MODE_*`, stricter is larger), the unmanaged
/// workloads' when it has none.
#[inline(always)]
fn zone_mode(zone: u32) -> u8 {
    hash_get(&STK_ZONES, &zone)
        .or_else(|| hash_get(&STK_ZONES, &UNMANAGED_ZONE))
        .map_or(MODE_LEARN, |m| m.mode)
}

/// Decides `flow` and records the decision; returns the action.
#[inline(always)]
pub fn decide_and_record(flow: &Flow) -> u8 {
    let decision = decide(flow);
    record(flow, &decision);
    decision.action
}

/// The decision of a flow a rule may send into the tunnel, which the
/// tunnel must be able to carry: otherwise the flow is refused, never sent
/// in the clear.
#[inline(always)]
pub fn decide_tunnelled(flow: &Flow, tunnel_port: u16) -> Decision {
    let decision = decide(flow);
    if decision.encrypt
        && (tunnel_port == 0 || flow.protocol != IPPROTO_TCP || flow.family != FAMILY_IPV4)
    {
        return deny(RULE_TUNNEL_UNAVAILABLE);
    }
    decision
}

/// Records a decision: the flow summary, the counters, and an event when
/// the summary is new.
#[inline(always)]
pub fn record(flow: &Flow, decision: &Decision) {
    let first_seen = summarise(flow, decision);
    bump(|s| {
        if decision.action == ACTION_DENY {
            s.denied = s.denied.wrapping_add(1);
        } else {
            s.allowed = s.allowed.wrapping_add(1);
        }
    });
    if first_seen {
        let mut flags = FLAG_FIRST_SEEN;
        if decision.action == ACTION_DENY {
            flags |= FLAG_DENIED;
        }
        if decision.alert {
            flags |= FLAG_ALERT;
        }
        if decision.encrypt {
            flags |= FLAG_ENCRYPTED;
        }
        emit(flow, decision, flags);
    }
}

/// Counts the flow in its summary; true when the summary entry is new.
#[inline(always)]
fn summarise(flow: &Flow, decision: &Decision) -> bool {
    let key = FlowKey {
        src_identity: flow.src.identity,
        dst_identity: flow.dst.identity,
        src_zone: flow.src.zone,
        dst_zone: flow.dst.zone,
        rule: decision.rule,
        pid: flow.owner,
        port: flow.dst_port,
        protocol: flow.protocol,
        direction: flow.direction,
        action: decision.action,
        family: flow.family,
        encrypted: u8::from(decision.encrypt),
        pad: 0,
        remote: if flow.direction == DIRECTION_EGRESS {
            flow.dst_addr
        } else {
            flow.src_addr
        },
    };
    // SAFETY: a kernel helper with no preconditions.
    let now = unsafe { bpf_ktime_get_boot_ns() };
    if let Some(stats) = STK_FLOWS.get_ptr_mut(&key) {
        // SAFETY: from a successful lookup, so valid and aligned; it is this
        // CPU's copy (a per-CPU map), which nothing else writes meanwhile.
        let stats = unsafe { &mut *stats };
        if stats.count == 0 {
            stats.first_seen_ns = now;
        }
        stats.count = stats.count.wrapping_add(1);
        stats.last_seen_ns = now;
        return false;
    }
    let stats = FlowStats {
        count: 1,
        first_seen_ns: now,
        last_seen_ns: now,
    };
    // BPF_NOEXIST: when two CPUs race to create the entry only one reports
    // the flow as first seen. The entry holds this CPU's copy; the others
    // start at zero.
    STK_FLOWS.insert(&key, &stats, 1).is_ok()
}

/// Puts a flow event on the ring buffer, or counts it as lost.
#[inline(always)]
fn emit(flow: &Flow, decision: &Decision, flags: u8) {
    let Some(mut entry) = STK_EVENTS.reserve::<Event>(0) else {
        bump(|s| s.events_lost = s.events_lost.wrapping_add(1));
        return;
    };
    let event = entry.as_mut_ptr();
    // SAFETY: `event` points to reserved ring-buffer memory the size of an
    // Event; every field but `path` is written before submission, and the
    // reader ignores `path` for flow events.
    unsafe {
        (*event).kind = EVENT_FLOW;
        (*event).flags = flags;
        (*event).protocol = flow.protocol;
        (*event).direction = flow.direction;
        (*event).family = flow.family;
        (*event).action = decision.action;
        (*event).pad = [0; 2];
        (*event).pid = flow.owner;
        (*event).rule = decision.rule;
        (*event).src = flow.src;
        (*event).dst = flow.dst;
        (*event).src_port = flow.src_port;
        (*event).dst_port = flow.dst_port;
        (*event).pad2 = 0;
        (*event).src_addr = flow.src_addr;
        (*event).dst_addr = flow.dst_addr;
        (*event).exec = ExecKey::default();
        (*event).time_ns = bpf_ktime_get_boot_ns();
        // Only a hook in the caller's context knows the task's name.
        (*event).comm = if flow.pid != 0 {
            bpf_get_current_comm().unwrap_or([0; 16])
        } else {
            [0; 16]
        };
        (*event).path[0] = 0;
    }
    entry.submit(0);
}
