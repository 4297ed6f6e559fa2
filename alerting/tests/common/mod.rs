//! Alerts, a context and sink configurations shared by the sink tests.

// Each test crate uses its own subset of these helpers.
#![allow(dead_code)]

use std::collections::BTreeMap;

use stockade_alerting::sink::Context;
use stockade_policy::{
    Alert, AlertClass, AlertFlow, AlertId, AlertKind, AlertSink, AlertWorkload, Direction, FlowEnd,
    IdentityName, L4Protocol, NodeId, RuleId, RuleRef, Severity, SinkTarget,
};

/// Cluster `prod-eu` with nodes `edge-1` (sending) and `edge-2`.
pub fn ctx() -> Context {
    Context {
        cluster: "prod-eu".into(),
        hostname: "edge-1".into(),
        node_names: BTreeMap::from([(NodeId(1), "edge-1".into()), (NodeId(2), "edge-2".into())]),
    }
}

/// A sink named `name` with `target` and no filters.
pub fn sink(name: &str, target: SinkTarget) -> AlertSink {
    AlertSink {
        name: name.into(),
        target,
        min_severity: Severity::Info,
        zones: vec![],
        apps: vec![],
        classes: vec![],
        max_per_minute: None,
    }
}

fn identity(zone: &str, app: &str, service: &str) -> IdentityName {
    IdentityName {
        zone: zone.into(),
        app: app.into(),
        service: service.into(),
    }
}

/// `prod/web/frontend` was denied `pci/billing/db:5432` by rule 17; `tag`
/// makes the id unique across tests.
pub fn policy_violation(tag: &str, seq: u64) -> Alert {
    Alert {
        id: AlertId(format!("{tag}-pv-{seq}")),
        seq,
        kind: AlertKind::PolicyViolation,
        severity: Severity::Critical,
        class: AlertClass::Burst,
        node: NodeId(1),
        subject_node: None,
        sink: None,
        workload: Some(AlertWorkload {
            identity: Some(identity("prod", "web", "frontend")),
            zone: Some("prod".into()),
            pid: Some(4242),
            executable: "/opt/web/bin/frontend".into(),
            sha256: Some(
                "3f2a9c1b0d4e5f60718293a4b5c6d7e8f90112233445566778899aabbccddeef"
                    .parse()
                    .expect("literal digest"),
            ),
        }),
        flow: Some(AlertFlow {
            src: FlowEnd {
                ip: "10.0.1.5".parse().expect("literal address"),
                port: 40112,
                identity: Some(identity("prod", "web", "frontend")),
                zone: Some("prod".into()),
            },
            dst: FlowEnd {
                ip: "10.0.2.9".parse().expect("literal address"),
                port: 5432,
                identity: Some(identity("pci", "billing", "db")),
                zone: Some("pci".into()),
            },
            protocol: L4Protocol::Tcp,
            direction: Direction::Egress,
            rule: RuleRef::Rule(RuleId(17)),
        }),
        count: 12,
        first_seen_ms: 1_714_566_800_000,
        last_seen_ms: 1_714_566_896_789,
        summary: "prod/web/frontend → pci/billing/db:5432 denied by rule 17 (a=b \\ \"q\")".into(),
    }
}

/// `/tmp/x` runs in zone `dev` on `edge-2` and no rule names it.
pub fn unknown_binary(tag: &str, seq: u64) -> Alert {
    Alert {
        id: AlertId(format!("{tag}-ub-{seq}")),
        seq,
        kind: AlertKind::UnknownBinary,
        severity: Severity::Warning,
        class: AlertClass::FirstSeen,
        node: NodeId(2),
        subject_node: None,
        sink: None,
        workload: Some(AlertWorkload {
            identity: None,
            zone: Some("dev".into()),
            pid: Some(777),
            executable: "/tmp/x".into(),
            sha256: None,
        }),
        flow: None,
        count: 1,
        first_seen_ms: 1_714_566_000_000,
        last_seen_ms: 1_714_566_000_123,
        summary: "unknown binary /tmp/x in zone dev".into(),
    }
}

/// The leader `edge-1` lost `edge-2`.
pub fn node_down(tag: &str, seq: u64) -> Alert {
    Alert {
        id: AlertId(format!("{tag}-nd-{seq}")),
        seq,
        kind: AlertKind::NodeDown,
        severity: Severity::Info,
        class: AlertClass::FirstSeen,
        node: NodeId(1),
        subject_node: Some(NodeId(2)),
        sink: None,
        workload: None,
        flow: None,
        count: 1,
        first_seen_ms: 1_714_567_000_000,
        last_seen_ms: 1_714_567_000_000,
        summary: "edge-2 stopped answering\nfor 30 s".into(),
    }
}

/// One of each kind above, with consecutive sequence numbers from `seq`.
pub fn three(tag: &str, seq: u64) -> Vec<Alert> {
    vec![
        policy_violation(tag, seq),
        unknown_binary(tag, seq + 1),
        node_down(tag, seq + 2),
    ]
}

/// A local port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("bound address").port()
}
