//! The metric families, part by part of the node. Each HELP text says
//! exactly what its value is.

use std::fmt;

use super::{Out, Snapshot};
use crate::cluster::Status;

/// Raft roles, each a series of `stockade_raft_role`.
const ROLES: [&str; 5] = ["leader", "follower", "candidate", "learner", "shutdown"];

/// Milliseconds as seconds.
fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// A count as a gauge value (exact below 2^53).
fn value(n: u64) -> f64 {
    n as f64
}

/// `stockade_node_info`.
pub(super) fn node(out: &mut Out<'_>, status: &Status) -> fmt::Result {
    out.gauges(
        "node_info",
        "This node: its id, name and version (always 1)",
        None,
        [(
            vec![
                ("node_id", status.raft.node_id.to_string()),
                ("name", status.name.clone()),
                ("version", env!("CARGO_PKG_VERSION").to_owned()),
            ],
            1.0,
        )],
    )
}

/// Role, term, indexes, lags and peers, from this node's Raft status.
pub(super) fn raft(out: &mut Out<'_>, status: &Status) -> fmt::Result {
    let raft = &status.raft;
    out.gauges(
        "raft_role",
        "1 for this node's current Raft role, 0 for the others",
        None,
        ROLES.iter().map(|role| {
            let on = if raft.role == *role { 1.0 } else { 0.0 };
            (vec![("role", (*role).to_owned())], on)
        }),
    )?;
    out.gauge("raft_term", "The current Raft term", None, value(raft.term))?;
    out.gauge(
        "raft_has_leader",
        "1 when this node knows a leader, 0 otherwise",
        None,
        if raft.leader.is_some() { 1.0 } else { 0.0 },
    )?;
    if let Some(leader) = raft.leader {
        out.gauge(
            "raft_leader_id",
            "The node id of the leader this node knows",
            None,
            value(leader),
        )?;
    }
    let last = raft.last_log_index.unwrap_or(0);
    let applied = raft.applied_index.unwrap_or(0);
    out.gauge(
        "raft_last_log_index",
        "The index of the last entry in this node's Raft log (0 when empty)",
        None,
        value(last),
    )?;
    out.gauge(
        "raft_applied_index",
        "The index of the last entry applied to this node's state: the policy version in force \
         here (0 before any)",
        None,
        value(applied),
    )?;
    out.gauge(
        "raft_snapshot_index",
        "The last log index this node's snapshot covers (0 without one)",
        None,
        value(raft.snapshot_index.unwrap_or(0)),
    )?;
    out.gauge(
        "raft_apply_lag",
        "Commit/apply lag: raft_last_log_index - raft_applied_index on this node, the entries \
         in its log not yet applied. On the leader, its own log's head; on a follower or \
         learner, the leader's log as far as this node has received it. Entries the leader has \
         not yet sent are counted on the leader, by stockade_raft_replication_lag_entries",
        Some("entries"),
        value(last.saturating_sub(applied)),
    )?;
    out.gauge(
        "raft_voters",
        "Voters in the membership this node knows",
        None,
        raft.voters.len() as f64,
    )?;
    out.gauge(
        "raft_learners",
        "Learners in the membership this node knows",
        None,
        raft.learners.len() as f64,
    )?;
    if let Some(replication) = &raft.replication {
        out.gauges(
            "raft_replication_lag",
            "On the leader only: raft_last_log_index minus the last index the peer is known to \
             hold (the whole log when it holds nothing yet)",
            Some("entries"),
            replication.iter().map(|(peer, matched)| {
                let lag = last.saturating_sub(matched.unwrap_or(0));
                (vec![("peer", peer.to_string())], value(lag))
            }),
        )?;
    }
    if let Some(ms) = raft.millis_since_quorum_ack {
        out.gauge(
            "raft_quorum_ack_age",
            "On the leader only: time since a quorum last acknowledged it",
            Some("seconds"),
            seconds(ms),
        )?;
    }
    out.gauges(
        "raft_peer_last_contact_age",
        "Time since this node last heard from the peer (a reply to its call, or a call from it)",
        Some("seconds"),
        raft.last_contact_ms
            .iter()
            .map(|(peer, ms)| (vec![("peer", peer.to_string())], seconds(*ms))),
    )
}

/// The kernel dataplane: index and lag, verdicts, maps.
pub(super) fn dataplane(out: &mut Out<'_>, status: &Status) -> fmt::Result {
    let Some(dataplane) = &status.dataplane else {
        return Ok(());
    };
    let applied = status.raft.applied_index.unwrap_or(0);
    out.gauge(
        "dataplane_index",
        "The applied log index whose policy is in force in this node's kernel maps",
        None,
        value(dataplane.index),
    )?;
    out.gauge(
        "dataplane_lag",
        "Dataplane lag: raft_applied_index - dataplane_index, the applied entries whose policy \
         is not yet in the kernel",
        Some("entries"),
        value(applied.saturating_sub(dataplane.index)),
    )?;
    out.gauge(
        "dataplane_reconcile_failing",
        "1 when the reconciler's last attempt to write the kernel maps failed, else 0",
        None,
        if dataplane.error.is_some() { 1.0 } else { 0.0 },
    )?;
    out.counters(
        "dataplane_verdicts",
        "Flows (connections, UDP datagrams) the kernel decided, by verdict, summed over CPUs \
         since the programs were loaded",
        None,
        [
            (vec![("verdict", "allowed".to_owned())], dataplane.allowed),
            (vec![("verdict", "denied".to_owned())], dataplane.denied),
        ],
    )?;
    out.counter(
        "dataplane_events_lost",
        "Events the kernel could not put on the event ring buffer because it was full \
         (ring buffer overflows)",
        None,
        dataplane.events_lost,
    )?;
    let mut maps = dataplane.maps.clone();
    if let Some(flows) = &status.flows {
        maps.push(crate::dataplane::usage::flows(flows.summaries));
    }
    let labelled = |m: &crate::dataplane::MapUsage| vec![("map", m.map.clone())];
    out.gauges(
        "dataplane_map",
        "Entries in each kernel map: for the enforcement maps those the daemon last wrote (the \
         kernel adds process entries of its own), for flows the summaries last read",
        Some("entries"),
        maps.iter().map(|m| (labelled(m), value(m.entries))),
    )?;
    out.gauges(
        "dataplane_map_capacity",
        "The most entries each kernel map can hold (max_entries)",
        Some("entries"),
        maps.iter().map(|m| (labelled(m), value(m.capacity))),
    )?;
    out.gauges(
        "dataplane_map_pressure",
        "dataplane_map_entries / dataplane_map_capacity_entries: 1 is full (a full hash or \
         trie map refuses new entries; the LRU maps processes and flows evict their oldest)",
        Some("ratio"),
        maps.iter().map(|m| (labelled(m), m.pressure())),
    )
}

/// The flow log.
pub(super) fn flows(out: &mut Out<'_>, status: &Status) -> fmt::Result {
    let Some(flows) = &status.flows else {
        return Ok(());
    };
    let counters = [
        (
            "flows_events_read",
            "Events read from the kernel's ring buffer since the daemon started",
            flows.events_read,
        ),
        (
            "flows_records_written",
            "Flow records written to the flow log since the daemon started",
            flows.records_written,
        ),
        (
            "flows_connections",
            "Connections (and UDP datagrams) the written flow records count",
            flows.connections,
        ),
        (
            "flows_write_errors",
            "Writes of the flow log that failed (their records were lost)",
            flows.write_errors,
        ),
        (
            "flows_dropped_records",
            "Flow records dropped to keep the log within its size",
            flows.dropped_records,
        ),
        (
            "flows_corrupt_records",
            "Flow records found damaged on disk and skipped",
            flows.corrupt_records,
        ),
    ];
    for (name, help, n) in counters {
        out.counter(name, help, None, n)?;
    }
    out.gauge(
        "flows_log_size",
        "Bytes the flow log holds on disk",
        Some("bytes"),
        value(flows.log_bytes),
    )?;
    out.gauge(
        "flows_log_records",
        "Flow records the flow log holds",
        None,
        value(flows.log_records),
    )?;
    if let Some(oldest) = flows.oldest_ms {
        out.gauge(
            "flows_oldest_record_timestamp",
            "Time of the oldest record in the flow log (Unix time)",
            Some("seconds"),
            seconds(oldest),
        )?;
    }
    Ok(())
}

/// Alert delivery, by sink.
pub(super) fn alerts(out: &mut Out<'_>, snapshot: &Snapshot) -> fmt::Result {
    let sinks = &snapshot.sinks;
    let by_sink = |n: fn(&crate::alerts::SinkCounters) -> u64| {
        sinks
            .iter()
            .map(move |(name, c)| (vec![("sink", name.clone())], n(c)))
    };
    out.counters(
        "alert_delivered_alerts",
        "Alerts this node handed over to the sink (only the leader delivers: on a follower, \
         what it delivered when it last led)",
        None,
        by_sink(|c| c.sent),
    )?;
    out.counters(
        "alert_delivered_messages",
        "Messages those alerts took (a digest is one message for many alerts)",
        None,
        by_sink(|c| c.messages),
    )?;
    out.counters(
        "alert_delivery_failures",
        "Delivery attempts to the sink that failed",
        None,
        by_sink(|c| c.failed),
    )?;
    out.gauges(
        "alert_sink_failing",
        "1 when this node's last delivery attempt to the sink failed, else 0",
        None,
        sinks.iter().map(|(name, c)| {
            let failing = if c.last_error.is_some() { 1.0 } else { 0.0 };
            (vec![("sink", name.clone())], failing)
        }),
    )?;
    out.gauges(
        "alert_last_delivery_timestamp",
        "When a delivery attempt to the sink last succeeded (Unix time)",
        Some("seconds"),
        sinks.iter().filter_map(|(name, c)| {
            let ms = c.last_success_ms?;
            Some((vec![("sink", name.clone())], seconds(ms)))
        }),
    )?;
    out.counter(
        "alert_observations_lost",
        "Alert observations this node dropped because its raiser was behind",
        None,
        snapshot.alerts_lost,
    )
}

/// The Noise tunnel's counters.
pub(super) fn tunnel(out: &mut Out<'_>, status: &Status) -> fmt::Result {
    let Some(tunnel) = &status.tunnel else {
        return Ok(());
    };
    let c = &tunnel.counters;
    let counters = [
        (
            "tunnel_sessions_opened",
            "Tunnel sessions this node opened (handshake completed and admitted)",
            c.sessions_opened,
        ),
        (
            "tunnel_sessions_accepted",
            "Tunnel sessions this node admitted from peers",
            c.sessions_accepted,
        ),
        (
            "tunnel_handshake_failures",
            "Tunnel handshakes that failed (bad keys, corrupt or late messages)",
            c.handshake_failures,
        ),
        (
            "tunnel_unknown_peers",
            "Tunnel handshakes from a static key no member node published",
            c.unknown_peers,
        ),
        (
            "tunnel_unroutable",
            "Connections into the tunnel no peer could be found for",
            c.unroutable,
        ),
        (
            "tunnel_refusals_sent",
            "Tunnel connections this node refused after a handshake",
            c.refusals_sent,
        ),
        (
            "tunnel_refusals_received",
            "Tunnel connections a peer refused",
            c.refusals_received,
        ),
        (
            "tunnel_frames_forged",
            "Tunnel frames dropped because they failed authentication",
            c.frames_forged,
        ),
        (
            "tunnel_frames_replayed",
            "Tunnel frames dropped because their nonce was already used",
            c.frames_replayed,
        ),
        (
            "tunnel_frames_truncated",
            "Tunnel sessions whose peer stopped in the middle of a frame",
            c.frames_truncated,
        ),
        (
            "tunnel_rekeys",
            "Tunnel rekeys, each direction of each session counted",
            c.rekeys,
        ),
    ];
    for (name, help, n) in counters {
        out.counter(name, help, None, n)?;
    }
    out.counter(
        "tunnel_sent",
        "Application bytes sent into tunnel sessions",
        Some("bytes"),
        c.bytes_sent,
    )?;
    out.counter(
        "tunnel_received",
        "Application bytes received from tunnel sessions",
        Some("bytes"),
        c.bytes_received,
    )?;
    out.gauge(
        "tunnel_sessions_active",
        "Tunnel sessions relaying now",
        None,
        value(c.sessions_active),
    )
}
