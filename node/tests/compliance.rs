//! The HIPAA / NIST CSF report of a real two-node cluster with dataplanes:
//! it follows the cluster (switching a zone to enforce flips PR.AC-5; an
//! encrypted cross-node flow meets PR.DS-2), it is dated, names the cluster
//! and its policy version, and every format verifies until it is changed.

use std::path::Path;

use serde_json::Value;
use stockade_chaos::netlab::Lab;
use stockade_chaos::nodes::{wait_for, Nodes};

mod common;

use common::{call, cli_as, netcheck, wait_for_apis, Workloads, BIN, SETTLE};

const PORT: u16 = 9000;

/// Zones `prod` (in `prod_mode`) and `dev` (enforcing); the client on host
/// 1 may reach the server on host 2, through the Noise tunnel.
fn policy(prod_mode: &str) -> String {
    format!(
        r#"[settings]
cluster_name = "st-example-hospital"
unmanaged_mode = "learn"

[[zone]]
name = "prod"
mode = "{prod_mode}"

[[zone]]
name = "dev"
mode = "enforce"

[[identity]]
zone = "prod"
app = "client"
service = "main"

[[identity]]
zone = "prod"
app = "server"
service = "main"

[[identity]]
zone = "dev"
app = "tools"
service = "shell"

[[identity_rule]]
name = "client"
identity = {{ zone = "prod", app = "client", service = "main" }}
match = {{ cgroup_path = "/client" }}

[[identity_rule]]
name = "server"
identity = {{ zone = "prod", app = "server", service = "main" }}
match = {{ cgroup_path = "/server" }}

[[rule]]
from = {{ zone = "prod", app = "client" }}
to = {{ zone = "prod", app = "server" }}
protocol = "tcp"
ports = ["{PORT}"]
action = "allow"
encrypt = true
"#
    )
}

fn put_policy(nodes: &Nodes, doc: &str) -> u64 {
    let reply = nodes
        .api(1, "PUT", "/v1/policy", Some(&nodes.admin_token), Some(doc))
        .expect("curl runs");
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()["index"].as_u64().expect("an index")
}

fn control<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["controls"]
        .as_array()
        .expect("controls")
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {report}"))
}

fn report(nodes: &Nodes, host: usize) -> Value {
    call(
        nodes,
        host,
        "GET",
        "/v1/compliance/hipaa?consistency=linearizable",
        None,
    )
}

#[test]
fn the_report_follows_the_cluster_and_verifies_until_changed() {
    let lab = Lab::new(2).expect("a two-host lab");
    let dir = tempfile::tempdir().expect("temp dir");
    // Node 1 leads from the start and takes periodic backups.
    let backups = dir.path().join("backups");
    let backups = backups.to_string_lossy();
    let mut nodes = Nodes::init(
        &lab,
        Path::new(BIN),
        dir.path(),
        &["--backup-dir", &backups],
    )
    .expect("stockade init");
    nodes.form_cluster(2, SETTLE).expect("the cluster forms");
    wait_for_apis(&nodes, 2);
    let v1 = put_policy(&nodes, &policy("learn"));

    // Prod learns: PR.AC-5 is only partly met, and the report says why.
    let before = report(&nodes, 2);
    assert_eq!(before["format"], "stockade-hipaa-report 1");
    assert_eq!(before["cluster"], "st-example-hospital");
    assert_eq!(before["policy_version"], v1, "{before}");
    assert_eq!(before["controls"].as_array().map(Vec::len), Some(21));
    let segmentation = control(&before, "PR.AC-5");
    assert_eq!(segmentation["status"], "partly_met", "{segmentation}");
    assert!(
        segmentation["gaps"]
            .to_string()
            .contains("set zone `prod` to enforce"),
        "{segmentation}"
    );

    // Prod enforces: PR.AC-5 is met, in every node's kernel.
    let v2 = put_policy(&nodes, &policy("enforce"));
    let after = wait_for("both kernels to enforce the new version", SETTLE, || {
        let report = report(&nodes, 1);
        let met = control(&report, "PR.AC-5")["status"] == "met";
        (met.then(|| report.clone()), report.to_string())
    })
    .expect("PR.AC-5 is met once prod enforces");
    assert_eq!(after["policy_version"], v2);
    assert!(after["summary"]["met"].as_u64() > before["summary"]["met"].as_u64());

    // A client on host 1 reaches the server on host 2 through the tunnel:
    // PR.DS-2 counts that cross-node flow as encrypted.
    let program = netcheck().to_string_lossy().into_owned();
    let _workloads = Workloads(vec![lab
        .workload(2, "server", &program)
        .args(["serve", &format!("0.0.0.0:{PORT}")])
        .spawn()
        .expect("start the server")]);
    let server = format!("{}:{PORT}", lab.address(2));
    let encrypted = wait_for("an encrypted cross-node flow in the report", SETTLE, || {
        let out = lab
            .workload(1, "client", &program)
            .args(["tcp", &server])
            .output()
            .expect("run the client");
        let report = report(&nodes, 1);
        let transit = control(&report, "PR.DS-2").clone();
        let met = transit["status"] == "met";
        (
            met.then_some(transit.clone()),
            format!("{out:?}\n{transit}"),
        )
    })
    .expect("PR.DS-2 is met");
    assert!(
        encrypted["evidence"].to_string().contains("100.0%"),
        "{encrypted}"
    );

    // The leader's periodic backup is recorded: PR.IP-4 is met.
    let backed_up = wait_for("the periodic backup in the report", SETTLE, || {
        let report = report(&nodes, 2);
        let backups = control(&report, "PR.IP-4").clone();
        (
            (backups["status"] == "met").then_some(backups.clone()),
            backups.to_string(),
        )
    })
    .expect("PR.IP-4 is met");
    assert!(
        backed_up["evidence"].to_string().contains(".backup"),
        "{backed_up}"
    );

    // Each format, written by the CLI, verifies against the cluster; a
    // viewer may make and check reports.
    let viewer = call(
        &nodes,
        1,
        "POST",
        "/v1/tokens",
        Some(r#"{"name":"auditor","role":"viewer"}"#),
    )["token"]
        .as_str()
        .expect("a token")
        .to_owned();
    for format in ["json", "html", "pdf"] {
        let file = dir.path().join(format!("report.{format}"));
        let file = file.to_string_lossy();
        let made = cli_as(
            &lab,
            &nodes,
            2,
            &viewer,
            &["report", "hipaa", "--format", format, "-o", &file],
        );
        assert!(made.status.success(), "{made:?}");
        let checked = cli_as(&lab, &nodes, 1, &viewer, &["report", "verify", &file]);
        let said = String::from_utf8_lossy(&checked.stdout);
        assert!(checked.status.success(), "{format}: {checked:?}");
        assert!(said.contains("st-example-hospital"), "{said}");
    }
    let html = std::fs::read_to_string(dir.path().join("report.html")).expect("the HTML");
    assert!(html.contains("PR.AC-5") && html.contains("st-example-hospital"));
    let pdf = std::fs::read(dir.path().join("report.pdf")).expect("the PDF");
    assert!(pdf.starts_with(b"%PDF-"));

    // Changed afterwards, it no longer verifies, and the error says so.
    let json = std::fs::read_to_string(dir.path().join("report.json")).expect("the JSON");
    let tampered = json.replacen("\"status\":\"not_met\"", "\"status\":\"met\"", 1);
    assert_ne!(tampered, json);
    let path = dir.path().join("tampered.json");
    std::fs::write(&path, tampered).expect("write");
    let refused = cli_as(
        &lab,
        &nodes,
        1,
        &viewer,
        &["report", "verify", &path.to_string_lossy()],
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("the report was changed"),
        "{refused:?}"
    );

    // Bad windows are refused, naming the parameter.
    let bad = nodes
        .api(
            1,
            "GET",
            "/v1/compliance/hipaa?window=forever",
            Some(&viewer),
            None,
        )
        .expect("curl runs");
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("window"), "{}", bad.body);
}
