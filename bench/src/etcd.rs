//! A 3-node etcd cluster on lab hosts 1 to 3 (client port 2379, peer port
//! 2380), started with a static initial cluster and etcd's defaults — which
//! fsync the WAL before every commit. Dropping it kills the members.

use std::collections::BTreeSet;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;
use stockade_chaos::netlab::Lab;

use crate::interrupt::Interrupt;
use crate::stockade::tail;

/// The client port of every member.
pub const CLIENT_PORT: u16 = 2379;
/// The peer port of every member.
pub const PEER_PORT: u16 = 2380;
/// The hosts the cluster runs on.
pub const HOSTS: [usize; 3] = [1, 2, 3];
/// How long the first election may take.
const SETTLE: Duration = Duration::from_secs(60);

/// A running 3-member etcd cluster.
pub struct EtcdCluster<'a> {
    lab: &'a Lab,
    workdir: PathBuf,
    running: Vec<Child>,
}

impl<'a> EtcdCluster<'a> {
    /// Starts the members with `binary`, data directories under `workdir`,
    /// and waits until they agree on a leader.
    pub fn start(
        lab: &'a Lab,
        binary: &Path,
        workdir: &Path,
        interrupt: &Interrupt,
    ) -> anyhow::Result<EtcdCluster<'a>> {
        std::fs::create_dir_all(workdir)
            .with_context(|| format!("creating {}", workdir.display()))?;
        let mut cluster = EtcdCluster {
            lab,
            workdir: workdir.to_owned(),
            running: Vec::new(),
        };
        let initial_cluster = HOSTS
            .iter()
            .map(|h| format!("{}={}", member_name(*h), cluster.peer_url(*h)))
            .collect::<Vec<_>>()
            .join(",");
        for host in HOSTS {
            cluster
                .spawn(binary, host, &initial_cluster)
                .with_context(|| format!("starting etcd on host {host}"))?;
        }
        interrupt
            .wait_for("the etcd members to agree on a leader", SETTLE, || {
                (cluster.leader(), cluster.statuses())
            })
            .map_err(|e| {
                let logs: String = HOSTS
                    .iter()
                    .map(|h| format!("\n--- etcd {h} log (end) ---\n{}", tail(&cluster.log(*h))))
                    .collect();
                e.context(format!("starting the etcd cluster{logs}"))
            })?;
        Ok(cluster)
    }

    fn spawn(&mut self, binary: &Path, host: usize, initial_cluster: &str) -> anyhow::Result<()> {
        let log = File::create(self.log_path(host))?;
        let client_url = self.client_url(host);
        let peer_url = self.peer_url(host);
        let child = self
            .lab
            .command(host, &binary.to_string_lossy())
            .arg("--name")
            .arg(member_name(host))
            .arg("--data-dir")
            .arg(self.workdir.join(member_name(host)))
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", initial_cluster])
            .args(["--initial-cluster-token", "stockade-bench"])
            .args(["--initial-cluster-state", "new"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.running.push(child);
        Ok(())
    }

    fn log_path(&self, host: usize) -> PathBuf {
        self.workdir.join(format!("{}.log", member_name(host)))
    }

    fn log(&self, host: usize) -> String {
        std::fs::read_to_string(self.log_path(host)).unwrap_or_default()
    }

    fn client_url(&self, host: usize) -> String {
        format!("http://{}:{CLIENT_PORT}", self.lab.address(host))
    }

    fn peer_url(&self, host: usize) -> String {
        format!("http://{}:{PEER_PORT}", self.lab.address(host))
    }

    /// The client address of host `host`'s member.
    pub fn client_addr(&self, host: usize) -> SocketAddr {
        SocketAddr::from((self.lab.address(host), CLIENT_PORT))
    }

    /// `POST /v3/maintenance/status` on host `host`'s member, from inside
    /// its namespace (`Null` when it does not answer).
    fn status(&self, host: usize) -> Value {
        let output = self
            .lab
            .command(host, "curl")
            .args(["-s", "-m", "5", "-X", "POST", "-d", "{}"])
            .arg(format!("{}/v3/maintenance/status", self.client_url(host)))
            .output();
        match output {
            Ok(out) if out.status.success() => {
                serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
            }
            _ => Value::Null,
        }
    }

    fn statuses(&self) -> String {
        HOSTS
            .iter()
            .map(|h| format!("etcd {h}: {}", self.status(*h)))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The leader's host, if every member answers and names the same
    /// leader.
    pub fn leader(&self) -> Option<usize> {
        let statuses: Vec<Value> = HOSTS.iter().map(|h| self.status(*h)).collect();
        let leaders: BTreeSet<&str> = statuses
            .iter()
            .map(|s| s["leader"].as_str())
            .collect::<Option<_>>()?;
        let [leader] = leaders.into_iter().collect::<Vec<_>>()[..] else {
            return None;
        };
        HOSTS
            .iter()
            .zip(&statuses)
            .find(|(_, s)| s["header"]["member_id"].as_str() == Some(leader))
            .map(|(h, _)| *h)
    }
}

fn member_name(host: usize) -> String {
    format!("e{host}")
}

impl Drop for EtcdCluster<'_> {
    fn drop(&mut self) {
        for child in &mut self.running {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
