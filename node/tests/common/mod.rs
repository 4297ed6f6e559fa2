//! What the multi-host node tests share: the binaries they run and the
//! client that counts how often the firewall refused it.

#![allow(dead_code, reason = "each test file uses its own part")]

pub mod browser;
pub mod capture;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use stockade_chaos::netlab::Lab;
use stockade_chaos::nodes::Nodes;

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

/// Calls the admin API of host `host`'s node as the admin; fails the test
/// unless the answer is 200, and returns its JSON.
pub fn call(nodes: &Nodes, host: usize, method: &str, path: &str, body: Option<&str>) -> Value {
    let reply = nodes
        .api(host, method, path, Some(&nodes.admin_token), body)
        .expect("curl runs");
    assert_eq!(reply.status, 200, "{method} {path}: {}", reply.body);
    reply.json()
}

/// Runs `stockade ARGS --api <host's API> --api-token TOKEN` inside host
/// `host`'s namespace, whatever its outcome.
pub fn cli_as(lab: &Lab, nodes: &Nodes, host: usize, token: &str, args: &[&str]) -> Output {
    lab.command(host, BIN)
        .args(args)
        .args(["--api", &nodes.api_url(host), "--api-token", token])
        .output()
        .expect("run stockade")
}

/// Runs the `stockade` CLI as the admin inside host `host`'s namespace
/// against its API; fails the test unless it succeeds. Returns its
/// standard output.
pub fn cli(lab: &Lab, nodes: &Nodes, host: usize, args: &[&str]) -> String {
    let output = cli_as(lab, nodes, host, &nodes.admin_token, args);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "stockade {}: {stdout}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Waits until hosts `1..=count` serve their admin API.
pub fn wait_for_apis(nodes: &Nodes, count: usize) {
    for host in 1..=count {
        stockade_chaos::nodes::wait_for(&format!("host {host}'s API"), SETTLE, || {
            let reply = nodes.api(host, "GET", "/v1/status", Some(&nodes.admin_token), None);
            let up = reply.as_ref().is_ok_and(|r| r.status == 200);
            (up.then_some(()), format!("{:?}", reply.map(|r| r.body)))
        })
        .expect("every node serves its API");
    }
}

/// Processes a test started, killed when it ends, passed or not.
pub struct Workloads(pub Vec<std::process::Child>);

impl Drop for Workloads {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
