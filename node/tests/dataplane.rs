//! The dataplane of real `stockade` nodes on test hosts (network namespaces,
//! each node enforcing its own cgroup subtree): a rule written on one node
//! takes effect in another node's kernel; endpoints are published; a
//! modified binary is refused; the deny holds while the daemon is dead; a
//! restarted daemon adopts its pins; `stockade uninstall` removes them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::Duration;

use stockade_chaos::netlab::Lab;
use stockade_chaos::nodes::{wait_for, Nodes};

const BIN: &str = env!("CARGO_BIN_EXE_stockade");
/// Generous: elections and joins on a loaded 2-core machine.
const SETTLE: Duration = Duration::from_secs(60);
const PORT: u16 = 9000;

/// `stockade-netcheck`, built beside `stockade` by the workspace's tests.
fn netcheck() -> PathBuf {
    let path = Path::new(BIN).with_file_name("stockade-netcheck");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p stockade-bpf`",
        path.display()
    );
    path
}

/// A copy of netcheck with its marker's last byte set to `byte`: another
/// binary, with another digest.
fn modified_netcheck(dir: &Path, name: &str, byte: u8) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let mut bytes = std::fs::read(netcheck()).expect("read netcheck");
    let marker = b"stockade-netcheck-marker-0123456";
    let at = bytes
        .windows(marker.len())
        .position(|w| w == marker)
        .expect("the marker is in netcheck");
    bytes[at + marker.len() - 1] = byte;
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write the copy");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

fn sha256_hex(path: &Path) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(std::fs::read(path).expect("read the binary"));
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A workload process killed on drop.
struct Workload(Child);

impl Drop for Workload {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn policy(client_sha256: &str, with_rule: bool) -> String {
    let rule = if with_rule {
        format!(
            "[[rule]]\nfrom = {{ zone = \"prod\", app = \"client\" }}\n\
             to = {{ zone = \"prod\", app = \"server\" }}\n\
             protocol = \"tcp\"\nports = [\"{PORT}\"]\naction = \"allow\"\n"
        )
    } else {
        String::new()
    };
    format!(
        "[[zone]]\nname = \"prod\"\nmode = \"enforce\"\n\
         [[identity]]\nzone = \"prod\"\napp = \"client\"\nservice = \"main\"\n\
         [[identity]]\nzone = \"prod\"\napp = \"server\"\nservice = \"main\"\n\
         [[identity_rule]]\nname = \"client\"\n\
         identity = {{ zone = \"prod\", app = \"client\", service = \"main\" }}\n\
         match = {{ cgroup_path = \"/client\" }}\n\
         [[identity_rule]]\nname = \"server\"\n\
         identity = {{ zone = \"prod\", app = \"server\", service = \"main\" }}\n\
         match = {{ cgroup_path = \"/server\" }}\n\
         [[fingerprint]]\nsha256 = \"{client_sha256}\"\n\
         identity = {{ zone = \"prod\", app = \"client\", service = \"main\" }}\n{rule}"
    )
}

fn put_policy(nodes: &Nodes, host: usize, doc: &str) -> u64 {
    let reply = nodes
        .api(
            host,
            "PUT",
            "/v1/policy",
            Some(&nodes.admin_token),
            Some(doc),
        )
        .expect("curl runs");
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()["index"].as_u64().expect("an index")
}

/// Runs `program tcp ADDR` as host `host`'s workload in cgroup `/client`.
fn connect(lab: &Lab, host: usize, program: &Path, target: &str) -> Output {
    lab.workload(host, "client", &program.to_string_lossy())
        .args(["tcp", target])
        .output()
        .expect("run the client")
}

fn refused(output: &Output) -> bool {
    String::from_utf8_lossy(&output.stderr).contains("Operation not permitted")
}

/// What bpftool lists as attached to a cgroup, one line per program.
fn attached(cgroup: &Path) -> Vec<String> {
    let out = Command::new("bpftool")
        .args(["cgroup", "show"])
        .arg(cgroup)
        .output()
        .expect("run bpftool (apt package bpftool)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_rule_written_on_one_node_is_enforced_by_another_nodes_kernel() {
    let lab = Lab::new(3).expect("a three-host lab");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut nodes = Nodes::init(&lab, Path::new(BIN), dir.path(), &[]).expect("stockade init");
    nodes.form_cluster(3, SETTLE).expect("the cluster forms");

    let client = netcheck();
    let server_binary = modified_netcheck(dir.path(), "server", b'S');
    let tampered = modified_netcheck(dir.path(), "tampered", b'T');
    put_policy(&nodes, 1, &policy(&sha256_hex(&client), false));

    // The server runs on host 3; its node publishes where it listens.
    let _server = Workload(
        lab.workload(3, "server", &server_binary.to_string_lossy())
            .args(["serve", &format!("0.0.0.0:{PORT}")])
            .spawn()
            .expect("start the server"),
    );
    let server_address = format!("{}:{PORT}", lab.address(3));
    wait_for("host 3 to publish the server's endpoint", SETTLE, || {
        let reply = nodes.api(1, "GET", "/v1/endpoints", Some(&nodes.admin_token), None);
        let body = reply.map(|r| r.body).unwrap_or_default();
        let published = body.contains(&lab.address(3).to_string())
            && body.contains(&format!("\"port\":{PORT}"))
            && body.contains("\"app\":\"server\"");
        (published.then_some(()), body)
    })
    .expect("the endpoint is published");

    // Host 2's kernel refuses the client: prod enforces and no rule allows.
    wait_for("host 2 to enforce", SETTLE, || {
        let out = connect(&lab, 2, &client, &server_address);
        (refused(&out).then_some(()), format!("{out:?}"))
    })
    .expect("the client is refused without a rule");

    // A rule written through host 1 reaches host 2's kernel.
    let index = put_policy(&nodes, 1, &policy(&sha256_hex(&client), true));
    wait_for("host 2's kernel to allow the client", SETTLE, || {
        let out = connect(&lab, 2, &client, &server_address);
        (out.status.success().then_some(()), format!("{out:?}"))
    })
    .expect("the rule takes effect on host 2");
    let status = nodes.status(2);
    assert!(
        status["dataplane"]["index"].as_u64() >= Some(index),
        "{status}"
    );
    assert_eq!(status["dataplane"]["attachment"], "attached", "{status}");

    // A modified client binary is not the registered one: refused.
    assert!(refused(&connect(&lab, 2, &tampered, &server_address)));

    // Host 2's daemon dies: its pinned hooks and maps still decide.
    nodes.kill(2).expect("kill -9 node 2");
    assert!(refused(&connect(&lab, 2, &tampered, &server_address)));
    assert!(connect(&lab, 2, &client, &server_address).status.success());
    let hooks = attached(&lab.cgroup(2));
    assert_eq!(hooks.len(), 7, "{hooks:?}");

    // Restarted, it adopts what is pinned instead of attaching again.
    nodes.start(2).expect("restart node 2");
    wait_for("node 2 to adopt its dataplane", SETTLE, || {
        let status = nodes.status(2);
        let adopted = status["dataplane"]["attachment"] == "adopted"
            && status["dataplane"]["index"].as_u64() >= Some(index);
        (adopted.then_some(()), status.to_string())
    })
    .expect("node 2 adopts its pins");
    assert_eq!(attached(&lab.cgroup(2)), hooks, "no second attachment");
    assert!(refused(&connect(&lab, 2, &tampered, &server_address)));

    // Stopped and uninstalled, nothing of it is left in the kernel.
    nodes.stop(2).expect("stop node 2");
    let out = Command::new(BIN)
        .arg("uninstall")
        .arg("--pin-dir")
        .arg(lab.pin_dir(2))
        .output()
        .expect("run stockade uninstall");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!lab.pin_dir(2).exists(), "pins left behind");
    assert!(attached(&lab.cgroup(2)).is_empty(), "hooks left attached");
    assert!(connect(&lab, 2, &tampered, &server_address)
        .status
        .success());
}
