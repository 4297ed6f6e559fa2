//! `cgroup/connect4|6` and `cgroup/sendmsg4|6`: the caller's side of every
//! TCP connection and UDP datagram of the node's subtree, which a rule may
//! send into the node's tunnel (with `sock_ops` finishing the hand-over);
//! and `cgroup/post_bind4|6`, which remembers who owns a bound socket so
//! the ingress hook can name the receiver.

use aya_ebpf::{
    bindings::BPF_SOCK_OPS_TCP_CONNECT_CB,
    helpers::{bpf_get_current_cgroup_id, bpf_get_current_pid_tgid, bpf_get_socket_cookie},
    macros::{cgroup_sock, cgroup_sock_addr, sock_ops},
    programs::{SockAddrContext, SockContext, SockOpsContext},
    EbpfContext,
};
use stockade_bpf_common::{
    maps::{
        Subject, ACTION_ALLOW, ACTION_DENY, DIRECTION_EGRESS, FAMILY_IPV4, FAMILY_IPV6,
        RULE_TUNNEL_UNAVAILABLE,
    },
    tunnel::TunnelTarget,
};

use crate::{
    decide::{decide_tunnelled, record, Decision, Flow},
    maps::{
        address_subject, config, hash_get, lru_get, STK_CGROUPS, STK_PROCS, STK_REDIRECTS,
        STK_SOCKETS, STK_TUNNELED,
    },
};

/// What a `cgroup/sock_addr` program returns to let the call proceed.
const PROCEED: i32 = 1;
/// What it returns to fail the call with `EPERM`.
const REFUSE: i32 = 0;

/// The calling process's subject: its own identity (by thread group), else
/// its cgroup's, else none.
#[inline(always)]
pub fn caller() -> (u32, Subject) {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    if let Some(subject) = lru_get(&STK_PROCS, &tgid) {
        return (tgid, subject);
    }
    // SAFETY: a kernel helper with no preconditions.
    let cgroup = unsafe { bpf_get_current_cgroup_id() };
    (tgid, hash_get(&STK_CGROUPS, &cgroup).unwrap_or_default())
}

/// An IPv4 address (network order in a u32 as the context holds it) as
/// IPv4-mapped IPv6 bytes.
#[inline(always)]
pub fn mapped_v4(raw: u32) -> [u8; 16] {
    let b = raw.to_ne_bytes();
    [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, b[0], b[1], b[2], b[3],
    ]
}

/// An IPv6 address (four network-order words) as bytes.
#[inline(always)]
pub fn v6(raw: [u32; 4]) -> [u8; 16] {
    let mut out = [0u8; 16];
    let mut i = 0;
    while i < 4 {
        let b = raw[i].to_ne_bytes();
        out[i * 4] = b[0];
        out[i * 4 + 1] = b[1];
        out[i * 4 + 2] = b[2];
        out[i * 4 + 3] = b[3];
        i += 1;
    }
    out
}

#[inline(always)]
fn check(ctx: &SockAddrContext, family: u8) -> i32 {
    let addr = ctx.sock_addr;
    // SAFETY: the kernel hands every sock_addr program a valid context; the
    // fields read are readable for connect and sendmsg hooks of the family.
    let (dst_addr, dst_port, protocol) = unsafe {
        let dst_addr = if family == FAMILY_IPV4 {
            mapped_v4((*addr).user_ip4)
        } else {
            v6((*addr).user_ip6)
        };
        let port = u16::from_be((*addr).user_port as u16);
        (dst_addr, port, (*addr).protocol as u8)
    };
    let (pid, src) = caller();
    let tunnel_port = config().map_or(0, |c| c.tunnel_port);
    let flow = Flow {
        src,
        dst: address_subject(family, dst_addr, dst_port),
        protocol,
        direction: DIRECTION_EGRESS,
        family,
        src_addr: [0; 16],
        dst_addr,
        src_port: 0,
        dst_port,
        pid,
        owner: pid,
    };
    let mut decision = decide_tunnelled(&flow, tunnel_port);
    if decision.encrypt && redirect(ctx, &flow, &decision, tunnel_port).is_err() {
        decision = Decision {
            action: ACTION_DENY,
            encrypt: false,
            alert: true,
            rule: RULE_TUNNEL_UNAVAILABLE,
        };
    }
    record(&flow, &decision);
    if decision.action == ACTION_ALLOW {
        PROCEED
    } else {
        REFUSE
    }
}

/// Sends the connection to the node's tunnel on the loopback address,
/// filing where it was going under the socket's cookie. An error leaves the
/// call's address untouched, and the caller refuses the connection.
#[inline(always)]
fn redirect(
    ctx: &SockAddrContext,
    flow: &Flow,
    decision: &Decision,
    tunnel_port: u16,
) -> Result<(), i64> {
    let target = TunnelTarget {
        dst_addr: flow.dst_addr,
        dst_port: flow.dst_port,
        family: flow.family,
        pad: 0,
        src_identity: flow.src.identity,
        src_zone: flow.src.zone,
        dst_identity: flow.dst.identity,
        dst_zone: flow.dst.zone,
        rule: decision.rule,
        pid: flow.pid,
        pad2: 0,
    };
    // SAFETY: the context is a valid sock_addr context for the whole program.
    let cookie = unsafe { bpf_get_socket_cookie(ctx.as_ptr()) };
    STK_REDIRECTS.insert(&cookie, &target, 0)?;
    let addr = ctx.sock_addr;
    // SAFETY: connect hooks may write the destination of their context.
    unsafe {
        (*addr).user_ip4 = u32::from_ne_bytes(LOOPBACK_V4);
        (*addr).user_port = u32::from(tunnel_port.to_be());
    }
    Ok(())
}

/// The tunnel's address: 127.0.0.1, in network order.
const LOOPBACK_V4: [u8; 4] = [127, 0, 0, 1];

/// Once a redirected connection has its local port (`TCP_CONNECT_CB`,
/// before the SYN leaves), refiles its target under that port, which is
/// what the tunnel knows of the connection it accepts.
#[sock_ops]
pub fn stockade_sockops(ctx: SockOpsContext) -> u32 {
    if ctx.op() != BPF_SOCK_OPS_TCP_CONNECT_CB {
        return 0;
    }
    // SAFETY: the context is a valid sock_ops context for the whole program.
    let cookie = unsafe { bpf_get_socket_cookie(ctx.as_ptr()) };
    if let Some(target) = lru_get(&STK_REDIRECTS, &cookie) {
        // Best effort: a target that cannot be refiled leaves the tunnel
        // without a destination, and it closes the connection.
        let _ = STK_TUNNELED.insert(&ctx.local_port(), &target, 0);
        let _ = STK_REDIRECTS.remove(&cookie);
    }
    0
}

/// TCP connects and UDP connects over IPv4.
#[cgroup_sock_addr(connect4)]
pub fn stockade_connect4(ctx: SockAddrContext) -> i32 {
    check(&ctx, FAMILY_IPV4)
}

/// TCP connects and UDP connects over IPv6.
#[cgroup_sock_addr(connect6)]
pub fn stockade_connect6(ctx: SockAddrContext) -> i32 {
    check(&ctx, FAMILY_IPV6)
}

/// Unconnected UDP datagrams over IPv4.
#[cgroup_sock_addr(sendmsg4)]
pub fn stockade_sendmsg4(ctx: SockAddrContext) -> i32 {
    check(&ctx, FAMILY_IPV4)
}

/// Unconnected UDP datagrams over IPv6.
#[cgroup_sock_addr(sendmsg6)]
pub fn stockade_sendmsg6(ctx: SockAddrContext) -> i32 {
    check(&ctx, FAMILY_IPV6)
}

#[inline(always)]
fn remember_owner(ctx: &SockContext) -> i32 {
    // SAFETY: the context is a valid socket for the whole program.
    let cookie = unsafe { bpf_get_socket_cookie(ctx.as_ptr()) };
    // The process, not its identity now: the identity can be refined later
    // (user space identifies a process the exec hook could not).
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    // Best effort: a full map only means the ingress hook falls back to the
    // cgroup and the published endpoints.
    let _ = STK_SOCKETS.insert(&cookie, &tgid, 0);
    PROCEED
}

/// Remembers the owner of a socket bound to an IPv4 address.
#[cgroup_sock(post_bind4)]
pub fn stockade_post_bind4(ctx: SockContext) -> i32 {
    remember_owner(&ctx)
}

/// Remembers the owner of a socket bound to an IPv6 address.
#[cgroup_sock(post_bind6)]
pub fn stockade_post_bind6(ctx: SockContext) -> i32 {
    remember_owner(&ctx)
}
