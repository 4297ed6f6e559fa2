//! Names for what the kernel counts in numbers: identities, zones, the
//! node an address belongs to, and the process behind a pid.

use std::collections::BTreeMap;
use std::net::IpAddr;

use stockade_policy::{
    ClusterState, EndpointKey, FlowPeer, FlowProcess, IdentityId, NodeId, PeerClass, WorkloadKey,
    ZoneId,
};

use crate::alerts::observe::RecentExecs;
use crate::dataplane::LocalView;

/// Gives the ends of a flow their names, from the applied state, the
/// reconciler's last look at the node and the latest execs.
pub struct Namer<'a> {
    /// The applied cluster state.
    pub state: &'a ClusterState,
    /// What runs on this node.
    pub view: &'a LocalView,
    /// What the latest execs ran.
    pub recent: &'a RecentExecs,
    /// This node.
    pub node: NodeId,
    /// This node's address, for its workloads' end of a flow.
    pub address: IpAddr,
    /// Users by uid, for processes the last scan did not see.
    pub users: &'a BTreeMap<u32, String>,
}

impl Namer<'_> {
    /// The end of a flow that runs here, as process `pid` (0: not known)
    /// with the kernel's identity and zone numbers.
    pub fn local_end(&self, identity: u32, zone: u32, port: u16, pid: u32) -> FlowPeer {
        let mut end = self.end(identity, zone, self.address, port);
        end.node = Some(self.node);
        end.process = (pid != 0).then(|| self.process(pid));
        end
    }

    /// The far end of a flow, at `ip`.
    pub fn remote_end(&self, identity: u32, zone: u32, ip: IpAddr, port: u16) -> FlowPeer {
        let mut end = self.end(identity, zone, ip, port);
        end.node = self.node_of(ip, port);
        end
    }

    fn end(&self, identity: u32, zone: u32, ip: IpAddr, port: u16) -> FlowPeer {
        let id = IdentityId(identity);
        let class = match id {
            IdentityId::WORLD => PeerClass::World,
            IdentityId::CLUSTER => PeerClass::Cluster,
            IdentityId::NODE => PeerClass::Node,
            IdentityId::UNKNOWN => PeerClass::Unknown,
            _ => PeerClass::Workload,
        };
        let name = id
            .is_allocatable()
            .then(|| self.state.identities.get(&id).map(|i| i.name.clone()))
            .flatten();
        let zone = name.as_ref().map(|n| n.zone.clone()).or_else(|| {
            (zone != 0)
                .then(|| self.state.zone_by_id(ZoneId(zone)).map(|z| z.name.clone()))
                .flatten()
        });
        FlowPeer {
            ip,
            port,
            class,
            identity: name,
            zone,
            node: None,
            process: None,
        }
    }

    /// The node an address belongs to: a published endpoint's, or a
    /// node's own address.
    fn node_of(&self, ip: IpAddr, port: u16) -> Option<NodeId> {
        let endpoint = |port| self.state.endpoints.get(&EndpointKey { ip, port });
        endpoint(Some(port))
            .or_else(|| endpoint(None))
            .map(|e| e.node)
            .or_else(|| {
                self.state
                    .nodes
                    .values()
                    .find(|n| n.address.ip() == ip)
                    .map(|n| n.id)
            })
    }

    /// What process `pid` runs: from the last scan, else its exec event,
    /// else `/proc` (it may have ended: then its exe is not known).
    fn process(&self, pid: u32) -> FlowProcess {
        let facts = self
            .view
            .scan
            .workloads
            .workloads
            .iter()
            .find(|w| w.key == WorkloadKey::Process(pid))
            .map(|w| &w.facts);
        let exe = facts
            .and_then(|f| f.exe_path.clone())
            .or_else(|| self.recent.path(pid).map(str::to_owned))
            .or_else(|| {
                std::fs::read_link(format!("/proc/{pid}/exe"))
                    .ok()
                    .map(|p| p.display().to_string())
            })
            .unwrap_or_default();
        let user = facts.and_then(|f| f.user.clone()).or_else(|| {
            crate::inventory::procs::uid_of(pid).and_then(|uid| self.users.get(&uid).cloned())
        });
        FlowProcess { pid, exe, user }
    }
}
