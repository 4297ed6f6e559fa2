//! How often each rule decided: every node counts the flow records of its
//! own log by deciding rule (or built-in reason), and the node that serves
//! `GET /v1/rules/hits` adds up the answers of all of them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use stockade_policy::{Action, FlowRecord, RuleRef};
use utoipa::ToSchema;

use crate::cluster::ControlPlane;

/// How often one rule, or built-in reason, decided.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RuleHits {
    /// The rule (`{"rule": 17}`) or built-in reason (`"zone_default"`, …).
    #[schema(schema_with = stockade_policy::rule_ref_schema)]
    pub rule: RuleRef,
    /// Connections (or UDP datagrams) it decided.
    pub connections: u64,
    /// How many of them it allowed.
    pub allowed: u64,
    /// How many of them it denied.
    pub denied: u64,
    /// Flow records that name it.
    pub records: u64,
    /// When it last decided (ms since the Unix epoch).
    pub last_ms: u64,
}

impl RuleHits {
    /// No decision yet by `rule`.
    pub fn none(rule: RuleRef) -> RuleHits {
        RuleHits {
            rule,
            connections: 0,
            allowed: 0,
            denied: 0,
            records: 0,
            last_ms: 0,
        }
    }
}

/// Counts of many rules, by rule.
#[derive(Debug, Default)]
pub struct HitCounter(BTreeMap<RuleRef, RuleHits>);

impl HitCounter {
    /// Counts one record.
    pub fn add(&mut self, record: &FlowRecord) {
        let hits = self
            .0
            .entry(record.rule)
            .or_insert_with(|| RuleHits::none(record.rule));
        hits.connections += record.connections;
        match record.action {
            Action::Allow => hits.allowed += record.connections,
            Action::Deny => hits.denied += record.connections,
        }
        hits.records += 1;
        hits.last_ms = hits.last_ms.max(record.last_ms);
    }

    /// Lists `rules` with zero counts until they are counted.
    pub fn include(&mut self, rules: impl IntoIterator<Item = RuleRef>) {
        for rule in rules {
            self.0.entry(rule).or_insert_with(|| RuleHits::none(rule));
        }
    }

    /// Adds another node's counts.
    pub fn merge(&mut self, other: Vec<RuleHits>) {
        for theirs in other {
            let hits = self
                .0
                .entry(theirs.rule)
                .or_insert_with(|| RuleHits::none(theirs.rule));
            hits.connections += theirs.connections;
            hits.allowed += theirs.allowed;
            hits.denied += theirs.denied;
            hits.records += theirs.records;
            hits.last_ms = hits.last_ms.max(theirs.last_ms);
        }
    }

    /// The counts, built-in reasons first, then rules by number.
    pub fn into_vec(self) -> Vec<RuleHits> {
        let mut hits: Vec<RuleHits> = self.0.into_values().collect();
        hits.sort_by_key(|h| (matches!(h.rule, RuleRef::Rule(_)), h.rule));
        hits
    }
}

/// This node's own counts, over the records last seen at or after
/// `since_ms`.
pub fn local_rule_hits(
    control: &ControlPlane,
    since_ms: Option<u64>,
) -> Result<Vec<RuleHits>, String> {
    let mut counter = HitCounter::default();
    if let Some(store) = control.flows() {
        store
            .for_each(since_ms.unwrap_or(0), |record| counter.add(record))
            .map_err(|e| e.to_string())?;
    }
    Ok(counter.into_vec())
}

#[cfg(test)]
mod tests {
    use stockade_policy::RuleId;

    use super::*;

    fn hits(rule: RuleRef, allowed: u64, denied: u64, last_ms: u64) -> RuleHits {
        RuleHits {
            rule,
            connections: allowed + denied,
            allowed,
            denied,
            records: 1,
            last_ms,
        }
    }

    #[test]
    fn the_nodes_counts_add_up_by_rule() {
        let mut total = HitCounter::default();
        total.merge(vec![
            hits(RuleRef::ZoneDefault, 0, 3, 50),
            hits(RuleRef::Rule(RuleId(17)), 5, 0, 100),
        ]);
        total.merge(vec![hits(RuleRef::Rule(RuleId(17)), 2, 0, 80)]);
        let merged = total.into_vec();
        assert_eq!(
            merged,
            vec![
                hits(RuleRef::ZoneDefault, 0, 3, 50),
                RuleHits {
                    records: 2,
                    ..hits(RuleRef::Rule(RuleId(17)), 7, 0, 100)
                },
            ]
        );
        let json = serde_json::to_value(&merged).expect("encodes");
        assert_eq!(json[0]["rule"], "zone_default");
        assert_eq!(json[1]["rule"]["rule"], 17);
    }
}
