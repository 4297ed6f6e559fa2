//! The map contents one node's dataplane needs, and the decision procedure
//! the kernel programs follow over them.
//!
//! [`DataplaneEntries::decide`] is the reference for the eBPF side: it uses
//! only the lookups the kernel can make (exact maps and longest-prefix-match
//! tries), in the same order, so tests of the policy engine are tests of what
//! the kernel will do.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::ports::PortBlock;
use crate::ids::{IdentityId, RuleRef, ZoneId};
use crate::resolve::Subject;
use crate::{Action, L4Protocol, Mode};

/// How the kernel knows a local workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkloadKey {
    /// A cgroup v2 (container, VM, systemd service) by its id (inode number).
    Cgroup(u64),
    /// A bare process by pid.
    Process(u32),
}

/// An executable file as the exec tracepoint sees it. The change time makes
/// a rewritten binary a different key, so a stale identity is never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ExecKey {
    /// Device of the file system.
    pub dev: u64,
    /// Inode number.
    pub inode: u64,
    /// Inode change time, nanoseconds since the epoch.
    pub ctime_ns: i64,
}

/// A key of the ipcache: a prefix and, for endpoints that share an address,
/// a port. In the kernel's LPM trie the port follows the address bits, so an
/// exact `(address, port)` entry is longer — and wins — over the address
/// alone, which wins over any shorter prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct IpcacheKey {
    /// The prefix (a host prefix for endpoints and nodes).
    pub net: IpNet,
    /// The port, for an endpoint that owns one port of a shared address.
    pub port: Option<u16>,
}

impl IpcacheKey {
    /// The LPM prefix length of this key: address bits, plus 16 with a port.
    pub fn prefix_len(&self) -> u8 {
        self.net.prefix_len() + if self.port.is_some() { 16 } else { 0 }
    }

    fn matches(&self, ip: IpAddr, port: u16) -> bool {
        self.net.contains(&ip) && self.port.is_none_or(|p| p == port)
    }
}

/// A key of the policy map: which identities, protocol and port block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PolicyKey {
    /// Identity that opens the connection.
    pub src: IdentityId,
    /// Identity connected to.
    pub dst: IdentityId,
    /// Transport protocol.
    pub protocol: L4Protocol,
    /// First port of the block.
    pub port: u16,
    /// Fixed leading bits of the port (16 for one port, 0 for all).
    pub port_prefix_len: u8,
}

impl PolicyKey {
    /// The port block this key covers.
    pub fn block(&self) -> PortBlock {
        PortBlock {
            first: self.port,
            prefix_len: self.port_prefix_len,
        }
    }
}

/// What a policy-map entry says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Verdict {
    /// Allow or deny.
    pub action: Action,
    /// Carry the flow through the Noise tunnel.
    pub encrypt: bool,
    /// What produced the verdict.
    pub rule: RuleRef,
}

/// Which side of a connection is checking it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The caller's node, at `connect`/`sendmsg`: the caller's zone mode
    /// decides what no rule covers.
    Egress,
    /// The receiver's node, on the first inbound packet: the receiver's zone
    /// mode decides.
    Ingress,
}

/// One connection attempt, as a hook sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FlowQuery {
    /// Who opens it.
    pub src: Subject,
    /// Who is connected to.
    pub dst: Subject,
    /// Transport protocol.
    pub protocol: L4Protocol,
    /// Destination port.
    pub port: u16,
    /// Which side checks.
    pub direction: Direction,
}

/// What the dataplane does with a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Decision {
    /// Allow or deny.
    pub action: Action,
    /// Carry the flow through the Noise tunnel.
    pub encrypt: bool,
    /// Raise an alert about the flow.
    pub alert: bool,
    /// What produced the decision.
    pub rule: RuleRef,
}

/// Everything one node's eBPF maps must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataplaneEntries {
    /// Mode of each zone.
    pub zone_modes: BTreeMap<ZoneId, Mode>,
    /// Mode for workloads in no zone.
    pub unmanaged_mode: Mode,
    /// Identity of each local workload the node knows.
    pub workloads: BTreeMap<WorkloadKey, Subject>,
    /// Identity of each known executable, applied at exec time.
    pub executables: BTreeMap<ExecKey, Subject>,
    /// Identity of addresses: endpoints, nodes and the CIDRs rules name.
    pub ipcache: BTreeMap<IpcacheKey, Subject>,
    /// Verdicts of the rules, by identities, protocol and port block.
    pub policy: BTreeMap<PolicyKey, Verdict>,
}

impl DataplaneEntries {
    /// The subject of a remote address, by longest prefix; [`IdentityId::WORLD`]
    /// when nothing matches.
    pub fn lookup_address(&self, ip: IpAddr, port: u16) -> Subject {
        self.ipcache
            .iter()
            .filter(|(key, _)| key.matches(ip, port))
            .max_by_key(|(key, _)| key.prefix_len())
            .map(|(_, subject)| *subject)
            .unwrap_or(Subject {
                identity: IdentityId::WORLD,
                zone: None,
            })
    }

    /// The policy entry that covers this flow, if any. Blocks of one
    /// identity pair and protocol never overlap, so the block with the
    /// greatest start at or below the port is the only candidate.
    pub fn lookup_policy(
        &self,
        src: IdentityId,
        dst: IdentityId,
        protocol: L4Protocol,
        port: u16,
    ) -> Option<Verdict> {
        let low = PolicyKey {
            src,
            dst,
            protocol,
            port: 0,
            port_prefix_len: 0,
        };
        let high = PolicyKey {
            port,
            port_prefix_len: u8::MAX,
            ..low
        };
        self.policy
            .range(low..=high)
            .next_back()
            .filter(|(key, _)| key.block().range().contains(port))
            .map(|(_, verdict)| *verdict)
    }

    /// What the dataplane does with a flow: Stockade's own traffic passes;
    /// an inbound flow from another node's workload passes (that node
    /// decided it at egress); else the rule that covers it, else isolation
    /// between two different zones, else the zones' default: at ingress the
    /// destination zone's mode, at egress the stricter of the source's and
    /// the destination's.
    pub fn decide(&self, flow: &FlowQuery) -> Decision {
        let pass = |rule| Decision {
            action: Action::Allow,
            encrypt: false,
            alert: false,
            rule,
        };
        if flow.src.identity == IdentityId::CLUSTER || flow.dst.identity == IdentityId::CLUSTER {
            return pass(RuleRef::ClusterTraffic);
        }
        if flow.direction == Direction::Ingress && flow.src.identity == IdentityId::NODE {
            return pass(RuleRef::EgressChecked);
        }
        if let Some(v) = self.lookup_policy(
            flow.src.identity,
            flow.dst.identity,
            flow.protocol,
            flow.port,
        ) {
            return Decision {
                action: v.action,
                encrypt: v.encrypt,
                alert: v.action == Action::Deny,
                rule: v.rule,
            };
        }
        if let (Some(a), Some(b)) = (flow.src.zone, flow.dst.zone) {
            if a != b {
                return Decision {
                    action: Action::Deny,
                    encrypt: false,
                    alert: true,
                    rule: RuleRef::ZoneIsolation,
                };
            }
        }
        let mode_of = |zone: Option<ZoneId>| {
            zone.and_then(|z| self.zone_modes.get(&z).copied())
                .unwrap_or(self.unmanaged_mode)
        };
        let mode = match flow.direction {
            // The far node's ingress hook passes what a node sends
            // (`EgressChecked`), so egress also applies the destination
            // zone's default, and the stricter of the two wins: an
            // unmanaged process on one node does not reach into a zone that
            // enforces on another.
            Direction::Egress if flow.dst.zone.is_some() => {
                mode_of(flow.src.zone).max(mode_of(flow.dst.zone))
            }
            Direction::Egress => mode_of(flow.src.zone),
            Direction::Ingress => mode_of(flow.dst.zone),
        };
        let (action, alert) = match mode {
            Mode::Learn => (Action::Allow, false),
            Mode::Alert => (Action::Allow, true),
            Mode::Enforce => (Action::Deny, true),
        };
        Decision {
            action,
            encrypt: false,
            alert,
            rule: RuleRef::ZoneDefault,
        }
    }
}
