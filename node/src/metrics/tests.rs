//! The metrics of a made-up node, encoded in both formats and read back by
//! a Prometheus text-format parser.

use std::collections::BTreeMap;

use prometheus_parse::{Scrape, Value};
use stockade_raft::RaftStatus;

use super::*;
use crate::alerts::SinkCounters;
use crate::dataplane::{DataplaneStatus, MapUsage};
use crate::flows::FlowStatus;
use crate::tunnel::TunnelStatus;

fn snapshot() -> Snapshot {
    let raft = RaftStatus {
        node_id: 1,
        role: "leader".into(),
        term: 4,
        leader: Some(1),
        last_log_index: Some(50),
        applied_index: Some(48),
        snapshot_index: None,
        purged_index: None,
        voters: BTreeMap::from([(1, "a:1".into()), (2, "b:1".into()), (3, "c:1".into())]),
        learners: BTreeMap::new(),
        replication: Some(BTreeMap::from([(1, Some(50)), (2, Some(45)), (3, None)])),
        millis_since_quorum_ack: Some(250),
        last_contact_ms: BTreeMap::from([(2, 100), (3, 1500)]),
    };
    let dataplane = DataplaneStatus {
        index: 40,
        allowed: 7,
        denied: 3,
        events_lost: 1,
        maps: vec![MapUsage {
            map: "policy".into(),
            entries: 1 << 18,
            capacity: 1 << 19,
        }],
        error: Some("boom".into()),
        ..DataplaneStatus::default()
    };
    let mut tunnel = TunnelStatus {
        port: 7401,
        local_port: 7402,
        public_key: "ab".into(),
        counters: Default::default(),
    };
    tunnel.counters.bytes_sent = 1000;
    tunnel.counters.sessions_active = 2;
    Snapshot {
        status: Status {
            name: "n\"1".into(),
            raft,
            dataplane: Some(dataplane),
            flows: Some(FlowStatus {
                records_written: 9,
                summaries: 16384,
                oldest_ms: Some(1_500),
                ..FlowStatus::default()
            }),
            tunnel: Some(tunnel),
        },
        sinks: BTreeMap::from([(
            "slack".to_owned(),
            SinkCounters {
                sent: 5,
                messages: 2,
                failed: 1,
                last_success_ms: Some(2_000),
                last_error: None,
            },
        )]),
        alerts_lost: 0,
    }
}

fn parse(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("parses")
}

/// The value of the series `name` whose labels include `labels`.
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(k).is_some_and(|l| l == *v))
        })
        .map(|s| match s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
            _ => f64::NAN,
        })
}

#[test]
fn every_family_is_typed_documented_and_parses() {
    let text = encode(snapshot(), Format::Prometheus).expect("encodes");
    let scrape = parse(&text);
    let sample_lines = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count();
    // The parser skips what it cannot read: every line must have counted.
    assert_eq!(scrape.samples.len(), sample_lines, "{text}");
    for sample in &scrape.samples {
        assert!(sample.metric.starts_with("stockade_"), "{}", sample.metric);
        assert!(
            scrape.docs.contains_key(&sample.metric),
            "{} has no HELP",
            sample.metric
        );
        let counter = matches!(sample.value, Value::Counter(_));
        assert_eq!(
            counter,
            sample.metric.ends_with("_total"),
            "{} is a counter exactly when it ends in _total",
            sample.metric
        );
        assert!(
            matches!(sample.value, Value::Counter(_) | Value::Gauge(_)),
            "{} has no TYPE",
            sample.metric
        );
    }
}

#[test]
fn the_values_are_the_nodes() {
    let scrape = parse(&encode(snapshot(), Format::Prometheus).expect("encodes"));
    let v = |name: &str, labels: &[(&str, &str)]| {
        value(&scrape, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?}"))
    };
    assert_eq!(v("stockade_raft_role", &[("role", "leader")]), 1.0);
    assert_eq!(v("stockade_raft_role", &[("role", "follower")]), 0.0);
    assert_eq!(v("stockade_raft_term", &[]), 4.0);
    assert_eq!(v("stockade_raft_apply_lag_entries", &[]), 2.0);
    assert_eq!(
        v("stockade_raft_replication_lag_entries", &[("peer", "2")]),
        5.0
    );
    assert_eq!(
        v("stockade_raft_replication_lag_entries", &[("peer", "3")]),
        50.0
    );
    assert_eq!(v("stockade_raft_quorum_ack_age_seconds", &[]), 0.25);
    assert_eq!(
        v(
            "stockade_raft_peer_last_contact_age_seconds",
            &[("peer", "3")]
        ),
        1.5
    );
    assert_eq!(v("stockade_dataplane_lag_entries", &[]), 8.0);
    assert_eq!(v("stockade_dataplane_reconcile_failing", &[]), 1.0);
    assert_eq!(
        v(
            "stockade_dataplane_verdicts_total",
            &[("verdict", "denied")]
        ),
        3.0
    );
    assert_eq!(
        v(
            "stockade_dataplane_map_pressure_ratio",
            &[("map", "policy")]
        ),
        0.5
    );
    assert_eq!(
        v("stockade_dataplane_map_pressure_ratio", &[("map", "flows")]),
        0.25
    );
    assert_eq!(v("stockade_flows_records_written_total", &[]), 9.0);
    assert_eq!(
        v("stockade_flows_oldest_record_timestamp_seconds", &[]),
        1.5
    );
    assert_eq!(
        v(
            "stockade_alert_delivered_alerts_total",
            &[("sink", "slack")]
        ),
        5.0
    );
    assert_eq!(
        v(
            "stockade_alert_delivery_failures_total",
            &[("sink", "slack")]
        ),
        1.0
    );
    assert_eq!(v("stockade_tunnel_sent_bytes_total", &[]), 1000.0);
    assert_eq!(v("stockade_tunnel_sessions_active", &[]), 2.0);
    // A quote in the node's name is escaped, not a broken line.
    assert_eq!(v("stockade_node_info", &[("name", "n\\\"1")]), 1.0);
}

#[test]
fn openmetrics_has_units_and_an_end() {
    let text = encode(snapshot(), Format::OpenMetrics).expect("encodes");
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(
        text.contains("# UNIT stockade_raft_quorum_ack_age_seconds seconds"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE stockade_dataplane_verdicts counter"),
        "{text}"
    );
    assert!(text.contains("stockade_dataplane_verdicts_total{verdict=\"allowed\"} 7"));
}

#[test]
fn a_node_without_dataplane_reports_only_what_it_has() {
    let mut snapshot = snapshot();
    snapshot.status.dataplane = None;
    snapshot.status.flows = None;
    snapshot.status.tunnel = None;
    snapshot.status.raft.replication = None;
    snapshot.status.raft.millis_since_quorum_ack = None;
    snapshot.sinks.clear();
    let text = encode(snapshot, Format::Prometheus).expect("encodes");
    for absent in [
        "dataplane",
        "tunnel",
        "flows",
        "replication_lag_entries{",
        "sink=",
    ] {
        assert!(!text.contains(absent), "{absent} in {text}");
    }
    assert!(text.contains("stockade_raft_term 4"), "{text}");
}

#[test]
fn the_accept_header_chooses_the_format() {
    let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                      version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    assert_eq!(Format::from_accept(Some(prometheus)), Format::OpenMetrics);
    assert_eq!(Format::from_accept(Some("text/plain")), Format::Prometheus);
    assert_eq!(Format::from_accept(None), Format::Prometheus);
    assert!(Format::OpenMetrics
        .content_type()
        .starts_with("application/openmetrics-text"));
    assert!(Format::Prometheus.content_type().starts_with("text/plain"));
}
