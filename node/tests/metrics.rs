//! `/metrics` and the JSON logs of real `stockade` nodes on test hosts: a
//! scrape with a viewer token parses with a Prometheus text-format parser
//! and reports the node's Raft role and term, its applied index, the
//! denials its kernel made, its maps' pressure, the tunnel's and alert
//! delivery's counters; a scrape without a token is refused; every log
//! line, background tasks' included, is JSON carrying the node's id.

use std::collections::BTreeSet;
use std::path::Path;

use prometheus_parse::{Sample, Scrape, Value};
use serde_json::json;
use stockade_chaos::netlab::Lab;
use stockade_chaos::nodes::{wait_for, Nodes};

mod common;

use common::{call, denied_connects, BIN, SETTLE};

/// prod enforces; its client (by cgroup) may talk to nobody.
const POLICY: &str = "[[zone]]\nname = \"prod\"\nmode = \"enforce\"\n\
     [[identity]]\nzone = \"prod\"\napp = \"client\"\nservice = \"main\"\n\
     [[identity_rule]]\nname = \"client\"\n\
     identity = { zone = \"prod\", app = \"client\", service = \"main\" }\n\
     match = { cgroup_path = \"/client\" }\n";

/// One `GET /metrics`: status, content type and body.
struct Scraped {
    status: u16,
    content_type: String,
    body: String,
}

fn scrape(lab: &Lab, nodes: &Nodes, host: usize, token: Option<&str>, accept: &str) -> Scraped {
    let mut command = lab.command(host, "curl");
    command.args([
        "-s",
        "-m",
        "20",
        "-o",
        "-",
        "-w",
        "\n%{http_code} %{content_type}",
    ]);
    command.args(["-H", &format!("Accept: {accept}")]);
    if let Some(token) = token {
        command.args(["-H", &format!("Authorization: Bearer {token}")]);
    }
    command.arg(format!("{}/metrics", nodes.api_url(host)));
    let out = command.output().expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, tail) = text.rsplit_once('\n').unwrap_or(("", &text));
    let (status, content_type) = tail.split_once(' ').unwrap_or((tail, ""));
    Scraped {
        status: status.trim().parse().unwrap_or(0),
        content_type: content_type.to_owned(),
        body: body.to_owned(),
    }
}

/// The scrape parsed; fails unless every sample line was read.
fn parse(text: &str) -> Scrape {
    let scrape =
        Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("the Prometheus text parses");
    let sample_lines = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .count();
    assert_eq!(
        scrape.samples.len(),
        sample_lines,
        "unread lines in\n{text}"
    );
    for sample in &scrape.samples {
        assert!(
            scrape.docs.contains_key(&sample.metric),
            "{} has no HELP",
            sample.metric
        );
    }
    scrape
}

fn number(sample: &Sample) -> f64 {
    match sample.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
        _ => f64::NAN,
    }
}

/// The values of the series `name` whose labels include `labels`.
fn values(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(number)
        .collect()
}

fn one(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    match values(scrape, name, labels).as_slice() {
        [v] => *v,
        other => panic!("{name} {labels:?}: {other:?}"),
    }
}

#[test]
fn metrics_parse_and_every_log_line_names_its_node() {
    // Background tasks' debug lines too: the reconciler's, Raft's.
    std::env::set_var("STOCKADE_LOG", "info,stockade=debug,openraft=info");
    let lab = Lab::new(2).expect("a two-host lab");
    let dir = tempfile::tempdir().expect("temp dir");
    let init = ["--log-format", "json"];
    let mut nodes = Nodes::init(&lab, Path::new(BIN), dir.path(), &init).expect("stockade init");
    nodes.node_args = init.iter().map(|a| a.to_string()).collect();
    nodes.form_cluster(2, SETTLE).expect("the cluster forms");

    let index = call(&nodes, 1, "PUT", "/v1/policy", Some(POLICY))["index"]
        .as_u64()
        .expect("an index");
    // A sink nobody listens on: the leader's deliveries fail.
    let sink = json!({"name": "nowhere", "min_severity": "info", "target": {"kind": "webhook", "url": "http://127.0.0.1:9/"}});
    call(
        &nodes,
        1,
        "PUT",
        "/v1/sinks/nowhere",
        Some(&sink.to_string()),
    );
    let viewer = call(
        &nodes,
        1,
        "POST",
        "/v1/tokens",
        Some(r#"{"name": "prometheus", "role": "viewer"}"#),
    )["token"]
        .as_str()
        .expect("a token")
        .to_owned();

    // Host 2's kernel denies the client: 3 connects, 3 denials.
    let target = format!("{}:9000", lab.address(1));
    wait_for("host 2 to deny the client", SETTLE, || {
        let (denied, text) = denied_connects(&lab, 2, "client", &target, 3);
        ((denied == Some(3)).then_some(()), text)
    })
    .expect("the client is denied");

    let prometheus = "text/plain;version=0.0.4;q=1";
    let refused = scrape(&lab, &nodes, 2, None, prometheus);
    assert_eq!(refused.status, 401, "{}", refused.body);
    let refused = scrape(&lab, &nodes, 2, Some("stk_nonsense"), prometheus);
    assert_eq!(refused.status, 401, "{}", refused.body);

    // The kernel's counters reach the reconciler's report within seconds.
    let follower = wait_for("host 2's metrics to count the denials", SETTLE, || {
        let reply = scrape(&lab, &nodes, 2, Some(&viewer), prometheus);
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert!(
            reply.content_type.starts_with("text/plain"),
            "{}",
            reply.content_type
        );
        let scrape = parse(&reply.body);
        let denied = values(
            &scrape,
            "stockade_dataplane_verdicts_total",
            &[("verdict", "denied")],
        );
        let counted = denied.first().is_some_and(|d| *d >= 3.0);
        let applied = values(&scrape, "stockade_dataplane_index", &[]);
        let in_force = applied.first().is_some_and(|i| *i >= index as f64);
        ((counted && in_force).then_some(scrape), reply.body)
    })
    .expect("the denials are counted");
    let status = nodes.status(2);
    let role = status["role"].as_str().expect("a role");
    assert_eq!(one(&follower, "stockade_raft_role", &[("role", role)]), 1.0);
    assert_eq!(
        one(&follower, "stockade_raft_role", &[("role", "leader")]),
        0.0
    );
    assert!(one(&follower, "stockade_raft_term", &[]) >= 1.0);
    assert!(one(&follower, "stockade_raft_applied_index", &[]) >= index as f64);
    assert_eq!(one(&follower, "stockade_raft_has_leader", &[]), 1.0);
    assert!(one(&follower, "stockade_raft_apply_lag_entries", &[]) >= 0.0);
    assert!(one(&follower, "stockade_dataplane_lag_entries", &[]) >= 0.0);
    let node_id = status["node_id"].as_u64().expect("a node id").to_string();
    assert_eq!(
        one(
            &follower,
            "stockade_node_info",
            &[("node_id", &node_id), ("name", "node2")]
        ),
        1.0
    );
    let maps: BTreeSet<String> = follower
        .samples
        .iter()
        .filter(|s| s.metric == "stockade_dataplane_map_pressure_ratio")
        .map(|s| {
            let pressure = number(s);
            assert!((0.0..=1.0).contains(&pressure), "{s:?}");
            s.labels.get("map").expect("a map label").to_owned()
        })
        .collect();
    for map in [
        "policy",
        "ipcache",
        "cgroups",
        "processes",
        "executables",
        "zones",
        "flows",
    ] {
        assert!(maps.contains(map), "no pressure of {map}: {maps:?}");
    }
    assert!(
        one(
            &follower,
            "stockade_dataplane_map_entries",
            &[("map", "zones")]
        ) >= 1.0
    );
    for counter in [
        "stockade_tunnel_sessions_opened_total",
        "stockade_tunnel_handshake_failures_total",
        "stockade_tunnel_sent_bytes_total",
        "stockade_dataplane_events_lost_total",
        "stockade_flows_records_written_total",
    ] {
        assert!(one(&follower, counter, &[]) >= 0.0, "{counter}");
    }
    assert!(one(&follower, "stockade_tunnel_sessions_active", &[]) >= 0.0);

    // The leader: replication per peer, and the failing sink.
    let leader = wait_for("the leader to count failed deliveries", SETTLE, || {
        let reply = scrape(&lab, &nodes, 1, Some(&viewer), prometheus);
        let scrape = parse(&reply.body);
        let failed = values(
            &scrape,
            "stockade_alert_delivery_failures_total",
            &[("sink", "nowhere")],
        );
        (
            failed.first().is_some_and(|f| *f >= 1.0).then_some(scrape),
            reply.body,
        )
    })
    .expect("deliveries to nowhere fail");
    assert_eq!(
        one(&leader, "stockade_raft_role", &[("role", "leader")]),
        1.0
    );
    assert_eq!(
        one(
            &leader,
            "stockade_alert_sink_failing",
            &[("sink", "nowhere")]
        ),
        1.0
    );
    let lag = one(
        &leader,
        "stockade_raft_replication_lag_entries",
        &[("peer", &node_id)],
    );
    assert!(lag >= 0.0, "{lag}");
    assert!(one(&leader, "stockade_raft_quorum_ack_age_seconds", &[]) >= 0.0);

    // What Prometheus itself asks for: OpenMetrics, ended by `# EOF`.
    let openmetrics = scrape(
        &lab,
        &nodes,
        1,
        Some(&viewer),
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
    );
    assert_eq!(openmetrics.status, 200);
    assert!(
        openmetrics
            .content_type
            .starts_with("application/openmetrics-text"),
        "{}",
        openmetrics.content_type
    );
    assert!(
        openmetrics.body.ends_with("# EOF\n"),
        "{}",
        openmetrics.body
    );
    assert!(openmetrics
        .body
        .contains("# TYPE stockade_dataplane_verdicts counter"));

    // Every log line is JSON with the node's name, and with its id from the
    // moment the node has loaded it; background tasks' lines included.
    for host in 1..=2 {
        let id = nodes.status(host)["node_id"].as_u64().expect("an id");
        let log = nodes.log(host);
        let mut identified = false;
        let mut targets = BTreeSet::new();
        for line in log.lines().filter(|l| !l.trim().is_empty()) {
            if line.starts_with("Joined the cluster as node") {
                continue; // What `join` prints on stdout, the same file here.
            }
            let value: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("host {host}: not JSON ({e}): {line}"));
            assert_eq!(value["node_name"], format!("node{host}"), "{line}");
            match value["node_id"].as_u64() {
                Some(logged) => {
                    assert_eq!(logged, id, "{line}");
                    identified = true;
                    targets.insert(value["target"].as_str().unwrap_or_default().to_owned());
                }
                None => assert!(!identified, "host {host}: a line without the id: {line}"),
            }
        }
        assert!(identified, "host {host} logged nothing with its id:\n{log}");
        for task in ["openraft", "stockade::dataplane::reconcile"] {
            assert!(
                targets.iter().any(|t| t.starts_with(task)),
                "host {host}: no line from {task} with the id: {targets:?}"
            );
        }
    }
    let leader_targets = nodes.log(1);
    assert!(
        leader_targets.contains("\"target\":\"stockade::alerts::forward\""),
        "no line from the alert forwarder"
    );
}
