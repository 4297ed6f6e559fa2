//! The node's side of enforcement: what runs locally ([`local`]), the
//! policy engine's map contents as kernel bytes ([`encode`]), and the
//! reconciler that keeps the pinned maps equal to them ([`reconcile`]).

pub mod encode;
pub mod local;
pub mod reconcile;
mod sockets;
pub mod usage;

use std::collections::BTreeMap;

use stockade_policy::{Subject, WorkloadKey};

pub use local::LocalScan;
pub use reconcile::DataplaneStatus;
pub use usage::MapUsage;

/// What the reconciler last saw on this node and what it made of it: the
/// scan, and the subject (identity and zone) each workload was compiled
/// with — what the flow records and the inventory name workloads by.
#[derive(Clone, Debug, Default)]
pub struct LocalView {
    /// The last scan of the node's subtree.
    pub scan: LocalScan,
    /// The subject of each local workload, as last compiled.
    pub subjects: BTreeMap<WorkloadKey, Subject>,
}
