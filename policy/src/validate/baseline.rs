//! Checks of the commands that grow the baseline and decide its links.
//! Edges come from nodes, which may be buggy or compromised: nothing they
//! send may break the baseline, and one command stays a modest Raft entry.

use super::{fail, rule, Result};
use crate::baseline::{learned_rules, EdgeKey, EdgeTarget, LinkChoice, ObservedEdge};
use crate::ids::NodeId;
use crate::state::ClusterState;
use crate::MAX_EDGES_PER_COMMAND;

pub(super) fn learned_edges(node: NodeId, edges: &[ObservedEdge], state: &ClusterState) -> Result {
    if !state.nodes.contains_key(&node) {
        return fail("node", format!("there is no node {node}"));
    }
    if edges.is_empty() {
        return fail("edges", "no edge to learn");
    }
    if edges.len() > MAX_EDGES_PER_COMMAND {
        return fail(
            "edges",
            format!(
                "{} edges in one command; at most {MAX_EDGES_PER_COMMAND}",
                edges.len()
            ),
        );
    }
    for (i, edge) in edges.iter().enumerate() {
        let field = |name: &str| format!("edges[{i}].{name}");
        if edge.connections == 0 {
            return fail(
                field("connections"),
                "an observed edge stands for at least one connection",
            );
        }
        if edge.first_ms > edge.last_ms {
            return fail(field("first_ms"), "first seen after last seen");
        }
        if let EdgeTarget::Address(ip) = edge.key.to {
            if ip.is_unspecified() {
                return fail(
                    field("key.to"),
                    format!("{ip} is not an address a flow can go to"),
                );
            }
        }
    }
    Ok(())
}

pub(super) fn decision(links: &[EdgeKey], choice: LinkChoice, state: &ClusterState) -> Result {
    if links.is_empty() {
        return fail("links", "no link to decide");
    }
    if links.len() > MAX_EDGES_PER_COMMAND {
        return fail(
            "links",
            format!(
                "{} links in one command; at most {MAX_EDGES_PER_COMMAND}",
                links.len()
            ),
        );
    }
    for (i, link) in links.iter().enumerate() {
        if !state.baseline.edges.contains_key(link) {
            return fail(
                format!("links[{i}]"),
                format!("link {link} is not in the baseline"),
            );
        }
    }
    if choice != LinkChoice::Accept {
        return Ok(());
    }
    let specs = learned_rules(links);
    let room = u32::MAX - state.next_rule_id;
    if usize::try_from(room).is_ok_and(|room| room < specs.len()) {
        return fail("links", "not enough rule ids are left to allocate");
    }
    // The baseline forgets what a removal takes away, so a learned rule
    // always names what exists; checking keeps it so should that change.
    for spec in &specs {
        rule::rule(None, spec, state).map_err(|e| e.within("links"))?;
    }
    Ok(())
}
