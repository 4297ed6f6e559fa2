//! What runs on each node, as the node last reported it: the cluster-wide
//! asset inventory (NIST ID.AM-2: software platforms and applications).
//!
//! A node groups its processes into workloads — the same executable, user,
//! cgroup and identity — so the inventory stays small however many
//! processes a server forks, and reports it through Raft only when it
//! changed. The identity it shows is the one the node's dataplane enforces.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::{IdentityName, L4Protocol, NodeId, Sha256};

/// Workloads one node may report at most.
pub const MAX_INVENTORY_WORKLOADS: usize = 5000;

/// One node's workloads, as it last reported them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeInventory {
    /// The reporting node.
    pub node: NodeId,
    /// When it looked (ms since the Unix epoch).
    pub reported_ms: u64,
    /// Its workloads, sorted.
    pub workloads: Vec<InventoryWorkload>,
}

/// Processes that run the same executable as the same user in the same
/// cgroup, with the identity they have.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InventoryWorkload {
    /// The executable's path.
    pub exe: String,
    /// The executable's SHA-256, when it could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub sha256: Option<Sha256>,
    /// The user it runs as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Its cgroup, relative to the node's subtree: the container, VM or
    /// service it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    /// Its identity; none for a binary nobody registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<IdentityName>,
    /// The zone it is in (a workload without identity may still be in one
    /// through its cgroup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Whether and how it is identified.
    pub status: WorkloadStatus,
    /// How many processes run it.
    pub processes: u32,
    /// Some of their pids (the lowest few), to find them on the node.
    pub pids: Vec<u32>,
    /// Where they listen (TCP) or receive (bound UDP).
    pub listening: Vec<ListeningPort>,
}

/// How a workload is identified.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum WorkloadStatus {
    /// It has an identity.
    #[default]
    Identified,
    /// Nobody registered its binary and no identity rule names it.
    UnknownBinary,
    /// Its path is registered, but with other bytes: the binary changed.
    ModifiedBinary,
}

/// A socket a workload listens on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ListeningPort {
    /// TCP or UDP.
    pub protocol: L4Protocol,
    /// The bound address (unspecified: every address).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub ip: IpAddr,
    /// The port.
    pub port: u16,
}

impl InventoryWorkload {
    /// Whether the workload runs a binary without identity.
    pub fn is_unknown(&self) -> bool {
        self.status != WorkloadStatus::Identified
    }
}

/// Which workloads `GET /v1/inventory` lists; every given field must match.
/// (Unknown fields are not refused here: the API reads this from a query
/// string that has parameters of its own, and checks their names itself.)
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
pub struct InventoryFilter {
    /// Only workloads of this zone.
    #[serde(default)]
    pub zone: Option<String>,
    /// Only workloads of this app (of any zone, unless `zone` is given).
    #[serde(default)]
    pub app: Option<String>,
    /// Only workloads on this node.
    #[serde(default)]
    pub node: Option<NodeId>,
    /// Only workloads whose binary has no identity.
    #[serde(default)]
    pub unknown: bool,
}

impl InventoryFilter {
    /// Whether `workload` of `node` is listed.
    pub fn matches(&self, node: NodeId, workload: &InventoryWorkload) -> bool {
        let app = workload.identity.as_ref().map(|i| i.app.as_str());
        self.node.is_none_or(|n| n == node)
            && self
                .zone
                .as_deref()
                .is_none_or(|z| workload.zone.as_deref() == Some(z))
            && self.app.as_deref().is_none_or(|a| app == Some(a))
            && (!self.unknown || workload.is_unknown())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{name, node};
    use crate::{ClusterState, Command};

    fn workload(identity: Option<&str>, status: WorkloadStatus) -> InventoryWorkload {
        let identity = identity.map(|i| {
            let parts: Vec<&str> = i.split('/').collect();
            name(parts[0], parts[1], parts[2])
        });
        InventoryWorkload {
            exe: "/usr/bin/app".into(),
            zone: identity.as_ref().map(|i| i.zone.clone()),
            identity,
            status,
            processes: 1,
            pids: vec![10],
            ..InventoryWorkload::default()
        }
    }

    #[test]
    fn filters_select_by_zone_app_node_and_unknown() {
        let web = workload(Some("prod/web/frontend"), WorkloadStatus::Identified);
        let stray = workload(None, WorkloadStatus::UnknownBinary);
        let all = InventoryFilter::default();
        assert!(all.matches(NodeId(1), &web) && all.matches(NodeId(2), &stray));
        let prod = InventoryFilter {
            zone: Some("prod".into()),
            ..InventoryFilter::default()
        };
        assert!(prod.matches(NodeId(1), &web) && !prod.matches(NodeId(1), &stray));
        let app = InventoryFilter {
            app: Some("web".into()),
            ..InventoryFilter::default()
        };
        assert!(app.matches(NodeId(1), &web) && !app.matches(NodeId(1), &stray));
        let node = InventoryFilter {
            node: Some(NodeId(2)),
            ..InventoryFilter::default()
        };
        assert!(!node.matches(NodeId(1), &web) && node.matches(NodeId(2), &stray));
        let unknown = InventoryFilter {
            unknown: true,
            ..InventoryFilter::default()
        };
        assert!(!unknown.matches(NodeId(1), &web) && unknown.matches(NodeId(1), &stray));
        let modified = workload(None, WorkloadStatus::ModifiedBinary);
        assert!(unknown.matches(NodeId(1), &modified));
    }

    #[test]
    fn a_report_replaces_the_nodes_inventory_without_changing_the_policy() {
        let mut state = ClusterState::new();
        Command::UpsertNode(node(1, "10.0.0.1:7400"))
            .apply(&mut state)
            .expect("node");
        let revision = state.policy_revision;
        let report = |workloads| {
            Command::ReportInventory(NodeInventory {
                node: NodeId(1),
                reported_ms: 5,
                workloads,
            })
        };
        let web = workload(Some("prod/web/frontend"), WorkloadStatus::Identified);
        report(vec![web.clone()]).apply(&mut state).expect("report");
        report(vec![web]).apply(&mut state).expect("again");
        assert_eq!(state.inventory[&NodeId(1)].workloads.len(), 1);
        assert_eq!(
            state.policy_revision, revision,
            "the kernel enforces the same"
        );

        let stranger = Command::ReportInventory(NodeInventory {
            node: NodeId(9),
            reported_ms: 5,
            workloads: vec![],
        });
        let err = stranger.apply(&mut state).expect_err("no node 9");
        assert_eq!(err.field, "node");
        let nameless = workload(None, WorkloadStatus::UnknownBinary);
        let bad = InventoryWorkload {
            exe: String::new(),
            ..nameless
        };
        let err = report(vec![bad]).apply(&mut state).expect_err("no exe");
        assert_eq!(err.field, "workloads[0].exe");
        assert_eq!(state.inventory[&NodeId(1)].workloads.len(), 1, "kept");

        Command::RemoveNode { id: NodeId(1) }
            .apply(&mut state)
            .expect("remove");
        assert!(state.inventory.is_empty());
    }
}
