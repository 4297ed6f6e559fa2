//! Learning edges, proposing rules from them and deciding their links.

use std::net::IpAddr;

use super::*;
use crate::fixtures::{allow, define, name, node, sample};
use crate::{Action, Applied, Command, Peer, PortRange, Protocol, Settings};

/// The sample cluster with more of `dev` (which learns): `dev/db/main`,
/// `dev/api/main`, and a second node.
fn learning() -> ClusterState {
    let mut state = sample();
    Command::batch(vec![
        define("dev", "db", "main"),
        define("dev", "api", "main"),
        Command::UpsertNode(node(2, "10.0.0.2:7400")),
    ])
    .apply(&mut state)
    .expect("fixture commands are valid");
    state
}

fn dev(app: &str) -> IdentityName {
    name("dev", app, "main")
}

fn key(from: IdentityName, to: EdgeTarget, protocol: L4Protocol, port: u16) -> EdgeKey {
    EdgeKey {
        from,
        to,
        protocol,
        port,
    }
}

fn tcp(from: &str, to: &str, port: u16) -> EdgeKey {
    key(
        dev(from),
        EdgeTarget::Identity(dev(to)),
        L4Protocol::Tcp,
        port,
    )
}

fn address(ip: &str) -> EdgeTarget {
    EdgeTarget::Address(ip.parse::<IpAddr>().expect("test address"))
}

fn seen(key: EdgeKey, connections: u64, first_ms: u64, last_ms: u64) -> ObservedEdge {
    ObservedEdge {
        key,
        connections,
        first_ms,
        last_ms,
    }
}

fn learn(state: &mut ClusterState, node: u64, edges: Vec<ObservedEdge>) {
    Command::LearnEdges {
        node: NodeId(node),
        edges,
    }
    .apply(state)
    .expect("valid edges");
}

fn decide(state: &mut ClusterState, links: Vec<EdgeKey>, decision: LinkChoice) -> Applied {
    Command::DecideLinks {
        links,
        decision,
        at_ms: 1_000,
    }
    .apply(state)
    .expect("valid decision")
}

fn refused(state: &ClusterState, command: Command, field: &str, reason_part: &str) {
    let mut copy = state.clone();
    let err = command.apply(&mut copy).expect_err("must be refused");
    assert_eq!(err.field, field, "wrong field in: {err}");
    assert!(
        err.reason.contains(reason_part),
        "`{err}` lacks `{reason_part}`"
    );
    assert_eq!(copy, *state, "a refused command changed the state");
}

fn proposal(state: &ClusterState) -> Proposal {
    propose(state, "dev", false).expect("dev exists")
}

#[test]
fn learned_edges_merge_counts_times_and_nodes() {
    let mut state = learning();
    let edge = tcp("web", "db", 5432);
    learn(&mut state, 1, vec![seen(edge.clone(), 3, 100, 200)]);
    learn(&mut state, 2, vec![seen(edge.clone(), u64::MAX, 50, 150)]);
    learn(&mut state, 1, vec![seen(edge.clone(), 1, 120, 300)]);
    let merged = &state.baseline.edges[&edge];
    assert_eq!(merged.connections, u64::MAX, "connections saturate");
    assert_eq!((merged.first_ms, merged.last_ms), (50, 300));
    assert_eq!(merged.nodes, BTreeSet::from([NodeId(1), NodeId(2)]));
}

#[test]
fn only_edges_touching_a_learning_zone_of_defined_identities_are_kept() {
    let mut state = learning();
    let prod_only = key(
        name("prod", "web", "main"),
        EdgeTarget::Identity(name("prod", "db", "main")),
        L4Protocol::Tcp,
        5432,
    );
    let dev_to_prod = key(
        dev("web"),
        EdgeTarget::Identity(name("prod", "db", "main")),
        L4Protocol::Tcp,
        5432,
    );
    let prod_to_dev = key(
        name("prod", "web", "main"),
        EdgeTarget::Identity(dev("db")),
        L4Protocol::Tcp,
        5432,
    );
    let unknown = tcp("ghost", "db", 80);
    let outside = key(dev("web"), address("192.0.2.1"), L4Protocol::Udp, 53);
    let edges = [&prod_only, &dev_to_prod, &prod_to_dev, &unknown, &outside];
    learn(
        &mut state,
        1,
        edges.iter().map(|k| seen((*k).clone(), 1, 1, 1)).collect(),
    );
    let kept: Vec<&EdgeKey> = state.baseline.edges.keys().collect();
    let mut expected = vec![&dev_to_prod, &prod_to_dev, &outside];
    expected.sort();
    assert_eq!(kept, expected);
}

#[test]
fn a_full_baseline_counts_what_it_drops() {
    let mut state = learning();
    let settings = Settings {
        baseline_max_edges: 100,
        ..Settings::default()
    };
    Command::SetSettings(settings)
        .apply(&mut state)
        .expect("valid settings");
    let edges = (0..150)
        .map(|port| seen(tcp("web", "db", port), 1, 1, 1))
        .collect();
    learn(&mut state, 1, edges);
    assert_eq!(state.baseline.edges.len(), 100);
    assert_eq!(state.baseline.dropped_edges, 50);
    // Edges already held still merge.
    learn(&mut state, 2, vec![seen(tcp("web", "db", 0), 1, 1, 9)]);
    assert_eq!(state.baseline.edges[&tcp("web", "db", 0)].last_ms, 9);
    assert_eq!(state.baseline.dropped_edges, 50);
}

#[test]
fn only_accepting_links_changes_the_policy_revision() {
    let mut state = learning();
    let revision = state.policy_revision;
    let edges = (1..4)
        .map(|port| seen(tcp("web", "db", port), 1, 1, 1))
        .collect();
    learn(&mut state, 1, edges);
    decide(&mut state, vec![tcp("web", "db", 1)], LinkChoice::Snooze);
    decide(&mut state, vec![tcp("web", "db", 2)], LinkChoice::Deny);
    assert_eq!(state.policy_revision, revision);
    decide(&mut state, vec![tcp("web", "db", 3)], LinkChoice::Accept);
    assert_eq!(state.policy_revision, revision + 1);
}

#[test]
fn malformed_edges_and_decisions_are_refused_by_field() {
    let mut state = learning();
    let learn_cmd = |node: u64, edges: Vec<ObservedEdge>| Command::LearnEdges {
        node: NodeId(node),
        edges,
    };
    let ok = seen(tcp("web", "db", 80), 1, 1, 2);
    refused(&state, learn_cmd(9, vec![ok.clone()]), "node", "no node 9");
    refused(&state, learn_cmd(1, vec![]), "edges", "no edge");
    let many = vec![ok.clone(); MAX_EDGES_PER_COMMAND + 1];
    refused(&state, learn_cmd(1, many), "edges", "at most 10000");
    let none = seen(tcp("web", "db", 80), 0, 1, 2);
    refused(
        &state,
        learn_cmd(1, vec![none]),
        "edges[0].connections",
        "at least one",
    );
    let backwards = seen(tcp("web", "db", 80), 1, 5, 2);
    refused(
        &state,
        learn_cmd(1, vec![ok.clone(), backwards]),
        "edges[1].first_ms",
        "after last",
    );
    let nowhere = seen(
        key(dev("web"), address("0.0.0.0"), L4Protocol::Tcp, 80),
        1,
        1,
        1,
    );
    refused(
        &state,
        learn_cmd(1, vec![nowhere]),
        "edges[0].key.to",
        "0.0.0.0",
    );

    learn(&mut state, 1, vec![ok.clone()]);
    let decide_cmd = |links: Vec<EdgeKey>| Command::DecideLinks {
        links,
        decision: LinkChoice::Accept,
        at_ms: 5,
    };
    refused(&state, decide_cmd(vec![]), "links", "no link");
    refused(
        &state,
        decide_cmd(vec![ok.key.clone(), tcp("web", "db", 81)]),
        "links[1]",
        "dev/web/main -> dev/db/main tcp/81 is not in the baseline",
    );
    let settings = Settings {
        baseline_max_edges: 99,
        ..Settings::default()
    };
    refused(
        &state,
        Command::SetSettings(settings),
        "baseline_max_edges",
        "100..=1000000",
    );
}

#[test]
fn a_proposal_groups_links_by_caller_target_and_protocol() {
    let mut state = learning();
    let edges = vec![
        seen(tcp("web", "db", 5433), 2, 10, 20),
        seen(tcp("web", "db", 5432), 5, 10, 30),
        seen(
            key(
                dev("web"),
                EdgeTarget::Identity(dev("db")),
                L4Protocol::Udp,
                53,
            ),
            1,
            1,
            1,
        ),
        seen(
            key(dev("api"), address("192.0.2.7"), L4Protocol::Tcp, 443),
            1,
            1,
            1,
        ),
    ];
    learn(&mut state, 1, edges);
    let p = proposal(&state);
    assert_eq!(p.rules.len(), 3, "{:#?}", p.rules);
    let api = &p.rules[0];
    assert_eq!(
        api.spec.to,
        Peer::Cidr("192.0.2.7/32".parse().expect("net"))
    );
    let db_tcp = &p.rules[1];
    assert_eq!(db_tcp.ports, [5432, 5433]);
    assert_eq!(db_tcp.links.len(), 2);
    assert_eq!(db_tcp.links[0].connections, 5);
    assert_eq!(
        db_tcp.spec.ports,
        [PortRange::single(5432), PortRange::single(5433)]
    );
    assert_eq!(db_tcp.spec.protocol, Protocol::Tcp);
    assert_eq!(db_tcp.spec.action, Action::Allow);
    assert_eq!(db_tcp.spec.owner, LEARNED_RULE_OWNER);
    assert!(db_tcp.spec.description.contains("learned"));
    assert_eq!(p.rules[2].spec.protocol, Protocol::Udp);
    // The diff shows exactly the added rules.
    assert_eq!(p.diff.entries.len(), 3, "{}", p.diff);
    assert!(p
        .diff
        .entries
        .iter()
        .all(|e| e.section == "rule" && matches!(e.change, crate::Change::Added { .. })));
    let err = propose(&state, "qa", false).expect_err("unknown zone");
    assert_eq!(err.field, "zone");
}

#[test]
fn edges_current_rules_decide_are_not_proposed() {
    let mut state = learning();
    let dev_app = |app: &str| crate::fixtures::app("dev", app);
    let mut deny = allow(dev_app("web"), dev_app("db"), &["22"]);
    deny.action = Action::Deny;
    for spec in [allow(dev_app("web"), dev_app("db"), &["5432"]), deny] {
        Command::UpsertRule { id: None, spec }
            .apply(&mut state)
            .expect("valid rule");
    }
    let edges = [5432, 22, 80].map(|port| seen(tcp("web", "db", port), 1, 1, 1));
    learn(&mut state, 1, edges.to_vec());
    let p = proposal(&state);
    assert_eq!(p.covered, [tcp("web", "db", 5432)]);
    assert_eq!(p.refused, [tcp("web", "db", 22)]);
    assert_eq!(p.rules.len(), 1);
    assert_eq!(p.rules[0].ports, [80]);
}

#[test]
fn a_snoozed_link_comes_back_when_seen_again() {
    let mut state = learning();
    learn(&mut state, 1, vec![seen(tcp("web", "db", 80), 1, 100, 200)]);
    decide(&mut state, vec![tcp("web", "db", 80)], LinkChoice::Snooze);
    assert!(proposal(&state).rules.is_empty());
    let shown = propose(&state, "dev", true).expect("dev exists");
    assert!(shown.rules[0].links[0].snoozed);
    // Seen again, but from before the snooze (a late report): still hidden.
    learn(&mut state, 2, vec![seen(tcp("web", "db", 80), 1, 300, 900)]);
    assert!(proposal(&state).rules.is_empty());
    learn(
        &mut state,
        2,
        vec![seen(tcp("web", "db", 80), 1, 1_500, 1_600)],
    );
    let back = proposal(&state);
    assert_eq!(back.rules.len(), 1);
    assert!(!back.rules[0].links[0].snoozed);
}

#[test]
fn a_denied_link_never_comes_back() {
    let mut state = learning();
    learn(&mut state, 1, vec![seen(tcp("web", "db", 80), 1, 100, 200)]);
    decide(&mut state, vec![tcp("web", "db", 80)], LinkChoice::Deny);
    learn(
        &mut state,
        1,
        vec![seen(tcp("web", "db", 80), 1, 5_000, 6_000)],
    );
    assert!(proposal(&state).rules.is_empty());
    assert!(propose(&state, "dev", true).expect("dev").rules.is_empty());
    assert_eq!(
        state.baseline.decisions[&tcp("web", "db", 80)],
        LinkDecision::Denied { at_ms: 1_000 }
    );
}

#[test]
fn accepting_creates_the_proposed_rules_and_empties_the_proposal() {
    let mut state = learning();
    let edges = [80, 443].map(|port| seen(tcp("web", "db", port), 1, 1, 1));
    learn(&mut state, 1, edges.to_vec());
    decide(&mut state, vec![tcp("web", "db", 443)], LinkChoice::Snooze);
    let p = propose(&state, "dev", true).expect("dev exists");
    let links: Vec<EdgeKey> = p
        .rules
        .iter()
        .flat_map(|r| &r.links)
        .map(|l| l.key.clone())
        .collect();
    let Applied::Rules(created) = decide(&mut state, links.clone(), LinkChoice::Accept) else {
        panic!("accepting reports the rules it created")
    };
    assert_eq!(created.len(), 1);
    assert_eq!(state.rules[&created[0]].spec, p.rules[0].spec);
    assert!(
        state.baseline.decisions.is_empty(),
        "acceptance clears the snooze"
    );
    let after = propose(&state, "dev", true).expect("dev exists");
    assert!(after.rules.is_empty(), "{:#?}", after.rules);
    assert_eq!(after.covered, links);
    // Accepting again creates nothing new.
    assert_eq!(
        decide(&mut state, links, LinkChoice::Accept),
        Applied::Rules(vec![])
    );
}

#[test]
fn removing_an_identity_forgets_its_edges_instead_of_being_blocked() {
    let mut state = learning();
    let edges = vec![
        seen(tcp("web", "api", 80), 1, 1, 1),
        seen(tcp("api", "db", 5432), 1, 1, 1),
        seen(tcp("web", "db", 5432), 1, 1, 1),
    ];
    learn(&mut state, 1, edges);
    decide(&mut state, vec![tcp("api", "db", 5432)], LinkChoice::Deny);
    Command::RemoveIdentity { name: dev("api") }
        .apply(&mut state)
        .expect("the baseline does not hold a removal back");
    let kept: Vec<&EdgeKey> = state.baseline.edges.keys().collect();
    assert_eq!(kept, [&tcp("web", "db", 5432)]);
    assert!(state.baseline.decisions.is_empty());
    // The zone goes once its identities have, edges or not.
    learn(
        &mut state,
        1,
        vec![seen(
            key(dev("db"), address("192.0.2.1"), L4Protocol::Tcp, 1),
            1,
            1,
            1,
        )],
    );
    Command::batch(vec![
        Command::RemoveIdentity { name: dev("web") },
        Command::RemoveIdentity { name: dev("db") },
        Command::RemoveZone { name: "dev".into() },
    ])
    .apply(&mut state)
    .expect("dev can go");
    assert!(state.baseline.edges.is_empty());
}

#[test]
fn a_flow_deviates_when_its_zone_has_a_baseline_without_it() {
    let mut state = learning();
    let known = tcp("web", "db", 5432);
    learn(&mut state, 1, vec![seen(known.clone(), 1, 1, 1)]);
    let baseline = &state.baseline;
    assert!(!baseline.deviates(&known));
    assert!(baseline.deviates(&tcp("web", "db", 22)));
    assert!(
        baseline.deviates(&tcp("api", "web", 80)),
        "the caller's zone learned"
    );
    let prod = |app: &str| name("prod", app, "main");
    let into_dev = key(
        prod("web"),
        EdgeTarget::Identity(dev("db")),
        L4Protocol::Tcp,
        1,
    );
    assert!(baseline.deviates(&into_dev), "the target's zone learned");
    let within_prod = key(
        prod("web"),
        EdgeTarget::Identity(prod("db")),
        L4Protocol::Tcp,
        1,
    );
    assert!(!baseline.deviates(&within_prod), "prod never learned");
}

#[test]
fn a_state_with_a_baseline_round_trips_through_json_and_old_snapshots_load() {
    let mut state = learning();
    let edges = vec![
        seen(tcp("web", "db", 5432), 4, 1, 9),
        seen(
            key(dev("web"), address("2001:db8::1"), L4Protocol::Udp, 53),
            1,
            2,
            3,
        ),
    ];
    learn(&mut state, 1, edges);
    decide(&mut state, vec![tcp("web", "db", 5432)], LinkChoice::Snooze);
    let json = serde_json::to_string(&state).expect("serializes");
    let back: ClusterState = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(back, state);

    let mut old = serde_json::to_value(sample()).expect("serializes");
    let fields = old.as_object_mut().expect("an object");
    fields.remove("baseline");
    fields["settings"]
        .as_object_mut()
        .expect("an object")
        .remove("baseline_max_edges");
    let loaded: ClusterState = serde_json::from_value(old).expect("an old snapshot loads");
    assert_eq!(loaded, sample());
}
