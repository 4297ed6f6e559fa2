//! The topology as a Graphviz DOT document, for `dot -Tsvg` and friends.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{Topology, TopologyEdge, TopologyNode};
use crate::flow::PeerClass;
use crate::L4Protocol;

/// Writes `topology` as a Graphviz digraph.
///
/// Vertices of a zone are drawn together in a `cluster_<n>` subgraph, so
/// zone boundaries stay visible at every level. An edge's colour says what
/// the policy did: solid black when everything was allowed, dashed red when
/// everything was denied, orange when both; encrypted edges are bold and
/// carry a lock in their label, which reads like `tcp/5432 ×123`.
/// Every label and id is quoted and escaped, so names and executable paths
/// cannot break the document.
pub fn to_dot(topology: &Topology) -> String {
    let mut out = String::new();
    out.push_str("digraph stockade {\n");
    out.push_str("  rankdir=LR;\n");
    line(
        &mut out,
        1,
        &format!("label={};", quote(&format!("{} level", topology.level))),
    );
    line(&mut out, 1, "node [shape=box, style=rounded];");

    let mut by_zone: BTreeMap<&str, Vec<&TopologyNode>> = BTreeMap::new();
    let mut outside = Vec::new();
    for node in &topology.nodes {
        match &node.zone {
            Some(zone) => by_zone.entry(zone).or_default().push(node),
            None => outside.push(node),
        }
    }
    for (n, (zone, nodes)) in by_zone.into_iter().enumerate() {
        line(&mut out, 1, &format!("subgraph cluster_{n} {{"));
        line(&mut out, 2, &format!("label={};", quote(zone)));
        for node in nodes {
            line(&mut out, 2, &vertex(node));
        }
        line(&mut out, 1, "}");
    }
    for node in outside {
        line(&mut out, 1, &vertex(node));
    }
    for edge in &topology.edges {
        line(&mut out, 1, &self::edge(edge));
    }
    out.push_str("}\n");
    out
}

fn line(out: &mut String, depth: usize, text: &str) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "{:width$}{text}", "", width = depth * 2);
}

fn vertex(node: &TopologyNode) -> String {
    let shape = match node.kind {
        PeerClass::Workload => "",
        PeerClass::Unknown => ", color=red, fontcolor=red",
        PeerClass::World => ", shape=ellipse",
        PeerClass::Node | PeerClass::Cluster => ", shape=component",
    };
    format!("{} [label={}{shape}];", quote(&node.id), quote(&node.label))
}

fn edge(edge: &TopologyEdge) -> String {
    let protocol = match edge.protocol {
        L4Protocol::Tcp => "tcp",
        L4Protocol::Udp => "udp",
    };
    let ports: Vec<String> = edge.ports.iter().map(u16::to_string).collect();
    let mut label = match ports.is_empty() {
        true => protocol.to_string(),
        false => format!("{protocol}/{}", ports.join(",")),
    };
    label.push_str(&format!(" ×{}", edge.connections));
    let (color, mut style) = match (edge.allowed > 0, edge.denied > 0) {
        (false, true) => ("red", "dashed".to_string()),
        (true, true) => ("orange", "solid".to_string()),
        _ => ("black", "solid".to_string()),
    };
    if edge.encrypted {
        label.push_str(" 🔒");
        style.push_str(",bold");
    }
    format!(
        "{} -> {} [label={}, color={color}, style={}];",
        quote(&edge.from),
        quote(&edge.to),
        quote(&label),
        quote(&style)
    )
}

/// A DOT quoted string: quotes and backslashes escaped, line breaks written
/// as `\n`, other control characters dropped.
pub(super) fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
