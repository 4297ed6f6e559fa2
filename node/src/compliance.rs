//! The evidence for the HIPAA / NIST CSF report, gathered from the live
//! cluster: this node's applied state, and every node asked over QUIC about
//! its dataplane and for counts of its flow log. The judging and the
//! signing are `stockade_compliance`'s.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use stockade_compliance::{
    Evidence, FlowEvidence, FlowTally, HipaaReport, MemberAnswer, MemberEvidence,
};
use stockade_policy::NodeId;

use crate::cluster::ControlPlane;
use crate::flows::query::{fan_out, local_flow_tally, FanOut, NodeQuery};
use crate::report::{local_report, NodeReport};

/// The flow window a report reads when none is asked for.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// The longest flow window a report may read.
pub const MAX_WINDOW: Duration = Duration::from_secs(90 * 24 * 3600);

/// Makes the report from what the cluster says now, reading flow logs
/// `window` back.
pub async fn make_report(
    control: &Arc<ControlPlane>,
    window: Duration,
) -> anyhow::Result<HipaaReport> {
    let now_ms = crate::clock::now_ms();
    let since_ms = now_ms.saturating_sub(window.as_millis() as u64);
    let reports = fan_out(control, None, NodeQuery::Report, |control| {
        Ok::<_, String>(local_report(control))
    });
    let tallies = fan_out(
        control,
        None,
        NodeQuery::FlowTally { since_ms },
        move |control| local_flow_tally(control, since_ms),
    );
    let (reports, tallies): (FanOut<NodeReport>, FanOut<FlowTally>) =
        tokio::join!(reports, tallies);

    let (applied_index, state) = control.applied_state();
    let members = state
        .nodes
        .values()
        .map(|node| MemberEvidence {
            node: node.id,
            name: node.name.clone(),
            answer: reports
                .answers
                .iter()
                .find(|(id, _)| *id == node.id)
                .map(|(_, r)| MemberAnswer {
                    applied_index: r.applied_index,
                    dataplane_index: r.dataplane_index,
                    dataplane_error: r.dataplane_error.clone(),
                }),
        })
        .collect();
    let mut tally = FlowTally::default();
    for (_, t) in &tallies.answers {
        tally.merge(t);
    }
    let flows = FlowEvidence {
        window_ms: window.as_millis() as u64,
        answered: tallies.answers.iter().map(|(id, _)| *id).collect(),
        missing: tallies.missing.iter().map(|m| m.node).collect(),
        tally,
    };
    let node = NodeId(control.raft().id());
    // Judging proposes rules for every zone: on a large cluster that is
    // tens of milliseconds of CPU, kept off the async workers.
    tokio::task::spawn_blocking(move || {
        HipaaReport::make(&Evidence {
            state: &state,
            applied_index,
            now_ms,
            node,
            members,
            flows,
        })
    })
    .await
    .context("the report task stopped")?
    .map_err(anyhow::Error::from)
}
