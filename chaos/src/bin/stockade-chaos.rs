//! `stockade-chaos`: runs a Stockade cluster in network namespaces under a
//! client workload and seeded faults, checks what happened, and writes a
//! report. Exits non-zero when a checker fails.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use stockade_chaos::faults;
use stockade_chaos::run::{fresh_seed, run, Options};
use stockade_chaos::workload::WorkloadConfig;

/// Jepsen-style fault injection for Stockade clusters.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// One run: build the cluster, drive the workload, inject faults, check.
    Run(RunArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// Nodes in the cluster (3 to 9).
    #[arg(long, default_value_t = 5)]
    nodes: usize,
    /// Voters among them (odd); the rest are learners.
    #[arg(long)]
    voters: Option<usize>,
    /// How long faults are injected, in minutes (fractions allowed).
    #[arg(long, default_value_t = 10.0)]
    minutes: f64,
    /// The seed of every random choice; a failed run replays with it.
    #[arg(long)]
    seed: Option<u64>,
    /// Faults to choose from, comma-separated: names or the groups all,
    /// process, partitions, links.
    #[arg(long, default_value = "all")]
    faults: String,
    /// Concurrent clients.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Registers the clients write and read.
    #[arg(long, default_value_t = 8)]
    registers: u32,
    /// Sets the clients add to and read.
    #[arg(long, default_value_t = 2)]
    sets: u32,
    /// Pause between one client's operations, in milliseconds.
    #[arg(long, default_value_t = 20)]
    think_ms: u64,
    /// Shortest and longest fault, in seconds.
    #[arg(long, num_args = 2, default_values_t = [3.0, 10.0])]
    hold: Vec<f64>,
    /// Shortest and longest calm between faults, in seconds.
    #[arg(long, num_args = 2, default_values_t = [2.0, 5.0])]
    quiet: Vec<f64>,
    /// Where the report, history, timeline and node logs go.
    #[arg(long, default_value = "chaos-out")]
    out: PathBuf,
    /// The `stockade` binary (default: beside this one).
    #[arg(long)]
    stockade: Option<PathBuf>,
    /// The `stockade-netcheck` binary (default: beside this one).
    #[arg(long)]
    netcheck: Option<PathBuf>,
}

fn beside_me(name: &str) -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("finding this program")?;
    Ok(me.with_file_name(name))
}

fn seconds(pair: &[f64], what: &str) -> anyhow::Result<(Duration, Duration)> {
    match pair {
        [low, high] if 0.0 <= *low && low <= high => Ok((
            Duration::from_secs_f64(*low),
            Duration::from_secs_f64(*high),
        )),
        _ => anyhow::bail!(
            "--{what} needs two numbers of seconds, the first not above the second, got {pair:?}"
        ),
    }
}

fn main() -> ExitCode {
    match main_inner() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("stockade-chaos: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn main_inner() -> anyhow::Result<bool> {
    let Cli {
        command: Command::Run(args),
    } = Cli::parse();
    if !(args.minutes > 0.0 && args.minutes.is_finite()) {
        anyhow::bail!("--minutes must be a positive number, got {}", args.minutes);
    }
    let options = Options {
        nodes: args.nodes,
        voters: args.voters.unwrap_or(if args.nodes >= 5 { 5 } else { 3 }),
        duration: Duration::from_secs_f64(args.minutes * 60.0),
        seed: args.seed.unwrap_or_else(fresh_seed),
        faults: faults::parse_list(&args.faults)?,
        clients: args.clients,
        workload: WorkloadConfig {
            registers: args.registers,
            sets: args.sets,
            think: Duration::from_millis(args.think_ms),
        },
        hold: seconds(&args.hold, "hold")?,
        quiet: seconds(&args.quiet, "quiet")?,
        out: args.out,
        stockade: args.stockade.map_or_else(|| beside_me("stockade"), Ok)?,
        netcheck: args
            .netcheck
            .map_or_else(|| beside_me("stockade-netcheck"), Ok)?,
    };
    // Ctrl-C ends the faults early; the run still heals, checks and
    // removes everything it made.
    let interrupt = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&interrupt))
            .context("installing the Ctrl-C handler")?;
    }
    eprintln!(
        "stockade-chaos: seed {} ({} nodes, {} voters, {:.1} min, faults {})",
        options.seed,
        options.nodes,
        options.voters,
        args.minutes,
        options
            .faults
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(",")
    );
    let report = run(&options, &interrupt)?;
    print!("{}", report.summary());
    println!("report: {}", options.out.display());
    Ok(report.passed())
}
