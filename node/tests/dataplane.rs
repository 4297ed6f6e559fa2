//! The dataplane of real `stockade` nodes on test hosts (network namespaces,
//! each node enforcing its own cgroup subtree): a rule written on one node
//! takes effect in another node's kernel; endpoints are published; traffic
//! from outside the cluster is checked at the receiver's ingress; a
//! modified binary is refused; the deny holds while the daemon is dead; a
//! restarted daemon adopts its pins; `stockade uninstall` removes them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

use stockade_chaos::netlab::Lab;
use stockade_chaos::nodes::{wait_for, Nodes};

mod common;

use common::{netcheck, BIN, SETTLE};

const PORT: u16 = 9000;

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

/// The test's policy; `allow_from` is what the rule to the server lets in.
fn policy(client_sha256: &str, allow_from: Option<&str>) -> String {
    let rule = match allow_from {
        Some(from) => format!(
            "[[rule]]\nfrom = {from}\n\
             to = {{ zone = \"prod\", app = \"server\" }}\n\
             protocol = \"tcp\"\nports = [\"{PORT}\"]\naction = \"allow\"\n"
        ),
        None => String::new(),
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

/// Waits until the kernels of `hosts` enforce the policy of `index`.
fn wait_for_dataplanes(nodes: &Nodes, hosts: &[usize], index: u64) {
    for &host in hosts {
        wait_for(
            &format!("host {host}'s dataplane to reach {index}"),
            SETTLE,
            || {
                let status = nodes.status(host);
                let reached = status["dataplane"]["index"].as_u64() >= Some(index);
                (reached.then_some(()), status.to_string())
            },
        )
        .expect("the dataplane catches up");
    }
}

/// Waits until the maps pinned for host `host`, read from this process,
/// hold what its daemon reports it wrote last (`dataplane.maps_digest`).
/// Asked again on a mismatch: a reconciliation may land between the two
/// reads.
fn wait_for_pins_to_match(nodes: &Nodes, lab: &Lab, host: usize) {
    wait_for(
        &format!("host {host}'s pinned maps to match its status"),
        SETTLE,
        || {
            let reported = nodes.status(host)["dataplane"]["maps_digest"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let pinned = stockade_bpf::read_pinned(&lab.pin_dir(host))
                .expect("read the pinned maps")
                .enforcement_digest();
            (
                (reported == pinned).then_some(()),
                format!("status {reported:?}, pins {pinned:?}"),
            )
        },
    )
    .expect("the kernel holds what the daemon wrote");
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
    // Hosts 1-3 run nodes; host 4 is a machine outside the cluster.
    let lab = Lab::new(4).expect("a four-host lab");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut nodes = Nodes::init(&lab, Path::new(BIN), dir.path(), &[]).expect("stockade init");
    nodes.form_cluster(3, SETTLE).expect("the cluster forms");

    let client = netcheck();
    let server_binary = modified_netcheck(dir.path(), "server", b'S');
    let tampered = modified_netcheck(dir.path(), "tampered", b'T');
    let digest = sha256_hex(&client);
    put_policy(&nodes, 1, &policy(&digest, None));

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
    let from_client = r#"{ zone = "prod", app = "client" }"#;
    let index = put_policy(&nodes, 1, &policy(&digest, Some(from_client)));
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

    // Host 4 runs no node: its address is the world, and host 3's ingress
    // hook drops its SYNs until a rule names its address.
    let outsider = |lab: &Lab| {
        lab.command(4, &client.to_string_lossy())
            .args(["tcp", &server_address])
            .output()
            .expect("run the outsider")
    };
    let dropped = outsider(&lab);
    assert!(!dropped.status.success(), "the world got in: {dropped:?}");
    let from_outsider = format!(r#"{{ cidr = "{}/32" }}"#, lab.address(4));
    put_policy(&nodes, 1, &policy(&digest, Some(&from_outsider)));
    wait_for("host 3's ingress to let host 4 in", SETTLE, || {
        let out = outsider(&lab);
        (out.status.success().then_some(()), format!("{out:?}"))
    })
    .expect("a CIDR rule lets the outsider in");
    let index = put_policy(&nodes, 1, &policy(&digest, Some(from_client)));
    wait_for_dataplanes(&nodes, &[2, 3], index);
    for host in 1..=3 {
        wait_for_pins_to_match(&nodes, &lab, host);
    }
    let allowed = connect(&lab, 2, &client, &server_address);
    // A binary stays known after its last process ended: the exec hook
    // identifies the next run without waiting for a scan.
    assert!(allowed.status.success(), "{allowed:?}");

    // A modified client binary is not the registered one: refused.
    assert!(refused(&connect(&lab, 2, &tampered, &server_address)));

    // Host 2's daemon dies: its pinned hooks and maps still decide.
    nodes.kill(2).expect("kill -9 node 2");
    assert!(refused(&connect(&lab, 2, &tampered, &server_address)));
    let allowed = connect(&lab, 2, &client, &server_address);
    assert!(allowed.status.success(), "{allowed:?}");
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
    // The tunnel's sock_ops hand-over lives with the daemon, unpinned.
    let (handover, pinned): (Vec<String>, Vec<String>) = attached(&lab.cgroup(2))
        .into_iter()
        .partition(|hook| hook.contains("stockade_sockops"));
    assert_eq!(pinned, hooks, "no second attachment");
    assert_eq!(handover.len(), 1, "the running daemon's tunnel hand-over");
    wait_for_pins_to_match(&nodes, &lab, 2);
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
