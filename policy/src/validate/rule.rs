//! Validation of rules: both peers name what exists, port ranges do not
//! overlap, encryption is asked only where it can be given, and no deny rule
//! reads as if it would cut the cluster's own traffic.

use super::{fail, identity_exists, zone_exists, Result};
use crate::ids::RuleId;
use crate::state::ClusterState;
use crate::{Action, IdentityName, Peer, Protocol, RuleSpec};

pub(super) fn rule(id: Option<RuleId>, spec: &RuleSpec, state: &ClusterState) -> Result {
    if let Some(id) = id {
        if id.0 < RuleId::FIRST_ALLOCATED {
            return fail(
                "id",
                format!(
                    "rule ids below {} are reserved for built-in verdicts",
                    RuleId::FIRST_ALLOCATED
                ),
            );
        }
    } else if state.next_rule_id == u32::MAX {
        return fail("id", "no rule ids are left to allocate");
    }
    peer("from", &spec.from, state)?;
    peer("to", &spec.to, state)?;
    if matches!((&spec.from, &spec.to), (Peer::Cidr(_), Peer::Cidr(_))) {
        return fail(
            "to",
            "a rule between two CIDRs names no workload of the cluster",
        );
    }
    for (i, range) in spec.ports.iter().enumerate() {
        if let Some((j, _)) = spec.ports[..i]
            .iter()
            .enumerate()
            .find(|(_, earlier)| earlier.overlaps(range))
        {
            return fail(
                format!("ports[{i}]"),
                format!("port range {range} overlaps ports[{j}] ({})", spec.ports[j]),
            );
        }
    }
    if spec.encrypt {
        if spec.action != Action::Allow {
            return fail("encrypt", "only an allow rule can encrypt its flows");
        }
        if matches!(spec.from, Peer::Cidr(_)) || matches!(spec.to, Peer::Cidr(_)) {
            return fail(
                "encrypt",
                "flows to or from a CIDR leave the cluster and cannot be tunnelled",
            );
        }
        if spec.protocol == Protocol::Udp {
            return fail(
                "encrypt",
                "the tunnel carries TCP connections; a UDP rule cannot encrypt",
            );
        }
    }
    if spec.action == Action::Deny {
        cluster_traffic_untouched(spec, state)?;
    }
    Ok(())
}

fn peer(field: &str, peer: &Peer, state: &ClusterState) -> Result {
    match peer {
        Peer::App(selector) => {
            zone_exists(&format!("{field}.zone"), &selector.zone, state)?;
            match (&selector.app, &selector.service) {
                (None, Some(_)) => fail(
                    format!("{field}.service"),
                    "a service can only be named together with its app",
                ),
                (Some(app), None) if !state.app_exists(&selector.zone, app) => fail(
                    format!("{field}.app"),
                    format!("unknown app `{}/{app}`", selector.zone),
                ),
                (Some(app), Some(service)) => {
                    let identity = IdentityName {
                        zone: selector.zone.clone(),
                        app: app.clone(),
                        service: service.clone(),
                    };
                    identity_exists(&format!("{field}.service"), &identity, state)
                }
                _ => Ok(()),
            }
        }
        Peer::Cidr(net) => {
            if net.trunc() != *net {
                return fail(
                    format!("{field}.cidr"),
                    format!("`{net}` has host bits set; did you mean `{}`?", net.trunc()),
                );
            }
            Ok(())
        }
    }
}

/// Stockade's own traffic is always allowed; a deny rule that reads as if it
/// would cut it is a mistake the author should hear about.
fn cluster_traffic_untouched(spec: &RuleSpec, state: &ClusterState) -> Result {
    if spec.protocol == Protocol::Tcp {
        return Ok(()); // the control plane speaks QUIC, over UDP
    }
    let ports = spec.port_ranges();
    for (field, peer) in [("from", &spec.from), ("to", &spec.to)] {
        let Peer::Cidr(net) = peer else { continue };
        for node in state.nodes.values() {
            let addr = node.address;
            // Peers talk from and to their control-plane port, so the port
            // matters on both sides.
            if net.contains(&addr.ip()) && ports.iter().any(|r| r.contains(addr.port())) {
                return fail(
                    format!("{field}.cidr"),
                    format!(
                        "denying {net} on these ports would cut the cluster's own traffic with node `{}` ({addr}); narrow the CIDR or the ports",
                        node.name
                    ),
                );
            }
        }
    }
    Ok(())
}
