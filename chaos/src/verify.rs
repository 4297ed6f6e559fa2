//! The checks made once every fault has healed: the final reads, every
//! node's state machine, every node's kernel maps, the alerts' delivery,
//! and the nodes' logs.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use reqwest::Method;
use serde::Serialize;
use serde_json::Value;
use tokio::runtime::Runtime;

use crate::api::ApiClient;
use crate::history::{History, Op, Outcome};
use crate::netlab::Lab;
use crate::nodes::Nodes;
use crate::receiver::HttpReceiver;
use crate::workload::perform;

/// The client number of the final reads in the history.
pub const FINAL_CLIENT: usize = 1001;

/// How long the nodes get to agree once healed.
const AGREE_WITHIN: Duration = Duration::from_secs(60);

/// What the checks need.
pub struct Context<'a> {
    /// The harness's runtime.
    pub runtime: &'a Runtime,
    /// A client of every node's API.
    pub api: &'a ApiClient,
    /// The run's history (the final reads are recorded in it).
    pub history: &'a History,
    /// The node processes.
    pub nodes: &'a Nodes<'a>,
    /// Their lab.
    pub lab: &'a Lab,
    /// The cluster's hosts.
    pub hosts: &'a [usize],
    /// Registers to read (the workload's and the probes').
    pub registers: u32,
    /// Sets to read.
    pub sets: u32,
    /// The alert sink.
    pub sink: &'a HttpReceiver,
}

/// Every node's state machine.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StateCheck {
    /// Whether every node held the same state at the same index.
    pub identical: bool,
    /// Each host's applied index and state digest, as last seen.
    pub by_host: BTreeMap<usize, (u64, String)>,
}

/// One node's kernel maps against what its daemon compiled.
#[derive(Clone, Debug, Serialize)]
pub struct MapCheck {
    /// The host.
    pub host: usize,
    /// The digest of the maps `policy::compile` gave the daemon.
    pub compiled: String,
    /// The digest of the maps read from the kernel by the harness.
    pub kernel: String,
    /// Whether the compiled maps are those of the node's applied index.
    pub current: bool,
    /// Whether they agree.
    pub equal: bool,
}

/// The alerts against what the sink received.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AlertCheck {
    /// Alerts the cluster holds.
    pub raised: usize,
    /// Of those, alerts whose id the sink received.
    pub delivered: usize,
    /// Ids the sink never received.
    pub missing: Vec<String>,
    /// Whether the cluster said every sink was up to date.
    pub settled: bool,
}

/// Everything checked after healing.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Verified {
    /// Final reads that never succeeded.
    pub unread: Vec<String>,
    /// The state machines.
    pub state: StateCheck,
    /// The kernel maps.
    pub maps: Vec<MapCheck>,
    /// The alerts.
    pub alerts: AlertCheck,
    /// Panic lines in the nodes' logs.
    pub panics: Vec<String>,
}

/// Runs every check.
pub fn after_healing(ctx: &Context<'_>) -> Verified {
    let unread = final_reads(ctx);
    Verified {
        unread,
        state: state_machines(ctx),
        maps: kernel_maps(ctx),
        alerts: alerts(ctx),
        panics: panics(ctx),
    }
}

/// Reads every register and set linearizably once more, recorded in the
/// history: the reads the lost-write check compares with.
fn final_reads(ctx: &Context<'_>) -> Vec<String> {
    let ops = (0..ctx.registers)
        .map(|key| Op::Read {
            key,
            linearizable: true,
        })
        .chain((0..ctx.sets).map(|key| Op::ReadSet { key }));
    let mut unread = Vec::new();
    for op in ops {
        let mut done = false;
        for attempt in 0..20 {
            let host = ctx.hosts[attempt % ctx.hosts.len()];
            let entry = ctx.runtime.block_on(perform(
                ctx.api,
                ctx.history,
                FINAL_CLIENT,
                host,
                op.clone(),
            ));
            if entry.outcome == Outcome::Ok {
                done = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        if !done {
            unread.push(format!("{op:?}"));
        }
    }
    unread
}

fn statuses(ctx: &Context<'_>, path: &str) -> BTreeMap<usize, Value> {
    ctx.runtime.block_on(async {
        let calls = ctx.hosts.iter().map(|&h| async move {
            let answer = ctx.api.call(h, Method::GET, path, None).await;
            (h, answer.ok_body(200).cloned())
        });
        join_all(calls)
            .await
            .into_iter()
            .filter_map(|(h, v)| Some((h, v?)))
            .collect()
    })
}

/// Waits until every node reports the same state digest at the same
/// applied index.
fn state_machines(ctx: &Context<'_>) -> StateCheck {
    let deadline = Instant::now() + AGREE_WITHIN;
    loop {
        let by_host: BTreeMap<usize, (u64, String)> = statuses(ctx, "/v1/state/digest")
            .into_iter()
            .filter_map(|(h, v)| {
                Some((
                    h,
                    (
                        v["applied_index"].as_u64()?,
                        v["digest"].as_str()?.to_owned(),
                    ),
                ))
            })
            .collect();
        let first = by_host.values().next();
        let identical =
            by_host.len() == ctx.hosts.len() && by_host.values().all(|v| Some(v) == first);
        if identical || Instant::now() > deadline {
            return StateCheck { identical, by_host };
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Waits until every node's kernel maps hold what its daemon compiled
/// for its applied index; reads the maps from the pins itself.
fn kernel_maps(ctx: &Context<'_>) -> Vec<MapCheck> {
    let mut checks = Vec::new();
    for &host in ctx.hosts {
        let deadline = Instant::now() + AGREE_WITHIN;
        loop {
            let status = ctx
                .runtime
                .block_on(ctx.api.status(host))
                .unwrap_or_default();
            let dataplane = &status["dataplane"];
            let compiled = dataplane["maps_digest"].as_str().unwrap_or("").to_owned();
            let current = dataplane["index"].as_u64().is_some()
                && dataplane["index"] == status["applied_index"];
            let kernel = match stockade_bpf::read_pinned(&ctx.lab.pin_dir(host)) {
                Ok(maps) => maps.enforcement_digest(),
                Err(e) => format!("unreadable: {e}"),
            };
            let check = MapCheck {
                host,
                equal: !compiled.is_empty() && compiled == kernel,
                compiled,
                kernel,
                current,
            };
            if (check.equal && check.current) || Instant::now() > deadline {
                checks.push(check);
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    checks
}

/// Waits until the cluster says the sink is up to date, then looks for
/// every alert id in what the sink received.
fn alerts(ctx: &Context<'_>) -> AlertCheck {
    let host = ctx.hosts[0];
    let settled = crate::nodes::wait_for("the sink to be up to date", AGREE_WITHIN, || {
        let reply = ctx.runtime.block_on(ctx.api.call(
            host,
            Method::GET,
            "/v1/alerts?limit=1&consistency=linearizable",
            None,
        ));
        let done = reply.ok_body(200).is_some_and(|body| {
            body["sinks"]
                .as_array()
                .is_some_and(|s| !s.is_empty() && s.iter().all(|s| s["pending"] == 0))
        });
        (done.then_some(()), format!("{reply:?}"))
    })
    .is_ok();
    let mut ids = Vec::new();
    let mut after = 0;
    loop {
        let path = format!("/v1/alerts?after={after}&limit=1000&consistency=linearizable");
        let reply = ctx
            .runtime
            .block_on(ctx.api.call(host, Method::GET, &path, None));
        let batch = reply
            .ok_body(200)
            .and_then(|b| b["alerts"].as_array().cloned())
            .unwrap_or_default();
        let Some(last) = batch.last().and_then(|a| a["seq"].as_u64()) else {
            break;
        };
        after = last;
        ids.extend(
            batch
                .iter()
                .filter_map(|a| a["id"].as_str().map(str::to_owned)),
        );
    }
    let received: String = ctx
        .sink
        .received()
        .iter()
        .filter(|r| (200..300).contains(&r.status))
        .map(|r| r.body.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let missing: Vec<String> = ids
        .iter()
        .filter(|id| !crate::receiver::names_id(&received, id))
        .cloned()
        .collect();
    AlertCheck {
        raised: ids.len(),
        delivered: ids.len() - missing.len(),
        missing,
        settled,
    }
}

/// Lines of the nodes' logs where a thread panicked.
fn panics(ctx: &Context<'_>) -> Vec<String> {
    ctx.hosts
        .iter()
        .flat_map(|&host| {
            ctx.nodes
                .log(host)
                .lines()
                .filter(|l| l.contains("panicked at"))
                .map(|l| format!("host {host}: {l}"))
                .collect::<Vec<_>>()
        })
        .collect()
}
