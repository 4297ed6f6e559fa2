//! Real `stockade` processes on the hosts of a [`Lab`]: created with `init`
//! and `join`, started, stopped, killed, and spoken to through their admin
//! API from inside their namespace.
//!
//! Every node binds QUIC to `0.0.0.0:7400`, advertises `address:7400`, and
//! serves its API on `address:7480` of its host. Dropping the [`Nodes`] kills every process.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use serde_json::Value;

use crate::netlab::Lab;

/// The QUIC port of every node.
pub const QUIC_PORT: u16 = 7400;
/// The admin API port of every node.
pub const API_PORT: u16 = 7480;

/// Why a node operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NodesError {
    /// A process could not be started or waited for.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A command ran but failed.
    #[error("{what} failed: {output}")]
    Command {
        /// What was being done.
        what: String,
        /// What it printed.
        output: String,
    },
    /// A condition did not come true in time.
    #[error("timed out after {after:?} waiting for {what}; last seen: {last}")]
    Timeout {
        /// The condition.
        what: String,
        /// How long was waited.
        after: Duration,
        /// The last observation.
        last: String,
    },
}

type Result<T> = std::result::Result<T, NodesError>;

/// An HTTP reply: status code and body.
#[derive(Clone, Debug)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub body: String,
}

impl Reply {
    /// The body as JSON (`Null` if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// The `stockade` processes of a lab.
pub struct Nodes<'a> {
    lab: &'a Lab,
    binary: PathBuf,
    workdir: PathBuf,
    running: BTreeMap<usize, Child>,
    /// The admin token `init` printed.
    pub admin_token: String,
    /// Extra arguments for every `start` and `join`.
    pub node_args: Vec<String>,
    /// Addresses nodes advertise instead of their own (a relay's), by
    /// host.
    advertised: BTreeMap<usize, SocketAddr>,
}

impl<'a> Nodes<'a> {
    /// Initialises a cluster on host 1 (`stockade init`), without starting
    /// it. Data directories and logs go under `workdir`.
    pub fn init(lab: &'a Lab, binary: &Path, workdir: &Path, extra: &[&str]) -> Result<Self> {
        Self::init_advertising(lab, binary, workdir, extra, BTreeMap::new())
    }

    /// Like [`Nodes::init`], with the QUIC address each host's node
    /// advertises where it is not its own (`advertise`, by host): a relay
    /// in front of it, as behind NAT.
    pub fn init_advertising(
        lab: &'a Lab,
        binary: &Path,
        workdir: &Path,
        extra: &[&str],
        advertise: BTreeMap<usize, SocketAddr>,
    ) -> Result<Self> {
        let mut nodes = Nodes {
            lab,
            binary: binary.to_owned(),
            workdir: workdir.to_owned(),
            running: BTreeMap::new(),
            admin_token: String::new(),
            node_args: Vec::new(),
            advertised: BTreeMap::new(),
        };
        nodes.advertised.extend(advertise);
        let mut command = nodes.stockade(1, "init");
        command.args(extra);
        let output = command.output().map_err(|source| NodesError::Io {
            what: "running stockade init".into(),
            source,
        })?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            return Err(NodesError::Command {
                what: "stockade init".into(),
                output: format!("{stdout}{}", String::from_utf8_lossy(&output.stderr)),
            });
        }
        nodes.admin_token = stdout
            .lines()
            .find(|l| l.starts_with("stk_"))
            .ok_or_else(|| NodesError::Command {
                what: "finding the admin token in init's output".into(),
                output: stdout.clone(),
            })?
            .to_owned();
        Ok(nodes)
    }

    /// The data directory of host `host`'s node.
    pub fn data_dir(&self, host: usize) -> PathBuf {
        self.workdir.join(format!("node{host}"))
    }

    fn log_path(&self, host: usize) -> PathBuf {
        self.workdir.join(format!("node{host}.log"))
    }

    /// The QUIC address host `host`'s node advertises.
    pub fn advertised(&self, host: usize) -> SocketAddr {
        self.advertised
            .get(&host)
            .copied()
            .unwrap_or_else(|| SocketAddr::from((self.lab.address(host), QUIC_PORT)))
    }

    /// A `stockade <subcommand>` on host `host` with the node settings of
    /// that host.
    fn stockade(&self, host: usize, subcommand: &str) -> Command {
        let addr = self.lab.address(host);
        let advertised = self.advertised(host);
        let mut command = self.lab.command(host, &self.binary.to_string_lossy());
        command
            .arg(subcommand)
            .arg("--name")
            .arg(format!("node{host}"))
            .arg("--data-dir")
            .arg(self.data_dir(host))
            // Bound to every address, advertised as the host's: the bind and
            // advertised addresses differ, as behind NAT.
            .arg("--listen")
            .arg(format!("0.0.0.0:{QUIC_PORT}"))
            .arg("--advertise")
            .arg(advertised.to_string())
            .arg("--api-listen")
            .arg(format!("{addr}:{API_PORT}"))
            // Each host's node enforces its own cgroup subtree, with its
            // own pins: several nodes share this kernel.
            .arg("--cgroup")
            .arg(self.lab.cgroup(host))
            .arg("--pin-dir")
            .arg(self.lab.pin_dir(host))
            // The harness's own STOCKADE_LOG, when set, reaches the nodes:
            // a failed run can be replayed with more detail.
            .env(
                "STOCKADE_LOG",
                std::env::var("STOCKADE_LOG").unwrap_or_else(|_| "info,openraft=warn".into()),
            );
        command
    }

    fn spawn(&mut self, host: usize, mut command: Command) -> Result<()> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path(host))
            .map_err(|source| NodesError::Io {
                what: format!("opening the log of node {host}"),
                source,
            })?;
        let err = log.try_clone().map_err(|source| NodesError::Io {
            what: "duplicating a log handle".into(),
            source,
        })?;
        // A process group of its own: Ctrl-C at the harness's terminal
        // must not reach the nodes, which the harness stops itself.
        let child = command
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|source| NodesError::Io {
                what: format!("starting node {host}"),
                source,
            })?;
        self.running.insert(host, child);
        Ok(())
    }

    /// The host whose node advertises `addr` (`10.77.0.N:7400`), if any.
    pub fn host_of(&self, addr: &str) -> Option<usize> {
        (1..=self.lab.hosts()).find(|h| addr == self.advertised(*h).to_string())
    }

    /// Starts host `host`'s node from its data directory.
    pub fn start(&mut self, host: usize) -> Result<()> {
        let mut command = self.stockade(host, "start");
        command.args(&self.node_args);
        self.spawn(host, command)
    }

    /// Joins host `host` through host `member`'s node with `token`, and
    /// keeps it running.
    pub fn join(&mut self, host: usize, member: usize, token: &str) -> Result<()> {
        let mut command = self.stockade(host, "join");
        command
            .args(&self.node_args)
            .arg("--token")
            .arg(token)
            .arg(self.advertised(member).to_string());
        self.spawn(host, command)
    }

    /// Creates a join token through host `host`'s API.
    pub fn join_token(&self, host: usize, ttl: &str) -> Result<String> {
        let output = self
            .lab
            .command(host, &self.binary.to_string_lossy())
            .args([
                "token",
                "create",
                "--ttl",
                ttl,
                "--api",
                &self.api_url(host),
                "--api-token",
                &self.admin_token,
            ])
            .output()
            .map_err(|source| NodesError::Io {
                what: "running stockade token create".into(),
                source,
            })?;
        if !output.status.success() {
            return Err(NodesError::Command {
                what: "stockade token create".into(),
                output: String::from_utf8_lossy(&output.stderr).into_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// Kills host `host`'s node with SIGKILL (a crash).
    pub fn kill(&mut self, host: usize) -> Result<()> {
        if let Some(mut child) = self.running.remove(&host) {
            let _ = child.kill();
            child.wait().map_err(|source| NodesError::Io {
                what: format!("reaping node {host}"),
                source,
            })?;
        }
        Ok(())
    }

    /// Stops host `host`'s node with SIGTERM and waits for it.
    pub fn stop(&mut self, host: usize) -> Result<()> {
        if let Some(mut child) = self.running.remove(&host) {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            child.wait().map_err(|source| NodesError::Io {
                what: format!("waiting for node {host}"),
                source,
            })?;
        }
        Ok(())
    }

    /// Pauses host `host`'s node with SIGSTOP (a stalled process: a long
    /// GC pause, a frozen VM), or resumes it with SIGCONT.
    pub fn pause(&self, host: usize, paused: bool) -> Result<()> {
        let Some(pid) = self.pid(host) else {
            return Ok(());
        };
        let signal = if paused {
            Signal::SIGSTOP
        } else {
            Signal::SIGCONT
        };
        let pid = i32::try_from(pid).map_err(|_| NodesError::Io {
            what: format!("signalling node {host}"),
            source: std::io::Error::other("pid out of range"),
        })?;
        nix::sys::signal::kill(Pid::from_raw(pid), signal).map_err(|e| NodesError::Io {
            what: format!("sending {signal} to node {host}"),
            source: e.into(),
        })
    }

    /// Deletes host `host`'s data directory (the node must not run): it
    /// can then join again as a new member.
    pub fn wipe(&self, host: usize) -> Result<()> {
        let dir = self.data_dir(host);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(NodesError::Io {
                what: format!("removing {}", dir.display()),
                source: e,
            }),
            _ => Ok(()),
        }
    }

    /// Whether host `host`'s node process is still running.
    pub fn is_running(&mut self, host: usize) -> bool {
        self.running
            .get_mut(&host)
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The process id of host `host`'s node, while it runs. `nsenter`
    /// execs the node in place (it enters no pid namespace, so it does not
    /// fork): this is the `stockade` process itself.
    pub fn pid(&self, host: usize) -> Option<u32> {
        self.running.get(&host).map(Child::id)
    }

    /// The node's log so far.
    pub fn log(&self, host: usize) -> String {
        std::fs::read_to_string(self.log_path(host)).unwrap_or_default()
    }

    /// The base URL of host `host`'s admin API.
    pub fn api_url(&self, host: usize) -> String {
        format!("http://{}:{API_PORT}", self.lab.address(host))
    }

    /// One admin API call on host `host`, from inside its namespace.
    pub fn api(
        &self,
        host: usize,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> Result<Reply> {
        let mut command = self.lab.command(host, "curl");
        command.args([
            "-s",
            "-m",
            "20",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "-X",
            method,
        ]);
        if let Some(token) = token {
            command
                .arg("-H")
                .arg(format!("Authorization: Bearer {token}"));
        }
        if let Some(body) = body {
            command.args([
                "-H",
                "content-type: application/json",
                "--data-binary",
                body,
            ]);
        }
        command.arg(format!("{}{path}", self.api_url(host)));
        let output = command.output().map_err(|source| NodesError::Io {
            what: "running curl".into(),
            source,
        })?;
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        Ok(Reply {
            status: code.trim().parse().unwrap_or(0),
            body: body.to_owned(),
        })
    }

    /// `GET /v1/status` of host `host` with the admin token (`Null` when the
    /// node does not answer).
    pub fn status(&self, host: usize) -> Value {
        self.api(host, "GET", "/v1/status", Some(&self.admin_token), None)
            .map(|r| {
                if r.status == 200 {
                    r.json()
                } else {
                    Value::Null
                }
            })
            .unwrap_or(Value::Null)
    }

    /// The hosts whose nodes host `host` lists as `kind` (`voters` or
    /// `learners`).
    pub fn members(&self, host: usize, kind: &str) -> BTreeSet<usize> {
        self.status(host)[kind]
            .as_object()
            .map(|m| {
                m.values()
                    .filter_map(|a| self.host_of(a.as_str()?))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Starts host 1 and waits for it to lead, then joins hosts `2..=n` one
    /// after the other, waiting up to `settle` for each to be a member.
    pub fn form_cluster(&mut self, n: usize, settle: Duration) -> Result<()> {
        self.start(1)?;
        wait_for("node 1 to lead", settle, || {
            let s = self.status(1);
            ((s["role"] == "leader").then_some(()), s.to_string())
        })?;
        for host in 2..=n {
            let token = self.join_token(1, "10m")?;
            self.join(host, 1, &token)?;
            wait_for(&format!("host {host} to be a member"), settle, || {
                let all: BTreeSet<usize> = self
                    .members(1, "voters")
                    .union(&self.members(1, "learners"))
                    .copied()
                    .collect();
                (all.contains(&host).then_some(()), self.log(host))
            })?;
        }
        Ok(())
    }
}

/// Polls `probe` every 200 ms until it returns `Some`, for at most
/// `timeout`.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> (Option<T>, String),
) -> Result<T> {
    let start = Instant::now();
    loop {
        let (found, last) = probe();
        if let Some(found) = found {
            return Ok(found);
        }
        if start.elapsed() > timeout {
            return Err(NodesError::Timeout {
                what: what.into(),
                after: timeout,
                last,
            });
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

impl Drop for Nodes<'_> {
    fn drop(&mut self) {
        for (_, mut child) in std::mem::take(&mut self.running) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
