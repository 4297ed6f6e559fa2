//! Each class of malformed input, refused with the field named.

use crate::fixtures::{allow, app, define, name, node, sample, zone};
use crate::{
    Action, AlertClass, AlertId, AlertKind, AlertSink, ClusterState, Command, Endpoint, IdentityId,
    IdentityRule, Mode, NewAlert, NodeId, Peer, Protocol, RuleSpec, Secret, Severity, SinkTarget,
    WorkloadSelector,
};

/// Applies `command` to the sample state, expects it refused, and checks
/// the error names `field` and that nothing changed.
fn refused(command: Command, field: &str, reason_part: &str) {
    let mut state = sample();
    let before = state.clone();
    let err = command
        .apply(&mut state)
        .expect_err("command must be refused");
    assert_eq!(err.field, field, "wrong field in: {err}");
    assert!(
        err.reason.contains(reason_part),
        "reason of `{err}` does not mention `{reason_part}`"
    );
    assert_eq!(state, before, "a refused command changed the state");
}

fn cidr(net: &str) -> Peer {
    Peer::Cidr(net.parse().expect("test cidr"))
}

#[test]
fn unknown_zone_is_named() {
    refused(
        define("staging", "web", "main"),
        "name.zone",
        "unknown zone `staging`",
    );
    refused(
        Command::UpsertRule {
            id: None,
            spec: allow(app("prod", "web"), app("qa", "db"), &[]),
        },
        "to.zone",
        "unknown zone `qa`",
    );
}

#[test]
fn unknown_app_and_service_are_named() {
    refused(
        Command::UpsertRule {
            id: None,
            spec: allow(app("prod", "cache"), app("prod", "db"), &[]),
        },
        "from.app",
        "unknown app `prod/cache`",
    );
    let mut spec = allow(app("prod", "web"), app("prod", "db"), &[]);
    if let Peer::App(sel) = &mut spec.to {
        sel.service = Some("replica".into());
    }
    refused(
        Command::UpsertRule { id: None, spec },
        "to.service",
        "prod/db/replica",
    );
}

#[test]
fn overlapping_port_ranges_are_refused() {
    refused(
        Command::UpsertRule {
            id: None,
            spec: allow(
                app("prod", "web"),
                app("prod", "db"),
                &["5000-6000", "80", "5432"],
            ),
        },
        "ports[2]",
        "overlaps ports[0]",
    );
}

#[test]
fn identity_id_reuse_is_refused() {
    let taken = sample()
        .identity_by_name(&name("prod", "db", "main"))
        .expect("fixture identity")
        .id;
    refused(
        Command::DefineIdentity {
            id: Some(taken),
            name: name("prod", "cache", "main"),
        },
        "id",
        "already used by `prod/db/main`",
    );
    refused(
        Command::DefineIdentity {
            id: Some(IdentityId::CLUSTER),
            name: name("prod", "cache", "main"),
        },
        "id",
        "outside the range",
    );
    refused(define("prod", "db", "main"), "name", "already defined");
}

#[test]
fn cidr_with_host_bits_is_refused() {
    refused(
        Command::UpsertRule {
            id: None,
            spec: allow(app("prod", "web"), cidr("10.1.2.3/8"), &["443"]),
        },
        "to.cidr",
        "did you mean `10.0.0.0/8`",
    );
}

#[test]
fn rule_that_would_cut_cluster_traffic_is_refused() {
    let mut spec = allow(app("prod", "web"), cidr("10.0.0.0/24"), &[]);
    spec.action = Action::Deny;
    spec.protocol = Protocol::Any;
    refused(
        Command::UpsertRule {
            id: None,
            spec: spec.clone(),
        },
        "to.cidr",
        "cut the cluster's own traffic",
    );
    // The same deny on ports the control plane does not use is fine.
    spec.ports = vec!["22".parse().expect("port")];
    Command::UpsertRule { id: None, spec }
        .apply(&mut sample())
        .expect("a deny that spares the control-plane port is accepted");
}

#[test]
fn nonsensical_rules_are_refused() {
    let mut encrypted_deny = allow(app("prod", "web"), app("prod", "db"), &[]);
    encrypted_deny.action = Action::Deny;
    encrypted_deny.encrypt = true;
    refused(
        Command::UpsertRule {
            id: None,
            spec: encrypted_deny,
        },
        "encrypt",
        "allow",
    );
    let between_cidrs = allow(cidr("10.9.0.0/16"), cidr("10.8.0.0/16"), &[]);
    refused(
        Command::UpsertRule {
            id: None,
            spec: between_cidrs,
        },
        "to",
        "two CIDRs",
    );
    let spec = allow(app("prod", "web"), app("prod", "db"), &[]);
    refused(
        Command::UpsertRule {
            id: Some(crate::RuleId(3)),
            spec,
        },
        "id",
        "reserved",
    );
}

#[test]
fn bad_names_are_refused() {
    refused(zone("Prod", Mode::Learn), "name", "a-z");
    refused(zone("", Mode::Learn), "name", "empty");
    refused(zone(&"x".repeat(64), Mode::Learn), "name", "longer than 63");
    refused(define("prod", "web/x", "main"), "name.app", "a-z");
}

#[test]
fn identity_rules_must_test_something_valid() {
    let rule = |selector| {
        Command::UpsertIdentityRule(IdentityRule {
            name: "web".into(),
            identity: name("prod", "web", "main"),
            selector,
        })
    };
    refused(rule(WorkloadSelector::default()), "match", "at least one");
    refused(
        rule(WorkloadSelector {
            exe_path: Some("/opt/[web".into()),
            ..Default::default()
        }),
        "match.exe_path",
        "not a valid glob",
    );
    refused(
        rule(WorkloadSelector {
            cgroup_path: Some("system.slice/*".into()),
            ..Default::default()
        }),
        "match.cgroup_path",
        "absolute",
    );
}

#[test]
fn referenced_objects_cannot_be_removed() {
    refused(
        Command::RemoveZone {
            name: "prod".into(),
        },
        "name",
        "still holds identity",
    );
    refused(
        Command::RemoveIdentity {
            name: name("prod", "db", "main"),
        },
        "name",
        "rule 16",
    );
    let mut state = sample();
    Command::UpsertEndpoint(Endpoint {
        node: NodeId(1),
        ip: "10.0.0.7".parse().expect("ip"),
        port: None,
        identity: name("dev", "web", "main"),
    })
    .apply(&mut state)
    .expect("valid endpoint");
    let err = Command::RemoveNode { id: NodeId(1) }
        .apply(&mut state)
        .expect_err("node with endpoints");
    assert!(err.reason.contains("10.0.0.7"), "{err}");
}

#[test]
fn endpoints_cannot_take_a_node_control_address() {
    refused(
        Command::UpsertEndpoint(Endpoint {
            node: NodeId(1),
            ip: "10.0.0.1".parse().expect("ip"),
            port: Some(7400),
            identity: name("prod", "web", "main"),
        }),
        "port",
        "control-plane address of node `node-1`",
    );
    refused(
        Command::UpsertEndpoint(Endpoint {
            node: NodeId(9),
            ip: "10.0.0.9".parse().expect("ip"),
            port: None,
            identity: name("prod", "web", "main"),
        }),
        "node",
        "unknown node 9",
    );
}

#[test]
fn nodes_need_reachable_distinct_addresses() {
    let mut twin = node(2, "10.0.0.1:7400");
    refused(
        Command::UpsertNode(twin.clone()),
        "address",
        "already the address",
    );
    twin.address = "0.0.0.0:7400".parse().expect("addr");
    refused(
        Command::UpsertNode(twin),
        "address",
        "not an address peers can reach",
    );
}

#[test]
fn sinks_are_checked() {
    let sink = |target| AlertSink {
        name: "ops".into(),
        target,
        min_severity: Severity::Warning,
        zones: vec![],
        apps: vec![],
        classes: vec![],
        max_per_minute: None,
        audit: false,
    };
    refused(
        Command::UpsertSink(sink(SinkTarget::Slack {
            webhook_url: Secret("hooks.slack.test/T/B".into()),
        })),
        "target.webhook_url",
        "https://",
    );
    refused(
        Command::UpsertSink(sink(SinkTarget::Slack {
            webhook_url: Secret(Secret::REDACTED.into()),
        })),
        "target",
        "redaction marker",
    );
    refused(
        Command::UpsertSink(sink(SinkTarget::Syslog {
            address: "siem.local".into(),
            tls: true,
            ca_pem: None,
        })),
        "target.address",
        "host:port",
    );
    let mut routed = sink(SinkTarget::Syslog {
        address: "siem.local:6514".into(),
        tls: true,
        ca_pem: None,
    });
    routed.apps = vec!["prod/payroll".into()];
    refused(
        Command::UpsertSink(routed),
        "apps[0]",
        "unknown app `prod/payroll`",
    );
}

#[test]
fn a_batch_is_all_or_nothing_and_names_the_failing_command() {
    let batch = Command::batch(vec![
        zone("qa", Mode::Alert),
        define("qa", "web", "main"),
        define("qa", "web", "main"),
    ]);
    refused(batch, "batch[2].name", "already defined");
}

#[test]
fn valid_commands_leave_a_consistent_state() {
    let mut state = ClusterState::new();
    let spec = RuleSpec {
        protocol: Protocol::Udp,
        ..allow(app("prod", "web"), cidr("0.0.0.0/0"), &["53"])
    };
    Command::batch(vec![
        zone("prod", Mode::Alert),
        define("prod", "web", "main"),
        Command::UpsertRule { id: None, spec },
    ])
    .apply(&mut state)
    .expect("valid batch");
    assert_eq!(state.rules.len(), 1);
    assert_eq!(state.next_rule_id, crate::RuleId::FIRST_ALLOCATED + 1);
}

#[test]
fn alerts_from_nodes_are_checked() {
    let mut state = sample();
    let alert = |id: &str| NewAlert {
        id: AlertId(id.into()),
        kind: AlertKind::PolicyViolation,
        severity: Severity::Warning,
        class: AlertClass::FirstSeen,
        node: *state.nodes.keys().next().expect("the sample has nodes"),
        subject_node: None,
        sink: None,
        workload: None,
        flow: None,
        count: 1,
        first_seen_ms: 10,
        last_seen_ms: 10,
        summary: "blocked".into(),
        change: None,
    };
    let raise = |alerts| Command::RaiseAlerts { alerts };
    refused(raise(vec![]), "alerts", "no alert");
    refused(raise(vec![alert("")]), "alerts[0].id", "printable");
    let mut zero = alert("a");
    zero.count = 0;
    refused(
        raise(vec![alert("ok"), zero]),
        "alerts[1].count",
        "at least one",
    );
    let mut stranger = alert("a");
    stranger.node = NodeId(999);
    refused(raise(vec![stranger]), "alerts[0].node", "no node 999");
    let mut backwards = alert("a");
    backwards.first_seen_ms = 11;
    refused(raise(vec![backwards]), "alerts[0].first_seen_ms", "after");
    refused(
        Command::AckDelivery {
            sink: "nobody".into(),
            through: 0,
            at_ms: 0,
        },
        "sink",
        "no alert sink",
    );
    Command::RaiseAlerts {
        alerts: vec![alert("a")],
    }
    .apply(&mut state)
    .expect("a valid alert is appended");
    assert_eq!(state.alerts.last_seq(), 1);
}
