//! A UDP relay between nodes that injects faults into their datagrams.
//!
//! This kernel has no netem, so node-to-node faults come from here: every
//! node advertises its *front* address on the relay instead of its own, so
//! each datagram one node sends another passes through the relay. A datagram
//! arriving at node `j`'s front from source `S` goes on to `j`'s real address
//! from an upstream socket kept for `(S, j)`; what `j` answers on that
//! upstream socket goes back to `S` from `j`'s front. It is a NAT, and QUIC
//! copes: peers are authenticated by TLS, not by address.
//!
//! The source node is known by the source IP (each node has its own), and
//! each datagram meets the [`LinkFaults`] of its directed link. Every random
//! choice comes from one RNG seeded at [`Relay::start`], so the same seed and
//! the same order of datagrams give the same fates.
//!
//! All sockets are made in the network namespace of the thread that makes
//! them: fronts on the thread that calls [`Relay::add_node`], upstream
//! sockets on whichever runtime thread receives the first datagram from a
//! new source. Every thread of the runtime the relay runs on must therefore
//! be in the namespace the relay belongs in (the harness runs its runtime on
//! threads that entered it).

mod faults;
mod loops;

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use faults::{decide, Fate};
pub use faults::{LinkFaults, HOLD_MAX};
use loops::{front_loop, schedule};

/// Most delayed sends waiting at once; beyond it datagrams are dropped (and
/// counted), so a long delay under heavy traffic cannot grow memory without
/// bound.
pub const MAX_QUEUED: usize = 10_000;

/// What the relay did with datagrams since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RelayStats {
    /// Datagrams that arrived at the relay, in either direction.
    pub received: u64,
    /// Datagrams sent on, each copy of a duplicate counted.
    pub forwarded: u64,
    /// Datagrams not sent: cut, lost, over the delay queue's cap, or refused
    /// by the socket.
    pub dropped: u64,
    /// Extra copies made by `duplicate`.
    pub duplicated: u64,
    /// Copies scheduled with a delay above zero.
    pub delayed: u64,
    /// Datagrams held back by `reorder`.
    pub reordered: u64,
}

/// A relay in front of the nodes of one cluster. Dropping it aborts its
/// tasks, which closes its sockets.
pub struct Relay {
    inner: Arc<Inner>,
}

struct Inner {
    listen_ip: IpAddr,
    state: Mutex<State>,
    tasks: Mutex<Tasks>,
    /// Delayed sends and hold deadlines, to the one scheduler task.
    timer: mpsc::UnboundedSender<Timed>,
}

struct State {
    rng: ChaCha8Rng,
    links: HashMap<(usize, usize), LinkFaults>,
    /// The nodes added so far, which `set_all` and `partition` cover.
    nodes: BTreeSet<usize>,
    /// Real IP → node id: how the source of a datagram is known.
    by_ip: HashMap<IpAddr, usize>,
    /// The datagram held back on each link, with the id of its hold.
    held: HashMap<(usize, usize), (u64, Vec<Packet>)>,
    next_id: u64,
    /// Delayed sends not yet made.
    queued: usize,
    stats: RelayStats,
}

/// Tasks to abort on drop. Once closed, a task registered late (spawned by
/// a front task as the relay was dropped) is aborted at once.
struct Tasks {
    handles: Vec<AbortHandle>,
    closed: bool,
}

/// One datagram to send: on a front socket back to a source, or on an
/// upstream socket (connected to its node) when `to` is `None`.
#[derive(Clone)]
struct Packet {
    socket: Arc<UdpSocket>,
    to: Option<SocketAddr>,
    data: Arc<[u8]>,
}

/// One end of a datagram's trip: a node the relay knows by id, or an
/// address that may or may not be a node's.
#[derive(Clone, Copy)]
enum End {
    Node(usize),
    Ip(IpAddr),
}

/// Work for the scheduler at a given instant.
struct Timed {
    at: Instant,
    /// Breaks ties between equal instants in the order they were made.
    id: u64,
    job: Job,
}

enum Job {
    /// Send these in order; they count against [`MAX_QUEUED`] as one.
    Send(Vec<Packet>),
    /// Send what is held on the link under this hold id, if still held.
    Release((usize, usize), u64),
}

impl Relay {
    /// Starts a relay that binds its sockets on `listen_ip` and draws every
    /// fault from an RNG seeded with `seed`. Sockets are bound in the network
    /// namespace of the thread that creates them (see the module doc).
    pub async fn start(listen_ip: IpAddr, seed: u64) -> io::Result<Relay> {
        let (timer, timed) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            listen_ip,
            state: Mutex::new(State {
                rng: ChaCha8Rng::seed_from_u64(seed),
                links: HashMap::new(),
                nodes: BTreeSet::new(),
                by_ip: HashMap::new(),
                held: HashMap::new(),
                next_id: 0,
                queued: 0,
                stats: RelayStats::default(),
            }),
            tasks: Mutex::new(Tasks {
                handles: Vec::new(),
                closed: false,
            }),
            timer,
        });
        let scheduler = tokio::spawn(schedule(Arc::clone(&inner), timed));
        inner.register(scheduler.abort_handle());
        Ok(Relay { inner })
    }

    /// Puts node `node`, reachable at `real`, behind the relay and returns
    /// the front address it must advertise instead of its own. Fails if the
    /// node id or the IP of `real` is already taken: sources are told apart
    /// by IP alone.
    pub async fn add_node(&self, node: usize, real: SocketAddr) -> io::Result<SocketAddr> {
        let front = Arc::new(UdpSocket::bind((self.inner.listen_ip, 0)).await?);
        let address = front.local_addr()?;
        {
            let mut state = self.inner.state();
            if state.nodes.contains(&node) || state.by_ip.contains_key(&real.ip()) {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!(
                        "node {node} or IP {} is already behind the relay",
                        real.ip()
                    ),
                ));
            }
            state.nodes.insert(node);
            state.by_ip.insert(real.ip(), node);
        }
        let task = tokio::spawn(front_loop(Arc::clone(&self.inner), node, real, front));
        self.inner.register(task.abort_handle());
        Ok(address)
    }

    /// Sets the faults of the link from node `from` to node `to`.
    pub fn set_link(&self, from: usize, to: usize, faults: LinkFaults) {
        self.inner.state().links.insert((from, to), faults);
    }

    /// Sets the faults of every link, both ways, between nodes added so far.
    pub fn set_all(&self, faults: LinkFaults) {
        let mut state = self.inner.state();
        let nodes: Vec<usize> = state.nodes.iter().copied().collect();
        for &from in &nodes {
            for &to in nodes.iter().filter(|&&to| to != from) {
                state.links.insert((from, to), faults);
            }
        }
    }

    /// Makes every link healthy again.
    pub fn heal(&self) {
        self.inner.state().links.clear();
    }

    /// Cuts every link between nodes of different groups and un-cuts every
    /// link within a group, so a partition replaces the one before it;
    /// other faults of a link stay. A node in no group is cut off from all.
    pub fn partition(&self, groups: &[BTreeSet<usize>]) {
        let mut state = self.inner.state();
        let group_of = |node: usize| groups.iter().position(|g| g.contains(&node));
        let nodes: Vec<usize> = state.nodes.iter().copied().collect();
        for &from in &nodes {
            for &to in nodes.iter().filter(|&&to| to != from) {
                let apart = match (group_of(from), group_of(to)) {
                    (Some(a), Some(b)) => a != b,
                    _ => true,
                };
                state.links.entry((from, to)).or_default().cut = apart;
            }
        }
    }

    /// What the relay has done so far.
    pub fn stats(&self) -> RelayStats {
        self.inner.state().stats
    }
}

impl fmt::Debug for Relay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Relay")
            .field("listen_ip", &self.inner.listen_ip)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let mut tasks = self
            .inner
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        tasks.closed = true;
        for task in tasks.handles.drain(..) {
            task.abort();
        }
    }
}

impl Inner {
    /// The state; a panic elsewhere while holding it leaves nothing half
    /// done that matters to a test relay, so poisoning is ignored.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn register(&self, task: AbortHandle) {
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        if tasks.closed {
            task.abort();
        } else {
            tasks.handles.push(task);
        }
    }

    /// Decides the fate of `packet` travelling from `from` to `to`, sends
    /// what goes now and schedules the rest.
    async fn relay(&self, from: End, to: End, packet: Packet) {
        let now = {
            let mut state = self.state();
            state.stats.received += 1;
            match (state.node(from), state.node(to)) {
                (Some(from), Some(to)) => state.fate((from, to), packet, &self.timer),
                _ => vec![packet],
            }
        };
        self.send(&now).await;
    }

    async fn send(&self, packets: &[Packet]) {
        let (mut sent, mut failed) = (0, 0);
        for packet in packets {
            let result = match packet.to {
                Some(to) => packet.socket.send_to(&packet.data, to).await,
                None => packet.socket.send(&packet.data).await,
            };
            match result {
                Ok(_) => sent += 1,
                Err(_) => failed += 1,
            }
        }
        let mut state = self.state();
        state.stats.forwarded += sent;
        state.stats.dropped += failed;
    }
}

impl State {
    fn node(&self, end: End) -> Option<usize> {
        match end {
            End::Node(node) => Some(node),
            End::Ip(ip) => self.by_ip.get(&ip).copied(),
        }
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Applies the faults of `link` to `packet`: counts, holds and queues as
    /// drawn, and returns what is to be sent at once, in order.
    fn fate(
        &mut self,
        link: (usize, usize),
        packet: Packet,
        timer: &mpsc::UnboundedSender<Timed>,
    ) -> Vec<Packet> {
        let faults = self.links.get(&link).copied().unwrap_or_default();
        let Fate { delays, hold } = decide(&faults, &mut self.rng);
        if delays.is_empty() {
            self.stats.dropped += 1;
            return Vec::new();
        }
        self.stats.duplicated += delays.len() as u64 - 1;
        if hold && !self.held.contains_key(&link) {
            // Its copies go out together, right behind the next datagram and
            // at that one's delay.
            let id = self.id();
            self.held.insert(link, (id, vec![packet; delays.len()]));
            self.stats.reordered += 1;
            // Not counted against the cap: at most one hold per link.
            let at = Instant::now() + HOLD_MAX;
            let _ = timer.send(Timed {
                at,
                id,
                job: Job::Release(link, id),
            });
            return Vec::new();
        }
        let mut released = self.held.remove(&link).map(|(_, held)| held);
        let mut now = Vec::new();
        for delay in delays {
            let mut batch = vec![packet.clone()];
            // The held datagram follows the first copy of this one.
            batch.extend(released.take().into_iter().flatten());
            if delay.is_zero() {
                now.extend(batch);
            } else if self.queued >= MAX_QUEUED {
                self.stats.dropped += batch.len() as u64;
            } else {
                self.queued += 1;
                self.stats.delayed += 1;
                let id = self.id();
                let at = Instant::now() + delay;
                let _ = timer.send(Timed {
                    at,
                    id,
                    job: Job::Send(batch),
                });
            }
        }
        now
    }
}

#[cfg(test)]
mod tests;
