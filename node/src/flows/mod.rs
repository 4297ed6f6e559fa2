//! Process-level flow logs: the kernel counts every decided flow in its
//! summaries (by process, both identities, the far address, port and
//! verdict); this module reads them every few seconds into flow records,
//! keeps them in a durable log, feeds live subscribers and the baseline,
//! and answers queries from the whole cluster.

mod collect;
pub mod hits;
mod learn;
pub mod names;
pub mod query;
mod store;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context as _, Result};
use nix::time::{clock_gettime, ClockId};
use stockade_bpf::FlowSummaries;
use stockade_flowlog::Limits;
use stockade_policy::{ClusterState, FlowRecord, NodeId};
use tokio::sync::watch;

pub use collect::event_record;
pub use store::{FlowStatus, FlowStore};

use crate::alerts::observe::RecentExecs;
use crate::alerts::Raiser;
use crate::clock::now_ms;
use crate::cluster::ControlPlane;
use crate::dataplane::LocalView;
use collect::{Collected, Collector};
use learn::Learner;
use names::Namer;

/// How often the kernel's summaries are read.
const COLLECT_EVERY: Duration = Duration::from_secs(2);
/// How often learned edges are reported.
const LEARN_EVERY: Duration = Duration::from_secs(4);
/// How often the log is synced to disk.
const SYNC_EVERY: Duration = Duration::from_secs(10);

/// What the flow collector reads from.
pub struct Sources {
    /// The kernel's flow summaries.
    pub summaries: FlowSummaries,
    /// The reconciler's latest look at this node.
    pub view: watch::Receiver<Arc<LocalView>>,
    /// What the latest execs ran.
    pub recent: Arc<Mutex<RecentExecs>>,
    /// This node's address, for its workloads' end of a flow.
    pub address: IpAddr,
    /// Where the alerts of counted repeats go.
    pub raiser: Raiser,
}

/// Opens the flow log under `data_dir` and starts collecting into it
/// until `stop` turns true; the task then syncs the log and ends.
pub fn start(
    control: Arc<ControlPlane>,
    data_dir: &Path,
    sources: Sources,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>> {
    let dir = data_dir.join("flows");
    let store = Arc::new(
        FlowStore::open(&dir, Limits::default())
            .with_context(|| format!("opening the flow log in {}", dir.display()))?,
    );
    control.set_flows(Arc::clone(&store));
    Ok(tokio::spawn(collect_forever(control, store, sources, stop)))
}

async fn collect_forever(
    control: Arc<ControlPlane>,
    store: Arc<FlowStore>,
    sources: Sources,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let node = NodeId(control.raft().id());
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let users: BTreeMap<u32, String> = crate::inventory::procs::user_names(&passwd);
    let mut collector = Collector::default();
    let mut learner = Learner::default();
    let mut collect = tokio::time::interval(COLLECT_EVERY);
    let mut learn = tokio::time::interval(LEARN_EVERY);
    let mut sync = tokio::time::interval(SYNC_EVERY);
    loop {
        tokio::select! {
            // The guard wait_for returns must not live across the awaits
            // of the other branches.
            () = async { drop(stop.wait_for(|stop| *stop).await) } => break,
            _ = collect.tick() => {
                // Reading thousands of summaries is thousands of syscalls:
                // off the async workers, like the file writes below.
                let Some(records) = tokio::task::block_in_place(|| {
                    collect_once(&control, &sources, &mut collector, &mut learner, &users)
                }) else {
                    continue;
                };
                let store = Arc::clone(&store);
                // File writes off the async workers.
                let _ = tokio::task::spawn_blocking(move || store.append(records)).await;
            }
            _ = learn.tick() => learner.report(&control, node).await,
            _ = sync.tick() => {
                let store = Arc::clone(&store);
                let _ = tokio::task::spawn_blocking(move || store.sync()).await;
            }
        }
    }
    let _ = tokio::task::spawn_blocking(move || store.sync()).await;
}

/// One collection: the summaries' news as records, whose repeats go to the
/// alert path and whose learning edges to the learner.
fn collect_once(
    control: &ControlPlane,
    sources: &Sources,
    collector: &mut Collector,
    learner: &mut Learner,
    users: &BTreeMap<u32, String>,
) -> Option<Vec<FlowRecord>> {
    let summaries = match sources.summaries.read() {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the flow summaries");
            return None;
        }
    };
    if let Some(store) = control.flows() {
        store.set_summaries(summaries.len());
    }
    let view = Arc::clone(&sources.view.borrow());
    let records = control.with_state(|state| {
        let recent = sources
            .recent
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let namer = Namer {
            state,
            view: &view,
            recent: &recent,
            node: NodeId(control.raft().id()),
            address: sources.address,
            users,
        };
        let collected = collector.collect(&summaries, &namer, boot_to_wall_ms());
        raise_repeats(&collected, state, &view, &sources.raiser);
        let records: Vec<FlowRecord> = collected.into_iter().map(|c| c.record).collect();
        learner.observe(&records, state);
        records
    });
    Some(records)
}

/// Hands the alert path the flows that only the summaries counted: the
/// repeats of denials (and of flows a zone alerts on), which the kernel
/// reports once as an event and then only counts.
fn raise_repeats(collected: &[Collected], state: &ClusterState, view: &LocalView, raiser: &Raiser) {
    for entry in collected {
        let count = entry.unreported();
        if count == 0 {
            continue;
        }
        if let Some(observation) =
            crate::alerts::observe::flow(&entry.record, state, &view.scan.workloads, count)
        {
            raiser.observe(observation);
        }
    }
}

/// Converts the kernel's boot-time nanoseconds to wall-clock milliseconds,
/// with the two clocks' offset as of now.
fn boot_to_wall_ms() -> impl Fn(u64) -> u64 {
    let boot_ms = clock_gettime(ClockId::CLOCK_BOOTTIME)
        .map(|t| t.tv_sec() as u64 * 1000 + t.tv_nsec() as u64 / 1_000_000)
        .unwrap_or(0);
    let offset = now_ms().saturating_sub(boot_ms);
    move |ns| offset + ns / 1_000_000
}
