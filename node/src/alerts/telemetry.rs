//! Counters of alert delivery on this node, for `GET /v1/alerts`. Only the
//! leader delivers, so on followers they stay at what they were when the
//! node last led.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use serde::Serialize;
use utoipa::ToSchema;

use crate::clock::now_ms;

/// What this node has done for one sink.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct SinkCounters {
    /// Alerts handed over to the sink.
    pub sent: u64,
    /// Messages those alerts took (a digest is one message for many).
    pub messages: u64,
    /// Delivery attempts that failed.
    pub failed: u64,
    /// When an attempt last succeeded (ms since the Unix epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_success_ms: Option<u64>,
    /// Why the last attempt failed, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// This node's alerting counters.
#[derive(Debug, Default)]
pub struct Telemetry {
    sinks: Mutex<BTreeMap<String, SinkCounters>>,
    lost: AtomicU64,
}

impl Telemetry {
    /// Records a successful delivery of `alerts` alerts in `messages`
    /// messages.
    pub fn delivered(&self, sink: &str, alerts: usize, messages: usize) {
        self.update(sink, |c| {
            c.sent += alerts as u64;
            c.messages += messages as u64;
            c.last_success_ms = Some(now_ms());
            c.last_error = None;
        });
    }

    /// Records a failed attempt.
    pub fn failed(&self, sink: &str, error: String) {
        self.update(sink, |c| {
            c.failed += 1;
            c.last_error = Some(error);
        });
    }

    /// Counts an observation or alert this node had to drop because it was
    /// too far behind (each is also logged).
    pub fn record_lost(&self) {
        let lost = self.lost.fetch_add(1, Ordering::Relaxed) + 1;
        if lost.is_power_of_two() {
            tracing::warn!(lost, "alert observations lost: the raiser is behind");
        }
    }

    /// Observations and alerts this node could not raise.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// The counters of every sink this node has delivered to.
    pub fn sinks(&self) -> BTreeMap<String, SinkCounters> {
        self.sinks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn update(&self, sink: &str, change: impl FnOnce(&mut SinkCounters)) {
        let mut sinks = self.sinks.lock().unwrap_or_else(PoisonError::into_inner);
        change(sinks.entry(sink.to_owned()).or_default());
    }
}
