//! Node health, judged by the leader: a member it has not heard from for a
//! while is down, and up again once it answers.
//!
//! Which nodes are down is part of the replicated alert log, so a new
//! leader neither repeats a `node_down` its predecessor raised nor misses
//! the `node_up` that ends it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stockade_policy::{AlertClass, AlertKind, NewAlert, NodeId, Severity};

use super::raise::Raiser;
use crate::clock::now_ms;
use crate::cluster::ControlPlane;

/// Silence after which a member is reported down.
const DOWN_AFTER: Duration = Duration::from_secs(5);
/// How recent a contact must be for a down member to count as up.
const UP_WITHIN: Duration = Duration::from_secs(2);

/// Watches the members' last contact while this node leads.
pub async fn watch(control: Arc<ControlPlane>, raiser: Raiser) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut leading_since: Option<Instant> = None;
    // What this leader reported and the state may not show yet.
    let mut reported: BTreeMap<NodeId, bool> = BTreeMap::new();
    loop {
        tick.tick().await;
        let status = control.raft().status();
        if status.leader != Some(status.node_id) || status.role != "leader" {
            leading_since = None;
            reported.clear();
            continue;
        }
        // Right after an election, contacts are too fresh to judge.
        if leading_since.get_or_insert_with(Instant::now).elapsed() < DOWN_AFTER {
            continue;
        }
        let (down, names) = control.with_state(|s| {
            let names: BTreeMap<NodeId, String> = s
                .nodes
                .iter()
                .map(|(id, n)| (*id, n.name.clone()))
                .collect();
            (s.alerts.nodes_down.clone(), names)
        });
        let members = status.voters.keys().chain(status.learners.keys());
        for &member in members.filter(|&&m| m != status.node_id) {
            let node = NodeId(member);
            let silence = status
                .last_contact_ms
                .get(&member)
                .map_or(Duration::MAX, |&ms| Duration::from_millis(ms));
            let is_down = *reported.get(&node).unwrap_or(&down.contains(&node));
            let name = names
                .get(&node)
                .cloned()
                .unwrap_or_else(|| node.to_string());
            let change = if !is_down && silence >= DOWN_AFTER {
                Some((
                    AlertKind::NodeDown,
                    Severity::Critical,
                    format!(
                        "node {name} has not answered the leader for {} s",
                        silence.min(Duration::from_secs(86_400)).as_secs()
                    ),
                ))
            } else if is_down && silence <= UP_WITHIN {
                Some((
                    AlertKind::NodeUp,
                    Severity::Info,
                    format!("node {name} answers again"),
                ))
            } else {
                None
            };
            let Some((kind, severity, summary)) = change else {
                continue;
            };
            reported.insert(node, kind == AlertKind::NodeDown);
            let now = now_ms();
            raiser
                .raise(NewAlert {
                    id: raiser.new_id(),
                    kind,
                    severity,
                    class: AlertClass::FirstSeen,
                    node: raiser.node(),
                    subject_node: Some(node),
                    sink: None,
                    workload: None,
                    flow: None,
                    count: 1,
                    first_seen_ms: now,
                    last_seen_ms: now,
                    summary,
                    change: None,
                })
                .await;
        }
    }
}
