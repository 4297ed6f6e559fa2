//! The demo's steps, from empty hosts to blocked intruders.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use serde_json::{json, Value};
use stockade_netlab::Lab;

use super::app::{self, INTRUDERS, PARTS, REGISTERED};
use super::cluster::Cluster;
use super::progress::Progress;
use super::{Interrupt, DEMO_HOSTS, RECEIVER_PORT, SLACK_LOG, TOKEN_FILE};
use crate::baseline_cmd::{name as identity, target};
use crate::cli::DemoArgs;
use crate::inventory::ExecutableHasher;

/// The policy the demo's cluster starts with.
const POLICY: &str = include_str!("../../assets/demo-cluster-policy.toml");

/// Runs every step; returns what to print at the end: how to use the
/// cluster that is left running.
pub fn run(args: &DemoArgs, lab: &Lab, interrupt: &Interrupt) -> Result<String> {
    let dir = &args.dir;
    let mut progress = Progress::new(9);

    let step = progress.step("Three hosts in network namespaces");
    std::fs::create_dir_all(dir.join("logs"))
        .with_context(|| format!("creating {}", dir.display()))?;
    app::build_binaries(&dir.join("bin"))?;
    for host in 1..=DEMO_HOSTS {
        step.say(format!(
            "host {host}: namespace {}, address {}, cgroup subtree {}",
            lab.netns(host),
            lab.address(host),
            lab.cgroup(host).display()
        ));
    }
    step.done("one private bridge, no route out; the application's binaries are in bin/");

    let step = progress.step("The alert receiver, and the way in from this machine");
    let mut cluster = Cluster::new(lab, dir, args.console_port, interrupt)?;
    start_support(&cluster, args)?;
    step.done(format!(
        "a Slack-compatible receiver on {}:{RECEIVER_PORT}; node N's API and console on 127.0.0.1:{}+N-1",
        lab.address(1),
        args.console_port
    ));

    let step = progress.step("A three-node cluster");
    step.waiting("stockade init on host 1");
    cluster.init_first()?;
    step.say("node 1: `stockade init` made the cluster CA and the first admin token");
    for host in 2..=DEMO_HOSTS {
        step.waiting(&format!("node {host} joins"));
        cluster.join(host)?;
        step.say(format!(
            "node {host}: `stockade join` with a single-use join token"
        ));
    }
    step.waiting("every node a voter, every node's eBPF dataplane loaded");
    cluster.wait_formed()?;
    let leader = cluster.call(1, "GET", "/v1/status", None)?["leader"].clone();
    step.done(format!(
        "3 voters (leader: node {leader}) replicating through Raft over QUIC; each enforces its host in the kernel"
    ));

    let step =
        progress.step("The policy: two zones, four identities, one fingerprint, a Slack sink");
    cluster.put_text(1, "/v1/policy", POLICY)?;
    let registered = dir.join("bin").join(REGISTERED);
    let (_, sha256) = ExecutableHasher::new().hash(&registered)?;
    let reply = cluster.call(
        1,
        "POST",
        "/v1/fingerprints",
        Some(json!({
            "sha256": sha256.to_string(),
            "identity": {"zone": "prod", "app": "records", "service": "api"},
            "path": registered.display().to_string(),
        })),
    )?;
    step.say("zones prod and dev learn; workloads are identified by their cgroups");
    step.say(format!(
        "{REGISTERED}'s binary (sha256 {}…) is registered: only it carries prod/records/api",
        &sha256.to_string()[..16]
    ));
    step.done(format!("policy version {}", reply["index"]));

    let step = progress.step("The sample application");
    for part in &PARTS {
        app::start(&cluster, dir, part)?;
        let mut what = format!("host {}: {} — {}", part.host, part.name, part.role);
        if let Some(port) = part.listen {
            what.push_str(&format!(", listens on {port}"));
        }
        if let Some((host, port)) = part.calls {
            what.push_str(&format!(", calls {}:{port}", lab.address(host)));
        }
        step.say(what);
    }
    step.waiting("the portal's and the API's first answers");
    cluster.wait_for("the application's first answers", || {
        Ok((app::answered_calls(dir, "portal-web") > 0
            && app::answered_calls(dir, "records-api") > 0)
            .then_some(()))
    })?;
    step.done("portal-web → records-api:8443 → records-db:5432 all answer");

    let step = progress.step("Learning: what prod really does");
    step.waiting("the nodes' flow records to reach the baseline");
    let edges = cluster.wait_for("both links of the application in prod's baseline", || {
        let baseline = cluster.call(1, "GET", "/v1/baseline?zone=prod", None)?;
        let edges: Vec<Value> = baseline["edges"].as_array().cloned().unwrap_or_default();
        let has = |from: &str, port: u16| {
            edges.iter().any(|e| {
                e["key"]["from"]["app"] == from.split('/').next().unwrap_or("")
                    && e["key"]["from"]["service"] == from.split('/').nth(1).unwrap_or("")
                    && e["key"]["port"] == port
            })
        };
        Ok((has("portal/web", app::API_PORT) && has("records/api", app::DB_PORT)).then_some(edges))
    })?;
    for edge in &edges {
        step.say(format!(
            "seen: {} → {} {}/{}",
            identity(&edge["key"]["from"]),
            target(&edge["key"]["to"]),
            edge["key"]["protocol"].as_str().unwrap_or("?"),
            edge["key"]["port"]
        ));
    }
    step.done(format!("{} links learned in zone prod", edges.len()));

    let step = progress.step("The proposal: the narrowest rules that cover it, accepted");
    let proposal = cluster.call(1, "POST", "/v1/baseline/proposal?zone=prod", None)?;
    let mut links = Vec::new();
    for rule in proposal["rules"].as_array().into_iter().flatten() {
        step.say(format!(
            "allow {} → {} {} ports {}",
            identity(&rule["from"]),
            target(&rule["to"]),
            rule["protocol"].as_str().unwrap_or("?"),
            rule["ports"]
        ));
        for link in rule["links"].as_array().into_iter().flatten() {
            links.push(link["key"].clone());
        }
    }
    if links.is_empty() {
        bail!("the proposal for prod holds no link: {proposal}");
    }
    let reply = cluster.call(
        1,
        "POST",
        "/v1/baseline/decisions",
        Some(json!({ "links": links, "decision": "accept" })),
    )?;
    step.say(format!(
        "{} links accepted as rules (policy version {})",
        links.len(),
        reply["index"]
    ));
    let index = encrypt_database_link(&cluster)?;
    step.say("the records API's link to its database is marked encrypt = true:");
    step.say("  the nodes carry it through a Noise tunnel, the application unchanged");
    step.done(format!("policy version {index}"));

    let step = progress.step("Enforcing prod on every node");
    let reply = cluster.call(
        1,
        "PUT",
        "/v1/zones/prod",
        Some(json!({ "mode": "enforce", "description": "Patient records: ePHI lives here (HIPAA 164.312)" })),
    )?;
    let index = reply["index"]
        .as_u64()
        .context("the zone write has no index")?;
    step.waiting("every node's kernel maps to reach the new version");
    cluster.wait_enforced(index)?;
    let before = (
        app::answered_calls(dir, "portal-web"),
        app::answered_calls(dir, "records-api"),
    );
    step.waiting("the application's answers under enforcement");
    cluster.wait_for("the application to keep working under enforcement", || {
        Ok((app::answered_calls(dir, "portal-web") >= before.0 + 2
            && app::answered_calls(dir, "records-api") >= before.1 + 2)
            .then_some(()))
    })?;
    let tunnelled = cluster.wait_for("the database link to go through the tunnel", || {
        let status = cluster.call(3, "GET", "/v1/status", None)?;
        Ok(status["tunnel"]["counters"]["sessions_accepted"]
            .as_u64()
            .filter(|accepted| *accepted > 0))
    })?;
    step.say(format!(
        "node 3 accepted {tunnelled} Noise sessions for records-api → records-db so far"
    ));
    step.done(format!(
        "policy version {index} is in force in all three kernels; the application still works"
    ));

    let step = progress.step("Intruders");
    let slack = SlackLog::new(dir);
    for intruder in &INTRUDERS {
        step.say(format!("▸ {}", intruder.title));
        let (printed, got_through) = app::attempt(&cluster, dir, intruder)?;
        step.say(format!("  {printed}"));
        if got_through {
            bail!("an intruder got through: {printed}");
        }
    }
    step.waiting("the alerts to reach Slack");
    let expected: Vec<&str> = INTRUDERS.iter().filter_map(|i| i.alert).collect();
    // Each intruder's flow is an alert of its own (a policy violation, or
    // a baseline deviation for a zone that learned one).
    let blocked_flow =
        |line: &String| line.contains("→ prod/records/db") && line.contains("blocked");
    let mut shown = 0;
    cluster.wait_for("the intruders' alerts in Slack", || {
        let lines = slack.lines();
        for line in &lines[shown..] {
            step.say(format!("slack> {line}"));
        }
        shown = lines.len();
        let named = expected
            .iter()
            .all(|title| lines.iter().any(|line| line.contains(title)));
        Ok(
            (named && lines.iter().filter(|l| blocked_flow(l)).count() >= INTRUDERS.len())
                .then_some(()),
        )
    })?;
    step.done(format!("all three blocked; {shown} messages reached Slack"));

    Ok(summary(&cluster, args, progress.elapsed()))
}

/// Sets `encrypt = true` on the accepted rule from the records API to its
/// database; returns the policy version that made it.
fn encrypt_database_link(cluster: &Cluster) -> Result<u64> {
    let rules = cluster.call(1, "GET", "/v1/rules", None)?;
    let rule = rules
        .as_array()
        .into_iter()
        .flatten()
        .find(|rule| {
            identity(&rule["spec"]["from"]) == "prod/records/api"
                && identity(&rule["spec"]["to"]) == "prod/records/db"
        })
        .with_context(|| {
            format!("no accepted rule from the records API to its database: {rules}")
        })?;
    let mut spec = rule["spec"].clone();
    spec["encrypt"] = json!(true);
    let reply = cluster.call(1, "PUT", &format!("/v1/rules/{}", rule["id"]), Some(spec))?;
    reply["index"]
        .as_u64()
        .context("the rule write has no index")
}

/// Starts `stockade demo-support` and waits until node 1's forwarder listens.
fn start_support(cluster: &Cluster, args: &DemoArgs) -> Result<()> {
    // Refused up front: otherwise the demo would talk to whatever listens.
    for host in 1..=DEMO_HOSTS {
        let port = args.console_port.saturating_add(u16::try_from(host - 1)?);
        std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).with_context(|| {
            format!("port {port} of 127.0.0.1 is taken: pass another --console-port")
        })?;
    }
    let binary = super::cluster::stockade_binary()?;
    let shell = std::process::Command::new("sh");
    let mut command =
        stockade_netlab::in_cgroup(shell, &super::control_cgroup()?, &binary.to_string_lossy());
    command
        .arg("demo-support")
        .arg("--dir")
        .arg(&args.dir)
        .args(["--console-port", &args.console_port.to_string()]);
    cluster.spawn_detached(command, &args.dir.join("support.log"))?;
    let local = SocketAddr::from((Ipv4Addr::LOCALHOST, args.console_port));
    cluster.wait_for("the demo's helper to listen", || {
        Ok(
            TcpStream::connect_timeout(&local, Duration::from_millis(200))
                .ok()
                .map(drop),
        )
    })
}

/// What the Slack-compatible receiver got.
struct SlackLog {
    path: std::path::PathBuf,
}

impl SlackLog {
    fn new(dir: &Path) -> SlackLog {
        SlackLog {
            path: dir.join(SLACK_LOG),
        }
    }

    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.path)
            .map(|text| text.lines().map(str::to_owned).collect())
            .unwrap_or_default()
    }
}

/// Prints Slack messages as they arrive until Ctrl-C.
pub fn follow_alerts(dir: &Path, interrupt: &Interrupt) {
    println!("\nFollowing Slack messages; Ctrl-C removes the demo.");
    let slack = SlackLog::new(dir);
    let mut shown = slack.lines().len();
    while interrupt.check().is_ok() {
        let lines = slack.lines();
        for line in lines.iter().skip(shown) {
            println!("slack> {line}");
        }
        shown = shown.max(lines.len());
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// How to use the cluster the demo leaves running.
fn summary(cluster: &Cluster, args: &DemoArgs, took: Duration) -> String {
    let url = cluster.url(1);
    let token = &cluster.admin_token;
    let dir = args.dir.display();
    format!(
        "\n\x1b[1mThe demo cluster is running\x1b[0m (the walk-through took {:.0} s).\n\
         \n  Console:        {url}/console/#token={token}\
         \n                  (every node serves it: nodes 2 and 3 at {} and {})\
         \n  Admin token:    {token} (also in {dir}/{TOKEN_FILE})\
         \n  Try:            export STOCKADE_API={url} STOCKADE_TOKEN={token}\
         \n                  stockade inventory --unknown; stockade flows action=deny; stockade alerts\
         \n                  stockade topology --level service; stockade baseline propose --zone dev\
         \n                  stockade report hipaa --format html; stockade audit; stockade policy history\
         \n  Slack messages: {dir}/{SLACK_LOG}\
         \n  Node logs:      {dir}/node1.log, node2.log, node3.log\
         \n  Remove it all:  stockade demo --down\n",
        took.as_secs_f64(),
        cluster.url(2),
        cluster.url(3),
    )
}

#[cfg(test)]
mod tests {
    use stockade_policy::{PolicyDocument, SinkTarget};

    use super::*;

    #[test]
    fn the_demo_policy_is_valid_and_alerts_reach_the_demo_receiver() {
        let doc = PolicyDocument::parse(POLICY).expect("the demo policy parses");
        let sink = doc.sinks.first().expect("a sink");
        let SinkTarget::Slack { webhook_url } = &sink.target else {
            panic!("the demo's sink is Slack-compatible");
        };
        let receiver = format!(
            "http://{}:{RECEIVER_PORT}/",
            stockade_netlab::host_address(1)
        );
        assert!(webhook_url.0.starts_with(&receiver), "{receiver}");
        for part in &PARTS {
            assert!(
                POLICY.contains(&format!("cgroup_path = \"/{}\"", part.name)),
                "no identity rule for {}",
                part.name
            );
        }
    }
}
