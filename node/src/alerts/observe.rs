//! What the kernel reported, as alert observations: names instead of
//! numbers, the executable behind a pid, and the verdict's meaning.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use stockade_alerting::aggregate::Observation;
use stockade_bpf::common::maps::FAMILY_IPV4;
use stockade_policy::{
    Action, AlertFlow, AlertKind, AlertWorkload, ClusterState, Direction, EdgeKey, EdgeTarget,
    FlowEnd, FlowPeer, FlowRecord, L4Protocol, LocalWorkloads, Mode, PeerClass, RuleRef, Severity,
    Sha256, Subject, WorkloadKey, ZoneId,
};

use crate::clock::now_ms;

/// The observation `count` flows of `record` stand for, if they are an
/// alert: a denial is a policy violation, or a baseline deviation when it
/// is new behaviour in a zone that learned a baseline; an allowed flow no
/// rule covers in a zone that only alerts is a baseline deviation. Other
/// flows are not alerts.
///
/// The kernel reports a flow's first occurrence as an event and counts the
/// rest: both come here as records, so they meet as the same cause in the
/// aggregator.
pub fn flow(
    record: &FlowRecord,
    state: &ClusterState,
    local: &LocalWorkloads,
    count: u64,
) -> Option<Observation> {
    let denied = record.action == Action::Deny;
    if !denied && !alerts_only(record, state) {
        return None;
    }
    let end = |peer: &FlowPeer| FlowEnd {
        ip: peer.ip,
        port: peer.port,
        identity: peer.identity.clone(),
        zone: peer.zone().map(str::to_owned),
    };
    let (src, dst) = (end(&record.src), end(&record.dst));
    let kind = if !denied || outside_baseline(state, record) {
        AlertKind::BaselineDeviation
    } else {
        AlertKind::PolicyViolation
    };
    // The workload this node runs: the caller at egress, the receiver at
    // ingress.
    let (local_end, local_peer) = match record.direction {
        Direction::Egress => (&src, &record.src),
        Direction::Ingress => (&dst, &record.dst),
    };
    let process = local_peer.process.as_ref();
    let mut workload = AlertWorkload {
        identity: local_end.identity.clone(),
        zone: local_end.zone.clone(),
        pid: process.map(|p| p.pid),
        executable: process.map(|p| p.exe.clone()).unwrap_or_default(),
        ..AlertWorkload::default()
    };
    if let Some(pid) = workload.pid {
        fill_executable(&mut workload, local, pid);
    }
    let verb = match (kind, denied) {
        (AlertKind::PolicyViolation, _) => "blocked",
        (_, true) => "blocked, outside the learned baseline",
        (_, false) => "allowed, outside the policy",
    };
    let summary = format!(
        "{} {} → {} {} {} {verb} ({})",
        label(&record.src),
        SocketAddr::new(src.ip, src.port),
        label(&record.dst),
        SocketAddr::new(dst.ip, dst.port),
        protocol_name(record.protocol),
        record.rule,
    );
    Some(Observation {
        kind,
        severity: match denied {
            true => Severity::Critical,
            false => Severity::Warning,
        },
        at_ms: record.last_ms,
        workload: Some(workload),
        flow: Some(AlertFlow {
            src,
            dst,
            protocol: record.protocol,
            direction: record.direction,
            rule: record.rule,
        }),
        summary,
        count,
    })
}

/// Whether an allowed flow is one its zone alerts on: no rule decided it,
/// and the deciding side's zone is in `alert` mode.
fn alerts_only(record: &FlowRecord, state: &ClusterState) -> bool {
    if record.rule != RuleRef::ZoneDefault {
        return false;
    }
    let deciding = match record.direction {
        Direction::Egress => &record.src,
        Direction::Ingress => &record.dst,
    };
    deciding
        .zone()
        .and_then(|zone| state.zones.get(zone))
        .is_some_and(|zone| zone.mode == Mode::Alert)
}

/// Whether a denial is new behaviour in a zone that learned its baseline:
/// denied for want of a rule (not by an explicit deny), by a caller with
/// an identity, and not among the learned edges.
fn outside_baseline(state: &ClusterState, record: &FlowRecord) -> bool {
    if !matches!(record.rule, RuleRef::ZoneDefault | RuleRef::ZoneIsolation) {
        return false;
    }
    let Some(from) = record.src.identity.clone() else {
        return false;
    };
    let to = match (&record.dst.identity, record.dst.class) {
        (Some(name), _) => EdgeTarget::Identity(name.clone()),
        (None, PeerClass::World) => EdgeTarget::Address(record.dst.ip),
        (None, _) => return false,
    };
    state.baseline.deviates(&EdgeKey {
        from,
        to,
        protocol: record.protocol,
        port: record.dst.port,
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
        count: 1,
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
        count: lost,
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

fn zone_name(state: &ClusterState, raw: u32) -> Option<String> {
    (raw != 0)
        .then(|| state.zone_by_id(ZoneId(raw)).map(|z| z.name.clone()))
        .flatten()
}

/// One end for people: its identity, or what kind of peer it is.
fn label(peer: &FlowPeer) -> String {
    match &peer.identity {
        Some(name) => name.to_string(),
        None => peer.class.as_str().to_owned(),
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
