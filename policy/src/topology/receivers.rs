//! Who received a flow, as ingress records saw it: the process an egress
//! record cannot know, because it runs on another node.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::flow::{FlowPeer, FlowRecord};
use crate::ids::NodeId;
use crate::{Direction, L4Protocol};

/// The receiving end each node saw, with when it was last seen.
type ByNode<'a> = BTreeMap<NodeId, (u64, &'a FlowPeer)>;

/// The receiving ends ingress records saw, by (address, port, protocol) and
/// receiving node; the latest record wins.
#[derive(Default)]
pub(super) struct Receivers<'a> {
    by_address: BTreeMap<(IpAddr, u16, L4Protocol), ByNode<'a>>,
}

impl<'a> Receivers<'a> {
    pub(super) fn learn(records: &'a [FlowRecord]) -> Self {
        let mut by_address: BTreeMap<_, ByNode> = BTreeMap::new();
        let ingress = records
            .iter()
            .filter(|r| r.direction == Direction::Ingress && r.dst.process.is_some());
        for record in ingress {
            let key = (record.dst.ip, record.dst.port, record.protocol);
            let seen = (record.last_ms, &record.dst);
            by_address
                .entry(key)
                .or_default()
                .entry(record.node)
                .and_modify(|known| {
                    // Latest first; among equals, the smallest process, so
                    // the choice does not depend on the order of records.
                    let newer =
                        seen.0 > known.0 || (seen.0 == known.0 && seen.1.process < known.1.process);
                    if newer {
                        *known = seen;
                    }
                })
                .or_insert(seen);
        }
        Receivers { by_address }
    }

    /// The receiving end of an egress record, with its node: the one on the
    /// destination's node when that is known, on the recording node for a
    /// loopback address, or the only one seen at that address.
    pub(super) fn find(&self, record: &FlowRecord) -> Option<(NodeId, &'a FlowPeer)> {
        let dst = &record.dst;
        let by_node = self.by_address.get(&(dst.ip, dst.port, record.protocol))?;
        let node = match dst.node {
            Some(node) => node,
            None if dst.ip.is_loopback() => record.node,
            None if by_node.len() == 1 => *by_node.keys().next()?,
            None => return None,
        };
        by_node.get(&node).map(|(_, peer)| (node, *peer))
    }
}
