//! Checks of a node's inventory report. It comes from a node, not a
//! person, but a buggy or compromised node must not be able to bloat the
//! replicated state or write in another node's name.

use super::{fail, Result};
use crate::state::ClusterState;
use crate::{NodeInventory, MAX_INVENTORY_WORKLOADS};

/// The longest path, user or cgroup accepted.
const MAX_TEXT_LEN: usize = 4096;
/// Pids listed per workload at most.
const MAX_PIDS: usize = 64;
/// Listening sockets listed per workload at most.
const MAX_LISTENING: usize = 1024;

pub(super) fn report(report: &NodeInventory, state: &ClusterState) -> Result {
    if !state.nodes.contains_key(&report.node) {
        return fail("node", format!("there is no node {}", report.node));
    }
    if report.workloads.len() > MAX_INVENTORY_WORKLOADS {
        return fail(
            "workloads",
            format!(
                "{} workloads; a node reports at most {MAX_INVENTORY_WORKLOADS}",
                report.workloads.len()
            ),
        );
    }
    for (i, workload) in report.workloads.iter().enumerate() {
        let field = |name: &str| format!("workloads[{i}].{name}");
        let texts = [
            ("exe", Some(&workload.exe)),
            ("user", workload.user.as_ref()),
            ("cgroup", workload.cgroup.as_ref()),
            ("zone", workload.zone.as_ref()),
        ];
        for (name, text) in texts {
            if text.is_some_and(|t| t.len() > MAX_TEXT_LEN || t.chars().any(char::is_control)) {
                return fail(
                    field(name),
                    format!("at most {MAX_TEXT_LEN} printable characters"),
                );
            }
        }
        if workload.exe.is_empty() {
            return fail(field("exe"), "a workload runs an executable");
        }
        if workload.pids.len() > MAX_PIDS {
            return fail(field("pids"), format!("at most {MAX_PIDS} pids are listed"));
        }
        if workload.listening.len() > MAX_LISTENING {
            return fail(
                field("listening"),
                format!("at most {MAX_LISTENING} sockets are listed"),
            );
        }
    }
    Ok(())
}
