//! The nemesis: injects one fault at a time into the running cluster,
//! heals it, and measures how long the cluster took to accept writes again
//! and to bring every node up to date.

mod probe;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng as StdRng;
use reqwest::Method;
use serde::Serialize;
use tokio::runtime::Runtime;

use crate::api::ApiClient;
use crate::faults::Fault;
use crate::history::History;
use crate::netlab::Lab;
use crate::nodes::Nodes;
use crate::relay::{LinkFaults, Relay};
use crate::workload::denied_connects;

/// The client number of the nemesis's own probe writes in the history.
pub const PROBE_CLIENT: usize = 1000;

/// How long the nemesis waits for the cluster to recover before it calls
/// a fault's recovery failed.
const RECOVERY_DEADLINE: Duration = Duration::from_secs(60);

/// One fault as injected.
#[derive(Clone, Debug, Serialize)]
pub struct FaultRecord {
    /// Which fault.
    pub fault: String,
    /// The hosts it hit, and how.
    pub detail: String,
    /// When it began, in seconds since the run started.
    pub start_s: f64,
    /// When it was healed.
    pub end_s: f64,
    /// For faults that take the leader away: from the fault to the first
    /// write the cluster accepted again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_recovery_ms: Option<f64>,
    /// From the heal to every node having applied a write made after it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub convergence_ms: Option<f64>,
    /// What went wrong meanwhile (a kernel that stopped enforcing, a node
    /// that never caught up).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// What the nemesis needs of the run.
pub struct Nemesis<'r, 'l> {
    /// The node processes.
    pub nodes: &'r mut Nodes<'l>,
    /// The lab they run in.
    pub lab: &'l Lab,
    /// The relay every node-to-node datagram crosses.
    pub relay: &'r Relay,
    /// The harness's runtime (the API client's calls run on it).
    pub runtime: &'r Runtime,
    /// A client with short timeouts, for probes.
    pub probe_api: ApiClient,
    /// Where probes are recorded.
    pub history: Arc<History>,
    /// The cluster's hosts.
    pub hosts: Vec<usize>,
    /// The register the probes write.
    pub probe_key: u32,
    /// `stockade-netcheck`, for the intruder of `crash-enforce`.
    pub netcheck: PathBuf,
    /// Where the intruder connects to.
    pub intruder_target: String,
    rng: StdRng,
    next_value: u64,
}

impl<'r, 'l> Nemesis<'r, 'l> {
    /// A nemesis whose choices follow `seed`.
    #[allow(clippy::too_many_arguments, reason = "the run's parts, named")]
    pub fn new(
        nodes: &'r mut Nodes<'l>,
        lab: &'l Lab,
        relay: &'r Relay,
        runtime: &'r Runtime,
        probe_api: ApiClient,
        history: Arc<History>,
        hosts: Vec<usize>,
        probe_key: u32,
        netcheck: PathBuf,
        intruder_target: String,
        seed: u64,
    ) -> Self {
        Nemesis {
            nodes,
            lab,
            relay,
            runtime,
            probe_api,
            history,
            hosts,
            probe_key,
            netcheck,
            intruder_target,
            rng: StdRng::seed_from_u64(seed ^ 0x006e_656d_6573_6973),
            next_value: (PROBE_CLIENT as u64 + 1) * 1_000_000_000,
        }
    }

    /// A random number generator drawn from the nemesis's own.
    pub fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }

    /// The host whose node the cluster says leads: the leader named by the
    /// node with the highest term that names one.
    pub fn leader(&self) -> Option<usize> {
        let statuses = self.runtime.block_on(async {
            let calls = self.hosts.iter().map(|&h| self.probe_api.status(h));
            join_all(calls).await
        });
        let best = statuses
            .iter()
            .flatten()
            .filter(|s| s["leader"].is_u64())
            .max_by_key(|s| s["term"].as_u64())?;
        let id = best["leader"].as_u64()?.to_string();
        let addr = best["voters"][&id].as_str()?;
        self.nodes.host_of(addr)
    }

    fn random_host(&mut self) -> usize {
        self.hosts[self.rng.gen_range(0..self.hosts.len())]
    }

    fn leader_or_random(&mut self) -> usize {
        self.leader().unwrap_or_else(|| self.random_host())
    }

    /// Injects `fault` for about `hold`, heals it, and measures recovery.
    pub fn inject(&mut self, fault: Fault, hold: Duration) -> FaultRecord {
        let start_s = self.history.now_s();
        let started = Instant::now();
        let mut record = FaultRecord {
            fault: fault.name().to_owned(),
            detail: String::new(),
            start_s,
            end_s: start_s,
            write_recovery_ms: None,
            convergence_ms: None,
            problems: Vec::new(),
        };
        let result = self.apply(fault, hold, started, &mut record);
        if let Err(problem) = result {
            record.problems.push(problem);
        }
        record.end_s = self.history.now_s();
        match self.converge(&[]) {
            Ok(ms) => record.convergence_ms = Some(ms),
            Err(problem) => record.problems.push(problem),
        }
        record
    }

    fn apply(
        &mut self,
        fault: Fault,
        hold: Duration,
        started: Instant,
        record: &mut FaultRecord,
    ) -> Result<(), String> {
        let all: BTreeSet<usize> = self.hosts.iter().copied().collect();
        match fault {
            Fault::Kill | Fault::KillLeader | Fault::CrashEnforce => {
                let host = if fault == Fault::KillLeader {
                    self.leader_or_random()
                } else {
                    self.random_host()
                };
                record.detail = format!("kill -9 host {host}");
                self.nodes.kill(host).map_err(|e| e.to_string())?;
                if fault == Fault::KillLeader {
                    record.write_recovery_ms = Some(self.probe_write(&[host], started)?);
                }
                if fault == Fault::CrashEnforce {
                    let (denied, text) = denied_connects(
                        self.lab,
                        &self.netcheck,
                        host,
                        "intruder",
                        &self.intruder_target,
                        5,
                    );
                    record.detail += &format!(", kernel denied {denied:?} of 5 intruder connections while the daemon was down");
                    if denied != Some(5) {
                        record.problems.push(format!(
                            "host {host}'s kernel let an intruder through while its daemon was down: {text}"
                        ));
                    }
                }
                sleep_rest(started, hold);
                self.nodes.start(host).map_err(|e| e.to_string())?;
            }
            Fault::Pause | Fault::PauseLeader => {
                let host = if fault == Fault::PauseLeader {
                    self.leader_or_random()
                } else {
                    self.random_host()
                };
                record.detail = format!("SIGSTOP host {host}");
                self.nodes.pause(host, true).map_err(|e| e.to_string())?;
                if fault == Fault::PauseLeader {
                    let recovered = self.probe_write(&[host], started);
                    record.write_recovery_ms = recovered.as_ref().ok().copied();
                    if let Err(problem) = recovered {
                        record.problems.push(problem);
                    }
                }
                sleep_rest(started, hold);
                self.nodes.pause(host, false).map_err(|e| e.to_string())?;
            }
            Fault::PartitionLeader
            | Fault::PartitionLeaderMinority
            | Fault::PartitionOne
            | Fault::PartitionHalves => {
                let lonely = match fault {
                    Fault::PartitionLeader | Fault::PartitionLeaderMinority => {
                        self.leader_or_random()
                    }
                    _ => self.random_host(),
                };
                let side = self.minority_side(fault, lonely);
                let rest: BTreeSet<usize> = all.difference(&side).copied().collect();
                record.detail = format!("partition {side:?} | {rest:?}");
                self.relay.partition(&[side.clone(), rest]);
                if matches!(
                    fault,
                    Fault::PartitionLeader | Fault::PartitionLeaderMinority
                ) {
                    let exclude: Vec<usize> = side.into_iter().collect();
                    let recovered = self.probe_write(&exclude, started);
                    record.write_recovery_ms = recovered.as_ref().ok().copied();
                    if let Err(problem) = recovered {
                        record.problems.push(problem);
                    }
                }
                sleep_rest(started, hold);
                self.relay.heal();
            }
            Fault::PartitionBridge => {
                let mut order = self.hosts.clone();
                order.shuffle(&mut self.rng);
                let half = order.len() / 2;
                let bridge = order[half];
                let left: Vec<usize> = order[..half].to_vec();
                let right: Vec<usize> = order[half + 1..].to_vec();
                for &a in &left {
                    for &b in &right {
                        let cut = LinkFaults {
                            cut: true,
                            ..LinkFaults::default()
                        };
                        self.relay.set_link(a, b, cut);
                        self.relay.set_link(b, a, cut);
                    }
                }
                record.detail = format!("{left:?} and {right:?} see only host {bridge}");
                sleep_rest(started, hold);
                self.relay.heal();
            }
            Fault::Loss | Fault::Duplicate | Fault::Reorder => {
                let faults = match fault {
                    Fault::Loss => LinkFaults {
                        loss: self.rng.gen_range(0.1..0.4),
                        ..LinkFaults::default()
                    },
                    Fault::Duplicate => LinkFaults {
                        duplicate: self.rng.gen_range(0.2..0.6),
                        ..LinkFaults::default()
                    },
                    _ => LinkFaults {
                        delay_min: Duration::from_millis(1),
                        delay_max: Duration::from_millis(self.rng.gen_range(20..120)),
                        reorder: self.rng.gen_range(0.1..0.4),
                        ..LinkFaults::default()
                    },
                };
                record.detail = format!(
                    "every link: loss {:.2}, duplicate {:.2}, delay {:?}..{:?}, reorder {:.2}",
                    faults.loss,
                    faults.duplicate,
                    faults.delay_min,
                    faults.delay_max,
                    faults.reorder
                );
                self.relay.set_all(faults);
                sleep_rest(started, hold);
                self.relay.heal();
            }
            Fault::Membership => {
                let leader = self.leader().ok_or("no leader to change the membership")?;
                let candidates: Vec<usize> = self
                    .hosts
                    .iter()
                    .copied()
                    .filter(|h| *h != leader)
                    .collect();
                let host = candidates[self.rng.gen_range(0..candidates.len())];
                let id = self
                    .runtime
                    .block_on(self.probe_api.status(host))
                    .and_then(|s| s["node_id"].as_u64())
                    .ok_or(format!("host {host} does not say its node id"))?;
                self.remove_member(leader, id)?;
                self.nodes.kill(host).map_err(|e| e.to_string())?;
                self.nodes.wipe(host).map_err(|e| e.to_string())?;
                sleep_rest(started, hold / 2);
                let leader = self.leader().ok_or("no leader to join through")?;
                let token = self
                    .nodes
                    .join_token(leader, "10m")
                    .map_err(|e| e.to_string())?;
                self.nodes
                    .join(host, leader, &token)
                    .map_err(|e| e.to_string())?;
                record.detail =
                    format!("removed host {host} (node {id}), wiped it, joined it again");
                self.wait_member(host)?;
            }
            Fault::RollingRestart => {
                record.detail = format!("SIGTERM and start, in turn: {:?}", self.hosts);
                for host in self.hosts.clone() {
                    self.nodes.stop(host).map_err(|e| e.to_string())?;
                    self.nodes.start(host).map_err(|e| e.to_string())?;
                    self.converge(&[])?;
                }
            }
        }
        Ok(())
    }

    /// The side of a partition that holds `lonely`: alone, with a
    /// minority of the voters (learners fall on either side), or with
    /// half of the hosts.
    fn minority_side(&mut self, fault: Fault, lonely: usize) -> BTreeSet<usize> {
        let mut others: Vec<usize> = self
            .hosts
            .iter()
            .copied()
            .filter(|h| *h != lonely)
            .collect();
        others.shuffle(&mut self.rng);
        let mut side = BTreeSet::from([lonely]);
        match fault {
            Fault::PartitionLeaderMinority => {
                // Quorum counts voters only: the leader's side must hold
                // fewer than half of them, whatever the learners do.
                let voters = self.voters();
                let mut room = voters.len().saturating_sub(1) / 2;
                room = room.saturating_sub(usize::from(voters.contains(&lonely)));
                for host in others {
                    if voters.contains(&host) {
                        if room > 0 {
                            room -= 1;
                            side.insert(host);
                        }
                    } else if self.rng.gen_bool(0.5) {
                        side.insert(host);
                    }
                }
            }
            Fault::PartitionHalves => {
                side.extend(others.into_iter().take((self.hosts.len() - 1) / 2))
            }
            _ => {}
        }
        side
    }

    /// The hosts whose nodes vote, as the leader (or any node) says.
    fn voters(&self) -> BTreeSet<usize> {
        let statuses = self.runtime.block_on(join_all(
            self.hosts.iter().map(|&h| self.probe_api.status(h)),
        ));
        statuses
            .iter()
            .flatten()
            .max_by_key(|s| (s["role"] == "leader", s["term"].as_u64()))
            .and_then(|s| s["voters"].as_object().cloned())
            .map(|voters| {
                voters
                    .values()
                    .filter_map(|addr| self.nodes.host_of(addr.as_str()?))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn remove_member(&self, leader: usize, id: u64) -> Result<(), String> {
        let reply = self.runtime.block_on(self.probe_api.call(
            leader,
            Method::DELETE,
            &format!("/v1/members/{id}"),
            None,
        ));
        reply
            .ok_body(200)
            .map(drop)
            .ok_or_else(|| format!("removing node {id} through host {leader}: {reply:?}"))
    }

    fn wait_member(&self, host: usize) -> Result<(), String> {
        let deadline = Instant::now() + RECOVERY_DEADLINE;
        while Instant::now() < deadline {
            let status = self.runtime.block_on(self.probe_api.status(host));
            if status.is_some_and(|s| s["applied_index"].as_u64().is_some() && s["leader"].is_u64())
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err(format!("host {host} did not come back as a member"))
    }
}

fn sleep_rest(started: Instant, hold: Duration) {
    if let Some(rest) = hold.checked_sub(started.elapsed()) {
        std::thread::sleep(rest);
    }
}
