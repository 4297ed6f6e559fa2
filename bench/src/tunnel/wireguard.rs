//! The wireguard-go mode: userspace WireGuard on a TUN device in each of
//! the two hosts' namespaces, peered over the lab's bridge, with the
//! tunnel addresses `10.200.0.H/24`.
//!
//! wireguard-go serves its configuration socket at
//! `/var/run/wireguard/NAME.sock`, a path shared by every namespace of
//! the machine, so the interfaces get names unique to this run. Dropping
//! [`WireGuard`] stops both processes (SIGTERM, so they remove their
//! socket; SIGKILL if they linger) and removes a socket left behind.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use stockade_chaos::netlab::Lab;

use super::procs::Proc;
use crate::interrupt::Interrupt;

/// wireguard-go's UDP port in each namespace.
const LISTEN_PORT: u16 = 51820;
/// Where wireguard-go puts its configuration sockets.
const SOCKET_DIR: &str = "/var/run/wireguard";

/// The address of host `host` inside the tunnel.
pub fn tunnel_address(host: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 200, 0, u8::try_from(host).unwrap_or(u8::MAX))
}

/// Fails with the way to install them unless `wireguard-go` and `wg` run.
pub fn preflight() -> anyhow::Result<()> {
    for (tool, args) in [
        ("wireguard-go", &["--version"][..]),
        ("wg", &["--version"][..]),
    ] {
        let ok = Command::new(tool)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            bail!(
                "`{tool}` is missing: run scripts/setup.sh, which installs the Debian packages \
                 wireguard-go and wireguard-tools (or leave wireguard-go out of --modes)"
            );
        }
    }
    Ok(())
}

/// The first line of `wireguard-go --version` (its speed depends much on
/// it: releases from 2023 on use the TUN device's segmentation offloads).
pub fn version() -> Option<String> {
    let output = Command::new("wireguard-go")
        .arg("--version")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    Some(text.lines().next()?.trim().to_owned())
}

/// Two running wireguard-go peers.
pub struct WireGuard {
    // Dropped before the sockets are looked for.
    procs: Vec<(String, Proc)>,
    sockets: Vec<PathBuf>,
}

impl WireGuard {
    /// Brings up peers on `hosts` of `lab`; keys and logs go to `workdir`.
    pub fn start(
        lab: &Lab,
        hosts: [usize; 2],
        workdir: &Path,
        interrupt: &Interrupt,
    ) -> anyhow::Result<WireGuard> {
        let mut wg = WireGuard {
            procs: Vec::new(),
            sockets: Vec::new(),
        };
        let mut keys = Vec::new();
        for host in hosts {
            let private = run_stdout(Command::new("wg").arg("genkey"), None)?;
            let public = run_stdout(Command::new("wg").arg("pubkey"), Some(&private))?;
            let file = workdir.join(format!("wg-h{host}.key"));
            std::fs::write(&file, format!("{private}\n"))
                .with_context(|| format!("writing {}", file.display()))?;
            keys.push((file, public));
        }
        for host in hosts {
            let name = interface(host);
            let socket = Path::new(SOCKET_DIR).join(format!("{name}.sock"));
            if socket.exists() {
                bail!(
                    "{} exists already: another wireguard-go uses {name}",
                    socket.display()
                );
            }
            let mut command = Command::new("ip");
            command
                .args(["netns", "exec", &lab.netns(host), "wireguard-go", &name])
                .env("WG_PROCESS_FOREGROUND", "1");
            let log = workdir.join(format!("wireguard-go-h{host}.log"));
            let proc = Proc::spawn(&format!("wireguard-go on host {host}"), command, &log)?
                .with_grace(Duration::from_secs(2));
            wg.sockets.push(socket.clone());
            wg.procs.push((format!("wireguard-go h{host}"), proc));
            let start = Instant::now();
            while !socket.exists() {
                interrupt.check()?;
                let Some((_, proc)) = wg.procs.last_mut() else {
                    bail!("no process")
                };
                if !proc.is_running() || start.elapsed() > Duration::from_secs(10) {
                    bail!(
                        "wireguard-go on host {host} did not come up: {}",
                        proc.log()
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        for (i, host) in hosts.iter().enumerate() {
            let peer = hosts[1 - i];
            let (key_file, _) = &keys[i];
            let (_, peer_public) = &keys[1 - i];
            let name = interface(*host);
            let endpoint = SocketAddr::from((lab.address(peer), LISTEN_PORT));
            let in_ns = |args: &[&str]| {
                let mut command = Command::new("ip");
                command
                    .args(["netns", "exec", &lab.netns(*host)])
                    .args(args);
                run_stdout(&mut command, None)
            };
            in_ns(&[
                "wg",
                "set",
                &name,
                "private-key",
                &key_file.to_string_lossy(),
                "listen-port",
                &LISTEN_PORT.to_string(),
                "peer",
                peer_public,
                "allowed-ips",
                &format!("{}/32", tunnel_address(peer)),
                "endpoint",
                &endpoint.to_string(),
            ])?;
            in_ns(&[
                "ip",
                "addr",
                "add",
                &format!("{}/24", tunnel_address(*host)),
                "dev",
                &name,
            ])?;
            in_ns(&["ip", "link", "set", &name, "up"])?;
        }
        Ok(wg)
    }

    /// The wireguard-go processes, by name, with their pids.
    pub fn pids(&self) -> Vec<(String, u32)> {
        self.procs
            .iter()
            .map(|(n, p)| (n.clone(), p.pid()))
            .collect()
    }
}

impl Drop for WireGuard {
    fn drop(&mut self) {
        self.procs.clear();
        for socket in &self.sockets {
            if socket.exists() {
                if let Err(e) = std::fs::remove_file(socket) {
                    eprintln!("cleanup: removing {}: {e}", socket.display());
                }
            }
        }
    }
}

/// The name of host `host`'s interface, unique to this run (at most 15
/// characters).
fn interface(host: usize) -> String {
    format!("tbwg{}h{host}", std::process::id() % 10_000_000)
}

/// Runs `command` (with `input` on its stdin) and returns its stdout,
/// trimmed; fails with its stderr.
fn run_stdout(command: &mut Command, input: Option<&str>) -> anyhow::Result<String> {
    use std::io::Write;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {command:?}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        if let Some(input) = input {
            stdin
                .write_all(format!("{input}\n").as_bytes())
                .with_context(|| format!("writing to {command:?}"))?;
        }
    }
    let output = child
        .wait_with_output()
        .with_context(|| format!("waiting for {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}
