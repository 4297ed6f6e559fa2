//! The durable part of the cluster state: what a backup carries and a
//! restore puts back.
//!
//! Durable is what people configured — settings, zones, identities,
//! identity rules, fingerprints, rules, alert sinks (with their secrets),
//! API tokens (hashed) and the baseline with its decisions — and the
//! counters that number new zones, identities and rules.
//!
//! Not durable, and left as the running cluster has it: membership and
//! what nodes report (nodes, endpoints, inventories, tunnel keys), the
//! certificate authority, join tokens, the voter target and next node id
//! (restoring those would cut running nodes off), and the alert log (a
//! history that goes on; its sinks' cursors follow the restored sinks).
//! The audit log travels in the backup beside the durable state: a restore
//! adds to it and never replaces it (see [`crate::AuditLog::add_restored`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::access::ApiToken;
use crate::baseline::Baseline;
use crate::ids::{IdentityId, RuleId};
use crate::state::{ClusterState, Settings};
use crate::{AlertSink, Fingerprint, Identity, IdentityRule, Rule, Sha256, Zone};

/// The part of [`ClusterState`] a backup holds and a restore replaces.
///
/// Serialized as JSON it is deterministic (every map is a `BTreeMap`, no
/// floats), so equal durable states give equal bytes and an equal
/// [`digest`](Self::digest).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DurableState {
    /// Cluster-wide settings.
    pub settings: Settings,
    /// Zones by name.
    pub zones: BTreeMap<String, Zone>,
    /// Identities by number.
    pub identities: BTreeMap<IdentityId, Identity>,
    /// Identity rules by name.
    pub identity_rules: BTreeMap<String, IdentityRule>,
    /// Registered binaries by digest.
    pub fingerprints: BTreeMap<Sha256, Fingerprint>,
    /// Rules by number.
    pub rules: BTreeMap<RuleId, Rule>,
    /// Alert sinks by name, secrets included.
    pub sinks: BTreeMap<String, AlertSink>,
    /// The next zone number to hand out.
    pub next_zone_id: u32,
    /// The next identity number to hand out.
    pub next_identity_id: u32,
    /// The next rule number to hand out.
    pub next_rule_id: u32,
    /// API tokens by id (their secrets hashed, as the state keeps them).
    pub api_tokens: BTreeMap<String, ApiToken>,
    /// The learned baseline and the decisions taken on it.
    pub baseline: Baseline,
}

impl DurableState {
    /// The durable part of `state`.
    pub fn of(state: &ClusterState) -> Self {
        DurableState {
            settings: state.settings.clone(),
            zones: state.zones.clone(),
            identities: state.identities.clone(),
            identity_rules: state.identity_rules.clone(),
            fingerprints: state.fingerprints.clone(),
            rules: state.rules.clone(),
            sinks: state.sinks.clone(),
            next_zone_id: state.next_zone_id,
            next_identity_id: state.next_identity_id,
            next_rule_id: state.next_rule_id,
            api_tokens: state.access.api_tokens.clone(),
            baseline: state.baseline.clone(),
        }
    }

    /// Its canonical encoding: compact JSON, maps in key order.
    pub fn to_json(&self) -> Vec<u8> {
        // Every key is a string or serializes as one and no value is a
        // float: encoding cannot fail (the state is JSON in snapshots too).
        serde_json::to_vec(self)
            .unwrap_or_else(|e| unreachable!("the durable state is always valid JSON: {e}"))
    }

    /// SHA-256 of its canonical encoding: equal on two clusters exactly
    /// when their durable states are byte-identical.
    pub fn digest(&self) -> Sha256 {
        Sha256(sha2::Sha256::digest(self.to_json()).into())
    }

    /// Puts this durable state in place of `state`'s, keeping what is not
    /// durable; `keep_token` (the restoring admin's) survives the
    /// replacement of API tokens. Endpoints whose identity no longer
    /// exists are dropped (their nodes publish them again if it comes
    /// back), and the alert log follows the restored sinks.
    pub(crate) fn put_into(self, state: &mut ClusterState, keep_token: Option<&str>) {
        let kept = keep_token.and_then(|id| state.access.api_tokens.get(id).cloned());
        state.settings = self.settings;
        state.zones = self.zones;
        state.identities = self.identities;
        state.identity_rules = self.identity_rules;
        state.fingerprints = self.fingerprints;
        state.rules = self.rules;
        state.next_zone_id = self.next_zone_id;
        state.next_identity_id = self.next_identity_id;
        state.next_rule_id = self.next_rule_id;
        state.access.api_tokens = self.api_tokens;
        if let Some(token) = kept {
            state
                .access
                .api_tokens
                .entry(token.id.clone())
                .or_insert(token);
        }
        state.baseline = self.baseline;
        let gone: Vec<String> = state
            .sinks
            .keys()
            .filter(|name| !self.sinks.contains_key(*name))
            .cloned()
            .collect();
        for name in gone {
            state.alerts.remove_sink(&name);
        }
        for name in self.sinks.keys() {
            state.alerts.add_sink(name);
        }
        state.sinks = self.sinks;
        let identities = &state.identities;
        state
            .endpoints
            .retain(|_, e| identities.values().any(|i| i.name == e.identity));
    }
}

/// SHA-256 of the durable part of `state` (see [`DurableState::digest`]).
pub fn durable_digest(state: &ClusterState) -> Sha256 {
    DurableState::of(state).digest()
}
