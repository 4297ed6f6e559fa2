//! The relay's tasks: one per front, one per upstream socket, and the
//! scheduler of delayed sends.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{End, Inner, Job, Packet, Timed};

/// Large enough for any UDP datagram.
const MAX_DATAGRAM: usize = 65_536;

/// Receives on node `node`'s front and relays each datagram to the node from
/// the upstream socket of its source.
pub(super) async fn front_loop(
    inner: Arc<Inner>,
    node: usize,
    real: SocketAddr,
    front: Arc<UdpSocket>,
) {
    let mut upstreams: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    let mut buf = vec![0; MAX_DATAGRAM];
    loop {
        // Errors on an unconnected UDP socket are transient (a full buffer,
        // an ICMP error for an earlier send): the next datagram is still good.
        let Ok((len, source)) = front.recv_from(&mut buf).await else {
            continue;
        };
        let upstream = match upstreams.get(&source) {
            Some(upstream) => Arc::clone(upstream),
            None => match upstream(&inner, node, real, &front, source) {
                Ok(upstream) => {
                    upstreams.insert(source, Arc::clone(&upstream));
                    upstream
                }
                Err(_) => {
                    let mut state = inner.state();
                    state.stats.received += 1;
                    state.stats.dropped += 1;
                    continue;
                }
            },
        };
        let packet = Packet {
            socket: upstream,
            to: None,
            data: buf[..len].into(),
        };
        inner
            .relay(End::Ip(source.ip()), End::Node(node), packet)
            .await;
    }
}

/// Opens the upstream socket for datagrams from `source` to node `node` and
/// starts relaying what the node answers on it back to `source`.
fn upstream(
    inner: &Arc<Inner>,
    node: usize,
    real: SocketAddr,
    front: &Arc<UdpSocket>,
    source: SocketAddr,
) -> io::Result<Arc<UdpSocket>> {
    let socket = std::net::UdpSocket::bind((inner.listen_ip, 0))?;
    // Connected, so the kernel passes up only what the node sends.
    socket.connect(real)?;
    socket.set_nonblocking(true)?;
    let socket = Arc::new(UdpSocket::from_std(socket)?);
    let task = tokio::spawn(reply_loop(
        Arc::clone(inner),
        node,
        Arc::clone(&socket),
        Arc::clone(front),
        source,
    ));
    inner.register(task.abort_handle());
    Ok(socket)
}

/// Relays what node `node` sends on `upstream` back to `source` from the
/// node's front.
async fn reply_loop(
    inner: Arc<Inner>,
    node: usize,
    upstream: Arc<UdpSocket>,
    front: Arc<UdpSocket>,
    source: SocketAddr,
) {
    let mut buf = vec![0; MAX_DATAGRAM];
    loop {
        // A refused earlier send shows up here as an error; keep listening.
        let Ok(len) = upstream.recv(&mut buf).await else {
            continue;
        };
        let packet = Packet {
            socket: Arc::clone(&front),
            to: Some(source),
            data: buf[..len].into(),
        };
        inner
            .relay(End::Node(node), End::Ip(source.ip()), packet)
            .await;
    }
}

/// Runs delayed sends and hold deadlines at their instants, in order.
pub(super) async fn schedule(inner: Arc<Inner>, mut timed: mpsc::UnboundedReceiver<Timed>) {
    let mut queue: BTreeMap<(Instant, u64), Job> = BTreeMap::new();
    loop {
        let next = queue.first_key_value().map(|(&(at, _), _)| at);
        let due = async {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            incoming = timed.recv() => match incoming {
                Some(Timed { at, id, job }) => {
                    queue.insert((at, id), job);
                }
                // Only if `Inner` went away, which this task's own reference
                // prevents; the relay ends this task by aborting it.
                None => return,
            },
            () = due => {
                let now = Instant::now();
                while let Some(entry) = queue.first_entry() {
                    if entry.key().0 > now {
                        break;
                    }
                    let packets = match entry.remove() {
                        Job::Send(packets) => {
                            inner.state().queued -= 1;
                            packets
                        }
                        Job::Release(link, id) => {
                            let mut state = inner.state();
                            match state.held.get(&link) {
                                Some((held, _)) if *held == id => state
                                    .held
                                    .remove(&link)
                                    .map(|(_, packets)| packets)
                                    .unwrap_or_default(),
                                _ => Vec::new(),
                            }
                        }
                    };
                    inner.send(&packets).await;
                }
            }
        }
    }
}
