//! `stockade-tunnel-bench`: what encrypting east-west traffic costs.
//!
//! Between two hosts of a lab (network namespaces on a private bridge),
//! in the same run, over three paths: plain TCP, userspace WireGuard
//! (wireguard-go), and Stockade with an `encrypt` rule (the Noise tunnel
//! between the nodes). For each: one TCP stream's throughput for
//! `--seconds`, the CPU it costs (the whole machine's and each party's),
//! and the latency of `--connections` sequential short connections. And
//! one core's ChaCha20-Poly1305 speed, the reference a tunnel is held to.
//!
//! The traffic's ends are this executable again (`helper` subcommands),
//! run in the hosts' namespaces — in workload cgroups for Stockade.
//! Namespaces, processes, cgroups and temporary directories are removed at
//! the end, on error and on Ctrl-C (by the guards' `Drop`).

#[path = "../interrupt.rs"]
mod interrupt;
#[path = "../tunnel/mod.rs"]
mod tunnel;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::interrupt::{Interrupt, Interrupted};
use crate::tunnel::helper::Helper;
use crate::tunnel::{report, Mode, Settings};

/// Compare one TCP stream and short connections between two network
/// namespaces in plaintext, through wireguard-go and through Stockade's
/// encrypted tunnel. Needs root; builds everything it uses and removes it.
#[derive(Debug, Parser)]
#[command(name = "stockade-tunnel-bench")]
struct Args {
    /// The paths to measure, comma-separated, in this order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "plain,wireguard-go,stockade"
    )]
    modes: Vec<Mode>,
    /// Seconds of the throughput transfer of each mode.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Sequential connections whose setup latency is measured, per mode.
    #[arg(long, default_value_t = 300)]
    connections: usize,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// The `stockade` binary [default: next to this one].
    #[arg(long)]
    stockade: Option<PathBuf>,
    /// Seconds of the single-core ChaCha20-Poly1305 measurement (0 skips it).
    #[arg(long, default_value_t = 2.0)]
    cipher_seconds: f64,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The traffic's ends, run by the bench itself inside the lab.
    #[command(hide = true, subcommand)]
    Helper(Helper),
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(Command::Helper(helper)) = &args.command {
        return match tunnel::helper::run(helper) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("helper: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.chain().any(|c| c.is::<Interrupted>()) => {
            eprintln!("stockade-tunnel-bench: interrupted; cleaned up");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("stockade-tunnel-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.seconds > 0.0 && args.seconds.is_finite(),
        "--seconds must be positive"
    );
    anyhow::ensure!(args.connections >= 1, "--connections must be at least 1");
    let mut modes: Vec<Mode> = Vec::new();
    for mode in &args.modes {
        if !modes.contains(mode) {
            modes.push(*mode);
        }
    }
    let interrupt = Interrupt::install().context("installing signal handlers")?;
    tunnel::preflight(&modes)?;
    let stockade = if modes.contains(&Mode::Stockade) {
        Some(tunnel::stockade::locate(args.stockade.as_deref())?)
    } else {
        None
    };
    let settings = Settings {
        seconds: args.seconds,
        connections: args.connections,
        stockade,
    };
    tunnel::warn_if_busy();

    let chacha = if args.cipher_seconds > 0.0 {
        let c = tunnel::chacha::measure(Duration::from_secs_f64(args.cipher_seconds))?;
        eprintln!(
            "ChaCha20-Poly1305, one core: {:.2} GB/s ({:.2} Gbit/s)",
            c.gbytes(),
            c.gbits()
        );
        Some(c)
    } else {
        None
    };
    let mut results = Vec::new();
    let mut outcome = Ok(());
    for &mode in &modes {
        eprintln!("{}: measuring", mode.name());
        match tunnel::run_mode(mode, &settings, &interrupt) {
            Ok(result) => {
                eprintln!(
                    "{}: {:.2} Gbit/s, setup p50 {} µs",
                    mode.name(),
                    result.gbits(),
                    result.setup.p50_us
                );
                results.push(result);
            }
            Err(e) => {
                outcome = Err(e.context(format!("mode {}", mode.name())));
                break;
            }
        }
    }
    let wg_version = modes
        .contains(&Mode::WireguardGo)
        .then(tunnel::wireguard::version)
        .flatten();
    if !results.is_empty() {
        println!("{}", report::text(&results, chacha.as_ref(), args.seconds));
        if let Some(version) = &wg_version {
            println!("{version}");
        }
    }
    if let Some(path) = &args.json {
        let mut json = report::json(&results, chacha.as_ref(), args.seconds);
        json["wireguard_go_version"] = serde_json::json!(wg_version);
        let text = serde_json::to_string_pretty(&json).context("serialising the report")?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    outcome
}
