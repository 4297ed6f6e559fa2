//! When this node last heard from each peer: a reply to one of its calls,
//! or a call the peer made. `/v1/status` shows it as "last contact".

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use crate::types::NodeId;

/// Last contact with each peer, shared by the network (outgoing calls) and
/// the RPC server (incoming ones).
#[derive(Clone, Debug, Default)]
pub struct Contacts(Arc<Mutex<BTreeMap<NodeId, Instant>>>);

impl Contacts {
    /// Records that `peer` was heard from just now.
    pub fn touch(&self, peer: NodeId) {
        // A panic elsewhere while holding the lock leaves a map of instants
        // that is still valid: keep using it.
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.insert(peer, Instant::now());
    }

    /// Milliseconds since each peer was last heard from.
    pub fn millis_since(&self) -> BTreeMap<NodeId, u64> {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.iter()
            .map(|(id, at)| {
                (
                    *id,
                    u64::try_from(at.elapsed().as_millis()).unwrap_or(u64::MAX),
                )
            })
            .collect()
    }
}
