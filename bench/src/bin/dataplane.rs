//! `stockade-dataplane-bench`: what Stockade's dataplane costs and how fast
//! and how lean its control plane is, on this machine.
//!
//! 1. `conns`: TCP connections per second between two network namespaces
//!    over a veth pair, with no firewall, with Stockade's eBPF dataplane
//!    holding 1, 10 000 and 100 000 rules, and with 10 000 iptables rules
//!    or nftables set entries.
//! 2. `latency`: on a 3-node cluster, the time from a rule's API write to
//!    its verdict in the kernel policy map of every node.
//! 3. `memory`: on that cluster, each daemon's resident memory with 10 000
//!    identities and 100 000 rules.
//! 4. `alerts`: on a cluster of its own, the time from a denied `connect()`
//!    to its alert at a webhook sink, in steady state and across a kill -9
//!    of the leader.
//! 5. `flows`: on a cluster of its own, one node's flow pipeline under a
//!    steady 20 000 new connections per second, allowed (learning) and
//!    then denied (enforcing): events read and lost, the daemon's CPU, and
//!    the flow log's bytes.
//!
//! Namespaces, cgroups, pins, processes and netfilter rules are all removed
//! at the end, on error and on Ctrl-C (by the guards' `Drop`).

#[path = "../client.rs"]
mod client;
#[path = "../dataplane/mod.rs"]
mod dataplane;
#[path = "../interrupt.rs"]
mod interrupt;
#[path = "../netns.rs"]
mod netns;
#[path = "../stockade.rs"]
mod stockade;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use stockade_chaos::netlab::Lab;

use crate::dataplane::{alerts, conns, flows, latency, memory, report};
use crate::interrupt::{Interrupt, Interrupted};
use crate::stockade::{tail, StockadeCluster, HOSTS};

/// A measurement `--only` can pick.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Measurement {
    /// Connections per second over a veth pair.
    Conns,
    /// API write to kernel map on every node.
    Latency,
    /// Daemon memory with many identities and rules.
    Memory,
    /// Denied connect to its alert at a sink, steady and across a failover.
    Alerts,
    /// One node's flow pipeline under a steady rate of new connections.
    Flows,
}

/// What Stockade's dataplane costs, and how fast and lean its control
/// plane is. Needs root; builds everything it uses in namespaces it
/// creates, and removes it.
#[derive(Debug, Parser)]
#[command(name = "stockade-dataplane-bench")]
struct Args {
    /// Run only these measurements (comma-separated); all by default.
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Measurement>,
    /// Connections per measured run.
    #[arg(long, default_value_t = 20_000)]
    connections: u64,
    /// Measured runs per configuration; the table shows the median.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Unmeasured connections before each configuration's runs.
    #[arg(long, default_value_t = 2_000)]
    warmup: u64,
    /// Stockade configurations: rules in the policy trie, the allow rule
    /// of the measured flow included (so at least 1).
    #[arg(long, value_delimiter = ',', default_values_t = [1, 10_000, 100_000])]
    rules: Vec<usize>,
    /// Rules of the iptables chain and addresses of the nftables set.
    #[arg(long, default_value_t = 10_000)]
    netfilter_rules: usize,
    /// Rule writes whose latency is measured.
    #[arg(long, default_value_t = 200)]
    writes: usize,
    /// Identities loaded for the memory measurement.
    #[arg(long, default_value_t = 10_000)]
    identities: usize,
    /// Rules loaded for the memory measurement.
    #[arg(long, default_value_t = 100_000)]
    memory_rules: usize,
    /// Concurrent API clients loading them.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Denied connects whose alert latency is measured in steady state.
    #[arg(long, default_value_t = 200)]
    alert_samples: usize,
    /// New connections per second of the flow measurement.
    #[arg(long, default_value_t = 20_000)]
    flow_rate: u64,
    /// Seconds of load of each of its phases.
    #[arg(long, default_value_t = 20)]
    flow_seconds: u64,
    /// Client processes sharing the flow measurement's rate.
    #[arg(long, default_value_t = 4)]
    flow_clients: u64,
    /// Minutes the loading may take; what is not written by then is left
    /// out (the table says how much was loaded).
    #[arg(long, default_value_t = 30)]
    budget_minutes: u64,
    /// The `stockade` binary [default: next to this one].
    #[arg(long)]
    stockade: Option<PathBuf>,
    /// The `stockade-netcheck` binary [default: next to this one].
    #[arg(long)]
    netcheck: Option<PathBuf>,
    /// Where the nodes' data directories go [default: $TMPDIR].
    #[arg(long)]
    work_dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.chain().any(|c| c.is::<Interrupted>()) => {
            eprintln!("stockade-dataplane-bench: interrupted; cleaned up");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("stockade-dataplane-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `explicit`, or the binary `name` next to this executable.
fn sibling(explicit: Option<&Path>, name: &str) -> anyhow::Result<PathBuf> {
    let path = match explicit {
        Some(path) => path.to_owned(),
        None => std::env::current_exe()
            .context("finding this executable")?
            .with_file_name(name),
    };
    anyhow::ensure!(
        path.is_file(),
        "no {name} at {}: build with `cargo build --release -p stockade-node -p stockade-bpf \
         -p stockade-bench` (one target directory)",
        path.display()
    );
    Ok(path)
}

fn run(args: &Args) -> anyhow::Result<()> {
    let wanted = |m| args.only.is_empty() || args.only.contains(&m);
    anyhow::ensure!(
        args.rules.iter().all(|r| *r >= 1),
        "--rules counts the allow rule of the measured flow: at least 1"
    );
    anyhow::ensure!(args.repeats >= 1, "--repeats must be at least 1");
    let interrupt = Interrupt::install().context("installing signal handlers")?;
    anyhow::ensure!(
        nix::unistd::geteuid().is_root(),
        "needs root: the run creates namespaces, cgroups and eBPF programs"
    );
    let mut results = Results::default();
    let outcome = measure(args, wanted, &interrupt, &mut results);
    let mut table = report::table(
        results
            .conns
            .as_deref()
            .map(|c| (c, args.connections, args.repeats)),
        results.latency.as_ref(),
        results.memory.as_ref(),
    );
    if let Some(alerts) = &results.alerts {
        table.push_str(&alerts.to_string());
    }
    if let Some(flows) = &results.flows {
        table.push_str(&flows.to_string());
    }
    if !table.is_empty() {
        println!("{table}");
    }
    outcome
}

/// What has been measured so far (printed also when a later step fails).
#[derive(Default)]
struct Results {
    conns: Option<Vec<conns::Config>>,
    latency: Option<latency::Latency>,
    memory: Option<memory::Memory>,
    alerts: Option<alerts::Alerts>,
    flows: Option<flows::Flows>,
}

fn measure(
    args: &Args,
    wanted: impl Fn(Measurement) -> bool,
    interrupt: &Interrupt,
    results: &mut Results,
) -> anyhow::Result<()> {
    if wanted(Measurement::Conns) {
        let netcheck = sibling(args.netcheck.as_deref(), "stockade-netcheck")?;
        let plan = conns::Plan {
            connections: args.connections,
            repeats: args.repeats,
            warmup: args.warmup,
            stockade_rules: args.rules.clone(),
            netfilter_rules: args.netfilter_rules,
        };
        results.conns = Some(conns::measure(&plan, &netcheck, interrupt).context("conns")?);
    }
    let on_cluster = [
        Measurement::Latency,
        Measurement::Memory,
        Measurement::Alerts,
        Measurement::Flows,
    ];
    if !on_cluster.into_iter().any(&wanted) {
        return Ok(());
    }
    let binary = sibling(args.stockade.as_deref(), "stockade")?;
    let base = args.work_dir.clone().unwrap_or_else(std::env::temp_dir);
    let workdir = tempfile::Builder::new()
        .prefix("stockade-dataplane-bench-")
        .tempdir_in(&base)
        .with_context(|| format!("creating a work directory in {}", base.display()))?;
    if wanted(Measurement::Latency) || wanted(Measurement::Memory) {
        let lab = Lab::new(HOSTS.len()).context("building the lab")?;
        eprintln!("cluster: forming 3 nodes with {}", binary.display());
        let cluster = StockadeCluster::start(&lab, &binary, &[], workdir.path(), interrupt)?;
        if wanted(Measurement::Latency) {
            let measured = latency::measure(&cluster, &lab, args.writes, interrupt)
                .context("latency")
                .map_err(|e| with_logs(&cluster, e))?;
            results.latency = Some(measured);
        }
        if wanted(Measurement::Memory) {
            let plan = memory::Plan {
                identities: args.identities,
                rules: args.memory_rules,
                concurrency: args.concurrency,
                budget: Duration::from_secs(args.budget_minutes * 60),
            };
            let measured = memory::measure(&cluster, &lab, &plan, interrupt)
                .context("memory")
                .map_err(|e| with_logs(&cluster, e))?;
            results.memory = Some(measured);
        }
    }
    if wanted(Measurement::Alerts) {
        // A cluster of its own: the measurement kills its leader, and its
        // figures must not depend on what the others loaded. Host 4 holds
        // the sink.
        let netcheck = sibling(args.netcheck.as_deref(), "stockade-netcheck")?;
        let lab = Lab::new(HOSTS.len() + 1).context("building the lab")?;
        eprintln!("alerts: forming 3 nodes with {}", binary.display());
        let dir = workdir.path().join("alerts");
        let cluster = StockadeCluster::start(&lab, &binary, &[], &dir, interrupt)?;
        let measured = alerts::measure(&cluster, &lab, &netcheck, args.alert_samples, interrupt)
            .context("alerts")
            .map_err(|e| with_logs(&cluster, e))?;
        results.alerts = Some(measured);
    }
    if wanted(Measurement::Flows) {
        let netcheck = sibling(args.netcheck.as_deref(), "stockade-netcheck")?;
        let lab = Lab::new(HOSTS.len()).context("building the lab")?;
        eprintln!("flows: forming 3 nodes with {}", binary.display());
        let dir = workdir.path().join("flows");
        let cluster = StockadeCluster::start(&lab, &binary, &[], &dir, interrupt)?;
        let plan = flows::Plan {
            rate: args.flow_rate,
            seconds: args.flow_seconds,
            clients: args.flow_clients,
        };
        let measured = flows::measure(&cluster, &lab, &netcheck, &plan, interrupt)
            .context("flows")
            .map_err(|e| with_logs(&cluster, e))?;
        results.flows = Some(measured);
    }
    Ok(())
}

/// `e`, after printing the end of every node's log unless the run was
/// interrupted.
fn with_logs(cluster: &StockadeCluster, e: anyhow::Error) -> anyhow::Error {
    if !e.chain().any(|c| c.is::<Interrupted>()) {
        for h in HOSTS {
            eprintln!(
                "--- node {h} log (end) ---\n{}",
                tail(&cluster.nodes().log(h))
            );
        }
    }
    e
}
