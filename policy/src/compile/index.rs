//! Identities by name, built once per compilation: a rule's selector or an
//! endpoint's identity is then a range lookup, not a scan of every identity
//! (rules × identities is the cost that would dominate large policies).

use std::collections::BTreeMap;

use crate::ids::IdentityId;
use crate::state::ClusterState;
use crate::{AppSelector, IdentityName};

/// Identity ids ordered by (zone, app, service).
pub(super) struct IdentityIndex<'a>(BTreeMap<(&'a str, &'a str, &'a str), IdentityId>);

impl<'a> IdentityIndex<'a> {
    /// The index of every identity of `state`.
    pub(super) fn of(state: &'a ClusterState) -> Self {
        IdentityIndex(
            state
                .identities
                .values()
                .map(|i| {
                    let n = &i.name;
                    ((n.zone.as_str(), n.app.as_str(), n.service.as_str()), i.id)
                })
                .collect(),
        )
    }

    /// The identity of this name, if defined.
    pub(super) fn get(&self, name: &IdentityName) -> Option<IdentityId> {
        self.0
            .get(&(name.zone.as_str(), name.app.as_str(), name.service.as_str()))
            .copied()
    }

    /// The identities `selector` selects, in name order.
    pub(super) fn select(&self, selector: &AppSelector) -> Vec<IdentityId> {
        let zone = selector.zone.as_str();
        let app = selector.app.as_deref();
        let from = (zone, app.unwrap_or(""), "");
        self.0
            .range(from..)
            .take_while(|((z, a, _), _)| *z == zone && app.is_none_or(|app| *a == app))
            .filter(|((_, _, s), _)| selector.service.as_deref().is_none_or(|svc| *s == svc))
            .map(|(_, id)| *id)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::sample;

    #[test]
    fn selecting_through_the_index_agrees_with_matching_every_identity() {
        let state = sample();
        let index = IdentityIndex::of(&state);
        let zones: Vec<&String> = state.zones.keys().collect();
        let mut selectors = Vec::new();
        for identity in state.identities.values() {
            let n = &identity.name;
            selectors.push(AppSelector {
                zone: n.zone.clone(),
                app: Some(n.app.clone()),
                service: Some(n.service.clone()),
            });
            selectors.push(AppSelector {
                zone: n.zone.clone(),
                app: Some(n.app.clone()),
                service: None,
            });
            selectors.push(AppSelector {
                zone: n.zone.clone(),
                app: None,
                service: Some(n.service.clone()),
            });
        }
        for zone in zones {
            selectors.push(AppSelector {
                zone: zone.clone(),
                app: None,
                service: None,
            });
        }
        selectors.push(AppSelector {
            zone: "nowhere".into(),
            app: Some("x".into()),
            service: None,
        });
        for selector in &selectors {
            let mut scanned: Vec<IdentityId> = state
                .identities
                .values()
                .filter(|i| selector.matches(&i.name))
                .map(|i| i.id)
                .collect();
            let mut indexed = index.select(selector);
            scanned.sort();
            indexed.sort();
            assert_eq!(indexed, scanned, "{selector}");
        }
        for identity in state.identities.values() {
            assert_eq!(index.get(&identity.name), Some(identity.id));
        }
    }
}
