//! `stockade-tunnel-bench`: one TCP stream and a series of short
//! connections between two lab hosts, in plaintext, through wireguard-go,
//! and through Stockade's encrypted rule, in the same run; and one core's
//! ChaCha20-Poly1305 speed as the reference.
//!
//! Every mode builds a 2-host lab of its own (`stockade_chaos::netlab`),
//! so nothing of one mode (a TUN device, an eBPF program) is in the way of
//! the next; the lab, the processes and the temporary directory are
//! removed when the mode ends, by their guards' `Drop`, also on error and
//! on Ctrl-C.

pub mod chacha;
pub mod cpu;
pub mod helper;
pub mod measure;
pub mod procs;
pub mod report;
pub mod stockade;
pub mod wireguard;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use stockade_chaos::netlab::Lab;

use self::measure::{ModeResult, Route, CLIENT_HOST, SERVER_HOST, SERVER_PORT};
use crate::interrupt::Interrupt;

/// A path the traffic can take.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Plain TCP over the lab's veth pairs and bridge.
    Plain,
    /// Userspace WireGuard (wireguard-go) between the two hosts.
    WireguardGo,
    /// Stockade nodes, with an `encrypt` rule between the two workloads.
    Stockade,
}

impl Mode {
    /// Its name on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Plain => "plain",
            Mode::WireguardGo => "wireguard-go",
            Mode::Stockade => "stockade",
        }
    }
}

/// What every mode is run with.
pub struct Settings {
    /// Seconds of the throughput transfer.
    pub seconds: f64,
    /// Connections of the setup-latency series.
    pub connections: usize,
    /// The `stockade` binary, when the Stockade mode runs.
    pub stockade: Option<PathBuf>,
}

/// Fails unless the run can go: root, and the tools the modes need.
pub fn preflight(modes: &[Mode]) -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("needs root: the run creates network namespaces, TUN devices and cgroups");
    }
    for tool in ["ip", "nsenter"] {
        require_tool(tool, "iproute2 / util-linux")?;
    }
    if modes.contains(&Mode::WireguardGo) {
        wireguard::preflight()?;
    }
    if modes.contains(&Mode::Stockade) {
        require_tool("curl", "curl")?;
    }
    Ok(())
}

fn require_tool(tool: &str, package: &str) -> anyhow::Result<()> {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        bail!("`{tool}` is missing (Debian: {package}); scripts/setup.sh installs it");
    }
    Ok(())
}

/// Warns when other work keeps the machine more than a quarter busy: the
/// whole-machine CPU column counts it too.
pub fn warn_if_busy() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let Ok(before) = cpu::machine_ns() else {
        return;
    };
    std::thread::sleep(Duration::from_millis(500));
    let Ok(after) = cpu::machine_ns() else {
        return;
    };
    let share = after.saturating_sub(before) as f64 / (0.5e9 * cpus as f64);
    if share > 0.25 {
        eprintln!(
            "warning: the machine is {:.0}% busy before the run; the numbers (the machine's \
             CPU column above all) will be noisy",
            share * 100.0
        );
    }
}

/// Runs every measurement of `mode` in a lab of its own.
pub fn run_mode(
    mode: Mode,
    settings: &Settings,
    interrupt: &Interrupt,
) -> anyhow::Result<ModeResult> {
    let lab = Lab::new(2).context("building the lab")?;
    let workdir = tempfile::Builder::new()
        .prefix("stockade-tunnel-bench-")
        .tempdir()
        .context("creating a temporary directory")?;
    let server_addr = |ip| SocketAddr::from((ip, SERVER_PORT));
    let mut route = Route {
        lab: &lab,
        listen: server_addr(lab.address(SERVER_HOST)),
        target: server_addr(lab.address(SERVER_HOST)),
        cgroups: None,
        carriers: Vec::new(),
        workdir: workdir.path(),
    };
    let name = mode.name();
    match mode {
        Mode::Plain => {
            let mut server = route.start_server(interrupt)?;
            route.measure(
                name,
                &mut server,
                settings.seconds,
                settings.connections,
                interrupt,
            )
        }
        Mode::WireguardGo => {
            let wg = wireguard::WireGuard::start(
                &lab,
                [CLIENT_HOST, SERVER_HOST],
                workdir.path(),
                interrupt,
            )?;
            let tunnel = wireguard::tunnel_address(SERVER_HOST);
            route.listen = server_addr(tunnel);
            route.target = server_addr(tunnel);
            route.carriers = wg.pids();
            let mut server = route.start_server(interrupt)?;
            route.measure(
                name,
                &mut server,
                settings.seconds,
                settings.connections,
                interrupt,
            )
        }
        Mode::Stockade => {
            let binary = settings
                .stockade
                .as_deref()
                .context("no stockade binary was located")?;
            let cluster = stockade::Cluster::start(&lab, binary, workdir.path(), interrupt)?;
            let with_logs = |e: anyhow::Error| e.context(cluster.logs());
            cluster
                .write_policy(SERVER_PORT, interrupt)
                .map_err(with_logs)?;
            route.cgroups = Some((stockade::CLIENT, stockade::SERVER));
            route.carriers = cluster.pids();
            let mut server = route.start_server(interrupt)?;
            cluster
                .wait_for_server(SERVER_PORT, interrupt)
                .map_err(with_logs)?;
            cluster
                .wait_for_client(interrupt, || route.connect_echo(1, interrupt).map(drop))
                .map_err(with_logs)?;
            let mut result = route
                .measure(
                    name,
                    &mut server,
                    settings.seconds,
                    settings.connections,
                    interrupt,
                )
                .map_err(with_logs)?;
            result.tunnel_status = cluster.tunnel_status();
            // Figures of connections that went around the tunnel would be
            // plain TCP's under Stockade's name.
            let opened = result
                .tunnel_status
                .iter()
                .find(|(host, _)| *host == CLIENT_HOST)
                .and_then(|(_, t)| t["counters"]["sessions_opened"].as_u64())
                .unwrap_or(0);
            if opened == 0 {
                anyhow::bail!(
                    "the client's node opened no tunnel session: the stockade figures would not be the tunnel's\n{}",
                    cluster.logs()
                );
            }
            Ok(result)
        }
    }
}
