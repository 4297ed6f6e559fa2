//! `stockade-bench`: write throughput and latency of a 3-node Stockade
//! cluster next to a 3-node etcd cluster, on the same lab, with the same
//! load.
//!
//! The run builds a lab of four hosts (network namespaces on a private
//! bridge, see `stockade_chaos::netlab`): hosts 1–3 run the cluster under
//! test, host 4 the load generator. The systems are measured one after the
//! other — Stockade's nodes are killed before etcd's members start — so they
//! never compete for the CPU. Every write goes to the leader of the system
//! under test. Processes, data directories and namespaces are removed at the
//! end, on error and on Ctrl-C (by the guards' `Drop`).

mod cli;
mod client;
mod etcd;
mod interrupt;
mod load;
mod netns;
mod preflight;
mod report;
mod stockade;
mod workload;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{anyhow, Context};
use clap::Parser;
use stockade_chaos::netlab::Lab;

use crate::cli::{Args, Plan, SystemArg};
use crate::etcd::EtcdCluster;
use crate::interrupt::{Interrupt, Interrupted};
use crate::load::PointResult;
use crate::report::SystemRun;
use crate::stockade::StockadeCluster;
use crate::workload::{ClientRecord, Target};

/// Hosts of the lab: three for the cluster under test, one for the load.
const LAB_HOSTS: usize = 4;
/// The host the load generator runs on.
const LOAD_HOST: usize = 4;

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.chain().any(|c| c.is::<Interrupted>()) => {
            eprintln!("stockade-bench: interrupted; cleaned up");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("stockade-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    let plan = args.plan()?;
    let interrupt = Interrupt::install().context("installing signal handlers")?;
    preflight::require_root()?;
    let mut systems: Vec<SystemArg> = Vec::new();
    for system in &args.systems {
        if !systems.contains(system) {
            systems.push(*system);
        }
    }
    let stockade_bin = if systems.contains(&SystemArg::Stockade) {
        Some(preflight::locate_stockade(args.stockade.as_deref())?)
    } else {
        None
    };
    if systems.contains(&SystemArg::Etcd) {
        eprintln!("etcd: {}", preflight::etcd_version(&args.etcd)?);
    }

    let base = args.work_dir.clone().unwrap_or_else(std::env::temp_dir);
    let mut workdir = tempfile::Builder::new()
        .prefix("stockade-bench-")
        .tempdir_in(&base)
        .with_context(|| format!("creating a work directory in {}", base.display()))?;
    workdir.disable_cleanup(args.keep);
    preflight::warn_if_tmpfs(workdir.path());
    preflight::warn_if_busy();
    let lab = Lab::new(LAB_HOSTS).context("building the lab")?;
    eprintln!(
        "plan: clients {:?}, {:?} warm-up + {:?} measured per point, records of {} bytes, \
         data in {}, load from host {LOAD_HOST} ({})",
        plan.clients,
        plan.warmup,
        plan.measure,
        ClientRecord::new(0, plan.record_bytes).len(),
        workdir.path().display(),
        lab.address(LOAD_HOST),
    );

    let mut runs = Vec::new();
    for system in systems {
        interrupt.check()?;
        let dir = workdir.path();
        runs.push(match system {
            SystemArg::Stockade => {
                let binary = stockade_bin
                    .as_deref()
                    .ok_or_else(|| anyhow!("no binary"))?;
                let node_args = &args.stockade_args;
                bench_stockade(
                    &lab,
                    binary,
                    node_args,
                    &dir.join("stockade"),
                    &plan,
                    &interrupt,
                )?
            }
            SystemArg::Etcd => bench_etcd(&lab, &args.etcd, &dir.join("etcd"), &plan, &interrupt)?,
        });
    }
    println!("{}", report::table(&runs));
    if args.keep {
        eprintln!("kept data and logs in {}", workdir.path().display());
    }
    Ok(())
}

fn bench_stockade(
    lab: &Lab,
    binary: &Path,
    node_args: &[String],
    dir: &Path,
    plan: &Plan,
    interrupt: &Interrupt,
) -> anyhow::Result<SystemRun> {
    eprintln!(
        "stockade: forming a 3-node cluster with {} {}",
        binary.display(),
        node_args.join(" ")
    );
    let cluster = StockadeCluster::start(lab, binary, node_args, dir, interrupt)?;
    let leader = cluster
        .leader()
        .context("the Stockade cluster has no leader")?;
    eprintln!("stockade: 3 voters, leader on host {leader}");
    let target = Target::Stockade {
        addr: cluster.api_addr(leader),
        token: cluster.admin_token().to_owned(),
    };
    let points = drive(lab, target, plan, interrupt)?;
    note_leader_change("stockade", leader, cluster.leader());
    Ok(SystemRun {
        system: "stockade",
        points,
    })
}

fn bench_etcd(
    lab: &Lab,
    binary: &Path,
    dir: &Path,
    plan: &Plan,
    interrupt: &Interrupt,
) -> anyhow::Result<SystemRun> {
    eprintln!("etcd: starting a 3-member cluster");
    let cluster = EtcdCluster::start(lab, binary, dir, interrupt)?;
    let leader = cluster.leader().context("the etcd cluster has no leader")?;
    eprintln!("etcd: 3 members, leader on host {leader}");
    let target = Target::Etcd {
        addr: cluster.client_addr(leader),
    };
    let points = drive(lab, target, plan, interrupt)?;
    note_leader_change("etcd", leader, cluster.leader());
    Ok(SystemRun {
        system: "etcd",
        points,
    })
}

fn note_leader_change(system: &str, before: usize, after: Option<usize>) {
    if after != Some(before) {
        eprintln!(
            "{system}: note: the leader moved during the run (host {before} -> {after:?}); \
             later writes were forwarded or failed"
        );
    }
}

/// Runs every point of `plan` against `target` from a thread inside the
/// load host's network namespace, with a single-threaded tokio runtime of
/// its own (the cluster needs the machine's other cycles).
fn drive(
    lab: &Lab,
    target: Target,
    plan: &Plan,
    interrupt: &Interrupt,
) -> anyhow::Result<Vec<PointResult>> {
    std::thread::scope(|scope| {
        let load = scope.spawn(|| -> anyhow::Result<Vec<PointResult>> {
            netns::enter(lab, LOAD_HOST)?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("building the load generator's runtime")?;
            let system = target.system();
            let target = Arc::new(target);
            // Client ids go on from point to point, so every record name is
            // new.
            let mut next_id = 0;
            let mut points = Vec::new();
            for &clients in &plan.clients {
                let ids = next_id..next_id + clients;
                next_id += clients;
                let point = runtime
                    .block_on(load::run_point(Arc::clone(&target), ids, plan, interrupt))
                    .with_context(|| format!("{system} with {clients} clients"))?;
                eprintln!(
                    "{system}: {clients} clients: {:.1} writes/s, {} errors{}",
                    point.writes_per_sec(),
                    point.errors,
                    point
                        .first_error
                        .as_ref()
                        .map(|e| format!(" (first: {e})"))
                        .unwrap_or_default()
                );
                points.push(point);
            }
            Ok(points)
        });
        load.join()
            .map_err(|_| anyhow!("the load generator panicked"))?
    })
}
