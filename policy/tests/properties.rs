//! Property tests of the policy engine: determinism of `apply` (baseline
//! learning and link decisions included), round trips of policy documents,
//! zone isolation in compiled dataplanes, and validation of every class of
//! malformed input.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use ipnet::{IpNet, Ipv4Net};
use proptest::prelude::*;
use stockade_policy::{
    compile, Action, AlertClass, AlertId, AlertKind, AlertSink, AppSelector, ClusterState, Command,
    Direction, EdgeKey, EdgeTarget, Endpoint, Fingerprint, FlowQuery, IdentityId, IdentityName,
    IdentityRule, L4Protocol, LinkChoice, LocalWorkloads, Mode, NewAlert, Node, NodeId,
    ObservedEdge, Peer, PolicyDocument, PortRange, Protocol, RuleId, RuleRef, RuleSpec, Secret,
    Secrets, Settings, Severity, Sha256, SinkTarget, Subject, WorkloadSelector, ZoneId,
};

const ZONES: &[&str] = &["prod", "dev", "pci"];
const APPS: &[&str] = &["web", "db", "api"];
const SERVICES: &[&str] = &["main", "worker"];
const CIDRS: &[&str] = &["10.0.0.0/8", "10.1.0.0/16", "192.168.7.0/24", "0.0.0.0/0"];

/// The control-plane address of node `id` (nodes 1 to 3 exist in the
/// generated universe).
fn node_address(id: u64) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, id as u8)), 7400)
}

fn node(id: u64) -> Node {
    Node {
        id: NodeId(id),
        name: format!("node-{id}"),
        address: node_address(id),
        labels: [(
            "cloud".to_string(),
            if id.is_multiple_of(2) { "aws" } else { "gcp" }.to_string(),
        )]
        .into_iter()
        .collect(),
    }
}

fn pick(names: &'static [&'static str]) -> impl Strategy<Value = String> {
    proptest::sample::select(names).prop_map(str::to_string)
}

fn mode() -> impl Strategy<Value = Mode> {
    prop_oneof![Just(Mode::Learn), Just(Mode::Alert), Just(Mode::Enforce)]
}

fn identity_name() -> impl Strategy<Value = IdentityName> {
    (pick(ZONES), pick(APPS), pick(SERVICES)).prop_map(|(zone, app, service)| IdentityName {
        zone,
        app,
        service,
    })
}

fn sha256() -> impl Strategy<Value = Sha256> {
    (1u8..5).prop_map(|b| Sha256([b; 32]))
}

fn peer() -> impl Strategy<Value = Peer> {
    prop_oneof![
        3 => (pick(ZONES), proptest::option::of(pick(APPS)), proptest::option::of(pick(SERVICES)))
            .prop_map(|(zone, app, service)| Peer::App(AppSelector {
                service: app.as_ref().and(service),
                zone,
                app,
            })),
        1 => pick(CIDRS).prop_map(|c| Peer::Cidr(c.parse().expect("universe CIDRs are valid"))),
    ]
}

/// A flow edge of the universe: between identities, or to one address
/// outside the cluster.
fn edge_key() -> impl Strategy<Value = EdgeKey> {
    let to = prop_oneof![
        3 => identity_name().prop_map(EdgeTarget::Identity),
        1 => Just(EdgeTarget::Address(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)))),
    ];
    (
        identity_name(),
        to,
        any::<bool>(),
        prop_oneof![Just(80u16), Just(5432)],
    )
        .prop_map(|(from, to, udp, port)| EdgeKey {
            from,
            to,
            protocol: if udp {
                L4Protocol::Udp
            } else {
                L4Protocol::Tcp
            },
            port,
        })
}

fn port_range() -> impl Strategy<Value = PortRange> {
    prop_oneof![
        proptest::sample::select(&[22u16, 80, 443, 5432, 7400][..]).prop_map(PortRange::single),
        (0u16..9000, 0u16..3000).prop_map(|(first, len)| PortRange {
            first,
            last: first.saturating_add(len),
        }),
    ]
}

fn rule_spec() -> impl Strategy<Value = RuleSpec> {
    (
        peer(),
        peer(),
        prop_oneof![
            Just(Protocol::Tcp),
            Just(Protocol::Udp),
            Just(Protocol::Any)
        ],
        proptest::collection::vec(port_range(), 0..3),
        prop_oneof![2 => Just(Action::Allow), 1 => Just(Action::Deny)],
        proptest::bool::weighted(0.15),
    )
        .prop_map(|(from, to, protocol, ports, action, encrypt)| RuleSpec {
            from,
            to,
            protocol,
            ports,
            action,
            encrypt,
            owner: "team".into(),
            description: String::new(),
        })
}

/// Commands over a small universe of names, so that many of them are valid
/// and refer to each other; invalid ones exercise the refusal paths.
fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        4 => (proptest::option::of(1u32..6), pick(ZONES), mode()).prop_map(|(id, name, mode)| {
            Command::UpsertZone { id: id.map(ZoneId), name, mode, description: String::new() }
        }),
        1 => pick(ZONES).prop_map(|name| Command::RemoveZone { name }),
        6 => (proptest::option::of(256u32..262), identity_name())
            .prop_map(|(id, name)| Command::DefineIdentity { id: id.map(IdentityId), name }),
        1 => identity_name().prop_map(|name| Command::RemoveIdentity { name }),
        2 => (pick(APPS), identity_name(), proptest::option::of(sha256()), any::<bool>())
            .prop_map(|(name, identity, sha256, by_label)| {
                Command::UpsertIdentityRule(IdentityRule {
                    name,
                    selector: WorkloadSelector {
                        sha256,
                        exe_path: Some(format!("/opt/{}/*", identity.app)),
                        node_labels: if by_label {
                            [("cloud".to_string(), "aws".to_string())].into_iter().collect()
                        } else {
                            Default::default()
                        },
                        ..Default::default()
                    },
                    identity,
                })
            }),
        2 => (sha256(), identity_name()).prop_map(|(sha256, identity)| {
            Command::RegisterFingerprint(Fingerprint { sha256, identity, path: String::new() })
        }),
        1 => sha256().prop_map(|sha256| Command::RemoveFingerprint { sha256 }),
        16 => (proptest::option::of(16u32..40), rule_spec())
            .prop_map(|(id, spec)| Command::UpsertRule { id: id.map(RuleId), spec }),
        1 => (16u32..40).prop_map(|id| Command::RemoveRule { id: RuleId(id) }),
        2 => (1u64..4).prop_map(|id| Command::UpsertNode(node(id))),
        2 => (1u64..4, 1u8..6, proptest::option::of(prop_oneof![Just(80u16), Just(5432)]), identity_name())
            .prop_map(|(node, host, port, identity)| Command::UpsertEndpoint(Endpoint {
                node: NodeId(node),
                ip: IpAddr::V4(Ipv4Addr::new(10, 0, 1, host)),
                port,
                identity,
            })),
        1 => (pick(ZONES), any::<bool>()).prop_map(|(zone, slack)| Command::UpsertSink(AlertSink {
            name: format!("{zone}-team"),
            target: if slack {
                SinkTarget::Slack { webhook_url: Secret(format!("https://hooks.example/{zone}")) }
            } else {
                SinkTarget::Syslog { address: "siem.example:6514".into(), tls: true, ca_pem: None }
            },
            min_severity: Severity::Warning,
            zones: vec![zone],
            apps: vec![],
            classes: vec![],
            max_per_minute: None,
            audit: false,
        })),
        1 => (mode(), 5u32..40).prop_map(|(unmanaged_mode, alert_retention)| Command::SetSettings(Settings { unmanaged_mode, alert_retention, ..Settings::default() })),
        2 => (1u64..4, proptest::collection::vec((0u8..3, 1u64..5, any::<bool>()), 1..6))
            .prop_map(|(node, alerts)| Command::RaiseAlerts { alerts: alerts.into_iter().map(|(kind, count, repeat)| NewAlert {
                // A repeated id stands for a retried write.
                id: AlertId(if repeat { format!("n{node}-{kind}") } else { format!("n{node}-{kind}-{count}") }),
                kind: [AlertKind::PolicyViolation, AlertKind::NodeDown, AlertKind::SinkFailing][usize::from(kind)],
                severity: Severity::Warning,
                class: AlertClass::FirstSeen,
                node: NodeId(node),
                subject_node: (kind == 1).then_some(NodeId(1)),
                sink: (kind == 2).then(|| "prod-team".to_owned()),
                workload: None,
                flow: None,
                count,
                first_seen_ms: count,
                last_seen_ms: count * 2,
                summary: "seen".into(),
                change: None,
            }).collect() }),
        1 => (pick(ZONES), 0u64..20).prop_map(|(zone, through)| Command::AckDelivery { sink: format!("{zone}-team"), through, at_ms: through }),
        2 => (1u64..4, proptest::collection::vec((edge_key(), 0u64..3, 0u64..50, 0u64..50), 1..5))
            .prop_map(|(node, edges)| Command::LearnEdges {
                node: NodeId(node),
                // No connection, or a first after a last, exercise refusals.
                edges: edges.into_iter().map(|(key, connections, first_ms, last_ms)| ObservedEdge {
                    key, connections, first_ms, last_ms,
                }).collect(),
            }),
        1 => (proptest::collection::vec(edge_key(), 1..3), 0u8..3, 0u64..100).prop_map(|(links, choice, at_ms)| {
            let decision = [LinkChoice::Accept, LinkChoice::Snooze, LinkChoice::Deny][usize::from(choice)];
            Command::DecideLinks { links, decision, at_ms }
        }),
    ]
}

/// A history that usually builds a populated cluster — zones first, then
/// identities, then anything — so later commands find names to refer to.
fn commands() -> impl Strategy<Value = Vec<Command>> {
    let zones = proptest::collection::vec((pick(ZONES), mode()), 0..4).prop_map(|zones| {
        zones
            .into_iter()
            .map(|(name, mode)| Command::UpsertZone {
                id: None,
                name,
                mode,
                description: String::new(),
            })
            .collect::<Vec<_>>()
    });
    let identities = proptest::collection::vec(identity_name(), 0..10).prop_map(|names| {
        names
            .into_iter()
            .map(|name| Command::DefineIdentity { id: None, name })
            .collect::<Vec<_>>()
    });
    (
        zones,
        identities,
        proptest::collection::vec(command(), 0..60),
    )
        .prop_map(|(zones, identities, rest)| {
            zones.into_iter().chain(identities).chain(rest).collect()
        })
}

/// Applies each command in turn, keeping what is valid.
fn build(commands: &[Command]) -> ClusterState {
    let mut state = ClusterState::new();
    for command in commands {
        let _ = command.apply(&mut state);
    }
    state
}

fn bytes(state: &ClusterState) -> Vec<u8> {
    serde_json::to_vec(state).expect("a cluster state always serializes")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn apply_is_deterministic(commands in commands()) {
        let (mut a, mut b) = (ClusterState::new(), ClusterState::new());
        for command in &commands {
            let (ra, rb) = (command.apply(&mut a), command.apply(&mut b));
            prop_assert_eq!(ra, rb);
        }
        prop_assert_eq!(bytes(&a), bytes(&b));
        // The same commands as one batch give the same state when all are valid.
        let mut batched = ClusterState::new();
        if Command::batch(commands.clone()).apply(&mut batched).is_ok() {
            prop_assert_eq!(bytes(&batched), bytes(&a));
        }
    }

    #[test]
    fn commands_round_trip_through_json(commands in commands()) {
        // The Raft log stores commands as JSON: every command must come back.
        let command = Command::batch(commands);
        let json = serde_json::to_string(&command).expect("every command serializes");
        let back: Command = serde_json::from_str(&json).expect("every command deserializes");
        prop_assert_eq!(back, command);
    }

    #[test]
    fn refused_commands_change_nothing(commands in commands(), probe in command()) {
        let mut state = build(&commands);
        let before = bytes(&state);
        if probe.apply(&mut state).is_err() {
            prop_assert_eq!(bytes(&state), before);
        }
    }

    #[test]
    fn export_import_round_trips(commands in commands()) {
        let state = build(&commands);
        let exported = PolicyDocument::export(&state, Secrets::Reveal);
        let text = exported.to_toml().expect("an exported policy writes as TOML");
        let parsed = PolicyDocument::parse(&text).expect("an exported policy reads back");
        prop_assert_eq!(&parsed, &exported);

        // Into the same cluster: nothing to do.
        prop_assert_eq!(parsed.import(&state).expect("valid"), Command::batch(vec![]));

        // Into a new cluster: the same policy, with the same numbers.
        let mut fresh = ClusterState::new();
        parsed.import(&fresh).expect("an exported policy is valid").apply(&mut fresh).expect("applies");
        prop_assert_eq!(PolicyDocument::export(&fresh, Secrets::Reveal), exported);
    }

    #[test]
    fn importing_another_policy_reaches_it(a in commands(), b in commands()) {
        let (mut state, target) = (build(&a), build(&b));
        let doc = PolicyDocument::export(&target, Secrets::Reveal);
        // Endpoints of `state` may still need what `doc` drops; then the whole
        // import is refused and nothing changes.
        let before = bytes(&state);
        match doc.import(&state) {
            Ok(batch) => {
                batch.apply(&mut state).expect("a validated import applies");
                prop_assert_eq!(PolicyDocument::export(&state, Secrets::Reveal), doc);
            }
            Err(e) => {
                prop_assert!(!e.field.is_empty() && !e.reason.is_empty());
                prop_assert_eq!(bytes(&state), before);
            }
        }
    }

    #[test]
    fn compile_never_allows_a_cross_zone_flow_no_rule_names(
        commands in commands(),
        ports in proptest::collection::vec(any::<u16>(), 4),
    ) {
        let mut state = build(&commands);
        Command::UpsertNode(node(1)).apply(&mut state).expect("node 1 fits the universe");
        let dataplane = compile(&state, NodeId(1), &LocalWorkloads::default()).expect("node 1 exists");

        // Every identity, and in every zone a workload without a verified identity.
        let mut subjects: Vec<(Subject, Option<IdentityName>)> = state.identities.values().map(|i| {
            (Subject { identity: i.id, zone: state.zones.get(&i.name.zone).map(|z| z.id) }, Some(i.name.clone()))
        }).collect();
        subjects.extend(state.zones.values().map(|z| {
            (Subject { identity: IdentityId::UNKNOWN, zone: Some(z.id) }, None)
        }));
        let probe_ports: Vec<u16> = ports.into_iter().chain([0, 22, 443, 5432, 7400, u16::MAX]).collect();

        for (src, src_name) in &subjects {
            for (dst, dst_name) in &subjects {
                if src.zone == dst.zone {
                    continue;
                }
                for protocol in [L4Protocol::Tcp, L4Protocol::Udp] {
                    for &port in &probe_ports {
                        for direction in [Direction::Egress, Direction::Ingress] {
                            let flow = FlowQuery { src: *src, dst: *dst, protocol, port, direction };
                            let decision = dataplane.decide(&flow);
                            if decision.action != Action::Allow {
                                continue;
                            }
                            let RuleRef::Rule(id) = decision.rule else {
                                return Err(TestCaseError::fail(format!("{flow:?} allowed by {}", decision.rule)));
                            };
                            let rule = &state.rules[&id];
                            let names = |peer: &Peer, name: &Option<IdentityName>| match (peer, name) {
                                (Peer::App(sel), Some(name)) => sel.matches(name),
                                _ => false,
                            };
                            prop_assert!(
                                names(&rule.spec.from, src_name) && names(&rule.spec.to, dst_name),
                                "rule {} does not name both sides of {:?}", id.0, flow
                            );
                            prop_assert_eq!(rule.spec.action, Action::Allow);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn compile_is_deterministic(commands in commands()) {
        let mut state = build(&commands);
        Command::UpsertNode(node(1)).apply(&mut state).expect("node 1 fits the universe");
        let a = compile(&state, NodeId(1), &LocalWorkloads::default()).expect("compiles");
        let b = compile(&state.clone(), NodeId(1), &LocalWorkloads::default()).expect("compiles");
        prop_assert_eq!(a, b);
    }
}

/// A state every validation property starts from: zone `prod` with
/// `prod/web/main` and `prod/db/main`, and node 1.
fn base() -> ClusterState {
    let mut state = ClusterState::new();
    Command::batch(vec![
        Command::UpsertZone {
            id: None,
            name: "prod".into(),
            mode: Mode::Enforce,
            description: String::new(),
        },
        Command::DefineIdentity {
            id: None,
            name: IdentityName {
                zone: "prod".into(),
                app: "web".into(),
                service: "main".into(),
            },
        },
        Command::DefineIdentity {
            id: None,
            name: IdentityName {
                zone: "prod".into(),
                app: "db".into(),
                service: "main".into(),
            },
        },
        Command::UpsertNode(node(1)),
    ])
    .apply(&mut state)
    .expect("base commands are valid");
    state
}

fn web_to(to: Peer, ports: Vec<PortRange>, action: Action) -> Command {
    Command::UpsertRule {
        id: None,
        spec: RuleSpec {
            from: Peer::App(AppSelector {
                zone: "prod".into(),
                app: Some("web".into()),
                service: None,
            }),
            to,
            protocol: Protocol::Any,
            ports,
            action,
            encrypt: false,
            owner: String::new(),
            description: String::new(),
        },
    }
}

/// Expects `command` refused on `field` with a reason containing `part`,
/// leaving the state as it was.
fn assert_refused(command: Command, field: &str, part: &str) -> Result<(), TestCaseError> {
    let mut state = base();
    let before = bytes(&state);
    let err = command
        .apply(&mut state)
        .expect_err("malformed input must be refused");
    prop_assert_eq!(&err.field, field, "{}", err);
    prop_assert!(err.reason.contains(part), "`{}` lacks `{}`", err, part);
    prop_assert_eq!(bytes(&state), before);
    Ok(())
}

proptest! {
    #[test]
    fn bad_names_are_refused_by_field(name in prop_oneof![
        "[A-Z][a-z]{0,8}",
        "[a-z]{1,5}[/ :@][a-z]{1,5}",
        "-[a-z]{1,5}",
        "[a-z]{64,70}",
        Just(String::new()),
    ]) {
        assert_refused(
            Command::UpsertZone { id: None, name, mode: Mode::Learn, description: String::new() },
            "name",
            "",
        )?;
    }

    #[test]
    fn unknown_zones_are_refused_by_field(zone in "[a-z]{3,10}".prop_filter("not the base zone", |z| z != "prod")) {
        assert_refused(
            web_to(Peer::App(AppSelector { zone: zone.clone(), app: None, service: None }), vec![], Action::Allow),
            "to.zone",
            &format!("unknown zone `{zone}`"),
        )?;
    }

    #[test]
    fn overlapping_port_ranges_are_refused_by_field(first in 1u16..60000, len in 0u16..500, inside in 0u16..500) {
        let outer = PortRange { first, last: first.saturating_add(len) };
        let at = first.saturating_add(inside.min(len));
        let ports = vec![outer, PortRange::single(at)];
        let to = Peer::App(AppSelector { zone: "prod".into(), app: Some("db".into()), service: None });
        assert_refused(web_to(to, ports, Action::Allow), "ports[1]", "overlaps ports[0]")?;
    }

    #[test]
    fn identity_id_reuse_is_refused_by_field(app in "[a-z]{3,8}".prop_filter("new app", |a| a != "web" && a != "db")) {
        let taken = base().identities.keys().next().copied().expect("base has identities");
        assert_refused(
            Command::DefineIdentity { id: Some(taken), name: IdentityName { zone: "prod".into(), app, service: "main".into() } },
            "id",
            "already used",
        )?;
    }

    #[test]
    fn cidrs_with_host_bits_are_refused_by_field(addr in any::<u32>(), len in 0u8..32) {
        let net = IpNet::V4(Ipv4Net::new(Ipv4Addr::from(addr), len).expect("len < 32"));
        prop_assume!(net.trunc() != net);
        assert_refused(web_to(Peer::Cidr(net), vec![PortRange::single(22)], Action::Allow), "to.cidr", "host bits")?;
    }

    #[test]
    fn unparsable_cidrs_are_refused_naming_the_field(text in prop_oneof![
        "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}/(3[3-9]|[4-9][0-9])",
        "[a-z]{1,10}",
        "[0-9]{3,4}\\.[0-9]{3,4}\\.0\\.0/8",
    ]) {
        prop_assume!(text.parse::<IpNet>().is_err());
        let doc = format!(
            "[[zone]]\nname = \"prod\"\nmode = \"enforce\"\n\n[[rule]]\nfrom = {{ zone = \"prod\" }}\nto = {{ cidr = \"{text}\" }}\nprotocol = \"tcp\"\naction = \"allow\"\n"
        );
        let err = PolicyDocument::parse(&doc).expect_err("bad cidr").to_string();
        prop_assert!(err.contains(&format!("cidr `{text}`")), "{}", err);
    }

    #[test]
    fn rules_that_would_cut_cluster_traffic_are_refused_by_field(len in 0u8..=32, spread in 0u16..100) {
        let net = IpNet::V4(Ipv4Net::new(Ipv4Addr::new(10, 0, 0, 1), len).expect("len <= 32")).trunc();
        let ports = vec![PortRange { first: 7400 - spread, last: 7400 + spread }];
        assert_refused(web_to(Peer::Cidr(net), ports, Action::Deny), "to.cidr", "cut the cluster's own traffic")?;
    }
}
