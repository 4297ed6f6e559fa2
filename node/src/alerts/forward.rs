//! The forwarder: only on the elected leader, one delivery loop per sink.
//!
//! Each loop sends the alerts after the sink's cursor in log order, then
//! commits the new cursor through Raft. A leader that dies between sending
//! and committing leaves the cursor behind, so its successor sends those
//! alerts again: delivery is at least once, never skipping, and the alert
//! id lets a sink drop the repeats.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stockade_alerting::route;
use stockade_alerting::sink::{Context, Sink};
use stockade_alerting::throttle::{Plan, RateLimit};
use stockade_policy::{
    Alert, AlertClass, AlertKind, AlertSink, ClusterState, Command, NewAlert, Severity,
};
use tokio::task::JoinHandle;

use super::raise::{Backoff, Raiser};
use crate::clock::now_ms;
use crate::cluster::ControlPlane;

/// Alerts taken from the log per delivery attempt.
const BATCH: usize = 100;
/// Consecutive failed attempts after which a sink is reported failing.
const FAILING_AFTER: u32 = 3;

/// Runs a delivery loop per sink while this node leads; stops them all the
/// moment it does not.
pub async fn supervise(control: Arc<ControlPlane>, raiser: Raiser) {
    let mut metrics = control.raft().raft().metrics();
    let mut applied = control.raft().state().subscribe();
    let mut running: BTreeMap<String, JoinHandle<()>> = BTreeMap::new();
    loop {
        let leading = {
            let m = metrics.borrow();
            m.current_leader == Some(m.id) && m.state.is_leader()
        };
        if leading {
            let sinks: Vec<String> = control.with_state(|s| s.sinks.keys().cloned().collect());
            running.retain(|name, task| {
                let keep = sinks.contains(name) && !task.is_finished();
                if !keep {
                    task.abort();
                }
                keep
            });
            for name in sinks {
                running.entry(name.clone()).or_insert_with(|| {
                    tracing::info!(sink = %name, "delivering alerts as leader");
                    let delivery = Delivery::new(Arc::clone(&control), raiser.clone(), name);
                    tokio::spawn(delivery.run())
                });
            }
        } else if !running.is_empty() {
            tracing::info!("not the leader any more: alert delivery stops here");
            for (_, task) in std::mem::take(&mut running) {
                task.abort();
            }
        }
        tokio::select! {
            changed = metrics.changed() => if changed.is_err() { return },
            changed = applied.changed() => if changed.is_err() { return },
        }
    }
}

/// What one attempt finds in the state.
struct Pending {
    config: AlertSink,
    batch: Vec<Alert>,
    failing: bool,
    context: Context,
}

struct Delivery {
    control: Arc<ControlPlane>,
    raiser: Raiser,
    name: String,
    sink: Option<(AlertSink, Sink, RateLimit)>,
    /// Delivered through here, even if the cursor commit is still on its way.
    through: u64,
    /// Whether this loop reported the sink failing, before the state says so.
    reported_failing: bool,
    backoff: Backoff,
}

impl Delivery {
    fn new(control: Arc<ControlPlane>, raiser: Raiser, name: String) -> Self {
        Delivery {
            control,
            raiser,
            name,
            sink: None,
            through: 0,
            reported_failing: false,
            backoff: Backoff::new(Duration::from_millis(250), Duration::from_secs(10)),
        }
    }

    async fn run(mut self) {
        let mut applied = self.control.raft().state().subscribe();
        loop {
            let Some(pending) = self.control.with_state(|s| self.pending(s)) else {
                return; // the sink was removed
            };
            let Some(last) = pending.batch.last().map(|a| a.seq) else {
                if applied.changed().await.is_err() {
                    return;
                }
                continue;
            };
            let wanted: Vec<Alert> = pending
                .batch
                .iter()
                .filter(|a| route::wants(&pending.config, a))
                .cloned()
                .collect();
            if !wanted.is_empty() && !self.deliver(&pending, &wanted).await {
                continue;
            }
            self.through = last;
            let ack = Command::AckDelivery {
                sink: self.name.clone(),
                through: last,
                at_ms: now_ms(),
            };
            // If this fails, the next leader repeats from the old cursor.
            if let Err(e) = self.control.write(ack).await {
                tracing::warn!(sink = %self.name, error = %e, "cannot record delivery progress");
                tokio::time::sleep(self.backoff.next_delay()).await;
            }
        }
    }

    fn pending(&self, state: &ClusterState) -> Option<Pending> {
        let config = state.sinks.get(&self.name)?.clone();
        let cursor = state
            .alerts
            .cursors
            .get(&self.name)
            .map_or(0, |c| c.through);
        let from = cursor.max(self.through);
        let batch = state
            .alerts
            .records
            .range(from + 1..)
            .take(BATCH)
            .map(|(_, alert)| alert.clone())
            .collect();
        let node = self.raiser.node();
        let context = Context {
            cluster: format!(
                "stockade-{}",
                &self
                    .control
                    .ca_fingerprint()
                    .chars()
                    .take(8)
                    .collect::<String>()
            ),
            hostname: state
                .nodes
                .get(&node)
                .map_or_else(|| node.to_string(), |n| n.name.clone()),
            node_names: state
                .nodes
                .iter()
                .map(|(id, n)| (*id, n.name.clone()))
                .collect(),
        };
        Some(Pending {
            config,
            batch,
            failing: state.alerts.sinks_failing.contains(&self.name),
            context,
        })
    }

    /// One attempt at handing `wanted` to the sink, within its rate limit.
    /// True when they were delivered.
    async fn deliver(&mut self, pending: &Pending, wanted: &[Alert]) -> bool {
        if self
            .sink
            .as_ref()
            .is_none_or(|(config, _, _)| *config != pending.config)
        {
            match Sink::new(&pending.config) {
                Ok(sink) => {
                    let limit = RateLimit::new(pending.config.max_per_minute, Instant::now());
                    self.sink = Some((pending.config.clone(), sink, limit));
                }
                Err(e) => {
                    self.failed(pending, e.to_string(), None).await;
                    return false;
                }
            }
        }
        let Some((_, sink, limit)) = self.sink.as_mut() else {
            unreachable!("the sink was built just above")
        };
        let messages = sink.messages_for(wanted.len());
        let (result, sent_messages) = match limit.plan(messages, Instant::now()) {
            Plan::SendEach => (sink.send(wanted, &pending.context).await, messages),
            Plan::SendDigest => (sink.send_digest(wanted, &pending.context).await, 1),
            Plan::WaitUntil(at) => {
                tokio::time::sleep_until(at.into()).await;
                return false;
            }
        };
        match result {
            Ok(()) => {
                limit.spend(sent_messages, Instant::now());
                self.control
                    .alerting()
                    .delivered(&self.name, wanted.len(), sent_messages);
                self.backoff.reset();
                if pending.failing || self.reported_failing {
                    self.reported_failing = false;
                    self.report(
                        AlertKind::SinkRecovered,
                        Severity::Info,
                        "accepts alerts again".into(),
                    )
                    .await;
                }
                true
            }
            Err(e) => {
                let retry_after = e.retry_after();
                self.failed(pending, e.to_string(), retry_after).await;
                false
            }
        }
    }

    async fn failed(&mut self, pending: &Pending, error: String, retry_after: Option<Duration>) {
        tracing::warn!(sink = %self.name, %error, "alert delivery failed; will retry");
        self.control.alerting().failed(&self.name, error.clone());
        let delay = self.backoff.next_delay();
        if self.backoff.failures() >= FAILING_AFTER && !pending.failing && !self.reported_failing {
            self.reported_failing = true;
            self.report(AlertKind::SinkFailing, Severity::Critical, error)
                .await;
        }
        // A receiver's Retry-After wins when it asks for longer.
        tokio::time::sleep(retry_after.map_or(delay, |asked| asked.max(delay))).await;
    }

    async fn report(&self, kind: AlertKind, severity: Severity, detail: String) {
        let now = now_ms();
        self.raiser
            .raise(NewAlert {
                id: self.raiser.new_id(),
                kind,
                severity,
                class: AlertClass::FirstSeen,
                node: self.raiser.node(),
                subject_node: None,
                sink: Some(self.name.clone()),
                workload: None,
                flow: None,
                count: 1,
                first_seen_ms: now,
                last_seen_ms: now,
                summary: format!("alert sink `{}` {detail}", self.name),
                change: None,
            })
            .await;
    }
}
