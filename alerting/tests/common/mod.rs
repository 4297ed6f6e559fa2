//! Alerts, a context and sink configurations shared by the sink tests. The
//! alerts are the unit tests' fixtures (`src/sink/fixtures.rs`), with ids
//! tagged per test and the texts these tests look for.

// Each test crate uses its own subset of these helpers.
#![allow(dead_code)]

// The fixtures name their context type as `super::Context`.
use stockade_alerting::sink::Context;
use stockade_policy::{Alert, AlertId, AlertSink, Severity, SinkTarget};

#[path = "../../src/sink/fixtures.rs"]
mod fixtures;

/// Cluster `prod-eu` with nodes `edge-1` (sending) and `edge-2`.
pub(crate) use fixtures::ctx;

/// A sink named `name` with `target` and no filters.
pub fn sink(name: &str, target: SinkTarget) -> AlertSink {
    AlertSink {
        name: name.into(),
        target,
        min_severity: Severity::Info,
        zones: vec![],
        apps: vec![],
        classes: vec![],
        max_per_minute: None,
        audit: false,
    }
}

/// `prod/web/frontend` was denied `pci/billing/db:5432` by rule 17; `tag`
/// makes the id unique across tests.
pub fn policy_violation(tag: &str, seq: u64) -> Alert {
    Alert {
        id: AlertId(format!("{tag}-pv-{seq}")),
        summary: "prod/web/frontend → pci/billing/db:5432 denied by rule 17 (a=b \\ \"q\")".into(),
        ..fixtures::flow_alert(seq)
    }
}

/// `/tmp/x` runs in zone `dev` on `edge-2` and no rule names it.
pub fn unknown_binary(tag: &str, seq: u64) -> Alert {
    Alert {
        id: AlertId(format!("{tag}-ub-{seq}")),
        last_seen_ms: 1_714_566_000_123,
        ..fixtures::binary_alert(seq)
    }
}

/// The leader `edge-1` lost `edge-2`.
pub fn node_down(tag: &str, seq: u64) -> Alert {
    Alert {
        id: AlertId(format!("{tag}-nd-{seq}")),
        count: 1,
        first_seen_ms: 1_714_567_000_000,
        last_seen_ms: 1_714_567_000_000,
        summary: "edge-2 stopped answering\nfor 30 s".into(),
        ..fixtures::node_alert(seq)
    }
}

/// One of each kind above, with consecutive sequence numbers from `seq`.
pub fn three(tag: &str, seq: u64) -> Vec<Alert> {
    vec![
        policy_violation(tag, seq),
        unknown_binary(tag, seq + 1),
        node_down(tag, seq + 2),
    ]
}

/// A local port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("bound address").port()
}
