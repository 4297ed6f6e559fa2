//! What a node tells the others about itself when asked over QUIC: its
//! software version and how far its state and its kernel have got, so that
//! any node can show every member's version and dataplane lag.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::cluster::ControlPlane;

/// The version of this `stockade` build.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// One node's report on itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NodeReport {
    /// The `stockade` version it runs.
    pub version: String,
    /// Its Raft role: `leader`, `follower`, `candidate`, `learner` or
    /// `shutdown`.
    pub role: String,
    /// The index of the last entry applied to its state.
    pub applied_index: Option<u64>,
    /// The applied index whose policy is in force in its kernel; absent
    /// when it runs no dataplane.
    pub dataplane_index: Option<u64>,
    /// The dataplane's last error, if its last update failed.
    pub dataplane_error: Option<String>,
}

/// This node's report.
pub fn local_report(control: &ControlPlane) -> NodeReport {
    let status = control.status();
    NodeReport {
        version: VERSION.to_owned(),
        role: status.raft.role,
        applied_index: status.raft.applied_index,
        dataplane_index: status.dataplane.as_ref().map(|d| d.index),
        dataplane_error: status.dataplane.and_then(|d| d.error),
    }
}
