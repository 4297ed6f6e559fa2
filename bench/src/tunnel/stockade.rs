//! The Stockade mode: a 2-node cluster on the client's and the server's
//! hosts, the client and the server as workloads identified by their
//! cgroups, in an enforcing zone whose only rule allows client → server on
//! the server's port with `"encrypt": true`: the client's connection is
//! redirected into its node, carried over a Noise session to the server's
//! node, which connects to the server.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{json, Value};
use stockade_chaos::netlab::Lab;
use stockade_chaos::nodes::Nodes;

use super::measure::{CLIENT_HOST, SERVER_HOST};
use crate::interrupt::Interrupt;

/// The enforcing zone of the two workloads.
const ZONE: &str = "tunnelbench";
/// The client's cgroup below its host's, and its app.
pub const CLIENT: &str = "tb-client";
/// The server's cgroup below its host's, and its app.
pub const SERVER: &str = "tb-server";
/// How long an election, a join or a policy may take on a busy machine.
const SETTLE: Duration = Duration::from_secs(90);

/// The `stockade` binary: `explicit`, or the one next to this executable.
pub fn locate(explicit: Option<&Path>) -> anyhow::Result<std::path::PathBuf> {
    let path = match explicit {
        Some(path) => path.to_owned(),
        None => std::env::current_exe()
            .context("finding this executable")?
            .with_file_name("stockade"),
    };
    if !path.is_file() {
        bail!(
            "no stockade binary at {}: build both with `cargo build --release -p stockade-node \
             -p stockade-bench` (same target directory), pass --stockade PATH, or leave stockade \
             out of --modes",
            path.display()
        );
    }
    Ok(path)
}

/// A running 2-node cluster with the policy in force.
pub struct Cluster<'a> {
    nodes: Nodes<'a>,
}

impl<'a> Cluster<'a> {
    /// Forms the cluster on the client's and the server's hosts (node 1
    /// leads, node 2 joins), with data directories under `workdir`.
    pub fn start(
        lab: &'a Lab,
        binary: &Path,
        workdir: &Path,
        interrupt: &Interrupt,
    ) -> anyhow::Result<Cluster<'a>> {
        let nodes = Nodes::init(lab, binary, workdir, &[]).context("stockade init")?;
        let mut cluster = Cluster { nodes };
        cluster.form(interrupt).map_err(|e| {
            e.context(format!(
                "forming the cluster; node logs:\n{}\n---\n{}",
                tail(&cluster.nodes.log(CLIENT_HOST)),
                tail(&cluster.nodes.log(SERVER_HOST))
            ))
        })?;
        Ok(cluster)
    }

    fn form(&mut self, interrupt: &Interrupt) -> anyhow::Result<()> {
        self.nodes.start(CLIENT_HOST)?;
        interrupt.wait_for("node 1 to lead", SETTLE, || {
            let s = self.nodes.status(CLIENT_HOST);
            ((s["role"] == "leader").then_some(()), s.to_string())
        })?;
        let token = self.nodes.join_token(CLIENT_HOST, "10m")?;
        self.nodes.join(SERVER_HOST, CLIENT_HOST, &token)?;
        interrupt.wait_for("node 2 to be a member", SETTLE, || {
            let members: Vec<usize> = ["voters", "learners"]
                .iter()
                .flat_map(|kind| self.nodes.members(CLIENT_HOST, kind))
                .collect();
            (
                members.contains(&SERVER_HOST).then_some(()),
                format!("members {members:?}"),
            )
        })?;
        Ok(())
    }

    /// One API call on node 1 that must answer 200; its JSON.
    fn call(&self, method: &str, path: &str, body: &str) -> anyhow::Result<Value> {
        let reply = self.nodes.api(
            CLIENT_HOST,
            method,
            path,
            Some(&self.nodes.admin_token),
            Some(body),
        )?;
        if reply.status != 200 {
            bail!("{method} {path}: {} {}", reply.status, reply.body);
        }
        Ok(reply.json())
    }

    /// Writes the policy: the zone (enforcing), the two identities bound
    /// to their cgroups, and the encrypted allow rule to `port`; waits
    /// until both nodes' dataplanes have it.
    pub fn write_policy(&self, port: u16, interrupt: &Interrupt) -> anyhow::Result<()> {
        let mut document = format!("[[zone]]\nname = \"{ZONE}\"\nmode = \"enforce\"\n");
        for app in [CLIENT, SERVER] {
            document.push_str(&format!(
                "[[identity]]\nzone = \"{ZONE}\"\napp = \"{app}\"\nservice = \"main\"\n\
                 [[identity_rule]]\nname = \"{app}\"\n\
                 identity = {{ zone = \"{ZONE}\", app = \"{app}\", service = \"main\" }}\n\
                 match = {{ cgroup_path = \"/{app}\" }}\n"
            ));
        }
        self.call("PUT", "/v1/policy", &document)?;
        let rule = json!({
            "from": {"zone": ZONE, "app": CLIENT, "service": "main"},
            "to": {"zone": ZONE, "app": SERVER, "service": "main"},
            "protocol": "tcp",
            "ports": [port.to_string()],
            "action": "allow",
            "encrypt": true,
            "description": "stockade-tunnel-bench",
        });
        let written = self.call("POST", "/v1/rules", &rule.to_string())?;
        let index = written["index"]
            .as_u64()
            .with_context(|| format!("no index in {written}"))?;
        for host in [CLIENT_HOST, SERVER_HOST] {
            interrupt.wait_for(
                &format!("node {host}'s dataplane to apply the rule"),
                SETTLE,
                || {
                    let reached = self.nodes.status(host)["dataplane"]["index"]
                        .as_u64()
                        .unwrap_or(0);
                    (
                        (reached >= index).then_some(()),
                        format!("at index {reached} of {index}"),
                    )
                },
            )?;
        }
        Ok(())
    }

    /// Waits until the server (listening on `port`) is published as an
    /// endpoint, so the client's node knows whom the client reaches.
    pub fn wait_for_server(&self, port: u16, interrupt: &Interrupt) -> anyhow::Result<()> {
        interrupt.wait_for("the server to be published as an endpoint", SETTLE, || {
            let endpoints = self
                .nodes
                .api(
                    CLIENT_HOST,
                    "GET",
                    "/v1/endpoints",
                    Some(&self.nodes.admin_token),
                    None,
                )
                .map(|r| r.json())
                .unwrap_or(Value::Null);
            let found = endpoints.as_array().into_iter().flatten().any(|e| {
                e["identity"]["app"] == SERVER && e["port"].as_u64() == Some(u64::from(port))
            });
            (found.then_some(()), endpoints.to_string())
        })
    }

    /// Probes with `probe` until the client gets through (its cgroup is
    /// identified on the node's next scan; until then it is denied).
    pub fn wait_for_client(
        &self,
        interrupt: &Interrupt,
        mut probe: impl FnMut() -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        interrupt.wait_for("the client to be allowed through", SETTLE, || {
            match probe() {
                Ok(()) => (Some(()), String::new()),
                Err(e) => (None, format!("{e:#}")),
            }
        })
    }

    /// The two daemons, by name, with their pids.
    pub fn pids(&self) -> Vec<(String, u32)> {
        [CLIENT_HOST, SERVER_HOST]
            .iter()
            .filter_map(|h| Some((format!("stockade h{h}"), self.nodes.pid(*h)?)))
            .collect()
    }

    /// Each node's `GET /v1/status` field `tunnel`, where there is one.
    pub fn tunnel_status(&self) -> Vec<(usize, Value)> {
        [CLIENT_HOST, SERVER_HOST]
            .iter()
            .filter_map(|h| {
                let tunnel = self.nodes.status(*h).get("tunnel")?.clone();
                Some((*h, tunnel))
            })
            .collect()
    }

    /// The end of both nodes' logs, for errors.
    pub fn logs(&self) -> String {
        format!(
            "node 1 log:\n{}\n--- node 2 log:\n{}",
            tail(&self.nodes.log(CLIENT_HOST)),
            tail(&self.nodes.log(SERVER_HOST))
        )
    }
}

/// The last lines of a log.
fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
