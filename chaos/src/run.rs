//! One chaos run: build the cluster, run the workload and the nemesis for
//! the time asked, heal everything, then check what the clients saw and
//! what the nodes hold, and write the report.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::Rng;
use reqwest::Method;
use serde_json::json;

use crate::api::ApiClient;
use crate::faults::Fault;
use crate::history::History;
use crate::nemesis::{FaultRecord, Nemesis};
use crate::netlab::{EnteredNetns, Lab};
use crate::nodes::{wait_for, Nodes, QUIC_PORT};
use crate::receiver::HttpReceiver;
use crate::relay::Relay;
use crate::report::Report;
use crate::verify;
use crate::workload::{self, denied_connects, WorkloadConfig};

/// What a run does.
#[derive(Clone, Debug)]
pub struct Options {
    /// Nodes in the cluster.
    pub nodes: usize,
    /// How many of them vote (the rest are learners).
    pub voters: usize,
    /// How long the workload and the faults last.
    pub duration: Duration,
    /// The seed of every random choice.
    pub seed: u64,
    /// The faults to choose from.
    pub faults: Vec<Fault>,
    /// Concurrent clients.
    pub clients: usize,
    /// Registers and sets the clients use.
    pub workload: WorkloadConfig,
    /// How long a fault lasts: a random time in this range.
    pub hold: (Duration, Duration),
    /// The calm between faults: a random time in this range.
    pub quiet: (Duration, Duration),
    /// Where the report goes.
    pub out: PathBuf,
    /// The `stockade` binary.
    pub stockade: PathBuf,
    /// The `stockade-netcheck` binary (the intruder).
    pub netcheck: PathBuf,
}

/// Why a run could not be carried out (as opposed to a run whose checks
/// failed, which is a [`Report`]).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The options do not make a run.
    #[error("invalid options: {0}")]
    Options(String),
    /// Building or driving the cluster failed.
    #[error("{what}: {detail}")]
    Setup {
        /// What was being done.
        what: &'static str,
        /// What went wrong.
        detail: String,
    },
}

fn setup<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> RunError {
    move |e| RunError::Setup {
        what,
        detail: e.to_string(),
    }
}

/// Generous: elections and joins on a loaded 2-core machine.
const SETTLE: Duration = Duration::from_secs(60);
/// A workload call's timeout: past it, a write's outcome is unknown.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// A probe call's timeout: short, so recovery is measured finely.
const PROBE_TIMEOUT: Duration = Duration::from_millis(700);
/// The port the intruder connects to on the harness's host.
const INTRUDER_PORT: u16 = 9;

impl Options {
    fn validate(&self) -> Result<(), RunError> {
        let bad = |why: String| Err(RunError::Options(why));
        if !(3..=9).contains(&self.nodes) {
            return bad(format!("--nodes {} is not within 3..=9", self.nodes));
        }
        if self.voters > self.nodes.min(7) || self.voters < 3 || self.voters.is_multiple_of(2) {
            return bad(format!(
                "--voters {} must be 3, 5 or 7, and at most --nodes ({})",
                self.voters, self.nodes
            ));
        }
        let usable: Vec<&Fault> = self
            .faults
            .iter()
            .filter(|f| f.min_nodes() <= self.nodes)
            .collect();
        if usable.is_empty() {
            return bad(format!(
                "none of the faults {:?} works with {} nodes",
                self.faults, self.nodes
            ));
        }
        if self.clients == 0 || self.workload.registers == 0 || self.workload.sets == 0 {
            return bad("--clients, --registers and --sets must be at least 1".into());
        }
        for binary in [&self.stockade, &self.netcheck] {
            if !binary.exists() {
                return bad(format!("{} does not exist", binary.display()));
            }
        }
        Ok(())
    }
}

/// Carries out the run; returns its report (also written to
/// `options.out`). Setting `interrupt` ends the faults early: the run then
/// heals, checks and cleans up as usual.
pub fn run(options: &Options, interrupt: &AtomicBool) -> Result<Report, RunError> {
    options.validate()?;
    std::fs::create_dir_all(&options.out).map_err(setup("creating the output folder"))?;
    let n = options.nodes;
    let hosts: Vec<usize> = (1..=n).collect();
    // The harness's own host: its clients, its relay and its alert sink.
    let home = n + 1;
    let lab = Lab::new(n + 1).map_err(setup("building the lab"))?;
    let _inside = EnteredNetns::enter(&lab.netns(home)).map_err(setup("entering the lab"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(setup("starting the runtime"))?;
    let home_ip = IpAddr::V4(lab.address(home));
    let relay = runtime
        .block_on(Relay::start(home_ip, options.seed))
        .map_err(setup("starting the relay"))?;
    let mut fronts = BTreeMap::new();
    for &host in &hosts {
        let real = SocketAddr::from((lab.address(host), QUIC_PORT));
        let front = runtime
            .block_on(relay.add_node(host, real))
            .map_err(setup("adding a node to the relay"))?;
        fronts.insert(host, front);
    }
    let workdir = options.out.join("nodes");
    let mut nodes = Nodes::init_advertising(&lab, &options.stockade, &workdir, &[], fronts)
        .map_err(setup("stockade init"))?;
    nodes
        .form_cluster(n, SETTLE)
        .map_err(setup("forming the cluster"))?;
    let urls: BTreeMap<usize, String> = hosts.iter().map(|&h| (h, nodes.api_url(h))).collect();
    let api = ApiClient::new(urls.clone(), nodes.admin_token.clone(), CALL_TIMEOUT)
        .map_err(setup("making the API client"))?;
    let probe_api = ApiClient::new(urls, nodes.admin_token.clone(), PROBE_TIMEOUT)
        .map_err(setup("making the API client"))?;

    let sink = HttpReceiver::start(
        lab.listen_tcp(home, 0)
            .map_err(setup("listening for alerts"))?,
    )
    .map_err(setup("starting the alert receiver"))?;
    prepare_policy(&runtime, &api, &sink)?;
    let intruder_target = format!("{}:{INTRUDER_PORT}", lab.address(home));
    wait_enforcing(&lab, &options.netcheck, &hosts, &intruder_target)?;
    wait_voters(&runtime, &api, options)?;

    let history = Arc::new(History::new());
    let leaders = Arc::new(Mutex::new(Vec::new()));
    let stop_clients = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..options.clients)
        .map(|id| {
            runtime.spawn(workload::client(
                id,
                api.clone(),
                Arc::clone(&history),
                options.workload.clone(),
                options.seed,
                Arc::clone(&stop_clients),
            ))
        })
        .collect();
    let monitor = runtime.spawn(watch_leaders(
        api.clone(),
        Arc::clone(&history),
        Arc::clone(&leaders),
        Arc::clone(&stop_clients),
    ));
    let probe_key = options.workload.registers;
    let stop_intruder = AtomicBool::new(false);
    let (faults, intrusions) = std::thread::scope(|scope| {
        let intruder = scope.spawn(|| {
            workload::intruder(
                &lab,
                &options.netcheck,
                &hosts,
                &intruder_target,
                Duration::from_secs(2),
                options.seed,
                &stop_intruder,
            )
        });
        let mut nemesis = Nemesis::new(
            &mut nodes,
            &lab,
            &relay,
            &runtime,
            probe_api.clone(),
            Arc::clone(&history),
            hosts.clone(),
            probe_key,
            options.netcheck.clone(),
            intruder_target.clone(),
            options.seed,
        );
        let faults = inject_faults(&mut nemesis, options, interrupt);
        stop_intruder.store(true, Ordering::Relaxed);
        let intrusions = intruder.join().unwrap_or_default();
        (faults, intrusions)
    });
    // Everything is healed: let the clients run on a healthy cluster a
    // little, then stop them.
    std::thread::sleep(Duration::from_secs(2));
    stop_clients.store(true, Ordering::Relaxed);
    for client in clients {
        let _ = runtime.block_on(client);
    }
    let _ = runtime.block_on(monitor);

    let final_from_ns = history.now_ns();
    let verified = verify::after_healing(&verify::Context {
        runtime: &runtime,
        api: &api,
        history: &history,
        nodes: &nodes,
        lab: &lab,
        hosts: &hosts,
        registers: probe_key + 1,
        sets: options.workload.sets,
        sink: &sink,
    });
    let leaders = leaders
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let report = Report::build(
        options,
        &history,
        final_from_ns,
        faults,
        leaders,
        verified,
        intrusions,
        relay.stats(),
    );
    report
        .write(&options.out, &history)
        .map_err(setup("writing the report"))?;
    Ok(report)
}

/// Sets up the zone, identities and intruder of the workload, and the sink
/// the alerts go to.
fn prepare_policy(
    runtime: &tokio::runtime::Runtime,
    api: &ApiClient,
    sink: &HttpReceiver,
) -> Result<(), RunError> {
    let document = workload::initial_policy();
    let sink_body = json!({
        "name": "chaos",
        "target": {"kind": "webhook", "url": sink.url("/alerts"), "token": "chaos"},
        "min_severity": "info",
    });
    runtime.block_on(async {
        let policy = api.call_text(1, Method::PUT, "/v1/policy", document).await;
        policy.ok_body(200).ok_or_else(|| RunError::Setup {
            what: "loading the initial policy",
            detail: format!("{policy:?}"),
        })?;
        let put = api
            .call(1, Method::PUT, "/v1/sinks/chaos", Some(&sink_body))
            .await;
        put.ok_body(200).ok_or_else(|| RunError::Setup {
            what: "adding the alert sink",
            detail: format!("{put:?}"),
        })?;
        Ok(())
    })
}

/// Waits until every host's kernel refuses the intruder: its cgroup is
/// new, and each node identifies it at its next scan.
fn wait_enforcing(
    lab: &Lab,
    netcheck: &std::path::Path,
    hosts: &[usize],
    target: &str,
) -> Result<(), RunError> {
    for &host in hosts {
        wait_for(
            &format!("host {host} to refuse the intruder"),
            SETTLE,
            || {
                let (denied, text) = denied_connects(lab, netcheck, host, "intruder", target, 1);
                ((denied == Some(1)).then_some(()), text)
            },
        )
        .map_err(setup("waiting for enforcement"))?;
    }
    Ok(())
}

/// Sets the cluster's voter target and waits until the leader has
/// promoted that many.
fn wait_voters(
    runtime: &tokio::runtime::Runtime,
    api: &ApiClient,
    options: &Options,
) -> Result<(), RunError> {
    let body = json!({"voters": options.voters});
    let set = runtime.block_on(api.call(1, Method::PUT, "/v1/members/voters", Some(&body)));
    set.ok_body(200).ok_or_else(|| RunError::Setup {
        what: "setting the voter count",
        detail: format!("{set:?}"),
    })?;
    wait_for("the voters to be promoted", SETTLE, || {
        let status = runtime.block_on(api.status(1));
        let voters = status
            .as_ref()
            .and_then(|s| s["voters"].as_object().map(|v| v.len()));
        (
            (voters == Some(options.voters)).then_some(()),
            format!("{status:?}"),
        )
    })
    .map_err(setup("waiting for the voters"))
}

/// Injects randomly chosen faults, with calm between them, until the
/// run's time is up or `interrupt` is set.
fn inject_faults(
    nemesis: &mut Nemesis<'_, '_>,
    options: &Options,
    interrupt: &AtomicBool,
) -> Vec<FaultRecord> {
    let usable: Vec<Fault> = options
        .faults
        .iter()
        .copied()
        .filter(|f| f.min_nodes() <= options.nodes)
        .collect();
    let started = Instant::now();
    let mut records = Vec::new();
    let calm = |nemesis: &mut Nemesis<'_, '_>| {
        let quiet = nemesis.rng().gen_range(options.quiet.0..=options.quiet.1);
        let until = Instant::now() + quiet;
        while Instant::now() < until && !interrupt.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    calm(nemesis);
    while started.elapsed() < options.duration && !interrupt.load(Ordering::Relaxed) {
        let fault = *usable
            .choose(nemesis.rng())
            .expect("validate() checked that some fault is usable");
        let hold = nemesis.rng().gen_range(options.hold.0..=options.hold.1);
        let record = nemesis.inject(fault, hold);
        eprintln!("{}", crate::report::fault_line(&record));
        records.push(record);
        calm(nemesis);
    }
    records
}

/// When (seconds into the run) the leader changed, and to which node.
pub type LeaderChange = (f64, Option<u64>);

/// Records every change of leader (as the node with the highest term
/// says) until `stop`.
async fn watch_leaders(
    api: ApiClient,
    history: Arc<History>,
    leaders: Arc<Mutex<Vec<LeaderChange>>>,
    stop: Arc<AtomicBool>,
) {
    let hosts: Vec<usize> = api.hosts().collect();
    let mut last: Option<Option<u64>> = None;
    while !stop.load(Ordering::Relaxed) {
        let statuses = futures_util::future::join_all(hosts.iter().map(|&h| api.status(h))).await;
        let leader = statuses
            .iter()
            .flatten()
            .max_by_key(|s| s["term"].as_u64())
            .map(|s| s["leader"].as_u64());
        if let Some(leader) = leader {
            if last != Some(leader) {
                last = Some(leader);
                leaders
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push((history.now_s(), leader));
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A seed from the clock, for runs not asked to replay one.
pub fn fresh_seed() -> u64 {
    rand::random()
}
