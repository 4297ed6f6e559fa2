//! The cluster state: everything the cluster agrees on, as Raft replicates it.
//!
//! Every collection is a `BTreeMap`, so iteration order — and with it any
//! serialization of the state — depends only on the contents, never on the
//! order things were inserted. That is what makes [`crate::Command::apply`]
//! deterministic down to the byte.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::access::Access;
use crate::alert::AlertLog;
use crate::audit::AuditLog;
use crate::backup::BackupRecord;
use crate::baseline::Baseline;
use crate::history::PolicyHistory;
use crate::ids::{IdentityId, NodeId, RuleId, ZoneId};
use crate::inventory::NodeInventory;
use crate::tunnel::TunnelKey;
use crate::{
    AlertSink, Endpoint, EndpointKey, Fingerprint, Identity, IdentityName, IdentityRule, Mode,
    Node, Rule, Sha256, Zone,
};

/// Cluster-wide settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The cluster's name, as reports and the console show it (e.g.
    /// `st-marys-prod`); empty until someone names it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster_name: String,
    /// Mode for workloads that belong to no zone at all (host processes no
    /// identity rule names). `learn` keeps a new node usable until its
    /// workloads are described.
    pub unmanaged_mode: Mode,
    /// How many alerts the cluster keeps, delivered or not. When more wait
    /// for a sink than this, the oldest are folded into one
    /// `backlog_overflow` alert.
    #[serde(default = "Settings::default_alert_retention")]
    pub alert_retention: u32,
    /// How many edges the baseline holds at most. Past it, new edges are
    /// counted as dropped rather than recorded, so a noisy learning zone
    /// cannot grow the replicated state without bound.
    #[serde(default = "Settings::default_baseline_max_edges")]
    pub baseline_max_edges: u32,
    /// How many entries the audit log keeps; the oldest are dropped first.
    #[serde(default = "Settings::default_audit_retention")]
    pub audit_retention: u32,
    /// How many policy versions the history keeps (and so how far back a
    /// rollback reaches); the oldest are dropped first, and also once the
    /// versions held change more than
    /// [`MAX_HISTORY_CHANGES`](crate::MAX_HISTORY_CHANGES) entries in all.
    #[serde(default = "Settings::default_history_retention")]
    pub history_retention: u32,
}

impl Settings {
    /// Alerts kept when the settings do not say.
    pub const DEFAULT_ALERT_RETENTION: u32 = 10_000;

    /// Baseline edges kept when the settings do not say.
    pub const DEFAULT_BASELINE_MAX_EDGES: u32 = 50_000;

    /// Audit entries kept when the settings do not say.
    pub const DEFAULT_AUDIT_RETENTION: u32 = 10_000;

    /// Policy versions kept when the settings do not say.
    pub const DEFAULT_HISTORY_RETENTION: u32 = 500;

    fn default_audit_retention() -> u32 {
        Self::DEFAULT_AUDIT_RETENTION
    }

    fn default_history_retention() -> u32 {
        Self::DEFAULT_HISTORY_RETENTION
    }

    fn default_alert_retention() -> u32 {
        Self::DEFAULT_ALERT_RETENTION
    }

    fn default_baseline_max_edges() -> u32 {
        Self::DEFAULT_BASELINE_MAX_EDGES
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            cluster_name: String::new(),
            unmanaged_mode: Mode::Learn,
            alert_retention: Self::DEFAULT_ALERT_RETENTION,
            baseline_max_edges: Self::DEFAULT_BASELINE_MAX_EDGES,
            audit_retention: Self::DEFAULT_AUDIT_RETENTION,
            history_retention: Self::DEFAULT_HISTORY_RETENTION,
        }
    }
}

/// Everything the cluster agrees on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterState {
    /// Cluster-wide settings.
    pub settings: Settings,
    /// Zones by name.
    pub zones: BTreeMap<String, Zone>,
    /// Identities by number.
    pub identities: BTreeMap<IdentityId, Identity>,
    /// Identity rules by name (the order they are tried in).
    pub identity_rules: BTreeMap<String, IdentityRule>,
    /// Registered binaries by digest.
    pub fingerprints: BTreeMap<Sha256, Fingerprint>,
    /// Rules by number.
    pub rules: BTreeMap<RuleId, Rule>,
    /// Endpoints by address.
    pub endpoints: BTreeMap<EndpointKey, Endpoint>,
    /// Nodes by id.
    pub nodes: BTreeMap<NodeId, Node>,
    /// Alert sinks by name.
    pub sinks: BTreeMap<String, AlertSink>,
    /// The next zone number to hand out.
    pub next_zone_id: u32,
    /// The next identity number to hand out.
    pub next_identity_id: u32,
    /// The next rule number to hand out.
    pub next_rule_id: u32,
    /// API tokens, join tokens, the CA and the voter target.
    pub access: Access,
    /// Counts the commands that changed anything but alerts and the
    /// baseline: what the dataplane enforces can only have changed when
    /// this did.
    #[serde(default)]
    pub policy_revision: u64,
    /// Alerts and their delivery to each sink.
    #[serde(default)]
    pub alerts: AlertLog,
    /// What runs on each node, as each node last reported it.
    #[serde(default)]
    pub inventory: BTreeMap<NodeId, NodeInventory>,
    /// The flows zones in `learn` mode were seen to make, and the decisions
    /// taken on them.
    #[serde(default)]
    pub baseline: Baseline,
    /// Each node's Noise static key for the east-west tunnel.
    #[serde(default)]
    pub tunnel_keys: BTreeMap<NodeId, TunnelKey>,
    /// The changes made through the admin API, newest last.
    #[serde(default)]
    pub audit: AuditLog,
    /// The recent versions of the policy document, as reversible diffs.
    #[serde(default)]
    pub history: PolicyHistory,
    /// The last backup taken, as the node that took it recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_backup: Option<BackupRecord>,
}

impl Default for ClusterState {
    fn default() -> Self {
        ClusterState::new()
    }
}

impl ClusterState {
    /// An empty cluster.
    pub fn new() -> Self {
        ClusterState {
            next_zone_id: 1,
            next_identity_id: IdentityId::FIRST_ALLOCATED,
            next_rule_id: RuleId::FIRST_ALLOCATED,
            settings: Settings::default(),
            zones: BTreeMap::new(),
            identities: BTreeMap::new(),
            identity_rules: BTreeMap::new(),
            fingerprints: BTreeMap::new(),
            rules: BTreeMap::new(),
            endpoints: BTreeMap::new(),
            nodes: BTreeMap::new(),
            sinks: BTreeMap::new(),
            access: Access::default(),
            policy_revision: 0,
            alerts: AlertLog::default(),
            inventory: BTreeMap::new(),
            baseline: Baseline::default(),
            tunnel_keys: BTreeMap::new(),
            audit: AuditLog::default(),
            history: PolicyHistory::default(),
            last_backup: None,
        }
    }

    /// The identity of this name, if defined.
    pub fn identity_by_name(&self, name: &IdentityName) -> Option<&Identity> {
        self.identities.values().find(|i| i.name == *name)
    }

    /// The zone with this number.
    pub fn zone_by_id(&self, id: ZoneId) -> Option<&Zone> {
        self.zones.values().find(|z| z.id == id)
    }

    /// Whether any identity of the app `zone/app` is defined.
    pub fn app_exists(&self, zone: &str, app: &str) -> bool {
        self.identities
            .values()
            .any(|i| i.name.zone == zone && i.name.app == app)
    }

    /// Whether the identity has registered binaries (and so only those
    /// binaries may carry it).
    pub fn identity_has_fingerprints(&self, name: &IdentityName) -> bool {
        self.fingerprints.values().any(|f| f.identity == *name)
    }
}
