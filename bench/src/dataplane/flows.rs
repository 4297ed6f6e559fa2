//! Measurement 5: the flow pipeline of one node under a steady load of new
//! connections — events read from the kernel's ring buffer and events lost,
//! the daemon's CPU, and what the flow log costs on disk.
//!
//! Host 2's `client` cgroup (identity `prod/client/main`) connects to a
//! server on host 3 at a paced rate, from several `stockade-netcheck`
//! processes. Two phases: zone `prod` learning (every connection allowed,
//! counted by the kernel's flow summaries, recorded and learned), then
//! enforcing with no rule (every connection denied, and every denial an
//! event on the ring buffer for the alert path). Host 2's figures come from
//! its `GET /v1/status` (`flows`, `dataplane`) and `/proc/<pid>/stat`.

use std::fmt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use serde_json::Value;
use stockade_chaos::netlab::Lab;

use crate::interrupt::Interrupt;
use crate::stockade::StockadeCluster;

/// The host whose node is measured (its `client` cgroup makes the load).
const CLIENT_HOST: usize = 2;
/// The host of the server.
const SERVER_HOST: usize = 3;
/// The first server's port; client `i` connects to server `i` at
/// `PORT + i`, so each client has the ephemeral ports to itself (with one
/// destination, minutes of load leave connect() searching ports that are
/// all in TIME_WAIT).
const PORT: u16 = 9000;
/// How long the node may take to identify the client's new cgroup.
const IDENTIFY: Duration = Duration::from_secs(60);
/// Long enough for two collections of the flow summaries (every 2 s).
const COLLECTED: Duration = Duration::from_secs(5);
/// The target for the daemon's CPU, in cores.
const CPU_TARGET: f64 = 0.25;

/// Zone `prod` learns; client and server are identified by cgroup.
const POLICY: &str = "[[zone]]\nname = \"prod\"\nmode = \"learn\"\n\
     [[identity]]\nzone = \"prod\"\napp = \"client\"\nservice = \"main\"\n\
     [[identity]]\nzone = \"prod\"\napp = \"server\"\nservice = \"main\"\n\
     [[identity_rule]]\nname = \"client\"\n\
     identity = { zone = \"prod\", app = \"client\", service = \"main\" }\n\
     match = { cgroup_path = \"/client\" }\n\
     [[identity_rule]]\nname = \"server\"\n\
     identity = { zone = \"prod\", app = \"server\", service = \"main\" }\n\
     match = { cgroup_path = \"/server\" }\n";

/// What to run.
#[derive(Clone, Debug)]
pub struct Plan {
    /// New connections per second, in all.
    pub rate: u64,
    /// Seconds of load per phase.
    pub seconds: u64,
    /// Client processes sharing the rate.
    pub clients: u64,
}

/// What one phase measured on the client's node.
#[derive(Clone, Debug, Default)]
pub struct Phase {
    /// `allowed (learn)` or `denied (enforce)`.
    pub name: &'static str,
    /// Connections the clients attempted.
    pub attempted: u64,
    /// Of them, refused by the firewall.
    pub denied: u64,
    /// From the first client's start to the last one's exit.
    pub elapsed: Duration,
    /// Events read from the ring buffer.
    pub events_read: u64,
    /// Events the ring buffer could not take.
    pub events_lost: u64,
    /// CPU time of the daemon during the load.
    pub cpu: Duration,
    /// Connections the flow records count.
    pub logged: u64,
    /// Flow records written.
    pub records: u64,
    /// Bytes the flow log grew by.
    pub log_bytes: u64,
}

impl Phase {
    fn seconds(&self) -> f64 {
        self.elapsed.as_secs_f64().max(1e-9)
    }

    /// CPU share of one core.
    pub fn cores(&self) -> f64 {
        self.cpu.as_secs_f64() / self.seconds()
    }
}

/// Both phases.
#[derive(Clone, Debug)]
pub struct Flows {
    /// The target rate.
    pub rate: u64,
    /// Learning: every connection allowed.
    pub allowed: Phase,
    /// Enforcing with no rule: every connection denied.
    pub denied: Phase,
}

/// Runs both phases of `plan` on `cluster`.
pub fn measure(
    cluster: &StockadeCluster,
    lab: &Lab,
    netcheck: &Path,
    plan: &Plan,
    interrupt: &Interrupt,
) -> anyhow::Result<Flows> {
    ensure!(
        plan.clients >= 1 && plan.rate >= plan.clients,
        "--flow-clients must be 1..=rate"
    );
    call(cluster, "PUT", "/v1/policy", Some(POLICY))?;
    // A connection every 50 µs for minutes outruns the ephemeral ports
    // unless TIME_WAIT ports are reused.
    for (key, value) in [
        ("net.ipv4.tcp_tw_reuse", "1"),
        ("net.ipv4.ip_local_port_range", "1024 65000"),
    ] {
        let status = lab
            .command(CLIENT_HOST, "sysctl")
            .args(["-q", "-w", &format!("{key}={value}")])
            .status()
            .context("running sysctl")?;
        ensure!(
            status.success(),
            "sysctl {key}={value} failed in the client's namespace"
        );
    }
    let targets: Vec<String> = (0..plan.clients)
        .map(|i| format!("{}:{}", lab.address(SERVER_HOST), PORT + i as u16))
        .collect();
    let _servers = targets
        .iter()
        .map(|target| {
            lab.workload(SERVER_HOST, "server", &netcheck.to_string_lossy())
                .args(["serve", target])
                .stdout(Stdio::null())
                .spawn()
                .map(Server)
                .context("starting a server")
        })
        .collect::<anyhow::Result<Vec<Server>>>()?;
    identify_client(cluster, lab, netcheck, &targets[0], interrupt)?;
    let allowed = phase(
        cluster,
        lab,
        netcheck,
        &targets,
        plan,
        "allowed (learn)",
        interrupt,
    )?;
    let written = call(
        cluster,
        "PUT",
        "/v1/zones/prod",
        Some("{\"mode\":\"enforce\"}"),
    )?;
    let index = written["index"].as_u64().context("the write's index")?;
    wait(IDENTIFY, interrupt, "the client's node to enforce", || {
        Ok(status(cluster)?["dataplane"]["index"].as_u64().unwrap_or(0) >= index)
    })?;
    let denied = phase(
        cluster,
        lab,
        netcheck,
        &targets,
        plan,
        "denied (enforce)",
        interrupt,
    )?;
    ensure!(
        denied.denied == denied.attempted,
        "enforcing, every connection should be denied: {} of {}",
        denied.denied,
        denied.attempted
    );
    Ok(Flows {
        rate: plan.rate,
        allowed,
        denied,
    })
}

/// Connects until the client's node records its flows under its identity:
/// its cgroup is new, and the node names it at its next scan.
fn identify_client(
    cluster: &StockadeCluster,
    lab: &Lab,
    netcheck: &Path,
    target: &str,
    interrupt: &Interrupt,
) -> anyhow::Result<()> {
    wait(IDENTIFY, interrupt, "the client to be identified", || {
        let out = lab
            .workload(CLIENT_HOST, "client", &netcheck.to_string_lossy())
            .args(["tcp", target])
            .output()
            .context("running the client")?;
        if !out.status.success() {
            // The server may not listen yet.
            return Ok(false);
        }
        let flows = call(
            cluster,
            "GET",
            &format!("/v1/flows?app=client&node={CLIENT_HOST}&limit=1"),
            None,
        )?;
        Ok(flows["records"].as_array().is_some_and(|r| !r.is_empty()))
    })
}

fn phase(
    cluster: &StockadeCluster,
    lab: &Lab,
    netcheck: &Path,
    targets: &[String],
    plan: &Plan,
    name: &'static str,
    interrupt: &Interrupt,
) -> anyhow::Result<Phase> {
    let pid = cluster
        .nodes()
        .pid(CLIENT_HOST)
        .context("the client's node is not running")?;
    let per_client = plan.rate * plan.seconds / plan.clients;
    let rate = (plan.rate / plan.clients).to_string();
    let before = status(cluster)?;
    let cpu_before = cpu_time(pid)?;
    let start = Instant::now();
    let children: Vec<Child> = targets
        .iter()
        .map(|target| {
            lab.workload(CLIENT_HOST, "client", &netcheck.to_string_lossy())
                .args(["tcp", target, "--count", &per_client.to_string()])
                .args(["--rate", &rate, "--keep-going"])
                .stdout(Stdio::piped())
                .spawn()
                .context("starting a client")
        })
        .collect::<anyhow::Result<_>>()?;
    let mut denied = 0;
    for child in children {
        let out = child.wait_with_output().context("waiting for a client")?;
        let text = String::from_utf8_lossy(&out.stdout);
        denied += text
            .split(", ")
            .find_map(|part| part.trim().strip_suffix(" denied by the firewall"))
            .and_then(|n| n.parse::<u64>().ok())
            .with_context(|| format!("the client said: {text}"))?;
    }
    let elapsed = start.elapsed();
    let cpu = cpu_time(pid)?.saturating_sub(cpu_before);
    interrupt.check()?;
    std::thread::sleep(COLLECTED);
    let after = status(cluster)?;
    let delta = |path: &[&str]| -> u64 {
        let get = |v: &Value| path.iter().fold(v.clone(), |v, k| v[*k].clone()).as_u64();
        get(&after)
            .unwrap_or(0)
            .saturating_sub(get(&before).unwrap_or(0))
    };
    Ok(Phase {
        name,
        attempted: per_client * plan.clients,
        denied,
        elapsed,
        events_read: delta(&["flows", "events_read"]),
        events_lost: delta(&["dataplane", "events_lost"]),
        cpu,
        logged: delta(&["flows", "connections"]),
        records: delta(&["flows", "records_written"]),
        log_bytes: delta(&["flows", "log_bytes"]),
    })
}

/// The daemon's user and system CPU time so far.
fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // Fields after the command name (which may hold spaces) start at `)`.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .with_context(|| format!("{path}: no field {}", i + 3))
    };
    // utime and stime are fields 14 and 15, 12 and 13 after the `)`.
    let total = ticks(11)? + ticks(12)?;
    let per_second = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|t| *t > 0)
        .context("cannot read the clock tick rate")?;
    Ok(Duration::from_secs_f64(total as f64 / per_second as f64))
}

fn status(cluster: &StockadeCluster) -> anyhow::Result<Value> {
    call(cluster, "GET", "/v1/status", None)
}

fn call(
    cluster: &StockadeCluster,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> anyhow::Result<Value> {
    let reply = cluster
        .nodes()
        .api(CLIENT_HOST, method, path, Some(cluster.admin_token()), body)
        .with_context(|| format!("{method} {path}"))?;
    if reply.status != 200 {
        bail!("{method} {path}: HTTP {}: {}", reply.status, reply.body);
    }
    Ok(reply.json())
}

fn wait(
    timeout: Duration,
    interrupt: &Interrupt,
    what: &str,
    mut done: impl FnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        interrupt.check()?;
        if done()? {
            return Ok(());
        }
        if start.elapsed() > timeout {
            bail!("waited {timeout:?} for {what}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The server, killed when the measurement ends however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl fmt::Display for Flows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "\nflow pipeline of one node at {} new connections/s (target: no event lost, daemon under {CPU_TARGET} core)",
            self.rate
        )?;
        writeln!(
            f,
            "{:<18} {:>9} {:>10} {:>7} {:>9} {:>6} {:>10} {:>10} {:>8} {:>10} {:>14}",
            "phase",
            "conn/s",
            "attempted",
            "events",
            "events/s",
            "lost",
            "CPU cores",
            "logged",
            "records",
            "log bytes",
            "bytes/M conns"
        )?;
        for phase in [&self.allowed, &self.denied] {
            let per_million = match phase.logged {
                0 => 0.0,
                n => phase.log_bytes as f64 * 1e6 / n as f64,
            };
            writeln!(
                f,
                "{:<18} {:>9.0} {:>10} {:>7} {:>9.1} {:>6} {:>10.3} {:>10} {:>8} {:>10} {:>14.0}",
                phase.name,
                phase.attempted as f64 / phase.seconds(),
                phase.attempted,
                phase.events_read,
                phase.events_read as f64 / phase.seconds(),
                phase.events_lost,
                phase.cores(),
                phase.logged,
                phase.records,
                phase.log_bytes,
                per_million,
            )?;
        }
        Ok(())
    }
}
