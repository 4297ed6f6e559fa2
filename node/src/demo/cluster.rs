//! The demo's nodes: real `stockade` processes, one per host of the lab,
//! started detached (they outlive `stockade demo`) in the control cgroup,
//! and their admin APIs, reached through the helper's forwarders.

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use serde_json::Value;
use stockade_netlab::{in_cgroup, Lab};

use super::{Interrupt, API_PORT, DEMO_HOSTS, QUIC_PORT};
use crate::admin_client;
use crate::cli::ApiArgs;

/// How long the demo waits for anything: generous, for a loaded machine.
pub const PATIENCE: Duration = Duration::from_secs(90);

/// The `stockade` binary running the demo, which the nodes run too.
pub fn stockade_binary() -> Result<PathBuf> {
    std::env::current_exe().context("finding the stockade binary")
}

/// Where the demo's nodes and workloads write, and how to reach the nodes.
#[derive(Debug)]
pub struct Cluster<'a> {
    lab: &'a Lab,
    dir: PathBuf,
    binary: PathBuf,
    console_port: u16,
    interrupt: Interrupt,
    /// The admin token `stockade init` printed.
    pub admin_token: String,
}

impl<'a> Cluster<'a> {
    /// The cluster of `lab`'s hosts, writing under `dir`.
    pub fn new(lab: &'a Lab, dir: &Path, console_port: u16, interrupt: &Interrupt) -> Result<Self> {
        Ok(Cluster {
            lab,
            dir: dir.to_owned(),
            binary: stockade_binary()?,
            console_port,
            interrupt: interrupt.clone(),
            admin_token: String::new(),
        })
    }

    /// The lab the cluster runs on.
    pub fn lab(&self) -> &Lab {
        self.lab
    }

    /// The local URL that reaches host `host`'s admin API and console.
    pub fn url(&self, host: usize) -> String {
        format!("http://127.0.0.1:{}", self.local_port(host))
    }

    fn local_port(&self, host: usize) -> u16 {
        self.console_port + u16::try_from(host - 1).expect("a handful of demo hosts")
    }

    fn api(&self, host: usize) -> ApiArgs {
        ApiArgs {
            url: self.url(host),
            token: self.admin_token.clone(),
        }
    }

    /// Calls host `host`'s admin API with a JSON body (or none).
    pub fn call(
        &self,
        host: usize,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        admin_client::call(&self.api(host), method, path, body)
    }

    /// Calls host `host`'s admin API with a text body.
    pub fn put_text(&self, host: usize, path: &str, body: &str) -> Result<Value> {
        admin_client::put_text(&self.api(host), path, body)
    }

    /// Polls `probe` until it returns something, the demo is interrupted
    /// or [`PATIENCE`] runs out (an error that says what was awaited and
    /// what `probe` last failed with).
    pub fn wait_for<T>(
        &self,
        what: &str,
        mut probe: impl FnMut() -> Result<Option<T>>,
    ) -> Result<T> {
        let started = Instant::now();
        let mut last = String::from("nothing yet");
        loop {
            self.interrupt.check()?;
            match probe() {
                Ok(Some(value)) => return Ok(value),
                Ok(None) => {}
                Err(e) => last = format!("{e:#}"),
            }
            if started.elapsed() > PATIENCE {
                bail!("timed out after {PATIENCE:?} waiting for {what} (last: {last})");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The data directory of host `host`'s node.
    fn data_dir(&self, host: usize) -> PathBuf {
        self.dir.join(format!("node{host}"))
    }

    /// `stockade SUBCOMMAND` with host `host`'s node settings, run in its
    /// namespace and in the control cgroup.
    fn stockade(&self, host: usize, subcommand: &str) -> Result<Command> {
        let address = self.lab.address(host);
        let shell = self.lab.command(host, "sh");
        let mut command = in_cgroup(
            shell,
            &super::control_cgroup()?,
            &self.binary.to_string_lossy(),
        );
        command
            .arg(subcommand)
            .args(["--name", &format!("node{host}")])
            .arg("--data-dir")
            .arg(self.data_dir(host))
            .args(["--listen", &format!("0.0.0.0:{QUIC_PORT}")])
            .args(["--advertise", &format!("{address}:{QUIC_PORT}")])
            .args(["--api-listen", &format!("{address}:{API_PORT}")])
            // Each node enforces its own host's cgroup subtree, with its
            // own pins: three nodes share this kernel.
            .arg("--cgroup")
            .arg(self.lab.cgroup(host))
            .arg("--pin-dir")
            .arg(self.lab.pin_dir(host))
            // Whichever node leads backs the cluster up, as production
            // voters would; the HIPAA report shows the last backup.
            .arg("--backup-dir")
            .arg(self.dir.join("backups"))
            .env(
                "STOCKADE_LOG",
                std::env::var("STOCKADE_LOG").unwrap_or_else(|_| "info,openraft=warn".into()),
            );
        Ok(command)
    }

    /// Starts `command` detached: in a process group of its own (Ctrl-C at
    /// the demo's terminal is the demo's to handle), output to `log`.
    pub fn spawn_detached(&self, mut command: Command, log: &Path) -> Result<()> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let err = out.try_clone()?;
        command
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {command:?}"))?;
        Ok(())
    }

    /// The log of host `host`'s node.
    fn log(&self, host: usize) -> PathBuf {
        self.dir.join(format!("node{host}.log"))
    }

    /// `stockade init` on host 1, then its node; keeps the admin token.
    pub fn init_first(&mut self) -> Result<()> {
        let output = self
            .stockade(1, "init")?
            .output()
            .context("running stockade init")?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            bail!(
                "stockade init failed: {stdout}{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        self.admin_token = stdout
            .lines()
            .find(|line| line.starts_with("stk_"))
            .context("stockade init printed no admin token")?
            .to_owned();
        // Kept for whoever explores the demo later (and for its test),
        // readable by root only.
        let token_file = self.dir.join(super::TOKEN_FILE);
        std::fs::write(&token_file, format!("{}\n", self.admin_token))
            .and_then(|()| std::fs::set_permissions(&token_file, PermissionsExt::from_mode(0o600)))
            .with_context(|| format!("writing {}", token_file.display()))?;
        self.spawn_detached(self.stockade(1, "start")?, &self.log(1))?;
        self.wait_for("node 1's admin API", || {
            Ok(self.call(1, "GET", "/v1/status", None)?["leader"]
                .as_u64()
                .map(drop))
        })
    }

    /// Joins host `host`'s node through node 1 with a fresh join token.
    pub fn join(&self, host: usize) -> Result<()> {
        let reply = self.call(
            1,
            "POST",
            "/v1/join-tokens",
            Some(serde_json::json!({ "ttl_seconds": 600 })),
        )?;
        let token = reply["token"]
            .as_str()
            .context("the reply has no join token")?;
        let mut command = self.stockade(host, "join")?;
        command
            .args(["--token", token])
            .arg(format!("{}:{QUIC_PORT}", self.lab.address(1)));
        self.spawn_detached(command, &self.log(host))
    }

    /// Waits until every node is a voter, every node's API answers and
    /// every node's dataplane is in force.
    pub fn wait_formed(&self) -> Result<()> {
        self.wait_for("three voters", || {
            let status = self.call(1, "GET", "/v1/status", None)?;
            let voters = status["voters"].as_object().map_or(0, |v| v.len());
            Ok((voters == DEMO_HOSTS).then_some(()))
        })?;
        for host in 1..=DEMO_HOSTS {
            self.wait_for(&format!("node {host}'s dataplane"), || {
                let status = self.call(host, "GET", "/v1/status", None)?;
                Ok(status["dataplane"]["index"].as_u64().map(drop))
            })?;
        }
        Ok(())
    }

    /// Waits until every node's kernel enforces policy version `index` or later.
    pub fn wait_enforced(&self, index: u64) -> Result<()> {
        for host in 1..=DEMO_HOSTS {
            self.wait_for(
                &format!("node {host}'s kernel to reach version {index}"),
                || {
                    let status = self.call(host, "GET", "/v1/status", None)?;
                    Ok(status["dataplane"]["index"]
                        .as_u64()
                        .filter(|applied| *applied >= index)
                        .map(drop))
                },
            )?;
        }
        Ok(())
    }
}

/// Prints the end of each node's log: what went wrong is usually there.
pub fn print_log_tails(dir: &Path) {
    for host in 1..=DEMO_HOSTS {
        let path = dir.join(format!("node{host}.log"));
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let lines: Vec<&str> = text.lines().collect();
        eprintln!("\n--- the last lines of {} ---", path.display());
        for line in &lines[lines.len().saturating_sub(15)..] {
            eprintln!("{line}");
        }
    }
}
