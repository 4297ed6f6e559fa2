//! What the kernel reported, as alert observations: names instead of
//! numbers, the executable behind a pid, and the verdict's meaning.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use stockade_alerting::aggregate::Observation;
use stockade_bpf::common::events::{FLAG_ALERT, FLAG_DENIED};
use stockade_bpf::common::maps::{DIRECTION_EGRESS, FAMILY_IPV4};
use stockade_bpf::Event;
use stockade_policy::{
    AlertFlow, AlertKind, AlertWorkload, ClusterState, Direction, EdgeKey, EdgeTarget, FlowEnd,
    IdentityId, IdentityName, L4Protocol, LocalWorkloads, RuleRef, Severity, Sha256, Subject,
    WorkloadKey, ZoneId,
};

use crate::clock::now_ms;

/// The observation a flow event stands for: a denial is a policy
/// violation, or a baseline deviation when it is new behaviour in a zone
/// that learned a baseline; an allowed flow its zone only alerts on is a
/// baseline deviation; other flow events (first-seen summaries) are not
/// alerts.
pub fn flow(
    event: &Event,
    state: &ClusterState,
    local: &LocalWorkloads,
    recent: &RecentExecs,
) -> Option<Observation> {
    if event.flags & (FLAG_DENIED | FLAG_ALERT) == 0 {
        return None;
    }
    let protocol = match event.protocol {
        6 => L4Protocol::Tcp,
        17 => L4Protocol::Udp,
        _ => return None,
    };
    let direction = match event.direction {
        DIRECTION_EGRESS => Direction::Egress,
        _ => Direction::Ingress,
    };
    let rule = RuleRef::from_raw(event.rule).unwrap_or(RuleRef::ZoneDefault);
    let end = |subject: stockade_bpf::common::maps::Subject, addr: [u8; 16], port: u16| FlowEnd {
        ip: address(event.family, addr),
        port,
        identity: identity_name(state, subject.identity),
        zone: zone_name(state, subject.zone),
    };
    let src = end(event.src, event.src_addr, event.src_port);
    let dst = end(event.dst, event.dst_addr, event.dst_port);
    let denied = event.flags & FLAG_DENIED != 0;
    let kind = if !denied || outside_baseline(state, &src, &dst, event.dst.identity, protocol, rule)
    {
        AlertKind::BaselineDeviation
    } else {
        AlertKind::PolicyViolation
    };
    // The workload this node runs: the caller at egress, the receiver at
    // ingress (where the hook runs outside the process, so no pid).
    let (local_end, pid) = match direction {
        Direction::Egress => (&src, (event.pid != 0).then_some(event.pid)),
        Direction::Ingress => (&dst, None),
    };
    let mut workload = AlertWorkload {
        identity: local_end.identity.clone(),
        zone: local_end.zone.clone(),
        pid,
        ..AlertWorkload::default()
    };
    if let Some(pid) = pid {
        fill_executable(&mut workload, local, pid);
    }
    if let (true, Some(pid)) = (workload.executable.is_empty(), pid) {
        // Newer than the last scan: the exec event named it, or else the
        // process is asked (it may have ended already).
        workload.executable = match recent.path(pid) {
            Some(path) => path.to_owned(),
            None => std::fs::read_link(format!("/proc/{pid}/exe"))
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| c_string(&event.comm)),
        };
    }
    let verb = match (kind, denied) {
        (AlertKind::PolicyViolation, _) => "blocked",
        (_, true) => "blocked, outside the learned baseline",
        (_, false) => "allowed, outside the policy",
    };
    let summary = format!(
        "{} {} → {} {} {} {verb} ({rule})",
        label(state, event.src.identity),
        SocketAddr::new(src.ip, src.port),
        label(state, event.dst.identity),
        SocketAddr::new(dst.ip, dst.port),
        protocol_name(protocol),
    );
    Some(Observation {
        kind,
        severity: match denied {
            true => Severity::Critical,
            false => Severity::Warning,
        },
        at_ms: now_ms(),
        workload: Some(workload),
        flow: Some(AlertFlow {
            src,
            dst,
            protocol,
            direction,
            rule,
        }),
        summary,
    })
}

/// Whether a denial is new behaviour in a zone that learned its baseline:
/// denied for want of a rule (not by an explicit deny), by a caller with
/// an identity, and not among the learned edges.
fn outside_baseline(
    state: &ClusterState,
    src: &FlowEnd,
    dst: &FlowEnd,
    dst_identity: u32,
    protocol: L4Protocol,
    rule: RuleRef,
) -> bool {
    if !matches!(rule, RuleRef::ZoneDefault | RuleRef::ZoneIsolation) {
        return false;
    }
    let Some(from) = src.identity.clone() else {
        return false;
    };
    let to = match &dst.identity {
        Some(name) => EdgeTarget::Identity(name.clone()),
        None if IdentityId(dst_identity) == IdentityId::WORLD => EdgeTarget::Address(dst.ip),
        None => return false,
    };
    state.baseline.deviates(&EdgeKey {
        from,
        to,
        protocol,
        port: dst.port,
    })
}

/// The observation an exec of a binary the kernel did not know stands for,
/// decided after the subtree was rescanned and the policy compiled: a
/// process that has an identity by now (its binary was registered, or an
/// identity rule names it) is no alert, nor is a registered binary whose
/// process ended before the scan (`sha256`: its file's digest then). A
/// digest that differs from the one registered for the same path is a
/// modified binary.
pub fn exec(
    pid: u32,
    path: &str,
    sha256: Option<Sha256>,
    subject: Option<&Subject>,
    state: &ClusterState,
    local: &LocalWorkloads,
) -> Option<Observation> {
    if subject.is_some_and(|s| s.identity.is_allocatable()) {
        return None;
    }
    let mut workload = AlertWorkload {
        zone: subject
            .and_then(|s| s.zone)
            .and_then(|z| zone_name(state, z.0)),
        pid: Some(pid),
        executable: path.to_owned(),
        sha256,
        ..AlertWorkload::default()
    };
    fill_executable(&mut workload, local, pid);
    if workload
        .sha256
        .is_some_and(|sha| state.fingerprints.contains_key(&sha))
    {
        return None;
    }
    let registered = state
        .fingerprints
        .values()
        .find(|f| !f.path.is_empty() && f.path == workload.executable);
    let (kind, summary) = match (registered, workload.sha256) {
        (Some(registered), Some(sha)) if registered.sha256 != sha => (
            AlertKind::ModifiedBinary,
            format!(
                "{} runs with digest {sha}, not the {} registered for {}",
                workload.executable, registered.sha256, registered.identity
            ),
        ),
        _ => (
            AlertKind::UnknownBinary,
            format!(
                "{} (pid {pid}) runs a binary with no identity",
                workload.executable
            ),
        ),
    };
    Some(Observation {
        kind,
        severity: match kind {
            AlertKind::ModifiedBinary => Severity::Critical,
            _ => Severity::Warning,
        },
        at_ms: now_ms(),
        workload: Some(workload),
        flow: None,
        summary,
    })
}

/// The observation of `lost` events the ring buffer could not take
/// (`total` since the dataplane was loaded): whatever they reported — new
/// flows, denials, execs — is missing from alerts and the flow log.
pub fn events_lost(lost: u64, total: u64) -> Observation {
    Observation {
        kind: AlertKind::EventsLost,
        severity: Severity::Critical,
        at_ms: now_ms(),
        workload: None,
        flow: None,
        summary: format!(
            "the kernel's event ring buffer overflowed: {lost} events lost ({total} in all)"
        ),
    }
}

/// The executables of the latest execs, by pid, for flows of processes
/// newer than the last scan (often ended by the time their denial is read).
#[derive(Debug, Default)]
pub struct RecentExecs {
    paths: HashMap<u32, String>,
    order: VecDeque<u32>,
}

impl RecentExecs {
    /// Execs remembered at most.
    const CAPACITY: usize = 4096;

    /// Remembers that `pid` now runs `path`.
    pub fn record(&mut self, pid: u32, path: String) {
        if self.paths.insert(pid, path).is_none() {
            self.order.push_back(pid);
        }
        while self.order.len() > Self::CAPACITY {
            if let Some(oldest) = self.order.pop_front() {
                self.paths.remove(&oldest);
            }
        }
    }

    /// What `pid` last executed, if remembered.
    pub fn path(&self, pid: u32) -> Option<&str> {
        self.paths.get(&pid).map(String::as_str)
    }
}

/// Path and digest of a local process's executable, from the last scan.
fn fill_executable(workload: &mut AlertWorkload, local: &LocalWorkloads, pid: u32) {
    let facts = local
        .workloads
        .iter()
        .find(|w| w.key == WorkloadKey::Process(pid))
        .map(|w| &w.facts);
    if let Some(facts) = facts {
        if let Some(path) = &facts.exe_path {
            workload.executable = path.clone();
        }
        workload.sha256 = facts.exe_sha256.or(workload.sha256);
    }
}

fn identity_name(state: &ClusterState, raw: u32) -> Option<IdentityName> {
    let id = IdentityId(raw);
    id.is_allocatable()
        .then(|| state.identities.get(&id).map(|i| i.name.clone()))
        .flatten()
}

fn zone_name(state: &ClusterState, raw: u32) -> Option<String> {
    (raw != 0)
        .then(|| state.zone_by_id(ZoneId(raw)).map(|z| z.name.clone()))
        .flatten()
}

/// A subject's identity for people: its name, or what the reserved number
/// stands for.
fn label(state: &ClusterState, raw: u32) -> String {
    match IdentityId(raw) {
        IdentityId::WORLD => "world".into(),
        IdentityId::CLUSTER => "cluster".into(),
        IdentityId::NODE => "node".into(),
        _ => identity_name(state, raw).map_or_else(|| "unknown".into(), |n| n.to_string()),
    }
}

fn protocol_name(protocol: L4Protocol) -> &'static str {
    match protocol {
        L4Protocol::Tcp => "tcp",
        L4Protocol::Udp => "udp",
    }
}

/// A kernel address: IPv4 ones are stored v4-mapped, and an unbound
/// source is all zeros.
pub fn address(family: u8, bytes: [u8; 16]) -> IpAddr {
    let v6 = Ipv6Addr::from(bytes);
    match (family, v6.to_ipv4_mapped()) {
        (FAMILY_IPV4, Some(v4)) => IpAddr::V4(v4),
        (FAMILY_IPV4, None) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        _ => IpAddr::V6(v6),
    }
}

/// The text before the first NUL of a kernel string buffer.
pub fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_addresses_read_as_their_family() {
        let mut mapped = [0u8; 16];
        mapped[10] = 0xff;
        mapped[11] = 0xff;
        mapped[12..].copy_from_slice(&[10, 0, 0, 7]);
        assert_eq!(address(FAMILY_IPV4, mapped), IpAddr::from([10, 0, 0, 7]));
        assert_eq!(address(FAMILY_IPV4, [0; 16]), IpAddr::from([0, 0, 0, 0]));
        let v6 = Ipv6Addr::LOCALHOST;
        assert_eq!(address(6, v6.octets()), IpAddr::V6(v6));
    }

    #[test]
    fn recent_execs_forget_the_oldest_beyond_capacity() {
        let mut recent = RecentExecs::default();
        for pid in 0..=RecentExecs::CAPACITY as u32 {
            recent.record(pid, format!("/bin/p{pid}"));
        }
        assert_eq!(recent.path(0), None);
        assert_eq!(recent.path(1), Some("/bin/p1"));
        // A pid reused by a new exec keeps one slot and the newest path.
        recent.record(1, "/bin/other".into());
        assert_eq!(recent.path(1), Some("/bin/other"));
        assert_eq!(recent.order.len(), RecentExecs::CAPACITY);
    }
}
