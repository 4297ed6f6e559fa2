//! Flow records and their filter as the API reads and writes them: records
//! survive a JSON round trip whatever they hold, and filters are read from
//! query strings the way the admin API's `Query` extractor reads them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use stockade_policy::{
    topology, Action, Direction, FlowFilter, FlowPeer, FlowProcess, FlowRecord, IdentityName,
    L4Protocol, Level, NodeId, PeerClass, RuleId, RuleRef,
};

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|b| IpAddr::V4(Ipv4Addr::from(b))),
        any::<[u8; 16]>().prop_map(|b| IpAddr::V6(Ipv6Addr::from(b))),
    ]
}

fn class() -> impl Strategy<Value = PeerClass> {
    prop_oneof![
        Just(PeerClass::Workload),
        Just(PeerClass::Unknown),
        Just(PeerClass::World),
        Just(PeerClass::Node),
        Just(PeerClass::Cluster),
    ]
}

/// Any text, control characters and quotes included: names in records come
/// from the kernel and the file system, not from validated input.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(&["prod", "dev", "web", "db"][..]).prop_map(str::to_string),
        any::<String>(),
    ]
}

fn identity() -> impl Strategy<Value = IdentityName> {
    (text(), text(), text()).prop_map(|(zone, app, service)| IdentityName { zone, app, service })
}

fn process() -> impl Strategy<Value = FlowProcess> {
    (any::<u32>(), text(), proptest::option::of(text())).prop_map(|(pid, exe, user)| FlowProcess {
        pid,
        exe,
        user,
    })
}

fn peer() -> impl Strategy<Value = FlowPeer> {
    (
        ip(),
        any::<u16>(),
        class(),
        proptest::option::of(identity()),
        proptest::option::of(text()),
        proptest::option::of(any::<u64>().prop_map(NodeId)),
        proptest::option::of(process()),
    )
        .prop_map(
            |(ip, port, class, identity, zone, node, process)| FlowPeer {
                ip,
                port,
                class,
                identity,
                zone,
                node,
                process,
            },
        )
}

fn rule() -> impl Strategy<Value = RuleRef> {
    prop_oneof![
        (RuleId::FIRST_ALLOCATED..).prop_map(|n| RuleRef::Rule(RuleId(n))),
        Just(RuleRef::ClusterTraffic),
        Just(RuleRef::ZoneIsolation),
        Just(RuleRef::ZoneDefault),
        Just(RuleRef::EgressChecked),
    ]
}

fn record() -> impl Strategy<Value = FlowRecord> {
    (
        (any::<u64>(), any::<u64>(), any::<u64>()),
        prop_oneof![Just(Direction::Egress), Just(Direction::Ingress)],
        prop_oneof![Just(L4Protocol::Tcp), Just(L4Protocol::Udp)],
        (peer(), peer()),
        prop_oneof![Just(Action::Allow), Just(Action::Deny)],
        rule(),
        any::<u64>(),
        any::<bool>(),
    )
        .prop_map(
            |(
                (node, a, b),
                direction,
                protocol,
                (src, dst),
                action,
                rule,
                connections,
                encrypted,
            )| {
                FlowRecord {
                    node: NodeId(node),
                    first_ms: a.min(b),
                    last_ms: a.max(b),
                    direction,
                    protocol,
                    src,
                    dst,
                    action,
                    rule,
                    connections,
                    encrypted,
                }
            },
        )
}

proptest! {
    #[test]
    fn records_survive_a_json_round_trip(record in record()) {
        let json = serde_json::to_string(&record).expect("a record serialises");
        let back: FlowRecord = serde_json::from_str(&json).expect("and reads back");
        prop_assert_eq!(back, record);
    }

    /// Whatever the records, every level draws a graph whose edges join
    /// declared vertices, and never panics on extreme counters.
    #[test]
    fn any_records_draw_a_consistent_graph(records in proptest::collection::vec(record(), 0..12)) {
        for level in [Level::Zone, Level::App, Level::Service, Level::Process] {
            let t = topology(&records, level);
            for edge in &t.edges {
                prop_assert!(t.nodes.iter().any(|n| n.id == edge.from));
                prop_assert!(t.nodes.iter().any(|n| n.id == edge.to));
                prop_assert!(edge.allowed.max(edge.denied) <= edge.connections);
            }
        }
    }

    /// What a filter writes, it reads back, from a query string as from JSON.
    #[test]
    fn filters_survive_a_query_string(
        node in proptest::option::of(any::<u64>().prop_map(NodeId)),
        zone in proptest::option::of("[a-z]{1,8}"),
        identity in proptest::option::of(("[a-z]{1,5}", "[a-z]{1,5}", "[a-z]{1,5}")),
        ip in proptest::option::of(ip()),
        port in proptest::option::of(any::<u16>()),
        rule in proptest::option::of(rule()),
        window in proptest::option::of((any::<u64>(), any::<u64>())),
        unknown in any::<bool>(),
    ) {
        let filter = FlowFilter {
            node,
            zone,
            identity: identity.map(|(zone, app, service)| IdentityName { zone, app, service }),
            ip,
            port,
            rule,
            since_ms: window.map(|w| w.0),
            until_ms: window.map(|w| w.1),
            unknown,
            ..FlowFilter::default()
        };
        let query = serde_urlencoded::to_string(&filter).expect("a filter writes a query");
        let back: FlowFilter = serde_urlencoded::from_str(&query).expect("and reads it back");
        prop_assert_eq!(&back, &filter);
        let json = serde_json::to_string(&filter).expect("a filter writes JSON");
        let back: FlowFilter = serde_json::from_str(&json).expect("and reads it back");
        prop_assert_eq!(back, filter);
    }
}

#[test]
fn a_query_string_reads_every_criterion() {
    let query = "node=2&zone=prod&app=web&service=front&identity=prod%2Fdb%2Fmain\
                 &ip=10.0.0.7&port=5432&protocol=tcp&action=deny&rule=17&direction=egress\
                 &since_ms=1000&until_ms=2000&unknown=true&level=app";
    let filter: FlowFilter = serde_urlencoded::from_str(query).expect("a full query");
    assert_eq!(
        filter,
        FlowFilter {
            node: Some(NodeId(2)),
            zone: Some("prod".into()),
            app: Some("web".into()),
            service: Some("front".into()),
            identity: Some(IdentityName {
                zone: "prod".into(),
                app: "db".into(),
                service: "main".into(),
            }),
            ip: "10.0.0.7".parse().ok(),
            port: Some(5432),
            protocol: Some(L4Protocol::Tcp),
            action: Some(Action::Deny),
            rule: Some(RuleRef::Rule(RuleId(17))),
            direction: Some(Direction::Egress),
            since_ms: Some(1000),
            until_ms: Some(2000),
            unknown: true,
        }
    );
    let built_in: FlowFilter = serde_urlencoded::from_str("rule=egress_checked").expect("a name");
    assert_eq!(built_in.rule, Some(RuleRef::EgressChecked));
    assert_eq!(
        serde_urlencoded::from_str::<FlowFilter>(""),
        Ok(FlowFilter::default())
    );
}

#[test]
fn a_bad_query_names_the_bad_value() {
    for (query, culprit) in [
        ("rule=rule%2017", "`rule 17`"),
        ("rule=2", "`2`"),
        ("identity=prod%2Fweb", "`prod/web`"),
        ("port=99999", "too large"),
        ("protocol=icmp", "icmp"),
    ] {
        let err = serde_urlencoded::from_str::<FlowFilter>(query)
            .expect_err(query)
            .to_string();
        assert!(err.contains(culprit), "{query}: {err}");
    }
}

#[test]
fn json_filters_also_take_the_record_forms() {
    let filter: FlowFilter = serde_json::from_str(
        r#"{"identity": {"zone": "prod", "app": "db", "service": "main"}, "rule": {"rule": 17}}"#,
    )
    .expect("record forms");
    assert_eq!(filter.rule, Some(RuleRef::Rule(RuleId(17))));
    assert_eq!(
        filter.identity.map(|i| i.to_string()).as_deref(),
        Some("prod/db/main")
    );
    let filter: FlowFilter = serde_json::from_str(r#"{"rule": 17}"#).expect("a number");
    assert_eq!(filter.rule, Some(RuleRef::Rule(RuleId(17))));
}

#[test]
fn a_record_writes_the_documented_json() {
    let record = FlowRecord {
        node: NodeId(1),
        first_ms: 10,
        last_ms: 20,
        direction: Direction::Egress,
        protocol: L4Protocol::Udp,
        src: FlowPeer {
            ip: "10.0.0.1".parse().expect("ip"),
            port: 0,
            class: PeerClass::Unknown,
            identity: None,
            zone: Some("prod".into()),
            node: None,
            process: Some(FlowProcess {
                pid: 7,
                exe: "/tmp/x".into(),
                user: None,
            }),
        },
        dst: FlowPeer {
            ip: "8.8.8.8".parse().expect("ip"),
            port: 53,
            class: PeerClass::World,
            identity: None,
            zone: None,
            node: None,
            process: None,
        },
        action: Action::Deny,
        rule: RuleRef::ZoneDefault,
        connections: 3,
        encrypted: false,
    };
    assert_eq!(
        serde_json::to_value(&record).expect("json"),
        serde_json::json!({
            "node": 1, "first_ms": 10, "last_ms": 20, "direction": "egress", "protocol": "udp",
            "src": {"ip": "10.0.0.1", "port": 0, "class": "unknown", "identity": null,
                    "zone": "prod", "node": null,
                    "process": {"pid": 7, "exe": "/tmp/x", "user": null}},
            "dst": {"ip": "8.8.8.8", "port": 53, "class": "world", "identity": null,
                    "zone": null, "node": null, "process": null},
            "action": "deny", "rule": "zone_default", "connections": 3, "encrypted": false
        })
    );
}
