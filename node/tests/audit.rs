//! The audit log and policy rollback on a real three-node cluster with
//! dataplanes: every change names the token (name and role), the client's
//! address, the node it came through and the policy version it made; a
//! rollback restores the old policy in every node's kernel maps, as a new
//! version that is itself in the audit log.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use serde_json::Value;
use stockade_chaos::netlab::Lab;
use stockade_chaos::nodes::{wait_for, Nodes};

mod common;

use common::{call, netcheck, wait_for_apis, Workloads, BIN, SETTLE};

const PORT: u16 = 9000;

/// Zone `prod` enforces; `/client` and `/server` cgroups give identities;
/// `allow` adds the rule from the client to the server.
fn policy(allow: bool) -> String {
    let rule = if allow {
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
         match = {{ cgroup_path = \"/server\" }}\n{rule}"
    )
}

/// Calls host `host`'s API with `token`; returns the status and JSON body.
fn api(
    nodes: &Nodes,
    host: usize,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, Value) {
    let reply = nodes
        .api(host, method, path, Some(token), body)
        .expect("curl runs");
    let json = serde_json::from_str(&reply.body).unwrap_or(Value::String(reply.body.clone()));
    (reply.status, json)
}

/// Creates an API token named `name` with `role`.
fn token(nodes: &Nodes, name: &str, role: &str) -> String {
    let body = format!(r#"{{"name":"{name}","role":"{role}"}}"#);
    let reply = call(nodes, 1, "POST", "/v1/tokens", Some(&body));
    reply["token"].as_str().expect("a token").to_owned()
}

/// Writes a whole policy document through host `host` as `token`.
fn put_policy(nodes: &Nodes, host: usize, token: &str, doc: &str) -> u64 {
    let reply = nodes
        .api(host, "PUT", "/v1/policy", Some(token), Some(doc))
        .expect("curl runs");
    assert_eq!(
        reply.status,
        200,
        "{}\nhost {host}'s log:\n{}",
        reply.body,
        nodes.log(host)
    );
    reply.json()["index"].as_u64().expect("an index")
}

fn connect(lab: &Lab, host: usize, target: &str) -> Output {
    lab.workload(host, "client", &netcheck().to_string_lossy())
        .args(["tcp", target])
        .output()
        .expect("run the client")
}

fn refused(output: &Output) -> bool {
    String::from_utf8_lossy(&output.stderr).contains("Operation not permitted")
}

/// Waits until every node's kernel enforces at least the log index the
/// cluster has reached now; returns each host's `dataplane.maps_digest`.
fn settled_digests(nodes: &Nodes) -> BTreeMap<usize, String> {
    let index = nodes.status(1)["applied_index"].as_u64().unwrap_or(0);
    (1..=3)
        .map(|host| {
            let digest = wait_for(
                &format!("host {host}'s dataplane to reach {index}"),
                SETTLE,
                || {
                    let status = nodes.status(host);
                    let reached = status["dataplane"]["index"].as_u64() >= Some(index);
                    let digest = status["dataplane"]["maps_digest"]
                        .as_str()
                        .map(str::to_owned);
                    (digest.filter(|_| reached), status.to_string())
                },
            )
            .expect("the dataplane catches up");
            (host, digest)
        })
        .collect()
}

/// The audit entries at `version`.
fn audited_at(entries: &Value, version: u64) -> Vec<&Value> {
    entries["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["version"] == version)
        .collect()
}

fn assert_made_by(entry: &Value, name: &str, role: &str, lab: &Lab, host: usize, nodes: &Nodes) {
    assert_eq!(entry["author"]["token_name"], name, "{entry}");
    assert_eq!(entry["author"]["role"], role, "{entry}");
    let address = entry["address"].as_str().expect("an address");
    assert!(
        address.starts_with(&format!("{}:", lab.address(host))),
        "{address} is host {host}'s"
    );
    assert_eq!(entry["node"], nodes.status(host)["node_id"], "{entry}");
    assert_eq!(entry["outcome"]["status"], "applied", "{entry}");
}

#[test]
fn the_audit_log_names_each_token_and_rollback_restores_every_kernel() {
    let lab = Lab::new(3).expect("a three-host lab");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut nodes = Nodes::init(&lab, Path::new(BIN), dir.path(), &[]).expect("stockade init");
    nodes.form_cluster(3, SETTLE).expect("the cluster forms");
    let admin = nodes.admin_token.clone();
    wait_for_apis(&nodes, 3);
    let alice = token(&nodes, "alice-ci", "operator");
    let bob = token(&nodes, "bob-oncall", "admin");

    // The server listens on host 3, a long-running client on host 2.
    let program = netcheck().to_string_lossy().into_owned();
    let _workloads = Workloads(vec![
        lab.workload(3, "server", &program)
            .args(["serve", &format!("0.0.0.0:{PORT}")])
            .spawn()
            .expect("start the server"),
        lab.workload(2, "client", &program)
            .args(["serve", "0.0.0.0:9001"])
            .spawn()
            .expect("start the client"),
    ]);
    let server = format!("{}:{PORT}", lab.address(3));

    // Alice, through host 2: the policy without the rule.
    let v1 = put_policy(&nodes, 2, &alice, &policy(false));
    wait_for("both endpoints to be published", SETTLE, || {
        let body = call(&nodes, 1, "GET", "/v1/endpoints", None).to_string();
        let both = body.contains("\"app\":\"server\"") && body.contains("\"app\":\"client\"");
        (both.then_some(()), body)
    })
    .expect("the endpoints are published");
    wait_for("host 2 to refuse the client", SETTLE, || {
        let out = connect(&lab, 2, &server);
        (refused(&out).then_some(()), format!("{out:?}"))
    })
    .expect("prod enforces");
    let at_v1 = settled_digests(&nodes);
    let (_, doc_v1) = api(&nodes, 1, &admin, "GET", "/v1/policy", None);

    // Bob, through host 3: the rule.
    let v2 = put_policy(&nodes, 3, &bob, &policy(true));
    wait_for("host 2 to let the client in", SETTLE, || {
        let out = connect(&lab, 2, &server);
        (out.status.success().then_some(()), format!("{out:?}"))
    })
    .expect("the rule takes effect");
    let at_v2 = settled_digests(&nodes);
    assert_ne!(at_v1, at_v2, "the rule changed some node's maps");

    // The audit log, asked of any node, names each token, its role, its
    // address, the node it came through and the version it made.
    let log = call(&nodes, 1, "GET", "/v1/audit?limit=1000", None);
    let first = audited_at(&log, v1);
    assert_eq!(first.len(), 1, "{log}");
    assert_made_by(first[0], "alice-ci", "operator", &lab, 2, &nodes);
    assert_eq!(first[0]["kind"], "batch");
    assert_eq!(first[0]["policy_changed"], true);
    let second = audited_at(&log, v2);
    assert_eq!(second.len(), 1, "{log}");
    assert_made_by(second[0], "bob-oncall", "admin", &lab, 3, &nodes);
    assert!(log
        .to_string()
        .contains("\"token_name\":\"created by stockade init\""));
    let tokens: Vec<&Value> = log["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["kind"] == "create_api_token")
        .collect();
    assert_eq!(tokens.len(), 2, "{log}");
    for entry in tokens {
        let detail = entry["detail"].as_str().expect("a detail");
        assert!(
            detail.contains("\"secret_sha256\":\"<redacted>\""),
            "{detail}"
        );
    }
    let alices = call(&nodes, 2, "GET", "/v1/audit?token=alice-ci", None);
    assert!(alices["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .all(|e| e["author"]["token_name"] == "alice-ci"));
    let (status, _) = api(&nodes, 1, &admin, "GET", "/v1/audit?tokn=alice-ci", None);
    assert_eq!(status, 400, "a misspelt parameter is refused");

    // The history lists both versions with their authors and diffs.
    let history = call(&nodes, 3, "GET", "/v1/policy/history", None);
    let listed: Vec<u64> = history["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .filter_map(|v| v["version"].as_u64())
        .collect();
    assert!(listed.contains(&v1) && listed.contains(&v2), "{history}");
    let shown = call(&nodes, 2, "GET", &format!("/v1/policy/history/{v2}"), None);
    assert_eq!(shown["authors"][0]["token_name"], "bob-oncall", "{shown}");
    assert_eq!(shown["counts"]["added"], 1, "{shown}");
    assert_eq!(shown["diff"]["entries"][0]["section"], "rule", "{shown}");

    // Alice rolls back to v1 through host 1: every kernel is as it was.
    let body = format!(r#"{{"to":{v1}}}"#);
    let (status, reply) = api(
        &nodes,
        1,
        &alice,
        "POST",
        "/v1/policy/rollback",
        Some(&body),
    );
    assert_eq!(status, 200, "{reply}");
    let v3 = reply["index"].as_u64().expect("an index");
    wait_for("host 2 to refuse the client again", SETTLE, || {
        let out = connect(&lab, 2, &server);
        (refused(&out).then_some(()), format!("{out:?}"))
    })
    .expect("the rule is gone again");
    wait_for("every kernel's maps to be those of v1", SETTLE, || {
        let now = settled_digests(&nodes);
        (
            (now == at_v1).then_some(()),
            format!("{now:?} vs {at_v1:?}"),
        )
    })
    .expect("the rollback restores every node's maps");
    let (_, doc_v3) = api(&nodes, 3, &admin, "GET", "/v1/policy", None);
    assert_eq!(doc_v3, doc_v1, "the policy document is that of v1");

    // The rollback is a version and an audit entry of its own.
    let log = call(&nodes, 3, "GET", "/v1/audit?kind=rollback_policy", None);
    let rollback = audited_at(&log, v3);
    assert_eq!(rollback.len(), 1, "{log}");
    assert_made_by(rollback[0], "alice-ci", "operator", &lab, 1, &nodes);
    assert!(
        rollback[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&format!("\"to\":{v1}"))),
        "{log}"
    );
    let shown = call(&nodes, 1, "GET", &format!("/v1/policy/history/{v3}"), None);
    assert_eq!(shown["rollback_to"], v1, "{shown}");

    // Nothing to do twice; a version never held is a 400 naming the oldest.
    let (status, reply) = api(
        &nodes,
        2,
        &alice,
        "POST",
        "/v1/policy/rollback",
        Some(&body),
    );
    assert_eq!(status, 400, "{reply}");
    let (status, reply) = api(
        &nodes,
        2,
        &alice,
        "POST",
        "/v1/policy/rollback",
        Some(r#"{"to":1}"#),
    );
    assert_eq!(status, 400, "{reply}");
    assert!(
        reply.to_string().contains("oldest policy version kept"),
        "{reply}"
    );
}
