//! Protect: segmentation, data security, information protection and
//! protective technology (PR).

use std::collections::BTreeSet;

use stockade_policy::{Action, Mode, Peer, WorkloadStatus};

use super::{list, percent, when, workload_zones, zones_split, BACKUP_MAX_AGE_MS};
use crate::evidence::Evidence;
use crate::report::{Finding, Status};

/// Met when every zone that holds workloads enforces and every member's
/// kernel enforces the policy.
pub(super) fn segmentation(e: &Evidence<'_>) -> Finding {
    let (enforcing, other) = zones_split(e.state, Mode::Enforce);
    let kernels = e.members.iter().filter(|m| m.enforces()).count();
    let mut f = Finding::new();
    f.fact(format!("zones enforcing: {}", list(&enforcing, ", ")));
    f.fact(format!("zones not enforcing: {}", list(&other, ", ")));
    f.fact(format!(
        "nodes enforcing the policy in their kernel: {kernels} of {}",
        e.members.len()
    ));
    f.fact(format!(
        "flows refused in the window: {} ({} of all)",
        e.flows.tally.denied,
        percent(e.flows.tally.denied, e.flows.tally.flows)
    ));
    for zone in &other {
        f.gap(format!("set zone `{zone}` to enforce"));
    }
    if kernels < e.members.len() {
        f.gap("every node must run its dataplane (some answered without one, or did not answer)");
    }
    f.judge(
        other.is_empty() && !enforcing.is_empty() && kernels == e.members.len(),
        !enforcing.is_empty(),
    )
}

/// Met when encrypting rules exist and every allowed cross-node flow
/// between workloads in the window went through the tunnel.
pub(super) fn data_in_transit(e: &Evidence<'_>) -> Finding {
    let rules = e.state.rules.values().filter(|r| r.spec.encrypt).count();
    let t = &e.flows.tally;
    let mut f = Finding::new();
    f.fact(format!(
        "rules that require encryption between nodes: {rules}"
    ));
    f.fact(format!(
        "allowed cross-node flows between workloads that were encrypted: {} of {} ({})",
        t.cross_node_encrypted,
        t.cross_node,
        percent(t.cross_node_encrypted, t.cross_node)
    ));
    f.fact("node-to-node control traffic is QUIC with mutual TLS (always)");
    if rules == 0 {
        f.gap("mark the rules that carry ePHI between nodes with encrypt = true");
    }
    if t.cross_node > t.cross_node_encrypted {
        f.gap("some cross-node flows were not encrypted: add encrypt = true to their rules");
    }
    f.judge(
        rules > 0 && t.cross_node > 0 && t.cross_node == t.cross_node_encrypted,
        rules > 0 || t.cross_node_encrypted > 0,
    )
}

/// Met when every workload zone enforces (egress is allow-listed there).
pub(super) fn egress(e: &Evidence<'_>) -> Finding {
    let (enforcing, other) = zones_split(e.state, Mode::Enforce);
    let cidr_rules = e
        .state
        .rules
        .values()
        .filter(|r| r.spec.action == Action::Allow && matches!(r.spec.to, Peer::Cidr(_)))
        .count();
    let mut f = Finding::new();
    f.fact(format!(
        "egress is allow-listed in zones: {}",
        list(&enforcing, ", ")
    ));
    f.fact(format!(
        "rules that allow addresses outside the cluster: {cidr_rules}"
    ));
    f.fact(format!(
        "allowed flows that left the cluster in the window: {}",
        e.flows.tally.to_world
    ));
    for zone in &other {
        f.gap(format!(
            "zone `{zone}` does not enforce: its egress is not restricted"
        ));
    }
    f.judge(
        other.is_empty() && !enforcing.is_empty(),
        !enforcing.is_empty(),
    )
}

/// Met when binaries are registered by fingerprint, every identity has
/// one, and no unknown or modified binary runs.
pub(super) fn binary_integrity(e: &Evidence<'_>) -> Finding {
    let state = e.state;
    let fingerprinted: BTreeSet<_> = state.fingerprints.values().map(|f| &f.identity).collect();
    let identities = state.identities.len();
    let running_bad: Vec<String> = state
        .inventory
        .values()
        .flat_map(|i| i.workloads.iter().map(move |w| (i.node, w)))
        .filter(|(_, w)| w.is_unknown())
        .map(|(node, w)| {
            let what = match w.status {
                WorkloadStatus::ModifiedBinary => "modified",
                _ => "unknown",
            };
            format!("{} on node {node} ({what})", w.exe)
        })
        .collect();
    let t = &e.flows.tally;
    let mut f = Finding::new();
    f.fact(format!(
        "binaries registered by SHA-256: {}",
        state.fingerprints.len()
    ));
    f.fact(format!(
        "identities bound to a registered binary: {} of {identities}",
        fingerprinted.len()
    ));
    f.fact(format!(
        "unknown or modified binaries running: {}",
        list(&running_bad, "; ")
    ));
    f.fact(format!(
        "flows from unknown binaries refused in the window: {} of {}",
        t.from_unknown_denied, t.from_unknown
    ));
    if state.fingerprints.is_empty() {
        f.gap("register release binaries from CI: stockade fingerprint PATH --zone Z --app A");
    } else if fingerprinted.len() < identities {
        f.gap("some identities are matched by path or cgroup only, not by fingerprint");
    }
    if !running_bad.is_empty() {
        f.gap("investigate the unknown and modified binaries");
    }
    f.judge(
        !state.fingerprints.is_empty()
            && fingerprinted.len() >= identities
            && running_bad.is_empty(),
        !state.fingerprints.is_empty(),
    )
}

/// Met with two or more workload zones, none of which a rule joins to
/// another, that at least alert.
pub(super) fn zone_separation(e: &Evidence<'_>) -> Finding {
    let state = e.state;
    let zones = workload_zones(state);
    let crossing: Vec<String> = state
        .rules
        .values()
        .filter(|r| r.spec.action == Action::Allow)
        .filter_map(|r| match (&r.spec.from, &r.spec.to) {
            (Peer::App(a), Peer::App(b)) if a.zone != b.zone => {
                Some(format!("rule {} ({} -> {})", r.id.0, a.zone, b.zone))
            }
            _ => None,
        })
        .collect();
    let (learning, _) = zones_split(state, Mode::Learn);
    let mut f = Finding::new();
    f.fact(format!(
        "zones that hold workloads ({}): {}",
        zones.len(),
        list(&zones.iter().copied().collect::<Vec<_>>(), ", ")
    ));
    f.fact(format!(
        "rules joining two zones: {}",
        list(&crossing, "; ")
    ));
    f.fact(format!(
        "zones still learning (not isolated yet): {}",
        list(&learning, ", ")
    ));
    if zones.len() < 2 {
        f.gap("put development and production workloads in zones of their own");
    }
    if !crossing.is_empty() {
        f.gap("review the rules that join zones");
    }
    for zone in &learning {
        f.gap(format!(
            "zone `{zone}` only learns: switch it to alert or enforce"
        ));
    }
    f.judge(
        zones.len() >= 2 && crossing.is_empty() && learning.is_empty(),
        zones.len() >= 2,
    )
}

/// Met when there are rules and no learned flow is left undecided.
pub(super) fn baseline(e: &Evidence<'_>) -> Finding {
    let state = e.state;
    let undecided: usize = state
        .zones
        .keys()
        .filter_map(|z| stockade_policy::propose(state, z, false).ok())
        .map(|p| p.rules.len())
        .sum();
    let mut f = Finding::new();
    f.fact(format!("rules in the policy: {}", state.rules.len()));
    f.fact(format!(
        "baseline edges learned: {}; links snoozed or denied by people: {}",
        state.baseline.edges.len(),
        state.baseline.decisions.len()
    ));
    f.fact(format!(
        "proposed rules waiting for a decision: {undecided}"
    ));
    if state.baseline.dropped_edges > 0 {
        f.fact(format!(
            "edges not recorded because the baseline is full: {}",
            state.baseline.dropped_edges
        ));
        f.gap("raise settings.baseline_max_edges");
    }
    if undecided > 0 {
        f.gap("review the proposal: stockade baseline propose ZONE");
    }
    if state.rules.is_empty() {
        f.gap("no rules yet: let the zones learn, then accept the proposal");
    }
    f.judge(
        !state.rules.is_empty() && undecided == 0 && state.baseline.dropped_edges == 0,
        !state.rules.is_empty(),
    )
}

/// Met when every identity is bound to a registered binary.
pub(super) fn fingerprints_from_ci(e: &Evidence<'_>) -> Finding {
    let state = e.state;
    let bound: BTreeSet<_> = state.fingerprints.values().map(|f| &f.identity).collect();
    let unbound: Vec<String> = state
        .identities
        .values()
        .filter(|i| !bound.contains(&i.name))
        .map(|i| i.name.to_string())
        .collect();
    let mut f = Finding::new();
    f.fact(format!(
        "binaries registered: {}, for identities: {}",
        state.fingerprints.len(),
        bound.len()
    ));
    f.fact(format!(
        "identities without a registered binary: {}",
        list(&unbound, ", ")
    ));
    if !unbound.is_empty() {
        f.gap("register each release's binaries from CI (stockade fingerprint)");
    }
    f.judge(
        unbound.is_empty() && !state.fingerprints.is_empty(),
        !state.fingerprints.is_empty(),
    )
}

/// Met when a backup was taken within the last two days.
pub(super) fn backups(e: &Evidence<'_>) -> Finding {
    let mut f = Finding::new();
    let Some(last) = &e.state.last_backup else {
        f.fact("no backup has been recorded");
        f.gap("set backup_dir on the voters, or run stockade backup");
        return f.judge(false, false);
    };
    let age = e.now_ms.saturating_sub(last.taken_at_ms);
    f.fact(format!(
        "last backup {} ({} ago) by node {}, of policy version {}: {}",
        when(last.taken_at_ms),
        humantime::format_duration(std::time::Duration::from_secs(age / 1000)),
        last.node,
        last.source_index,
        last.file
    ));
    f.fact(format!("its state digest: {}", last.durable_digest));
    let recent = age <= BACKUP_MAX_AGE_MS;
    if !recent {
        f.gap("the last backup is more than two days old");
    }
    f.gap_always(
        "test a restore periodically: stockade restore FILE --allow-foreign into a scratch cluster",
    );
    f.judge(recent, true)
}

/// Met when API changes are audited and the audit log is streamed to a
/// sink (it always is recorded; streaming makes it reviewable outside).
pub(super) fn audit_records(e: &Evidence<'_>) -> Finding {
    let audit = &e.state.audit;
    let streamed: Vec<&str> = e
        .state
        .sinks
        .values()
        .filter(|s| s.audit)
        .map(|s| s.name.as_str())
        .collect();
    let mut f = Finding::new();
    f.fact(format!(
        "API changes in the audit log: {} (it keeps {}; older ones dropped: {})",
        audit.entries.len(),
        e.state.settings.audit_retention,
        audit.trimmed
    ));
    if let (Some(first), Some(last)) = (audit.entries.front(), audit.entries.back()) {
        f.fact(format!(
            "covering {} to {}",
            when(first.at_ms),
            when(last.at_ms)
        ));
    }
    f.fact(format!("streamed to sinks: {}", list(&streamed, ", ")));
    f.fact(format!(
        "policy versions in the history, each with its author and diff: {}",
        e.state.history.versions.len()
    ));
    if streamed.is_empty() {
        f.gap("set audit = true on a SIEM sink so changes are reviewed outside the cluster");
    }
    f.judge(!streamed.is_empty(), true)
}

/// Met when every workload zone enforces and no allow rule opens every
/// port or a whole zone.
pub(super) fn least_functionality(e: &Evidence<'_>) -> Finding {
    let (_, other) = zones_split(e.state, Mode::Enforce);
    let broad: Vec<String> = e
        .state
        .rules
        .values()
        .filter(|r| r.spec.action == Action::Allow)
        .filter(|r| {
            let whole_zone = |p: &Peer| matches!(p, Peer::App(a) if a.app.is_none());
            let anywhere = |p: &Peer| matches!(p, Peer::Cidr(n) if n.prefix_len() == 0);
            r.spec.ports.is_empty() || whole_zone(&r.spec.to) || anywhere(&r.spec.to)
        })
        .map(|r| format!("rule {}", r.id.0))
        .collect();
    let mut f = Finding::new();
    f.fact(format!(
        "allow rules: {}; broad ones (every port, a whole zone, or anywhere): {}",
        e.state
            .rules
            .values()
            .filter(|r| r.spec.action == Action::Allow)
            .count(),
        list(&broad, ", ")
    ));
    f.fact(format!(
        "zones not enforcing the allow-list: {}",
        list(&other, ", ")
    ));
    if !broad.is_empty() {
        f.gap("narrow the broad rules to the ports and services they need");
    }
    if !other.is_empty() {
        f.gap("an allow-list only restricts in enforcing zones");
    }
    f.judge(
        broad.is_empty() && other.is_empty() && !e.state.rules.is_empty(),
        !e.state.rules.is_empty(),
    )
}

/// Met when segmentation is met (PR.AC-5) and the cluster has its CA.
pub(super) fn control_network(e: &Evidence<'_>) -> Finding {
    let segmented = segmentation(e).status;
    let mut f = Finding::new();
    f.fact(format!(
        "cluster CA present: {}",
        if e.state.access.ca.is_some() {
            "yes"
        } else {
            "no"
        }
    ));
    f.fact(format!(
        "nodes, all speaking QUIC with mutual TLS under that CA: {}",
        e.state.nodes.len()
    ));
    f.fact(format!(
        "workload segmentation (PR.AC-5): {}",
        segmented.label()
    ));
    if segmented != Status::Met {
        f.gap("meet PR.AC-5");
    }
    f.judge(
        segmented == Status::Met && e.state.access.ca.is_some(),
        e.state.access.ca.is_some(),
    )
}
