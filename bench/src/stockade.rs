//! A 3-node Stockade cluster on lab hosts 1 to 3, formed the way a user
//! forms one: `init` and `start` on host 1, then a join token and `join` for
//! each other host, until all three are voters. Dropping it kills the nodes.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use stockade_chaos::netlab::Lab;
use stockade_chaos::nodes::{Nodes, API_PORT};

use crate::interrupt::Interrupt;

/// How long an election or a join may take on a busy 2-core machine.
const SETTLE: Duration = Duration::from_secs(60);

/// The hosts the cluster runs on.
pub const HOSTS: [usize; 3] = [1, 2, 3];

/// A running 3-node Stockade cluster.
pub struct StockadeCluster<'a> {
    nodes: Nodes<'a>,
    lab: &'a Lab,
}

impl<'a> StockadeCluster<'a> {
    /// Forms the cluster with `binary` (`node_args` added to every `start`
    /// and `join`), data directories under `workdir`, and waits until it has
    /// three voters and a leader they all agree on.
    pub fn start(
        lab: &'a Lab,
        binary: &Path,
        node_args: &[String],
        workdir: &Path,
        interrupt: &Interrupt,
    ) -> anyhow::Result<StockadeCluster<'a>> {
        std::fs::create_dir_all(workdir)
            .with_context(|| format!("creating {}", workdir.display()))?;
        let mut nodes = Nodes::init(lab, binary, workdir, &[]).context("stockade init")?;
        nodes.node_args = node_args.to_vec();
        let mut cluster = StockadeCluster { nodes, lab };
        cluster.form(interrupt).map_err(|e| {
            let logs: String = HOSTS
                .iter()
                .map(|h| {
                    format!(
                        "\n--- node {h} log (end) ---\n{}",
                        tail(&cluster.nodes.log(*h))
                    )
                })
                .collect();
            e.context(format!("forming the Stockade cluster{logs}"))
        })?;
        Ok(cluster)
    }

    fn form(&mut self, interrupt: &Interrupt) -> anyhow::Result<()> {
        let [first, others @ ..] = HOSTS;
        self.nodes.start(first)?;
        interrupt.wait_for("node 1 to lead", SETTLE, || {
            let s = self.nodes.status(first);
            ((s["role"] == "leader").then_some(()), s.to_string())
        })?;
        for host in others {
            let token = self.nodes.join_token(first, "10m")?;
            self.nodes.join(host, first, &token)?;
        }
        interrupt.wait_for("three voters", SETTLE, || {
            let voters = self.members(first, "voters");
            (
                (voters.len() == HOSTS.len()).then_some(()),
                format!("voters {voters:?}"),
            )
        })?;
        interrupt.wait_for("every node to know the leader", SETTLE, || {
            let leaders: BTreeSet<Option<usize>> =
                HOSTS.iter().map(|h| self.leader_seen_by(*h)).collect();
            let agreed = match leaders.iter().collect::<Vec<_>>()[..] {
                [Some(leader)] => Some(*leader),
                _ => None,
            };
            (agreed, format!("leaders seen: {leaders:?}"))
        })?;
        Ok(())
    }

    /// The hosts host `host` reports as voters (or learners: `kind`).
    fn members(&self, host: usize, kind: &str) -> BTreeSet<usize> {
        self.nodes.status(host)[kind]
            .as_object()
            .map(|m| {
                m.values()
                    .filter_map(|a| self.nodes.host_of(a.as_str()?))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The host of the leader that host `host` knows of.
    fn leader_seen_by(&self, host: usize) -> Option<usize> {
        let status = self.nodes.status(host);
        let leader = status["leader"].as_u64()?.to_string();
        self.nodes.host_of(status["voters"][&leader].as_str()?)
    }

    /// The current leader's host, as the first node that answers sees it.
    pub fn leader(&self) -> Option<usize> {
        HOSTS.iter().find_map(|h| self.leader_seen_by(*h))
    }

    /// The admin API address of host `host`'s node.
    pub fn api_addr(&self, host: usize) -> SocketAddr {
        SocketAddr::from((self.lab.address(host), API_PORT))
    }

    /// The admin token `init` printed.
    pub fn admin_token(&self) -> &str {
        &self.nodes.admin_token
    }

    /// The node processes, for what goes beyond writes (their pids, their
    /// status).
    #[allow(dead_code, reason = "only the dataplane bench looks at the nodes")]
    pub fn nodes(&self) -> &Nodes<'a> {
        &self.nodes
    }
}

/// The last lines of a log, for error messages.
pub fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
