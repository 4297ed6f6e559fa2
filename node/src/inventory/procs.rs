//! The processes running on this node, read from `/proc`: executable,
//! cgroup v2 path and user — the facts identity rules test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One running process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessInfo {
    /// Its pid.
    pub pid: u32,
    /// The executable it runs (`/proc/PID/exe`).
    pub exe: PathBuf,
    /// Its cgroup v2 path, from the hierarchy's root (`0::` in
    /// `/proc/PID/cgroup`).
    pub cgroup_path: Option<String>,
    /// Its real user id.
    pub uid: u32,
}

/// The processes under `proc_root` (normally `/proc`) whose executable can
/// be read. Kernel threads have none, and a process may exit while it is
/// read; both are skipped.
pub fn scan(proc_root: &Path) -> std::io::Result<Vec<ProcessInfo>> {
    let mut processes = Vec::new();
    for entry in std::fs::read_dir(proc_root)? {
        let entry = entry?;
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some(process) = read_process(&entry.path(), pid) {
            processes.push(process);
        }
    }
    processes.sort_by_key(|p| p.pid);
    Ok(processes)
}

fn read_process(dir: &Path, pid: u32) -> Option<ProcessInfo> {
    let exe = std::fs::read_link(dir.join("exe")).ok()?;
    let cgroup = std::fs::read_to_string(dir.join("cgroup")).unwrap_or_default();
    let status = std::fs::read_to_string(dir.join("status")).ok()?;
    Some(ProcessInfo {
        pid,
        exe,
        cgroup_path: cgroup_v2_path(&cgroup),
        uid: real_uid(&status)?,
    })
}

/// The cgroup v2 path of process `pid`, from the hierarchy's root, while
/// it runs.
pub fn cgroup_of(pid: u32) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    cgroup_v2_path(&text)
}

/// The cgroup v2 path in a `/proc/PID/cgroup` text (the `0::` line).
fn cgroup_v2_path(text: &str) -> Option<String> {
    text.lines()
        .find_map(|line| line.strip_prefix("0::"))
        .map(str::to_owned)
}

/// The real uid in a `/proc/PID/status` text.
/// The real user id of process `pid`, while it runs.
pub fn uid_of(pid: u32) -> Option<u32> {
    real_uid(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

fn real_uid(text: &str) -> Option<u32> {
    text.lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().next())
        .and_then(|uid| uid.parse().ok())
}

/// User names by uid, from an `/etc/passwd` text.
pub fn user_names(passwd: &str) -> BTreeMap<u32, String> {
    passwd
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let uid = fields.nth(1)?.parse().ok()?;
            Some((uid, name.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cgroup_status_and_passwd_lines() {
        let cgroup = "9:name=systemd:/\n0::/system.slice/postgresql.service\n";
        assert_eq!(
            cgroup_v2_path(cgroup).as_deref(),
            Some("/system.slice/postgresql.service")
        );
        assert_eq!(cgroup_v2_path("7:blkio:/\n"), None);
        assert_eq!(real_uid("Name:\tx\nUid:\t105\t105\t105\t105\n"), Some(105));
        let users = user_names("root:x:0:0:root:/root:/bin/bash\npostgres:x:105:110::/var/lib/postgresql:/bin/sh\nbroken\n");
        assert_eq!(users.get(&105).map(String::as_str), Some("postgres"));
        assert_eq!(users.len(), 2);
    }

    #[test]
    fn finds_a_child_process_with_its_executable() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let processes = scan(Path::new("/proc")).expect("read /proc");
        let found = processes.iter().find(|p| p.pid == child.id()).cloned();
        let _ = child.kill();
        let _ = child.wait();
        let found = found.expect("the child is listed");
        assert!(found.exe.ends_with("sleep"), "{found:?}");
        assert_eq!(found.uid, 0);
    }
}
