//! Commands: the only way the cluster state changes.
//!
//! A command is validated against the state it would change and then applied.
//! Both steps are pure and deterministic: the same commands applied to the
//! same state give byte-identical states on every node, which is what lets
//! Raft replicate commands rather than states.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::access::AccessCommand;
use crate::alert::NewAlert;
use crate::audit::Provenance;
use crate::backup::{check_restore, BackupRecord};
use crate::baseline::{learned_rules, EdgeKey, LinkChoice, ObservedEdge};
use crate::error::ValidationError;
use crate::ids::{IdentityId, NodeId, RuleId, ZoneId};
use crate::inventory::NodeInventory;
use crate::state::{ClusterState, Settings};
use crate::tunnel::TunnelKey;
use crate::validate;
use crate::{
    AlertSink, Endpoint, EndpointKey, Fingerprint, Identity, IdentityName, IdentityRule, Mode,
    Node, Rule, RuleSpec, Sha256, Zone,
};

/// A change to the cluster state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    /// Create a zone, or change the mode or description of an existing one.
    UpsertZone {
        /// The zone's number: allocated when absent; when given for a new
        /// zone, it must be free (used to restore a document's numbers).
        #[serde(default)]
        id: Option<ZoneId>,
        /// The zone's name.
        name: String,
        /// Its mode.
        mode: Mode,
        /// Free text.
        #[serde(default)]
        description: String,
    },
    /// Remove a zone nothing refers to any more.
    RemoveZone {
        /// The zone's name.
        name: String,
    },
    /// Define an application identity.
    DefineIdentity {
        /// Its number: allocated when absent; when given, it must be free.
        #[serde(default)]
        id: Option<IdentityId>,
        /// Its name.
        name: IdentityName,
    },
    /// Remove an identity nothing refers to any more.
    RemoveIdentity {
        /// Its name.
        name: IdentityName,
    },
    /// Create or replace an identity rule.
    UpsertIdentityRule(IdentityRule),
    /// Remove an identity rule.
    RemoveIdentityRule {
        /// The rule's name.
        name: String,
    },
    /// Register a binary as belonging to an identity.
    RegisterFingerprint(Fingerprint),
    /// Forget a registered binary.
    RemoveFingerprint {
        /// Its digest.
        sha256: Sha256,
    },
    /// Create a rule, or replace the rule with this number.
    UpsertRule {
        /// The rule's number: allocated when absent.
        #[serde(default)]
        id: Option<RuleId>,
        /// What the rule says.
        spec: RuleSpec,
    },
    /// Remove a rule.
    RemoveRule {
        /// Its number.
        id: RuleId,
    },
    /// Create or replace an endpoint.
    UpsertEndpoint(Endpoint),
    /// Remove an endpoint.
    RemoveEndpoint {
        /// Its address.
        ip: IpAddr,
        /// Its port, if it has one.
        #[serde(default)]
        port: Option<u16>,
    },
    /// Add a node, or change its address or labels.
    UpsertNode(Node),
    /// Remove a node that no endpoint refers to any more.
    RemoveNode {
        /// Its id.
        id: NodeId,
    },
    /// Create or replace an alert sink.
    UpsertSink(AlertSink),
    /// Remove an alert sink.
    RemoveSink {
        /// Its name.
        name: String,
    },
    /// Replace the cluster-wide settings.
    SetSettings(Settings),
    /// Append alerts a node raised to the alert log.
    RaiseAlerts {
        /// The alerts, in the order they were raised.
        alerts: Vec<NewAlert>,
    },
    /// Record that a sink has received every alert up to `through`.
    AckDelivery {
        /// The sink's name.
        sink: String,
        /// The last sequence number delivered (or skipped as not for it).
        through: u64,
        /// When (ms since the Unix epoch).
        at_ms: u64,
    },
    /// Replace what a node reported running (its inventory).
    ReportInventory(NodeInventory),
    /// Publish (or replace) a node's Noise static key for the tunnel.
    PublishTunnelKey(TunnelKey),
    /// Merge the flow edges a node observed into the baseline. Edges where
    /// neither side's zone is learning, or that name an identity the state
    /// does not define, are skipped.
    LearnEdges {
        /// The node that observed them.
        node: NodeId,
        /// What it saw since its last report.
        edges: Vec<ObservedEdge>,
    },
    /// Accept, snooze or deny links of the baseline.
    DecideLinks {
        /// The links (baseline edges).
        links: Vec<EdgeKey>,
        /// What to do with them.
        decision: LinkChoice,
        /// When the operator decided (ms since the Unix epoch).
        at_ms: u64,
    },
    /// A change to tokens, the certificate authority or the voter target.
    Access(AccessCommand),
    /// Replace the durable part of the state (see [`crate::DurableState`]) with a
    /// backup's, on every node at one log index. The backup is checked
    /// (format, checksum, cluster, signature) before anything changes.
    Restore {
        /// The backup file, as [`crate::Backup::write`] wrote it.
        backup: String,
        /// Accept another cluster's backup (a disaster restore into a new
        /// cluster); its signature cannot be checked, only its checksum.
        #[serde(default)]
        allow_foreign: bool,
        /// The API token (by id) of the admin who restores: kept even when
        /// the backup does not hold it, so the restore locks nobody out.
        #[serde(default)]
        keep_token: Option<String>,
    },
    /// Record that a backup was taken.
    RecordBackup(BackupRecord),
    /// Several commands that take effect together or not at all.
    Batch {
        /// The commands, applied in order.
        commands: Vec<Command>,
    },
    /// A change made through the admin API, with who asked, from where and
    /// when: applied like `command`, and recorded in the audit log (and in
    /// the policy history when it changes the policy document).
    Audited {
        /// Where the request came from.
        by: Provenance,
        /// The change (itself never an audited command).
        command: Box<Command>,
    },
    /// Restore the policy document (settings, zones, identities, identity
    /// rules, fingerprints, rules, sinks) as it was right after version
    /// `to`, as a new version: every difference is undone in one batch.
    RollbackPolicy {
        /// The policy version (a Raft log index the history still holds).
        to: u64,
    },
}

/// What applying a command did, with any number it allocated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Applied {
    /// The zone with this number was created or changed.
    Zone(ZoneId),
    /// The identity with this number was defined.
    Identity(IdentityId),
    /// The rule with this number was created or replaced.
    Rule(RuleId),
    /// The rules with these numbers were created (accepted baseline links;
    /// empty when identical rules existed already).
    Rules(Vec<RuleId>),
    /// The node with this id was admitted.
    Node(NodeId),
    /// The change was made; it allocates no number.
    Done,
    /// What each command of a batch did, in order.
    #[cfg_attr(feature = "openapi", schema(no_recursion))]
    Batch(Vec<Applied>),
}

impl Command {
    /// Several commands that take effect together or not at all.
    pub fn batch(commands: Vec<Command>) -> Command {
        Command::Batch { commands }
    }

    /// Checks the command against `state` without changing anything.
    ///
    /// The error names the offending field and says why it is wrong.
    pub fn validate(&self, state: &ClusterState) -> Result<(), ValidationError> {
        match self {
            // A batch is valid when its commands can be applied one after
            // the other; the only faithful check is to do that on a copy.
            Command::Batch { .. } => self.apply(&mut state.clone()).map(drop),
            Command::Audited { command, .. } => match **command {
                Command::Audited { .. } => Err(nested_audit()),
                ref inner => inner.validate(state),
            },
            Command::RollbackPolicy { to } => state.history.rollback(state, *to).map(drop),
            single => validate::command(single, state),
        }
    }

    /// Validates the command and, if it is valid, applies it to `state`.
    ///
    /// On error `state` is unchanged — for a batch, none of its commands
    /// take effect.
    pub fn apply(&self, state: &mut ClusterState) -> Result<Applied, ValidationError> {
        if let Command::Batch { commands } = self {
            let mut scratch = state.clone();
            let mut results = Vec::with_capacity(commands.len());
            for (i, command) in commands.iter().enumerate() {
                let applied = command
                    .apply(&mut scratch)
                    .map_err(|e| e.within(&format!("batch[{i}]")))?;
                results.push(applied);
            }
            *state = scratch;
            return Ok(Applied::Batch(results));
        }
        match self {
            Command::Audited { command, .. } => {
                return match **command {
                    Command::Audited { .. } => Err(nested_audit()),
                    ref inner => inner.apply(state),
                }
            }
            Command::RollbackPolicy { to } => {
                let batch = state.history.rollback(state, *to)?;
                return batch.apply(state).map(|_| Applied::Done);
            }
            _ => {}
        }
        validate::command(self, state)?;
        if self.changes_policy() {
            state.policy_revision += 1;
        }
        Ok(self.apply_valid(state))
    }

    /// Whether the command changes anything but the alert log and the
    /// baseline's record of flows and decisions, and the nodes'
    /// inventories.
    fn changes_policy(&self) -> bool {
        !matches!(
            self,
            Command::RaiseAlerts { .. }
                | Command::AckDelivery { .. }
                | Command::LearnEdges { .. }
                | Command::ReportInventory(_)
                | Command::PublishTunnelKey(_)
                | Command::RecordBackup(_)
                | Command::DecideLinks {
                    decision: LinkChoice::Snooze | LinkChoice::Deny,
                    ..
                }
        )
    }

    /// Applies a command that [`validate::command`] accepted.
    fn apply_valid(&self, state: &mut ClusterState) -> Applied {
        match self.clone() {
            Command::UpsertZone {
                id,
                name,
                mode,
                description,
            } => {
                let id = match state.zones.get(&name) {
                    Some(existing) => existing.id,
                    None => id.unwrap_or(ZoneId(state.next_zone_id)),
                };
                state.next_zone_id = state.next_zone_id.max(id.0 + 1);
                state.zones.insert(
                    name.clone(),
                    Zone {
                        id,
                        name,
                        mode,
                        description,
                    },
                );
                Applied::Zone(id)
            }
            Command::RemoveZone { name } => {
                state.baseline.forget_zone(&name);
                state.zones.remove(&name);
                Applied::Done
            }
            Command::DefineIdentity { id, name } => {
                let id = id.unwrap_or(IdentityId(state.next_identity_id));
                state.next_identity_id = state.next_identity_id.max(id.0 + 1);
                state.identities.insert(id, Identity { id, name });
                Applied::Identity(id)
            }
            Command::RemoveIdentity { name } => {
                state.baseline.forget_identity(&name);
                state.identities.retain(|_, i| i.name != name);
                Applied::Done
            }
            Command::UpsertIdentityRule(rule) => {
                state.identity_rules.insert(rule.name.clone(), rule);
                Applied::Done
            }
            Command::RemoveIdentityRule { name } => {
                state.identity_rules.remove(&name);
                Applied::Done
            }
            Command::RegisterFingerprint(fingerprint) => {
                state.fingerprints.insert(fingerprint.sha256, fingerprint);
                Applied::Done
            }
            Command::RemoveFingerprint { sha256 } => {
                state.fingerprints.remove(&sha256);
                Applied::Done
            }
            Command::UpsertRule { id, spec } => Applied::Rule(upsert_rule(state, id, spec)),
            Command::RemoveRule { id } => {
                state.rules.remove(&id);
                Applied::Done
            }
            Command::UpsertEndpoint(endpoint) => {
                state.endpoints.insert(endpoint.key(), endpoint);
                Applied::Done
            }
            Command::RemoveEndpoint { ip, port } => {
                state.endpoints.remove(&EndpointKey { ip, port });
                Applied::Done
            }
            Command::UpsertNode(node) => {
                state.nodes.insert(node.id, node);
                Applied::Done
            }
            Command::RemoveNode { id } => {
                state.nodes.remove(&id);
                state.inventory.remove(&id);
                state.tunnel_keys.remove(&id);
                Applied::Done
            }
            Command::UpsertSink(sink) => {
                state.alerts.add_sink(&sink.name);
                state.sinks.insert(sink.name.clone(), sink);
                Applied::Done
            }
            Command::RemoveSink { name } => {
                state.alerts.remove_sink(&name);
                state.sinks.remove(&name);
                Applied::Done
            }
            Command::RaiseAlerts { alerts } => {
                let retention = state.settings.alert_retention as usize;
                state.alerts.append(&alerts, retention);
                Applied::Done
            }
            Command::AckDelivery {
                sink,
                through,
                at_ms,
            } => {
                state.alerts.acknowledge(&sink, through, at_ms);
                Applied::Done
            }
            Command::LearnEdges { node, edges } => {
                // `learn` reads the rest of the state (zones, identities)
                // while the baseline changes.
                let mut baseline = std::mem::take(&mut state.baseline);
                let max = state.settings.baseline_max_edges as usize;
                baseline.learn(state, node, &edges, max);
                state.baseline = baseline;
                Applied::Done
            }
            Command::DecideLinks {
                links,
                decision,
                at_ms,
            } => {
                let mut created = Vec::new();
                if decision == LinkChoice::Accept {
                    for spec in learned_rules(&links) {
                        if !state.rules.values().any(|r| r.spec == spec) {
                            created.push(upsert_rule(state, None, spec));
                        }
                    }
                }
                state.baseline.decide(&links, decision, at_ms);
                match decision {
                    LinkChoice::Accept => Applied::Rules(created),
                    LinkChoice::Snooze | LinkChoice::Deny => Applied::Done,
                }
            }
            Command::SetSettings(settings) => {
                state.settings = settings;
                Applied::Done
            }
            Command::ReportInventory(inventory) => {
                state.inventory.insert(inventory.node, inventory);
                Applied::Done
            }
            Command::PublishTunnelKey(key) => {
                state.tunnel_keys.insert(key.node, key);
                Applied::Done
            }
            Command::Access(access) => match access.apply_valid(state) {
                Some(node) => Applied::Node(node),
                None => Applied::Done,
            },
            Command::Restore {
                backup,
                allow_foreign,
                keep_token,
            } => {
                // Checked by `validate::command` just before: the same
                // checks on the same state cannot fail now.
                match check_restore(&backup, allow_foreign, keep_token.as_deref(), state) {
                    Ok(opened) => {
                        opened.state.put_into(state, keep_token.as_deref());
                        let retention = state.settings.audit_retention as usize;
                        state.audit.add_restored(opened.audit, retention);
                    }
                    Err(e) => unreachable!("a validated restore failed: {e}"),
                }
                Applied::Done
            }
            Command::RecordBackup(record) => {
                state.last_backup = Some(record);
                Applied::Done
            }
            Command::Batch { .. } | Command::Audited { .. } | Command::RollbackPolicy { .. } => {
                unreachable!("batches, audited commands and rollbacks are applied by `apply`")
            }
        }
    }
}

fn nested_audit() -> ValidationError {
    ValidationError::new("command", "an audited command cannot hold another one")
}

/// Creates the rule `spec` under a new number, or replaces rule `id`: the one
/// place rule numbers are allocated.
fn upsert_rule(state: &mut ClusterState, id: Option<RuleId>, spec: RuleSpec) -> RuleId {
    let id = id.unwrap_or(RuleId(state.next_rule_id));
    state.next_rule_id = state.next_rule_id.max(id.0 + 1);
    state.rules.insert(id, Rule { id, spec });
    id
}
