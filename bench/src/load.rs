//! The closed-loop load generator: `n` clients, each on its own keep-alive
//! connection, each sending its next write as soon as the previous reply
//! came. Writes that complete during the warm-up, or after the measured
//! window, are not counted.

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use tokio::task::JoinSet;

use crate::cli::Plan;
use crate::client::Connection;
use crate::interrupt::Interrupt;
use crate::workload::{ClientRecord, Target};

/// How long one write may take before it counts as an error (and the
/// client reconnects).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed write, so a broken target is not hammered.
const ERROR_PAUSE: Duration = Duration::from_millis(50);
/// The largest latency the histograms hold, in microseconds.
const MAX_MICROS: u64 = 60_000_000;

/// What one point (one system, one client count) measured.
#[derive(Debug)]
pub struct PointResult {
    /// The number of concurrent clients.
    pub clients: usize,
    /// Successful writes completed in the measured window.
    pub writes: u64,
    /// Failed writes (error status, broken connection, timeout) that ended
    /// in the measured window.
    pub errors: u64,
    /// The length of the measured window.
    pub window: Duration,
    /// Latencies of the counted writes, in microseconds.
    pub latency: Histogram<u64>,
    /// The first failure seen, warm-up included, for the report.
    pub first_error: Option<String>,
}

impl PointResult {
    /// Successful writes per second.
    pub fn writes_per_sec(&self) -> f64 {
        self.writes as f64 / self.window.as_secs_f64()
    }

    /// The latency at `quantile` (0..=1) in milliseconds, if anything was
    /// counted.
    pub fn latency_ms(&self, quantile: f64) -> Option<f64> {
        (!self.latency.is_empty()).then(|| self.latency.value_at_quantile(quantile) as f64 / 1000.0)
    }
}

/// When the warm-up ends and when the measured window ends.
#[derive(Clone, Copy, Debug)]
struct Window {
    from: Instant,
    to: Instant,
}

impl Window {
    fn contains(&self, t: Instant) -> bool {
        self.from <= t && t <= self.to
    }
}

/// What one client counted.
struct ClientStats {
    writes: u64,
    errors: u64,
    latency: Histogram<u64>,
    first_error: Option<String>,
}

fn histogram() -> Histogram<u64> {
    // Bounds and precision are constants that hdrhistogram accepts.
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("valid histogram bounds")
}

/// Runs one point: the clients numbered `ids`, against `target`, for the
/// plan's warm-up and measured time. Must run inside a tokio runtime whose
/// sockets can reach the target.
pub async fn run_point(
    target: Arc<Target>,
    ids: Range<usize>,
    plan: &Plan,
    interrupt: &Interrupt,
) -> anyhow::Result<PointResult> {
    let clients = ids.len();
    // Connect everyone first, so connection set-up is not measured.
    let mut connecting = JoinSet::new();
    for id in ids {
        let addr = target.addr();
        connecting.spawn(async move { (id, Connection::open(addr).await) });
    }
    let mut connections = Vec::with_capacity(clients);
    while let Some(joined) = connecting.join_next().await {
        let (id, connection) = joined.context("a connecting task died")?;
        connections.push((id, connection.context("opening a client connection")?));
    }

    let from = Instant::now() + plan.warmup;
    let window = Window {
        from,
        to: from + plan.measure,
    };
    let mut running = JoinSet::new();
    for (id, connection) in connections {
        let record = ClientRecord::new(id, plan.record_bytes);
        running.spawn(client(
            id,
            connection,
            Arc::clone(&target),
            record,
            window,
            interrupt.clone(),
        ));
    }

    let mut result = PointResult {
        clients,
        writes: 0,
        errors: 0,
        window: plan.measure,
        latency: histogram(),
        first_error: None,
    };
    while let Some(joined) = running.join_next().await {
        let stats = joined.context("a client task died")??;
        result.writes += stats.writes;
        result.errors += stats.errors;
        result
            .latency
            .add(&stats.latency)
            .context("merging latency histograms")?;
        if result.first_error.is_none() {
            result.first_error = stats.first_error;
        }
    }
    interrupt.check()?;
    Ok(result)
}

/// One client: writes back to back until the window ends.
async fn client(
    id: usize,
    connection: Connection,
    target: Arc<Target>,
    record: ClientRecord,
    window: Window,
    interrupt: Interrupt,
) -> anyhow::Result<ClientStats> {
    let mut stats = ClientStats {
        writes: 0,
        errors: 0,
        latency: histogram(),
        first_error: None,
    };
    let mut connection = Some(connection);
    let mut seq = 0u64;
    while Instant::now() < window.to && !interrupt.is_set() {
        let conn = match connection.as_mut() {
            Some(conn) => conn,
            None => match Connection::open(target.addr()).await {
                Ok(conn) => connection.insert(conn),
                Err(e) => {
                    stats.failed(Instant::now(), &window, e.to_string());
                    tokio::time::sleep(ERROR_PAUSE).await;
                    continue;
                }
            },
        };
        let request = target.request(id, seq, &record)?;
        seq += 1;
        let sent = Instant::now();
        let outcome = tokio::time::timeout(REQUEST_TIMEOUT, conn.send(request)).await;
        let done = Instant::now();
        match outcome {
            Ok(Ok(reply)) if reply.status.is_success() => {
                if window.contains(done) {
                    stats.writes += 1;
                    let micros = u64::try_from((done - sent).as_micros()).unwrap_or(u64::MAX);
                    stats.latency.saturating_record(micros.max(1));
                }
            }
            Ok(Ok(reply)) => {
                let body = String::from_utf8_lossy(&reply.body);
                let why = format!(
                    "{}: {}",
                    reply.status,
                    body.chars().take(200).collect::<String>()
                );
                stats.failed(done, &window, why);
                tokio::time::sleep(ERROR_PAUSE).await;
            }
            Ok(Err(e)) => {
                stats.failed(done, &window, e.to_string());
                connection = None;
                tokio::time::sleep(ERROR_PAUSE).await;
            }
            Err(_) => {
                stats.failed(done, &window, format!("no reply in {REQUEST_TIMEOUT:?}"));
                connection = None;
            }
        }
    }
    Ok(stats)
}

impl ClientStats {
    fn failed(&mut self, at: Instant, window: &Window, why: String) {
        if window.contains(at) {
            self.errors += 1;
        }
        self.first_error.get_or_insert(why);
    }
}
