//! Checks before a run: root, the binaries, a data directory on a real
//! disk, and an otherwise idle machine.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context;

/// Fails unless the process runs as root (it creates network namespaces).
pub fn require_root() -> anyhow::Result<()> {
    anyhow::ensure!(
        nix::unistd::geteuid().is_root(),
        "needs root: the run creates network namespaces"
    );
    Ok(())
}

/// The `stockade` binary: `explicit`, or the one next to this executable.
pub fn locate_stockade(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    let path = match explicit {
        Some(path) => path.to_owned(),
        None => std::env::current_exe()
            .context("finding this executable")?
            .with_file_name("stockade"),
    };
    anyhow::ensure!(
        path.is_file(),
        "no stockade binary at {}: build both with `cargo build --release -p stockade-node \
         -p stockade-bench` (same target directory), or pass --stockade PATH",
        path.display()
    );
    Ok(path)
}

/// The first line of `etcd --version`.
pub fn etcd_version(binary: &Path) -> anyhow::Result<String> {
    let output = Command::new(binary)
        .arg("--version")
        .output()
        .with_context(|| {
            format!(
                "running {} (on Debian: apt-get install --no-install-recommends etcd-server)",
                binary.display()
            )
        })?;
    let text = String::from_utf8_lossy(&output.stdout);
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

/// Warns when `path` is on tmpfs, where fsync costs nothing.
pub fn warn_if_tmpfs(path: &Path) {
    use nix::sys::statfs::{statfs, TMPFS_MAGIC};
    if statfs(path).is_ok_and(|fs| fs.filesystem_type() == TMPFS_MAGIC) {
        eprintln!(
            "warning: {} is on tmpfs, where fsync is free: pass --work-dir on a real disk",
            path.display()
        );
    }
}

/// Busy and total CPU time so far, in clock ticks, from `/proc/stat`.
fn cpu_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: u64 = fields.iter().sum();
    // idle and iowait
    let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// Warns when other work keeps the CPUs more than a quarter busy: the
/// numbers would measure the neighbours too.
pub fn warn_if_busy() {
    let Some((busy0, total0)) = cpu_ticks() else {
        return;
    };
    std::thread::sleep(Duration::from_millis(500));
    let Some((busy1, total1)) = cpu_ticks() else {
        return;
    };
    let share = (busy1 - busy0) as f64 / (total1 - total0).max(1) as f64;
    if share > 0.25 {
        eprintln!(
            "warning: the machine is {:.0}% busy before the run; the results will be noisy",
            share * 100.0
        );
    }
}
