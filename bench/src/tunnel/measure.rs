//! The measurements every mode shares: single-stream throughput with the
//! CPU it costs, and connection-setup latency, between a client on host 1
//! and a server on host 2 of the lab, over whatever path the mode built.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use hdrhistogram::Histogram;
use serde_json::Value;
use stockade_chaos::netlab::Lab;

use super::cpu;
use super::helper::READY;
use super::procs::Proc;
use crate::interrupt::Interrupt;

/// The host the client runs on.
pub const CLIENT_HOST: usize = 1;
/// The host the server runs on.
pub const SERVER_HOST: usize = 2;
/// The server's port in every mode.
pub const SERVER_PORT: u16 = 5201;
/// Connections made before the latency is measured (a tunnel's first
/// handshake, a cold ARP cache).
const WARMUP_CONNECTIONS: usize = 5;

/// Where the traffic runs in one mode.
pub struct Route<'a> {
    /// The lab.
    pub lab: &'a Lab,
    /// The address the server listens on (in host 2).
    pub listen: SocketAddr,
    /// The address the client connects to (from host 1).
    pub target: SocketAddr,
    /// The workload cgroups of the client and the server (below their
    /// host's cgroup), or `None` to run them in the namespace only.
    pub cgroups: Option<(&'a str, &'a str)>,
    /// Other processes that carry the traffic (wireguard-go, the Stockade
    /// daemons), by name, whose CPU time is reported too.
    pub carriers: Vec<(String, u32)>,
    /// Where the helpers' logs go.
    pub workdir: &'a Path,
}

/// One process's CPU time during the transfer.
#[derive(Clone, Debug)]
pub struct PartyCpu {
    /// What it is.
    pub name: String,
    /// User + system CPU time, in nanoseconds.
    pub ns: u64,
}

/// Connection-setup latency, in microseconds.
#[derive(Clone, Debug, Default)]
pub struct SetupLatency {
    /// Connections measured.
    pub count: u64,
    /// Median.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Mean.
    pub mean_us: f64,
    /// Slowest.
    pub max_us: u64,
}

/// What one mode measured.
#[derive(Clone, Debug)]
pub struct ModeResult {
    /// The mode's name.
    pub mode: String,
    /// Bytes the server received on the throughput connection.
    pub bytes: u64,
    /// Seconds from the server's accept to the end of the stream.
    pub secs: f64,
    /// Busy CPU time of the whole machine during the transfer, in ns.
    pub machine_cpu_ns: u64,
    /// CPU time of each party during the transfer.
    pub parties: Vec<PartyCpu>,
    /// Connection-setup latency.
    pub setup: SetupLatency,
    /// The nodes' `tunnel` status objects (Stockade only), by host.
    pub tunnel_status: Vec<(usize, Value)>,
}

impl ModeResult {
    /// Throughput in Gbit/s.
    pub fn gbits(&self) -> f64 {
        self.bytes as f64 * 8.0 / self.secs.max(1e-9) / 1e9
    }

    /// The parties' CPU time, summed, in ns.
    pub fn parties_cpu_ns(&self) -> u64 {
        self.parties.iter().map(|p| p.ns).sum()
    }
}

impl Route<'_> {
    /// A command that runs this executable's helper `args` on `host`, as a
    /// workload when the route says so.
    fn helper(&self, host: usize, args: &[String]) -> anyhow::Result<Command> {
        let exe = std::env::current_exe().context("finding this executable")?;
        let exe = exe.to_string_lossy();
        let mut command = match self.cgroups {
            Some((client, server)) => {
                let cgroup = if host == CLIENT_HOST { client } else { server };
                self.lab.workload(host, cgroup, &exe)
            }
            None => self.lab.command(host, &exe),
        };
        command.arg("helper").args(args);
        Ok(command)
    }

    /// Starts the server on host 2 and waits until it listens.
    pub fn start_server(&self, interrupt: &Interrupt) -> anyhow::Result<Proc> {
        let args = [
            "serve".to_owned(),
            "--listen".into(),
            self.listen.to_string(),
        ];
        let command = self.helper(SERVER_HOST, &args)?;
        let mut server = Proc::spawn("the server", command, &self.workdir.join("server.log"))?;
        let line = server.next_line(Duration::from_secs(20), interrupt)?;
        ensure!(line == READY, "the server said {line:?}");
        Ok(server)
    }

    /// Runs one client helper on host 1 and returns the JSON line it
    /// printed; fails if it fails.
    fn client(
        &self,
        args: &[String],
        timeout: Duration,
        interrupt: &Interrupt,
    ) -> anyhow::Result<Value> {
        let command = self.helper(CLIENT_HOST, args)?;
        let mut client = Proc::spawn("the client", command, &self.workdir.join("client.log"))?;
        let result = client.next_json(timeout, interrupt);
        let status = client.wait(Duration::from_secs(10), interrupt)?;
        if !status.success() {
            bail!("the client failed ({status}): {}", client.log());
        }
        result
    }

    /// `count` connections with a 1-byte echo; their latencies in µs.
    pub fn connect_echo(&self, count: usize, interrupt: &Interrupt) -> anyhow::Result<Vec<u64>> {
        let args = [
            "setup".to_owned(),
            "--to".into(),
            self.target.to_string(),
            "--count".into(),
            count.to_string(),
        ];
        let timeout = Duration::from_secs(30) + Duration::from_millis(100) * count as u32;
        let reply = self.client(&args, timeout, interrupt)?;
        reply["micros"]
            .as_array()
            .context("no latencies in the client's output")?
            .iter()
            .map(|v| v.as_u64().context("a latency that is not a number"))
            .collect()
    }

    /// Measures throughput, CPU and setup latency. `server` is the
    /// running server of [`Route::start_server`].
    pub fn measure(
        &self,
        mode: &str,
        server: &mut Proc,
        seconds: f64,
        connections: usize,
        interrupt: &Interrupt,
    ) -> anyhow::Result<ModeResult> {
        self.connect_echo(WARMUP_CONNECTIONS, interrupt)
            .context("warm-up connections")?;

        let mut watched: Vec<(String, u32)> = vec![("server".into(), server.pid())];
        watched.extend(self.carriers.iter().cloned());
        let before: Vec<Option<u64>> = watched
            .iter()
            .map(|(_, pid)| cpu::process_ns(*pid))
            .collect();
        let machine_before = cpu::machine_ns()?;
        let args = [
            "send".to_owned(),
            "--to".into(),
            self.target.to_string(),
            "--seconds".into(),
            seconds.to_string(),
        ];
        let timeout = Duration::from_secs_f64(seconds) + Duration::from_secs(60);
        let sent = self
            .client(&args, timeout, interrupt)
            .context("the throughput client")?;
        let received = server
            .next_json(Duration::from_secs(30), interrupt)
            .context("the server's byte count")?;
        let machine_after = cpu::machine_ns()?;
        let mut parties = vec![PartyCpu {
            name: "client".into(),
            ns: sent["cpu_ns"].as_u64().unwrap_or(0),
        }];
        for ((name, pid), before) in watched.iter().zip(before) {
            let ns = match (before, cpu::process_ns(*pid)) {
                (Some(before), Some(after)) => after.saturating_sub(before),
                _ => bail!("{name} (pid {pid}) ended during the transfer"),
            };
            parties.push(PartyCpu {
                name: name.clone(),
                ns,
            });
        }
        let bytes = received["bytes"].as_u64().context("no byte count")?;
        let secs = received["secs"].as_f64().context("no duration")?;
        ensure!(
            Some(bytes) == sent["sent"].as_u64(),
            "the server received {bytes} bytes, the client sent {}",
            sent["sent"]
        );

        interrupt.check()?;
        let micros = self
            .connect_echo(connections, interrupt)
            .context("the setup latency")?;
        Ok(ModeResult {
            mode: mode.to_owned(),
            bytes,
            secs,
            machine_cpu_ns: machine_after.saturating_sub(machine_before),
            parties,
            setup: latency(&micros)?,
            tunnel_status: Vec::new(),
        })
    }
}

/// Percentiles of `micros`.
fn latency(micros: &[u64]) -> anyhow::Result<SetupLatency> {
    let mut histogram =
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).context("building a histogram")?;
    for us in micros {
        histogram
            .record((*us).clamp(1, 60_000_000))
            .context("recording a latency")?;
    }
    Ok(SetupLatency {
        count: histogram.len(),
        p50_us: histogram.value_at_quantile(0.5),
        p99_us: histogram.value_at_quantile(0.99),
        mean_us: histogram.mean(),
        max_us: histogram.max(),
    })
}
