//! `stockade demo`: a whole cluster on this machine, within a minute.
//!
//! It builds three hosts in network namespaces ([`stockade_netlab`]), runs
//! a real `stockade` node on each, starts a small hospital application on
//! them (a portal, a records API registered by fingerprint, its database,
//! and a developer tool), and walks through learn → proposal → enforce.
//! Then intruders try their luck — an unregistered binary, a modified build
//! of the records API, the developer tool reaching for the database — and
//! each is blocked and alerted to a Slack-compatible receiver whose messages
//! are printed. It leaves the cluster running with the console URL and an
//! admin token printed; Ctrl-C while it runs, or `stockade demo --down`
//! later, removes everything it made.
//!
//! Everything has a fixed name, so `--down` finds it from another process:
//! the lab [`LAB_TAG`], the control cgroup [`CONTROL_CGROUP`] (the nodes and
//! the helper), and the demo's directory (`--dir`).

mod app;
mod cluster;
mod progress;
pub mod support;
mod walkthrough;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context as _, Result};
use stockade_netlab::Lab;

use crate::cli::DemoArgs;

/// The name every network namespace, cgroup and pin folder of the demo's
/// lab starts with.
pub const LAB_TAG: &str = "stockade-demo";
/// The cgroup (below the cgroup v2 root) of the demo's nodes and helper.
pub const CONTROL_CGROUP: &str = "stockade-demo-control";
/// How many hosts (and nodes) the demo runs.
pub const DEMO_HOSTS: usize = 3;
/// The port of the Slack-compatible receiver, on host 1.
pub const RECEIVER_PORT: u16 = 9099;
/// The admin API port of every node, on its host's address.
pub const API_PORT: u16 = 7480;
/// The QUIC port of every node.
pub const QUIC_PORT: u16 = 7400;
/// The admin token, in the demo's directory.
pub const TOKEN_FILE: &str = "admin-token";
/// The receiver's log of the messages it got, in the demo's directory.
pub const SLACK_LOG: &str = "slack.log";

/// Set by Ctrl-C (SIGINT) or SIGTERM: every wait of the demo gives up.
#[derive(Clone, Debug, Default)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    /// Raised on SIGINT and SIGTERM from now on.
    fn on_signals() -> Result<Interrupt> {
        let interrupt = Interrupt::default();
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(signal, Arc::clone(&interrupt.0))
                .context("handling Ctrl-C")?;
        }
        Ok(interrupt)
    }

    /// An error once the demo was interrupted.
    pub fn check(&self) -> Result<()> {
        if self.0.load(Ordering::Relaxed) {
            bail!("interrupted");
        }
        Ok(())
    }
}

/// `stockade demo [--down]`.
pub fn run(args: &DemoArgs) -> Result<ExitCode> {
    preflight()?;
    if args.down {
        let removed = down(&args.dir)?;
        if removed {
            println!("The demo is gone: its nodes, workloads, namespaces, cgroups, pins and {} were removed.", args.dir.display());
        } else {
            println!("No demo was running; nothing to remove.");
        }
        return Ok(ExitCode::SUCCESS);
    }
    if Lab::exists(LAB_TAG) || args.dir.exists() {
        bail!(
            "a demo is already here ({} or namespace {LAB_TAG}-br exists): \
             stop it with `stockade demo --down` first",
            args.dir.display()
        );
    }
    let interrupt = Interrupt::on_signals()?;
    let lab = Lab::create(LAB_TAG, DEMO_HOSTS).context("building the demo's hosts")?;
    match walkthrough::run(args, &lab, &interrupt) {
        Ok(summary) => {
            println!("{summary}");
            if args.follow {
                walkthrough::follow_alerts(&args.dir, &interrupt);
                println!("\nRemoving the demo…");
                teardown(lab, &args.dir);
                println!("Removed.");
            } else {
                lab.detach();
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            let interrupted = interrupt.check().is_err();
            if !interrupted {
                eprintln!("\nerror: {err:#}");
                cluster::print_log_tails(&args.dir);
            }
            println!("\nRemoving the demo…");
            teardown(lab, &args.dir);
            println!("Removed.");
            Ok(if interrupted {
                ExitCode::from(130)
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

/// The demo needs root and the tools that build its hosts.
fn preflight() -> Result<()> {
    if !nix::unistd::Uid::effective().is_root() {
        bail!("the demo builds network namespaces and loads eBPF programs: run it as root");
    }
    for tool in ["ip", "nsenter"] {
        let found = std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).exists()));
        if !found {
            bail!("`{tool}` is not installed (Debian: apt-get install iproute2 util-linux)");
        }
    }
    Ok(())
}

/// The control cgroup's path.
fn control_cgroup() -> Result<PathBuf> {
    Ok(stockade_bpf::cgroup2_root()
        .context("finding the cgroup v2 hierarchy")?
        .join(CONTROL_CGROUP))
}

/// Stops the nodes and the helper first (a node must not re-pin what the
/// lab is removing), then removes the lab and the demo's directory.
fn teardown(lab: Lab, dir: &Path) {
    if let Ok(control) = control_cgroup() {
        stockade_netlab::remove_cgroup_tree(&control);
    }
    drop(lab);
    if let Err(e) = std::fs::remove_dir_all(dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            eprintln!("removing {}: {e}", dir.display());
        }
    }
}

/// `stockade demo --down`: removes whatever of a demo is there; false when
/// nothing was.
fn down(dir: &Path) -> Result<bool> {
    let control = control_cgroup()?;
    let mut found = control.exists() || dir.exists();
    stockade_netlab::remove_cgroup_tree(&control);
    if let Some(lab) = Lab::existing(LAB_TAG).context("looking for the demo's hosts")? {
        found = true;
        drop(lab);
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    Ok(found)
}
