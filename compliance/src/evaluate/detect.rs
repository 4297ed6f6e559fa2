//! Detect: anomalies and events, continuous monitoring and detection
//! processes (DE).

use std::collections::BTreeSet;

use stockade_policy::{Action, Mode, Peer, SinkTarget};

use super::{list, severity, when, zones_split};
use crate::evidence::Evidence;
use crate::report::Finding;

/// Met when sinks are configured, none is failing, and every sink has
/// received the alerts raised so far.
pub(super) fn alert_delivery(e: &Evidence<'_>) -> Finding {
    let alerts = &e.state.alerts;
    let last = alerts.last_seq();
    let mut f = Finding::new();
    if e.state.sinks.is_empty() {
        f.fact("no alert sink is configured");
        f.gap("add a Slack or SIEM sink");
        return f.judge(false, false);
    }
    let mut behind = 0;
    for (name, sink) in &e.state.sinks {
        let cursor = alerts.cursors.get(name).copied().unwrap_or_default();
        let kind = match sink.target {
            SinkTarget::Slack { .. } => "Slack",
            SinkTarget::Syslog { .. } => "SIEM (syslog/CEF)",
            SinkTarget::Webhook { .. } => "webhook",
        };
        let reached = if cursor.at_ms == 0 {
            "never yet".to_owned()
        } else {
            when(cursor.at_ms)
        };
        let failing = alerts.sinks_failing.contains(name);
        f.fact(format!(
            "sink `{name}` ({kind}, from {}): delivered through alert {} of {last}, last progress {reached}{}",
            severity(sink.min_severity),
            cursor.through,
            if failing { ", FAILING" } else { "" }
        ));
        if failing {
            f.gap(format!("sink `{name}` is failing"));
        }
        if cursor.through < last {
            behind += 1;
        }
    }
    if behind > 0 {
        f.gap(format!("sinks with alerts still to receive: {behind}"));
    }
    f.judge(alerts.sinks_failing.is_empty() && behind == 0, true)
}

/// Met when a baseline was learned and every workload zone at least alerts
/// on what lies outside it.
pub(super) fn baseline_deviation(e: &Evidence<'_>) -> Finding {
    let (learning, watching) = zones_split(e.state, Mode::Learn);
    let mut f = Finding::new();
    f.fact(format!(
        "baseline edges learned: {}",
        e.state.baseline.edges.len()
    ));
    f.fact(format!(
        "zones alerting or enforcing on deviations: {}",
        list(&watching, ", ")
    ));
    f.fact(format!("zones still learning: {}", list(&learning, ", ")));
    for zone in &learning {
        f.gap(format!(
            "zone `{zone}` raises no deviation alerts while it learns"
        ));
    }
    let learned = !e.state.baseline.edges.is_empty();
    f.judge(
        learned && learning.is_empty(),
        learned || !watching.is_empty(),
    )
}

/// Met when every node's flow log answered and alerts reach a SIEM.
pub(super) fn aggregation(e: &Evidence<'_>) -> Finding {
    let siems: Vec<&str> = e
        .state
        .sinks
        .values()
        .filter(|s| !matches!(s.target, SinkTarget::Slack { .. }))
        .map(|s| s.name.as_str())
        .collect();
    let raised_by: BTreeSet<_> = e.state.alerts.records.values().map(|a| a.node).collect();
    let mut f = Finding::new();
    f.fact(format!(
        "alerts held in one replicated log: {}, raised by nodes: {}",
        e.state.alerts.records.len(),
        raised_by.len()
    ));
    f.fact(format!(
        "nodes whose flow logs were read: {} of {}",
        e.flows.answered.len(),
        e.flows.answered.len() + e.flows.missing.len()
    ));
    f.fact(format!("SIEM sinks: {}", list(&siems, ", ")));
    if siems.is_empty() {
        f.gap("add a SIEM sink (syslog/CEF or a JSON webhook)");
    }
    if !e.flows.missing.is_empty() {
        f.gap("some nodes' flow logs could not be read");
    }
    f.judge(!siems.is_empty() && e.flows.missing.is_empty(), true)
}

/// Met when every sink has a minimum severity above info and a rate limit.
pub(super) fn thresholds(e: &Evidence<'_>) -> Finding {
    let mut f = Finding::new();
    if e.state.sinks.is_empty() {
        f.fact("no alert sink is configured");
        f.gap("add a sink with a minimum severity and a rate limit");
        return f.judge(false, false);
    }
    let mut unlimited = Vec::new();
    for sink in e.state.sinks.values() {
        f.fact(format!(
            "sink `{}`: from {}, {}",
            sink.name,
            severity(sink.min_severity),
            match sink.max_per_minute {
                Some(n) => format!("at most {n} a minute"),
                None => "no rate limit".to_owned(),
            }
        ));
        if sink.max_per_minute.is_none() {
            unlimited.push(sink.name.as_str());
        }
    }
    f.fact("alerts are classed first-seen, recurring or burst by how often they occur");
    for name in &unlimited {
        f.gap(format!("give sink `{name}` a rate limit (max_per_minute)"));
    }
    f.judge(unlimited.is_empty(), true)
}

/// Met when every member's kernel enforces and its flow log answered.
pub(super) fn monitoring(e: &Evidence<'_>) -> Finding {
    let mut f = Finding::new();
    let mut versions = BTreeSet::new();
    let mut short = Vec::new();
    for m in &e.members {
        let problem = match &m.answer {
            None => Some("did not answer".to_owned()),
            Some(a) => match (a.dataplane_index, &a.dataplane_error) {
                (None, _) => Some("runs no dataplane".to_owned()),
                (Some(index), None) => {
                    versions.insert(index);
                    None
                }
                (Some(index), Some(err)) => Some(format!(
                    "kernel at version {index}, last update failed: {err}"
                )),
            },
        };
        if let Some(problem) = problem {
            short.push(format!("node {} `{}` {problem}", m.node, m.name));
        }
    }
    let enforcing = e.members.len() - short.len();
    let range = match (versions.first(), versions.last()) {
        (Some(low), Some(high)) if low != high => format!(" (policy versions {low} to {high})"),
        (Some(version), _) => format!(" (policy version {version})"),
        _ => String::new(),
    };
    f.fact(format!(
        "nodes whose kernel checks every connection: {enforcing} of {}{range}",
        e.members.len()
    ));
    f.fact(format!("nodes that do not: {}", list(&short, "; ")));
    f.fact(format!(
        "flows checked at egress in the window: {}, of which refused: {}",
        e.flows.tally.flows, e.flows.tally.denied
    ));
    if !short.is_empty() {
        f.gap(format!(
            "nodes that do not monitor their workloads: {}",
            short.len()
        ));
    }
    f.judge(short.is_empty() && !e.members.is_empty(), enforcing > 0)
}

/// Met when every workload zone enforces (outside callers are refused
/// unless a rule names their address) and outside flows are logged.
pub(super) fn outside_activity(e: &Evidence<'_>) -> Finding {
    let (enforcing, other) = zones_split(e.state, Mode::Enforce);
    let inbound_rules = e
        .state
        .rules
        .values()
        .filter(|r| r.spec.action == Action::Allow && matches!(r.spec.from, Peer::Cidr(_)))
        .count();
    let t = &e.flows.tally;
    let mut f = Finding::new();
    f.fact(format!(
        "flows from outside the cluster received in the window: {}, of which refused: {}",
        t.from_world, t.from_world_denied
    ));
    f.fact(format!(
        "rules that admit addresses outside the cluster: {inbound_rules}"
    ));
    f.fact(format!(
        "zones refusing unlisted outside callers: {}",
        list(&enforcing, ", ")
    ));
    for zone in &other {
        f.gap(format!(
            "zone `{zone}` admits outside callers without a rule"
        ));
    }
    f.judge(
        other.is_empty() && !enforcing.is_empty(),
        !enforcing.is_empty() || t.from_world > 0,
    )
}
