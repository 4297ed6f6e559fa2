//! This node's metrics in the Prometheus text formats, for `GET /metrics`.
//!
//! Nothing is sampled in the background: each scrape takes a [`Snapshot`]
//! of what the node already keeps (Raft's status, the reconciler's report,
//! the flow log's, alert delivery's and the tunnel's counters) and encodes
//! it through a `prometheus_client` collector, so every value is as fresh
//! as the scrape. Names carry the `stockade_` prefix and their unit;
//! labels are few and bounded (`role`, `peer` node ids, `map`, `verdict`,
//! `sink`), never per flow or per address.

mod families;

use std::collections::BTreeMap;
use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric as _};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::alerts::SinkCounters;
use crate::cluster::{ControlPlane, Status};

/// Everything one scrape reports, read at once.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// The node's status, as `GET /v1/status` shows it.
    pub status: Status,
    /// Alert delivery by sink name, as this node last saw it (only the
    /// leader delivers).
    pub sinks: BTreeMap<String, SinkCounters>,
    /// Alert observations this node could not raise.
    pub alerts_lost: u64,
}

impl Snapshot {
    /// What `control` knows now.
    pub fn of(control: &ControlPlane) -> Self {
        Snapshot {
            status: control.status(),
            sinks: control.alerting().sinks(),
            alerts_lost: control.alerting().lost(),
        }
    }
}

/// The two text formats a scraper may ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 text, which Prometheus asks for first.
    OpenMetrics,
    /// The Prometheus text format 0.0.4, for every other scraper.
    Prometheus,
}

impl Format {
    /// The format an `Accept` header asks for: OpenMetrics when it names
    /// it, else the Prometheus text format.
    pub fn from_accept(accept: Option<&str>) -> Self {
        match accept {
            Some(accept) if accept.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Prometheus,
        }
    }

    /// The `Content-Type` of a reply in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Prometheus => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        }
    }
}

/// The text of `snapshot` in `format`.
pub fn encode(snapshot: Snapshot, format: Format) -> Result<String, fmt::Error> {
    let mut registry = Registry::with_prefix("stockade");
    registry.register_collector(Box::new(SnapshotCollector(snapshot)));
    let mut text = String::new();
    match format {
        Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut text, &registry)?,
        Format::Prometheus => {
            prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)?
        }
    }
    Ok(text)
}

/// Encodes one snapshot; registered anew for each scrape.
#[derive(Debug)]
struct SnapshotCollector(Snapshot);

impl Collector for SnapshotCollector {
    fn encode(&self, encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let mut out = Out(encoder);
        families::node(&mut out, &self.0.status)?;
        families::raft(&mut out, &self.0.status)?;
        families::dataplane(&mut out, &self.0.status)?;
        families::flows(&mut out, &self.0.status)?;
        families::alerts(&mut out, &self.0)?;
        families::tunnel(&mut out, &self.0.status)
    }
}

/// A unit suffix, as `prometheus_client` appends it to a name.
fn unit(name: &str) -> Unit {
    match name {
        "seconds" => Unit::Seconds,
        "bytes" => Unit::Bytes,
        other => Unit::Other(other.to_owned()),
    }
}

/// Writes metric families: one series, or one per label set.
pub(crate) struct Out<'a>(DescriptorEncoder<'a>);

/// The labels of one series.
type Labels = Vec<(&'static str, String)>;

impl Out<'_> {
    /// A gauge without labels; `unit` (e.g. `seconds`, `entries`) ends its
    /// name.
    pub(crate) fn gauge(
        &mut self,
        name: &str,
        help: &str,
        unit: Option<&str>,
        value: f64,
    ) -> fmt::Result {
        self.gauges(name, help, unit, [(Vec::new(), value)])
    }

    /// A counter without labels; `_total` ends its name (after `unit`).
    pub(crate) fn counter(
        &mut self,
        name: &str,
        help: &str,
        unit: Option<&str>,
        value: u64,
    ) -> fmt::Result {
        self.counters(name, help, unit, [(Vec::new(), value)])
    }

    /// A gauge with one series per label set (none: no family at all).
    pub(crate) fn gauges(
        &mut self,
        name: &str,
        help: &str,
        unit: Option<&str>,
        series: impl IntoIterator<Item = (Labels, f64)>,
    ) -> fmt::Result {
        let series: Vec<_> = series.into_iter().collect();
        self.family(name, help, unit, MetricType::Gauge, &series, |m, v| {
            ConstGauge::new(*v).encode(m)
        })
    }

    /// A counter with one series per label set (none: no family at all).
    pub(crate) fn counters(
        &mut self,
        name: &str,
        help: &str,
        unit: Option<&str>,
        series: impl IntoIterator<Item = (Labels, u64)>,
    ) -> fmt::Result {
        let series: Vec<_> = series.into_iter().collect();
        self.family(name, help, unit, MetricType::Counter, &series, |m, v| {
            ConstCounter::new(*v).encode(m)
        })
    }

    fn family<V>(
        &mut self,
        name: &str,
        help: &str,
        unit_name: Option<&str>,
        kind: MetricType,
        series: &[(Labels, V)],
        encode: impl Fn(prometheus_client::encoding::MetricEncoder<'_>, &V) -> fmt::Result,
    ) -> fmt::Result {
        if series.is_empty() {
            return Ok(());
        }
        let unit = unit_name.map(unit);
        let mut metric = self.0.encode_descriptor(name, help, unit.as_ref(), kind)?;
        for (labels, value) in series {
            if labels.is_empty() {
                encode(metric.encode_family(&NoLabels)?, value)?;
            } else {
                encode(metric.encode_family(labels)?, value)?;
            }
        }
        Ok(())
    }
}

/// An empty label set: the series of a family without labels.
#[derive(Debug)]
struct NoLabels;

impl EncodeLabelSet for NoLabels {
    fn encode(
        &self,
        _: &mut prometheus_client::encoding::LabelSetEncoder<'_>,
    ) -> Result<(), fmt::Error> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
