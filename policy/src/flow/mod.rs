//! Flow records: what each node saw of the traffic of its workloads.
//!
//! The kernel counts every flow it decides in a per-flow map. Every few
//! seconds a node folds those counters into one [`FlowRecord`] per kind of
//! flow (same ends, protocol, verdict and rule) over the window, and enriches
//! both ends with what it knows: identity, zone, node, process. Records are
//! the raw material of the flow log, of the [`FlowFilter`] queries people run
//! over it, and of the [topology](crate::topology()) graph.
//!
//! A connection between two Stockade nodes is recorded twice: as `egress` by
//! the caller's node and as `ingress` by the receiver's node. Records keep
//! both — each node only knows its half — and consumers that count
//! connections decide which half to trust (see [`crate::topology()`]).
//!
//! The JSON form of a record:
//!
//! ```json
//! {
//!   "node": 1, "first_ms": 1700000000000, "last_ms": 1700000005000,
//!   "direction": "egress", "protocol": "tcp",
//!   "src": { "ip": "10.0.0.1", "port": 0, "class": "workload",
//!            "identity": { "zone": "prod", "app": "web", "service": "front" },
//!            "zone": "prod", "node": 1,
//!            "process": { "pid": 812, "exe": "/usr/bin/web", "user": "www" } },
//!   "dst": { "ip": "10.0.0.2", "port": 8080, "class": "node", "node": 2 },
//!   "action": "allow", "rule": { "rule": 17 }, "connections": 42, "encrypted": true
//! }
//! ```
//!
//! `rule` is `{"rule": N}` for a user's rule, or the name of a built-in
//! reason: `"cluster_traffic"`, `"zone_isolation"`, `"zone_default"`,
//! `"egress_checked"`. Absent optional fields are left out.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::ids::{NodeId, RuleRef};
use crate::{Action, Direction, IdentityName, L4Protocol};

mod filter;
#[cfg(test)]
pub(crate) mod sample;

pub use filter::FlowFilter;

/// What one node recorded about one kind of flow over a window of time.
///
/// Every field is always written (absent values as `null`): nodes keep
/// records in a compact binary form that is not self-describing, where a
/// skipped field would shift every field after it.
///
/// One record stands for many connections so that the flow log grows with the
/// variety of traffic, not with its volume.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FlowRecord {
    /// The node whose hook saw the flows: the caller's node for `egress`,
    /// the receiver's for `ingress`.
    pub node: NodeId,
    /// When the first flow of the window was seen (ms since the Unix epoch).
    pub first_ms: u64,
    /// When the last flow of the window was seen (ms since the Unix epoch).
    pub last_ms: u64,
    /// Which side's hook decided and recorded: `egress` or `ingress`.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "egress"))]
    pub direction: Direction,
    /// `tcp` or `udp`.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "tcp"))]
    pub protocol: L4Protocol,
    /// The side that opened the flows.
    pub src: FlowPeer,
    /// The side they went to.
    pub dst: FlowPeer,
    /// What the dataplane did with them: `allow` or `deny`.
    pub action: Action,
    /// The rule, or built-in reason, that decided.
    #[cfg_attr(feature = "openapi", schema(schema_with = rule_ref_schema))]
    pub rule: RuleRef,
    /// TCP connections, or UDP datagrams, in the window.
    pub connections: u64,
    /// Whether the flows went through the Noise tunnel.
    pub encrypted: bool,
}

/// One end of a recorded flow, with everything the recording node knew
/// about it, so that the record still reads correctly once the workload is
/// gone or its identity has changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FlowPeer {
    /// Its address.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "10.0.0.1"))]
    pub ip: IpAddr,
    /// Its port; 0 when not known (e.g. a client's ephemeral port that was
    /// aggregated away).
    pub port: u16,
    /// What kind of peer the address is.
    pub class: PeerClass,
    /// Its identity, for a `workload`.
    #[serde(default)]
    pub identity: Option<IdentityName>,
    /// Its zone, also when it has no identity but its cgroup is in a zone.
    #[serde(default)]
    pub zone: Option<String>,
    /// The node this end runs on, when known.
    #[serde(default)]
    pub node: Option<NodeId>,
    /// The process, when the recording node runs it.
    #[serde(default)]
    pub process: Option<FlowProcess>,
}

impl FlowPeer {
    /// The zone of this end: its own, or its identity's.
    pub fn zone(&self) -> Option<&str> {
        self.zone
            .as_deref()
            .or_else(|| self.identity.as_ref().map(|i| i.zone.as_str()))
    }
}

/// What kind of peer an address is, as the recording node's ipcache knew it.
///
/// The class tells a reader (and the topology) whether an address without
/// an identity is a stranger from outside or an unidentified binary inside.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum PeerClass {
    /// A workload of the cluster with an identity.
    Workload,
    /// A workload of the cluster without identity (an unknown or modified
    /// binary).
    Unknown,
    /// An address outside the cluster.
    World,
    /// A Stockade node's address, where the process behind it is not known
    /// (typically the source of an inbound flow).
    Node,
    /// Stockade's own control-plane traffic.
    Cluster,
}

impl PeerClass {
    /// The class's name as the API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            PeerClass::Workload => "workload",
            PeerClass::Unknown => "unknown",
            PeerClass::World => "world",
            PeerClass::Node => "node",
            PeerClass::Cluster => "cluster",
        }
    }
}

/// The process behind one end of a flow, on the node that recorded it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FlowProcess {
    /// Its process id on that node.
    pub pid: u32,
    /// Its executable's path.
    pub exe: String,
    /// The user it runs as, when known.
    #[serde(default)]
    pub user: Option<String>,
}

/// The schema of a [`RuleRef`] as a record writes it: `{"rule": N}` or the
/// name of a built-in reason.
#[cfg(feature = "openapi")]
pub fn rule_ref_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};

    let user_rule = ObjectBuilder::new()
        .title(Some("UserRule"))
        .property(
            "rule",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(16)),
        )
        .required("rule");
    let built_in = ObjectBuilder::new()
        .title(Some("BuiltInReason"))
        .schema_type(Type::String)
        .enum_values(Some([
            "cluster_traffic",
            "zone_isolation",
            "zone_default",
            "egress_checked",
            "tunnel_unavailable",
        ]));
    let one_of = OneOfBuilder::new()
        .description(Some(
            "What decided: a user's rule (`{\"rule\": 17}`) or a built-in reason.",
        ))
        .item(user_rule)
        .item(built_in)
        .build();
    Schema::OneOf(one_of)
}

/// The schema of a list of [`RuleRef`]s, as a topology edge writes them.
#[cfg(feature = "openapi")]
pub(crate) fn rule_refs_schema() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::Array::new(rule_ref_schema())
}

#[cfg(all(test, feature = "openapi"))]
mod schema_tests {
    use utoipa::PartialSchema;

    use super::{FlowPeer, FlowRecord};

    #[test]
    fn the_schema_writes_addresses_as_strings_and_rules_as_either_form() {
        let peer = serde_json::to_value(FlowPeer::schema()).expect("schema as JSON");
        assert_eq!(peer["properties"]["ip"]["type"], "string");
        let schema = serde_json::to_value(FlowRecord::schema()).expect("schema as JSON");
        let properties = &schema["properties"];
        assert_eq!(properties["direction"]["type"], "string");
        assert_eq!(properties["protocol"]["type"], "string");
        let rule = &properties["rule"]["oneOf"];
        assert_eq!(rule[0]["properties"]["rule"]["type"], "integer");
        assert_eq!(rule[1]["enum"][2], "zone_default");
    }
}
