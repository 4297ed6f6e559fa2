//! The programs of the embedded object and how each is attached: to this
//! node's cgroup subtree, or to a process tracepoint.

use aya::programs::CgroupSkbAttachType;

/// Where a program attaches.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Hook {
    /// A `cgroup/sock_addr` program (connect, sendmsg).
    SockAddr,
    /// A `cgroup/sock` program (post_bind).
    Sock,
    /// A `cgroup_skb` program on this direction.
    Skb(CgroupSkbAttachType),
    /// A tracepoint: category and event.
    TracePoint(&'static str, &'static str),
}

/// One program: its function name in the kernel crate and its hook.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ProgramSpec {
    pub name: &'static str,
    pub hook: Hook,
}

/// The `sock_ops` program that hands redirected connections to the tunnel.
/// It is attached for the life of the process that opened the dataplane,
/// not pinned: without that process there is no tunnel to hand them to,
/// and the connect hook's redirect then fails closed (nothing listens).
pub(crate) const TUNNEL_HANDOVER: &str = "stockade_sockops";

/// Every program, in attach order: the process tracepoints first, so that
/// identities are tracked before the first flow is decided.
pub(crate) const PROGRAMS: &[ProgramSpec] = &[
    ProgramSpec {
        name: "stockade_exec",
        hook: Hook::TracePoint("sched", "sched_process_exec"),
    },
    ProgramSpec {
        name: "stockade_fork",
        hook: Hook::TracePoint("sched", "sched_process_fork"),
    },
    ProgramSpec {
        name: "stockade_exit",
        hook: Hook::TracePoint("sched", "sched_process_exit"),
    },
    ProgramSpec {
        name: "stockade_post_bind4",
        hook: Hook::Sock,
    },
    ProgramSpec {
        name: "stockade_post_bind6",
        hook: Hook::Sock,
    },
    ProgramSpec {
        name: "stockade_ingress",
        hook: Hook::Skb(CgroupSkbAttachType::Ingress),
    },
    ProgramSpec {
        name: "stockade_connect4",
        hook: Hook::SockAddr,
    },
    ProgramSpec {
        name: "stockade_connect6",
        hook: Hook::SockAddr,
    },
    ProgramSpec {
        name: "stockade_sendmsg4",
        hook: Hook::SockAddr,
    },
    ProgramSpec {
        name: "stockade_sendmsg6",
        hook: Hook::SockAddr,
    },
];
