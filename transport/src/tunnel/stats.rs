//! Counters of a node's tunnel, shared by every session.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// Live counters; sessions update them as they go.
#[derive(Debug, Default)]
pub struct TunnelStats {
    sessions_opened: AtomicU64,
    sessions_accepted: AtomicU64,
    sessions_active: AtomicU64,
    handshake_failures: AtomicU64,
    unknown_peers: AtomicU64,
    unroutable: AtomicU64,
    refusals_sent: AtomicU64,
    refusals_received: AtomicU64,
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
    frames_forged: AtomicU64,
    frames_replayed: AtomicU64,
    frames_truncated: AtomicU64,
    rekeys: AtomicU64,
}

/// A snapshot of [`TunnelStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TunnelCounters {
    /// Sessions this node opened (handshake completed and admitted).
    pub sessions_opened: u64,
    /// Sessions this node admitted.
    pub sessions_accepted: u64,
    /// Sessions relaying now.
    pub sessions_active: u64,
    /// Handshakes that failed (bad keys, corrupt or late messages).
    pub handshake_failures: u64,
    /// Handshakes from a static key no member node published.
    pub unknown_peers: u64,
    /// Connections into the tunnel that no peer could be found for (no
    /// filed destination, no node there, or no key from that node).
    pub unroutable: u64,
    /// Connections this node refused after a handshake.
    pub refusals_sent: u64,
    /// Connections a peer refused.
    pub refusals_received: u64,
    /// Application bytes sent into sessions.
    pub bytes_sent: u64,
    /// Application bytes received from sessions.
    pub bytes_received: u64,
    /// Frames dropped because they failed authentication (or came out of
    /// order).
    pub frames_forged: u64,
    /// Frames dropped because their nonce was already used.
    pub frames_replayed: u64,
    /// Sessions whose peer stopped in the middle of a frame or without
    /// closing the stream properly.
    pub frames_truncated: u64,
    /// Rekeys, counting each direction of each session.
    pub rekeys: u64,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl TunnelStats {
    /// The counters now.
    pub fn snapshot(&self) -> TunnelCounters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TunnelCounters {
            sessions_opened: get(&self.sessions_opened),
            sessions_accepted: get(&self.sessions_accepted),
            sessions_active: get(&self.sessions_active),
            handshake_failures: get(&self.handshake_failures),
            unknown_peers: get(&self.unknown_peers),
            unroutable: get(&self.unroutable),
            refusals_sent: get(&self.refusals_sent),
            refusals_received: get(&self.refusals_received),
            bytes_sent: get(&self.bytes_sent),
            bytes_received: get(&self.bytes_received),
            frames_forged: get(&self.frames_forged),
            frames_replayed: get(&self.frames_replayed),
            frames_truncated: get(&self.frames_truncated),
            rekeys: get(&self.rekeys),
        }
    }

    /// Counts a handshake from a key that belongs to no member node.
    pub fn count_unknown_peer(&self) {
        add(&self.unknown_peers, 1);
    }

    /// Counts a connection into the tunnel that could not be routed.
    pub fn count_unroutable(&self) {
        add(&self.unroutable, 1);
    }

    pub(crate) fn opened(&self) {
        add(&self.sessions_opened, 1);
    }
    pub(crate) fn accepted(&self) {
        add(&self.sessions_accepted, 1);
    }
    pub(crate) fn handshake_failed(&self) {
        add(&self.handshake_failures, 1);
    }
    pub(crate) fn refusal_sent(&self) {
        add(&self.refusals_sent, 1);
    }
    pub(crate) fn refusal_received(&self) {
        add(&self.refusals_received, 1);
    }
    pub(crate) fn sent(&self, n: usize) {
        add(&self.bytes_sent, n as u64);
    }
    pub(crate) fn received(&self, n: usize) {
        add(&self.bytes_received, n as u64);
    }
    pub(crate) fn forged(&self) {
        add(&self.frames_forged, 1);
    }
    pub(crate) fn replayed(&self) {
        add(&self.frames_replayed, 1);
    }
    pub(crate) fn truncated(&self) {
        add(&self.frames_truncated, 1);
    }
    pub(crate) fn rekeyed(&self) {
        add(&self.rekeys, 1);
    }

    /// Counts a session as active until the guard drops.
    pub(crate) fn active(&self) -> ActiveSession<'_> {
        add(&self.sessions_active, 1);
        ActiveSession(self)
    }
}

/// A session counted in `sessions_active`.
pub(crate) struct ActiveSession<'a>(&'a TunnelStats);

impl Drop for ActiveSession<'_> {
    fn drop(&mut self) {
        self.0.sessions_active.fetch_sub(1, Ordering::Relaxed);
    }
}
