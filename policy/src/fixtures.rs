//! A small cluster for unit tests: two zones, three identities, one node,
//! one rule.

use std::net::SocketAddr;

use crate::{
    Action, AppSelector, ClusterState, Command, IdentityName, Mode, Node, NodeId, Peer, PortRange,
    Protocol, RuleSpec,
};

pub fn name(zone: &str, app: &str, service: &str) -> IdentityName {
    IdentityName {
        zone: zone.into(),
        app: app.into(),
        service: service.into(),
    }
}

pub fn app(zone: &str, app: &str) -> Peer {
    Peer::App(AppSelector {
        zone: zone.into(),
        app: Some(app.into()),
        service: None,
    })
}

pub fn allow(from: Peer, to: Peer, ports: &[&str]) -> RuleSpec {
    RuleSpec {
        from,
        to,
        protocol: Protocol::Tcp,
        ports: ports
            .iter()
            .map(|p| p.parse::<PortRange>().expect("fixture port"))
            .collect(),
        action: Action::Allow,
        encrypt: false,
        owner: String::new(),
        description: String::new(),
    }
}

pub fn node(id: u64, address: &str) -> Node {
    Node {
        id: NodeId(id),
        name: format!("node-{id}"),
        address: address.parse::<SocketAddr>().expect("fixture address"),
        labels: Default::default(),
    }
}

pub fn zone(name: &str, mode: Mode) -> Command {
    Command::UpsertZone {
        id: None,
        name: name.into(),
        mode,
        description: String::new(),
    }
}

pub fn define(zone: &str, app: &str, service: &str) -> Command {
    Command::DefineIdentity {
        id: None,
        name: name(zone, app, service),
    }
}

/// prod (enforce) with web and db, dev (learn) with web; node 1; prod/web
/// may reach prod/db on 5432.
pub fn sample() -> ClusterState {
    let mut state = ClusterState::new();
    let commands = vec![
        zone("prod", Mode::Enforce),
        zone("dev", Mode::Learn),
        define("prod", "web", "main"),
        define("prod", "db", "main"),
        define("dev", "web", "main"),
        Command::UpsertNode(node(1, "10.0.0.1:7400")),
        Command::UpsertRule {
            id: None,
            spec: allow(app("prod", "web"), app("prod", "db"), &["5432"]),
        },
    ];
    Command::batch(commands)
        .apply(&mut state)
        .expect("fixture commands are valid");
    state
}
