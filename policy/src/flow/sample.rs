//! Flow records of a small three-node cluster, for unit tests.
//!
//! Node 1 (10.0.0.1) runs prod's web front and a dev tool; node 2
//! (10.0.0.2) runs prod's api; node 3 (10.0.0.3) runs prod's database.
//! Web calls api (encrypted), api calls the database, the dev tool is denied
//! the database, web asks a world DNS server, a world address is denied the
//! api, and an unknown binary on node 2 is denied the database.

use super::{FlowPeer, FlowProcess, FlowRecord, PeerClass};
use crate::fixtures::name;
use crate::ids::{NodeId, RuleId, RuleRef};
use crate::{Action, Direction, L4Protocol};

pub const WEB: &str = "/usr/bin/web";
pub const API: &str = "/usr/bin/api";
pub const POSTGRES: &str = "/usr/lib/postgresql/bin/postgres";
pub const PSQL: &str = "/usr/bin/psql";

/// An address of a given class, with nothing else known.
pub fn peer(ip: &str, port: u16, class: PeerClass) -> FlowPeer {
    FlowPeer {
        ip: ip.parse().expect("sample address"),
        port,
        class,
        identity: None,
        zone: None,
        node: None,
        process: None,
    }
}

/// A workload `zone/app/service` on `node`, run by `exe` when given.
pub fn workload(ip: &str, port: u16, identity: &str, node: u64, exe: Option<&str>) -> FlowPeer {
    let parts: Vec<&str> = identity.split('/').collect();
    let identity = name(parts[0], parts[1], parts[2]);
    FlowPeer {
        zone: Some(identity.zone.clone()),
        identity: Some(identity),
        node: Some(NodeId(node)),
        process: exe.map(|exe| process(exe, 100 + node as u32)),
        ..peer(ip, port, PeerClass::Workload)
    }
}

pub fn process(exe: &str, pid: u32) -> FlowProcess {
    FlowProcess {
        pid,
        exe: exe.into(),
        user: None,
    }
}

/// A TCP record of `connections` allowed flows by rule 17, seen at t=1000..2000.
pub fn record(node: u64, direction: Direction, src: FlowPeer, dst: FlowPeer) -> FlowRecord {
    FlowRecord {
        node: NodeId(node),
        first_ms: 1_000,
        last_ms: 2_000,
        direction,
        protocol: L4Protocol::Tcp,
        src,
        dst,
        action: Action::Allow,
        rule: RuleRef::Rule(RuleId(17)),
        connections: 10,
        encrypted: false,
    }
}

fn denied(mut record: FlowRecord, rule: RuleRef) -> FlowRecord {
    record.action = Action::Deny;
    record.rule = rule;
    record
}

/// Node `n`'s address as an inbound flow's source.
pub fn node_source(n: u64) -> FlowPeer {
    FlowPeer {
        node: Some(NodeId(n)),
        ..peer(&format!("10.0.0.{n}"), 0, PeerClass::Node)
    }
}

pub fn sample() -> Vec<FlowRecord> {
    use Direction::{Egress, Ingress};
    let web = || workload("10.0.0.1", 0, "prod/web/front", 1, Some(WEB));
    let api = |exe| workload("10.0.0.2", 8080, "prod/api/main", 2, exe);
    let db = |exe| workload("10.0.0.3", 5432, "prod/db/postgres", 3, exe);
    let psql = workload("10.0.0.1", 0, "dev/tools/psql", 1, Some(PSQL));
    let unknown = FlowPeer {
        zone: Some("prod".into()),
        node: Some(NodeId(2)),
        process: Some(process("/tmp/miner", 666)),
        ..peer("10.0.0.2", 0, PeerClass::Unknown)
    };
    let dns = peer("8.8.8.8", 53, PeerClass::World);
    let scanner = peer("203.0.113.9", 0, PeerClass::World);

    let mut web_api = record(1, Egress, web(), api(None));
    web_api.connections = 100;
    web_api.encrypted = true;
    let mut web_api_in = record(2, Ingress, node_source(1), api(Some(API)));
    web_api_in.connections = 100;
    web_api_in.rule = RuleRef::EgressChecked;
    web_api_in.encrypted = true;
    let mut api_db = record(2, Egress, api(Some(API)), db(None));
    api_db.connections = 40;
    api_db.rule = RuleRef::Rule(RuleId(19));
    let mut api_db_in = record(3, Ingress, node_source(2), db(Some(POSTGRES)));
    api_db_in.connections = 40;
    api_db_in.rule = RuleRef::EgressChecked;
    let mut dns_query = record(1, Egress, web(), dns);
    dns_query.protocol = L4Protocol::Udp;
    dns_query.rule = RuleRef::Rule(RuleId(18));
    let mut scan = denied(
        record(2, Ingress, scanner, api(Some(API))),
        RuleRef::ZoneDefault,
    );
    scan.first_ms = 5_000;
    scan.last_ms = 6_000;
    vec![
        web_api,
        web_api_in,
        api_db,
        api_db_in,
        denied(record(1, Egress, psql, db(None)), RuleRef::ZoneIsolation),
        dns_query,
        scan,
        denied(record(2, Egress, unknown, db(None)), RuleRef::ZoneDefault),
    ]
}
