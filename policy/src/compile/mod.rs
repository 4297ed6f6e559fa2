//! Compilation of the cluster state into the map contents of one node.
//!
//! The node reports what it runs ([`LocalWorkloads`]); compilation gives each
//! workload and executable its identity, lists the addresses of the cluster
//! and of the CIDRs rules name, and expands every rule into per-identity,
//! per-port-block verdicts with precedence already resolved (see [`ports`]).
//!
//! Precedence, in full: Stockade's own traffic is always allowed (either end
//! has the cluster identity); an inbound flow from a node address is allowed
//! (that node's egress hook decided it, knowing the caller); then the
//! rules (narrower port range first, deny before allow at equal width, lower
//! rule id last); then zone isolation (two different zones no rule connects
//! are denied whatever their modes); then the mode of the deciding side's
//! zone. Rules apply in every mode; modes only decide what no rule covers.

mod dataplane;
mod index;
pub mod ports;
mod verdicts;

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

pub use dataplane::{
    DataplaneEntries, Decision, Direction, ExecKey, FlowQuery, IpcacheKey, PolicyKey, Verdict,
    WorkloadKey,
};

use crate::ids::{IdentityId, NodeId, RuleRef};
use crate::resolve::{Resolution, Resolver, Subject, WorkloadFacts};
use crate::state::ClusterState;
use crate::{Action, L4Protocol, Peer, PortRange, Rule};
use index::IdentityIndex;
use ports::Claim;
pub(crate) use verdicts::RuleVerdicts;

/// A workload running on the node, with what the node knows about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalWorkload {
    /// How the kernel knows it.
    pub key: WorkloadKey,
    /// What identity rules can test.
    pub facts: WorkloadFacts,
}

/// An executable file on the node, hashed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalExecutable {
    /// How the exec tracepoint knows it.
    pub key: ExecKey,
    /// Its path and digest (cgroup and user are unknown at exec time).
    pub facts: WorkloadFacts,
}

/// What runs on a node, as its inventory reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalWorkloads {
    /// Processes and cgroups.
    pub workloads: Vec<LocalWorkload>,
    /// Executables, for identification at exec time.
    pub executables: Vec<LocalExecutable>,
    /// Stockade's own processes or cgroup: they carry the cluster identity.
    pub daemon: Vec<WorkloadKey>,
}

/// Why a node's map contents cannot be computed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    /// The node is not (yet) part of the cluster state.
    #[error("node {0} is not a member of the cluster state")]
    UnknownNode(NodeId),
}

/// The map contents `node` needs for the workloads it runs.
pub fn compile(
    state: &ClusterState,
    node: NodeId,
    local: &LocalWorkloads,
) -> Result<DataplaneEntries, CompileError> {
    let this_node = state
        .nodes
        .get(&node)
        .ok_or(CompileError::UnknownNode(node))?;
    let resolver = Resolver::new(state, &this_node.labels);
    let subject_of = |facts: &WorkloadFacts| resolver.subject(&resolver.resolve(facts));

    let mut workloads: BTreeMap<WorkloadKey, Subject> = local
        .workloads
        .iter()
        .map(|w| (w.key, subject_of(&w.facts)))
        .collect();
    for key in &local.daemon {
        workloads.insert(*key, cluster_subject());
    }
    let executables = local
        .executables
        .iter()
        .map(|e| (e.key, subject_of(&e.facts)))
        .filter(|(_, subject)| *subject != Subject::UNMANAGED)
        .collect();

    let cidrs = CidrIdentities::of(state);
    Ok(DataplaneEntries {
        zone_modes: state.zones.values().map(|z| (z.id, z.mode)).collect(),
        unmanaged_mode: state.settings.unmanaged_mode,
        workloads,
        executables,
        ipcache: ipcache(state, &cidrs),
        policy: policy(state, &cidrs),
    })
}

/// The resolution of a workload, for inventory and alerts: how it was (or
/// was not) identified on `node`.
pub fn explain(
    state: &ClusterState,
    node: NodeId,
    facts: &WorkloadFacts,
) -> Result<Resolution, CompileError> {
    let this_node = state
        .nodes
        .get(&node)
        .ok_or(CompileError::UnknownNode(node))?;
    Ok(Resolver::new(state, &this_node.labels).resolve(facts))
}

fn cluster_subject() -> Subject {
    Subject {
        identity: IdentityId::CLUSTER,
        zone: None,
    }
}

/// The identities compilation derives for the CIDRs rules name, numbered in
/// the order of the prefixes so the numbering depends only on the state.
struct CidrIdentities(BTreeMap<IpNet, IdentityId>);

impl CidrIdentities {
    fn of(state: &ClusterState) -> Self {
        let nets: BTreeSet<IpNet> = state
            .rules
            .values()
            .flat_map(|r| [&r.spec.from, &r.spec.to])
            .filter_map(|peer| match peer {
                Peer::Cidr(net) => Some(net.trunc()),
                Peer::App(_) => None,
            })
            .collect();
        CidrIdentities(
            nets.into_iter()
                .zip(IdentityId::FIRST_CIDR..)
                .map(|(net, id)| (net, IdentityId(id)))
                .collect(),
        )
    }

    /// The identities of every named prefix inside `net`: a rule for
    /// 10.0.0.0/8 also covers addresses that fall in a named 10.1.0.0/16.
    fn within(&self, net: &IpNet) -> impl Iterator<Item = IdentityId> + '_ {
        let net = *net;
        self.0
            .iter()
            .filter(move |(inner, _)| net.contains(*inner))
            .map(|(_, id)| *id)
    }
}

fn ipcache(state: &ClusterState, cidrs: &CidrIdentities) -> BTreeMap<IpcacheKey, Subject> {
    let host = |ip| IpNet::from(ip);
    let mut out = BTreeMap::new();
    for (net, id) in &cidrs.0 {
        out.insert(
            IpcacheKey {
                net: *net,
                port: None,
            },
            Subject {
                identity: *id,
                zone: None,
            },
        );
    }
    let index = IdentityIndex::of(state);
    for endpoint in state.endpoints.values() {
        if let Some(identity) = index.get(&endpoint.identity) {
            let zone = state.zones.get(&endpoint.identity.zone).map(|z| z.id);
            out.insert(
                IpcacheKey {
                    net: host(endpoint.ip),
                    port: endpoint.port,
                },
                Subject { identity, zone },
            );
        }
    }
    for node in state.nodes.values() {
        out.insert(
            IpcacheKey {
                net: host(node.address.ip()),
                port: None,
            },
            Subject {
                identity: IdentityId::NODE,
                zone: None,
            },
        );
        out.insert(
            IpcacheKey {
                net: host(node.address.ip()),
                port: Some(node.address.port()),
            },
            cluster_subject(),
        );
    }
    out
}

fn policy(state: &ClusterState, cidrs: &CidrIdentities) -> BTreeMap<PolicyKey, Verdict> {
    let index = IdentityIndex::of(state);
    let peer_identities = |peer: &Peer| -> Vec<IdentityId> {
        match peer {
            Peer::App(selector) => index.select(selector),
            Peer::Cidr(net) => cidrs.within(net).collect(),
        }
    };

    // Every rule's claims, grouped by the flow they are about.
    type FlowClass = (IdentityId, IdentityId, L4Protocol);
    let mut claims: BTreeMap<FlowClass, Vec<Claim<Verdict>>> = BTreeMap::new();
    for rule in state.rules.values() {
        let srcs = peer_identities(&rule.spec.from);
        let dsts = peer_identities(&rule.spec.to);
        for (&src, &dst) in srcs.iter().flat_map(|s| dsts.iter().map(move |d| (s, d))) {
            for &protocol in rule.spec.protocol.concrete() {
                let class = claims.entry((src, dst, protocol)).or_default();
                class.extend(rule_claims(rule));
            }
        }
    }
    let cluster = IdentityId::CLUSTER;
    for &protocol in [L4Protocol::Tcp, L4Protocol::Udp].iter() {
        // Validation keeps rules away from the cluster identity; this claim
        // is the only one for its class and so always wins.
        claims.insert(
            (cluster, cluster, protocol),
            vec![Claim {
                range: PortRange::ALL,
                action: Action::Allow,
                verdict: Verdict {
                    action: Action::Allow,
                    encrypt: false,
                    rule: RuleRef::ClusterTraffic,
                },
                order: 0,
            }],
        );
    }

    let mut out = BTreeMap::new();
    for ((src, dst, protocol), class) in claims {
        for (range, verdict) in ports::resolve(&class) {
            for block in ports::blocks(range) {
                let key = PolicyKey {
                    src,
                    dst,
                    protocol,
                    port: block.first,
                    port_prefix_len: block.prefix_len,
                };
                out.insert(key, verdict);
            }
        }
    }
    out
}

fn rule_claims(rule: &Rule) -> impl Iterator<Item = Claim<Verdict>> + '_ {
    let verdict = Verdict {
        action: rule.spec.action,
        encrypt: rule.spec.encrypt,
        rule: RuleRef::Rule(rule.id),
    };
    rule.spec.port_ranges().into_iter().map(move |range| Claim {
        range,
        action: rule.spec.action,
        verdict,
        order: rule.id.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{allow, app, name, sample};
    use crate::{
        Command, Endpoint, Fingerprint, IdentityRule, Mode, RuleId, Sha256, WorkloadSelector,
    };

    const NODE: NodeId = NodeId(1);

    fn subject(state: &ClusterState, zone: &str, app: &str) -> Subject {
        let identity = state
            .identity_by_name(&name(zone, app, "main"))
            .expect("fixture identity");
        Subject {
            identity: identity.id,
            zone: state.zones.get(zone).map(|z| z.id),
        }
    }

    fn tcp(src: Subject, dst: Subject, port: u16) -> FlowQuery {
        FlowQuery {
            src,
            dst,
            protocol: L4Protocol::Tcp,
            port,
            direction: Direction::Egress,
        }
    }

    fn apply(state: &mut ClusterState, command: Command) {
        command.apply(state).expect("test command is valid");
    }

    #[test]
    fn inbound_flows_from_a_node_address_were_checked_at_that_nodes_egress() {
        let state = sample();
        let dp = compile(&state, NODE, &LocalWorkloads::default()).expect("compiles");
        let node = state.nodes[&NODE].address;
        let from_node = dp.lookup_address(node.ip(), 40000);
        assert_eq!(from_node.identity, IdentityId::NODE);
        let db = subject(&state, "prod", "db");
        let inbound = dp.decide(&FlowQuery {
            direction: Direction::Ingress,
            ..tcp(from_node, db, 5432)
        });
        assert_eq!(
            (inbound.action, inbound.rule),
            (Action::Allow, RuleRef::EgressChecked)
        );
        // Outbound, a node's address is no rule's peer: the mode decides.
        assert_eq!(
            dp.decide(&tcp(db, from_node, 80)).rule,
            RuleRef::ZoneDefault
        );
        // Its control-plane port is Stockade's own traffic, always allowed.
        let control = dp.lookup_address(node.ip(), node.port());
        let to_control = dp.decide(&tcp(db, control, node.port()));
        assert_eq!(
            (to_control.action, to_control.rule),
            (Action::Allow, RuleRef::ClusterTraffic)
        );
    }

    #[test]
    fn rule_allows_its_port_and_the_zone_mode_decides_the_rest() {
        let state = sample();
        let dp = compile(&state, NODE, &LocalWorkloads::default()).expect("compiles");
        let (web, db) = (
            subject(&state, "prod", "web"),
            subject(&state, "prod", "db"),
        );
        let allowed = dp.decide(&tcp(web, db, 5432));
        assert_eq!(allowed.action, Action::Allow);
        assert_eq!(allowed.rule, RuleRef::Rule(RuleId(16)));
        let other_port = dp.decide(&tcp(web, db, 5433));
        assert_eq!(
            (other_port.action, other_port.rule),
            (Action::Deny, RuleRef::ZoneDefault)
        );
        assert!(other_port.alert);
    }

    #[test]
    fn an_unmanaged_process_meets_the_destination_zones_mode_at_egress() {
        // The far node's ingress passes what a node sends, so the egress
        // hook is where an unmanaged process's reach into an enforcing zone
        // must end.
        let state = sample();
        let dp = compile(&state, NODE, &LocalWorkloads::default()).expect("compiles");
        let (prod_db, dev_web) = (subject(&state, "prod", "db"), subject(&state, "dev", "web"));
        let into_prod = dp.decide(&tcp(Subject::UNMANAGED, prod_db, 5432));
        assert_eq!(
            (into_prod.action, into_prod.rule, into_prod.alert),
            (Action::Deny, RuleRef::ZoneDefault, true)
        );
        // A learning destination lets it through, as the unmanaged mode does.
        let into_dev = dp.decide(&tcp(Subject::UNMANAGED, dev_web, 8080));
        assert_eq!(
            (into_dev.action, into_dev.rule, into_dev.alert),
            (Action::Allow, RuleRef::ZoneDefault, false)
        );
        // From a learning zone to an unmanaged peer, the source's mode decides.
        let out_of_dev = dp.decide(&tcp(dev_web, Subject::UNMANAGED, 443));
        assert_eq!(out_of_dev.action, Action::Allow);
    }

    #[test]
    fn zones_no_rule_connects_are_isolated_even_in_learn_mode() {
        let state = sample();
        let dp = compile(&state, NODE, &LocalWorkloads::default()).expect("compiles");
        let dev_web = subject(&state, "dev", "web");
        let prod_db = subject(&state, "prod", "db");
        let d = dp.decide(&tcp(dev_web, prod_db, 5432));
        assert_eq!((d.action, d.rule), (Action::Deny, RuleRef::ZoneIsolation));
        // Within dev, learn mode allows without alerting.
        let d = dp.decide(&tcp(dev_web, dev_web, 8080));
        assert_eq!((d.action, d.alert), (Action::Allow, false));
    }

    #[test]
    fn modified_binary_of_a_fingerprinted_app_loses_its_identity() {
        let mut state = sample();
        let good: Sha256 = "11".repeat(32).parse().expect("digest");
        let tampered: Sha256 = "22".repeat(32).parse().expect("digest");
        apply(
            &mut state,
            Command::UpsertIdentityRule(IdentityRule {
                name: "web".into(),
                identity: name("prod", "web", "main"),
                selector: WorkloadSelector {
                    exe_path: Some("/opt/web/*".into()),
                    ..Default::default()
                },
            }),
        );
        let facts = |sha256| WorkloadFacts {
            exe_path: Some("/opt/web/server".into()),
            exe_sha256: Some(sha256),
            ..Default::default()
        };
        // Before any fingerprint, the path alone vouches for the workload.
        assert!(matches!(
            explain(&state, NODE, &facts(tampered)),
            Ok(Resolution::Rule { .. })
        ));
        apply(
            &mut state,
            Command::RegisterFingerprint(Fingerprint {
                sha256: good,
                identity: name("prod", "web", "main"),
                path: "/opt/web/server".into(),
            }),
        );
        let local = LocalWorkloads {
            workloads: vec![
                LocalWorkload {
                    key: WorkloadKey::Process(10),
                    facts: facts(good),
                },
                LocalWorkload {
                    key: WorkloadKey::Process(11),
                    facts: facts(tampered),
                },
            ],
            ..Default::default()
        };
        let dp = compile(&state, NODE, &local).expect("compiles");
        let web = subject(&state, "prod", "web");
        assert_eq!(dp.workloads[&WorkloadKey::Process(10)], web);
        let unverified = dp.workloads[&WorkloadKey::Process(11)];
        assert_eq!(
            unverified,
            Subject {
                identity: IdentityId::UNKNOWN,
                zone: web.zone
            }
        );
        let d = dp.decide(&tcp(unverified, subject(&state, "prod", "db"), 5432));
        assert_eq!(
            d.action,
            Action::Deny,
            "prod enforces: an unverified binary is cut off"
        );
    }

    #[test]
    fn nested_cidrs_inherit_the_rules_of_their_parents() {
        let mut state = sample();
        let mut wide = allow(
            app("prod", "web"),
            Peer::Cidr("10.0.0.0/8".parse().expect("net")),
            &["443"],
        );
        wide.protocol = crate::Protocol::Tcp;
        let mut narrow = allow(
            app("prod", "web"),
            Peer::Cidr("10.1.0.0/16".parse().expect("net")),
            &[],
        );
        narrow.action = Action::Deny;
        apply(
            &mut state,
            Command::UpsertRule {
                id: None,
                spec: wide,
            },
        );
        apply(
            &mut state,
            Command::UpsertRule {
                id: None,
                spec: narrow,
            },
        );
        let dp = compile(&state, NODE, &LocalWorkloads::default()).expect("compiles");
        let web = subject(&state, "prod", "web");
        let in_narrow = dp.lookup_address("10.1.2.3".parse().expect("ip"), 443);
        let in_wide = dp.lookup_address("10.2.0.1".parse().expect("ip"), 443);
        assert_ne!(in_narrow, in_wide);
        // The narrower port range wins: 443 stays allowed inside 10.1/16 ...
        assert_eq!(dp.decide(&tcp(web, in_narrow, 443)).action, Action::Allow);
        // ... and every other port there is denied by the /16 rule.
        assert_eq!(
            dp.decide(&tcp(web, in_narrow, 22)).rule,
            RuleRef::Rule(RuleId(18))
        );
        assert_eq!(
            dp.decide(&tcp(web, in_wide, 443)).rule,
            RuleRef::Rule(RuleId(17))
        );
        let outside = dp.lookup_address("192.0.2.1".parse().expect("ip"), 443);
        assert_eq!(outside.identity, IdentityId::WORLD);
    }

    #[test]
    fn endpoints_with_a_port_win_over_their_bare_address() {
        let mut state = sample();
        for (port, app) in [(None, "web"), (Some(5432), "db")] {
            apply(
                &mut state,
                Command::UpsertEndpoint(Endpoint {
                    node: NODE,
                    ip: "10.0.0.5".parse().expect("ip"),
                    port,
                    identity: name("prod", app, "main"),
                }),
            );
        }
        let dp = compile(&state, NODE, &LocalWorkloads::default()).expect("compiles");
        let ip = "10.0.0.5".parse().expect("ip");
        assert_eq!(dp.lookup_address(ip, 5432), subject(&state, "prod", "db"));
        assert_eq!(dp.lookup_address(ip, 80), subject(&state, "prod", "web"));
    }

    #[test]
    fn cluster_traffic_is_allowed_in_every_mode() {
        let mut state = sample();
        apply(
            &mut state,
            Command::SetSettings(crate::Settings {
                unmanaged_mode: Mode::Enforce,
                ..Default::default()
            }),
        );
        let local = LocalWorkloads {
            daemon: vec![WorkloadKey::Process(1)],
            ..Default::default()
        };
        let dp = compile(&state, NODE, &local).expect("compiles");
        let daemon = dp.workloads[&WorkloadKey::Process(1)];
        let peer = dp.lookup_address("10.0.0.1".parse().expect("ip"), 7400);
        let d = dp.decide(&FlowQuery {
            src: daemon,
            dst: peer,
            protocol: L4Protocol::Udp,
            port: 7400,
            direction: Direction::Egress,
        });
        assert_eq!((d.action, d.rule), (Action::Allow, RuleRef::ClusterTraffic));
    }

    #[test]
    fn an_unknown_node_cannot_compile() {
        assert_eq!(
            compile(&sample(), NodeId(42), &LocalWorkloads::default()),
            Err(CompileError::UnknownNode(NodeId(42)))
        );
    }
}
