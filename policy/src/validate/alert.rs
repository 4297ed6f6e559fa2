//! Checks of the commands that raise and acknowledge alerts. They come from
//! nodes, not people, but a node may be buggy or compromised: nothing it
//! sends may break the log.

use super::{fail, Result};
use crate::state::ClusterState;
use crate::{NewAlert, MAX_ALERTS_PER_COMMAND};

/// The longest alert id accepted.
const MAX_ID_LEN: usize = 128;
/// The longest summary accepted.
const MAX_SUMMARY_LEN: usize = 2000;

pub(super) fn alerts(alerts: &[NewAlert], state: &ClusterState) -> Result {
    if alerts.is_empty() {
        return fail("alerts", "no alert to raise");
    }
    if alerts.len() > MAX_ALERTS_PER_COMMAND {
        return fail(
            "alerts",
            format!(
                "{} alerts in one command; at most {MAX_ALERTS_PER_COMMAND}",
                alerts.len()
            ),
        );
    }
    for (i, alert) in alerts.iter().enumerate() {
        let field = |name: &str| format!("alerts[{i}].{name}");
        let id = &alert.id.0;
        if id.is_empty() || id.len() > MAX_ID_LEN || id.chars().any(|c| c.is_control()) {
            return fail(
                field("id"),
                format!("an alert id is 1 to {MAX_ID_LEN} printable characters"),
            );
        }
        if !state.nodes.contains_key(&alert.node) {
            return fail(field("node"), format!("there is no node {}", alert.node));
        }
        if alert.kind == crate::AlertKind::ConfigChange || alert.change.is_some() {
            return fail(
                field("kind"),
                "config_change alerts come from the audit log, not from nodes",
            );
        }
        if alert.count == 0 {
            return fail(
                field("count"),
                "an alert stands for at least one occurrence",
            );
        }
        if alert.first_seen_ms > alert.last_seen_ms {
            return fail(field("first_seen_ms"), "first seen after last seen");
        }
        if alert.summary.len() > MAX_SUMMARY_LEN {
            return fail(
                field("summary"),
                format!("longer than {MAX_SUMMARY_LEN} bytes"),
            );
        }
    }
    Ok(())
}

pub(super) fn acknowledgement(sink: &str, through: u64, state: &ClusterState) -> Result {
    if !state.sinks.contains_key(sink) {
        return fail("sink", format!("no alert sink is named `{sink}`"));
    }
    let last = state.alerts.last_seq();
    if through > last {
        return fail(
            "through",
            format!("{through} is past the last alert ({last})"),
        );
    }
    Ok(())
}
