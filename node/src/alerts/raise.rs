//! The raiser: turns this node's observations into alerts and appends them
//! through Raft.
//!
//! Observations are aggregated first (one cause within a window becomes one
//! record with a count, see `stockade_alerting::aggregate`); the leader's own
//! alerts (nodes, sinks) skip that step. Records wait in an outbox until a
//! write commits them: while there is no leader the outbox grows, and is
//! written as soon as one is elected.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use stockade_alerting::aggregate::{Aggregator, AggregatorConfig, Observation};
use stockade_policy::{AlertId, Command, NewAlert, NodeId, MAX_ALERTS_PER_COMMAND};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::clock::now_ms;
use crate::cluster::{ControlPlane, WriteError};

/// Observations queued for the raiser at most; more are counted as lost.
const QUEUE: usize = 8192;
/// Alerts waiting for a write at most; more are dropped, counted.
const OUTBOX: usize = 100_000;

enum Input {
    Observed(Observation),
    Raise(NewAlert),
}

/// How the rest of the node hands alerts to the raiser.
#[derive(Clone)]
pub struct Raiser {
    input: mpsc::Sender<Input>,
    node: NodeId,
    id_prefix: Arc<str>,
    next_id: Arc<AtomicU64>,
    control: Arc<ControlPlane>,
}

impl Raiser {
    /// Starts the raiser of node `node`.
    pub fn start(control: Arc<ControlPlane>, node: NodeId) -> Raiser {
        let (input, inputs) = mpsc::channel(QUEUE);
        // Ids stay unique across restarts: the prefix carries the start time.
        let id_prefix: Arc<str> = format!("n{}.{:x}", node.0, now_ms()).into();
        let aggregator =
            Aggregator::new(node, format!("{id_prefix}.a"), AggregatorConfig::default());
        let task = RaiseTask {
            control: Arc::clone(&control),
            aggregator,
            inputs,
            outbox: VecDeque::new(),
        };
        tokio::spawn(task.run());
        Raiser {
            input,
            node,
            id_prefix,
            next_id: Arc::new(AtomicU64::new(1)),
            control,
        }
    }

    /// Hands over something the dataplane saw. Never waits: when the raiser
    /// is this far behind, the observation is counted as lost.
    pub fn observe(&self, observation: Observation) {
        if self.input.try_send(Input::Observed(observation)).is_err() {
            self.control.alerting().record_lost();
        }
    }

    /// Raises an alert as it is (node and sink alerts of the leader).
    pub async fn raise(&self, alert: NewAlert) {
        if self.input.send(Input::Raise(alert)).await.is_err() {
            tracing::error!("the alert raiser has stopped");
        }
    }

    /// A fresh alert id of this node.
    pub fn new_id(&self) -> AlertId {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        AlertId(format!("{}.l{n}", self.id_prefix))
    }

    /// This node's id.
    pub fn node(&self) -> NodeId {
        self.node
    }
}

struct RaiseTask {
    control: Arc<ControlPlane>,
    aggregator: Aggregator,
    inputs: mpsc::Receiver<Input>,
    outbox: VecDeque<NewAlert>,
}

/// A write of the outbox's first alerts, and how many it carries.
struct InFlight {
    task: JoinHandle<Outcome>,
    count: usize,
}

/// How a write of alerts ended.
enum Outcome {
    /// They are in the log.
    Committed,
    /// The cluster refused them (this node is no longer a member, say):
    /// writing them again would be refused again.
    Refused,
    /// No leader, or no answer: try again.
    Retry,
}

impl RaiseTask {
    async fn run(mut self) {
        let mut in_flight: Option<InFlight> = None;
        // Short: a write fails fast only when a leader change is under way.
        let mut retry = Backoff::new(Duration::from_millis(50), Duration::from_secs(1));
        loop {
            let flush_in = self
                .aggregator
                .next_deadline()
                .map(|at| Duration::from_millis(at.saturating_sub(now_ms())));
            tokio::select! {
                input = self.inputs.recv() => match input {
                    Some(Input::Observed(observation)) => {
                        if let Some(alert) = self.aggregator.observe(observation) {
                            self.push(alert);
                        }
                    }
                    Some(Input::Raise(alert)) => self.push(alert),
                    None => return,
                },
                () = sleep_or_never(flush_in) => {
                    for alert in self.aggregator.flush(now_ms()) {
                        self.push(alert);
                    }
                }
                outcome = wait_or_never(&mut in_flight) => {
                    let count = in_flight.take().map_or(0, |f| f.count);
                    let written = count.min(self.outbox.len());
                    match outcome {
                        Outcome::Committed => {
                            self.outbox.drain(..written);
                            retry.reset();
                        }
                        Outcome::Refused => {
                            self.outbox.drain(..written);
                            for _ in 0..written {
                                self.control.alerting().record_lost();
                            }
                        }
                        // Inputs wait in the channel meanwhile.
                        Outcome::Retry => retry.failed().await,
                    }
                }
            }
            if in_flight.is_none() && !self.outbox.is_empty() {
                in_flight = Some(self.write_front());
            }
        }
    }

    fn push(&mut self, alert: NewAlert) {
        // The front may be in flight: what does not fit is the newest.
        if self.outbox.len() >= OUTBOX {
            self.control.alerting().record_lost();
            return;
        }
        self.outbox.push_back(alert);
    }

    /// Writes the outbox's first alerts; the task says whether they
    /// committed.
    fn write_front(&self) -> InFlight {
        let alerts: Vec<NewAlert> = self
            .outbox
            .iter()
            .take(MAX_ALERTS_PER_COMMAND)
            .cloned()
            .collect();
        let count = alerts.len();
        let control = Arc::clone(&self.control);
        let task = tokio::spawn(async move {
            match control.write(Command::RaiseAlerts { alerts }).await {
                Ok(written) => {
                    tracing::debug!(index = written.index, count, "alerts raised");
                    Outcome::Committed
                }
                Err(WriteError::Invalid(e)) => {
                    tracing::error!(error = %e, count, "the cluster refused these alerts");
                    Outcome::Refused
                }
                Err(e) => {
                    tracing::warn!(error = %e, count, "cannot raise alerts yet; will retry");
                    Outcome::Retry
                }
            }
        });
        InFlight { task, count }
    }
}

async fn sleep_or_never(duration: Option<Duration>) {
    match duration {
        Some(duration) => tokio::time::sleep(duration).await,
        None => std::future::pending().await,
    }
}

async fn wait_or_never(in_flight: &mut Option<InFlight>) -> Outcome {
    match in_flight {
        Some(flight) => (&mut flight.task).await.unwrap_or(Outcome::Retry),
        None => std::future::pending().await,
    }
}

/// Exponential backoff between failed attempts.
pub struct Backoff {
    first: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    /// Waits `first` after the first failure, doubling up to `max`.
    pub fn new(first: Duration, max: Duration) -> Self {
        Backoff {
            first,
            max,
            failures: 0,
        }
    }

    /// Records a failure and waits before the next attempt.
    pub async fn failed(&mut self) {
        tokio::time::sleep(self.next_delay()).await;
    }

    /// Records a failure; returns how long to wait before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self
            .first
            .saturating_mul(1 << self.failures.min(16))
            .min(self.max);
        self.failures += 1;
        delay
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Success: the next failure starts from the shortest delay again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}
