//! Property tests of baseline proposals: a proposed rule never allows more
//! than was observed, accepting every proposal makes the compiled dataplane
//! allow every learned flow no person refused, and nothing is left to
//! propose afterwards.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use proptest::prelude::*;
use stockade_policy::{
    compile, propose, Action, AppSelector, ClusterState, Command, Direction, EdgeKey, EdgeTarget,
    FlowQuery, IdentityName, L4Protocol, LinkChoice, LinkDecision, LocalWorkloads, Mode,
    ObservedEdge, Peer, PortRange, Protocol, RuleSpec, Subject,
};
use stockade_policy::{Node, NodeId};

const ZONES: &[&str] = &["dev", "prod"];
const APPS: &[&str] = &["web", "db", "api"];
const SERVICES: &[&str] = &["main", "worker"];
/// Addresses outside the cluster that flows go to: inside and outside the
/// prefixes rules name, none of them a node's.
const ADDRESSES: &[&str] = &[
    "10.1.2.3",
    "10.9.9.9",
    "192.168.7.9",
    "203.0.113.5",
    "2001:db8::5",
];
const CIDRS: &[&str] = &[
    "10.0.0.0/8",
    "10.1.0.0/16",
    "192.168.7.0/24",
    "2001:db8::/32",
];
const PORTS: &[u16] = &[22, 53, 80, 443, 5432, 8080];

fn identity(i: usize) -> IdentityName {
    let (zone, rest) = (i % ZONES.len(), i / ZONES.len());
    IdentityName {
        zone: ZONES[zone].into(),
        app: APPS[rest % APPS.len()].into(),
        service: SERVICES[(rest / APPS.len()) % SERVICES.len()].into(),
    }
}

const IDENTITIES: usize = 12;

fn target() -> impl Strategy<Value = EdgeTarget> {
    prop_oneof![
        3 => (0..IDENTITIES).prop_map(|i| EdgeTarget::Identity(identity(i))),
        1 => proptest::sample::select(ADDRESSES)
            .prop_map(|a| EdgeTarget::Address(a.parse().expect("universe addresses are valid"))),
    ]
}

fn protocol() -> impl Strategy<Value = L4Protocol> {
    prop_oneof![Just(L4Protocol::Tcp), Just(L4Protocol::Udp)]
}

fn observed() -> impl Strategy<Value = ObservedEdge> {
    (
        0..IDENTITIES,
        target(),
        protocol(),
        proptest::sample::select(PORTS),
        1u64..5,
        0u64..100,
        0u64..100,
    )
        .prop_map(
            |(from, to, protocol, port, connections, first_ms, span)| ObservedEdge {
                key: EdgeKey {
                    from: identity(from),
                    to,
                    protocol,
                    port,
                },
                connections,
                first_ms,
                last_ms: first_ms + span,
            },
        )
}

fn peer() -> impl Strategy<Value = Peer> {
    let pick =
        |names: &'static [&'static str]| proptest::sample::select(names).prop_map(String::from);
    prop_oneof![
        3 => (pick(ZONES), proptest::option::of(pick(APPS)), proptest::option::of(pick(SERVICES)))
            .prop_map(|(zone, app, service)| Peer::App(AppSelector {
                service: app.as_ref().and(service),
                zone,
                app,
            })),
        1 => proptest::sample::select(CIDRS)
            .prop_map(|c| Peer::Cidr(c.parse().expect("universe CIDRs are valid"))),
    ]
}

fn rule() -> impl Strategy<Value = RuleSpec> {
    let ports = prop_oneof![
        proptest::sample::select(PORTS).prop_map(PortRange::single),
        (0u16..9000, 0u16..3000).prop_map(|(first, len)| PortRange {
            first,
            last: first.saturating_add(len),
        }),
    ];
    (
        peer(),
        peer(),
        prop_oneof![
            Just(Protocol::Tcp),
            Just(Protocol::Udp),
            Just(Protocol::Any)
        ],
        proptest::collection::vec(ports, 0..2),
        prop_oneof![2 => Just(Action::Allow), 1 => Just(Action::Deny)],
    )
        .prop_map(|(from, to, protocol, ports, action)| RuleSpec {
            from,
            to,
            protocol,
            ports,
            action,
            encrypt: false,
            owner: "team".into(),
            description: String::new(),
        })
}

/// Which zones learn, what nodes saw, then which links were snoozed or
/// denied (by index into the learned edges) and which rules people wrote.
#[derive(Debug, Clone)]
struct History {
    learning: Vec<bool>,
    edges: Vec<ObservedEdge>,
    decisions: Vec<(usize, bool, u64)>,
    rules: Vec<RuleSpec>,
}

fn history() -> impl Strategy<Value = History> {
    (
        proptest::collection::vec(proptest::bool::weighted(0.8), ZONES.len()),
        proptest::collection::vec(observed(), 1..40),
        proptest::collection::vec((any::<usize>(), any::<bool>(), 0u64..200), 0..6),
        proptest::collection::vec(rule(), 0..6),
    )
        .prop_map(|(learning, edges, decisions, rules)| History {
            learning,
            edges,
            decisions,
            rules,
        })
}

fn apply(state: &mut ClusterState, command: Command) {
    command
        .apply(state)
        .expect("the universe's commands are valid");
}

fn set_modes(state: &mut ClusterState, mode: impl Fn(usize) -> Mode) {
    for (i, zone) in ZONES.iter().enumerate() {
        apply(
            state,
            Command::UpsertZone {
                id: None,
                name: (*zone).into(),
                mode: mode(i),
                description: String::new(),
            },
        );
    }
}

fn build(history: &History) -> ClusterState {
    let mut state = ClusterState::new();
    set_modes(&mut state, |i| match history.learning[i] {
        true => Mode::Learn,
        false => Mode::Alert,
    });
    for i in 0..IDENTITIES {
        apply(
            &mut state,
            Command::DefineIdentity {
                id: None,
                name: identity(i),
            },
        );
    }
    apply(
        &mut state,
        Command::UpsertNode(Node {
            id: NodeId(1),
            name: "node-1".into(),
            address: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 7400),
            labels: Default::default(),
        }),
    );
    for chunk in history.edges.chunks(7) {
        apply(
            &mut state,
            Command::LearnEdges {
                node: NodeId(1),
                edges: chunk.to_vec(),
            },
        );
    }
    let learned: Vec<EdgeKey> = state.baseline.edges.keys().cloned().collect();
    for &(i, deny, at_ms) in &history.decisions {
        let Some(link) = learned.get(i % learned.len().max(1)) else {
            break;
        };
        let decision = if deny {
            LinkChoice::Deny
        } else {
            LinkChoice::Snooze
        };
        apply(
            &mut state,
            Command::DecideLinks {
                links: vec![link.clone()],
                decision,
                at_ms,
            },
        );
    }
    for spec in &history.rules {
        // Rules the universe makes invalid (two CIDRs) are simply not written.
        let _ = Command::UpsertRule {
            id: None,
            spec: spec.clone(),
        }
        .apply(&mut state);
    }
    state
}

/// The selector naming exactly this identity.
fn exactly(name: &IdentityName) -> Peer {
    Peer::App(AppSelector {
        zone: name.zone.clone(),
        app: Some(name.app.clone()),
        service: Some(name.service.clone()),
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn proposed_rules_allow_only_observed_edges(history in history()) {
        let state = build(&history);
        for zone in ZONES {
            for include_snoozed in [false, true] {
                let proposal = propose(&state, zone, include_snoozed).expect("universe zone");
                for rule in &proposal.rules {
                    let spec = &rule.spec;
                    prop_assert_eq!(&spec.from, &exactly(&rule.from));
                    let to = match &rule.to {
                        EdgeTarget::Identity(name) => exactly(name),
                        EdgeTarget::Address(ip) => Peer::Cidr((*ip).into()),
                    };
                    prop_assert_eq!(&spec.to, &to);
                    prop_assert_eq!(spec.action, Action::Allow);
                    prop_assert!(!spec.ports.is_empty(), "an empty port list means every port");
                    let concrete = spec.protocol.concrete();
                    prop_assert_eq!(concrete, &[rule.protocol][..]);
                    for range in &spec.ports {
                        prop_assert_eq!(range.first, range.last, "a single port");
                        let edge = EdgeKey {
                            from: rule.from.clone(),
                            to: rule.to.clone(),
                            protocol: rule.protocol,
                            port: range.first,
                        };
                        prop_assert!(state.baseline.edges.contains_key(&edge), "{} was never seen", edge);
                        prop_assert!(edge.touches_zone(zone));
                    }
                }
            }
        }
    }

    #[test]
    fn accepting_every_proposal_allows_every_learned_flow_no_one_refused(history in history()) {
        let mut state = build(&history);
        let mut refused = Vec::new();
        for zone in ZONES {
            let proposal = propose(&state, zone, true).expect("universe zone");
            refused.extend(proposal.refused.iter().cloned());
            let links: Vec<EdgeKey> =
                proposal.rules.iter().flat_map(|r| &r.links).map(|l| l.key.clone()).collect();
            if !links.is_empty() {
                apply(&mut state, Command::DecideLinks { links, decision: LinkChoice::Accept, at_ms: 500 });
            }
        }
        for zone in ZONES {
            let after = propose(&state, zone, true).expect("universe zone");
            prop_assert!(after.rules.is_empty(), "still proposed: {:?}", after.rules);
        }

        // Enforcing now, the dataplane allows every learned flow but those a
        // person denied (a decision, or a deny rule).
        set_modes(&mut state, |_| Mode::Enforce);
        let dataplane = compile(&state, NodeId(1), &LocalWorkloads::default()).expect("node 1 exists");
        let subject = |name: &IdentityName| Subject {
            identity: state.identity_by_name(name).expect("defined").id,
            zone: state.zones.get(&name.zone).map(|z| z.id),
        };
        for key in state.baseline.edges.keys() {
            let denied = matches!(state.baseline.decisions.get(key), Some(LinkDecision::Denied { .. }));
            if denied || refused.contains(key) {
                continue;
            }
            let dst = match &key.to {
                EdgeTarget::Identity(name) => subject(name),
                EdgeTarget::Address(ip) => dataplane.lookup_address(*ip, key.port),
            };
            let flow = FlowQuery {
                src: subject(&key.from),
                dst,
                protocol: key.protocol,
                port: key.port,
                direction: Direction::Egress,
            };
            let decision = dataplane.decide(&flow);
            prop_assert_eq!(decision.action, Action::Allow, "{} is denied: {:?}", key, decision);
        }
    }

    #[test]
    fn a_state_with_a_baseline_round_trips_through_json(history in history()) {
        let state = build(&history);
        let json = serde_json::to_string(&state).expect("a cluster state serializes");
        let back: ClusterState = serde_json::from_str(&json).expect("and reads back");
        prop_assert_eq!(back, state);
    }
}
