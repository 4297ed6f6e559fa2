//! The reconciler: keeps this node's kernel maps equal to what the policy
//! engine compiles for it, and tells the cluster where its workloads listen.
//!
//! It wakes on every applied log index, on exec events from the kernel, and
//! on a timer; rescans the subtree when processes may have changed; compiles,
//! encodes and writes only the difference; then records the index the
//! dataplane has reached for `GET /v1/status`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context as _, Result};
use serde::Serialize;
use stockade_bpf::{
    cgroup2_root, cgroup_id, common::events::EVENT_EXEC, common::events::FLAG_UNKNOWN_BINARY,
    process_exists, Dataplane, DataplaneSettings, Event, EventReader,
};
use stockade_policy::{
    compile, ClusterState, Command, DataplaneEntries, Endpoint, IdentityId, NodeId, Subject,
    WorkloadKey, ZoneId,
};
use tokio::io::{unix::AsyncFd, Interest};
use tokio::sync::watch;
use tokio::time::Instant;
use utoipa::ToSchema;

use super::encode::encode;
use super::local::{LocalScan, LocalScanner};
use super::LocalView;
use crate::alerts::observe::{self, RecentExecs};
use crate::alerts::Raiser;
use crate::clock::now_ms;
use crate::cluster::ControlPlane;
use crate::config::DataplaneConfig;
use crate::flows::event_record;
use crate::flows::names::Namer;
use crate::inventory::{procs, ExecutableHasher};

/// How often the subtree is rescanned when nothing else prompts it.
const RESCAN_EVERY: Duration = Duration::from_secs(2);

/// An exec of a binary the kernel did not know, in a cgroup that gives no
/// identity either.
struct UnknownExec {
    pid: u32,
    path: String,
    zone: Option<ZoneId>,
    /// Its cgroup, read while the event was fresh: a cgroup created just
    /// before the exec is unknown to the kernel until the next rescan, but
    /// may give the process its identity.
    cgroup: Option<u64>,
}

/// The dataplane part of `GET /v1/status`.
#[derive(Clone, Debug, Default, Serialize, ToSchema)]
pub struct DataplaneStatus {
    /// The applied log index whose policy is in the kernel maps.
    pub index: u64,
    /// The cgroup v2 subtree the hooks enforce.
    pub cgroup: String,
    /// The bpffs folder of the pins.
    pub pin_dir: String,
    /// `attached`, `adopted` (found pinned at start) or `repaired`.
    pub attachment: String,
    /// Entries the maps should hold now, over all maps.
    pub entries: usize,
    /// Each enforcement map's entries (as last written) and capacity.
    pub maps: Vec<super::MapUsage>,
    /// `MapContents::enforcement_digest` of the maps as last written
    /// successfully (those of `index`): lowercase hex SHA-256 over every
    /// map but the processes one. Comparing it with the digest of the
    /// pinned maps (`stockade_bpf::read_pinned`) tells whether the kernel
    /// holds what the daemon meant it to. Empty until the first write.
    pub maps_digest: String,
    /// Flows the kernel allowed.
    pub allowed: u64,
    /// Flows the kernel denied.
    pub denied: u64,
    /// Events the ring buffer could not take.
    pub events_lost: u64,
    /// The last reconciliation error, if the last attempt failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The running reconciler.
pub struct Running {
    stop: watch::Sender<bool>,
    /// The reconciler and the flow collector.
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops the reconciler and waits until it has: the runtime must not
    /// shut down under it while a reconciliation runs on a blocking thread
    /// (its timers would then panic, as the chaos harness found on
    /// SIGTERM). The pinned maps stay in force.
    pub async fn stop(self) {
        self.stop.send_replace(true);
        for task in self.tasks {
            if let Err(e) = task.await {
                tracing::warn!(error = %e, "a dataplane task ended badly");
            }
        }
    }
}

/// Opens (or adopts) the dataplane and runs the reconciler until
/// [`Running::stop`].
pub fn start(
    control: Arc<ControlPlane>,
    config: &DataplaneConfig,
    data_dir: &Path,
    advertise: SocketAddr,
    raiser: Raiser,
    tunnel_local_port: Option<u16>,
) -> Result<Running> {
    let cgroup_root = cgroup2_root().context("finding the cgroup v2 hierarchy")?;
    let cgroup = config.cgroup.clone().unwrap_or_else(|| cgroup_root.clone());
    let settings = DataplaneSettings {
        pin_dir: config.pin_dir.clone(),
        cgroup: cgroup.clone(),
    };
    let mut dataplane = Dataplane::open(settings).with_context(|| {
        format!(
            "starting the dataplane on cgroup {} with pins in {}",
            cgroup.display(),
            config.pin_dir.display()
        )
    })?;
    // Without a tunnel, port 0 tells the connect hook to refuse what a rule
    // encrypts.
    dataplane
        .set_tunnel_port(tunnel_local_port.unwrap_or(0))
        .context("telling the dataplane where the tunnel is")?;
    let attachment = format!("{:?}", dataplane.attachment()).to_lowercase();
    tracing::info!(cgroup = %cgroup.display(), pins = %config.pin_dir.display(), %attachment, "dataplane ready");
    let reader = dataplane.take_events()?;
    // SAFETY: the reader owns the ring buffer's map, whose descriptor stays
    // open and unchanged until the reader (inside the AsyncFd) is dropped.
    let events = unsafe { AsyncFd::register_with_interest(reader, Interest::READABLE) }
        .map_err(|e| anyhow::anyhow!("polling the event ring buffer: {e}"))?;
    let summaries = dataplane.take_flows()?;
    let (view, view_rx) = watch::channel(Arc::new(LocalView::default()));
    let recent_execs = Arc::new(Mutex::new(RecentExecs::default()));
    let sources = crate::flows::Sources {
        summaries,
        view: view_rx.clone(),
        recent: Arc::clone(&recent_execs),
        address: advertise.ip(),
        raiser: raiser.clone(),
    };
    let (stop, stopped) = watch::channel(false);
    let collector = crate::flows::start(Arc::clone(&control), data_dir, sources, stopped.clone())?;
    crate::inventory::report::start(Arc::clone(&control), view_rx);
    let node = NodeId(control.raft().id());
    let status = DataplaneStatus {
        cgroup: cgroup.display().to_string(),
        pin_dir: config.pin_dir.display().to_string(),
        attachment,
        ..DataplaneStatus::default()
    };
    let reconciler = Reconciler {
        control,
        dataplane,
        scanner: LocalScanner::new(&cgroup_root, &cgroup),
        node,
        advertise: advertise.ip(),
        scan: LocalScan::default(),
        status,
        publishing: None,
        raiser,
        unknown_execs: Vec::new(),
        cgroup_root,
        hasher: ExecutableHasher::new(),
        recent_execs,
        compiled_revision: None,
        view,
        events_lost: 0,
        users: procs::user_names(&std::fs::read_to_string("/etc/passwd").unwrap_or_default()),
    };
    let task = tokio::spawn(reconciler.run(events, stopped));
    Ok(Running {
        stop,
        tasks: vec![task, collector],
    })
}

struct Reconciler {
    control: Arc<ControlPlane>,
    dataplane: Dataplane,
    scanner: LocalScanner,
    node: NodeId,
    advertise: IpAddr,
    scan: LocalScan,
    status: DataplaneStatus,
    /// The endpoint publication in flight, if any.
    publishing: Option<tokio::task::JoinHandle<()>>,
    /// Where alerts go.
    raiser: Raiser,
    /// Execs the kernel could not identify, judged after the next rescan:
    /// the binary may have been registered meanwhile.
    unknown_execs: Vec<UnknownExec>,
    /// Where the cgroup v2 hierarchy is mounted.
    cgroup_root: PathBuf,
    /// Digests of the binaries of unknown execs whose process has ended.
    hasher: ExecutableHasher,
    /// What the latest execs ran, for the alerts and flow records of
    /// short-lived processes.
    recent_execs: Arc<Mutex<RecentExecs>>,
    /// The policy revision the maps hold, when they hold the scan's too.
    compiled_revision: Option<u64>,
    /// The last scan with the subject of each local workload, as last
    /// compiled, for the flow collector and the inventory.
    view: watch::Sender<Arc<LocalView>>,
    /// Ring-buffer overflows already alerted on.
    events_lost: u64,
    /// User names by uid, for flow records.
    users: BTreeMap<u32, String>,
}

impl Reconciler {
    async fn run(mut self, mut events: AsyncFd<EventReader>, mut stop: watch::Receiver<bool>) {
        let mut applied = self.control.raft().state().subscribe();
        let mut timer = tokio::time::interval(RESCAN_EVERY);
        // Under a stream of writes, pause after each reconciliation as long
        // as it took: changes that arrive meanwhile coalesce into the next
        // one, and the reconciler never takes more than half a core.
        let mut next_allowed = Instant::now();
        loop {
            let rescan = tokio::select! {
                _ = stop.wait_for(|stop| *stop) => return,
                changed = applied.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    false
                }
                _ = timer.tick() => true,
                readable = events.readable_mut() => match readable {
                    Ok(mut guard) => {
                        let execs = self.drain(guard.get_inner_mut());
                        guard.clear_ready();
                        execs > 0
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "event ring buffer unusable; events stop");
                        return;
                    }
                },
            };
            let (index, revision) = self
                .control
                .raft()
                .state()
                .read_applied(|applied, s| (applied.map_or(0, |l| l.index), s.policy_revision));
            // Alerts and delivery cursors change the state without changing
            // what the kernel enforces: the maps are current for this index.
            if !rescan && self.compiled_revision == Some(revision) {
                if self.status.index != index {
                    self.status.index = index;
                    self.control.set_dataplane_status(self.status.clone());
                }
                continue;
            }
            tokio::time::sleep_until(next_allowed).await;
            let started = Instant::now();
            // Compiling a large policy takes a while (about 0.3 s for 100 000
            // rules): off the runtime's worker, so Raft and QUIC keep running.
            tokio::task::block_in_place(|| {
                if rescan {
                    self.rescan();
                }
                self.reconcile();
            });
            self.judge_unknown_execs();
            next_allowed = Instant::now() + started.elapsed();
        }
    }

    fn rescan(&mut self) {
        match self.scanner.scan(std::process::id()) {
            Ok(scan) => self.scan = scan,
            Err(e) => tracing::warn!(error = %e, "cannot scan local workloads"),
        }
    }

    fn reconcile(&mut self) {
        let compiled = self.control.raft().state().read_applied(|applied, state| {
            compile(state, self.node, &self.scan.workloads).map(|entries| {
                (
                    applied.map_or(0, |l| l.index),
                    encode(&entries),
                    self.endpoint_changes(state, &entries),
                    state.policy_revision,
                    entries.workloads,
                )
            })
        });
        let (index, maps, changes, revision, workloads) = match compiled {
            Ok(compiled) => compiled,
            // Not yet in the state (a joining node): nothing to enforce yet.
            Err(e) => {
                self.status.error = Some(e.to_string());
                return;
            }
        };
        match self.dataplane.write(&maps, process_exists) {
            Ok(summary) => {
                if summary.upserts + summary.deletes > 0 {
                    tracing::debug!(index, ?summary, "dataplane updated");
                }
                self.status.index = index;
                self.status.entries = maps.len();
                self.status.maps = super::usage::enforcement(&maps);
                // Hashing costs a fraction of the compilation before it.
                self.status.maps_digest = maps.enforcement_digest();
                self.status.error = None;
                self.compiled_revision = Some(revision);
                self.view.send_replace(Arc::new(LocalView {
                    scan: self.scan.clone(),
                    subjects: workloads,
                }));
            }
            Err(e) => {
                tracing::error!(index, error = %e, "cannot write the dataplane maps");
                self.status.error = Some(format!("{e}"));
            }
        }
        if let Ok(stats) = self.dataplane.stats() {
            self.status.allowed = stats.allowed;
            self.status.denied = stats.denied;
            self.status.events_lost = stats.events_lost;
            if stats.events_lost > self.events_lost {
                let lost = stats.events_lost - self.events_lost;
                self.events_lost = stats.events_lost;
                tracing::error!(
                    lost,
                    total = stats.events_lost,
                    "the event ring buffer overflowed"
                );
                self.raiser
                    .observe(observe::events_lost(lost, stats.events_lost));
            }
        }
        self.control.set_dataplane_status(self.status.clone());
        if let Some(command) = changes {
            self.publish(command);
        }
    }

    /// The command that makes the state's endpoints of this node match the
    /// identified processes' listening sockets, if they differ.
    fn endpoint_changes(
        &self,
        state: &ClusterState,
        entries: &DataplaneEntries,
    ) -> Option<Command> {
        let mut desired = BTreeSet::new();
        for listener in &self.scan.listeners {
            let Some(subject) = entries.workloads.get(&WorkloadKey::Process(listener.pid)) else {
                continue;
            };
            let Some(identity) = state.identities.get(&subject.identity) else {
                continue;
            };
            if !subject.identity.is_allocatable() || listener.ip.is_loopback() {
                continue;
            }
            let ip = if listener.ip.is_unspecified() {
                self.advertise
            } else {
                listener.ip
            };
            desired.insert((ip, listener.port, identity.name.clone()));
        }
        let current: BTreeSet<_> = state
            .endpoints
            .values()
            .filter(|e| e.node == self.node)
            .filter_map(|e| Some((e.ip, e.port?, e.identity.clone())))
            .collect();
        if desired == current {
            return None;
        }
        let removals = current
            .difference(&desired)
            .map(|(ip, port, _)| Command::RemoveEndpoint {
                ip: *ip,
                port: Some(*port),
            });
        let upserts = desired.difference(&current).map(|(ip, port, identity)| {
            Command::UpsertEndpoint(Endpoint {
                node: self.node,
                ip: *ip,
                port: Some(*port),
                identity: identity.clone(),
            })
        });
        Some(Command::batch(removals.chain(upserts).collect()))
    }

    /// Writes endpoint changes in the background, one publication at a time
    /// (the next reconciliation recomputes what is still missing).
    fn publish(&mut self, command: Command) {
        if self
            .publishing
            .as_ref()
            .is_some_and(|task| !task.is_finished())
        {
            return;
        }
        let control = Arc::clone(&self.control);
        self.publishing = Some(tokio::spawn(async move {
            if let Err(e) = control.write(command).await {
                tracing::warn!(error = %e, "cannot publish this node's endpoints");
            }
        }));
    }
}

impl Reconciler {
    /// Reads the events waiting in the ring buffer: flows that are alerts
    /// go to the raiser at once, unknown execs wait for the rescan they
    /// cause. Returns how many execs there were.
    fn drain(&mut self, reader: &mut EventReader) -> usize {
        let mut execs = 0;
        let mut unknown = Vec::new();
        let control = Arc::clone(&self.control);
        let (raiser, local) = (&self.raiser, &self.scan.workloads);
        let (node, address, users) = (self.node, self.advertise, &self.users);
        let view = self.view.borrow();
        let mut recent = self
            .recent_execs
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let cgroup_root = &self.cgroup_root;
        let read = control.with_state(|state| {
            reader.drain(|event: Event| {
                if event.kind == EVENT_EXEC {
                    execs += 1;
                    recent.record(event.pid, observe::c_string(&event.path));
                    // The kernel gives an unknown binary its cgroup's
                    // identity, if any: then only the binary is unknown.
                    if event.flags & FLAG_UNKNOWN_BINARY != 0
                        && !IdentityId(event.src.identity).is_allocatable()
                    {
                        let cgroup = procs::cgroup_of(event.pid).and_then(|path| {
                            cgroup_id(&cgroup_root.join(path.trim_start_matches('/'))).ok()
                        });
                        unknown.push(UnknownExec {
                            pid: event.pid,
                            path: observe::c_string(&event.path),
                            zone: (event.src.zone != 0).then_some(ZoneId(event.src.zone)),
                            cgroup,
                        });
                    }
                } else {
                    let namer = Namer {
                        state,
                        view: &view,
                        recent: &recent,
                        node,
                        address,
                        users,
                    };
                    let observation = event_record(&event, &namer, now_ms())
                        .and_then(|record| observe::flow(&record, state, local, 1));
                    if let Some(observation) = observation {
                        tracing::debug!(summary = %observation.summary, "flow alert");
                        raiser.observe(observation);
                    }
                }
            })
        });
        drop(recent);
        drop(view);
        if let Some(flows) = control.flows() {
            flows.count_events(read as u64);
        }
        self.unknown_execs.extend(unknown);
        execs
    }

    /// Raises the unknown execs that are still unknown after the rescan.
    fn judge_unknown_execs(&mut self) {
        if self.unknown_execs.is_empty() {
            return;
        }
        let execs = std::mem::take(&mut self.unknown_execs);
        let control = Arc::clone(&self.control);
        control.with_state(|state| {
            for exec in execs {
                let key = WorkloadKey::Process(exec.pid);
                let view = self.view.borrow();
                let by_cgroup = exec
                    .cgroup
                    .and_then(|id| view.subjects.get(&WorkloadKey::Cgroup(id)));
                let subject = view
                    .subjects
                    .get(&key)
                    .or(by_cgroup)
                    .copied()
                    .unwrap_or(Subject {
                        identity: IdentityId::UNKNOWN,
                        zone: exec.zone,
                    });
                // A process that ended before the scan: hash its file.
                let sha256 = match view.subjects.contains_key(&key) {
                    true => None,
                    false => self.hasher.hash(Path::new(&exec.path)).ok().map(|(_, sha)| sha),
                };
                drop(view);
                let local = &self.scan.workloads;
                if let Some(observation) =
                    observe::exec(exec.pid, &exec.path, sha256, Some(&subject), state, local)
                {
                    tracing::info!(pid = exec.pid, path = %exec.path, kind = %observation.kind, "binary alert");
                    self.raiser.observe(observation);
                }
            }
        });
    }
}
