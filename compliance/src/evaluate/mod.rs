//! Each control judged from the evidence: met, partly met or not met, with
//! the facts behind the judgement and what would close the gap.
//!
//! The judgements are deliberately plain, so an auditor can check them by
//! hand against the evidence listed: each function says in its comment
//! what "met" takes.

use std::collections::BTreeSet;

use stockade_policy::{ClusterState, Mode, Severity};

use crate::evidence::Evidence;
use crate::report::Finding;

mod detect;
mod identify;
mod protect;

use detect::{
    aggregation, alert_delivery, baseline_deviation, monitoring, outside_activity, thresholds,
};
use identify::{flow_map, inventory};
use protect::{
    audit_records, backups, baseline, binary_integrity, control_network, data_in_transit, egress,
    fingerprints_from_ci, least_functionality, segmentation, zone_separation,
};

/// A backup older than this no longer counts as recent (PR.IP-4).
pub const BACKUP_MAX_AGE_MS: u64 = 2 * 24 * 3600 * 1000;

/// Judges the control `id` (one of [`crate::CONTROLS`]).
pub fn evaluate(id: &str, e: &Evidence<'_>) -> Finding {
    match id {
        "ID.AM-2" => inventory(e),
        "ID.AM-3" => flow_map(e),
        "PR.AC-5" => segmentation(e),
        "PR.DS-2" => data_in_transit(e),
        "PR.DS-5" => egress(e),
        "PR.DS-6" | "DE.CM-4" => binary_integrity(e),
        "PR.DS-7" => zone_separation(e),
        "PR.IP-1" => baseline(e),
        "PR.IP-2" => fingerprints_from_ci(e),
        "PR.IP-4" => backups(e),
        "PR.IP-8" | "DE.DP-4" => alert_delivery(e),
        "PR.PT-1" => audit_records(e),
        "PR.PT-3" => least_functionality(e),
        "PR.PT-4" => control_network(e),
        "DE.AE-1" => baseline_deviation(e),
        "DE.AE-3" => aggregation(e),
        "DE.AE-5" => thresholds(e),
        "DE.CM-1" => monitoring(e),
        "DE.CM-6" => outside_activity(e),
        other => unreachable!("{other} is not in the crosswalk"),
    }
}

/// Zones that hold a workload: the zones of the identities defined.
pub(super) fn workload_zones(state: &ClusterState) -> BTreeSet<&str> {
    state
        .identities
        .values()
        .map(|i| i.name.zone.as_str())
        .collect()
}

/// The workload zones in `mode`, and those that are not.
pub(super) fn zones_split(state: &ClusterState, mode: Mode) -> (Vec<&str>, Vec<&str>) {
    workload_zones(state)
        .into_iter()
        .partition(|z| state.zones.get(*z).is_some_and(|zone| zone.mode == mode))
}

/// How many items an evidence line names before it only counts the rest.
const LISTED: usize = 20;

/// `items` joined by `separator`: `none` when empty, and past [`LISTED`]
/// items, `and N more`, so a large cluster's report stays readable.
pub(super) fn list<S: AsRef<str>>(items: &[S], separator: &str) -> String {
    if items.is_empty() {
        return "none".into();
    }
    let shown: Vec<&str> = items.iter().take(LISTED).map(AsRef::as_ref).collect();
    match items.len().saturating_sub(LISTED) {
        0 => shown.join(separator),
        more => format!("{}{separator}and {more} more", shown.join(separator)),
    }
}

pub(super) fn when(ms: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
        .to_string()
}

pub(super) fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Critical => "critical",
    }
}

pub(super) fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "n/a".into()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lists_name_twenty_and_count_the_rest() {
        assert_eq!(list::<&str>(&[], ", "), "none");
        assert_eq!(list(&["a", "b"], "; "), "a; b");
        let many: Vec<String> = (0..25).map(|i| format!("z{i}")).collect();
        let listed = list(&many, ", ");
        assert!(listed.starts_with("z0, z1, "), "{listed}");
        assert!(listed.ends_with("z19, and 5 more"), "{listed}");
    }
}
