//! Measurement 4: from a denied `connect()` to its alert at a sink, in
//! steady state and across a kill -9 of the Raft leader.
//!
//! The cluster (hosts 1–3) enforces zone `prod`, whose identity
//! `prod/client/main` is every process of a host's `client` cgroup, so each
//! of their connects is denied; a JSON webhook sink points at an
//! [`HttpReceiver`] on host 4, outside the cluster. A sample runs
//! `stockade-netcheck tcp ADDR:PORT --count 1 --keep-going` in the `client`
//! cgroup of a host that does not lead, to a port no sample used before: a
//! new cause, which the node's aggregator raises at once instead of
//! gathering it into a window. The clock starts right before the process is
//! spawned, so it includes starting it (measured on its own too, against an
//! allowed target), and stops at the receiver's arrival instant of the
//! request whose body carries an alert for that port.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Context};
use serde_json::{json, Value};
use stockade_chaos::netlab::Lab;
use stockade_chaos::receiver::HttpReceiver;

use super::report::quantile;
use crate::interrupt::Interrupt;
use crate::stockade::{StockadeCluster, HOSTS};

/// The host of the sink: outside the cluster, so every alert crosses the
/// lab's network like one to a real SIEM.
const SINK_HOST: usize = 4;
/// The port of the first sample; each sample takes the next one.
const FIRST_PORT: u16 = 30_000;
/// The cgroup, below a host's subtree, that the identity rule names.
const CLIENT_CGROUP: &str = "client";
/// Pause between steady-state samples, so they do not come as a burst.
const GAP: Duration = Duration::from_millis(50);
/// How often a sample starts during the failover.
const INTERVAL: Duration = Duration::from_millis(100);
/// Failover samples before the leader is killed.
const KILL_AFTER: usize = 5;
/// How long the failover samples go on once a new leader is known.
const AFTER_ELECTION: Duration = Duration::from_secs(5);
/// How long a survivor may take to name a new leader.
const ELECTION_TIMEOUT: Duration = Duration::from_secs(60);
/// How long an alert may take to arrive before its sample counts as lost.
const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the pipeline may take to deliver its first alert: the nodes
/// learn the client cgroup at their next rescan of the subtree.
const WARMUP: Duration = Duration::from_secs(60);
/// How long one warm-up sample is waited for before the next one.
const WARMUP_TRY: Duration = Duration::from_secs(3);
/// Runs of the process-start measurement.
const SPAWN_SAMPLES: usize = 50;
/// How often the receiver's requests are looked at while waiting.
const POLL: Duration = Duration::from_millis(5);
/// The target for the steady state's p99.
const STEADY_TARGET: Duration = Duration::from_secs(1);
/// The target for the p99 of the samples after a leader kill.
const FAILOVER_TARGET: Duration = Duration::from_secs(3);

/// Zone `prod` enforces; its client, by cgroup, may talk to nobody.
const POLICY: &str = "[[zone]]\nname = \"prod\"\nmode = \"enforce\"\n\
     [[identity]]\nzone = \"prod\"\napp = \"client\"\nservice = \"main\"\n\
     [[identity_rule]]\nname = \"client\"\n\
     identity = { zone = \"prod\", app = \"client\", service = \"main\" }\n\
     match = { cgroup_path = \"/client\" }\n";

/// Everything the measurement found.
#[derive(Clone, Debug)]
pub struct Alerts {
    /// Spawn to exit of the samples' client against an allowed target.
    pub spawn: Vec<Duration>,
    /// The samples one after the other, with a stable leader.
    pub steady: Steady,
    /// The samples around the leader kill.
    pub failover: Failover,
    /// Alerts the sink received more than once (delivery is at least once).
    pub repeated: usize,
}

/// The steady-state samples, each figure one per sample.
#[derive(Clone, Debug, Default)]
pub struct Steady {
    /// The host they ran on.
    pub source: usize,
    /// Denied connect → alert at the sink.
    pub latency: Vec<Duration>,
    /// How long the client's process ran, spawn to exit.
    pub ran: Vec<Duration>,
    /// The first part of the latency: from the spawn until the source node
    /// read the denial from the ring buffer (the alert's `first_seen_ms`,
    /// so to the millisecond, and up to 1 ms low).
    pub observed: Vec<Duration>,
    /// The rest of it: from there through Raft and the leader's forwarder
    /// to the sink.
    pub delivered: Vec<Duration>,
}

/// The samples around a kill -9 of the leader.
#[derive(Clone, Debug)]
pub struct Failover {
    /// The host whose node was killed.
    pub killed: usize,
    /// The host the samples ran on.
    pub source: usize,
    /// The host that leads after it.
    pub new_leader: usize,
    /// From the kill until a survivor named the new leader.
    pub elected: Duration,
    /// From the kill until the first alert of a later sample arrived.
    pub first_arrival: Option<Duration>,
    /// Samples started before the kill, and how many of them never arrived.
    pub before: (usize, usize),
    /// Denied connect → alert at the sink, for each sample started after
    /// the kill whose alert arrived.
    pub after: Vec<Duration>,
    /// Samples started after the kill whose alert never arrived.
    pub lost: usize,
}

/// Sets up the policy and the sink on `cluster` (on hosts 1–3 of `lab`,
/// whose host 4 is free), then measures the process start, `samples`
/// steady-state samples and a leader kill.
pub fn measure(
    cluster: &StockadeCluster,
    lab: &Lab,
    netcheck: &Path,
    samples: usize,
    interrupt: &Interrupt,
) -> anyhow::Result<Alerts> {
    ensure!(
        lab.hosts() >= SINK_HOST,
        "the lab needs host {SINK_HOST} for the sink"
    );
    let leader = cluster.leader().context("the cluster has no leader")?;
    put(cluster, leader, "/v1/policy", POLICY)?;
    let listener = lab
        .listen_tcp(SINK_HOST, 0)
        .context("listening on the sink host")?;
    let receiver = HttpReceiver::start(listener).context("starting the sink")?;
    let sink = json!({
        "name": "bench",
        "target": {"kind": "webhook", "url": receiver.url("/ingest")},
        "min_severity": "info",
    });
    put(cluster, leader, "/v1/sinks/bench", &sink.to_string())?;

    let spawn = spawn_overhead(lab, netcheck, interrupt)?;
    let mut arrivals = Arrivals::new(&receiver);
    let mut ports = Ports(FIRST_PORT);
    let steady = steady(
        cluster,
        lab,
        netcheck,
        samples,
        &mut ports,
        &mut arrivals,
        interrupt,
    )?;
    let failover = failover(cluster, lab, netcheck, &mut ports, &mut arrivals, interrupt)?;
    Ok(Alerts {
        spawn,
        steady,
        failover,
        repeated: arrivals.repeated,
    })
}

/// `samples` samples one after the other from a host that does not lead,
/// each waited for, [`GAP`] apart.
fn steady(
    cluster: &StockadeCluster,
    lab: &Lab,
    netcheck: &Path,
    samples: usize,
    ports: &mut Ports,
    arrivals: &mut Arrivals,
    interrupt: &Interrupt,
) -> anyhow::Result<Steady> {
    let source = follower(cluster)?;
    let client = Client {
        lab,
        host: source,
        netcheck,
    };
    warm_up(&client, ports, arrivals, interrupt)?;
    eprintln!("alerts: {samples} samples from host {source}'s client");
    let mut steady = Steady {
        source,
        ..Steady::default()
    };
    for k in 0..samples {
        interrupt.check()?;
        let port = ports.next()?;
        let sample = client.deny(port)?;
        let Some(at) = arrivals.wait(port, sample.start + ARRIVAL_TIMEOUT, interrupt)? else {
            bail!(
                "the alert for port {port} did not reach the sink within {ARRIVAL_TIMEOUT:?} \
                 ({} requests received)",
                arrivals.read
            );
        };
        let latency = at.saturating_duration_since(sample.start);
        let observed = arrivals
            .observed
            .get(&port)
            .map_or(Duration::ZERO, |ms| sample.until(*ms));
        steady.latency.push(latency);
        steady.ran.push(sample.ran);
        steady.observed.push(observed);
        steady.delivered.push(latency.saturating_sub(observed));
        if (k + 1) % 50 == 0 {
            eprintln!("alerts: {} samples", k + 1);
        }
        std::thread::sleep(GAP);
    }
    Ok(steady)
}

/// `PUT path` with `body` through host `host`'s API, which must answer 200.
fn put(cluster: &StockadeCluster, host: usize, path: &str, body: &str) -> anyhow::Result<()> {
    let reply = cluster
        .nodes()
        .api(host, "PUT", path, Some(cluster.admin_token()), Some(body))
        .with_context(|| format!("PUT {path}"))?;
    ensure!(
        reply.status == 200,
        "PUT {path}: {} {}",
        reply.status,
        reply.body
    );
    Ok(())
}

/// A host of the cluster whose node does not lead.
fn follower(cluster: &StockadeCluster) -> anyhow::Result<usize> {
    let leader = cluster.leader().context("the cluster has no leader")?;
    HOSTS
        .into_iter()
        .find(|h| *h != leader)
        .context("the cluster has a single host")
}

/// The ports of the samples, one fresh port each.
struct Ports(u16);

impl Ports {
    fn next(&mut self) -> anyhow::Result<u16> {
        let port = self.0;
        self.0 = port.checked_add(1).context("out of ports for samples")?;
        Ok(port)
    }
}

/// One run of the client.
struct Ran {
    /// Right before it was spawned.
    start: Instant,
    /// The same moment by the wall clock, which the nodes' alerts use.
    wall: SystemTime,
    /// From then until it exited.
    ran: Duration,
    /// Whether its connect failed, for whatever reason.
    refused: bool,
    /// Whether the firewall refused it (`EPERM`, as netcheck tells).
    denied: bool,
}

impl Ran {
    /// From the spawn until `ms` since the Unix epoch (zero if before).
    fn until(&self, ms: u64) -> Duration {
        let wall = self.wall.duration_since(UNIX_EPOCH).unwrap_or_default();
        Duration::from_millis(ms).saturating_sub(wall)
    }
}

/// `stockade-netcheck` as a workload of one host, in its `client` cgroup.
struct Client<'a> {
    lab: &'a Lab,
    host: usize,
    netcheck: &'a Path,
}

impl Client<'_> {
    /// Opens one TCP connection to `target` and closes it, in a process of
    /// its own, and waits for that process to exit.
    fn run(&self, target: SocketAddr) -> anyhow::Result<Ran> {
        let program = self.netcheck.to_string_lossy();
        let mut command = self.lab.workload(self.host, CLIENT_CGROUP, &program);
        command.args(["tcp", &target.to_string(), "--count", "1", "--keep-going"]);
        let wall = SystemTime::now();
        let start = Instant::now();
        let output = command
            .output()
            .with_context(|| format!("running netcheck on host {}", self.host))?;
        let ran = start.elapsed();
        let stdout = String::from_utf8_lossy(&output.stdout);
        ensure!(
            output.status.success() && stdout.starts_with("1 flows, "),
            "netcheck tcp {target} on host {}: {} {stdout} {}",
            self.host,
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(Ran {
            start,
            wall,
            ran,
            refused: !stdout.starts_with("1 flows, 0 refused"),
            denied: stdout.contains(", 1 denied by the firewall"),
        })
    }

    /// A connect to `port` of the sink host: the world to the client, so
    /// zone prod denies it once the node knows the client's cgroup.
    fn connect_out(&self, port: u16) -> anyhow::Result<Ran> {
        self.run(SocketAddr::from((self.lab.address(SINK_HOST), port)))
    }

    /// A [`Client::connect_out`] that the firewall must deny.
    fn deny(&self, port: u16) -> anyhow::Result<Ran> {
        let ran = self.connect_out(port)?;
        ensure!(
            ran.denied,
            "host {}'s firewall let the client's connect to port {port} through",
            self.host
        );
        Ok(ran)
    }
}

/// Spawn to exit of the client against a target it may reach: a listener
/// of host 4, which no node enforces. The same command as a sample's, at
/// the samples' pace, so this is what a sample's figure holds besides the
/// alert's way. The pace matters: moving the shell into the cgroup waits
/// for an RCU grace period unless another move did so a moment before, so
/// runs [`GAP`] apart take about 15 ms more each than back-to-back ones.
fn spawn_overhead(
    lab: &Lab,
    netcheck: &Path,
    interrupt: &Interrupt,
) -> anyhow::Result<Vec<Duration>> {
    // Never accepted: the kernel completes the handshakes into the backlog
    // (128 by std's default, more than the runs).
    let listener = lab
        .listen_tcp(SINK_HOST, 0)
        .context("listening for the process-start runs")?;
    let target = listener.local_addr().context("the listener's address")?;
    let client = Client {
        lab,
        host: SINK_HOST,
        netcheck,
    };
    let mut ran = Vec::with_capacity(SPAWN_SAMPLES);
    for _ in 0..SPAWN_SAMPLES {
        interrupt.check()?;
        let run = client.run(target)?;
        ensure!(
            !run.refused,
            "the process-start runs' target refused a connect"
        );
        ran.push(run.ran);
        std::thread::sleep(GAP);
    }
    Ok(ran)
}

/// Runs samples until one is denied and its alert reaches the sink: the
/// source node must have identified the client cgroup, and the leader
/// started delivering.
fn warm_up(
    client: &Client,
    ports: &mut Ports,
    arrivals: &mut Arrivals,
    interrupt: &Interrupt,
) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let port = ports.next()?;
        let sample = client.connect_out(port)?;
        if sample.denied {
            if arrivals
                .wait(port, sample.start + WARMUP_TRY, interrupt)?
                .is_some()
            {
                return Ok(());
            }
        } else {
            interrupt.check()?;
            std::thread::sleep(Duration::from_millis(200));
        }
        if start.elapsed() > WARMUP {
            bail!(
                "no alert of host {}'s client reached the sink within {WARMUP:?} \
                 ({} requests received)",
                client.host,
                arrivals.read
            );
        }
    }
}

/// Samples every [`INTERVAL`] from a host that does not lead, kills the
/// leader after [`KILL_AFTER`] of them, and goes on until
/// [`AFTER_ELECTION`] after a survivor names a new leader; then waits for
/// the alerts.
fn failover(
    cluster: &StockadeCluster,
    lab: &Lab,
    netcheck: &Path,
    ports: &mut Ports,
    arrivals: &mut Arrivals,
    interrupt: &Interrupt,
) -> anyhow::Result<Failover> {
    let killed = cluster.leader().context("the cluster has no leader")?;
    let source = follower(cluster)?;
    let client = Client {
        lab,
        host: source,
        netcheck,
    };
    warm_up(&client, ports, arrivals, interrupt)?;
    eprintln!(
        "alerts: failover: samples from host {source}, kill -9 of the leader on host {killed}"
    );
    let run = through_kill(cluster, &client, killed, ports, interrupt)?;

    let deadline = Instant::now() + ARRIVAL_TIMEOUT;
    while run
        .samples
        .iter()
        .any(|(p, _)| !arrivals.first.contains_key(p))
        && Instant::now() < deadline
    {
        interrupt.check()?;
        arrivals.update();
        std::thread::sleep(POLL);
    }
    arrivals.update();

    let latency = |(port, start): &(u16, Instant)| {
        arrivals
            .first
            .get(port)
            .map(|at| at.saturating_duration_since(*start))
    };
    let (before, after): (Vec<(u16, Instant)>, Vec<_>) =
        run.samples.iter().partition(|(_, s)| *s < run.killed_at);
    let timeline: Vec<String> = after
        .iter()
        .map(|sample| {
            let offset = sample.1.saturating_duration_since(run.killed_at);
            let latency = latency(sample).map_or_else(
                || "lost".to_owned(),
                |l| format!("{:.0}ms", l.as_secs_f64() * 1000.0),
            );
            format!("+{:.1}s:{latency}", offset.as_secs_f64())
        })
        .collect();
    eprintln!(
        "alerts: failover samples (start after the kill: latency): {}",
        timeline.join(" ")
    );
    let first_arrival = after
        .iter()
        .filter_map(|(port, _)| arrivals.first.get(port))
        .min()
        .map(|at| at.saturating_duration_since(run.killed_at));
    let arrived: Vec<Duration> = after.iter().filter_map(latency).collect();
    Ok(Failover {
        killed,
        source,
        new_leader: run.new_leader,
        elected: run.elected_at.saturating_duration_since(run.killed_at),
        first_arrival,
        before: (
            before.len(),
            before.iter().filter(|s| latency(s).is_none()).count(),
        ),
        lost: after.len() - arrived.len(),
        after: arrived,
    })
}

/// What happened while the failover samples ran.
struct Run {
    /// Each sample's port and start, in order.
    samples: Vec<(u16, Instant)>,
    /// Right after the leader was sent SIGKILL.
    killed_at: Instant,
    /// When a survivor first named a new leader, and which.
    elected_at: Instant,
    new_leader: usize,
}

/// Runs the failover samples from `client`, killing host `killed`'s node
/// after [`KILL_AFTER`] of them; does not wait for their alerts.
fn through_kill(
    cluster: &StockadeCluster,
    client: &Client,
    killed: usize,
    ports: &mut Ports,
    interrupt: &Interrupt,
) -> anyhow::Result<Run> {
    let pid = cluster
        .nodes()
        .pid(killed)
        .context("the leader's node is not running")?;
    let elected: OnceLock<(Instant, usize)> = OnceLock::new();
    let stop = AtomicBool::new(false);
    let mut samples: Vec<(u16, Instant)> = Vec::new();
    let mut killed_at = None;
    std::thread::scope(|scope| {
        let outcome = (|| -> anyhow::Result<()> {
            let begin = Instant::now();
            for k in 0u32.. {
                interrupt.check()?;
                sleep_until(begin + INTERVAL * k);
                let port = ports.next()?;
                samples.push((port, client.deny(port)?.start));
                if samples.len() == KILL_AFTER {
                    kill(pid)?;
                    killed_at = Some(Instant::now());
                    // Polled from a thread of its own, so the samples keep
                    // their pace while `curl` asks the survivors.
                    scope.spawn(|| watch_election(cluster, killed, &elected, &stop, interrupt));
                }
                match (killed_at, elected.get()) {
                    (_, Some((at, _))) if at.elapsed() >= AFTER_ELECTION => return Ok(()),
                    (Some(at), None) if at.elapsed() > ELECTION_TIMEOUT => {
                        bail!("no new leader {ELECTION_TIMEOUT:?} after the kill")
                    }
                    _ => {}
                }
            }
            Ok(())
        })();
        // The watcher ends with the samples, whatever their outcome.
        stop.store(true, Ordering::Relaxed);
        outcome
    })?;
    let &(elected_at, new_leader) = elected.get().context("no new leader was named")?;
    Ok(Run {
        samples,
        killed_at: killed_at.context("the leader was never killed")?,
        elected_at,
        new_leader,
    })
}

/// Sends SIGKILL to process `pid` (a node this bench started; its
/// [`stockade_chaos::nodes::Nodes`] reaps it when dropped, so the pid stays
/// taken until then).
fn kill(pid: u32) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .context("running kill")?;
    ensure!(status.success(), "kill -KILL {pid}: {status}");
    Ok(())
}

/// Asks the nodes for the leader every 100 ms until one other than host
/// `killed` is named, and records when and which; gives up when `stop` is
/// set, on a signal, or after [`ELECTION_TIMEOUT`].
fn watch_election(
    cluster: &StockadeCluster,
    killed: usize,
    elected: &OnceLock<(Instant, usize)>,
    stop: &AtomicBool,
    interrupt: &Interrupt,
) {
    let start = Instant::now();
    while !stop.load(Ordering::Relaxed) && !interrupt.is_set() && start.elapsed() < ELECTION_TIMEOUT
    {
        if let Some(leader) = cluster.leader().filter(|l| *l != killed) {
            let _ = elected.set((Instant::now(), leader));
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sleeps until `at` (not at all if it has passed).
fn sleep_until(at: Instant) {
    std::thread::sleep(at.saturating_duration_since(Instant::now()));
}

/// What the sink received, read as it grows: when the first alert for each
/// destination port arrived.
struct Arrivals<'r> {
    receiver: &'r HttpReceiver,
    /// Requests already read.
    read: usize,
    /// The arrival of the first policy-violation alert for each port.
    first: HashMap<u16, Instant>,
    /// That alert's `first_seen_ms`: when its node read the denial.
    observed: HashMap<u16, u64>,
    /// The ids of every alert received.
    ids: HashSet<String>,
    /// Alerts received again.
    repeated: usize,
}

impl<'r> Arrivals<'r> {
    fn new(receiver: &'r HttpReceiver) -> Self {
        Arrivals {
            receiver,
            read: 0,
            first: HashMap::new(),
            observed: HashMap::new(),
            ids: HashSet::new(),
            repeated: 0,
        }
    }

    /// Reads the requests that arrived since the last call.
    fn update(&mut self) {
        let received = self.receiver.received();
        for request in received.iter().skip(self.read) {
            if !(200..300).contains(&request.status) {
                continue;
            }
            let body: Value = serde_json::from_str(&request.body).unwrap_or(Value::Null);
            for alert in body["alerts"].as_array().into_iter().flatten() {
                if let Some(id) = alert["id"].as_str() {
                    if !self.ids.insert(id.to_owned()) {
                        self.repeated += 1;
                    }
                }
                let port = alert["flow"]["dst"]["port"]
                    .as_u64()
                    .and_then(|p| u16::try_from(p).ok());
                let Some(port) = port.filter(|_| alert["kind"] == "policy_violation") else {
                    continue;
                };
                if let Entry::Vacant(entry) = self.first.entry(port) {
                    entry.insert(request.at);
                    if let Some(ms) = alert["first_seen_ms"].as_u64() {
                        self.observed.insert(port, ms);
                    }
                }
            }
        }
        self.read = received.len();
    }

    /// Waits until an alert for `port` has arrived, or `deadline`; its
    /// arrival, if it did.
    fn wait(
        &mut self,
        port: u16,
        deadline: Instant,
        interrupt: &Interrupt,
    ) -> anyhow::Result<Option<Instant>> {
        loop {
            self.update();
            if let Some(at) = self.first.get(&port) {
                return Ok(Some(*at));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            interrupt.check()?;
            std::thread::sleep(POLL);
        }
    }
}

/// `d` in milliseconds, to a tenth.
fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// `p50 … p99 … max … (n …)` of `samples`.
fn figures(samples: &[Duration]) -> String {
    format!(
        "p50 {}  p99 {}  max {}  (n {})",
        ms(quantile(samples, 0.5)),
        ms(quantile(samples, 0.99)),
        ms(quantile(samples, 1.0)),
        samples.len()
    )
}

/// `p50 … p99 …` of `samples`.
fn short(samples: &[Duration]) -> String {
    format!(
        "p50 {} p99 {}",
        ms(quantile(samples, 0.5)),
        ms(quantile(samples, 0.99))
    )
}

/// Whether the p99 of `samples` is below `target`.
fn verdict(samples: &[Duration], target: Duration) -> &'static str {
    if samples.is_empty() {
        "no samples"
    } else if quantile(samples, 0.99) < target {
        "met"
    } else {
        "MISSED"
    }
}

/// The measurement's lines of the table. Printed by the binary after
/// [`super::report::table`]: the table's section for it lives here, with
/// the figures it reads.
impl fmt::Display for Alerts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failover = &self.failover;
        writeln!(
            f,
            "denied connect() -> alert at a webhook sink on host {SINK_HOST} (3 nodes, client on a follower)"
        )?;
        let steady = &self.steady;
        writeln!(
            f,
            "  steady state, client on node{}: {}  target p99 < {:.0} s: {}",
            steady.source,
            figures(&steady.latency),
            STEADY_TARGET.as_secs_f64(),
            verdict(&steady.latency, STEADY_TARGET)
        )?;
        writeln!(
            f,
            "    spawn -> read by the source node: {}; then -> sink: {}",
            short(&steady.observed),
            short(&steady.delivered)
        )?;
        writeln!(
            f,
            "    included, the client's spawn to exit: {}; against an allowed target: {} (n {})",
            short(&steady.ran),
            short(&self.spawn),
            self.spawn.len()
        )?;
        writeln!(
            f,
            "  kill -9 of the leader (node{}), client on node{} every {} ms, samples after the kill: \
             {}  target p99 < {:.0} s: {}",
            failover.killed,
            failover.source,
            INTERVAL.as_millis(),
            figures(&failover.after),
            FAILOVER_TARGET.as_secs_f64(),
            verdict(&failover.after, FAILOVER_TARGET)
        )?;
        let first = failover.first_arrival.map_or_else(
            || "never".to_owned(),
            |d| format!("{:.2} s", d.as_secs_f64()),
        );
        writeln!(
            f,
            "    node{} named leader {:.2} s after the kill; first of these alerts at the sink {first} \
             after it; lost: {} (before the kill: {} of {}); alerts received twice: {}",
            failover.new_leader,
            failover.elected.as_secs_f64(),
            failover.lost,
            failover.before.1,
            failover.before.0,
            self.repeated
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_is_met_only_below_it() {
        let fast: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(verdict(&fast, Duration::from_millis(100)), "met");
        assert_eq!(verdict(&fast, Duration::from_millis(99)), "MISSED");
        assert_eq!(verdict(&[], Duration::from_secs(1)), "no samples");
    }

    #[test]
    fn ports_run_out_instead_of_wrapping() {
        let mut ports = Ports(u16::MAX - 1);
        assert_eq!(ports.next().ok(), Some(u16::MAX - 1));
        assert!(ports.next().is_err());
    }

    #[test]
    fn the_policy_names_the_client_cgroup() {
        assert!(POLICY.contains(&format!("cgroup_path = \"/{CLIENT_CGROUP}\"")));
    }
}
