//! The difference between two policy documents, for review.
//!
//! Entries are matched by what names them (a zone by its name, a rule by its
//! number, a fingerprint by its digest, …), so a reviewer sees "rule 17
//! changed" rather than a text diff of reordered lines.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::document::PolicyDocument;

/// How one entry differs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Change {
    /// Only in the second document.
    Added {
        /// The entry, as compact JSON.
        after: String,
    },
    /// Only in the first document.
    Removed {
        /// The entry, as compact JSON.
        before: String,
    },
    /// In both, different.
    Changed {
        /// The entry in the first document.
        before: String,
        /// The entry in the second document.
        after: String,
    },
}

/// One entry that differs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DiffEntry {
    /// The section (`zone`, `rule`, …).
    pub section: &'static str,
    /// What names the entry in its section.
    pub key: String,
    /// How it differs.
    pub change: Change,
}

/// Every entry that differs between two documents, section by section.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PolicyDiff {
    /// The entries, in document section order and then key order.
    pub entries: Vec<DiffEntry>,
}

impl PolicyDiff {
    /// Whether the documents say the same.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// What changes from `before` to `after`.
pub fn diff(before: &PolicyDocument, after: &PolicyDocument) -> PolicyDiff {
    let mut entries = Vec::new();
    let mut section =
        |name: &'static str, a: BTreeMap<String, String>, b: BTreeMap<String, String>| {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let change = match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) if x == y => continue,
                    (Some(x), Some(y)) => Change::Changed {
                        before: x.clone(),
                        after: y.clone(),
                    },
                    (Some(x), None) => Change::Removed { before: x.clone() },
                    (None, Some(y)) => Change::Added { after: y.clone() },
                    (None, None) => continue,
                };
                entries.push(DiffEntry {
                    section: name,
                    key: key.clone(),
                    change,
                });
            }
        };
    section(
        "settings",
        keyed([&before.settings], |_| "settings".into()),
        keyed([&after.settings], |_| "settings".into()),
    );
    section(
        "zone",
        keyed(&before.zones, |z| z.name.clone()),
        keyed(&after.zones, |z| z.name.clone()),
    );
    section(
        "identity",
        keyed(&before.identities, |i| {
            format!("{}/{}/{}", i.zone, i.app, i.service)
        }),
        keyed(&after.identities, |i| {
            format!("{}/{}/{}", i.zone, i.app, i.service)
        }),
    );
    section(
        "identity_rule",
        keyed(&before.identity_rules, |r| r.name.clone()),
        keyed(&after.identity_rules, |r| r.name.clone()),
    );
    section(
        "fingerprint",
        keyed(&before.fingerprints, |f| f.sha256.to_string()),
        keyed(&after.fingerprints, |f| f.sha256.to_string()),
    );
    section("rule", rules_keyed(before), rules_keyed(after));
    section(
        "sink",
        keyed(&before.sinks, |s| s.name.clone()),
        keyed(&after.sinks, |s| s.name.clone()),
    );
    PolicyDiff { entries }
}

/// Entries by key, each rendered as compact JSON.
fn keyed<'a, T: Serialize + 'a>(
    items: impl IntoIterator<Item = &'a T>,
    key: impl Fn(&T) -> String,
) -> BTreeMap<String, String> {
    items
        .into_iter()
        .map(|item| (key(item), render(item)))
        .collect()
}

/// Rules by number; a rule without one (new, to be allocated) by its place.
fn rules_keyed(doc: &PolicyDocument) -> BTreeMap<String, String> {
    doc.rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let key = match r.id {
                Some(id) => id.0.to_string(),
                None => format!("new #{i}"),
            };
            (key, render(r))
        })
        .collect()
}

fn render<T: Serialize>(item: &T) -> String {
    // Plain data with string keys always serializes; should it ever not,
    // the reviewer still sees that something is there.
    serde_json::to_string(item).unwrap_or_else(|e| format!("<unrenderable: {e}>"))
}

impl fmt::Display for PolicyDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.entries.is_empty() {
            return writeln!(f, "no differences");
        }
        for DiffEntry {
            section,
            key,
            change,
        } in &self.entries
        {
            match change {
                Change::Added { after } => writeln!(f, "+ {section} {key}: {after}")?,
                Change::Removed { before } => writeln!(f, "- {section} {key}: {before}")?,
                Change::Changed { before, after } => {
                    writeln!(f, "~ {section} {key}:\n    was {before}\n    now {after}")?
                }
            }
        }
        Ok(())
    }
}
