//! Renewing a running node's certificate (`stockade certs rotate`) in a
//! three-node cluster of real processes in network namespaces: writes
//! never fail across the renewal, new connections meet the new
//! certificate, and the node comes back with it after a restart.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use stockade_chaos::netlab::Lab;
use stockade_chaos::nodes::{wait_for, Nodes};
use stockade_transport::CertificateInfo;

mod common;

use common::{cli, BIN};

/// Generous: elections and joins on a loaded 2-core machine.
const SETTLE: Duration = Duration::from_secs(90);
/// The node whose certificate is renewed.
const RENEWED: usize = 2;

/// `GET path` on `host` as the admin; must answer 200.
fn get(nodes: &Nodes, host: usize, path: &str) -> Value {
    let reply = nodes
        .api(host, "GET", path, Some(&nodes.admin_token), None)
        .expect("curl runs");
    assert_eq!(
        reply.status, 200,
        "GET {path} on host {host}: {}",
        reply.body
    );
    reply.json()
}

/// The serial of the certificate file in host `host`'s data directory.
fn serial_on_disk(nodes: &Nodes, host: usize) -> String {
    let pem = std::fs::read_to_string(nodes.data_dir(host).join("tls/node.pem")).expect("node.pem");
    CertificateInfo::from_pem(&pem)
        .expect("a certificate")
        .serial
}

fn applied(nodes: &Nodes, host: usize) -> u64 {
    nodes.status(host)["applied_index"].as_u64().unwrap_or(0)
}

fn leader_host(nodes: &Nodes, host: usize) -> Option<usize> {
    let status = nodes.status(host);
    let leader = status["leader"].as_u64()?.to_string();
    nodes.host_of(status["voters"][&leader].as_str()?)
}

/// Writes a zone through `host`, then waits until every host has applied
/// at least the index it answered and all agree on the state digest.
fn write_and_converge(nodes: &Nodes, host: usize, zone: &str) {
    let reply = nodes
        .api(
            host,
            "PUT",
            &format!("/v1/zones/{zone}"),
            Some(&nodes.admin_token),
            Some(r#"{"mode":"learn"}"#),
        )
        .expect("curl runs");
    assert_eq!(
        reply.status, 200,
        "write {zone} through host {host}: {}",
        reply.body
    );
    let index = reply.json()["index"].as_u64().expect("an index");
    wait_for(&format!("every host at index {index}"), SETTLE, || {
        let at: Vec<u64> = (1..=3).map(|h| applied(nodes, h)).collect();
        (
            at.iter().all(|a| *a >= index).then_some(()),
            format!("{at:?}"),
        )
    })
    .expect("every host applies the write");
    // Background writes (inventory, endpoints) move the index: any two
    // answers at one index must agree, and all hosts must meet at one.
    let mut digests: BTreeMap<u64, String> = BTreeMap::new();
    let mut answered: BTreeMap<u64, BTreeSet<usize>> = BTreeMap::new();
    wait_for("one state digest on every host", SETTLE, || {
        for h in 1..=3 {
            let answer = get(nodes, h, "/v1/state/digest");
            let at = answer["applied_index"].as_u64().expect("index");
            let digest = answer["digest"].as_str().expect("digest").to_owned();
            let first = digests.entry(at).or_insert_with(|| digest.clone());
            assert_eq!(*first, digest, "hosts disagree at index {at}");
            answered.entry(at).or_default().insert(h);
        }
        let met = answered.values().any(|h| h.len() == 3);
        (met.then_some(()), format!("{answered:?}"))
    })
    .expect("the hosts hold one state");
}

/// Stops host `host`'s node (SIGTERM), starts it again and waits until it
/// has caught up with the leader: a step of a rolling restart.
fn restart(nodes: &mut Nodes, host: usize) {
    nodes.stop(host).expect("stop");
    nodes.start(host).expect("start");
    let other = (1..=3).find(|h| *h != host).expect("another host");
    wait_for(&format!("host {host} back and caught up"), SETTLE, || {
        let target = applied(nodes, other);
        let status = nodes.status(host);
        let at = status["applied_index"].as_u64().unwrap_or(0);
        let ok = target > 0 && at >= target && status["leader"].is_u64();
        (ok.then_some(()), status.to_string())
    })
    .expect("the restarted node catches up");
}

#[test]
fn a_running_nodes_certificate_is_renewed_without_downtime() {
    let lab = Lab::new(3).expect("a three-host lab");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut nodes = Nodes::init(&lab, Path::new(BIN), dir.path(), &[]).expect("stockade init");
    nodes.form_cluster(3, SETTLE).expect("the cluster forms");
    wait_for("3 voters", SETTLE, || {
        let voters = nodes.members(1, "voters");
        ((voters.len() == 3).then_some(()), format!("{voters:?}"))
    })
    .expect("3 voters");
    // Node 2 serves its API, and its tunnel has published its key.
    wait_for("node 2's API and tunnel", SETTLE, || {
        let status = nodes.status(RENEWED);
        let ready = status["tunnel"]["public_key"].is_string();
        (ready.then_some(()), status.to_string())
    })
    .expect("node 2 runs");

    let before = get(&nodes, RENEWED, "/v1/certs");
    let old_serial = before["serial"].as_str().expect("serial").to_owned();
    assert_eq!(before["expires_soon"], false, "{before}");
    assert_eq!(old_serial, serial_on_disk(&nodes, RENEWED));
    let shown = cli(&lab, &nodes, RENEWED, &["certs", "status"]);
    assert!(
        shown.contains(&old_serial) && !shown.contains("warning"),
        "{shown}"
    );
    // The tunnel publishes its key once the node runs; wait for it, so the
    // renewal below is what changes it.
    let tunnel_key = |nodes: &Nodes| nodes.status(RENEWED)["tunnel"]["public_key"].clone();
    let old_tunnel_key = tunnel_key(&nodes);
    assert!(old_tunnel_key.is_string(), "the node runs a tunnel");

    // Writes through every host, all along the renewal; none may fail.
    let stop = AtomicBool::new(false);
    let (renewal, failures, written) = std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let (mut failures, mut written) = (Vec::new(), 0);
            let mut i = 0usize;
            while !stop.load(Ordering::SeqCst) || i < 10 {
                let host = 1 + i % 3;
                let reply = nodes
                    .api(
                        host,
                        "PUT",
                        &format!("/v1/zones/during-{i}"),
                        Some(&nodes.admin_token),
                        Some(r#"{"mode":"learn"}"#),
                    )
                    .expect("curl runs");
                if reply.status == 200 {
                    written += 1;
                } else {
                    failures.push(format!("host {host}: HTTP {} {}", reply.status, reply.body));
                }
                i += 1;
            }
            (failures, written)
        });
        std::thread::sleep(Duration::from_secs(1));
        let renewal = cli(&lab, &nodes, RENEWED, &["certs", "rotate"]);
        // Writes go on after the switch, through fresh forwarding too.
        std::thread::sleep(Duration::from_secs(2));
        stop.store(true, Ordering::SeqCst);
        let (failures, written) = writer.join().expect("the writer");
        (renewal, failures, written)
    });
    assert!(
        failures.is_empty(),
        "writes failed across the renewal: {failures:?}"
    );
    assert!(written >= 10, "only {written} writes");
    assert!(renewal.contains("Renewed node"), "{renewal}");
    assert!(renewal.contains("The tunnel uses the new key"), "{renewal}");

    // The node presents, and keeps on disk, a new certificate; no backup
    // of the old key is left behind.
    let after = get(&nodes, RENEWED, "/v1/certs");
    let new_serial = after["serial"].as_str().expect("serial").to_owned();
    assert_ne!(new_serial, old_serial, "{after}");
    assert!(
        renewal.contains(&new_serial) && renewal.contains(&old_serial),
        "{renewal}"
    );
    assert_eq!(new_serial, serial_on_disk(&nodes, RENEWED));
    assert_eq!(after["node_id"], before["node_id"]);
    assert_eq!(after["ca_fingerprint"], before["ca_fingerprint"]);
    let tls = std::fs::read_dir(nodes.data_dir(RENEWED).join("tls")).expect("tls dir");
    let names: Vec<String> = tls
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| !n.ends_with(".old") && !n.ends_with(".new")),
        "{names:?}"
    );
    // The tunnel moved to the key derived from the new node key.
    let new_tunnel_key = tunnel_key(&nodes);
    assert!(new_tunnel_key.is_string() && new_tunnel_key != old_tunnel_key);
    write_and_converge(&nodes, RENEWED, "after-renewal");

    // A rolling restart of the two other nodes: afterwards every connection
    // to and from node 2 is new, so made with its new certificate.
    let leader = leader_host(&nodes, 1).expect("a leader");
    let mut others: Vec<usize> = (1..=3).filter(|h| *h != RENEWED).collect();
    // The leader last, if it is one of them: one election fewer.
    others.sort_by_key(|h| *h == leader);
    for host in others {
        restart(&mut nodes, host);
        write_and_converge(&nodes, RENEWED, &format!("after-restart-{host}"));
    }

    // Node 2 itself restarts from its data directory with the new certificate.
    restart(&mut nodes, RENEWED);
    let restarted = get(&nodes, RENEWED, "/v1/certs");
    assert_eq!(restarted["serial"].as_str(), Some(new_serial.as_str()));
    assert_eq!(
        tunnel_key(&nodes),
        new_tunnel_key,
        "the tunnel key survives the restart"
    );
    write_and_converge(&nodes, RENEWED, "after-restart-2");
}
