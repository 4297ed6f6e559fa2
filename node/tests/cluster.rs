//! Real `stockade` processes forming clusters on test hosts in network
//! namespaces (see DESIGN.md): formation by init and joins, writes through
//! followers, losing the leader, catching up by snapshot, learners, join
//! tokens, roles and bad input.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use stockade_chaos::netlab::Lab;
use stockade_chaos::nodes::{wait_for, Nodes, Reply};

const BIN: &str = env!("CARGO_BIN_EXE_stockade");
/// Generous: elections and joins on a loaded 2-core machine.
const SETTLE: Duration = Duration::from_secs(60);

fn workdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

/// Ids of the voters (or learners) host `host` reports.
fn members(nodes: &Nodes, host: usize, kind: &str) -> BTreeSet<usize> {
    nodes.members(host, kind)
}

/// The host of the leader host `host` knows of.
fn leader_host(nodes: &Nodes, host: usize) -> Option<usize> {
    let status = nodes.status(host);
    let leader = status["leader"].as_u64()?.to_string();
    let addr = status["voters"][&leader].as_str()?;
    nodes.host_of(addr)
}

/// Waits until host 1 reports `n` voters.
fn wait_for_voters(nodes: &Nodes, n: usize) {
    wait_for(&format!("{n} voters"), SETTLE, || {
        let voters = members(nodes, 1, "voters");
        ((voters.len() == n).then_some(()), format!("{voters:?}"))
    })
    .expect("the joined nodes become voters");
}

/// The node id (as `status` names it) of the voter on host `host`.
fn node_id_of(nodes: &Nodes, status: &Value, host: usize) -> String {
    status["voters"]
        .as_object()
        .and_then(|voters| {
            voters
                .iter()
                .find(|(_, addr)| addr.as_str().and_then(|a| nodes.host_of(a)) == Some(host))
        })
        .map(|(id, _)| id.clone())
        .expect("the host runs a voter")
}

/// Starts host 1 and joins hosts `2..=n` one after the other, waiting for
/// each to be a member.
fn form_cluster(nodes: &mut Nodes, n: usize) {
    nodes.form_cluster(n, SETTLE).expect("the cluster forms");
}

fn put_zone(nodes: &Nodes, host: usize, zone: &str) -> Reply {
    nodes
        .api(
            host,
            "PUT",
            &format!("/v1/zones/{zone}"),
            Some(&nodes.admin_token),
            Some(r#"{"mode":"learn"}"#),
        )
        .expect("curl runs")
}

fn zone_names(nodes: &Nodes, host: usize, consistency: &str) -> BTreeSet<String> {
    let reply = nodes
        .api(
            host,
            "GET",
            &format!("/v1/zones?consistency={consistency}"),
            Some(&nodes.admin_token),
            None,
        )
        .expect("curl runs");
    reply
        .json()
        .as_array()
        .map(|zones| {
            zones
                .iter()
                .filter_map(|z| Some(z["name"].as_str()?.to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// Zone names by a linearizable read on `host`. Such a read may answer 503
/// while the leader cannot confirm its lease in time (three clusters share
/// two cores in this file); it is asked again then, and an answer that is
/// given must be complete.
fn linearizable_zone_names(nodes: &Nodes, host: usize) -> BTreeSet<String> {
    let path = "/v1/zones?consistency=linearizable";
    let mut last = String::new();
    for _ in 0..5 {
        let reply = nodes
            .api(host, "GET", path, Some(&nodes.admin_token), None)
            .expect("curl runs");
        if reply.status == 200 {
            return reply
                .json()
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|z| Some(z["name"].as_str()?.to_owned()))
                .collect();
        }
        last = format!("HTTP {}: {}", reply.status, reply.body);
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("no linearizable read on host {host}: {last}");
}

fn applied(nodes: &Nodes, host: usize) -> u64 {
    nodes.status(host)["applied_index"].as_u64().unwrap_or(0)
}

/// Asks `hosts` for their state digests until all of them have answered at
/// one applied index. Background writes (inventory reports, endpoints) move
/// the index meanwhile, so every answer is kept: any two at one index,
/// from any hosts, must carry the same digest.
fn assert_same_state(nodes: &Nodes, hosts: &[usize]) {
    let mut digests: BTreeMap<u64, (String, usize)> = BTreeMap::new();
    let mut answered: BTreeMap<u64, BTreeSet<usize>> = BTreeMap::new();
    wait_for("every host's state digest at one index", SETTLE, || {
        for &host in hosts {
            let reply = nodes
                .api(
                    host,
                    "GET",
                    "/v1/state/digest",
                    Some(&nodes.admin_token),
                    None,
                )
                .expect("curl runs");
            assert_eq!(reply.status, 200, "host {host}: {}", reply.body);
            let answer = reply.json();
            let index = answer["applied_index"].as_u64().expect("an applied index");
            let digest = answer["digest"].as_str().expect("a digest").to_owned();
            assert_eq!(digest.len(), 64, "{answer}");
            let (first, by) = digests.entry(index).or_insert((digest.clone(), host));
            assert_eq!(
                *first, digest,
                "hosts {by} and {host} hold different states at index {index}"
            );
            answered.entry(index).or_default().insert(host);
        }
        let together = answered.values().any(|h| h.len() == hosts.len());
        (together.then_some(()), format!("{answered:?}"))
    })
    .expect("the hosts meet at one index");
}

#[test]
fn a_three_node_cluster_keeps_every_acknowledged_write_when_its_leader_dies() {
    let lab = Lab::new(4).expect("a four-host lab");
    let dir = workdir();
    let mut nodes = Nodes::init(&lab, Path::new(BIN), dir.path(), &[]).expect("stockade init");
    form_cluster(&mut nodes, 3);
    wait_for_voters(&nodes, 3);

    // A write through a follower is readable on every node.
    let leader = leader_host(&nodes, 1).expect("a leader");
    let contacts = nodes.status(leader)["last_contact_ms"]
        .as_object()
        .map_or(0, |m| m.len());
    assert_eq!(
        contacts, 2,
        "the leader reports its last contact with both followers"
    );
    let follower = (1..=3).find(|h| *h != leader).expect("a follower");
    let reply = put_zone(&nodes, follower, "through-follower");
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        reply.json()["index"].as_u64().is_some(),
        "the reply carries the policy version"
    );
    for host in 1..=3 {
        let names = linearizable_zone_names(&nodes, host);
        assert!(names.contains("through-follower"), "host {host}: {names:?}");
    }

    // Acknowledged writes, then the leader is killed.
    let mut acked = vec!["through-follower".to_string()];
    for i in 0..15 {
        let zone = format!("before-{i}");
        if put_zone(&nodes, 1 + i % 3, &zone).status == 200 {
            acked.push(zone);
        }
    }
    nodes.kill(leader).expect("kill -9 the leader");
    let survivor = (1..=3).find(|h| *h != leader).expect("a survivor");
    let new_leader = wait_for("a new leader", SETTLE, || {
        let l = leader_host(&nodes, survivor).filter(|l| *l != leader);
        (l, nodes.status(survivor).to_string())
    })
    .expect("a new leader is elected");
    for i in 0..10 {
        let zone = format!("after-{i}");
        let reply = put_zone(&nodes, new_leader, &zone);
        assert_eq!(reply.status, 200, "writes continue: {}", reply.body);
        acked.push(zone);
    }

    // The old leader comes back and every acknowledged write is everywhere.
    nodes.start(leader).expect("restart the old leader");
    let target = applied(&nodes, new_leader);
    wait_for("the old leader to catch up", SETTLE, || {
        (
            (applied(&nodes, leader) >= target).then_some(()),
            nodes.status(leader).to_string(),
        )
    })
    .expect("the restarted node catches up");
    for host in 1..=3 {
        let zones = zone_names(&nodes, host, "local");
        for zone in &acked {
            assert!(
                zones.contains(zone),
                "host {host} lost acknowledged write {zone}"
            );
        }
    }

    // A fourth node joins and stays a learner: the cluster keeps 3 voters.
    let token = nodes.join_token(new_leader, "10m").expect("a join token");
    nodes.join(4, new_leader, &token).expect("start node 4");
    wait_for("node 4 as a learner with the whole state", SETTLE, || {
        let learners = members(&nodes, new_leader, "learners");
        let done = learners.contains(&4) && zone_names(&nodes, 4, "local").contains("after-9");
        (done.then_some(()), format!("learners {learners:?}"))
    })
    .expect("node 4 is a learner that applies everything");
    assert_eq!(members(&nodes, new_leader, "voters").len(), 3);
    // The voters, the restarted old leader and the new learner hold one
    // state, byte for byte.
    assert_same_state(&nodes, &[1, 2, 3, 4]);
}

#[test]
fn a_node_down_through_many_writes_catches_up_from_a_snapshot() {
    let lab = Lab::new(3).expect("a three-host lab");
    let dir = workdir();
    let mut nodes = Nodes::init(&lab, Path::new(BIN), dir.path(), &[]).expect("stockade init");
    nodes.node_args = vec!["--snapshot-every".into(), "20".into()];
    form_cluster(&mut nodes, 3);
    wait_for_voters(&nodes, 3);
    let leader = leader_host(&nodes, 1).expect("a leader");
    let down = (1..=3).find(|h| *h != leader).expect("a follower");
    nodes.stop(down).expect("stop a follower");
    for i in 0..120 {
        let reply = put_zone(&nodes, leader, &format!("z{i}"));
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    // The leader's log no longer holds what the stopped node lacks, so only
    // a snapshot can bring it up to date.
    let status = nodes.status(leader);
    let down_id = node_id_of(&nodes, &status, down);
    let stopped_at = status["replication"][&down_id].as_u64().unwrap_or(0);
    wait_for("the leader to purge its log", SETTLE, || {
        let purged = nodes.status(leader)["purged_index"].as_u64().unwrap_or(0);
        (
            (purged > stopped_at).then_some(()),
            nodes.status(leader).to_string(),
        )
    })
    .expect("the leader purges what the stopped node lacks");

    nodes.start(down).expect("restart the follower");
    let target = applied(&nodes, leader);
    wait_for("the follower to catch up", SETTLE, || {
        (
            (applied(&nodes, down) >= target).then_some(()),
            nodes.status(down).to_string(),
        )
    })
    .expect("the follower catches up");
    let status = nodes.status(down);
    assert!(
        status["snapshot_index"].as_u64().is_some_and(|i| i > 20),
        "installed a snapshot: {status}"
    );
    assert!(zone_names(&nodes, down, "local").contains("z119"));
    // A state rebuilt from a snapshot is the state the others applied.
    assert_same_state(&nodes, &[1, 2, 3]);
}

fn run_join(nodes: &mut Nodes, host: usize, token: &str) -> String {
    nodes.join(host, 1, token).expect("start stockade join");
    wait_for("the join to end", SETTLE, || {
        let running = nodes.is_running(host);
        ((!running).then_some(()), nodes.log(host))
    })
    .expect("a refused join exits");
    nodes.log(host)
}

#[test]
fn join_tokens_are_single_use_expiring_and_unforgeable() {
    let lab = Lab::new(3).expect("a three-host lab");
    let dir = workdir();
    let mut nodes = Nodes::init(&lab, Path::new(BIN), dir.path(), &[]).expect("stockade init");
    form_cluster(&mut nodes, 1);
    let used = nodes.join_token(1, "10m").expect("a token");
    nodes.join(2, 1, &used).expect("start node 2");
    wait_for("node 2 to join", SETTLE, || {
        (
            members(&nodes, 1, "voters")
                .union(&members(&nodes, 1, "learners"))
                .any(|h| *h == 2)
                .then_some(()),
            nodes.log(2),
        )
    })
    .expect("a fresh token admits node 2");

    // stj_<id>_<secret>_<fingerprint>
    let parts: Vec<&str> = used.split('_').collect();
    let [_, id, secret, fingerprint] = parts[..] else {
        panic!("token form: {used}")
    };
    let forged = format!("stj_{id}_{secret}x_{fingerprint}");
    let other_ca = format!("stj_{id}_{secret}_{}", "0".repeat(64));
    let short = nodes.join_token(1, "1s").expect("a short token");
    std::thread::sleep(Duration::from_secs(2));

    for (token, expected) in [
        (used.as_str(), "already used"),
        (forged.as_str(), "invalid join token"),
        (short.as_str(), "expired"),
        (other_ca.as_str(), "pin"),
    ] {
        let _ = std::fs::remove_dir_all(nodes.data_dir(3));
        let log = run_join(&mut nodes, 3, token);
        assert!(log.contains(expected), "expected `{expected}`:\n{log}");
        assert!(
            !nodes.data_dir(3).join("node.toml").exists(),
            "a refused node kept an identity"
        );
    }
    let all = members(&nodes, 1, "voters")
        .union(&members(&nodes, 1, "learners"))
        .count();
    assert_eq!(all, 2, "no refused node became a member");
}

#[test]
fn roles_are_enforced_and_bad_input_changes_nothing() {
    let lab = Lab::new(1).expect("a one-host lab");
    let dir = workdir();
    let mut nodes = Nodes::init(&lab, Path::new(BIN), dir.path(), &[]).expect("stockade init");
    form_cluster(&mut nodes, 1);
    let admin = nodes.admin_token.clone();
    let token = |role: &str| -> String {
        let body = format!(r#"{{"name":"{role} for tests","role":"{role}"}}"#);
        let reply = nodes
            .api(1, "POST", "/v1/tokens", Some(&admin), Some(&body))
            .expect("curl");
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.json()["token"].as_str().expect("a token").to_owned()
    };
    let (viewer, operator) = (token("viewer"), token("operator"));
    let zone = Some(r#"{"mode":"alert"}"#);
    let call = |method: &str, path: &str, who: Option<&str>, body: Option<&str>| {
        nodes.api(1, method, path, who, body).expect("curl").status
    };

    assert_eq!(call("GET", "/v1/zones", None, None), 401);
    assert_eq!(
        call("GET", "/v1/zones", Some("stk_nobody_secret"), None),
        401
    );
    assert_eq!(call("GET", "/v1/zones", Some(&viewer), None), 200);
    assert_eq!(call("PUT", "/v1/zones/prod", Some(&viewer), zone), 403);
    assert_eq!(call("PUT", "/v1/zones/prod", Some(&operator), zone), 200);
    assert_eq!(
        call(
            "POST",
            "/v1/tokens",
            Some(&operator),
            Some(r#"{"name":"x","role":"admin"}"#)
        ),
        403
    );
    assert_eq!(
        call(
            "POST",
            "/v1/join-tokens",
            Some(&operator),
            Some(r#"{"ttl_seconds":60}"#)
        ),
        403
    );
    assert_eq!(call("DELETE", "/v1/members/1", Some(&viewer), None), 403);
    let one_voter = Some(r#"{"voters":1}"#);
    assert_eq!(
        call("PUT", "/v1/members/voters", Some(&operator), one_voter),
        403
    );
    assert_eq!(
        call("PUT", "/v1/members/voters", Some(&admin), one_voter),
        200
    );
    assert_eq!(call("GET", "/v1/state/digest", None, None), 401);
    assert_eq!(call("GET", "/v1/state/digest", Some(&viewer), None), 200);
    let digest_query = "/v1/state/digest?consistency=linearizable";
    assert_eq!(call("GET", digest_query, Some(&viewer), None), 400);

    let export = |n: &Nodes| {
        n.api(1, "GET", "/v1/policy", Some(&admin), None)
            .expect("curl")
            .body
    };
    let before = export(&nodes);
    for (method, path, body, field) in [
        ("PUT", "/v1/zones/dev", r#"{"mode": "#, None),
        ("PUT", "/v1/zones/dev", r#"{"mode":"strict"}"#, Some("mode")),
        ("PUT", "/v1/zones/Dev", r#"{"mode":"learn"}"#, Some("name")),
        (
            "POST",
            "/v1/rules",
            r#"{"from":{"zone":"prod"},"to":{"zone":"nowhere"},"protocol":"tcp","action":"allow"}"#,
            Some("to.zone"),
        ),
        (
            "POST",
            "/v1/rules",
            r#"{"from":{"zone":"prod"},"to":{"cidr":"10.0.0.1/8"},"protocol":"tcp","action":"allow"}"#,
            Some("to.cidr"),
        ),
        ("PUT", "/v1/members/voters", "{}", None),
    ] {
        let reply = nodes
            .api(1, method, path, Some(&admin), Some(body))
            .expect("curl");
        assert_eq!(reply.status, 400, "{method} {path} {body}: {}", reply.body);
        let error: Value = reply.json();
        assert!(
            error["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{}",
            reply.body
        );
        if let Some(field) = field {
            assert_eq!(error["field"], field, "{}", reply.body);
        }
    }
    // A voter target is an odd number from 1 to 7; the refusal names it.
    for voters in ["0", "4", "9", "300", "-1", r#""3""#] {
        let body = format!(r#"{{"voters":{voters}}}"#);
        let reply = nodes
            .api(1, "PUT", "/v1/members/voters", Some(&admin), Some(&body))
            .expect("curl");
        assert_eq!(reply.status, 400, "{body}: {}", reply.body);
        assert_eq!(reply.json()["field"], "voters", "{body}: {}", reply.body);
    }
    assert_eq!(export(&nodes), before, "refused input changed the policy");
}

/// Runs `work` on a thread that has entered host `host`'s network namespace,
/// with a runtime of its own: sockets it opens live in that namespace.
fn in_host<T: Send + 'static>(
    lab: &Lab,
    host: usize,
    work: impl FnOnce() -> T + Send + 'static,
) -> T {
    let netns =
        std::fs::File::open(format!("/run/netns/{}", lab.netns(host))).expect("open the namespace");
    std::thread::spawn(move || {
        nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET)
            .expect("enter the namespace");
        work()
    })
    .join()
    .expect("the namespaced thread")
}

/// Calls node 1 from host 2 with `identity`, asking for a read index.
fn call_node_1(
    lab: &Lab,
    identity: stockade_transport::NodeIdentity,
    ca: stockade_transport::CaCertificate,
) -> Result<Vec<u8>, String> {
    let target = std::net::SocketAddr::from((lab.address(1), stockade_chaos::nodes::QUIC_PORT));
    let local = std::net::SocketAddr::from((lab.address(2), 0));
    let request = serde_json::to_vec(&stockade_raft::rpc::RaftRpc::ReadIndex).expect("encode");
    in_host(lab, 2, move || {
        let runtime = tokio::runtime::Runtime::new().expect("a runtime");
        runtime.block_on(async move {
            let endpoint =
                stockade_transport::Endpoint::bind(local, identity, &ca, Default::default())
                    .expect("bind");
            let reply = endpoint.call(1, target, request.into()).await;
            endpoint.close().await;
            reply.map(|b| b.to_vec()).map_err(|e| e.to_string())
        })
    })
}

#[test]
fn a_quic_peer_with_a_certificate_from_another_ca_is_refused() {
    use stockade_transport::{CaCertificate, ClusterCa, NodeIdentity, NodeKey};

    let lab = Lab::new(2).expect("a two-host lab");
    let dir = workdir();
    let mut nodes = Nodes::init(&lab, Path::new(BIN), dir.path(), &[]).expect("stockade init");
    form_cluster(&mut nodes, 1);
    stockade_transport::install_crypto_provider();

    // A well-formed identity for node 2, from a CA of its own: refused.
    let ca = ClusterCa::generate("impostor").expect("a CA");
    let key = NodeKey::generate().expect("a key");
    let cert = ca
        .sign_node_csr(&key.csr_pem(2).expect("csr"), 2)
        .expect("cert");
    let impostor =
        NodeIdentity::from_pem(&cert, &key.key_pem(), &ca.certificate()).expect("identity");
    let refused = call_node_1(&lab, impostor, ca.certificate());
    assert!(
        refused.is_err(),
        "a foreign certificate got an answer: {refused:?}"
    );

    // The same call with the cluster's own credentials is answered, so the
    // refusal above is the certificate's doing.
    let tls = nodes.data_dir(1).join("tls");
    let read = |f: &str| std::fs::read_to_string(tls.join(f)).expect("read node 1's credentials");
    let cluster_ca = CaCertificate::from_pem(&read("ca.pem")).expect("the CA");
    let own = NodeIdentity::from_pem(&read("node.pem"), &read("node.key"), &cluster_ca)
        .expect("identity");
    let answered = call_node_1(&lab, own, cluster_ca);
    assert!(
        answered.is_ok(),
        "the cluster's own certificate was refused: {answered:?}"
    );
    assert_eq!(nodes.status(1)["role"], "leader", "the node is unharmed");
}

#[test]
fn a_removed_node_leaves_the_membership_and_the_voters_stay_odd() {
    let lab = Lab::new(3).expect("a three-host lab");
    let dir = workdir();
    let mut nodes = Nodes::init(&lab, Path::new(BIN), dir.path(), &[]).expect("stockade init");
    form_cluster(&mut nodes, 3);
    wait_for_voters(&nodes, 3);
    let status = nodes.status(1);
    let id_of_3 = node_id_of(&nodes, &status, 3);

    // The voter target is the cluster's to set: down to one voter (the
    // leader keeps its seat), then back to three.
    for voters in [1, 3] {
        let output = lab
            .command(1, BIN)
            .args(["voters", &voters.to_string()])
            .args([
                "--api",
                &nodes.api_url(1),
                "--api-token",
                &nodes.admin_token,
            ])
            .output()
            .expect("run stockade voters");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        wait_for(
            &format!("{voters} voters and the rest learners"),
            SETTLE,
            || {
                let v = members(&nodes, 1, "voters");
                let l = members(&nodes, 1, "learners");
                let done = v.len() == voters && v.len() + l.len() == 3;
                (done.then_some(()), format!("voters {v:?} learners {l:?}"))
            },
        )
        .expect("the leader brings the voters to the target");
    }

    let output = lab
        .command(1, BIN)
        .args([
            "remove",
            &id_of_3,
            "--api",
            &nodes.api_url(1),
            "--api-token",
            &nodes.admin_token,
        ])
        .output()
        .expect("run stockade remove");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    wait_for("host 3 out and an odd number of voters", SETTLE, || {
        let voters = members(&nodes, 1, "voters");
        let learners = members(&nodes, 1, "learners");
        let done = !voters.contains(&3) && !learners.contains(&3) && voters.len() % 2 == 1;
        (
            done.then_some(()),
            format!("voters {voters:?} learners {learners:?}"),
        )
    })
    .expect("host 3 is removed and the voters are odd");
    // The cluster still takes writes.
    let leader = leader_host(&nodes, 1).expect("a leader");
    assert_eq!(put_zone(&nodes, leader, "after-removal").status, 200);
}

#[test]
fn binaries_registered_from_ci_are_fingerprints_of_their_identity() {
    use sha2::Digest as _;

    let lab = Lab::new(1).expect("a one-host lab");
    let dir = workdir();
    let mut nodes = Nodes::init(&lab, Path::new(BIN), dir.path(), &[]).expect("stockade init");
    form_cluster(&mut nodes, 1);
    assert_eq!(put_zone(&nodes, 1, "prod").status, 200);

    let register = |token: &str| {
        lab.command(1, BIN)
            .args([
                "fingerprint",
                "/bin/true",
                "/bin/false",
                "--zone",
                "prod",
                "--app",
                "tools",
            ])
            .args(["--api", &nodes.api_url(1), "--api-token", token])
            .output()
            .expect("run stockade fingerprint")
    };
    let viewer = {
        let body = r#"{"name":"ci viewer","role":"viewer"}"#;
        let reply = nodes
            .api(
                1,
                "POST",
                "/v1/tokens",
                Some(&nodes.admin_token),
                Some(body),
            )
            .expect("curl");
        reply.json()["token"].as_str().expect("a token").to_owned()
    };
    let refused = register(&viewer);
    assert!(!refused.status.success(), "a viewer registered binaries");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("403"));

    let output = register(&nodes.admin_token);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let reply = nodes
        .api(1, "GET", "/v1/fingerprints", Some(&nodes.admin_token), None)
        .expect("curl");
    let registered = reply.json();
    for binary in ["/bin/true", "/bin/false"] {
        let digest = hex(&sha2::Sha256::digest(
            std::fs::read(binary).expect("read the binary"),
        ));
        let found = registered.as_array().is_some_and(|all| {
            all.iter()
                .any(|f| f["sha256"] == digest.as_str() && f["identity"]["app"] == "tools")
        });
        assert!(found, "{binary} ({digest}) not registered: {registered}");
    }
    // Registering again is harmless: same digests, same identity.
    assert!(register(&nodes.admin_token).status.success());
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
