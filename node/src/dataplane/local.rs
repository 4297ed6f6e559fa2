//! What runs in this node's cgroup subtree, as the policy engine needs to
//! know it: processes and cgroups with their facts, the executables they
//! run, and the sockets they listen on.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use stockade_policy::{
    ExecKey, L4Protocol, LocalExecutable, LocalWorkload, LocalWorkloads, WorkloadFacts, WorkloadKey,
};

use super::sockets::{bound_sockets, Bound};
use crate::inventory::{key_of, procs, ExecutableHasher};

/// A socket a local process listens on (TCP) or bound (UDP).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Listener {
    /// The process that owns it.
    pub pid: u32,
    /// The bound address (unspecified for "every address").
    pub ip: IpAddr,
    /// The bound port.
    pub port: u16,
    /// TCP (listening) or UDP (bound).
    pub protocol: L4Protocol,
}

/// One look at the subtree.
#[derive(Clone, Debug, Default)]
pub struct LocalScan {
    /// What compilation needs.
    pub workloads: LocalWorkloads,
    /// Listening sockets of the subtree's processes.
    pub listeners: Vec<Listener>,
}

/// Scans the processes and cgroups of one cgroup v2 subtree.
pub struct LocalScanner {
    /// The subtree's directory in the cgroup v2 mount.
    subtree_dir: PathBuf,
    /// The subtree's path as `/proc/PID/cgroup` shows it (from the root).
    subtree_path: String,
    hasher: ExecutableHasher,
    /// Every executable seen running here whose file is unchanged since:
    /// the exec hook must still know a binary after its last process ended.
    known: BTreeMap<ExecKey, LocalExecutable>,
}

impl LocalScanner {
    /// A scanner of the subtree at `subtree_dir`, inside the cgroup v2
    /// hierarchy mounted at `cgroup_root`.
    pub fn new(cgroup_root: &Path, subtree_dir: &Path) -> Self {
        let relative = subtree_dir
            .strip_prefix(cgroup_root)
            .unwrap_or(Path::new(""));
        LocalScanner {
            subtree_dir: subtree_dir.to_owned(),
            subtree_path: format!("/{}", relative.display()).replace("//", "/"),
            hasher: ExecutableHasher::new(),
            known: BTreeMap::new(),
        }
    }

    /// The path a cgroup has in identity rules: relative to the subtree, so
    /// `/web` means the same on every node whatever its subtree.
    fn relative(&self, cgroup_path: &str) -> Option<String> {
        let base = self.subtree_path.trim_end_matches('/');
        let rest = cgroup_path.strip_prefix(base)?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
        Some(if rest.is_empty() {
            "/".into()
        } else {
            rest.to_owned()
        })
    }

    /// Reads `/proc`, the subtree's cgroups and the socket tables.
    pub fn scan(&mut self, own_pid: u32) -> std::io::Result<LocalScan> {
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        let users = procs::user_names(&passwd);
        let mut scan = LocalScan::default();
        let mut pids = BTreeSet::new();
        for process in procs::scan(Path::new("/proc"))? {
            let Some(cgroup) = process
                .cgroup_path
                .as_deref()
                .and_then(|c| self.relative(c))
            else {
                continue;
            };
            // Hash what the process runs, even if its path was replaced.
            let exe_link = Path::new("/proc").join(process.pid.to_string()).join("exe");
            let Ok((key, sha256)) = self.hasher.hash(&exe_link) else {
                continue;
            };
            let exe_path = process.exe.display().to_string();
            self.known.entry(key).or_insert_with(|| LocalExecutable {
                key,
                facts: WorkloadFacts {
                    exe_path: Some(exe_path.clone()),
                    exe_sha256: Some(sha256),
                    ..WorkloadFacts::default()
                },
            });
            pids.insert(process.pid);
            scan.workloads.workloads.push(LocalWorkload {
                key: WorkloadKey::Process(process.pid),
                facts: WorkloadFacts {
                    exe_path: Some(exe_path),
                    exe_sha256: Some(sha256),
                    cgroup_path: Some(cgroup),
                    user: users.get(&process.uid).cloned(),
                },
            });
        }
        for (dir, path) in cgroups_under(&self.subtree_dir) {
            let Ok(meta) = std::fs::metadata(&dir) else {
                continue;
            };
            scan.workloads.workloads.push(LocalWorkload {
                key: WorkloadKey::Cgroup(meta.ino()),
                facts: WorkloadFacts {
                    cgroup_path: Some(path),
                    ..WorkloadFacts::default()
                },
            });
        }
        // A binary that was replaced or removed is a key no exec can meet.
        self.known.retain(|key, exe| {
            exe.facts
                .exe_path
                .as_deref()
                .and_then(|path| std::fs::metadata(path).ok())
                .is_some_and(|meta| key_of(&meta) == *key)
        });
        scan.workloads.executables = self.known.values().cloned().collect();
        scan.workloads.daemon = vec![WorkloadKey::Process(own_pid)];
        scan.listeners = listeners(&pids);
        Ok(scan)
    }
}

/// Every cgroup directory below `root` (included), with its path relative
/// to `root` ("/" for the root itself).
fn cgroups_under(root: &Path) -> Vec<(PathBuf, String)> {
    let mut out = vec![(root.to_owned(), "/".to_owned())];
    let mut next = 0;
    while next < out.len() {
        let (dir, path) = out[next].clone();
        next += 1;
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                let name = entry.file_name().to_string_lossy().into_owned();
                let child = format!("{}/{name}", path.trim_end_matches('/'));
                out.push((entry.path(), child));
            }
        }
    }
    out
}

/// Listening TCP sockets and bound UDP sockets of `pids`, from this network
/// namespace's sockets and the processes' descriptors.
fn listeners(pids: &BTreeSet<u32>) -> Vec<Listener> {
    let by_inode = match bound_sockets() {
        Ok(sockets) => sockets,
        Err(e) => {
            tracing::debug!(error = %e, "sock_diag unavailable; reading /proc/net");
            proc_sockets()
        }
    };
    let mut out = BTreeSet::new();
    for &pid in pids {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let inode = target
                .to_str()
                .and_then(|t| t.strip_prefix("socket:["))
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse::<u64>().ok());
            if let Some((ip, port, protocol)) = inode.and_then(|i| by_inode.get(&i)) {
                out.insert(Listener {
                    pid,
                    ip: *ip,
                    port: *port,
                    protocol: *protocol,
                });
            }
        }
    }
    out.into_iter().collect()
}

/// The listening and bound sockets from `/proc/net/{tcp,udp}[6]`, for a
/// kernel without `sock_diag`.
fn proc_sockets() -> BTreeMap<u64, Bound> {
    let mut by_inode = BTreeMap::new();
    for (table, wanted_state, protocol) in [
        ("/proc/net/tcp", "0A", L4Protocol::Tcp),
        ("/proc/net/tcp6", "0A", L4Protocol::Tcp),
        ("/proc/net/udp", "07", L4Protocol::Udp),
        ("/proc/net/udp6", "07", L4Protocol::Udp),
    ] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for (inode, ip, port) in socket_table(&text, wanted_state) {
            by_inode.insert(inode, (ip, port, protocol));
        }
    }
    by_inode
}

/// (inode, local address, local port) of the rows of a `/proc/net/{tcp,udp}[6]`
/// text in state `wanted_state` (hex, e.g. `0A` for LISTEN).
fn socket_table(text: &str, wanted_state: &str) -> Vec<(u64, IpAddr, u16)> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (local, state, inode) = (fields.get(1)?, fields.get(3)?, fields.get(9)?);
            if *state != wanted_state {
                return None;
            }
            let (addr, port) = local.split_once(':')?;
            let port = u16::from_str_radix(port, 16).ok()?;
            Some((inode.parse().ok()?, parse_hex_addr(addr)?, port))
        })
        .collect()
}

/// The kernel prints addresses as 32-bit words in host order (little-endian
/// here), in hex.
fn parse_hex_addr(hex: &str) -> Option<IpAddr> {
    let words: Vec<u32> = (0..hex.len() / 8)
        .map(|i| u32::from_str_radix(&hex[i * 8..i * 8 + 8], 16).ok())
        .collect::<Option<_>>()?;
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    match bytes.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::new(
            bytes[0], bytes[1], bytes[2], bytes[3],
        ))),
        16 => {
            let octets: [u8; 16] = bytes.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(octets)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_tables_give_listening_addresses() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
            0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1\n\
            1: 0100007F:1F91 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 12346 1\n";
        assert_eq!(
            socket_table(tcp, "0A"),
            vec![(12345, IpAddr::from([127, 0, 0, 1]), 8080)]
        );
        let tcp6 = "header\n 0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 0 0 0 0 0 777 1\n";
        assert_eq!(
            socket_table(tcp6, "0A"),
            vec![(777, IpAddr::V6(Ipv6Addr::UNSPECIFIED), 80)]
        );
    }

    #[test]
    fn cgroup_paths_are_relative_to_the_subtree() {
        let scanner = LocalScanner::new(
            Path::new("/sys/fs/cgroup"),
            Path::new("/sys/fs/cgroup/lab-h1"),
        );
        assert_eq!(scanner.relative("/lab-h1/web").as_deref(), Some("/web"));
        assert_eq!(scanner.relative("/lab-h1").as_deref(), Some("/"));
        assert_eq!(scanner.relative("/lab-h10/web"), None);
        assert_eq!(scanner.relative("/other"), None);
        let root = LocalScanner::new(Path::new("/sys/fs/cgroup"), Path::new("/sys/fs/cgroup"));
        assert_eq!(
            root.relative("/system.slice/x.service").as_deref(),
            Some("/system.slice/x.service")
        );
    }
}
