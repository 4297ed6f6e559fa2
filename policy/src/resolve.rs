//! Giving a workload its identity from the facts a node can verify.
//!
//! A registered binary (fingerprint) carries its identity wherever it runs.
//! Otherwise identity rules are tried in the order of their names; the first
//! whose selector holds names the identity. An application that has
//! fingerprints lends its identity only to those binaries: a workload an
//! identity rule places in such an app but whose binary is not registered —
//! unknown, or modified since registration — is *unverified*: it belongs to
//! the zone but carries no identity, so an enforcing zone cuts it off.

use std::collections::BTreeMap;

use globset::{Glob, GlobMatcher};
use serde::{Deserialize, Serialize};

use crate::ids::{IdentityId, ZoneId};
use crate::state::ClusterState;
use crate::{IdentityName, IdentityRule, Sha256};

/// What a node knows about a workload (a process, or a cgroup of processes).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadFacts {
    /// Path of the executable.
    pub exe_path: Option<String>,
    /// SHA-256 of the executable.
    pub exe_sha256: Option<Sha256>,
    /// Path of the workload's cgroup v2, from the cgroup root.
    pub cgroup_path: Option<String>,
    /// User name it runs as.
    pub user: Option<String>,
}

/// The identity and zone the dataplane stores for a workload or address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Subject {
    /// Its identity ([`IdentityId::UNKNOWN`] when nothing vouches for it).
    pub identity: IdentityId,
    /// Its zone, if it belongs to one.
    pub zone: Option<ZoneId>,
}

impl Subject {
    /// A subject with no identity and no zone.
    pub const UNMANAGED: Subject = Subject {
        identity: IdentityId::UNKNOWN,
        zone: None,
    };
}

/// How a workload's identity was decided, for people and alerts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Resolution {
    /// Its binary is registered.
    Fingerprint {
        /// The identity the binary carries.
        identity: IdentityName,
    },
    /// An identity rule names it, and no fingerprint contradicts that.
    Rule {
        /// The rule's name.
        rule: String,
        /// The identity it gets.
        identity: IdentityName,
    },
    /// An identity rule names it, but the identity's registered binaries do
    /// not include this one.
    Unverified {
        /// The rule's name.
        rule: String,
        /// The identity it would have had.
        claimed: IdentityName,
    },
    /// Nothing names it.
    Unmanaged,
}

/// Resolves workloads on one node; built once per compilation so the globs
/// are compiled once.
pub struct Resolver<'a> {
    state: &'a ClusterState,
    node_labels: &'a BTreeMap<String, String>,
    rules: Vec<CompiledRule<'a>>,
}

struct CompiledRule<'a> {
    rule: &'a IdentityRule,
    exe_path: Option<GlobMatcher>,
    cgroup_path: Option<GlobMatcher>,
}

impl<'a> Resolver<'a> {
    /// A resolver for workloads of a node with these labels.
    pub fn new(state: &'a ClusterState, node_labels: &'a BTreeMap<String, String>) -> Self {
        // Validation accepted every glob; one that fails to compile here can
        // only come from a state that bypassed validation, and is treated as
        // matching nothing rather than everything.
        let matcher = |glob: &Option<String>| -> Option<Option<GlobMatcher>> {
            match glob {
                None => Some(None),
                Some(g) => Glob::new(g).ok().map(|g| Some(g.compile_matcher())),
            }
        };
        let rules = state
            .identity_rules
            .values()
            .filter_map(|rule| {
                Some(CompiledRule {
                    rule,
                    exe_path: matcher(&rule.selector.exe_path)?,
                    cgroup_path: matcher(&rule.selector.cgroup_path)?,
                })
            })
            .collect();
        Resolver {
            state,
            node_labels,
            rules,
        }
    }

    /// How the workload with these facts is identified.
    pub fn resolve(&self, facts: &WorkloadFacts) -> Resolution {
        if let Some(fp) = facts
            .exe_sha256
            .and_then(|h| self.state.fingerprints.get(&h))
        {
            return Resolution::Fingerprint {
                identity: fp.identity.clone(),
            };
        }
        let Some(rule) = self.rules.iter().find(|r| self.holds(r, facts)) else {
            return Resolution::Unmanaged;
        };
        let identity = rule.rule.identity.clone();
        if self.state.identity_has_fingerprints(&identity) {
            // Its binary would have matched a fingerprint above.
            return Resolution::Unverified {
                rule: rule.rule.name.clone(),
                claimed: identity,
            };
        }
        Resolution::Rule {
            rule: rule.rule.name.clone(),
            identity,
        }
    }

    /// The identity and zone the dataplane stores for a resolution.
    pub fn subject(&self, resolution: &Resolution) -> Subject {
        let zone_of = |name: &IdentityName| self.state.zones.get(&name.zone).map(|z| z.id);
        match resolution {
            Resolution::Fingerprint { identity } | Resolution::Rule { identity, .. } => {
                match self.state.identity_by_name(identity) {
                    Some(i) => Subject {
                        identity: i.id,
                        zone: zone_of(identity),
                    },
                    None => Subject::UNMANAGED,
                }
            }
            Resolution::Unverified { claimed, .. } => Subject {
                identity: IdentityId::UNKNOWN,
                zone: zone_of(claimed),
            },
            Resolution::Unmanaged => Subject::UNMANAGED,
        }
    }

    fn holds(&self, rule: &CompiledRule<'_>, facts: &WorkloadFacts) -> bool {
        let selector = &rule.rule.selector;
        let glob_holds = |matcher: &Option<GlobMatcher>, fact: &Option<String>| match matcher {
            None => true,
            Some(m) => fact.as_ref().is_some_and(|f| m.is_match(f)),
        };
        selector.sha256.is_none_or(|h| facts.exe_sha256 == Some(h))
            && glob_holds(&rule.exe_path, &facts.exe_path)
            && glob_holds(&rule.cgroup_path, &facts.cgroup_path)
            && selector
                .user
                .as_ref()
                .is_none_or(|u| facts.user.as_ref() == Some(u))
            && selector
                .node_labels
                .iter()
                .all(|(k, v)| self.node_labels.get(k) == Some(v))
    }
}
