//! Alerts of real `stockade` nodes on test hosts, delivered to real HTTP
//! receivers on a host outside the cluster: a burst of denials arrives
//! aggregated; killing the leader in the middle of delivery loses no alert;
//! a sink that fails and comes back receives its backlog; only the leader
//! ever sends; a node that stops answering is reported down, then up.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use stockade_chaos::netlab::Lab;
use stockade_chaos::nodes::{wait_for, Nodes};
use stockade_chaos::receiver::{names_id, HttpReceiver, Received};
use stockade_chaos::rsyslog::{Collector, Placement};

mod common;

use common::{call, denied_connects, BIN, SETTLE};

/// prod enforces; its client (by cgroup) may talk to nobody.
fn policy_document() -> String {
    "[[zone]]\nname = \"prod\"\nmode = \"enforce\"\n\
     [[identity]]\nzone = \"prod\"\napp = \"client\"\nservice = \"main\"\n\
     [[identity_rule]]\nname = \"client\"\n\
     identity = { zone = \"prod\", app = \"client\", service = \"main\" }\n\
     match = { cgroup_path = \"/client\" }\n"
        .to_owned()
}

fn put_sink(nodes: &Nodes, sink: Value) {
    let name = sink["name"].as_str().expect("a name").to_owned();
    call(
        nodes,
        1,
        "PUT",
        &format!("/v1/sinks/{name}"),
        Some(&sink.to_string()),
    );
}

/// The host whose node `host` says leads.
fn leader(nodes: &Nodes, lab: &Lab, host: usize) -> Option<usize> {
    let status = nodes.status(host);
    let id = status["leader"].as_u64()?;
    let addr = status["voters"][id.to_string()].as_str()?;
    let ip: IpAddr = addr.rsplit_once(':')?.0.parse().ok()?;
    (1..=3).find(|&h| IpAddr::V4(lab.address(h)) == ip)
}

/// Every alert host `host` holds, oldest first.
fn alerts(nodes: &Nodes, host: usize) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let page = call(
            nodes,
            host,
            "GET",
            &format!("/v1/alerts?after={after}&limit=1000"),
            None,
        );
        let batch = page["alerts"].as_array().cloned().unwrap_or_default();
        let Some(last) = batch.last().and_then(|a| a["seq"].as_u64()) else {
            return all;
        };
        after = last;
        all.extend(batch);
    }
}

/// Waits until host `host` says every sink has everything it wants.
fn wait_delivered(nodes: &Nodes, host: usize) -> Value {
    wait_for("every sink to be delivered", SETTLE, || {
        let reply = nodes.api(
            host,
            "GET",
            "/v1/alerts?limit=1",
            Some(&nodes.admin_token),
            None,
        );
        let Ok(reply) = reply else {
            return (None, "no reply".into());
        };
        let body = reply.json();
        let done = reply.status == 200
            && body["sinks"]
                .as_array()
                .is_some_and(|s| !s.is_empty() && s.iter().all(|s| s["pending"] == 0));
        (done.then_some(body.clone()), body.to_string())
    })
    .expect("the sinks catch up")
}

/// Runs the client `count` times against `target` from host `host`;
/// returns how many times the firewall denied it.
fn attempt(lab: &Lab, host: usize, target: &str, count: u32) -> (u32, String) {
    let (denied, text) = denied_connects(lab, host, "client", target, count);
    (denied.unwrap_or(0), text)
}

/// Like [`attempt`]; the firewall must deny every flow.
fn violate(lab: &Lab, host: usize, target: &str, count: u32) {
    let (denied, text) = attempt(lab, host, target, count);
    assert_eq!(denied, count, "every flow is denied: {text}");
}

/// The requests a receiver accepted.
fn accepted(receiver: &HttpReceiver) -> Vec<Received> {
    receiver
        .received()
        .into_iter()
        .filter(|r| (200..300).contains(&r.status))
        .collect()
}

/// What `receiver` accepted, bodies joined.
fn bodies(receiver: &HttpReceiver) -> String {
    accepted(receiver)
        .iter()
        .map(|r| r.body.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The alert ids that never reached `receiver`.
fn missing(receiver: &HttpReceiver, ids: &[String]) -> Vec<String> {
    let bodies = bodies(receiver);
    ids.iter()
        .filter(|id| !names_id(&bodies, id))
        .cloned()
        .collect()
}

#[test]
fn alerts_reach_every_sink_across_a_leader_kill_and_a_sink_outage() {
    let lab = Lab::new(4).expect("a four-host lab");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut nodes = Nodes::init(&lab, Path::new(BIN), dir.path(), &[]).expect("stockade init");
    nodes.form_cluster(3, SETTLE).expect("the cluster forms");
    call(&nodes, 1, "PUT", "/v1/policy", Some(&policy_document()));

    // Host 4, outside the cluster, runs Slack and a JSON collector.
    let slack = HttpReceiver::start(lab.listen_tcp(4, 0).expect("listen")).expect("slack");
    let collector = HttpReceiver::start(lab.listen_tcp(4, 0).expect("listen")).expect("hooks");
    put_sink(
        &nodes,
        json!({"name": "slack", "target": {"kind": "slack", "webhook_url": slack.url("/services/T0/B0/secret")},
               "min_severity": "info"}),
    );
    put_sink(
        &nodes,
        json!({"name": "siem", "target": {"kind": "webhook", "url": collector.url("/ingest"), "token": "tok"},
               "min_severity": "info"}),
    );
    // The client team's own channel: its app only, at most 60 messages a
    // minute (what comes faster is folded into digests).
    let team = HttpReceiver::start(lab.listen_tcp(4, 0).expect("listen")).expect("team");
    put_sink(
        &nodes,
        json!({"name": "team", "target": {"kind": "slack", "webhook_url": team.url("/services/T1/B1/team")},
               "min_severity": "info", "apps": ["prod/client"], "max_per_minute": 60}),
    );
    // And a real rsyslogd, reached over TLS (RFC 5425).
    let rsyslog = Collector::start(Placement {
        ip: IpAddr::V4(lab.address(4)),
        plain: 1514,
        tls: 6514,
        netns: Some(lab.netns(4)),
    })
    .unwrap_or_else(|e| panic!("{e}"));
    put_sink(
        &nodes,
        json!({"name": "syslog", "target": {"kind": "syslog", "address": rsyslog.tls_addr().to_string(),
               "tls": true, "ca_pem": rsyslog.ca_pem()}, "min_severity": "info"}),
    );

    // A burst of 500 denials of one cause arrives as a few aggregated alerts.
    let leader1 = leader(&nodes, &lab, 1).expect("a leader");
    let source = if leader1 == 2 { 3 } else { 2 };
    // Host 4 is the world to the client: prod denies it.
    let target = |port: u16| format!("{}:{port}", lab.address(4));
    wait_for("the client's host to enforce", SETTLE, || {
        let (denied, text) = attempt(&lab, source, &target(8999), 1);
        ((denied == 1).then_some(()), text)
    })
    .expect("prod enforces");
    violate(&lab, source, &target(9000), 500);
    wait_for("the burst to be raised", SETTLE, || {
        let burst: Vec<Value> = alerts(&nodes, 1)
            .into_iter()
            .filter(|a| a["kind"] == "policy_violation")
            .collect();
        let total: u64 = burst
            .iter()
            .filter(|a| a["flow"]["dst"]["port"] == 9000)
            .filter_map(|a| a["count"].as_u64())
            .sum();
        (
            (total == 500).then_some(()),
            format!(
                "{total} of 500 in {burst:?}; log of host {source}:\n{}",
                nodes.log(source)
            ),
        )
    })
    .expect("every denial is counted");
    wait_delivered(&nodes, 1);
    let burst_alerts = alerts(&nodes, 1).len();
    assert!(
        burst_alerts <= 5,
        "500 denials became {burst_alerts} alerts"
    );
    let slack_messages = accepted(&slack).len();
    assert!(
        slack_messages <= 5,
        "{slack_messages} Slack messages for one burst"
    );
    let payload: Value = serde_json::from_str(&accepted(&slack)[0].body).expect("Slack JSON");
    assert!(
        payload["text"].is_string() && payload["blocks"].is_array(),
        "{payload}"
    );
    println!(
        "Slack payload:\n{}",
        serde_json::to_string_pretty(&payload).unwrap_or_default()
    );

    // Kill -9 the leader while a slow Slack is mid-delivery of 40 alerts.
    slack.delay(Duration::from_millis(150));
    for port in 9100..9140 {
        violate(&lab, source, &target(port), 1);
    }
    wait_for("Slack to be mid-delivery", SETTLE, || {
        let n = accepted(&slack).len();
        (
            (n >= slack_messages + 5).then_some(()),
            format!("{n} messages"),
        )
    })
    .expect("delivery starts");
    let killed_at = Instant::now();
    nodes.kill(leader1).expect("kill -9 the leader");
    let survivor = (1..=3).find(|&h| h != leader1).expect("a survivor");
    let leader2 = wait_for("a new leader", SETTLE, || {
        let l = leader(&nodes, &lab, survivor).filter(|&l| l != leader1);
        (l, nodes.status(survivor).to_string())
    })
    .expect("a new leader is elected");
    slack.delay(Duration::ZERO);
    wait_for("the new leader to report the old one down", SETTLE, || {
        let down = alerts(&nodes, survivor)
            .iter()
            .any(|a| a["kind"] == "node_down");
        (down.then_some(()), String::new())
    })
    .expect("node_down is raised");
    wait_delivered(&nodes, survivor);
    let ids: Vec<String> = alerts(&nodes, survivor)
        .iter()
        .filter_map(|a| a["id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(missing(&slack, &ids), Vec::<String>::new(), "lost on Slack");
    assert_eq!(
        missing(&collector, &ids),
        Vec::<String>::new(),
        "lost on the SIEM"
    );
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let lines = rsyslog
        .wait_for(&id_refs, SETTLE)
        .unwrap_or_else(|e| panic!("lost on syslog: {e}"));
    let violation = lines
        .iter()
        .find(|l| l.contains(" policy_violation ["))
        .expect("a policy violation line");
    assert!(
        violation.contains("CEF:0|Stockade|Stockade|"),
        "{violation}"
    );
    println!("Syslog line:\n{violation}");

    // Only the leader of the moment ever sent.
    let (old, new) = (
        IpAddr::V4(lab.address(leader1)),
        IpAddr::V4(lab.address(leader2)),
    );
    for request in slack.received().iter().chain(collector.received().iter()) {
        let expected = if request.at < killed_at { old } else { new };
        assert_eq!(
            request.peer, expected,
            "a request not from the leader of the moment"
        );
    }
    let headers = &accepted(&collector)[0].headers;
    assert_eq!(
        headers.get("authorization").map(String::as_str),
        Some("Bearer tok")
    );

    // The collector fails for a while: the backlog waits, then arrives.
    collector.respond_with(503);
    for port in 9200..9210 {
        violate(&lab, source, &target(port), 1);
    }
    wait_for("the collector to be reported failing", SETTLE, || {
        let body = call(&nodes, survivor, "GET", "/v1/alerts?limit=1000", None);
        let failing = body["sinks"].as_array().is_some_and(|s| {
            s.iter().any(|s| {
                s["name"] == "siem" && s["failing"] == true && s["pending"].as_u64() > Some(0)
            })
        });
        (failing.then_some(()), body["sinks"].to_string())
    })
    .expect("sink_failing is raised while alerts wait");
    collector.respond_with(200);
    nodes.start(leader1).expect("restart the old leader");
    wait_for("the old leader to be reported up", SETTLE, || {
        let up = alerts(&nodes, survivor)
            .iter()
            .any(|a| a["kind"] == "node_up");
        (up.then_some(()), String::new())
    })
    .expect("node_up is raised");
    let body = wait_delivered(&nodes, survivor);
    let all = alerts(&nodes, survivor);
    let ids: Vec<String> = all
        .iter()
        .filter_map(|a| a["id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        missing(&collector, &ids),
        Vec::<String>::new(),
        "backlog lost: {body}"
    );
    assert_eq!(missing(&slack, &ids), Vec::<String>::new(), "lost on Slack");
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    rsyslog
        .wait_for(&id_refs, SETTLE)
        .unwrap_or_else(|e| panic!("lost on syslog: {e}"));
    // The team got its app's alerts, in fewer messages than alerts, and
    // nothing about nodes or sinks.
    let (theirs, others): (Vec<&Value>, Vec<&Value>) =
        all.iter().partition(|a| a["kind"] == "policy_violation");
    let their_ids: Vec<String> = theirs
        .iter()
        .filter_map(|a| a["id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        missing(&team, &their_ids),
        Vec::<String>::new(),
        "lost on the team's channel"
    );
    let messages = accepted(&team).len();
    assert!(
        messages < their_ids.len(),
        "{messages} messages for {} alerts: no digest",
        their_ids.len()
    );
    let team_bodies = bodies(&team);
    for other in others {
        let id = other["id"].as_str().unwrap_or_default();
        assert!(
            !names_id(&team_bodies, id),
            "{} reached the team: {other}",
            other["kind"]
        );
    }
    let kinds: BTreeSet<&str> = all.iter().filter_map(|a| a["kind"].as_str()).collect();
    for kind in [
        "policy_violation",
        "node_down",
        "node_up",
        "sink_failing",
        "sink_recovered",
    ] {
        assert!(kinds.contains(kind), "no {kind} alert in {kinds:?}");
    }
    // The CLI shows them too, with their delivery per sink.
    let out = lab
        .command(survivor, BIN)
        .args([
            "alerts",
            "--kind",
            "sink_failing",
            "--api",
            &nodes.api_url(survivor),
        ])
        .env("STOCKADE_TOKEN", &nodes.admin_token)
        .output()
        .expect("run stockade alerts");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("sink_failing") && text.contains("siem:delivered"),
        "{text}"
    );
    assert!(text.contains("sink siem: delivered through"), "{text}");
    for host in 1..=3 {
        assert!(
            !nodes.log(host).contains("panicked"),
            "node {host} panicked"
        );
    }
}
