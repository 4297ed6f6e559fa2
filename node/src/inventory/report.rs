//! This node's inventory for the cluster: its workloads grouped by what
//! they run and who they are, reported through Raft when they change, at
//! most every few seconds.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use stockade_policy::{
    ClusterState, Command, InventoryWorkload, ListeningPort, NodeId, NodeInventory, WorkloadKey,
    WorkloadStatus, ZoneId, MAX_INVENTORY_WORKLOADS,
};
use tokio::sync::watch;

use crate::clock::now_ms;
use crate::cluster::ControlPlane;
use crate::dataplane::LocalView;

/// The shortest time between two reports.
const REPORT_AT_MOST_EVERY: Duration = Duration::from_secs(3);
/// Pids listed per workload.
const PIDS_LISTED: usize = 8;

/// Reports the inventory of each new view that differs from the last one
/// reported.
pub fn start(control: Arc<ControlPlane>, mut views: watch::Receiver<Arc<LocalView>>) {
    let node = NodeId(control.raft().id());
    tokio::spawn(async move {
        let mut reported: Option<Vec<InventoryWorkload>> = None;
        loop {
            if views.changed().await.is_err() {
                return;
            }
            let view = Arc::clone(&views.borrow_and_update());
            let workloads = control.with_state(|state| summarise(&view, state));
            let already = control.with_state(|state| {
                state
                    .inventory
                    .get(&node)
                    .is_some_and(|i| i.workloads == workloads)
            });
            if already || reported.as_ref() == Some(&workloads) {
                continue;
            }
            let report = Command::ReportInventory(NodeInventory {
                node,
                reported_ms: now_ms(),
                workloads: workloads.clone(),
            });
            match control.write(report).await {
                Ok(_) => reported = Some(workloads),
                Err(e) => tracing::warn!(error = %e, "cannot report this node's inventory"),
            }
            tokio::time::sleep(REPORT_AT_MOST_EVERY).await;
        }
    });
}

/// The workloads of `view`: processes grouped by executable, digest, user,
/// cgroup and subject, with their listening sockets. Stockade's own
/// processes are left out.
pub fn summarise(view: &LocalView, state: &ClusterState) -> Vec<InventoryWorkload> {
    let mut groups: BTreeMap<InventoryWorkload, (Vec<u32>, u32)> = BTreeMap::new();
    let mut pid_group: BTreeMap<u32, InventoryWorkload> = BTreeMap::new();
    for workload in &view.scan.workloads.workloads {
        let WorkloadKey::Process(pid) = workload.key else {
            continue;
        };
        if view.scan.workloads.daemon.contains(&workload.key) {
            continue;
        }
        let facts = &workload.facts;
        let exe = facts.exe_path.clone().unwrap_or_default();
        let subject = view.subjects.get(&workload.key);
        let identity = subject
            .filter(|s| s.identity.is_allocatable())
            .and_then(|s| state.identities.get(&s.identity))
            .map(|i| i.name.clone());
        let zone = identity.as_ref().map(|i| i.zone.clone()).or_else(|| {
            subject
                .and_then(|s| s.zone)
                .and_then(|z: ZoneId| state.zone_by_id(z))
                .map(|z| z.name.clone())
        });
        let status = match &identity {
            Some(_) => WorkloadStatus::Identified,
            None if state
                .fingerprints
                .values()
                .any(|f| f.path == exe && Some(f.sha256) != facts.exe_sha256) =>
            {
                WorkloadStatus::ModifiedBinary
            }
            None => WorkloadStatus::UnknownBinary,
        };
        let key = InventoryWorkload {
            exe,
            sha256: facts.exe_sha256,
            user: facts.user.clone(),
            cgroup: facts.cgroup_path.clone(),
            identity,
            zone,
            status,
            processes: 0,
            pids: Vec::new(),
            listening: Vec::new(),
        };
        let group = groups.entry(key.clone()).or_default();
        group.0.push(pid);
        group.1 += 1;
        pid_group.insert(pid, key);
    }
    let mut listening: BTreeMap<InventoryWorkload, Vec<ListeningPort>> = BTreeMap::new();
    for listener in &view.scan.listeners {
        if let Some(key) = pid_group.get(&listener.pid) {
            listening
                .entry(key.clone())
                .or_default()
                .push(ListeningPort {
                    protocol: listener.protocol,
                    ip: listener.ip,
                    port: listener.port,
                });
        }
    }
    let mut out: Vec<InventoryWorkload> = groups
        .into_iter()
        .map(|(key, (mut pids, processes))| {
            pids.sort_unstable();
            pids.truncate(PIDS_LISTED);
            let mut ports = listening.remove(&key).unwrap_or_default();
            ports.sort();
            ports.dedup();
            InventoryWorkload {
                processes,
                pids,
                listening: ports,
                ..key
            }
        })
        .collect();
    out.truncate(MAX_INVENTORY_WORKLOADS);
    out
}
