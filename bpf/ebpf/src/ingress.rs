//! `cgroup_skb/ingress`: the receiving side's check of new inbound flows —
//! TCP SYNs to a listener, and datagrams to a UDP socket a process bound.
//! The source is named by the address cache; the receiver by the identity
//! the socket's owner has now (the process recorded at bind), else its
//! cgroup, else the published endpoint.

use aya_ebpf::{
    helpers::{bpf_get_socket_cookie, bpf_skb_cgroup_id},
    macros::cgroup_skb,
    programs::SkBuffContext,
    EbpfContext,
};
use stockade_bpf_common::maps::{
    Subject, ACTION_ALLOW, DIRECTION_INGRESS, FAMILY_IPV4, FAMILY_IPV6, IDENTITY_NODE,
    IDENTITY_WORLD,
};

use crate::{
    decide::{decide_and_record, Flow},
    maps::{address_subject, hash_get, lru_get, STK_CGROUPS, STK_PROCS, STK_SOCKETS},
};

const PASS: i32 = 1;
const DROP: i32 = 0;

const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const TCP_SYN: u8 = 0x02;
const TCP_ACK: u8 = 0x10;

/// The addresses, protocol and L4 offset of a packet.
struct Header {
    family: u8,
    protocol: u8,
    src: [u8; 16],
    dst: [u8; 16],
    l4: usize,
}

#[inline(always)]
fn header(ctx: &SkBuffContext) -> Option<Header> {
    let first: u8 = ctx.load(0).ok()?;
    match first >> 4 {
        4 => {
            let ihl = usize::from(first & 0x0f) * 4;
            let protocol: u8 = ctx.load(9).ok()?;
            let src: [u8; 4] = ctx.load(12).ok()?;
            let dst: [u8; 4] = ctx.load(16).ok()?;
            let map = |a: [u8; 4]| {
                [
                    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a[0], a[1], a[2], a[3],
                ]
            };
            Some(Header {
                family: FAMILY_IPV4,
                protocol,
                src: map(src),
                dst: map(dst),
                l4: ihl,
            })
        }
        // Extension headers are not followed: such packets pass here and
        // the sender's node has checked them at egress.
        6 => Some(Header {
            family: FAMILY_IPV6,
            protocol: ctx.load(6).ok()?,
            src: ctx.load(8).ok()?,
            dst: ctx.load(24).ok()?,
            l4: 40,
        }),
        _ => None,
    }
}

/// Loopback traffic never leaves this kernel: its sender was checked at
/// egress by this node.
#[inline(always)]
fn is_loopback(h: &Header) -> bool {
    if h.family == FAMILY_IPV4 {
        h.src[12] == 127
    } else {
        h.src == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    }
}

#[inline(always)]
fn receiver(ctx: &SkBuffContext, owner: Option<u32>, h: &Header, port: u16) -> Subject {
    if let Some(subject) = owner.and_then(|tgid| lru_get(&STK_PROCS, &tgid)) {
        return subject;
    }
    // SAFETY: the context is a valid skb for the whole program.
    let cgroup = unsafe { bpf_skb_cgroup_id(ctx.skb.skb) };
    if let Some(subject) = hash_get(&STK_CGROUPS, &cgroup) {
        return subject;
    }
    let published = address_subject(h.family, h.dst, port);
    if published.identity == IDENTITY_WORLD || published.identity == IDENTITY_NODE {
        Subject::default()
    } else {
        published
    }
}

/// Decides new inbound flows of the node's subtree.
#[cgroup_skb(ingress)]
pub fn stockade_ingress(ctx: SkBuffContext) -> i32 {
    let Some(h) = header(&ctx) else {
        return PASS;
    };
    if is_loopback(&h) || (h.protocol != IPPROTO_TCP && h.protocol != IPPROTO_UDP) {
        return PASS;
    }
    let Ok(ports) = ctx.load::<[u8; 4]>(h.l4) else {
        return PASS;
    };
    let src_port = u16::from_be_bytes([ports[0], ports[1]]);
    let dst_port = u16::from_be_bytes([ports[2], ports[3]]);
    // SAFETY: the context is a valid skb for the whole program.
    let cookie = unsafe { bpf_get_socket_cookie(ctx.as_ptr()) };
    if h.protocol == IPPROTO_TCP {
        let Ok(flags) = ctx.load::<u8>(h.l4 + 13) else {
            return PASS;
        };
        if flags & (TCP_SYN | TCP_ACK) != TCP_SYN {
            return PASS;
        }
    }
    let owner = lru_get(&STK_SOCKETS, &cookie);
    if h.protocol == IPPROTO_UDP && owner.is_none() {
        // Replies to a client's datagrams: the client's own send was the
        // checked flow. Only sockets a process bound are servers.
        return PASS;
    }
    let flow = Flow {
        src: address_subject(h.family, h.src, src_port),
        dst: receiver(&ctx, owner, &h, dst_port),
        protocol: h.protocol,
        direction: DIRECTION_INGRESS,
        family: h.family,
        src_addr: h.src,
        dst_addr: h.dst,
        src_port,
        dst_port,
        pid: 0,
        owner: owner.unwrap_or(0),
    };
    if decide_and_record(&flow) == ACTION_ALLOW {
        PASS
    } else {
        DROP
    }
}
