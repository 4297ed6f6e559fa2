//! Alerts on a node: what its dataplane saw becomes alerts in the
//! replicated log ([`raise`]), and while it leads, it delivers the log to
//! the sinks ([`forward`]) and watches the other members ([`health`]).

mod forward;
mod health;
pub mod observe;
mod raise;
mod telemetry;

use std::sync::Arc;

use stockade_policy::NodeId;

pub use raise::Raiser;
pub use telemetry::{SinkCounters, Telemetry};

use crate::cluster::ControlPlane;

/// Starts this node's raiser, forwarder and health watcher; the raiser is
/// what the dataplane reports to.
pub fn start(control: Arc<ControlPlane>) -> Raiser {
    let node = NodeId(control.raft().id());
    let raiser = Raiser::start(Arc::clone(&control), node);
    tokio::spawn(forward::supervise(Arc::clone(&control), raiser.clone()));
    tokio::spawn(health::watch(control, raiser.clone()));
    raiser
}
