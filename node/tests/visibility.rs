//! Visibility of real `stockade` nodes on test hosts: workloads talk while
//! their zone learns; the proposal holds exactly the edges they used;
//! accepting it and enforcing keeps them working and blocks a new edge,
//! which is a baseline deviation with a flow record naming the rule that
//! denied it. The inventory shows an unregistered binary as unknown, the
//! topology has the expected vertices and edges at every level, and a flow
//! query with a node down says which node is missing.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use stockade_chaos::netlab::Lab;
use stockade_chaos::nodes::{wait_for, Nodes};

mod common;

use common::{call, cli, denied_connects, netcheck, Workloads, BIN, SETTLE};

/// prod learns; web, api and db are identified by their cgroups.
fn policy_document() -> String {
    let mut doc = "[[zone]]\nname = \"prod\"\nmode = \"learn\"\n".to_owned();
    for app in ["web", "api", "db"] {
        doc.push_str(&format!(
            "[[identity]]\nzone = \"prod\"\napp = \"{app}\"\nservice = \"main\"\n\
             [[identity_rule]]\nname = \"{app}\"\n\
             identity = {{ zone = \"prod\", app = \"{app}\", service = \"main\" }}\n\
             match = {{ cgroup_path = \"/{app}\" }}\n"
        ));
    }
    doc
}

fn text(nodes: &Nodes, host: usize, path: &str) -> String {
    let reply = nodes
        .api(host, "GET", path, Some(&nodes.admin_token), None)
        .expect("curl runs");
    assert_eq!(reply.status, 200, "GET {path}: {}", reply.body);
    reply.body
}

/// Connects `count` times from cgroup `app` of host `host` to `target`;
/// returns how many connections the firewall denied.
fn connect(lab: &Lab, host: usize, app: &str, target: &str, count: u32) -> u32 {
    let (denied, text) = denied_connects(lab, host, app, target, count);
    denied.unwrap_or_else(|| panic!("netcheck said: {text}"))
}

/// The `from → to:port` edges of a proposal, as text.
fn proposed_edges(proposal: &Value) -> Vec<String> {
    let mut edges: Vec<String> = proposal["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|rule| rule["links"].as_array().cloned().unwrap_or_default())
        .map(|link| edge_text(&link["key"]))
        .collect();
    edges.sort();
    edges
}

fn edge_text(key: &Value) -> String {
    let name = |n: &Value| {
        format!(
            "{}/{}",
            n["zone"].as_str().unwrap_or("?"),
            n["app"].as_str().unwrap_or("?")
        )
    };
    let to = match key["to"].get("identity") {
        Some(identity) => name(identity),
        None => key["to"].to_string(),
    };
    format!(
        "{} -> {to} {}/{}",
        name(&key["from"]),
        key["protocol"].as_str().unwrap_or("?"),
        key["port"]
    )
}

#[test]
fn learn_propose_enforce_inventory_topology_and_partial_queries() {
    let lab = Lab::new(3).expect("a three-host lab");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut nodes = Nodes::init(&lab, Path::new(BIN), dir.path(), &[]).expect("stockade init");
    nodes.form_cluster(3, SETTLE).expect("the cluster forms");
    call(&nodes, 1, "PUT", "/v1/policy", Some(&policy_document()));

    // api listens on host 2, db on host 3; a stray binary nobody registered
    // listens on host 1.
    let api = format!("{}:8080", lab.address(2));
    let db = format!("{}:5432", lab.address(3));
    let stray_exe = dir.path().join("stray-server");
    std::fs::copy(netcheck(), &stray_exe).expect("copy netcheck");
    let stray = format!("{}:7070", lab.address(1));
    let netcheck = netcheck().to_string_lossy().into_owned();
    let _workloads = Workloads(vec![
        lab.workload(2, "api", &netcheck)
            .args(["serve", &api])
            .spawn()
            .expect("api"),
        lab.workload(3, "db", &netcheck)
            .args(["serve", &db])
            .spawn()
            .expect("db"),
        lab.workload(1, "stray", &stray_exe.to_string_lossy())
            .args(["serve", &stray])
            .spawn()
            .expect("stray"),
    ]);

    // The servers are published as endpoints before anyone connects, so
    // the clients' nodes know who they reach.
    wait_for("api and db to be published", SETTLE, || {
        let endpoints = call(&nodes, 1, "GET", "/v1/endpoints", None);
        let names: Vec<String> = endpoints
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                format!(
                    "{}:{}",
                    e["identity"]["app"].as_str().unwrap_or("?"),
                    e["port"]
                )
            })
            .collect();
        let done = names.contains(&"api:8080".to_owned()) && names.contains(&"db:5432".to_owned());
        (done.then_some(()), format!("{names:?}"))
    })
    .expect("endpoints");

    // Learn: web talks to api, api to db. web's cgroup is new: the node
    // identifies it on its next scan, and until then web is unknown.
    wait_for("web to be identified", SETTLE, || {
        assert_eq!(connect(&lab, 1, "web", &api, 1), 0);
        let flows = call(
            &nodes,
            1,
            "GET",
            "/v1/flows?app=web&node=1&direction=egress",
            None,
        );
        let known = flows["records"].as_array().is_some_and(|r| !r.is_empty());
        (known.then_some(()), flows.to_string())
    })
    .expect("web identified");
    assert_eq!(connect(&lab, 1, "web", &api, 20), 0);
    assert_eq!(connect(&lab, 2, "api", &db, 20), 0);
    let proposal = wait_for("the baseline to hold both edges", SETTLE, || {
        let proposal = call(&nodes, 1, "POST", "/v1/baseline/proposal?zone=prod", None);
        let edges = proposed_edges(&proposal);
        let why = || {
            format!(
                "{edges:?}\nbaseline: {}\nflows: {}\nlog of host 1:\n{}",
                call(&nodes, 1, "GET", "/v1/baseline", None),
                call(&nodes, 1, "GET", "/v1/flows?limit=20", None),
                nodes.log(1)
            )
        };
        match edges.len() >= 2 {
            true => (Some(proposal), String::new()),
            false => (None, why()),
        }
    })
    .expect("learned");
    println!(
        "proposal:\n{}",
        serde_json::to_string_pretty(&proposal).unwrap_or_default()
    );
    let listed = cli(&lab, &nodes, 1, &["baseline", "propose", "--zone", "prod"]);
    println!("stockade baseline propose --zone prod:\n{listed}");
    assert!(
        listed.contains("[1] prod/api/main -> prod/db/main tcp/5432")
            && listed.contains("[2] prod/web/main -> prod/api/main tcp/8080"),
        "{listed}"
    );
    assert_eq!(
        proposed_edges(&proposal),
        vec![
            "prod/api -> prod/db tcp/5432".to_owned(),
            "prod/web -> prod/api tcp/8080".to_owned(),
        ],
        "exactly the edges the workloads used"
    );

    // Accept every proposed link and enforce.
    let links: Vec<Value> = proposal["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|rule| rule["links"].as_array().cloned().unwrap_or_default())
        .map(|link| link["key"].clone())
        .collect();
    call(
        &nodes,
        1,
        "POST",
        "/v1/baseline/decisions",
        Some(&json!({"links": links, "decision": "accept"}).to_string()),
    );
    let after = call(&nodes, 1, "POST", "/v1/baseline/proposal?zone=prod", None);
    assert_eq!(
        proposed_edges(&after),
        Vec::<String>::new(),
        "nothing left to propose"
    );
    let written = call(
        &nodes,
        1,
        "PUT",
        "/v1/zones/prod",
        Some(&json!({"mode": "enforce"}).to_string()),
    );
    let version = written["index"].as_u64().expect("a version");
    for host in 1..=3 {
        wait_for("the kernels to enforce", SETTLE, || {
            let index = nodes.status(host)["dataplane"]["index"]
                .as_u64()
                .unwrap_or(0);
            (
                (index >= version).then_some(()),
                format!("host {host} at {index}"),
            )
        })
        .expect("in force");
    }
    assert_eq!(
        connect(&lab, 1, "web", &api, 5),
        0,
        "learned edges still work"
    );
    assert_eq!(
        connect(&lab, 2, "api", &db, 5),
        0,
        "learned edges still work"
    );
    assert_eq!(connect(&lab, 1, "web", &db, 3), 3, "a new edge is blocked");

    // The new edge is a baseline deviation, and a flow record names the
    // rule that denied it.
    wait_for("a deviation alert", SETTLE, || {
        let alerts = call(&nodes, 1, "GET", "/v1/alerts?kind=baseline_deviation", None);
        let found =
            alerts["alerts"].as_array().into_iter().flatten().any(|a| {
                a["flow"]["dst"]["port"] == 5432 && a["workload"]["identity"]["app"] == "web"
            });
        (found.then_some(()), alerts.to_string())
    })
    .expect("deviation alerted");
    let denied = wait_for("the denial's flow record", SETTLE, || {
        let flows = call(&nodes, 1, "GET", "/v1/flows?action=deny&port=5432", None);
        let record = flows["records"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["src"]["identity"]["app"] == "web")
            .cloned();
        (record, flows.to_string())
    })
    .expect("a flow record");
    println!("denied flow: {denied}");
    assert_eq!(denied["rule"], "zone_default", "{denied}");
    assert_eq!(denied["node"], 1);
    assert!(
        denied["src"]["process"]["exe"]
            .as_str()
            .is_some_and(|exe| exe.ends_with("stockade-netcheck")),
        "the process is named: {denied}"
    );

    // Inventory: the stray binary is unknown, on node 1; api is identified.
    let unknown = wait_for("the stray binary in the inventory", SETTLE, || {
        let rows = call(&nodes, 2, "GET", "/v1/inventory?unknown=true", None);
        let row = rows
            .as_array()
            .into_iter()
            .flatten()
            .find(|w| {
                w["exe"]
                    .as_str()
                    .is_some_and(|e| e.ends_with("stray-server"))
            })
            .cloned();
        (row, rows.to_string())
    })
    .expect("listed");
    assert_eq!(unknown["status"], "unknown_binary", "{unknown}");
    assert_eq!(unknown["node"], 1, "{unknown}");
    assert!(
        unknown["listening"]
            .as_array()
            .is_some_and(|l| l.iter().any(|p| p["port"] == 7070)),
        "{unknown}"
    );
    let api_rows = call(&nodes, 1, "GET", "/v1/inventory?app=api", None);
    assert!(
        api_rows.as_array().is_some_and(|rows| rows
            .iter()
            .any(|w| w["status"] == "identified" && w["node"] == 2)),
        "{api_rows}"
    );
    let bad = nodes
        .api(
            1,
            "GET",
            "/v1/inventory?zoen=prod",
            Some(&nodes.admin_token),
            None,
        )
        .expect("curl");
    assert_eq!(
        bad.status, 400,
        "a misspelt filter is refused: {}",
        bad.body
    );

    // Topology at every level.
    let edges = |level: &str| -> Vec<(String, String, u64)> {
        let graph = call(
            &nodes,
            1,
            "GET",
            &format!("/v1/topology?level={level}"),
            None,
        );
        graph["edges"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                (
                    e["from"].as_str().unwrap_or("?").to_owned(),
                    e["to"].as_str().unwrap_or("?").to_owned(),
                    e["denied"].as_u64().unwrap_or(0),
                )
            })
            .collect()
    };
    let zone = edges("zone");
    assert!(
        zone.iter().any(|(f, t, _)| f == "prod" && t == "prod"),
        "{zone:?}"
    );
    let app = edges("app");
    for (from, to) in [
        ("prod/web", "prod/api"),
        ("prod/api", "prod/db"),
        ("prod/web", "prod/db"),
    ] {
        assert!(
            app.iter().any(|(f, t, _)| f == from && t == to),
            "{from} -> {to} in {app:?}"
        );
    }
    assert!(
        app.iter()
            .any(|(f, t, denied)| f == "prod/web" && t == "prod/db" && *denied >= 3),
        "the denied edge: {app:?}"
    );
    let service = edges("service");
    assert!(
        service
            .iter()
            .any(|(f, t, _)| f == "prod/web/main" && t == "prod/api/main"),
        "{service:?}"
    );
    let process = edges("process");
    assert!(
        process
            .iter()
            .any(|(f, t, _)| f.contains("stockade-netcheck") && t.contains("prod/api/main")),
        "{process:?}"
    );
    let dot = text(&nodes, 1, "/v1/topology?level=app&format=dot");
    println!("topology (app level):\n{dot}");
    assert!(
        dot.starts_with("digraph") && dot.contains("prod/web") && dot.contains("prod/db"),
        "{dot}"
    );

    // The picture, drawn by Graphviz through the CLI.
    let svg = dir.path().join("topology.svg");
    cli(
        &lab,
        &nodes,
        1,
        &[
            "topology",
            "--level",
            "service",
            "--svg",
            &svg.to_string_lossy(),
        ],
    );
    let drawn = std::fs::read_to_string(&svg).expect("the SVG");
    assert!(
        drawn.contains("<svg") && drawn.contains("prod/web/main"),
        "{drawn}"
    );

    // A template from day one: PostgreSQL clients, applied twice, is one rule.
    let template =
        json!({"clients": {"zone": "prod", "app": "api"}, "server": {"zone": "prod", "app": "db"}});
    for _ in 0..2 {
        call(
            &nodes,
            1,
            "POST",
            "/v1/templates/postgresql",
            Some(&template.to_string()),
        );
    }
    let rules = call(&nodes, 1, "GET", "/v1/rules", None);
    let from_template = rules
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["spec"]["owner"] == "template:postgresql")
        .count();
    assert_eq!(from_template, 1, "{rules}");

    // A SIEM's live feed: web's flows as JSON lines while they happen.
    let feed = lab
        .command(1, "curl")
        .args(["-sN", "-m", "6", "-H"])
        .arg(format!("Authorization: Bearer {}", nodes.admin_token))
        .arg(format!("{}/v1/flows/stream?app=web", nodes.api_url(1)))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("curl");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(connect(&lab, 1, "web", &api, 3), 0);
    let streamed = feed.wait_with_output().expect("curl ends");
    let lines = String::from_utf8_lossy(&streamed.stdout).into_owned();
    let first: Value = lines
        .lines()
        .next()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("a JSON line: {lines:?}"));
    assert_eq!(first["src"]["identity"]["app"], "web", "{first}");

    // With node 3 down, a flow query answers with what the others have and
    // names node 3 as missing.
    nodes.kill(3).expect("kill node 3");
    let partial = call(&nodes, 1, "GET", "/v1/flows?zone=prod", None);
    let missing: Vec<u64> = partial["missing"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["node"].as_u64())
        .collect();
    assert_eq!(missing, vec![3], "{partial}");
    assert!(
        partial["answered"].as_array().is_some_and(|a| a.len() == 2),
        "{partial}"
    );
    assert!(
        partial["records"].as_array().is_some_and(|r| !r.is_empty()),
        "the others' records: {partial}"
    );
}
