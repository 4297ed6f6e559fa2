//! Policy history: every version of the policy document within a bounded
//! window, with who made it and what changed, and the rollback to any of
//! them.
//!
//! A version is the Raft log index of a write that changed the policy
//! document (settings, zones, identities, identity rules, fingerprints,
//! rules, sinks — see [`PolicyDocument`]). The history keeps, per version,
//! each entry that changed with its value before and after (secrets
//! included: the history is part of the replicated state, which holds them
//! anyway; replies redact them). That is a reversible diff: the policy as
//! it was at an earlier version is the current one with the diffs of every
//! later version undone, newest first. Only the newest versions are kept
//! ([`Settings::history_retention`], and at most [`MAX_HISTORY_CHANGES`]
//! changed entries in all), so memory stays bounded.
//!
//! [`Settings::history_retention`]: crate::Settings::history_retention

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::audit::Author;
use crate::diff::{Change, DiffEntry, PolicyDiff};
use crate::document::{DocIdentity, DocRule, DocZone, PolicyDocument, Secrets};
use crate::error::ValidationError;
use crate::state::{ClusterState, Settings};
use crate::{AlertSink, Fingerprint, IdentityRule, Secret};

#[cfg(test)]
mod tests;

/// The most changed entries the history holds over all its versions; the
/// oldest versions are dropped past it (the newest is always kept).
pub const MAX_HISTORY_CHANGES: usize = 20_000;

/// A section of the policy document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Section {
    /// The cluster-wide settings.
    Settings,
    /// Zones, by name.
    Zone,
    /// Identities, by `zone/app/service`.
    Identity,
    /// Identity rules, by name.
    IdentityRule,
    /// Registered binaries, by digest.
    Fingerprint,
    /// Rules, by number.
    Rule,
    /// Alert sinks, by name.
    Sink,
}

impl Section {
    /// The section's name, as [`PolicyDiff`] writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Section::Settings => "settings",
            Section::Zone => "zone",
            Section::Identity => "identity",
            Section::IdentityRule => "identity_rule",
            Section::Fingerprint => "fingerprint",
            Section::Rule => "rule",
            Section::Sink => "sink",
        }
    }
}

/// One entry of the policy document, whole.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocEntry {
    /// The settings.
    Settings(Settings),
    /// A zone.
    Zone(DocZone),
    /// An identity.
    Identity(DocIdentity),
    /// An identity rule.
    IdentityRule(IdentityRule),
    /// A registered binary.
    Fingerprint(Fingerprint),
    /// A rule.
    Rule(DocRule),
    /// An alert sink, with its secrets.
    Sink(AlertSink),
}

impl DocEntry {
    /// The entry as compact JSON, secrets redacted.
    fn render_redacted(&self) -> String {
        let rendered = match self {
            DocEntry::Sink(sink) => {
                let mut sink = sink.clone();
                for secret in sink.target.secrets_mut() {
                    *secret = Secret(Secret::REDACTED.into());
                }
                serde_json::to_string(&sink)
            }
            DocEntry::Settings(e) => serde_json::to_string(e),
            DocEntry::Zone(e) => serde_json::to_string(e),
            DocEntry::Identity(e) => serde_json::to_string(e),
            DocEntry::IdentityRule(e) => serde_json::to_string(e),
            DocEntry::Fingerprint(e) => serde_json::to_string(e),
            DocEntry::Rule(e) => serde_json::to_string(e),
        };
        rendered.unwrap_or_else(|e| format!("<unrenderable: {e}>"))
    }
}

/// Every entry of a document, by section and key.
type Entries = BTreeMap<(Section, String), DocEntry>;

fn entries(doc: &PolicyDocument) -> Entries {
    let mut out = Entries::new();
    out.insert(
        (Section::Settings, "settings".into()),
        DocEntry::Settings(doc.settings.clone()),
    );
    for z in &doc.zones {
        out.insert((Section::Zone, z.name.clone()), DocEntry::Zone(z.clone()));
    }
    for i in &doc.identities {
        let key = format!("{}/{}/{}", i.zone, i.app, i.service);
        out.insert((Section::Identity, key), DocEntry::Identity(i.clone()));
    }
    for r in &doc.identity_rules {
        out.insert(
            (Section::IdentityRule, r.name.clone()),
            DocEntry::IdentityRule(r.clone()),
        );
    }
    for f in &doc.fingerprints {
        out.insert(
            (Section::Fingerprint, f.sha256.to_string()),
            DocEntry::Fingerprint(f.clone()),
        );
    }
    for (i, r) in doc.rules.iter().enumerate() {
        let key =
            r.id.map_or_else(|| format!("new #{i}"), |id| id.0.to_string());
        out.insert((Section::Rule, key), DocEntry::Rule(r.clone()));
    }
    for s in &doc.sinks {
        out.insert((Section::Sink, s.name.clone()), DocEntry::Sink(s.clone()));
    }
    out
}

/// The document these entries make, each section in export order.
fn document(entries: Entries) -> PolicyDocument {
    let mut doc = PolicyDocument::default();
    for (_, entry) in entries {
        match entry {
            DocEntry::Settings(s) => doc.settings = s,
            DocEntry::Zone(z) => doc.zones.push(z),
            DocEntry::Identity(i) => doc.identities.push(i),
            DocEntry::IdentityRule(r) => doc.identity_rules.push(r),
            DocEntry::Fingerprint(f) => doc.fingerprints.push(f),
            DocEntry::Rule(r) => doc.rules.push(r),
            DocEntry::Sink(s) => doc.sinks.push(s),
        }
    }
    // Export orders identities and rules by number, not by name.
    doc.identities.sort_by_key(|i| i.id);
    doc.rules.sort_by_key(|r| r.id);
    doc
}

/// One entry that a version changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionChange {
    /// Its section.
    pub section: Section,
    /// What names it in its section.
    pub key: String,
    /// The entry before the version; absent when the version added it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<DocEntry>,
    /// The entry after the version; absent when the version removed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<DocEntry>,
}

/// One version of the policy: what it changed and who changed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyVersion {
    /// The Raft log index that made it.
    pub version: u64,
    /// When the change was asked for (ms since the Unix epoch); absent for
    /// changes nodes made on their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_ms: Option<u64>,
    /// The tokens that made it (several when writes shared the log entry);
    /// empty for changes nodes made on their own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authors: Vec<Author>,
    /// The version it rolled back to, for a rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_to: Option<u64>,
    /// The entries that changed, by section and key.
    pub changes: Vec<VersionChange>,
}

/// How many entries a version added, removed and changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChangeCounts {
    /// Entries added.
    pub added: usize,
    /// Entries removed.
    pub removed: usize,
    /// Entries changed.
    pub changed: usize,
}

impl PolicyVersion {
    /// How many entries it added, removed and changed.
    pub fn counts(&self) -> ChangeCounts {
        let mut counts = ChangeCounts::default();
        for change in &self.changes {
            match (&change.before, &change.after) {
                (None, Some(_)) => counts.added += 1,
                (Some(_), None) => counts.removed += 1,
                _ => counts.changed += 1,
            }
        }
        counts
    }

    /// What it changed, as a reviewer reads it, secrets redacted.
    pub fn diff(&self) -> PolicyDiff {
        let entries = self
            .changes
            .iter()
            .filter_map(|c| {
                let change = match (&c.before, &c.after) {
                    (None, Some(a)) => Change::Added {
                        after: a.render_redacted(),
                    },
                    (Some(b), None) => Change::Removed {
                        before: b.render_redacted(),
                    },
                    (Some(b), Some(a)) => Change::Changed {
                        before: b.render_redacted(),
                        after: a.render_redacted(),
                    },
                    (None, None) => return None,
                };
                Some(DiffEntry {
                    section: c.section.as_str(),
                    key: c.key.clone(),
                    change,
                })
            })
            .collect();
        PolicyDiff { entries }
    }
}

/// Who made a version, as the state machine knows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VersionMeta {
    /// When it was asked for.
    pub at_ms: Option<u64>,
    /// The token that asked, if any.
    pub author: Option<Author>,
    /// The version a rollback restored.
    pub rollback_to: Option<u64>,
}

/// The versions of the policy still held, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PolicyHistory {
    /// The versions, oldest first, at most one per log index.
    pub versions: VecDeque<PolicyVersion>,
    /// Versions dropped to stay within the retention, in all.
    pub trimmed: u64,
}

/// The document as the history tracks it: everything, secrets included.
pub(crate) fn snapshot(state: &ClusterState) -> PolicyDocument {
    PolicyDocument::export(state, Secrets::Reveal)
}

impl PolicyHistory {
    /// The oldest version still held: the earliest a rollback can reach.
    pub fn oldest(&self) -> Option<u64> {
        self.versions.front().map(|v| v.version)
    }

    /// The version with this index, if held.
    pub fn get(&self, version: u64) -> Option<&PolicyVersion> {
        self.versions
            .binary_search_by_key(&version, |v| v.version)
            .ok()
            .map(|i| &self.versions[i])
    }

    /// Records what changed from `before` to `after` at `version`, merged
    /// into that version when other writes of the same log entry changed
    /// the policy too; then drops the oldest versions past `retention`
    /// versions or [`MAX_HISTORY_CHANGES`] entries. Records nothing when
    /// nothing changed.
    pub fn record(
        &mut self,
        version: u64,
        meta: VersionMeta,
        before: &PolicyDocument,
        after: &PolicyDocument,
        retention: usize,
    ) {
        let (a, b) = (entries(before), entries(after));
        let mut changes: Vec<VersionChange> = Vec::new();
        let keys: std::collections::BTreeSet<&(Section, String)> =
            a.keys().chain(b.keys()).collect();
        for key in keys {
            let (x, y) = (a.get(key), b.get(key));
            if x != y {
                changes.push(VersionChange {
                    section: key.0,
                    key: key.1.clone(),
                    before: x.cloned(),
                    after: y.cloned(),
                });
            }
        }
        if changes.is_empty() {
            return;
        }
        match self.versions.back_mut() {
            Some(last) if last.version == version => {
                merge(last, changes, meta);
                if last.changes.is_empty() {
                    self.versions.pop_back();
                }
            }
            _ => self.versions.push_back(PolicyVersion {
                version,
                at_ms: meta.at_ms,
                authors: meta.author.into_iter().collect(),
                rollback_to: meta.rollback_to,
                changes,
            }),
        }
        self.trim(retention);
    }

    fn trim(&mut self, retention: usize) {
        let mut total: usize = self.versions.iter().map(|v| v.changes.len()).sum();
        while self.versions.len() > 1
            && (self.versions.len() > retention.max(1) || total > MAX_HISTORY_CHANGES)
        {
            if let Some(dropped) = self.versions.pop_front() {
                total -= dropped.changes.len();
                self.trimmed += 1;
            }
        }
    }

    /// The policy document as it was right after `version`, secrets
    /// included, given the `current` one: the diffs of every later version
    /// undone, newest first.
    ///
    /// Fails, naming the oldest version held, when `version` is older than
    /// it, and when no version is held at all.
    pub fn document_at(
        &self,
        current: &PolicyDocument,
        version: u64,
    ) -> Result<PolicyDocument, ValidationError> {
        let Some(oldest) = self.oldest() else {
            return Err(ValidationError::new(
                "to",
                "no policy version is held yet: the history starts with the next change",
            ));
        };
        if version < oldest {
            return Err(ValidationError::new(
                "to",
                format!(
                    "version {version} is older than the oldest policy version kept ({oldest}); \
                     settings.history_retention bounds how many are kept"
                ),
            ));
        }
        let mut doc = entries(current);
        for later in self
            .versions
            .iter()
            .rev()
            .take_while(|v| v.version > version)
        {
            for change in later.changes.iter().rev() {
                let key = (change.section, change.key.clone());
                match &change.before {
                    Some(entry) => doc.insert(key, entry.clone()),
                    None => doc.remove(&key),
                };
            }
        }
        Ok(document(doc))
    }

    /// The batch that makes the policy of `state` what it was right after
    /// `version`, validated against `state`. Fails when `version` is not
    /// held, when nothing changed since, or when the old policy cannot be
    /// restored over what the cluster holds now (the error names the entry).
    pub fn rollback(
        &self,
        state: &ClusterState,
        version: u64,
    ) -> Result<crate::Command, ValidationError> {
        let target = self.document_at(&snapshot(state), version)?;
        let batch = target.import(state).map_err(|e| e.within("to"))?;
        if matches!(&batch, crate::Command::Batch { commands } if commands.is_empty()) {
            return Err(ValidationError::new(
                "to",
                format!("the policy has not changed since version {version}"),
            ));
        }
        Ok(batch)
    }
}

/// Folds `changes` into `last`, the version of the same log entry: an entry
/// changed twice keeps its first `before` and its last `after`, and drops
/// out when they are equal.
fn merge(last: &mut PolicyVersion, changes: Vec<VersionChange>, meta: VersionMeta) {
    let mut by_key: BTreeMap<(Section, String), VersionChange> = last
        .changes
        .drain(..)
        .map(|c| ((c.section, c.key.clone()), c))
        .collect();
    for change in changes {
        let key = (change.section, change.key.clone());
        match by_key.get_mut(&key) {
            Some(existing) => existing.after = change.after,
            None => {
                by_key.insert(key, change);
            }
        }
    }
    last.changes = by_key
        .into_values()
        .filter(|c| c.before != c.after)
        .collect();
    if let Some(author) = meta.author {
        if !last.authors.contains(&author) {
            last.authors.push(author);
        }
    }
    last.at_ms = last.at_ms.or(meta.at_ms);
    last.rollback_to = last.rollback_to.or(meta.rollback_to);
}
