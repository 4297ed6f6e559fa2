//! Alerts and a context for the formats' unit tests.

use std::collections::BTreeMap;

use stockade_policy::{
    Alert, AlertClass, AlertFlow, AlertId, AlertKind, AlertWorkload, Direction, FlowEnd,
    IdentityName, L4Protocol, NodeId, RuleId, RuleRef, Severity,
};

use super::Context;

/// A cluster `prod-eu` of nodes `edge-1` and `edge-2`, seen from `edge-1`.
pub(crate) fn ctx() -> Context {
    Context {
        cluster: "prod-eu".into(),
        hostname: "edge-1".into(),
        node_names: BTreeMap::from([(NodeId(1), "edge-1".into()), (NodeId(2), "edge-2".into())]),
    }
}

fn name(zone: &str, app: &str, service: &str) -> IdentityName {
    IdentityName {
        zone: zone.into(),
        app: app.into(),
        service: service.into(),
    }
}

/// A denied flow from `prod/web/frontend` to `pci/billing/db` on 5432.
pub(crate) fn flow_alert(seq: u64) -> Alert {
    Alert {
        id: AlertId(format!("01HZFLOW{seq:06}")),
        seq,
        kind: AlertKind::PolicyViolation,
        severity: Severity::Critical,
        class: AlertClass::Burst,
        node: NodeId(1),
        subject_node: None,
        sink: None,
        workload: Some(AlertWorkload {
            identity: Some(name("prod", "web", "frontend")),
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
                identity: Some(name("prod", "web", "frontend")),
                zone: Some("prod".into()),
            },
            dst: FlowEnd {
                ip: "10.0.2.9".parse().expect("literal address"),
                port: 5432,
                identity: Some(name("pci", "billing", "db")),
                zone: Some("pci".into()),
            },
            protocol: L4Protocol::Tcp,
            direction: Direction::Egress,
            rule: RuleRef::Rule(RuleId(17)),
        }),
        count: 12,
        first_seen_ms: 1_714_566_800_000,
        last_seen_ms: 1_714_566_896_789,
        summary: "prod/web/frontend tried pci/billing/db:5432 = denied | by rule 17\nagain".into(),
        change: None,
    }
}

/// An unknown binary in zone `dev`, without identity.
pub(crate) fn binary_alert(seq: u64) -> Alert {
    Alert {
        id: AlertId(format!("01HZBIN{seq:07}")),
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
        last_seen_ms: 1_714_566_000_000,
        summary: "unknown binary /tmp/x in zone dev".into(),
        change: None,
    }
}

/// Node `edge-2` stopped answering, as the leader `edge-1` saw it.
pub(crate) fn node_alert(seq: u64) -> Alert {
    Alert {
        id: AlertId(format!("01HZNODE{seq:06}")),
        seq,
        kind: AlertKind::NodeDown,
        severity: Severity::Info,
        class: AlertClass::FirstSeen,
        node: NodeId(1),
        subject_node: Some(NodeId(2)),
        sink: None,
        workload: None,
        flow: None,
        count: 2,
        first_seen_ms: 1_000 + seq,
        last_seen_ms: 2_000 + seq,
        summary: format!("edge-2 missed {seq} heartbeats"),
        change: None,
    }
}

/// `ci-bot` (operator) changed a rule from 192.0.2.9, making version 42.
pub(crate) fn config_change_alert(seq: u64) -> Alert {
    let change = stockade_policy::AuditEntry {
        seq: 7,
        version: 42,
        at_ms: 1_714_566_896_789,
        author: stockade_policy::Author {
            token_id: "abc123".into(),
            token_name: "ci-bot".into(),
            role: stockade_policy::Role::Operator,
        },
        address: Some("192.0.2.9:41234".parse().expect("literal address")),
        node: NodeId(1),
        kind: "upsert_rule".into(),
        detail: r#"{"op":"upsert_rule","id":17}"#.into(),
        outcome: stockade_policy::Outcome::Applied,
        policy_changed: true,
    };
    change.to_alert().into_alert(seq)
}
