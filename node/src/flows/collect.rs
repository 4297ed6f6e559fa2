//! Turns the kernel's flow summaries into flow records: each collection
//! reads every summary, and a summary whose count grew since the last one
//! becomes one record with the connections of that interval.

use std::collections::{BTreeMap, HashMap};

use stockade_bpf::common::events::FLAG_ENCRYPTED;
use stockade_bpf::common::maps::{FlowKey, FlowStats, ACTION_DENY, DIRECTION_EGRESS};
use stockade_bpf::Event;
use stockade_policy::{Action, Direction, FlowRecord, L4Protocol, RuleRef};

use super::names::Namer;
use crate::alerts::observe::address;

/// What the last collection saw of one summary.
#[derive(Clone, Copy, Debug)]
struct Seen {
    count: u64,
    last_seen_ns: u64,
}

/// A record of one collection, and whether the kernel created its summary
/// since the last one (and so reported its first flow as an event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Collected {
    /// What happened since the last collection.
    pub record: FlowRecord,
    /// The summary is new: its first flow also came as an event.
    pub created: bool,
}

impl Collected {
    /// The flows no event reported: all but the first of a new summary.
    pub fn unreported(&self) -> u64 {
        self.record.connections - u64::from(self.created)
    }
}

/// Remembers the summaries' counts between collections.
#[derive(Debug, Default)]
pub struct Collector {
    seen: HashMap<FlowKey, Seen>,
}

impl Collector {
    /// The records of what changed since the last call. `boot_to_wall_ms`
    /// converts the kernel's boot-time clock to the wall clock.
    pub fn collect(
        &mut self,
        summaries: &BTreeMap<FlowKey, FlowStats>,
        namer: &Namer<'_>,
        boot_to_wall_ms: impl Fn(u64) -> u64,
    ) -> Vec<Collected> {
        let mut records = Vec::new();
        let mut seen = HashMap::with_capacity(summaries.len());
        for (key, stats) in summaries {
            seen.insert(
                *key,
                Seen {
                    count: stats.count,
                    last_seen_ns: stats.last_seen_ns,
                },
            );
            // A count below the last one: the kernel evicted the summary and
            // started it again; all it holds is new.
            let previous = self.seen.get(key).filter(|p| stats.count >= p.count);
            let connections = match previous {
                Some(p) => stats.count - p.count,
                None => stats.count,
            };
            if connections == 0 {
                continue;
            }
            let first_ns = match previous {
                Some(p) => p.last_seen_ns.max(stats.first_seen_ns),
                None => stats.first_seen_ns,
            };
            if let Some(record) = record(key, connections, namer) {
                records.push(Collected {
                    record: FlowRecord {
                        first_ms: boot_to_wall_ms(first_ns),
                        last_ms: boot_to_wall_ms(stats.last_seen_ns),
                        ..record
                    },
                    created: previous.is_none(),
                });
            }
        }
        // Summaries the kernel evicted are forgotten here too.
        self.seen = seen;
        records
    }
}

/// The record of the flow event `event` (the first of its summary), seen
/// at `at_ms`.
pub fn event_record(event: &Event, namer: &Namer<'_>, at_ms: u64) -> Option<FlowRecord> {
    let egress = event.direction == DIRECTION_EGRESS;
    let key = FlowKey {
        src_identity: event.src.identity,
        dst_identity: event.dst.identity,
        src_zone: event.src.zone,
        dst_zone: event.dst.zone,
        rule: event.rule,
        pid: event.pid,
        port: event.dst_port,
        protocol: event.protocol,
        direction: event.direction,
        action: event.action,
        family: event.family,
        encrypted: u8::from(event.flags & FLAG_ENCRYPTED != 0),
        pad: 0,
        remote: if egress {
            event.dst_addr
        } else {
            event.src_addr
        },
    };
    let record = record(&key, 1, namer)?;
    Some(FlowRecord {
        first_ms: at_ms,
        last_ms: at_ms,
        ..record
    })
}

/// The record of `connections` flows of `key`, without its times; none for
/// protocols other than TCP and UDP.
fn record(key: &FlowKey, connections: u64, namer: &Namer<'_>) -> Option<FlowRecord> {
    let protocol = match key.protocol {
        6 => L4Protocol::Tcp,
        17 => L4Protocol::Udp,
        _ => return None,
    };
    let remote = address(key.family, key.remote);
    let (direction, src, dst) = if key.direction == DIRECTION_EGRESS {
        (
            Direction::Egress,
            namer.local_end(key.src_identity, key.src_zone, 0, key.pid),
            namer.remote_end(key.dst_identity, key.dst_zone, remote, key.port),
        )
    } else {
        (
            Direction::Ingress,
            namer.remote_end(key.src_identity, key.src_zone, remote, 0),
            namer.local_end(key.dst_identity, key.dst_zone, key.port, key.pid),
        )
    };
    Some(FlowRecord {
        node: namer.node,
        first_ms: 0,
        last_ms: 0,
        direction,
        protocol,
        src,
        dst,
        action: if key.action == ACTION_DENY {
            Action::Deny
        } else {
            Action::Allow
        },
        rule: RuleRef::from_raw(key.rule).unwrap_or(RuleRef::ZoneDefault),
        connections,
        // Nothing is tunnelled yet: the Noise tunnel will set this.
        encrypted: key.encrypted != 0,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::net::IpAddr;

    use stockade_bpf::common::maps::{FAMILY_IPV4, IDENTITY_WORLD};
    use stockade_policy::{ClusterState, NodeId, PeerClass};

    use super::*;
    use crate::alerts::observe::RecentExecs;
    use crate::dataplane::LocalView;

    fn key(port: u16) -> FlowKey {
        let mut remote = [0u8; 16];
        remote[10] = 0xff;
        remote[11] = 0xff;
        remote[12..].copy_from_slice(&[203, 0, 113, 9]);
        FlowKey {
            dst_identity: IDENTITY_WORLD,
            rule: 3,
            pid: 4242,
            port,
            protocol: 6,
            direction: DIRECTION_EGRESS,
            action: ACTION_DENY,
            family: FAMILY_IPV4,
            remote,
            ..FlowKey::default()
        }
    }

    fn stats(count: u64, first: u64, last: u64) -> FlowStats {
        FlowStats {
            count,
            first_seen_ns: first * 1_000_000,
            last_seen_ns: last * 1_000_000,
        }
    }

    #[test]
    fn each_collection_records_the_connections_since_the_last() {
        let state = ClusterState::new();
        let view = LocalView::default();
        let recent = RecentExecs::default();
        let users = BTreeMap::new();
        let namer = Namer {
            state: &state,
            view: &view,
            recent: &recent,
            node: NodeId(1),
            address: IpAddr::from([10, 0, 0, 1]),
            users: &users,
        };
        let wall = |ns: u64| 1_000 + ns / 1_000_000;
        let mut collector = Collector::default();

        let first = collector.collect(&BTreeMap::from([(key(80), stats(5, 10, 20))]), &namer, wall);
        assert_eq!(first.len(), 1);
        assert!(first[0].created);
        assert_eq!(first[0].unreported(), 4, "the first came as an event");
        let record = &first[0].record;
        assert_eq!(
            (record.connections, record.first_ms, record.last_ms),
            (5, 1010, 1020)
        );
        assert_eq!(record.action, Action::Deny);
        assert_eq!(record.rule, RuleRef::ZoneDefault);
        assert_eq!(record.dst.class, PeerClass::World);
        assert_eq!(record.dst.ip, IpAddr::from([203, 0, 113, 9]));
        assert_eq!(record.dst.port, 80);
        assert_eq!(record.src.node, Some(NodeId(1)));
        assert_eq!(record.src.process.as_ref().map(|p| p.pid), Some(4242));

        // Unchanged: nothing new. Grown: only the difference, from the last
        // time seen.
        let same = BTreeMap::from([(key(80), stats(5, 10, 20))]);
        assert!(collector.collect(&same, &namer, wall).is_empty());
        let grown = BTreeMap::from([(key(80), stats(8, 10, 35))]);
        let again = collector.collect(&grown, &namer, wall);
        let record = &again[0].record;
        assert_eq!(
            (record.connections, record.first_ms, record.last_ms),
            (3, 1020, 1035)
        );
        assert!(!again[0].created);
        assert_eq!(again[0].unreported(), 3);

        // Evicted and started again by the kernel: its whole count is new.
        let restarted = BTreeMap::from([(key(80), stats(2, 50, 60))]);
        let fresh = collector.collect(&restarted, &namer, wall);
        assert_eq!(
            (fresh[0].record.connections, fresh[0].record.first_ms),
            (2, 1050)
        );
        assert!(fresh[0].created);
    }
}
