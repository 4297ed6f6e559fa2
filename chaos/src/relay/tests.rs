//! The relay on loopback: the relay listens on 127.0.0.1 and node `k` is a
//! socket on 127.0.0.(2 + k), so sources are told apart by IP as between
//! hosts. Waits poll the relay's counters; the only timeouts are guards
//! against hangs.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::task::JoinHandle;
use tokio::time::{sleep, timeout};

use super::*;

const RELAY_IP: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// How long a wait may take before the test is declared hung.
const PATIENCE: Duration = Duration::from_secs(5);

struct Net {
    relay: Relay,
    nodes: Vec<Arc<UdpSocket>>,
    fronts: Vec<SocketAddr>,
    /// A socket on an IP that is no node's: forwarded without faults.
    outsider: UdpSocket,
}

async fn net(n: u8, seed: u64) -> Net {
    let relay = Relay::start(RELAY_IP, seed).await.expect("start");
    let (mut nodes, mut fronts) = (Vec::new(), Vec::new());
    for k in 0..n {
        let socket = UdpSocket::bind((Ipv4Addr::new(127, 0, 0, 2 + k), 0))
            .await
            .expect("bind node");
        let real = socket.local_addr().expect("node address");
        fronts.push(relay.add_node(k.into(), real).await.expect("add node"));
        nodes.push(Arc::new(socket));
    }
    let outsider = UdpSocket::bind((Ipv4Addr::new(127, 0, 0, 99), 0))
        .await
        .expect("bind outsider");
    Net {
        relay,
        nodes,
        fronts,
        outsider,
    }
}

fn faults(f: impl FnOnce(&mut LinkFaults)) -> LinkFaults {
    let mut faults = LinkFaults::default();
    f(&mut faults);
    faults
}

/// Waits until the relay's counters satisfy `done`.
async fn until(relay: &Relay, what: &str, done: impl Fn(&RelayStats) -> bool) -> RelayStats {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let stats = relay.stats();
        if done(&stats) {
            return stats;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "waiting for {what}: {stats:?}"
        );
        sleep(Duration::from_millis(1)).await;
    }
}

async fn recv(socket: &UdpSocket) -> (u32, SocketAddr) {
    let mut buf = [0; 64];
    let (len, from) = timeout(PATIENCE, socket.recv_from(&mut buf))
        .await
        .expect("a datagram in time")
        .expect("recv");
    let bytes = buf[..len].try_into().expect("a 4-byte sequence number");
    (u32::from_be_bytes(bytes), from)
}

/// Sends `tag` from `sender` to `dest`, which should reach node `receiver`,
/// and tells whether it did. After the relay has decided, an outsider's
/// marker (never faulted) goes to the receiver: whichever of the two the
/// receiver sees first answers, without waiting for an absence.
async fn passes(
    net: &Net,
    sender: &UdpSocket,
    dest: SocketAddr,
    receiver: usize,
    tag: u32,
) -> bool {
    const MARKER: u32 = u32::MAX;
    let before = net.relay.stats();
    sender
        .send_to(&tag.to_be_bytes(), dest)
        .await
        .expect("send");
    let decided = until(&net.relay, "a decision", |s| {
        s.forwarded + s.dropped > before.forwarded + before.dropped
    })
    .await;
    net.outsider
        .send_to(&MARKER.to_be_bytes(), net.fronts[receiver])
        .await
        .expect("send marker");
    let socket = &net.nodes[receiver];
    let (first, _) = recv(socket).await;
    if first == MARKER {
        assert_eq!(decided.dropped, before.dropped + 1, "vanished, not dropped");
        return false;
    }
    assert_eq!(first, tag);
    assert_eq!(recv(socket).await.0, MARKER);
    true
}

/// Sends sequence numbers `0..n` from node `from` to node `to`, in bursts
/// small enough for the socket buffers, each burst once the relay has read
/// the one before.
async fn blast(net: &Net, from: usize, to: usize, n: u32) {
    let base = net.relay.stats().received;
    for burst in (0..n).collect::<Vec<_>>().chunks(32) {
        for seq in burst {
            net.nodes[from]
                .send_to(&seq.to_be_bytes(), net.fronts[to])
                .await
                .expect("send");
        }
        let sent = u64::from(burst[burst.len() - 1]) + 1;
        until(&net.relay, "the relay to read a burst", |s| {
            s.received >= base + sent
        })
        .await;
    }
}

/// Collects the sequence numbers node socket `socket` receives.
fn collect(socket: Arc<UdpSocket>) -> (Arc<Mutex<Vec<u32>>>, JoinHandle<()>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let task = tokio::spawn(async move {
        let mut buf = [0; 64];
        while let Ok((len, _)) = socket.recv_from(&mut buf).await {
            let bytes = buf[..len].try_into().expect("a 4-byte sequence number");
            sink.lock().expect("seen").push(u32::from_be_bytes(bytes));
        }
    });
    (seen, task)
}

async fn collected(seen: &Mutex<Vec<u32>>, n: usize) -> Vec<u32> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let got = seen.lock().expect("seen").clone();
        if got.len() >= n {
            return got;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {n} datagrams arrived",
            got.len()
        );
        sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test]
async fn ping_pong_through_the_relay() {
    let net = net(2, 1).await;
    let (a, b) = (&net.nodes[0], &net.nodes[1]);
    let mut upstream = None;
    for k in 0..20u32 {
        a.send_to(&k.to_be_bytes(), net.fronts[1])
            .await
            .expect("ping");
        let (ping, via) = recv(b).await;
        assert_eq!(ping, k);
        // B sees the relay, from one upstream socket for A, not A itself.
        assert_eq!(via.ip(), RELAY_IP);
        assert_eq!(*upstream.get_or_insert(via), via);
        b.send_to(&(k + 1000).to_be_bytes(), via)
            .await
            .expect("pong");
        let (pong, from) = recv(a).await;
        assert_eq!((pong, from), (k + 1000, net.fronts[1]));
    }
    let stats = net.relay.stats();
    assert_eq!(
        (stats.received, stats.forwarded, stats.dropped),
        (40, 40, 0)
    );
}

#[tokio::test]
async fn a_cut_drops_one_direction_only() {
    let net = net(2, 1).await;
    let (a, b) = (&net.nodes[0], &net.nodes[1]);
    net.relay.set_link(0, 1, faults(|f| f.cut = true));
    assert!(!passes(&net, a, net.fronts[1], 1, 1).await);
    assert!(passes(&net, b, net.fronts[0], 0, 2).await);
    // A's answer to B travels 0 → 1 as well.
    let (_, via) = recv_after(&net, 1, 0, 3).await;
    assert!(!passes(&net, a, via, 1, 4).await);
    net.relay.set_link(0, 1, LinkFaults::default());
    assert!(passes(&net, a, via, 1, 5).await);
    assert!(passes(&net, a, net.fronts[1], 1, 6).await);
}

/// Sends `tag` from node `from` to node `to` and returns what `to` saw.
async fn recv_after(net: &Net, from: usize, to: usize, tag: u32) -> (u32, SocketAddr) {
    net.nodes[from]
        .send_to(&tag.to_be_bytes(), net.fronts[to])
        .await
        .expect("send");
    let got = recv(&net.nodes[to]).await;
    assert_eq!(got.0, tag);
    got
}

#[tokio::test]
async fn a_partition_cuts_between_groups_not_within() {
    let net = net(3, 1).await;
    let link =
        |from: usize, to: usize, tag| passes(&net, &net.nodes[from], net.fronts[to], to, tag);
    net.relay
        .partition(&[BTreeSet::from([0, 1]), BTreeSet::from([2])]);
    assert!(link(0, 1, 1).await && link(1, 0, 2).await);
    assert!(!link(0, 2, 3).await && !link(2, 1, 4).await);
    // A new partition replaces the old; node 0, in no group, is alone.
    net.relay.partition(&[BTreeSet::from([1, 2])]);
    assert!(link(1, 2, 5).await && link(2, 1, 6).await);
    assert!(!link(0, 1, 7).await && !link(2, 0, 8).await);
    net.relay.heal();
    assert!(link(0, 2, 9).await && link(2, 0, 10).await);
}

#[tokio::test]
async fn half_are_lost_at_loss_one_half() {
    let net = net(2, 7).await;
    net.relay.set_all(faults(|f| f.loss = 0.5));
    let (seen, task) = collect(Arc::clone(&net.nodes[1]));
    blast(&net, 0, 1, 2000).await;
    let stats = until(&net.relay, "all decided", |s| {
        s.forwarded + s.dropped == 2000
    })
    .await;
    assert!((800..=1200).contains(&stats.forwarded), "{stats:?}");
    let got = collected(&seen, stats.forwarded as usize).await;
    assert_eq!(got.iter().collect::<BTreeSet<_>>().len(), got.len());
    task.abort();
}

#[tokio::test]
async fn duplicate_one_delivers_twice() {
    let net = net(2, 1).await;
    net.relay.set_link(0, 1, faults(|f| f.duplicate = 1.0));
    let (seen, task) = collect(Arc::clone(&net.nodes[1]));
    blast(&net, 0, 1, 100).await;
    let mut counts = HashMap::new();
    for seq in collected(&seen, 200).await {
        *counts.entry(seq).or_insert(0) += 1;
    }
    assert_eq!(counts.len(), 100);
    assert!(counts.values().all(|&n| n == 2));
    let stats = net.relay.stats();
    assert_eq!((stats.forwarded, stats.duplicated), (200, 100));
    task.abort();
}

/// Sends 300 datagrams over a link with `link` faults and returns them in
/// the order they arrived, once all have.
async fn all_arrive(link: LinkFaults) -> (Vec<u32>, RelayStats) {
    let net = net(2, 3).await;
    net.relay.set_link(0, 1, link);
    let (seen, task) = collect(Arc::clone(&net.nodes[1]));
    blast(&net, 0, 1, 300).await;
    let got = collected(&seen, 300).await;
    task.abort();
    let mut sorted = got.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..300).collect::<Vec<_>>());
    (got, net.relay.stats())
}

fn out_of_order(got: &[u32]) -> usize {
    got.windows(2).filter(|w| w[1] < w[0]).count()
}

// On worker threads, as the harness runs it: the fronts, the scheduler and
// the receiver really run at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_and_reorder_deliver_all_some_out_of_order() {
    let (got, stats) = all_arrive(faults(|f| {
        f.delay_min = Duration::ZERO;
        f.delay_max = Duration::from_millis(20);
        f.reorder = 0.2;
    }))
    .await;
    assert!(out_of_order(&got) > 0, "{got:?}");
    assert!(stats.delayed > 0 && stats.reordered > 0, "{stats:?}");
    assert_eq!(stats.dropped, 0);
}

#[tokio::test]
async fn reorder_alone_swaps_neighbours() {
    let (got, stats) = all_arrive(faults(|f| f.reorder = 0.3)).await;
    assert!(out_of_order(&got) > 0, "{got:?}");
    assert!(stats.reordered > 0 && stats.delayed == 0, "{stats:?}");
}

/// Which of 200 datagrams sent one at a time over a lossy link are dropped.
async fn drops(seed: u64) -> Vec<u32> {
    let net = net(2, seed).await;
    net.relay.set_link(0, 1, faults(|f| f.loss = 0.5));
    let mut dropped = Vec::new();
    for seq in 0..200 {
        if !passes(&net, &net.nodes[0], net.fronts[1], 1, seq).await {
            dropped.push(seq);
        }
    }
    dropped
}

#[tokio::test]
async fn a_seed_replays_its_drops() {
    let first = drops(42).await;
    assert!(!first.is_empty() && first.len() < 200);
    assert_eq!(first, drops(42).await);
    assert_ne!(first, drops(43).await);
}

#[tokio::test]
async fn nodes_are_told_apart_by_ip() {
    let net = net(2, 1).await;
    let taken = net.nodes[0].local_addr().expect("address");
    let other_port = SocketAddr::new(taken.ip(), taken.port() + 1);
    assert!(net.relay.add_node(5, other_port).await.is_err());
    assert!(net
        .relay
        .add_node(0, "127.0.0.50:1".parse().expect("addr"))
        .await
        .is_err());
}

#[tokio::test]
async fn dropping_the_relay_closes_its_sockets() {
    let net = net(2, 1).await;
    recv_after(&net, 0, 1, 1).await;
    let front = net.fronts[1];
    drop(net.relay);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    // Aborted tasks let go of their sockets when the runtime next runs.
    while UdpSocket::bind(front).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{front} still bound"
        );
        sleep(Duration::from_millis(5)).await;
    }
}
