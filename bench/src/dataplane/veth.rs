//! The two hosts of the connection benchmark: namespaces A (client) and B
//! (server) joined by one veth pair created inside them, the cgroup the
//! client runs in, and the accept-and-close server in B. Each is a guard:
//! dropping it removes what it made.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};

/// The client's address, in namespace A.
pub const CLIENT_ADDR: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 1);
/// The server's address, in namespace B.
pub const SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 2);
/// The port the server listens on.
pub const SERVER_PORT: u16 = 7000;

/// Where the client connects to.
pub fn server() -> SocketAddrV4 {
    SocketAddrV4::new(SERVER_ADDR, SERVER_PORT)
}

/// Runs `command`; its stdout, or an error with its stderr.
pub fn run(command: &mut Command) -> anyhow::Result<String> {
    let shown = format!("{command:?}");
    let output = command
        .output()
        .with_context(|| format!("running {shown}"))?;
    check(&shown, &output)?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn check(shown: &str, output: &Output) -> anyhow::Result<()> {
    if !output.status.success() {
        bail!(
            "{shown} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// A command that runs `program` in the network namespace `netns` only:
/// `nsenter --net`, not `ip netns exec`, which would mount a new `/sys`.
pub fn in_netns(netns: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new("nsenter");
    command
        .arg(format!("--net=/run/netns/{netns}"))
        .arg("--")
        .arg(program);
    command
}

/// Namespaces A and B and the veth pair between them. No route out, nothing
/// in the machine's own namespace.
pub struct VethPair {
    client: String,
    server: String,
    created: Vec<String>,
}

impl VethPair {
    /// Creates both namespaces and the link; on failure, removes what it
    /// made.
    ///
    /// Neither namespace keeps closed connections in TIME_WAIT
    /// (`net.ipv4.tcp_max_tw_buckets=0`, a per-namespace sysctl), and A
    /// has the widest ephemeral port range. Tens of thousands of
    /// connections a second otherwise fill the port range with TIME_WAIT
    /// sockets: `tcp_tw_reuse` frees a port only a second later, so a run
    /// that follows another within the second spends its time searching
    /// for a port (it measured at half the rate of the run before it).
    pub fn new() -> anyhow::Result<VethPair> {
        let tag = format!("stk-dpb{}", std::process::id());
        let mut pair = VethPair {
            client: format!("{tag}-a"),
            server: format!("{tag}-b"),
            created: Vec::new(),
        };
        pair.build()?;
        Ok(pair)
    }

    fn build(&mut self) -> anyhow::Result<()> {
        let (a, b) = (self.client.clone(), self.server.clone());
        for netns in [&a, &b] {
            run(Command::new("ip").args(["netns", "add", netns]))?;
            self.created.push(netns.clone());
            run(Command::new("ip").args(["-n", netns, "link", "set", "lo", "up"]))?;
        }
        // Both ends are made inside the namespaces.
        run(Command::new("ip").args([
            "-n", &a, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", &b,
        ]))?;
        for (netns, addr) in [(&a, CLIENT_ADDR), (&b, SERVER_ADDR)] {
            let cidr = format!("{addr}/24");
            run(Command::new("ip").args(["-n", netns, "addr", "add", &cidr, "dev", "eth0"]))?;
            run(Command::new("ip").args(["-n", netns, "link", "set", "eth0", "up"]))?;
        }
        run(in_netns(&a, "sysctl").args([
            "-q",
            "-w",
            "net.ipv4.tcp_max_tw_buckets=0",
            "net.ipv4.ip_local_port_range=1024 65535",
        ]))?;
        run(in_netns(&b, "sysctl").args(["-q", "-w", "net.ipv4.tcp_max_tw_buckets=0"]))?;
        Ok(())
    }

    /// Namespace A, the client's.
    pub fn client_netns(&self) -> &str {
        &self.client
    }

    /// Namespace B, the server's.
    pub fn server_netns(&self) -> &str {
        &self.server
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of the pair, and the pair.
        for netns in self.created.iter().rev() {
            if let Err(e) = run(Command::new("ip").args(["netns", "del", netns])) {
                eprintln!("cleanup: {e:#}");
            }
        }
    }
}

/// A cgroup v2 subtree for the client (the hooks attach at the subtree; the
/// client runs in its `client` child), removed on drop with whatever still
/// runs in it.
pub struct ClientCgroup {
    subtree: PathBuf,
    client: PathBuf,
}

impl ClientCgroup {
    /// Creates `<cgroup2 root>/stk-dpbench-<pid>/client`.
    pub fn new() -> anyhow::Result<ClientCgroup> {
        let root = stockade_bpf::cgroup2_root().context("finding the cgroup v2 hierarchy")?;
        let subtree = root.join(format!("stk-dpbench-{}", std::process::id()));
        let client = subtree.join("client");
        let cgroup = ClientCgroup { subtree, client };
        std::fs::create_dir_all(&cgroup.client)
            .with_context(|| format!("creating {}", cgroup.client.display()))?;
        Ok(cgroup)
    }

    /// Where the hooks attach.
    pub fn subtree(&self) -> &Path {
        &self.subtree
    }

    /// Where the client runs.
    pub fn client(&self) -> &Path {
        &self.client
    }
}

impl Drop for ClientCgroup {
    fn drop(&mut self) {
        for dir in [&self.client, &self.subtree] {
            let _ = std::fs::write(dir.join("cgroup.kill"), "1");
        }
        for dir in [&self.client, &self.subtree] {
            // Killed processes leave their cgroup asynchronously.
            for _ in 0..100 {
                if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if dir.exists() {
                eprintln!("cleanup: cannot remove cgroup {}", dir.display());
            }
        }
    }
}

/// `stockade-netcheck serve` in namespace B: accepts and closes, until
/// dropped.
pub struct Server {
    child: Child,
}

impl Server {
    /// Starts the server and waits until it listens.
    pub fn start(pair: &VethPair, netcheck: &Path) -> anyhow::Result<Server> {
        let mut child = in_netns(pair.server_netns(), netcheck)
            .arg("serve")
            .arg(server().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the server")?;
        let stdout = child.stdout.take();
        // The guard first, so the child is reaped whatever happens next.
        let server = Server { child };
        let mut line = String::new();
        if let Some(stdout) = stdout {
            BufReader::new(stdout)
                .read_line(&mut line)
                .context("reading the server's first line")?;
        }
        if !line.starts_with("listening on") {
            bail!("the server did not start (it said {line:?})");
        }
        Ok(server)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The client: `stockade-netcheck tcp` in namespace A and in the client
/// cgroup (the shell moves itself there, then execs netcheck, so the exec
/// hook sees netcheck start inside the enforced subtree).
pub struct Client<'a> {
    /// Namespace A.
    pub netns: &'a str,
    /// The cgroup it runs in.
    pub cgroup: &'a Path,
    /// The netcheck binary.
    pub netcheck: &'a Path,
}

impl Client<'_> {
    fn command(&self, args: &[String]) -> Command {
        let script = format!(
            "echo $$ > {}/cgroup.procs && exec \"$0\" \"$@\"",
            self.cgroup.display()
        );
        let mut command = in_netns(self.netns, "sh");
        command.arg("-c").arg(script).arg(self.netcheck).args(args);
        command
    }

    /// One connection; the output as it is (the caller decides what a
    /// failure means).
    pub fn connect_once(&self) -> anyhow::Result<Output> {
        self.command(&["tcp".into(), server().to_string()])
            .output()
            .context("running netcheck")
    }

    /// `count` connections one after the other; the rate netcheck reports
    /// (`N flows in X s: R/s`).
    pub fn rate(&self, count: u64) -> anyhow::Result<f64> {
        let args = [
            "tcp".into(),
            server().to_string(),
            "--count".into(),
            count.to_string(),
        ];
        let stdout = run(&mut self.command(&args))?;
        parse_rate(&stdout).with_context(|| format!("no rate in netcheck's output {stdout:?}"))
    }
}

/// The rate of a `N flows in X s: R/s` line.
fn parse_rate(stdout: &str) -> Option<f64> {
    stdout
        .lines()
        .find_map(|l| l.rsplit_once(": ")?.1.strip_suffix("/s")?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_read_from_netchecks_line() {
        assert_eq!(
            parse_rate("20000 flows in 1.234 s: 16207/s\n"),
            Some(16207.0)
        );
        assert_eq!(parse_rate("ok\n"), None);
    }
}
