//! Policy as code: the whole policy as one reviewable TOML document.
//!
//! A document holds the settings, zones, identities, identity rules,
//! fingerprints, rules and alert sinks — what people decide. Endpoints and
//! nodes are what the cluster observes and are not part of it. Export writes
//! every number, so a document imported into a new cluster gives every zone,
//! identity and rule the number it had; numbers may be left out of new
//! objects and are then allocated. Secrets are exported as a marker, and a
//! marker on import keeps the secret the cluster already holds.
//!
//! Import turns a document into one batch of commands that makes the
//! cluster's policy equal to the document: it is validated as a whole and
//! takes effect all together or not at all.

use serde::{Deserialize, Serialize};

use crate::command::Command;
use crate::error::{DocumentError, ValidationError};
use crate::ids::{IdentityId, RuleId, ZoneId};
use crate::state::{ClusterState, Settings};
use crate::{
    Action, AlertSink, Fingerprint, IdentityName, IdentityRule, Mode, Peer, PortRange, Protocol,
    RuleSpec, Secret,
};

/// A zone as written in a document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocZone {
    /// Its number; allocated on import when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<ZoneId>,
    /// Its name.
    pub name: String,
    /// Its mode.
    pub mode: Mode,
    /// Free text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// An identity as written in a document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocIdentity {
    /// Its number; allocated on import when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<IdentityId>,
    /// Its zone.
    pub zone: String,
    /// Its app.
    pub app: String,
    /// Its service.
    pub service: String,
}

impl DocIdentity {
    fn name(&self) -> IdentityName {
        IdentityName {
            zone: self.zone.clone(),
            app: self.app.clone(),
            service: self.service.clone(),
        }
    }
}

/// A rule as written in a document (the fields of [`RuleSpec`], plus its
/// number).
///
/// The fields are spelled out rather than flattened from [`RuleSpec`]: serde
/// cannot refuse unknown fields through `flatten`, and a misspelt `port =` in a
/// firewall policy must be an error, not a rule for every port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocRule {
    /// Its number; allocated on import when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<RuleId>,
    /// Who opens the connection.
    pub from: Peer,
    /// Who is connected to.
    pub to: Peer,
    /// Which transport protocol.
    pub protocol: Protocol,
    /// Destination ports; every port when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortRange>,
    /// Allow or deny.
    pub action: Action,
    /// Carry the flow through the Noise tunnel.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub encrypt: bool,
    /// Team that owns the rule.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub owner: String,
    /// Why the rule exists.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

impl DocRule {
    /// The rule `spec` as written in a document, with its number if it has
    /// one.
    pub(crate) fn from_spec(id: Option<RuleId>, spec: &RuleSpec) -> Self {
        let spec = spec.clone();
        DocRule {
            id,
            from: spec.from,
            to: spec.to,
            protocol: spec.protocol,
            ports: spec.ports,
            action: spec.action,
            encrypt: spec.encrypt,
            owner: spec.owner,
            description: spec.description,
        }
    }

    fn spec(&self) -> RuleSpec {
        let r = self.clone();
        RuleSpec {
            from: r.from,
            to: r.to,
            protocol: r.protocol,
            ports: r.ports,
            action: r.action,
            encrypt: r.encrypt,
            owner: r.owner,
            description: r.description,
        }
    }
}

/// Whether an export shows secrets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Secrets {
    /// Replace them with [`Secret::REDACTED`] (for review and version
    /// control).
    Redact,
    /// Write them out (for a backup kept as safely as the cluster's data).
    Reveal,
}

/// The whole policy of a cluster, as people review it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    /// Cluster-wide settings.
    #[serde(default)]
    pub settings: Settings,
    /// Zones.
    #[serde(default, rename = "zone", skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<DocZone>,
    /// Identities.
    #[serde(default, rename = "identity", skip_serializing_if = "Vec::is_empty")]
    pub identities: Vec<DocIdentity>,
    /// Identity rules.
    #[serde(
        default,
        rename = "identity_rule",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub identity_rules: Vec<IdentityRule>,
    /// Registered binaries.
    #[serde(default, rename = "fingerprint", skip_serializing_if = "Vec::is_empty")]
    pub fingerprints: Vec<Fingerprint>,
    /// Rules.
    #[serde(default, rename = "rule", skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<DocRule>,
    /// Alert sinks.
    #[serde(default, rename = "sink", skip_serializing_if = "Vec::is_empty")]
    pub sinks: Vec<AlertSink>,
}

impl PolicyDocument {
    /// Reads a document from TOML text; the error says where it is wrong.
    pub fn parse(text: &str) -> Result<Self, DocumentError> {
        Ok(toml::from_str(text)?)
    }

    /// Writes the document as TOML.
    pub fn to_toml(&self) -> Result<String, DocumentError> {
        Ok(toml::to_string_pretty(self)?)
    }

    /// The policy part of `state`, with every number written out.
    pub fn export(state: &ClusterState, secrets: Secrets) -> Self {
        let sinks = state
            .sinks
            .values()
            .cloned()
            .map(|mut sink| {
                if secrets == Secrets::Redact {
                    for secret in sink.target.secrets_mut() {
                        *secret = Secret(Secret::REDACTED.into());
                    }
                }
                sink
            })
            .collect();
        PolicyDocument {
            settings: state.settings.clone(),
            zones: state
                .zones
                .values()
                .map(|z| DocZone {
                    id: Some(z.id),
                    name: z.name.clone(),
                    mode: z.mode,
                    description: z.description.clone(),
                })
                .collect(),
            identities: state
                .identities
                .values()
                .map(|i| DocIdentity {
                    id: Some(i.id),
                    zone: i.name.zone.clone(),
                    app: i.name.app.clone(),
                    service: i.name.service.clone(),
                })
                .collect(),
            identity_rules: state.identity_rules.values().cloned().collect(),
            fingerprints: state.fingerprints.values().cloned().collect(),
            rules: state
                .rules
                .values()
                .map(|r| DocRule::from_spec(Some(r.id), &r.spec))
                .collect(),
            sinks,
        }
    }

    /// The same document with every secret replaced by
    /// [`Secret::REDACTED`], for showing.
    pub fn redacted(mut self) -> Self {
        for sink in &mut self.sinks {
            for secret in sink.target.secrets_mut() {
                *secret = Secret(Secret::REDACTED.into());
            }
        }
        self
    }

    /// The batch of commands that makes the policy of `state` equal to this
    /// document, validated as a whole against `state`. The error names the
    /// document entry at fault, e.g. `rule[2].to.zone`.
    pub fn import(&self, state: &ClusterState) -> Result<Command, ValidationError> {
        self.check_unique()?;
        let steps = self.steps(state);
        let mut scratch = state.clone();
        for (place, command) in &steps {
            command.apply(&mut scratch).map_err(|e| e.within(place))?;
        }
        Ok(Command::batch(steps.into_iter().map(|(_, c)| c).collect()))
    }

    /// Every entry names something distinct: two zones of one name would
    /// otherwise silently overwrite each other.
    fn check_unique(&self) -> Result<(), ValidationError> {
        fn unique<K: Ord + std::fmt::Display>(
            section: &str,
            keys: impl Iterator<Item = K>,
        ) -> Result<(), ValidationError> {
            let mut seen = std::collections::BTreeSet::new();
            for (i, key) in keys.enumerate() {
                let shown = key.to_string();
                if !seen.insert(key) {
                    return Err(ValidationError::new(
                        format!("{section}[{i}]"),
                        format!("`{shown}` appears more than once"),
                    ));
                }
            }
            Ok(())
        }
        unique("zone", self.zones.iter().map(|z| z.name.clone()))?;
        unique(
            "zone",
            self.zones.iter().filter_map(|z| z.id.map(|id| id.0)),
        )?;
        unique("identity", self.identities.iter().map(|i| i.name()))?;
        unique(
            "identity",
            self.identities.iter().filter_map(|i| i.id.map(|id| id.0)),
        )?;
        unique(
            "identity_rule",
            self.identity_rules.iter().map(|r| r.name.clone()),
        )?;
        unique("fingerprint", self.fingerprints.iter().map(|f| f.sha256))?;
        unique(
            "rule",
            self.rules.iter().filter_map(|r| r.id.map(|id| id.0)),
        )?;
        unique("sink", self.sinks.iter().map(|s| s.name.clone()))
    }

    /// The commands, each with the document entry it comes from: removals
    /// first (dependants before what they depend on), then additions and
    /// changes (what is depended on first).
    fn steps(&self, state: &ClusterState) -> Vec<(String, Command)> {
        let mut steps = Vec::new();

        // Removals of what the document no longer holds, or holds under
        // another number (a number cannot change in place).
        for id in state.rules.keys() {
            if !self.rules.iter().any(|r| r.id == Some(*id)) {
                steps.push((format!("rule {}", id.0), Command::RemoveRule { id: *id }));
            }
        }
        for name in state.sinks.keys() {
            if !self.sinks.iter().any(|s| s.name == *name) {
                steps.push((
                    format!("sink {name}"),
                    Command::RemoveSink { name: name.clone() },
                ));
            }
        }
        for (sha256, fp) in &state.fingerprints {
            if !self
                .fingerprints
                .iter()
                .any(|f| f.sha256 == *sha256 && f.identity == fp.identity)
            {
                steps.push((
                    format!("fingerprint {sha256}"),
                    Command::RemoveFingerprint { sha256: *sha256 },
                ));
            }
        }
        for name in state.identity_rules.keys() {
            if !self.identity_rules.iter().any(|r| r.name == *name) {
                steps.push((
                    format!("identity_rule {name}"),
                    Command::RemoveIdentityRule { name: name.clone() },
                ));
            }
        }
        for identity in state.identities.values() {
            let kept = self
                .identities
                .iter()
                .any(|d| d.name() == identity.name && d.id.is_none_or(|id| id == identity.id));
            if !kept {
                steps.push((
                    format!("identity {}", identity.name),
                    Command::RemoveIdentity {
                        name: identity.name.clone(),
                    },
                ));
            }
        }
        for zone in state.zones.values() {
            let kept = self
                .zones
                .iter()
                .any(|d| d.name == zone.name && d.id.is_none_or(|id| id == zone.id));
            if !kept {
                steps.push((
                    format!("zone {}", zone.name),
                    Command::RemoveZone {
                        name: zone.name.clone(),
                    },
                ));
            }
        }

        // Additions and changes.
        if self.settings != state.settings {
            steps.push((
                "settings".into(),
                Command::SetSettings(self.settings.clone()),
            ));
        }
        for (i, zone) in self.zones.iter().enumerate() {
            let current = state.zones.get(&zone.name);
            let same = current.is_some_and(|z| {
                zone.id.is_none_or(|id| id == z.id)
                    && z.mode == zone.mode
                    && z.description == zone.description
            });
            if !same {
                steps.push((
                    format!("zone[{i}]"),
                    Command::UpsertZone {
                        id: zone.id,
                        name: zone.name.clone(),
                        mode: zone.mode,
                        description: zone.description.clone(),
                    },
                ));
            }
        }
        for (i, identity) in self.identities.iter().enumerate() {
            let current = state.identity_by_name(&identity.name());
            let defined = current.is_some_and(|c| identity.id.is_none_or(|id| id == c.id));
            if !defined {
                steps.push((
                    format!("identity[{i}]"),
                    Command::DefineIdentity {
                        id: identity.id,
                        name: identity.name(),
                    },
                ));
            }
        }
        for (i, rule) in self.identity_rules.iter().enumerate() {
            if state.identity_rules.get(&rule.name) != Some(rule) {
                steps.push((
                    format!("identity_rule[{i}]"),
                    Command::UpsertIdentityRule(rule.clone()),
                ));
            }
        }
        for (i, fp) in self.fingerprints.iter().enumerate() {
            if state.fingerprints.get(&fp.sha256) != Some(fp) {
                steps.push((
                    format!("fingerprint[{i}]"),
                    Command::RegisterFingerprint(fp.clone()),
                ));
            }
        }
        for (i, sink) in self.sinks.iter().enumerate() {
            let sink = with_kept_secrets(sink, state.sinks.get(&sink.name));
            if state.sinks.get(&sink.name) != Some(&sink) {
                steps.push((format!("sink[{i}]"), Command::UpsertSink(sink)));
            }
        }
        for (i, rule) in self.rules.iter().enumerate() {
            let spec = rule.spec();
            let unchanged = rule
                .id
                .and_then(|id| state.rules.get(&id))
                .is_some_and(|current| current.spec == spec);
            if !unchanged {
                steps.push((
                    format!("rule[{i}]"),
                    Command::UpsertRule { id: rule.id, spec },
                ));
            }
        }
        steps
    }
}

/// A sink whose redacted secrets are replaced by those the cluster holds for
/// the sink of that name (when the kind of target is unchanged).
fn with_kept_secrets(sink: &AlertSink, current: Option<&AlertSink>) -> AlertSink {
    let mut sink = sink.clone();
    let Some(current) = current else { return sink };
    if std::mem::discriminant(&sink.target) != std::mem::discriminant(&current.target) {
        return sink;
    }
    for (secret, kept) in sink
        .target
        .secrets_mut()
        .into_iter()
        .zip(current.target.secrets())
    {
        if secret.is_redacted() {
            *secret = kept.clone();
        }
    }
    sink
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::sample;
    use crate::{diff, Severity, SinkTarget};

    fn with_sink(mut state: ClusterState) -> ClusterState {
        Command::UpsertSink(AlertSink {
            name: "prod-team".into(),
            target: SinkTarget::Slack {
                webhook_url: Secret("https://hooks.slack.test/T/B/secret".into()),
            },
            min_severity: Severity::Warning,
            zones: vec!["prod".into()],
            apps: vec![],
            classes: vec![],
            max_per_minute: None,
            audit: false,
        })
        .apply(&mut state)
        .expect("valid sink");
        state
    }

    #[test]
    fn export_import_into_a_new_cluster_keeps_every_number() {
        let state = with_sink(sample());
        let text = PolicyDocument::export(&state, Secrets::Reveal)
            .to_toml()
            .expect("writes");
        let doc = PolicyDocument::parse(&text).expect("reads back");
        let mut fresh = ClusterState::new();
        doc.import(&fresh)
            .expect("valid import")
            .apply(&mut fresh)
            .expect("applies");
        assert_eq!(
            PolicyDocument::export(&fresh, Secrets::Reveal),
            PolicyDocument::export(&state, Secrets::Reveal)
        );
    }

    #[test]
    fn redacted_export_hides_secrets_and_reimports_as_no_change() {
        let state = with_sink(sample());
        let text = PolicyDocument::export(&state, Secrets::Redact)
            .to_toml()
            .expect("writes");
        assert!(!text.contains("secret"), "{text}");
        let batch = PolicyDocument::parse(&text)
            .expect("reads back")
            .import(&state)
            .expect("valid import");
        assert_eq!(batch, Command::batch(vec![]));
    }

    #[test]
    fn import_changes_only_what_differs_and_diff_shows_it() {
        let state = sample();
        let before = PolicyDocument::export(&state, Secrets::Redact);
        let mut after = before.clone();
        after.zones[0].mode = Mode::Alert; // `dev` sorts first
        after.rules.push(DocRule {
            id: None,
            ..after.rules[0].clone()
        });
        let batch = after.import(&state).expect("valid");
        let Command::Batch { commands } = batch else {
            panic!("import gives a batch")
        };
        assert_eq!(commands.len(), 2, "{commands:?}");
        let shown = diff(&before, &after).to_string();
        assert!(shown.contains("~ zone dev"), "{shown}");
        assert!(shown.contains("+ rule new #1"), "{shown}");
    }

    #[test]
    fn import_names_the_entry_at_fault_and_changes_nothing() {
        let state = sample();
        let mut doc = PolicyDocument::export(&state, Secrets::Redact);
        doc.rules[0].to = Peer::App(crate::AppSelector {
            zone: "nowhere".into(),
            app: None,
            service: None,
        });
        let err = doc.import(&state).expect_err("unknown zone");
        assert_eq!(err.field, "rule[0].to.zone");
        let dup = PolicyDocument {
            zones: vec![doc.zones[0].clone(), doc.zones[0].clone()],
            ..PolicyDocument::default()
        };
        assert_eq!(dup.import(&state).expect_err("duplicate").field, "zone[1]");
    }

    #[test]
    fn parse_errors_point_at_the_bad_value() {
        let text = r#"
            [[zone]]
            name = "prod"
            mode = "enforce"

            [[rule]]
            from = { zone = "prod" }
            to = { cidr = "10.0.0.300/8" }
            protocol = "tcp"
            action = "allow"
        "#;
        let err = PolicyDocument::parse(text)
            .expect_err("bad cidr")
            .to_string();
        assert!(err.contains("cidr `10.0.0.300/8`"), "{err}");
        let typo = "[[zone]]\nname = \"prod\"\nmod = \"enforce\"\n";
        let err = PolicyDocument::parse(typo)
            .expect_err("unknown field")
            .to_string();
        assert!(err.contains("mod"), "{err}");
    }
}
