//! What the multi-host node tests share: the binaries they run and the
//! client that counts how often the firewall refused it.

#![allow(dead_code, reason = "each test file uses its own part")]

pub mod capture;

use std::path::{Path, PathBuf};
use std::time::Duration;

use stockade_chaos::netlab::Lab;

/// The `stockade` binary Cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_stockade");
/// Generous: elections and joins on a loaded 2-core machine.
pub const SETTLE: Duration = Duration::from_secs(60);

/// `stockade-netcheck`, built beside `stockade` by the workspace's tests.
pub fn netcheck() -> PathBuf {
    let path = Path::new(BIN).with_file_name("stockade-netcheck");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p stockade-bpf`",
        path.display()
    );
    path
}

/// Connects `count` times from cgroup `cgroup` of host `host` to `target`,
/// going on after refusals; returns how many the firewall denied (`None`
/// when netcheck did not say) and what netcheck printed.
pub fn denied_connects(
    lab: &Lab,
    host: usize,
    cgroup: &str,
    target: &str,
    count: u32,
) -> (Option<u32>, String) {
    stockade_chaos::workload::denied_connects(lab, &netcheck(), host, cgroup, target, count)
}
