//! Identify: what runs and how it talks (ID.AM).

use stockade_policy::WorkloadStatus;

use crate::evidence::Evidence;
use crate::report::Finding;

/// Met when every member has reported its inventory and every workload
/// running is identified; partly met when some are reported.
pub(super) fn inventory(e: &Evidence<'_>) -> Finding {
    let state = e.state;
    let reported = state.inventory.len();
    let members = state.nodes.len();
    let workloads = state.inventory.values().flat_map(|i| &i.workloads);
    let (mut identified, mut unknown, mut modified) = (0, 0, 0);
    for w in workloads {
        match w.status {
            WorkloadStatus::Identified => identified += 1,
            WorkloadStatus::UnknownBinary => unknown += 1,
            WorkloadStatus::ModifiedBinary => modified += 1,
        }
    }
    let mut f = Finding::new();
    f.fact(format!(
        "nodes that have reported the processes they run: {reported} of {members}"
    ));
    f.fact(format!(
        "workloads running: {}, with a registered identity: {identified}, unknown binaries: {unknown}, modified binaries: {modified}",
        identified + unknown + modified
    ));
    f.fact(format!("identities defined: {}", state.identities.len()));
    if reported < members {
        f.gap("some nodes have not reported an inventory yet (a node without a dataplane reports none)");
    }
    if unknown + modified > 0 {
        f.gap(
            "identify or remove the unknown and modified binaries (stockade inventory --unknown)",
        );
    }
    f.judge(
        reported == members && members > 0 && unknown + modified == 0,
        reported > 0,
    )
}

/// Met when every node's flow log was read and flows were recorded.
pub(super) fn flow_map(e: &Evidence<'_>) -> Finding {
    let flows = &e.flows;
    let mut f = Finding::new();
    f.fact(format!(
        "nodes whose flow logs were read: {} of {}, over the last {}",
        flows.answered.len(),
        flows.answered.len() + flows.missing.len(),
        humantime::format_duration(std::time::Duration::from_millis(flows.window_ms))
    ));
    f.fact(format!(
        "flows recorded at egress: {}; learned baseline edges: {}",
        flows.tally.flows,
        e.state.baseline.edges.len()
    ));
    if !flows.missing.is_empty() {
        f.gap("some nodes' flow logs could not be read");
    }
    if flows.tally.flows == 0 {
        f.gap("no flow has been recorded in the window: no workload is enforced yet");
    }
    f.judge(
        flows.missing.is_empty() && flows.tally.flows > 0,
        !flows.answered.is_empty() && flows.tally.flows > 0,
    )
}
