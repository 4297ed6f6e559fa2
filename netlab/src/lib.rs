//! Hosts in network namespaces, for the demo, the multi-host tests and the
//! benchmarks: each host is a namespace with one interface, `eth0`, plugged
//! into a bridge that lives in a namespace of its own. Nothing is added to
//! the machine's own interfaces or routes, no namespace has a route out, and
//! dropping the [`Lab`] deletes every namespace it made (which deletes their
//! interfaces with them), its hosts' cgroups and their nodes' pins — unless
//! it was [detached](Lab::detach), to be removed later by [`Lab::existing`].

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// Why a lab could not be built or changed.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// `ip` could not be run.
    #[error("running `ip {args}`: {source}")]
    Spawn {
        /// Its arguments.
        args: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// `ip` failed.
    #[error("`ip {args}` failed: {stderr}")]
    Failed {
        /// Its arguments.
        args: String,
        /// What it printed.
        stderr: String,
    },
    /// A lab of that name is already there.
    #[error("network namespace {0} already exists: another lab of that name is running")]
    Exists(String),
}

/// A set of test hosts on one private bridge.
#[derive(Debug)]
pub struct Lab {
    tag: String,
    hosts: usize,
    created: Vec<String>,
    cgroup_root: PathBuf,
    /// Left in place when dropped.
    detached: bool,
}

/// Labs made by this process, so concurrent tests get distinct names.
static LABS: AtomicU32 = AtomicU32::new(0);

fn ip(args: &[&str]) -> Result<Output, LabError> {
    let shown = args.join(" ");
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|source| LabError::Spawn {
            args: shown.clone(),
            source,
        })?;
    if !output.status.success() {
        return Err(LabError::Failed {
            args: shown,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(output)
}

impl Lab {
    /// Builds `hosts` hosts, numbered from 1, with addresses
    /// [`Lab::address`] on one subnet. Half-built labs are torn down.
    pub fn new(hosts: usize) -> Result<Lab, LabError> {
        let n = LABS.fetch_add(1, Ordering::Relaxed);
        Lab::create(&format!("stk{}x{n}", std::process::id()), hosts)
    }

    /// Like [`Lab::new`], with names that start with `tag`, so another
    /// process can find the lab again ([`Lab::existing`]). Refused when a
    /// lab of that name is there.
    pub fn create(tag: &str, hosts: usize) -> Result<Lab, LabError> {
        let mut lab = Lab::empty(tag, hosts)?;
        if netns_exists(&lab.bridge_netns()) {
            return Err(LabError::Exists(lab.bridge_netns()));
        }
        lab.build()?;
        Ok(lab)
    }

    /// The lab named `tag` that a process made and [detached](Lab::detach),
    /// with whichever of its namespaces are still there; dropping it
    /// removes them. `None` when none of them is there.
    pub fn existing(tag: &str) -> Result<Option<Lab>, LabError> {
        let mut lab = Lab::empty(tag, 0)?;
        if netns_exists(&lab.bridge_netns()) {
            lab.created.push(lab.bridge_netns());
        }
        while netns_exists(&lab.netns(lab.hosts + 1)) {
            lab.hosts += 1;
            lab.created.push(lab.netns(lab.hosts));
        }
        Ok((!lab.created.is_empty()).then_some(lab))
    }

    /// Whether a lab named `tag` is there (its bridge's namespace is).
    pub fn exists(tag: &str) -> bool {
        netns_exists(&format!("{tag}-br"))
    }

    fn empty(tag: &str, hosts: usize) -> Result<Lab, LabError> {
        let cgroup_root = stockade_bpf::cgroup2_root().map_err(|e| LabError::Spawn {
            args: "finding the cgroup v2 hierarchy".into(),
            source: std::io::Error::other(e.to_string()),
        })?;
        Ok(Lab {
            tag: tag.to_owned(),
            hosts,
            created: Vec::new(),
            cgroup_root,
            detached: false,
        })
    }

    /// Leaves the lab in place when it is dropped: it outlives this
    /// process, and [`Lab::existing`] finds it again.
    pub fn detach(mut self) {
        self.detached = true;
    }

    fn add_netns(&mut self, name: String) -> Result<(), LabError> {
        ip(&["netns", "add", &name])?;
        self.created.push(name.clone());
        ip(&["-n", &name, "link", "set", "lo", "up"])?;
        Ok(())
    }

    fn build(&mut self) -> Result<(), LabError> {
        let bridge = self.bridge_netns();
        self.add_netns(bridge.clone())?;
        ip(&["-n", &bridge, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &bridge, "link", "set", "br0", "up"])?;
        for host in 1..=self.hosts {
            let netns = self.netns(host);
            self.add_netns(netns.clone())?;
            let port = format!("h{host}");
            // Both ends are created inside the lab's namespaces: the
            // machine's own namespace never sees them.
            ip(&[
                "-n", &bridge, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
                "netns", &netns,
            ])?;
            ip(&["-n", &bridge, "link", "set", &port, "master", "br0", "up"])?;
            let cidr = format!("{}/24", self.address(host));
            ip(&["-n", &netns, "addr", "add", &cidr, "dev", "eth0"])?;
            ip(&["-n", &netns, "link", "set", "eth0", "up"])?;
            let cgroup = self.cgroup(host);
            std::fs::create_dir_all(&cgroup).map_err(|source| LabError::Spawn {
                args: format!("mkdir {}", cgroup.display()),
                source,
            })?;
        }
        Ok(())
    }

    /// The cgroup v2 subtree of host `host`: its node enforces there, and
    /// its workloads run below it.
    pub fn cgroup(&self, host: usize) -> PathBuf {
        self.cgroup_root.join(self.netns(host))
    }

    /// The bpffs pin folder of host `host`'s node.
    pub fn pin_dir(&self, host: usize) -> PathBuf {
        Path::new(stockade_bpf::BPFFS_PATH).join(self.netns(host))
    }

    /// A command that runs `program` as a workload of host `host`: in its
    /// network namespace and in the cgroup `name` below its subtree
    /// (created if missing). The shell moves itself into the cgroup, then
    /// execs the program, so the exec hook sees the program start there.
    pub fn workload(&self, host: usize, name: &str, program: &str) -> Command {
        in_cgroup(
            self.command(host, "sh"),
            &self.cgroup(host).join(name),
            program,
        )
    }

    /// The namespace of the bridge.
    fn bridge_netns(&self) -> String {
        format!("{}-br", self.tag)
    }

    /// The number of hosts.
    pub fn hosts(&self) -> usize {
        self.hosts
    }

    /// The namespace of host `host` (from 1).
    pub fn netns(&self, host: usize) -> String {
        host_netns(&self.tag, host)
    }

    /// The address of host `host` (from 1) on the lab's subnet.
    pub fn address(&self, host: usize) -> Ipv4Addr {
        host_address(host)
    }

    /// A command that runs `program` inside host `host`'s network namespace.
    ///
    /// It uses `nsenter --net`, which switches only the network namespace:
    /// unlike `ip netns exec`, it does not mount a new `/sys`, so the program
    /// still sees cgroup2 and bpffs.
    pub fn command(&self, host: usize, program: &str) -> Command {
        let mut command = Command::new("nsenter");
        command.arg(format!("--net=/run/netns/{}", self.netns(host)));
        command.arg("--").arg(program);
        command
    }

    /// A TCP listener inside host `host`'s network namespace, on its address
    /// and `port` (0 for any free port), for servers the test runs in its
    /// own process (a socket stays in the namespace it was made in).
    pub fn listen_tcp(&self, host: usize, port: u16) -> std::io::Result<std::net::TcpListener> {
        let address = std::net::SocketAddr::from((self.address(host), port));
        in_netns(&self.netns(host), || std::net::TcpListener::bind(address))
    }

    /// Unplugs host `host` from the bridge (a cut link), or plugs it back.
    pub fn set_link(&self, host: usize, up: bool) -> Result<(), LabError> {
        let port = format!("h{host}");
        let state = if up { "up" } else { "down" };
        ip(&["-n", &self.bridge_netns(), "link", "set", &port, state]).map(drop)
    }
}

/// `shell` (a `sh` command) made to run `program` in the cgroup `dir`
/// (created if missing), with the arguments added to the result: the shell
/// moves itself into the cgroup, then execs the program, so the exec hook
/// sees the program start there.
pub fn in_cgroup(mut shell: Command, dir: &Path, program: &str) -> Command {
    let script = format!(
        "mkdir -p '{dir}' && echo $$ > '{dir}/cgroup.procs' && exec \"$0\" \"$@\"",
        dir = dir.display()
    );
    shell.arg("-c").arg(script).arg(program);
    shell
}

/// The address of host `host` (from 1) of any lab: every lab uses one
/// subnet, which is private to its namespaces.
pub fn host_address(host: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 77, 0, u8::try_from(host).unwrap_or(u8::MAX))
}

/// The network namespace of host `host` (from 1) of the lab named `tag`.
pub fn host_netns(tag: &str, host: usize) -> String {
    format!("{tag}-h{host}")
}

/// Runs `f` in the network namespace `/run/netns/NAME`: sockets it makes
/// stay there. setns changes only the calling thread, so `f` runs on a
/// thread of its own.
pub fn in_netns<T: Send>(
    name: &str,
    f: impl FnOnce() -> std::io::Result<T> + Send,
) -> std::io::Result<T> {
    let netns = std::fs::File::open(format!("/run/netns/{name}"))?;
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                nix::sched::setns(&netns, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(std::io::Error::from)?;
                f()
            })
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the namespace thread panicked")))
    })
}

/// The calling thread moved into a lab host's network namespace until
/// this is dropped. Threads it starts meanwhile (a tokio runtime's
/// workers) are born there and stay there: a harness that enters its
/// client host first makes every socket of its own there.
#[derive(Debug)]
pub struct EnteredNetns {
    original: std::fs::File,
    // setns moved this thread only: the guard must be dropped on it.
    _not_send: std::marker::PhantomData<*const ()>,
}

impl EnteredNetns {
    /// Moves the calling thread into `/run/netns/NAME`.
    pub fn enter(name: &str) -> std::io::Result<EnteredNetns> {
        let original = std::fs::File::open("/proc/thread-self/ns/net")?;
        let target = std::fs::File::open(format!("/run/netns/{name}"))?;
        nix::sched::setns(&target, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(std::io::Error::from)?;
        Ok(EnteredNetns {
            original,
            _not_send: std::marker::PhantomData,
        })
    }
}

impl Drop for EnteredNetns {
    fn drop(&mut self) {
        if let Err(e) = nix::sched::setns(&self.original, nix::sched::CloneFlags::CLONE_NEWNET) {
            eprintln!("cannot return to the original network namespace: {e}");
        }
    }
}

/// Whether `/run/netns/NAME` is there.
fn netns_exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.detached {
            return;
        }
        for host in 1..=self.hosts {
            if let Err(e) = stockade_bpf::uninstall(&self.pin_dir(host)) {
                eprintln!("lab cleanup: {e}");
            }
            remove_cgroup_tree(&self.cgroup(host));
        }
        for netns in self.created.iter().rev() {
            if let Err(e) = ip(&["netns", "del", netns]) {
                eprintln!("lab cleanup: {e}");
            }
        }
    }
}

/// Kills every process in the cgroup tree at `root` and removes it, deepest
/// cgroups first.
pub fn remove_cgroup_tree(root: &Path) {
    if !root.exists() {
        return;
    }
    let _ = std::fs::write(root.join("cgroup.kill"), "1");
    let mut dirs = vec![root.to_owned()];
    let mut next = 0;
    while next < dirs.len() {
        if let Ok(entries) = std::fs::read_dir(&dirs[next]) {
            dirs.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
        }
        next += 1;
    }
    for dir in dirs.iter().rev() {
        // Killed processes leave their cgroup asynchronously.
        for _ in 0..100 {
            if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        if dir.exists() {
            eprintln!("lab cleanup: cannot remove cgroup {}", dir.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_reach_each_other_and_nothing_is_left_behind() {
        let lab = Lab::new(2).expect("build a two-host lab");
        let names = [lab.netns(1), lab.netns(2), lab.bridge_netns()];
        let ping = lab
            .command(1, "ping")
            .args(["-c", "1", "-W", "5", &lab.address(2).to_string()])
            .output()
            .expect("run ping");
        assert!(
            ping.status.success(),
            "{}",
            String::from_utf8_lossy(&ping.stdout)
        );
        // No route out: an outside address is unreachable from a host.
        let out = lab
            .command(1, "ip")
            .args(["route", "get", "192.0.2.1"])
            .output()
            .expect("run ip route get");
        assert!(!out.status.success(), "a lab host has a route out");
        drop(lab);
        for name in names {
            assert!(!netns_exists(&name), "{name} was left behind");
        }
    }

    #[test]
    fn a_detached_lab_is_found_again_and_then_removed() {
        let tag = format!("stkd{}", std::process::id());
        let lab = Lab::create(&tag, 2).expect("build a named lab");
        let names = [lab.netns(1), lab.netns(2), lab.bridge_netns()];
        assert!(matches!(Lab::create(&tag, 1), Err(LabError::Exists(_))));
        lab.detach();
        for name in &names {
            assert!(netns_exists(name), "{name} was removed by a detached lab");
        }
        let found = Lab::existing(&tag)
            .expect("look for the lab")
            .expect("the detached lab is there");
        assert_eq!(found.hosts(), 2);
        drop(found);
        for name in &names {
            assert!(!netns_exists(name), "{name} was left behind");
        }
        assert!(Lab::existing(&tag).expect("look again").is_none());
    }
}
