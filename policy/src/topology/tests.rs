//! The topology of the sample cluster at every level, its de-duplication,
//! and its DOT form.

use std::collections::BTreeSet;

use super::dot::quote;
use super::*;
use crate::flow::sample::{node_source, peer, process, record, sample, workload, API, WEB};

/// The edges as `from -> to proto ports ×n (allowed/denied)` lines.
fn lines(topology: &Topology) -> Vec<String> {
    topology
        .edges
        .iter()
        .map(|e| {
            format!(
                "{} -> {} {:?} {:?} ×{} ({}/{})",
                e.from, e.to, e.protocol, e.ports, e.connections, e.allowed, e.denied
            )
        })
        .collect()
}

fn ids(topology: &Topology) -> Vec<&str> {
    topology.nodes.iter().map(|n| n.id.as_str()).collect()
}

#[test]
fn zone_level_counts_each_connection_once() {
    let t = topology(&sample(), Level::Zone);
    assert_eq!(ids(&t), ["dev", "prod", "unknown:prod", "world:*"]);
    assert_eq!(
        lines(&t),
        [
            "dev -> prod Tcp [5432] ×10 (0/10)",
            // web→api and api→db, each recorded by both nodes, counted once.
            "prod -> prod Tcp [5432, 8080] ×140 (140/0)",
            "prod -> world:* Udp [53] ×10 (10/0)",
            "unknown:prod -> prod Tcp [5432] ×10 (0/10)",
            "world:* -> prod Tcp [8080] ×10 (0/10)",
        ]
    );
    let prod = &t.edges[1];
    assert!(prod.encrypted, "web→api is encrypted");
    assert_eq!(
        prod.rules,
        [
            RuleRef::Rule(crate::RuleId(17)),
            RuleRef::Rule(crate::RuleId(19))
        ],
        "egress-checked ingress records decide nothing new"
    );
    let unknown = &t.nodes[2];
    assert_eq!(
        (unknown.label.as_str(), unknown.kind),
        ("prod/unknown", PeerClass::Unknown)
    );
}

#[test]
fn app_level_names_apps_and_keeps_one_world() {
    let t = topology(&sample(), Level::App);
    assert_eq!(
        ids(&t),
        [
            "dev/tools",
            "prod/api",
            "prod/db",
            "prod/web",
            "unknown:prod",
            "world:*"
        ]
    );
    assert_eq!(
        lines(&t),
        [
            "dev/tools -> prod/db Tcp [5432] ×10 (0/10)",
            "prod/api -> prod/db Tcp [5432] ×40 (40/0)",
            "prod/web -> prod/api Tcp [8080] ×100 (100/0)",
            "prod/web -> world:* Udp [53] ×10 (10/0)",
            "unknown:prod -> prod/db Tcp [5432] ×10 (0/10)",
            "world:* -> prod/api Tcp [8080] ×10 (0/10)",
        ]
    );
    let world = t.nodes.iter().find(|n| n.id == "world:*").expect("world");
    assert_eq!((world.label.as_str(), world.zone.as_ref()), ("world", None));
}

#[test]
fn service_level_splits_the_world_by_address() {
    let t = topology(&sample(), Level::Service);
    assert!(ids(&t).contains(&"world:8.8.8.8"));
    assert!(ids(&t).contains(&"world:203.0.113.9"));
    assert!(lines(&t).contains(&"prod/web/front -> prod/api/main Tcp [8080] ×100 (100/0)".into()));
    let scanner = t.nodes.iter().find(|n| n.id == "world:203.0.113.9");
    assert_eq!(scanner.map(|n| n.label.as_str()), Some("world 203.0.113.9"));
}

#[test]
fn process_level_learns_receivers_from_ingress_records() {
    let t = topology(&sample(), Level::Process);
    let web = "n1:/usr/bin/web:prod/web/front";
    let api = "n2:/usr/bin/api:prod/api/main";
    let db = "n3:/usr/lib/postgresql/bin/postgres:prod/db/postgres";
    assert_eq!(
        lines(&t),
        [
            format!("n1:/usr/bin/psql:dev/tools/psql -> {db} Tcp [5432] ×10 (0/10)"),
            format!("{web} -> {api} Tcp [8080] ×100 (100/0)"),
            format!("{web} -> world:8.8.8.8 Udp [53] ×10 (10/0)"),
            format!("n2:/tmp/miner:unknown -> {db} Tcp [5432] ×10 (0/10)"),
            format!("{api} -> {db} Tcp [5432] ×40 (40/0)"),
            format!("world:203.0.113.9 -> {api} Tcp [8080] ×10 (0/10)"),
        ]
    );
    let labels: Vec<&str> = t.nodes.iter().map(|n| n.label.as_str()).collect();
    assert!(labels.contains(&"/usr/bin/web (prod/web/front) on node 1"));
    assert!(labels.contains(&"/tmp/miner (unknown) on node 2"));
}

#[test]
fn a_bare_node_address_takes_the_receivers_identity_at_process_level() {
    use Direction::{Egress, Ingress};
    let caller = workload("10.0.0.1", 0, "prod/web/front", 1, Some(WEB));
    let bare = peer("10.0.0.2", 9000, PeerClass::Node);
    let received = workload("10.0.0.2", 9000, "prod/api/main", 2, Some(API));
    let records = [
        record(1, Egress, caller, bare),
        record(2, Ingress, node_source(1), received),
    ];
    let t = topology(&records, Level::Process);
    assert_eq!(
        lines(&t),
        ["n1:/usr/bin/web:prod/web/front -> n2:/usr/bin/api:prod/api/main Tcp [9000] ×10 (10/0)"]
    );
    // Coarser levels only use what the egress record itself knew.
    assert_eq!(
        lines(&topology(&records, Level::Service)),
        ["prod/web/front -> node:10.0.0.2 Tcp [9000] ×10 (10/0)"]
    );
}

#[test]
fn loopback_receivers_are_looked_up_on_the_recording_node() {
    use Direction::{Egress, Ingress};
    let on = |node, exe| workload("127.0.0.1", 5432, "prod/db/postgres", node, Some(exe));
    let client = |node| FlowPeer {
        process: Some(process("/usr/bin/psql", 1)),
        ..workload("127.0.0.1", 0, "prod/db/admin", node, None)
    };
    let mut dst = peer("127.0.0.1", 5432, PeerClass::Workload);
    dst.identity = on(1, "x").identity;
    let records = [
        record(1, Egress, client(1), dst.clone()),
        record(1, Ingress, client(1), on(1, "/usr/bin/pg-one")),
        record(2, Ingress, client(2), on(2, "/usr/bin/pg-two")),
    ];
    let t = topology(&records, Level::Process);
    // Loopback to itself: one edge, from the egress record only.
    assert_eq!(
        lines(&t),
        ["n1:/usr/bin/psql:prod/db/admin -> n1:/usr/bin/pg-one:prod/db/postgres Tcp [5432] ×10 (10/0)"]
    );
}

#[test]
fn the_graph_does_not_depend_on_record_order() {
    let records = sample();
    let mut reversed = records.clone();
    reversed.reverse();
    let mut rotated = records.clone();
    rotated.rotate_left(3);
    for level in Level::ALL {
        let t = topology(&records, level);
        assert_eq!(t, topology(&reversed, level), "{level}");
        assert_eq!(t, topology(&rotated, level), "{level}");
        let edge_keys: Vec<_> = t
            .edges
            .iter()
            .map(|e| (&e.from, &e.to, e.protocol))
            .collect();
        let mut sorted = edge_keys.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(edge_keys, sorted, "{level}: edges sorted and distinct");
        assert!(
            ids(&t).windows(2).all(|w| w[0] < w[1]),
            "{level}: vertices sorted"
        );
    }
}

#[test]
fn levels_read_and_write_their_names() {
    for level in Level::ALL {
        assert_eq!(level.to_string().parse::<Level>(), Ok(level));
        assert_eq!(
            serde_json::to_string(&level).ok(),
            Some(format!("\"{level}\""))
        );
    }
    let err = "host".parse::<Level>().expect_err("no such level");
    assert!(err.to_string().contains("`host`"), "{err}");
}

/// The quoted strings of a DOT document, and the text between them.
fn tokens(dot: &str) -> (Vec<String>, String) {
    let (mut quoted, mut bare) = (Vec::new(), String::new());
    let mut chars = dot.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            bare.push(c);
            continue;
        }
        let mut text = String::new();
        loop {
            match chars.next() {
                Some('\\') => match chars.next().expect("escape ends the document") {
                    'n' => text.push('\n'),
                    c => text.push(c),
                },
                Some('"') => break,
                Some(c) => {
                    assert!(!c.is_control(), "raw control character in a string");
                    text.push(c)
                }
                None => panic!("unterminated string"),
            }
        }
        quoted.push(text);
        bare.push_str("\"\"");
    }
    (quoted, bare)
}

#[test]
fn dot_output_is_well_formed() {
    let mut records = sample();
    let odd = "/opt/we\"ird\\path\nx";
    if let Some(p) = records[0].src.process.as_mut() {
        p.exe = odd.into();
    }
    for level in Level::ALL {
        let t = topology(&records, level);
        let dot = to_dot(&t);
        let (quoted, bare) = tokens(&dot);
        assert!(bare.starts_with("digraph stockade {"), "{dot}");
        let mut depth = 0i32;
        for c in bare.chars() {
            depth += match c {
                '{' => 1,
                '}' => -1,
                _ => 0,
            };
            assert!(depth >= 0, "unbalanced braces in {dot}");
        }
        assert_eq!(depth, 0, "unbalanced braces in {dot}");
        let declared: BTreeSet<String> = dot
            .lines()
            .filter(|l| l.contains(" [label=") && !l.contains(" -> "))
            .filter_map(|l| tokens(l.trim()).0.into_iter().next())
            .collect();
        for edge in &t.edges {
            assert!(declared.contains(&edge.from), "{} undeclared", edge.from);
            assert!(declared.contains(&edge.to), "{} undeclared", edge.to);
        }
        assert_eq!(bare.matches("->").count(), t.edges.len());
        let zones: BTreeSet<_> = t.nodes.iter().filter_map(|n| n.zone.as_ref()).collect();
        assert_eq!(bare.matches("subgraph cluster_").count(), zones.len());
        if level == Level::Process {
            assert!(quoted.iter().any(|q| q.contains("we\"ird\\path")), "{dot}");
            assert!(dot.contains("we\\\"ird\\\\path\\nx"), "{dot}");
        }
    }
}

#[test]
fn dot_edges_show_what_the_policy_did() {
    let dot = to_dot(&topology(&sample(), Level::App));
    let edge = |from: &str, to: &str| {
        dot.lines()
            .find(|l| l.contains(&format!("{} -> {}", quote(from), quote(to))))
            .unwrap_or_default()
            .to_string()
    };
    let web_api = edge("prod/web", "prod/api");
    assert!(web_api.contains("tcp/8080 ×100 🔒"), "{web_api}");
    assert!(web_api.contains("style=\"solid,bold\""), "{web_api}");
    let dev = edge("dev/tools", "prod/db");
    assert!(dev.contains("color=red") && dev.contains("dashed"), "{dev}");
    let mut mixed = sample();
    mixed[2].action = Action::Deny;
    let dot = to_dot(&topology(&mixed, Level::Zone));
    assert!(dot.contains("color=orange"), "{dot}");
    assert_eq!(quote("a\"b\\c\nd\re"), "\"a\\\"b\\\\c\\nde\"");
}
